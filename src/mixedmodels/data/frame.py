"""The model frame: a fit's spec and its rows, from a parsed formula and a table.

:func:`build_frame` learns the model spec from the data (:mod:`mixedmodels.data.spec`: designs, levels
in R's order, the columns kept after the rank check, lme4's term order) and materializes the rows used
(rows with a missing value dropped and counted, as R's ``na.omit``): the response, the fixed- and
random-effects model matrices, grouping codes, prior weights and offsets, with lme4's checks of the
design.  In memory, the rows are one chunk of engine arrays (:mod:`mixedmodels.data.rows`).  The table
helpers live in :mod:`mixedmodels.data.tables`; their names are importable from here too.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

from ..engine.crossprod import CrossProducts, ReBlock, ResponseUnits
from ..errors import FormulaError, ModelMessage
from ..formula.parse import ParsedFormula, RandomTerm
from .design import Design
from .rows import RowChunk, total_offset
from .spec import MixedModelSpec, ReTerm
from .tables import (
    REPRESENTABLE,
    CompleteRows,
    NumericColumn,
    check_finite,
    complete_rows,
    formula_offset,
    numeric_vector,
    r_label,
    to_pandas,
)
from .terms import GroupingFactor, grouping_factor, independent_columns

__all__ = [
    "ModelFrame",
    "build_frame",
    "check_finite",
    "CompleteRows",
    "complete_rows",
    "formula_offset",
    "new_data",
    "numeric_vector",
    "to_pandas",
    "ModelMessage",
    "r_label",
]


@dataclass
class ModelFrame:
    """A fit's spec and its rows: everything the engine and the fitted model need to know about the data."""

    spec: MixedModelSpec
    used_rows: CompleteRows  # the rows used; ``data`` is their table
    y: np.ndarray
    x: np.ndarray
    blocks: list[ReBlock]  # the engine's arrays of each random-effects term on these rows, lme4's order
    weights: np.ndarray | None
    offset: np.ndarray | None
    n_missing: int
    messages: list[str] = field(default_factory=list)

    @property
    def formula(self) -> ParsedFormula:
        return self.spec.formula

    @property
    def terms(self) -> list[ReTerm]:
        """The random-effects terms (lme4's order), without rows: ``blocks`` holds the rows' arrays."""
        return self.spec.terms

    @property
    def fixed_design(self) -> Design:
        return self.spec.fixed_design

    @property
    def fixed_names(self) -> list[str]:
        """Names of the fixed effects, after dropping rank-deficient columns."""
        return self.spec.fixed_names

    @property
    def kept_columns(self) -> np.ndarray:
        """Indices of the fixed effects into ``fixed_design.column_names``."""
        return self.spec.kept_columns

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
        return self.spec.functions

    @property
    def design_variables(self) -> set[str]:
        """Variables the fixed- and random-effects model matrices use (not the grouping factors)."""
        return self.spec.design_variables

    def grouping_factor(self, k: int) -> GroupingFactor:
        """The grouping factor of random-effects term ``k`` with the codes of these rows."""
        group = self.terms[k].group
        return GroupingFactor(group.name, group.variables, group.levels, self.blocks[k].codes)

    def chunk(self, rows: np.ndarray | None = None) -> RowChunk:
        """The engine's arrays of all rows (in memory, one chunk), or of the rows ``rows`` index."""
        if rows is None:
            return RowChunk(self.x, self.response, self.weights, self.blocks)
        weights = None if self.weights is None else self.weights[rows]
        blocks = [block.rows(rows) for block in self.blocks]
        return RowChunk(self.x[rows], self.response[rows], weights, blocks)

    def cross_products(self, rows: np.ndarray | None = None) -> CrossProducts:
        """Blocks of [Z X y]'W[Z X y] (y less the offset) over all rows, or over the rows ``rows`` index.

        The blocks of a subset keep every level of every factor, so they add to and subtract from the
        blocks of the whole frame (influence diagnostics drop a group's rows that way).
        """
        return self.chunk(rows).cross_products(self.response_units)

    @property
    def response(self) -> np.ndarray:
        """The response less the offset: what X beta + Z b models."""
        return self.y if self.offset is None else self.y - self.offset

    @cached_property
    def response_units(self) -> ResponseUnits:
        """The units the cross-products hold the response in (one for all rows and subsets of them): the
        least-squares ones of these rows, unless a fit from chunks of rows sets the chunks' units."""
        return ResponseUnits.least_squares(self.x, self.response, self.weights)

    def fixed_matrix(self, data: pd.DataFrame) -> np.ndarray:
        """The fixed-effects columns kept in the fit, for (new) data."""
        return self.spec.fixed_matrix(data)


def new_data(
    frame: ModelFrame, newdata, random: tuple[RandomTerm, ...] = ()
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """New data for predictions (:meth:`MixedModelSpec.new_data` of the frame's spec)."""
    return frame.spec.new_data(newdata, random)


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


def _lme4_term_order(nlevels: list[int]) -> list[int]:
    """lme4's reordering of random-effects terms: ``rev(order(nl))`` when the levels ever increase."""
    if not any(b > a for a, b in zip(nlevels, nlevels[1:])):
        return list(range(len(nlevels)))
    ascending = sorted(range(len(nlevels)), key=lambda i: nlevels[i])  # stable, as R's order()
    return ascending[::-1]


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
    other_variables: Mapping[str, str] | None = None,
    allow_n: bool = False,
) -> ModelFrame:
    """Materialize ``formula`` on ``data`` with lme4's conventions and checks.

    ``require_random=False`` allows a formula without random-effects terms (gls models); ``functions``
    are the caller's own functions the formula may call (``{"logit": logit}``); ``other_variables``
    are columns the model uses beyond its formula -> where (:func:`complete_rows`); ``allow_n``: as
    lme4's ``allow.n`` for glmer, a grouping factor may have as many levels (and a term as many random
    effects) as there are observations (observation-level random effects).
    """
    if require_random and not formula.random:
        raise FormulaError(
            f"no random-effects terms in {formula.text!r}; use (expr | group), e.g. (1 | subject)"
        )
    rows = complete_rows(formula, data, weights, offset, functions, other_variables)
    complete = rows.complete
    response, y = rows.response(formula)

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
    message = _check_scale(x)
    if message:
        messages.append(message)
        warnings.warn(message, UserWarning, stacklevel=3)

    materialized: list[tuple[ReTerm, GroupingFactor, np.ndarray]] = []
    nobs = rows.nrows
    designs = {formula.fixed: (fixed_design, x_full)}  # (x | g) terms often repeat the fixed effects
    for term in formula.random:
        if term.lhs not in designs:
            designs[term.lhs] = rows.design(term.lhs)
        design, z = designs[term.lhs]
        if z.shape[1] == 0:
            raise FormulaError(f"random-effects term ({term.lhs.text} | {term.group}) has no columns")
        check_finite(z, f"model matrix of ({term.lhs.text} | {term.group})", design.column_names)
        if term.structure in ("ar1", "toep"):
            _check_levels_structure(term, design)
        group = grouping_factor(rows.columns, term.variables, term.group)
        materialized.append((ReTerm(term, design, group.group_levels), group, z))
    for t, group, _ in materialized:
        if group.nlevels < 2:
            raise ValueError(f"grouping factor {group.name!r} must have more than 1 sampled level")
        if group.nlevels > nobs or (group.nlevels == nobs and not allow_n):
            relation = "at most" if allow_n else "less than"
            raise ValueError(
                f"number of levels of grouping factor {group.name!r} ({group.nlevels}) must be {relation} "
                f"the number of observations ({nobs})"
            )
        q = group.nlevels * t.ncols
        if nobs < q or (nobs == q and not allow_n):
            raise ValueError(
                f"number of observations (={nobs}) <= number of random effects (={q}) for term "
                f"{t.describe()}; the random-effects parameters are probably unidentifiable"
            )
    order = _lme4_term_order([group.nlevels for _, group, _ in materialized])
    materialized = [materialized[i] for i in order]

    prior_weights = rows.extra.get("weights")
    weights_column = None
    if isinstance(weights, str):
        weights_column, prior_weights = rows.numeric(weights, "weights")
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

    given_offset = rows.extra.get("offset")
    offset_column = None
    if given_offset is not None:
        given_offset = given_offset[complete]
    elif isinstance(offset, str):
        offset_column, given_offset = rows.numeric(offset, "offset")
    formula_offsets = [
        NumericColumn.build(rows.table, expr, "offset", rows.functions) for expr in formula.offsets
    ]
    offset_values = total_offset(given_offset, [values for _, values in formula_offsets])
    if offset_values is not None:
        check_finite(offset_values, "offset")

    spec = MixedModelSpec(
        formula=formula,
        response=response,
        fixed_design=fixed_design,
        kept_columns=kept,
        terms=[t for t, _, _ in materialized],
        weights=weights_column,
        offset=offset_column,
        formula_offsets=[column for column, _ in formula_offsets],
        column_types={var: column.dtype for var, column in rows.columns.items()},
        functions=rows.functions,
    )
    return ModelFrame(
        spec=spec,
        used_rows=rows,
        y=y,
        x=x,
        blocks=[ReBlock(group.codes, z, group.nlevels) for _, group, z in materialized],
        weights=prior_weights,
        offset=offset_values,
        n_missing=rows.n_missing,
        messages=messages,
    )
