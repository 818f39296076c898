"""The model spec: what a fit learned from its data that other rows are materialized with.

Small and picklable, apart from the rows: the parsed formula; the response, weights and offsets as
columns or expressions (with the state of their transforms); the fixed-effects design (formulaic's
ModelSpec, contrasts and transforms fixed) and the columns kept after the rank check; the random-effects
terms in lme4's order with their designs and the levels of their grouping factors in R's order; the
types of the columns the fit saw (factor levels).  That is enough to make the engine's arrays of any
rows: a chunk of the same data (:mod:`.rows`) or new data for predictions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..engine.crossprod import ReBlock
from ..formula.parse import ParsedFormula, RandomTerm
from .design import Design, is_number_dtype
from .tables import NumericColumn, joined_labels, model_columns, model_variables, r_label, to_pandas

__all__ = ["GroupLevels", "ReTerm", "MixedModelSpec"]


@dataclass
class GroupLevels:
    """A grouping factor's name (``"a:b"`` for interactions), its variables and its level labels in R's
    order: what the rows' codes index."""

    name: str
    variables: tuple[str, ...]
    levels: pd.Index

    @property
    def nlevels(self) -> int:
        return len(self.levels)

    def labels_for(self, data: pd.DataFrame) -> pd.Index:
        """R's level labels of (new) rows, ``a:b`` for interactions."""
        return joined_labels(data, self.variables, ":")

    def codes_for(self, data: pd.DataFrame) -> np.ndarray:
        """Codes of new rows; -1 where the level was not seen when fitting."""
        return self.levels.get_indexer(self.labels_for(data))


@dataclass(frozen=True)
class ReTerm:
    """One ``(lhs | group)`` term as the spec knows it: its design and its grouping factor's levels."""

    term: RandomTerm
    design: Design
    group: GroupLevels

    @property
    def column_names(self) -> list[str]:
        return self.design.column_names

    @property
    def ncols(self) -> int:
        return len(self.design.column_names)

    def describe(self) -> str:
        return f"({self.term.lhs.text} | {self.group.name})"

    def block(self, data: pd.DataFrame, leveled: pd.DataFrame) -> ReBlock:
        """The engine's view of the term on rows ``data`` (``leveled``: the same rows with the fit's factor
        levels, :meth:`MixedModelSpec.with_fit_levels`)."""
        return ReBlock(self.group.codes_for(data), self.design.matrix(leveled), self.group.nlevels)


@dataclass
class MixedModelSpec:
    """Everything but the rows: how to turn rows into the arrays of the fitted model.  It pickles when the
    caller's formula functions (``functions=``) do, e.g. module-level functions rather than lambdas."""

    formula: ParsedFormula
    response: NumericColumn
    fixed_design: Design
    kept_columns: np.ndarray  # indices into fixed_design.column_names left after the rank check
    terms: list[ReTerm]  # lme4's order
    weights: NumericColumn | None  # prior weights given as a column (numbers given are rows)
    offset: NumericColumn | None  # an offset given as a column (numbers given are rows)
    formula_offsets: list[NumericColumn]  # the formula's offset(...) terms
    column_types: dict[str, object]  # dtype of each variable on the fit's rows (categories: their levels)
    functions: dict[str, Callable] = field(default_factory=dict)  # the caller's own formula functions

    @property
    def fixed_names(self) -> list[str]:
        """Names of the fixed effects (the kept columns)."""
        return [self.fixed_design.column_names[i] for i in self.kept_columns]

    @property
    def design_variables(self) -> set[str]:
        """Variables the fixed- and random-effects model matrices use (not the grouping factors)."""
        names = set(self.formula.fixed.names[0])
        for term in self.formula.random:
            names.update(term.lhs.names[0])
        return names

    @property
    def variables(self) -> dict[str, str]:
        """Variables the model uses -> where (the response, weights and offset columns included)."""
        return model_variables(
            self.formula,
            None if self.weights is None else self.weights.expr,
            None if self.offset is None else self.offset.expr,
            self.functions,
        )

    def fixed_matrix(self, data: pd.DataFrame) -> np.ndarray:
        """The fixed-effects columns kept in the fit, for (new) data with the fit's levels."""
        return self.fixed_design.matrix(data)[:, self.kept_columns]

    def new_data(self, newdata, random: tuple[RandomTerm, ...] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
        """New data for predictions: the table, and a copy whose factors carry the fit's levels.

        Every column the fixed effects, the formula's offset and the random terms ``random`` use must be
        there, numeric where the fit's column was numeric.
        """
        data = to_pandas(newdata)
        formula = self.formula.with_random(random)
        variables = model_variables(formula, None, None, self.functions, response=False)
        columns = model_columns(data, variables, "newdata")
        for var, column in columns.items():
            fitted = self.column_types.get(var)
            if isinstance(fitted, np.dtype) and fitted.kind in "iufc" and not is_number_dtype(column.dtype):
                raise TypeError(
                    f"column {var!r} of newdata has type {column.dtype}, but the model was fitted to numbers"
                )
        return data, self.with_fit_levels(data)

    def with_fit_levels(self, data: pd.DataFrame) -> pd.DataFrame:
        """Rows whose categorical columns carry the fit's categories (so contrasts line up).

        Values are matched to the fit's levels by R's labels (``TRUE``, ``2``).  A level the fit has not
        seen is an error in a column the model matrices use (no coefficient exists for it) and missing in
        a column used only for grouping (its random effects are then those of a new level).
        """
        data = data.copy()
        used = self.design_variables
        for column, dtype in self.column_types.items():
            if column not in data.columns or not isinstance(dtype, pd.CategoricalDtype):
                continue
            categories = dtype.categories
            values = data[column].astype(object)
            if all(isinstance(c, str) for c in categories):
                values = values.map(lambda v: v if isinstance(v, str) or pd.isna(v) else r_label(v))
            unseen = values.notna() & ~values.isin(categories)
            if unseen.any():
                if column in used:
                    levels = ", ".join(map(str, sorted(set(values[unseen]), key=str)[:10]))
                    raise ValueError(f"newdata has levels of factor {column!r} not seen in the fit: {levels}")
                values = values.where(~unseen)
            data[column] = pd.Categorical(values, categories=categories, ordered=dtype.ordered)
        return data
