"""The model frame: from a parsed formula and a table to the arrays the engine needs.

This layer owns everything that touches data: conversion of polars/pyarrow tables, rows with missing
values (dropped and counted, as R's ``na.omit``), grouping factors with R's level order, the fixed- and
random-effects model matrices, prior weights and offsets, rank-deficient fixed effects, and lme4's
checks of the design.  It hands the engine plain NumPy arrays.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
from scipy.linalg import lapack

from .design import Design, formula_names, is_number_dtype
from .engine.crossprod import CrossProducts, GroupingColumns, ResponseUnits, cross_products
from .errors import ModelMessage, check_numbers
from .evaluation import check_calls, check_functions
from .formula import FormulaError, ParsedFormula, RandomTerm

__all__ = [
    "ModelFrame",
    "GroupingFactor",
    "RandomEffectsTerm",
    "build_frame",
    "check_finite",
    "CompleteRows",
    "complete_rows",
    "grouping_factor",
    "new_data",
    "numeric_vector",
    "to_pandas",
    "ModelMessage",
    "r_label",
]


def to_pandas(data) -> pd.DataFrame:
    """Accept pandas, polars or pyarrow tables (or a mapping of columns)."""
    if isinstance(data, pd.DataFrame):
        return data
    if hasattr(data, "to_pandas"):  # polars and pyarrow
        return data.to_pandas()
    if isinstance(data, dict):
        try:
            return pd.DataFrame(data)
        except ValueError as exc:
            raise ValueError(f"cannot make a table of the data: {exc}") from exc
    raise TypeError(f"data must be a pandas, polars or pyarrow table, got {type(data).__name__}")


@dataclass
class GroupingFactor:
    """A grouping factor: its name (``"a:b"`` for interactions), level labels and per-row codes."""

    name: str
    variables: tuple[str, ...]
    levels: pd.Index
    codes: np.ndarray

    @property
    def nlevels(self) -> int:
        return len(self.levels)

    def labels_for(self, data: pd.DataFrame) -> pd.Index:
        """R's level labels of (new) rows, ``a:b`` for interactions."""
        labels = [data[v].astype(object).map(r_label).astype(str) for v in self.variables]
        combined = labels[0]
        for more in labels[1:]:
            combined = combined + ":" + more
        return pd.Index(combined)

    def codes_for(self, data: pd.DataFrame) -> np.ndarray:
        """Codes of new rows; -1 where the level was not seen when fitting."""
        return self.levels.get_indexer(self.labels_for(data))


@dataclass
class RandomEffectsTerm:
    """One ``(lhs | group)`` term, materialized."""

    term: RandomTerm
    design: Design
    factor: GroupingFactor
    z: np.ndarray

    @property
    def column_names(self) -> list[str]:
        return self.design.column_names

    @property
    def ncols(self) -> int:
        return self.z.shape[1]

    def grouping_columns(self, rows: np.ndarray | None = None) -> GroupingColumns:
        """The term's view of all rows, or of the rows indexed by ``rows``."""
        if rows is None:
            return GroupingColumns(self.factor.codes, self.z, self.factor.nlevels)
        return GroupingColumns(self.factor.codes[rows], self.z[rows], self.factor.nlevels)

    def describe(self) -> str:
        return f"({self.term.lhs} | {self.factor.name})"


@dataclass
class ModelFrame:
    """Everything the engine and the fitted model need to know about the data."""

    formula: ParsedFormula
    used_rows: CompleteRows  # the rows used; ``data`` is their table
    y: np.ndarray
    x: np.ndarray
    fixed_design: Design
    fixed_names: list[str]  # after dropping rank-deficient columns
    kept_columns: np.ndarray  # indices into fixed_design.column_names
    terms: list[RandomEffectsTerm]
    weights: np.ndarray | None
    offset: np.ndarray | None
    n_missing: int
    messages: list[str] = field(default_factory=list)

    @property
    def nobs(self) -> int:
        return len(self.y)

    @property
    def data(self) -> pd.DataFrame:
        """The rows used, with the input's index."""
        return self.used_rows.table

    @property
    def functions(self) -> dict[str, Callable]:
        """The caller's own functions the formula may call (``functions=`` of lmer, gls, ...)."""
        return self.used_rows.functions

    @property
    def design_variables(self) -> set[str]:
        """Variables the fixed- and random-effects model matrices use (not the grouping factors)."""
        names = set(formula_names(self.formula.fixed)[0])
        for term in self.formula.random:
            names.update(formula_names(term.lhs)[0])
        return names

    def cross_products(self, rows: np.ndarray | None = None) -> CrossProducts:
        """Blocks of [Z X y]'W[Z X y] (y less the offset) over all rows, or over the rows ``rows`` index.

        The blocks of a subset keep every level of every factor, so they add to and subtract from the
        blocks of the whole frame (influence diagnostics drop a group's rows that way).
        """
        x, response, weights = self.x, self.response, self.weights
        if rows is not None:
            x, response = x[rows], response[rows]
            weights = None if weights is None else weights[rows]
        xy = np.empty((len(response), x.shape[1] + 1))
        xy[:, :-1] = x
        xy[:, -1] = self.response_units.apply(x, response)
        terms = [t.grouping_columns(rows) for t in self.terms]
        return cross_products(terms, xy, weights, self.response_units)

    @property
    def response(self) -> np.ndarray:
        """The response less the offset: what X beta + Z b models."""
        return self.y if self.offset is None else self.y - self.offset

    @cached_property
    def response_units(self) -> ResponseUnits:
        """The units the cross-products hold the response in (one for all rows and subsets of them)."""
        return ResponseUnits.least_squares(self.x, self.response, self.weights)

    def fixed_matrix(self, data: pd.DataFrame) -> np.ndarray:
        """The fixed-effects columns kept in the fit, for (new) data."""
        return self.fixed_design.matrix(data)[:, self.kept_columns]


def r_label(value) -> str:
    """R's ``as.character`` of a level (``TRUE``, ``2``, ``0.1``, ``1e+05``).

    Doubles get up to 15 significant digits, in fixed or scientific notation, whichever is shorter.
    """
    if isinstance(value, (bool, np.bool_)):
        return "TRUE" if value else "FALSE"
    if not isinstance(value, (float, np.floating)) or not np.isfinite(value):
        return str(value)
    digits = format(float(value), ".15g")
    significant = len(digits.split("e")[0].replace("-", "").replace(".", "").strip("0")) or 1
    scientific = format(float(digits), f".{significant - 1}e")
    fixed = np.format_float_positional(float(digits), trim="-")
    return fixed if len(fixed) <= len(scientific) else scientific


def _r_labels(values: pd.Index | np.ndarray) -> pd.Index:
    """:func:`r_label` of each of distinct ``values``; strings and integers convert all at once."""
    dtype = values.dtype
    if isinstance(dtype, pd.StringDtype) or (isinstance(dtype, np.dtype) and dtype.kind in "iuU"):
        labels = values.astype(str)
        if isinstance(labels, np.ndarray):
            return pd.Index(labels)
        return labels if labels.name is None else labels.rename(None)
    return pd.Index([r_label(v) for v in values])


def _factor_codes(column: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Codes and R labels of ``as.factor(column)[, drop = TRUE]``: categories in their order, other
    values sorted; unused levels dropped."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.array.codes.astype(np.int64)
        categories = column.dtype.categories
        used = np.bincount(codes, minlength=len(categories)) > 0
        if not used.all():
            codes = (np.cumsum(used) - 1)[codes]
            categories = categories[used]
        return codes, _r_labels(categories)
    values, codes = np.unique(column.to_numpy(), return_inverse=True)
    return codes.astype(np.int64).ravel(), _r_labels(values)


def grouping_factor(
    data: pd.DataFrame | Mapping[str, pd.Series], variables: tuple[str, ...], name: str
) -> GroupingFactor:
    """Interaction of ``variables`` with R's level order (first variable slowest), unused levels dropped."""
    codes, labels = _factor_codes(data[variables[0]])
    for var in variables[1:]:
        more_codes, more_labels = _factor_codes(data[var])
        used, codes = np.unique(codes * len(more_labels) + more_codes, return_inverse=True)
        labels = pd.Index(
            [f"{labels[c // len(more_labels)]}:{more_labels[c % len(more_labels)]}" for c in used]
        )
        codes = codes.ravel()
    return GroupingFactor(name, variables, labels, codes)


def _model_variables(
    formula: ParsedFormula, weights, offset, functions: Mapping[str, Callable], response: bool = True
) -> dict[str, str]:
    """Variables the model uses -> where they are used (for messages); unknown functions and anything
    else a formula may not evaluate raise (``functions`` are the caller's own).

    ``response=False`` leaves out the response's variables (new data for predictions need none).
    """
    variables: dict[str, str] = {}

    def add(text: str, where: str) -> None:
        names, called = formula_names(text)
        check_calls(called, functions, f"the {where} of {formula.text!r}")
        for name in names:
            variables.setdefault(name, where)

    if response:
        add(formula.response, "response")
    add(formula.fixed, "fixed effects")
    for term in formula.random:
        add(term.lhs, f"random term ({term.lhs} | {term.group})")
        for name in term.variables:
            variables.setdefault(name, f"grouping factor of ({term.lhs} | {term.group})")
    for expr in formula.offsets:
        add(expr, "offset")
    for name, value in (("weights", weights), ("offset", offset)):
        if isinstance(value, str):
            variables.setdefault(value, name)
    return variables


def _present(column: pd.Series) -> np.ndarray:
    """Mask of the non-missing values of a column (fast paths for categories and NumPy numbers)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.array.codes >= 0
    if isinstance(column.dtype, np.dtype) and column.dtype.kind == "f":
        return ~np.isnan(column.to_numpy())
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "iub":
        return np.ones(len(column), dtype=bool)
    return column.notna().to_numpy()


def _usable_dtype(dtype) -> bool:
    """Numbers, booleans, strings or categories: the types a model matrix can use."""
    if isinstance(dtype, np.dtype):  # what pandas' tests below answer for NumPy types, at less cost
        return dtype.kind in "biufcOSU"
    return (
        pd.api.types.is_numeric_dtype(dtype)
        or pd.api.types.is_string_dtype(dtype)
        or isinstance(dtype, pd.CategoricalDtype)
    )


def _model_columns(data: pd.DataFrame, variables: dict[str, str], what: str = "data") -> dict[str, pd.Series]:
    """The column of each variable; it must be exactly one column, of a type a model matrix can use.

    ``what`` names the table in messages (``"newdata"`` for predictions).
    """
    missing = [v for v in variables if v not in data.columns]
    if missing:
        details = ", ".join(f"{v!r} (in the {variables[v]})" for v in missing)
        noun = "column" if len(missing) == 1 else "columns"
        raise ValueError(f"unknown {noun} {details}; {what} has columns {list(data.columns)}")
    if not data.columns.is_unique:
        repeated = set(data.columns[data.columns.duplicated()])
        duplicated = [v for v in variables if v in repeated]
        if duplicated:
            raise ValueError(f"{what} has more than one column named {', '.join(map(repr, duplicated))}")
    columns = {}
    for var, where in variables.items():
        column = columns[var] = data[var]
        dtype = column.dtype
        if where in ("response", "weights", "offset") and not is_number_dtype(dtype):
            raise TypeError(f"{where} {var!r} must be numeric, but the column has type {dtype}")
        if not where.startswith("grouping factor") and not _usable_dtype(dtype):
            raise TypeError(
                f"column {var!r} (in the {where}) has type {dtype}, which a model matrix cannot use; "
                "convert it to numbers or to categories"
            )
    return columns


def numeric_vector(
    data: pd.DataFrame | Mapping[str, pd.Series],
    expr: str,
    what: str,
    functions: Mapping[str, Callable] | None = None,
) -> np.ndarray:
    """A column or an expression (``log(y)``) as numbers; ``what`` names it in errors.

    ``data`` is a table, or for columns only a mapping of names to columns; ``functions`` are the
    caller's own functions the expression may call.
    """
    if expr in data:
        column = data[expr]
        if not is_number_dtype(column.dtype):
            raise TypeError(f"{what} {expr!r} must be numeric, but the column has type {column.dtype}")
        return column.to_numpy(dtype=float)
    return Design.build(f"0 + I({expr})", data, functions=functions)[1][:, 0]


def formula_offset(
    formula: ParsedFormula, data: pd.DataFrame, functions: Mapping[str, Callable] | None = None
) -> np.ndarray | None:
    """The sum of the formula's ``offset(...)`` terms evaluated on ``data`` (None without any)."""
    total = None
    for expr in formula.offsets:
        values = numeric_vector(data, expr, "offset", functions)
        total = values if total is None else total + values
    return total


def new_data(
    frame: ModelFrame, newdata, random: tuple[RandomTerm, ...] = ()
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """New data for predictions: the table, and a copy whose factors carry the fit's levels.

    Every column the fixed effects, the formula's offset and the random terms ``random`` use must be
    there, numeric where the fit's column was numeric.
    """
    data = to_pandas(newdata)
    formula = frame.formula.with_random(random)
    variables = _model_variables(formula, None, None, frame.functions, response=False)
    columns = _model_columns(data, variables, "newdata")
    for var, column in columns.items():
        fitted = frame.data[var].dtype if var in frame.data.columns else None
        if isinstance(fitted, np.dtype) and fitted.kind in "iufc" and not is_number_dtype(column.dtype):
            raise TypeError(
                f"column {var!r} of newdata has type {column.dtype}, but the model was fitted to numbers"
            )
    return data, _with_fit_levels(data, frame)


def _with_fit_levels(data: pd.DataFrame, frame: ModelFrame) -> pd.DataFrame:
    """New data whose categorical columns carry the fit's categories (so contrasts line up).

    Values are matched to the fit's levels by R's labels (``TRUE``, ``2``).  A level the fit has not
    seen is an error in a column the model matrices use (no coefficient exists for it) and missing in
    a column used only for grouping (its random effects are then those of a new level).
    """
    data = data.copy()
    used = frame.design_variables
    for column in frame.data.columns:
        if column not in data.columns or not isinstance(frame.data[column].dtype, pd.CategoricalDtype):
            continue
        categories = frame.data[column].cat.categories
        values = data[column].astype(object)
        if all(isinstance(c, str) for c in categories):
            values = values.map(lambda v: v if isinstance(v, str) or pd.isna(v) else r_label(v))
        unseen = values.notna() & ~values.isin(categories)
        if unseen.any():
            if column in used:
                levels = ", ".join(map(str, sorted(set(values[unseen]), key=str)[:10]))
                raise ValueError(f"newdata has levels of factor {column!r} not seen in the fit: {levels}")
            values = values.where(~unseen)
        data[column] = pd.Categorical(values, categories=categories, ordered=frame.data[column].cat.ordered)
    return data


#: magnitudes whose squares and products with each other stay within double precision's range
REPRESENTABLE = (1e-150, 1e150)


def check_finite(values: np.ndarray, what: str, names: list[str] | None = None) -> None:
    """Raise naming ``what`` (and the offending columns of a matrix) when there are Inf or NaN values,
    or values too large for their cross-products to be represented (over 1e150 in magnitude), or a
    column whose nonzero values are all too small (under 1e-150: their squares underflow)."""
    # the largest magnitude per column (NaN or Inf where a column has any) decides without a copy;
    # column by column, as NumPy's reductions along axis 0 of a tall array are far slower
    columns = values if values.ndim > 1 else values[:, None]
    largest = np.array(
        [max(abs(c.max(initial=0.0)), abs(c.min(initial=0.0))) for c in columns.T], dtype=float
    )
    low, high = REPRESENTABLE
    if np.all((largest <= high) & ((largest >= low) | (largest == 0))):
        return
    magnitude = np.abs(values)
    columns = magnitude if magnitude.ndim > 1 else magnitude[:, None]
    largest = columns.max(axis=0, initial=0.0)
    _raise_where(~np.isfinite(values), values, what, names, "infinite or NaN values")
    _raise_where(
        magnitude > high,
        values,
        what,
        names,
        f"values over {high:g} in magnitude, whose squares overflow (rescale)",
    )
    tiny = (largest < low) & (largest > 0)
    _raise_where(
        (columns > 0) & tiny,
        columns,
        what,
        names,
        f"only values under {low:g} in magnitude, whose squares underflow (rescale)",
    )


def _raise_where(
    bad: np.ndarray, values: np.ndarray, what: str, names: list[str] | None, problem: str
) -> None:
    if not bad.any():
        return
    where = ""
    if names is not None and bad.ndim > 1:
        columns = [name for name, flag in zip(names, bad.any(axis=0)) if flag]
        where = f" in column{'s' if len(columns) > 1 else ''} {', '.join(map(repr, columns))}"
    rows = int(bad.any(axis=1).sum()) if bad.ndim > 1 else int(bad.sum())
    raise ValueError(f"{what} has {problem}{where} ({rows} of {len(values)} rows)")


def _check_scale(x: np.ndarray, tol: float = 1e3) -> str | None:
    """lme4's checkScaleX: non-0/1 columns whose SDs differ from 1, or from each other, by over ``tol``."""
    if x.shape[0] < 2:
        return None
    log_sd = []
    for column in x.T:  # column by column: NumPy's reductions down the rows of a wide array are slow
        if ((column == 0) | (column == 1)).all():
            continue
        centered = column - column.mean()
        sd = math.sqrt(centered @ centered / (len(column) - 1))
        log_sd.append(math.log(sd) if sd > 0 else -math.inf)
    if log_sd and max(max(map(abs, log_sd)), max(log_sd) - min(log_sd)) > math.log(tol):
        return "Some predictor variables are on very different scales: consider rescaling"
    return None


def independent_columns(x: np.ndarray, tol: float = 1e-7) -> np.ndarray:
    """Indices of the columns R's QR (LINPACK ``dqrdc2``) keeps: a column goes when its residual after
    projection on the columns before it is below ``tol`` times its norm; later collinear ones go first.

    The diagonal of R in a QR decomposition is exactly that residual norm, and R's columns have the norms
    of x's (Householder QR is column-wise backward stable), so one QR per dropped column (usually none)
    decides it.  LAPACK's dgeqrf is called directly: ``np.linalg.qr`` costs several times more.
    """
    kept = np.arange(x.shape[1])
    while kept.size:
        factored = lapack.dgeqrf(x if kept.size == x.shape[1] else x[:, kept])[0]
        r = np.triu(factored[: kept.size])
        residual = np.abs(np.diagonal(r))
        small = np.flatnonzero(~(residual > tol * np.sqrt(np.einsum("ij,ij->j", r, r))))
        if small.size == 0:
            break
        kept = np.delete(kept, small[0])
    return kept


def _lme4_term_order(nlevels: list[int]) -> list[int]:
    """lme4's reordering of random-effects terms: ``rev(order(nl))`` when the levels ever increase."""
    if not any(b > a for a, b in zip(nlevels, nlevels[1:])):
        return list(range(len(nlevels)))
    ascending = sorted(range(len(nlevels)), key=lambda i: nlevels[i])  # stable, as R's order()
    return ascending[::-1]


@dataclass
class CompleteRows:
    """The input rows complete in every variable the model uses (R's ``na.omit``), column by column.

    Right-hand sides of numeric columns are materialized from ``columns`` directly; the table of those
    rows (a DataFrame) is made only when something needs one (formulaic, :attr:`ModelFrame.data`): for
    sleepstudy, making it took a quarter of the time of the whole model frame.
    """

    columns: dict[str, pd.Series]  # each variable on those rows, strings and booleans as categories
    complete: np.ndarray  # mask of the complete input rows
    extra: dict[str, np.ndarray]  # weights and offset given as arrays (input rows)
    functions: dict[str, Callable] = field(default_factory=dict)  # the caller's own formula functions

    @property
    def nrows(self) -> int:
        return len(next(iter(self.columns.values())))

    @cached_property
    def table(self) -> pd.DataFrame:
        """The used columns of those rows, with the input's index."""
        index = next(iter(self.columns.values())).index
        return pd.DataFrame(self.columns, index=index, copy=False)

    def vector(self, expr: str, what: str) -> np.ndarray:
        """A column or an expression as numbers (see :func:`numeric_vector`)."""
        data = self.columns if expr in self.columns else self.table
        return numeric_vector(data, expr, what, self.functions)

    def design(self, rhs: str) -> tuple[Design, np.ndarray]:
        """The design and model matrix of a right-hand side on these rows."""
        numeric = Design.from_numeric_columns(rhs, self.columns, self.nrows)
        return Design.build(rhs, self.table, functions=self.functions) if numeric is None else numeric


def _row_values(name: str, value, index: pd.Index) -> np.ndarray:
    """Weights or an offset given as numbers, one per row of the data (whose index is ``index``).

    A pandas Series is matched to the rows by its index, as pandas aligns columns (it may have more
    labels, e.g. a column of a larger table); anything else is taken by position.
    """
    if isinstance(value, pd.Series) and not value.index.equals(index):
        if not (index.is_unique and value.index.is_unique):
            raise ValueError(
                f"{name} is a Series whose index differs from the data's and has repeated labels (or the "
                "data's has), so its values cannot be matched to rows; pass an array to use them by position"
            )
        absent = index[~index.isin(value.index)]
        if len(absent):
            shown = ", ".join(map(repr, absent[:5].tolist())) + (", ..." if len(absent) > 5 else "")
            raise ValueError(
                f"{name} is a Series whose index lacks {len(absent)} of the data's row labels ({shown}); a "
                "Series is matched to the rows by its index: pass an array to use its values by position"
            )
        value = value.reindex(index)
    array = check_numbers(name, value)
    if array.ndim != 1:
        given = "a single number" if array.ndim == 0 else f"an array of shape {array.shape}"
        raise ValueError(f"{name} must be a column name or one number per row, not {given}")
    if len(array) != len(index):
        raise ValueError(f"{name} has length {len(array)}, data has {len(index)} rows")
    if np.isnan(array).all():
        raise ValueError(f"{name} has only missing values")
    return array


#: pandas 3 always copies on write: a column taken from the input keeps its values when the input changes.
_COPY_ON_WRITE = int(pd.__version__.split(".")[0]) >= 3


def complete_rows(
    formula: ParsedFormula,
    data,
    weights: str | np.ndarray | None = None,
    offset: str | np.ndarray | None = None,
    functions: Mapping[str, Callable] | None = None,
) -> CompleteRows:
    """The rows complete in every variable the model uses, with R's column types (strings and booleans
    as categories, unused categories dropped), and the weights/offset given as arrays.  ``functions``
    are the caller's own functions the formula may call."""
    functions = check_functions(functions)
    data = to_pandas(data)
    if len(data) == 0 or data.shape[1] == 0:
        raise ValueError("data has no rows" if len(data) == 0 else "data has no columns")
    variables = _model_variables(formula, weights, offset, functions)
    columns = _model_columns(data, variables)

    extra = {}
    for name, value in (("weights", weights), ("offset", offset)):
        if value is not None and not isinstance(value, str):
            extra[name] = _row_values(name, value, data.index)

    complete = np.ones(len(data), dtype=bool)
    for var, column in columns.items():
        present = _present(column)
        if not present.any():
            raise ValueError(f"column {var!r} (used in the {variables[var]}) has only missing values")
        complete &= present
    for array in extra.values():
        complete &= ~np.isnan(array)
    if not complete.any():
        raise ValueError("no row is complete in all the variables the model uses")
    if not complete.all():
        index = data.index[complete]  # one index object for all columns, so the table needs no alignment
        columns = {var: pd.Series(c.array[complete], index, name=var) for var, c in columns.items()}
    elif not _COPY_ON_WRITE:
        columns = {var: column.copy() for var, column in columns.items()}
    for var, column in columns.items():
        dtype = column.dtype
        if isinstance(dtype, np.dtype) and dtype.kind in "iufc":
            continue
        if isinstance(dtype, pd.CategoricalDtype):
            codes = column.array.codes
            if np.bincount(codes[codes >= 0], minlength=len(dtype.categories)).min(initial=1) == 0:
                columns[var] = column.cat.remove_unused_categories()
        elif pd.api.types.is_bool_dtype(dtype):
            labels = pd.Categorical(np.where(column, "TRUE", "FALSE"), categories=["FALSE", "TRUE"])
            columns[var] = pd.Series(labels, column.index, name=var)
        elif pd.api.types.is_string_dtype(dtype):  # object columns included
            columns[var] = pd.Series(pd.Categorical(column.astype(str)), column.index, name=var)
    return CompleteRows(columns, complete, extra, functions)


def _check_levels_structure(term: RandomTerm, design: Design) -> None:
    """ar1 and toep correlate a term's columns by their distance in the order of a factor's levels
    (glmmTMB's ``ar1(0 + times | g)``): the columns must be the indicators of one factor's levels."""
    terms = design.terms
    if design.has_intercept:
        problem = "it has an intercept (write 0 + f)"
    elif len(terms) != 1 or len(terms[0].variables) != 1:
        problem = f"it has the terms {', '.join(t.label for t in terms)}"
    elif terms[0].numeric:
        problem = f"{terms[0].label} is numeric (make it a factor, e.g. factor({terms[0].label}))"
    else:
        return
    raise FormulaError(
        f"{term.formula_text}: {term.structure} needs the columns of one factor's levels, written "
        f"{term.structure}(0 + f | {term.group}) with f a factor; {problem}"
    )


def build_frame(
    formula: ParsedFormula,
    data,
    weights: str | np.ndarray | None = None,
    offset: str | np.ndarray | None = None,
    require_random: bool = True,
    functions: Mapping[str, Callable] | None = None,
) -> ModelFrame:
    """Materialize ``formula`` on ``data`` with lme4's conventions and checks.

    ``require_random=False`` allows a formula without random-effects terms (gls models); ``functions``
    are the caller's own functions the formula may call (``{"logit": logit}``).
    """
    if require_random and not formula.random:
        raise FormulaError(
            f"no random-effects terms in {formula.text!r}; use (expr | group), e.g. (1 | subject)"
        )
    rows = complete_rows(formula, data, weights, offset, functions)
    complete = rows.complete

    y = rows.vector(formula.response, "response")
    check_finite(y, f"response {formula.response!r}")

    fixed_design, x_full = rows.design(formula.fixed)
    check_finite(x_full, "fixed-effects model matrix", fixed_design.column_names)
    messages: list[str] = []
    kept = independent_columns(x_full) if x_full.shape[1] else np.arange(0)
    if len(kept) < x_full.shape[1]:
        dropped = x_full.shape[1] - len(kept)
        noun = "column / coefficient" if dropped == 1 else "columns / coefficients"
        message = f"fixed-effect model matrix is rank deficient so dropping {dropped} {noun}"
        messages.append(message)
        warnings.warn(message, ModelMessage, stacklevel=3)
    x = x_full[:, kept]
    fixed_names = [fixed_design.column_names[i] for i in kept]
    message = _check_scale(x)
    if message:
        messages.append(message)
        warnings.warn(message, UserWarning, stacklevel=3)

    terms = []
    nobs = rows.nrows
    designs = {formula.fixed: (fixed_design, x_full)}  # (x | g) terms often repeat the fixed effects
    for term in formula.random:
        if term.lhs not in designs:
            designs[term.lhs] = rows.design(term.lhs)
        design, z = designs[term.lhs]
        if z.shape[1] == 0:
            raise FormulaError(f"random-effects term ({term.lhs} | {term.group}) has no columns")
        check_finite(z, f"model matrix of ({term.lhs} | {term.group})", design.column_names)
        if term.structure in ("ar1", "toep"):
            _check_levels_structure(term, design)
        factor = grouping_factor(rows.columns, term.variables, term.group)
        terms.append(RandomEffectsTerm(term, design, factor, z))
    for t in terms:
        if t.factor.nlevels < 2:
            raise ValueError(f"grouping factor {t.factor.name!r} must have more than 1 sampled level")
        if t.factor.nlevels >= nobs:
            raise ValueError(
                f"number of levels of grouping factor {t.factor.name!r} ({t.factor.nlevels}) must be less "
                f"than the number of observations ({nobs})"
            )
        q = t.factor.nlevels * t.ncols
        if nobs <= q:
            raise ValueError(
                f"number of observations (={nobs}) <= number of random effects (={q}) for term "
                f"{t.describe()}; the random-effects parameters are probably unidentifiable"
            )
    order = _lme4_term_order([t.factor.nlevels for t in terms])
    terms = [terms[i] for i in order]

    prior_weights = rows.extra.get("weights")
    if isinstance(weights, str):
        prior_weights = rows.vector(weights, "weights")
    elif prior_weights is not None:
        prior_weights = prior_weights[complete]
    if prior_weights is not None:
        check_finite(prior_weights, "weights")
        underflowing = (prior_weights > 0) & (prior_weights < REPRESENTABLE[0])
        if underflowing.any():
            raise ValueError(
                f"weights under {REPRESENTABLE[0]:g} cannot be represented in the cross-products "
                f"({int(underflowing.sum())} are): rescale the weights (multiplying all of them by a "
                "constant changes only sigma)"
            )
        if np.any(prior_weights < 0):
            raise ValueError(f"weights must not be negative ({np.sum(prior_weights < 0)} are)")
        if np.any(prior_weights == 0):
            raise ValueError(
                f"weights must be positive: {np.sum(prior_weights == 0)} are zero (lme4 gives such fits a "
                "log-likelihood of -Inf); leave those rows out of the data instead"
            )

    total_offset = rows.extra.get("offset")
    if total_offset is not None:
        total_offset = total_offset[complete]
    elif isinstance(offset, str):
        total_offset = rows.vector(offset, "offset")
    in_formula = formula_offset(formula, rows.table, rows.functions) if formula.offsets else None
    if in_formula is not None:
        total_offset = in_formula if total_offset is None else total_offset + in_formula
    if total_offset is not None:
        check_finite(total_offset, "offset")

    return ModelFrame(
        formula=formula,
        used_rows=rows,
        y=y,
        x=x,
        fixed_design=fixed_design,
        fixed_names=fixed_names,
        kept_columns=kept,
        terms=terms,
        weights=prior_weights,
        offset=total_offset,
        n_missing=int(len(complete) - nobs),
        messages=messages,
    )
