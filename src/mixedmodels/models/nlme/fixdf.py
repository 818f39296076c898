"""nlme's denominator degrees of freedom for the fixed effects of an lme fit (``getFixDF``).

Pinheiro & Bates (2000, section 2.4.2): a fixed effect is estimated at the innermost grouping level
within whose groups its column varies ("inner" to that level); its degrees of freedom are those of
that stratum, ``groups at the level - groups at the level above - number of columns estimated there``
(the residual stratum: ``N - innermost groups - columns``), with the intercept taken from the outermost
stratum and given the largest of them.  The F test of a term (``anova``) uses the same rule with the
term as the unit: it is estimated in the innermost stratum of its columns, and all its columns count
against that stratum (nlme's ``fixDF$terms``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

from ...data.frame import ModelFrame
from ...inference.anova import INTERCEPT, FixedTerms
from .groups import GroupLayout

__all__ = ["fixed_effects_df", "t_table", "term_columns"]


def term_columns(frame: ModelFrame) -> dict[str, np.ndarray]:
    """nlme's ``assign``: the columns of X of each fixed-effects term, ``"(Intercept)"`` first, in the
    formula's term order; terms without columns in X (dropped as collinear) are left out."""
    terms = FixedTerms(frame.fixed_design, frame.kept_columns)
    labels = ([INTERCEPT] if terms.has_intercept else []) + terms.labels
    return {label: terms.columns[label] for label in labels if len(terms.columns[label])}


def _constant(column: np.ndarray, tolerance: float = np.sqrt(np.finfo(float).eps)) -> bool:
    if column[0] == 0:
        return bool(np.all(np.abs(column) < tolerance))
    return bool(np.all(np.abs(column / column[0] - 1) < tolerance))


def _inner_fraction(column: np.ndarray, codes: np.ndarray) -> float:
    """Fraction of the groups (contiguous runs of ``codes``) within which ``column`` varies."""
    layout = GroupLayout.from_codes(codes)
    first = np.repeat(column[layout.starts], layout.lengths)
    varies = np.zeros(len(layout.starts), dtype=bool)
    group = np.repeat(np.arange(len(layout.starts)), layout.lengths)
    np.logical_or.at(varies, group, column != first)
    return float(varies.mean())


def _stratum_df(base: np.ndarray, strata: np.ndarray, sizes: np.ndarray, varying: np.ndarray) -> np.ndarray:
    """The df of units (columns or terms) estimated in ``strata`` (0 = outermost, last = residual),
    each using ``sizes`` df of its stratum; units that do not vary (the intercept) get the largest."""
    df = base.astype(float)
    values = np.zeros(len(strata))
    if varying.any():
        df -= np.bincount(strata[varying], weights=sizes[varying], minlength=len(df))
        if not varying.all():
            df[0] -= 1
        else:
            df[1:] += 1
        values[varying] = df[strata[varying]]
    values[~varying] = df.max()
    return values


def fixed_effects_df(
    x: np.ndarray, level_codes: list[np.ndarray], terms: Mapping[str, np.ndarray]
) -> tuple[np.ndarray, dict[str, float]]:
    """Degrees of freedom of each column of ``x`` and of each term (``terms``: a term's columns), as
    nlme's ``fixDF$X`` and ``fixDF$terms``.  Rows sorted by group; codes outermost level first."""
    n, p = x.shape
    ngroups = [len(np.unique(codes)) for codes in level_codes]
    base = np.array(ngroups + [n], dtype=float) - np.array([0] + ngroups, dtype=float)
    varying = np.array([not _constant(x[:, j]) for j in range(p)])
    strata = np.zeros(p, dtype=int)
    if varying.any():
        inner = np.ones((p, len(level_codes) + 1))
        for i, codes in enumerate(level_codes):
            for j in range(p):
                inner[j, i + 1] = _inner_fraction(x[:, j], codes)
        strata = np.array([np.max(np.flatnonzero(row > 0)) for row in inner])
    columns = _stratum_df(base, strata, np.ones(p), varying)
    term_values = _stratum_df(
        base,
        np.array([strata[c].max() for c in terms.values()], dtype=int),
        np.array([len(c) for c in terms.values()], dtype=float),
        np.array([varying[c].any() for c in terms.values()], dtype=bool),
    )
    return columns, dict(zip(terms, term_values))


def t_table(names: list[str], estimate: np.ndarray, se: np.ndarray, df: np.ndarray) -> pd.DataFrame:
    """nlme's ``summary`` table: Estimate, Std. Error, df, t value and two-sided Pr(>|t|)."""
    t = estimate / se
    return pd.DataFrame(
        {
            "Estimate": estimate,
            "Std. Error": se,
            "df": df,
            "t value": t,
            "Pr(>|t|)": 2 * stats.t.sf(np.abs(t), df),
        },
        index=names,
    )
