"""nlme's denominator degrees of freedom for the fixed effects of an lme fit (``getFixDF``).

Pinheiro & Bates (2000, section 2.4.2): a fixed effect is estimated at the innermost grouping level
within whose groups its column varies ("inner" to that level); its degrees of freedom are those of
that stratum, ``groups at the level - groups at the level above - number of columns estimated there``
(the residual stratum: ``N - innermost groups - columns``), with the intercept taken from the outermost
stratum and given the largest of them.
"""

from __future__ import annotations

import numpy as np

from .groups import GroupLayout

__all__ = ["fixed_effects_df"]


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


def fixed_effects_df(x: np.ndarray, level_codes: list[np.ndarray]) -> np.ndarray:
    """Degrees of freedom of each column of ``x`` (rows sorted by group; codes outermost level first)."""
    n, p = x.shape
    ngroups = [len(np.unique(codes)) for codes in level_codes]
    df = np.array(ngroups + [n], dtype=float) - np.array([0] + ngroups, dtype=float)
    values = np.zeros(p)
    varying = np.array([not _constant(x[:, j]) for j in range(p)])
    if varying.any():
        inner = np.ones((p, len(level_codes) + 1))
        for i, codes in enumerate(level_codes):
            for j in range(p):
                inner[j, i + 1] = _inner_fraction(x[:, j], codes)
        stratum = np.array([np.max(np.flatnonzero(row > 0)) for row in inner])
        counts = np.bincount(stratum[varying], minlength=len(df))
        df = df - counts
        if not varying.all():
            df[0] -= 1
        else:
            df[1:] += 1
        values[varying] = df[stratum[varying]]
    if not varying.all():
        values[~varying] = df.max()
    return values
