"""Satterthwaite's denominator degrees of freedom for linear combinations of fixed effects.

For a contrast vector l, with C the fixed effects' covariance, A the asymptotic covariance of the
variance parameters and g_i = l' (dC / d varpar_i) l:  df = 2 (l' C l)^2 / (g' A g).  For a matrix L
(an F test) the rows are first rotated to the eigenvectors of L C L' and the per-direction df combined
as in Fai and Cornelius (1996), which is what lmerTest's ``contestMD`` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .view import InferenceView, VarianceParameterView

__all__ = ["satterthwaite_df", "satterthwaite_f_test", "combine_df", "independent_contrasts", "wald_f"]


def satterthwaite_df(varpar: VarianceParameterView, contrast: np.ndarray) -> float:
    """Degrees of freedom of ``contrast @ beta``."""
    contrast = np.asarray(contrast, dtype=float)
    variance = contrast @ varpar.vcov @ contrast
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


def independent_contrasts(contrasts: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``contrasts`` rotated to the eigenvectors of ``L C L'`` with positive eigenvalues.

    Returns the rotated rows (one per dimension of the hypothesis; their number is the numerator df)
    and their variances, the eigenvalues, as lmerTest's ``contestMD`` (eigenvalues within sqrt(eps) of
    the largest count as zero).
    """
    contrasts = np.atleast_2d(np.asarray(contrasts, dtype=float))
    values, vectors = np.linalg.eigh(contrasts @ cov @ contrasts.T)
    order = np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    keep = values > max(np.finfo(float).eps ** 0.5 * values[0], 0.0)
    return vectors[:, keep].T @ contrasts, values[keep]


def wald_f(beta: np.ndarray, rotated: np.ndarray, variances: np.ndarray) -> float:
    """The Wald F statistic, mean of the squared t statistics of the independent contrasts."""
    return float(np.sum((rotated @ beta) ** 2 / variances) / len(variances))


def satterthwaite_f_test(model: InferenceView, contrasts: np.ndarray) -> tuple[float, int, float]:
    """F statistic, numerator and denominator df for H0: ``contrasts @ beta = 0``.

    The statistic uses the covariance the model reports, the df that of its variance parameters'
    function (they differ by a constant factor for nlme's gls fitted by ML, which leaves the df as
    they are)."""
    rotated, variances = independent_contrasts(contrasts, model.vcov.to_numpy())
    if len(variances) == 0:
        return np.nan, 0, np.nan
    statistic = wald_f(model.fixef.to_numpy(), rotated, variances)
    nu = [satterthwaite_df(model.varpar, row) for row in rotated]
    return statistic, len(variances), combine_df(np.asarray(nu))
