"""Satterthwaite's denominator degrees of freedom for linear combinations of fixed effects.

For a contrast vector l, with C the fixed effects' covariance, A the asymptotic covariance of the
variance parameters and g_i = l' (dC / d varpar_i) l:  df = 2 (l' C l)^2 / (g' A g).  For a matrix L
(an F test) the rows are first rotated to the eigenvectors of L C L' and the per-direction df combined
as in Fai and Cornelius (1996), which is what lmerTest's ``contestMD`` does.
"""

from __future__ import annotations

import numpy as np

from .varpar import VarianceParameters

__all__ = ["satterthwaite_df", "satterthwaite_f_test", "combine_df"]


def satterthwaite_df(varpar: VarianceParameters, contrast: np.ndarray) -> float:
    """Degrees of freedom of ``contrast @ beta``."""
    contrast = np.asarray(contrast, dtype=float)
    variance = contrast @ varpar.model.vcov.to_numpy() @ contrast
    gradient = np.einsum("a,iab,b->i", contrast, varpar.vcov_jacobian, contrast)
    return float(2.0 * variance**2 / (gradient @ varpar.covariance @ gradient))


def combine_df(nu: np.ndarray, tol: float = 1e-8) -> float:
    """Denominator df of an F test from the df of its orthogonal directions (lmerTest's rule)."""
    nu = np.asarray(nu, dtype=float)
    if nu.size == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(nu.mean())
    if np.any(nu <= 2):
        return 2.0
    expectation = np.sum(nu / (nu - 2))
    return float(2 * expectation / (expectation - nu.size))


def satterthwaite_f_test(varpar: VarianceParameters, contrasts: np.ndarray) -> tuple[float, int, float]:
    """F statistic, numerator and denominator df for H0: ``contrasts @ beta = 0``."""
    contrasts = np.atleast_2d(np.asarray(contrasts, dtype=float))
    beta = varpar.model.fixef.to_numpy()
    cov = contrasts @ varpar.model.vcov.to_numpy() @ contrasts.T
    values, vectors = np.linalg.eigh(cov)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    keep = values > max(np.finfo(float).eps ** 0.5 * values[0], 0.0)
    rotated = vectors[:, keep].T @ contrasts
    values = values[keep]
    statistic = float(np.sum((rotated @ beta) ** 2 / values) / keep.sum())
    nu = [satterthwaite_df(varpar, row) for row in rotated]
    return statistic, int(keep.sum()), combine_df(np.asarray(nu))
