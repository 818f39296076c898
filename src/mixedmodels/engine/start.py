"""Starting values for theta from moment equations on the cross-product blocks.

Each column ``c`` of each random-effects term is treated as an independent variance component
``s_c^2``.  With ``r`` the ordinary least-squares residuals and ``Z_c`` the column's part of Z,

    E ||Z_c' r||^2 ~= sum_d s_d^2 ||Z_c' Z_d||_F^2 + sigma^2 ||Z_c||^2,
    E ||r||^2      ~= sum_d s_d^2 ||Z_d||^2 + n sigma^2,

(ignoring the fitted fixed effects) is a small linear system solved for the components; the start is
``sqrt(s_c^2 / sigma^2)`` on the diagonal of each T and 0 elsewhere, kept within bounds in the column's
natural units (``sqrt(s_c^2 / sigma^2)`` times the column's root mean square), so that the start does not
depend on the units of a covariate.  Everything comes from the blocks,
so it costs nothing that grows with the number of rows.  BOBYQA from this start needs far fewer
evaluations on large crossed designs than from lme4's start (T = I).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from .covariance import CovarianceStructure
from .crossprod import CrossProducts

__all__ = ["moment_start", "column_rms", "parameter_scale", "start_and_step"]


def _squared_sums_by_column(block: sp.spmatrix | np.ndarray, p_rows: int, p_cols: int) -> np.ndarray:
    """Sum of squared entries of ``block`` grouped by (row % p_rows, column % p_cols)."""
    coo = sp.coo_matrix(block)
    out = np.zeros((p_rows, p_cols))
    np.add.at(out, (coo.row % p_rows, coo.col % p_cols), coo.data**2)
    return out


def column_rms(cross: CrossProducts) -> list[np.ndarray]:
    """Per term, the (weighted) root mean square of each of its Z columns over the rows, from Z'WZ; 1
    for a column of zeros (it has no units to speak of)."""
    roots = [np.sqrt(np.einsum("laa->a", block) / cross.nobs) for block in cross.diag]
    return [np.where(root > 0, root, 1.0) for root in roots]


def moment_start(cross: CrossProducts, nfixed: int, minimum: float = 0.05) -> list[np.ndarray]:
    """Diagonal starting values of each term's relative covariance factor (one vector per term)."""
    sizes = [d.shape[1] for d in cross.diag]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    ncomp = offsets[-1]
    xx, xy_, yy = cross.xy[:nfixed, :nfixed], cross.xy[:nfixed, nfixed], cross.xy[nfixed, nfixed]
    beta = np.linalg.lstsq(xx, xy_, rcond=None)[0] if nfixed else np.zeros(0)
    rss = yy - xy_ @ beta

    coef = np.zeros((ncomp + 1, ncomp + 1))
    rhs = np.zeros(ncomp + 1)
    for k, diag in enumerate(cross.diag):
        p = sizes[k]
        zr = (cross.xyz[k][nfixed] - beta @ cross.xyz[k][:nfixed]).reshape(-1, p)
        rows = slice(offsets[k], offsets[k + 1])
        rhs[rows] = np.sum(zr**2, axis=0)
        coef[rows, rows] = np.einsum("lab,lab->ab", diag, diag)
        norms = np.einsum("laa->a", diag)
        coef[rows, ncomp] = norms
        coef[ncomp, rows] = norms
        for j in range(k):
            cols = slice(offsets[j], offsets[j + 1])
            block = _squared_sums_by_column(cross.off[k, j], p, sizes[j])
            coef[rows, cols] = block
            coef[cols, rows] = block.T
    coef[ncomp, ncomp] = cross.nobs
    rhs[ncomp] = rss
    solution = np.linalg.lstsq(coef, rhs, rcond=None)[0]
    sigma2 = solution[ncomp] if solution[ncomp] > 0 else rss / max(cross.nobs - nfixed, 1)
    mean_squares = np.concatenate(column_rms(cross)) ** 2
    ratios = np.sqrt(np.clip(solution[:ncomp] * mean_squares / sigma2, minimum**2, 1e4) / mean_squares)
    return [ratios[offsets[k] : offsets[k + 1]] for k in range(len(sizes))]


def parameter_scale(covariances: Sequence[CovarianceStructure], cross: CrossProducts) -> np.ndarray:
    """The natural unit of each covariance parameter.

    Row ``a`` of a term's T is in units of ``1 / rms(Z_a)`` (the column's weighted root mean square
    over the rows): dividing a column of Z by a number multiplies its row of T by it.  An optimizer and
    boundary checks that work on ``theta / parameter_scale`` see the same problem whatever the units of
    a covariate.
    """
    parts = [covariance.parameter_scale(1.0 / rms) for covariance, rms in zip(covariances, column_rms(cross))]
    return np.concatenate(parts) if parts else np.zeros(0)


def start_and_step(
    covariances: Sequence[CovarianceStructure], cross: CrossProducts, nfixed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Moment-based starting parameters and BOBYQA's initial step for each.

    The step is a fifth of the parameter, or of the mean of its term's diagonal where that is larger, in
    natural units (:func:`parameter_scale`); a quarter for correlation parameters.
    """
    diagonals = moment_start(cross, nfixed)
    x0 = np.concatenate([c.from_diagonal(d) for c, d in zip(covariances, diagonals)])
    scale = parameter_scale(covariances, cross)
    natural = x0 / scale
    edges = np.cumsum([0] + [c.n_params for c in covariances])
    term_scale = np.repeat([np.mean(natural[a:b]) for a, b in zip(edges[:-1], edges[1:])], np.diff(edges))
    is_scale = np.concatenate([c.is_scale for c in covariances])
    return x0, np.where(is_scale, 0.2 * np.maximum(np.abs(natural), term_scale), 0.25) * scale
