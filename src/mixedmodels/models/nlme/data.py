"""From a formula, the structures and a table to the sorted arrays of a gls or lme model.

nlme sorts the rows by the grouping factors (outermost first, stably, as R's ``order()``) before it
does anything else; the order matters for the reference stratum of ``VarIdent`` and the positions
used by correlation structures without a covariate.  This module does the same sort and keeps the
permutation so that results come back in the input's row order.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...data.frame import ModelFrame, build_frame
from ...data.tables import joined_labels, to_pandas
from ...data.terms import grouping_factor
from ...errors import FormulaError
from ...formula.nlme import with_random_argument
from ...formula.parse import parse_formula
from .corstruct import CorStruct
from .groups import GroupLayout, sort_order
from .varfunc import VarComb, VarFixed, VarFunc

__all__ = ["PreparedData", "prepare"]


@dataclass
class RandomLevel:
    """One nlme grouping level (a grouping factor) and the random-effects terms on it."""

    name: str  # nlme's name: the innermost variable ("Variety" for Block/Variety)
    variables: tuple[str, ...]  # the factor's variables, innermost first (lme4's b:a order)
    term_indices: list[int]  # indices into frame.terms
    labels: np.ndarray  # nlme's label of each level of the factor, by code ("I/Victory")


@dataclass
class PreparedData:
    frame: ModelFrame
    order: np.ndarray  # sorted position -> row of frame.data
    levels: list[RandomLevel]  # outermost first (lme only)
    varfunc: VarFunc | None
    corstruct: CorStruct | None
    index: pd.Index  # the input's index of the rows used, in the order of frame.data

    @property
    def nobs(self) -> int:
        return self.frame.nobs

    @property
    def x(self) -> np.ndarray:
        return self.frame.x[self.order]

    @property
    def y(self) -> np.ndarray:
        return self.frame.y[self.order]

    def unsort(self, values: np.ndarray) -> np.ndarray:
        """Sorted-order values back in the order of ``frame.data``."""
        out = np.empty_like(values)
        out[self.order] = values
        return out


def _as_varfunc(weights) -> VarFunc | None:
    if weights is None or isinstance(weights, VarFunc):
        return weights
    if isinstance(weights, str):
        return VarFixed(weights)  # as nlme's varFunc(): a formula means varFixed
    raise TypeError(
        "weights must be a variance function (VarIdent, VarPower, ...) or a formula, "
        f"not {type(weights).__name__}"
    )


def _uses(what: str, structure: VarFunc | CorStruct | None) -> dict[str, str]:
    """Columns of a variance function or correlation structure -> where they are used (for messages);
    its grouping variables, as grouping factors, may have any type."""
    if structure is None:
        return {}
    if isinstance(structure, VarComb):
        return {name: where for part in structure.functions for name, where in _uses(what, part).items()}
    where = f"{what} ({structure!r})"
    form = structure.form
    return {
        name: f"grouping factor of the {where}" if name in form.groups else where for name in form.variables
    }


def _nested_within(inner: np.ndarray, outer: np.ndarray) -> bool:
    """Does every group of ``inner`` lie within one group of ``outer``?"""
    pairs = np.unique(np.column_stack([inner, outer]), axis=0)
    return len(pairs) == len(np.unique(inner))


def prepare(
    formula: str,
    data,
    random: str | None,
    weights,
    correlation: CorStruct | None,
    functions: Mapping[str, Callable] | None = None,
) -> PreparedData:
    """Model frame, nlme's row order and the residual groups for gls (``random=None``) or lme;
    ``functions`` are the caller's own functions the formulas may call."""
    varfunc = _as_varfunc(weights)
    if correlation is not None and not isinstance(correlation, CorStruct):
        raise TypeError(
            f"correlation must be a correlation structure (CorAR1, ...), not {type(correlation).__name__}"
        )
    original = to_pandas(data)
    table = original.reset_index(drop=True)
    structure_uses = {**_uses("weights", varfunc), **_uses("correlation", correlation)}
    missing = [name for name in structure_uses if name not in table.columns]
    if missing:
        details = ", ".join(f"{name!r} in {structure_uses[name]}" for name in missing)
        raise ValueError(f"unknown column {details}; data has columns {list(table.columns)}")
    parsed = parse_formula(formula)
    if random is None and parsed.random:
        raise FormulaError("gls formulas have no random-effects terms; use lme for them")
    if random is not None:
        parsed = with_random_argument(parsed, random)
    if parsed.offsets:
        raise FormulaError("offset() terms are not supported by gls and lme (as in nlme)")
    frame = build_frame(
        parsed, table, require_random=random is not None, functions=functions, other_variables=structure_uses
    )
    rows = frame.data.index.to_numpy()
    structure_data = table.loc[rows, list(structure_uses)].reset_index(drop=True)

    keys: list[np.ndarray] = []
    levels: list[RandomLevel] = []
    factors = {}
    for k, term in enumerate(frame.terms):
        factors.setdefault(term.group.name, (frame.grouping_factor(k), []))[1].append(k)
    by_size = sorted(factors.values(), key=lambda item: item[0].nlevels)  # outermost first (stable)
    keys.extend(factor.codes for factor, _ in by_size)
    corr_codes = None
    if correlation is not None and correlation.form.groups:
        corr_codes = grouping_factor(table.loc[rows], correlation.form.groups, "correlation").codes
    residual_codes = None
    if by_size:
        inner = by_size[-1][0].codes
        residual_codes = inner
        if corr_codes is not None:
            if _nested_within(corr_codes, inner):
                residual_codes = corr_codes
                keys.append(corr_codes)
            elif _nested_within(inner, corr_codes):
                warnings.warn(
                    "cannot use smaller level of grouping for 'correlation' than for 'random'. "
                    "Replacing the former with the latter.",
                    UserWarning,
                    stacklevel=3,
                )
            else:
                raise ValueError("incompatible formulas for groups in 'random' and 'correlation'")
        for factor, _ in by_size if correlation is not None else ():
            if not _nested_within(residual_codes, factor.codes):
                raise ValueError(
                    f"the correlation groups must lie within the levels of every grouping factor; "
                    f"{factor.name!r} is crossed with them"
                )
    elif corr_codes is not None:
        residual_codes = corr_codes
        keys.append(corr_codes)
    order = sort_order(keys, frame.nobs)
    structure_data = structure_data.iloc[order].reset_index(drop=True)

    for factor, indices in by_size:
        first_rows = np.unique(factor.codes, return_index=True)[1]  # one row of each level, by code
        # outermost first: "Block/Variety" labels "I/Victory"
        labels = joined_labels(frame.data.iloc[first_rows], reversed(factor.variables), "/").to_numpy(
            dtype=str
        )
        levels.append(RandomLevel(factor.variables[0], factor.variables, indices, labels))

    bound_corr = None
    if correlation is not None:  # the residual groups, contiguous in the sorted rows
        codes = np.zeros(frame.nobs, dtype=np.int64) if residual_codes is None else residual_codes[order]
        bound_corr = correlation.bind(structure_data, GroupLayout.from_codes(codes), frame.functions)
    bound_var = varfunc.bind(structure_data, frame.functions) if varfunc is not None else None
    index = original.index[rows]
    return PreparedData(frame, order, levels, bound_var, bound_corr, index)
