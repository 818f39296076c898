"""Input tables to the rows a model uses: pandas, polars or pyarrow in, the rows complete in every
variable the model uses (R's ``na.omit``), R's labels of values, columns and expressions as numbers, and
the check that numbers can be represented in the cross-products.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import check_numbers
from ..formula.evaluation import check_calls, check_functions
from ..formula.parse import ParsedFormula, Rhs
from .design import Design, formula_names, is_number_dtype

__all__ = [
    "REPRESENTABLE",
    "CompleteRows",
    "NumericColumn",
    "check_finite",
    "complete_mask",
    "complete_rows",
    "formula_offset",
    "given_values",
    "joined_labels",
    "model_columns",
    "model_variables",
    "numeric_vector",
    "r_label",
    "row_values",
    "to_pandas",
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


def joined_labels(data: pd.DataFrame | Mapping[str, pd.Series], names, separator: str) -> pd.Index:
    """One label per row: the R labels of the columns ``names`` joined by ``separator`` (``a:b`` for an
    interaction of grouping variables, nlme's ``I/Victory`` for nested ones)."""
    labels = None
    for name in names:
        column = data[name].astype(object).map(r_label).astype(str)
        labels = column if labels is None else labels + separator + column
    return pd.Index(labels)


def model_variables(
    formula: ParsedFormula, weights, offset, functions: Mapping[str, Callable], response: bool = True
) -> dict[str, str]:
    """Variables the model uses -> where they are used (for messages); unknown functions and anything
    else a formula may not evaluate raise (``functions`` are the caller's own).

    ``response=False`` leaves out the response's variables (new data for predictions need none).
    """
    variables: dict[str, str] = {}

    def add(names: tuple[tuple[str, ...], tuple[str, ...]], where: str) -> None:
        check_calls(names[1], functions, f"the {where} of {formula.text!r}")
        for name in names[0]:
            variables.setdefault(name, where)

    if response:
        add(formula_names(formula.response), "response")
    add(formula.fixed.names, "fixed effects")
    for term in formula.random:
        add(term.lhs.names, f"random term ({term.lhs.text} | {term.group})")
        for name in term.variables:
            variables.setdefault(name, f"grouping factor of ({term.lhs.text} | {term.group})")
    for expr in formula.offsets:
        add(formula_names(expr), "offset")
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


def model_columns(data: pd.DataFrame, variables: dict[str, str], what: str = "data") -> dict[str, pd.Series]:
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


@dataclass(frozen=True)
class NumericColumn:
    """A column or an expression (``log(y)``) taken as numbers; ``what`` names it in errors.

    An expression keeps its design, so that other rows (a chunk, new data) get the values of the
    transforms fixed on the rows it was built on: ``scale(y)`` centres by their mean.
    """

    expr: str
    what: str
    design: Design | None  # None: a column, taken as it is

    @classmethod
    def build(
        cls,
        data: pd.DataFrame | Mapping[str, pd.Series],
        expr: str,
        what: str,
        functions: Mapping[str, Callable] | None = None,
    ) -> tuple[NumericColumn, np.ndarray]:
        """The column and its values on ``data``: a table, or for columns only a mapping of names to
        columns; ``functions`` are the caller's own functions the expression may call."""
        if expr in data:
            return cls(expr, what, None), cls._column_values(data[expr], expr, what)
        # as R's as.numeric: a logical expression gives 0 and 1 (in I() it would be a factor, as in R)
        design, values = Design.build_numeric(expr, data, functions)
        return cls(expr, what, design), values

    def values(self, data: pd.DataFrame) -> np.ndarray:
        """The values on (other) rows."""
        if self.design is None:
            return self._column_values(data[self.expr], self.expr, self.what)
        return self.design.matrix(data)[:, 0]

    @staticmethod
    def _column_values(column: pd.Series, expr: str, what: str) -> np.ndarray:
        if not is_number_dtype(column.dtype):
            raise TypeError(f"{what} {expr!r} must be numeric, but the column has type {column.dtype}")
        return column.to_numpy(dtype=float)


def numeric_vector(
    data: pd.DataFrame | Mapping[str, pd.Series],
    expr: str,
    what: str,
    functions: Mapping[str, Callable] | None = None,
) -> np.ndarray:
    """A column or an expression as numbers (:meth:`NumericColumn.build`'s values)."""
    return NumericColumn.build(data, expr, what, functions)[1]


def formula_offset(
    formula: ParsedFormula, data: pd.DataFrame, functions: Mapping[str, Callable] | None = None
) -> np.ndarray | None:
    """The sum of the formula's ``offset(...)`` terms evaluated on ``data`` (None without any)."""
    total = None
    for expr in formula.offsets:
        values = numeric_vector(data, expr, "offset", functions)
        total = values if total is None else total + values
    return total


#: magnitudes whose squares and products with each other stay within double precision's range
REPRESENTABLE = (1e-150, 1e150)


def check_finite(values: np.ndarray | sp.spmatrix, what: str, names: list[str] | None = None) -> None:
    """Raise naming ``what`` (and the offending columns of a matrix) when there are Inf or NaN values,
    or values too large for their cross-products to be represented (over 1e150 in magnitude), or a
    column whose nonzero values are all too small (under 1e-150: their squares underflow).

    A sparse matrix is checked in its stored values (aov's model matrix)."""
    entries = _column_entries(values)
    # the largest magnitude per column (NaN or Inf where a column has any) decides without a copy;
    # column by column, as NumPy's reductions along axis 0 of a tall array are far slower
    largest = np.array(
        [max(abs(c.max(initial=0.0)), abs(c.min(initial=0.0))) for c, _ in entries], dtype=float
    )
    low, high = REPRESENTABLE
    if np.all((largest <= high) & ((largest >= low) | (largest == 0))):
        return
    nrows = values.shape[0]
    matrix = names is not None and values.ndim > 1
    magnitudes = [np.abs(c) for c, _ in entries]
    rows = [r for _, r in entries]
    problems = [
        ("infinite or NaN values", [~np.isfinite(m) for m in magnitudes]),
        (
            f"values over {high:g} in magnitude, whose squares overflow (rescale)",
            [m > high for m in magnitudes],
        ),
        (
            f"only values under {low:g} in magnitude, whose squares underflow (rescale)",
            [(m > 0) & (0 < m.max(initial=0.0) < low) for m in magnitudes],
        ),
    ]
    for problem, bad in problems:
        flagged = [k for k, flags in enumerate(bad) if flags.any()]
        if not flagged:
            continue
        where = ""
        if matrix:
            columns = [names[k] for k in flagged]
            where = f" in column{'s' if len(columns) > 1 else ''} {', '.join(map(repr, columns))}"
        bad_rows = np.zeros(nrows, dtype=bool)
        for k in flagged:
            bad_rows[bad[k] if rows[k] is None else rows[k][bad[k]]] = True
        raise ValueError(f"{what} has {problem}{where} ({int(bad_rows.sum())} of {nrows} rows)")


def _column_entries(values: np.ndarray | sp.spmatrix) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Each column's values and the rows they are in (None: every row); a sparse matrix's stored ones."""
    if sp.issparse(values):
        columns = sp.csc_matrix(values)
        bounds = zip(columns.indptr[:-1], columns.indptr[1:])
        return [(columns.data[start:stop], columns.indices[start:stop]) for start, stop in bounds]
    columns = values if values.ndim > 1 else values[:, None]
    return [(c, None) for c in columns.T]


@dataclass
class CompleteRows:
    """The input rows complete in every variable the model uses (R's ``na.omit``), column by column.

    Right-hand sides of numeric columns are materialized from ``columns`` directly; the table of those
    rows (a DataFrame) is made only when something needs one (formulaic, the model frame's ``data``): for
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

    @property
    def n_missing(self) -> int:
        """Input rows left out for a missing value."""
        return len(self.complete) - self.nrows

    def numeric(self, expr: str, what: str) -> tuple[NumericColumn, np.ndarray]:
        """A column or an expression as numbers, and its values on these rows."""
        data = self.columns if expr in self.columns else self.table
        return NumericColumn.build(data, expr, what, self.functions)

    def response(self, formula: ParsedFormula) -> tuple[NumericColumn, np.ndarray]:
        """The formula's response as numbers on these rows, checked finite (:func:`check_finite`)."""
        column, y = self.numeric(formula.response, "response")
        check_finite(y, f"response {formula.response!r}")
        return column, y

    def design(self, rhs: Rhs) -> tuple[Design, np.ndarray]:
        """The design and model matrix of a right-hand side on these rows."""
        numeric = Design.from_numeric_columns(rhs, self.columns, self.nrows)
        return Design.build(rhs, self.table, functions=self.functions) if numeric is None else numeric


def row_values(name: str, value, index: pd.Index) -> np.ndarray:
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


def given_values(weights, offset, index: pd.Index) -> dict[str, np.ndarray]:
    """``weights`` and ``offset`` given as numbers, one per row of the data (:func:`row_values`); those
    given as column names, or not at all, are left out."""
    return {
        name: row_values(name, value, index)
        for name, value in (("weights", weights), ("offset", offset))
        if value is not None and not isinstance(value, str)
    }


def complete_mask(
    columns: Mapping[str, pd.Series], extra: Mapping[str, np.ndarray], nrows: int
) -> np.ndarray:
    """Mask of the rows with a value in every column and in every array of ``extra`` (R's
    ``complete.cases``)."""
    complete = np.ones(nrows, dtype=bool)
    for column in columns.values():
        complete &= _present(column)
    for array in extra.values():
        complete &= ~np.isnan(array)
    return complete


#: pandas 3 always copies on write: a column taken from the input keeps its values when the input changes.
_COPY_ON_WRITE = int(pd.__version__.split(".")[0]) >= 3


def complete_rows(
    formula: ParsedFormula,
    data,
    weights: str | np.ndarray | None = None,
    offset: str | np.ndarray | None = None,
    functions: Mapping[str, Callable] | None = None,
    other_variables: Mapping[str, str] | None = None,
) -> CompleteRows:
    """The rows complete in every variable the model uses, with R's column types (strings and booleans
    as categories, unused categories dropped), and the weights/offset given as arrays.  ``functions``
    are the caller's own functions the formula may call; ``other_variables`` are columns the model
    uses beyond its formula (nlme's variance and correlation structures) -> where, as
    :func:`model_variables` names them (a ``"grouping factor ..."`` may have any type)."""
    functions = check_functions(functions)
    data = to_pandas(data)
    if len(data) == 0 or data.shape[1] == 0:
        raise ValueError("data has no rows" if len(data) == 0 else "data has no columns")
    variables = model_variables(formula, weights, offset, functions)
    for name, where in (other_variables or {}).items():
        variables.setdefault(name, where)
    columns = model_columns(data, variables)

    extra = given_values(weights, offset, data.index)
    complete = complete_mask(columns, extra, len(data))
    if not complete.any():
        for var, column in columns.items():
            if not _present(column).any():
                raise ValueError(f"column {var!r} (used in the {variables[var]}) has only missing values")
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
