"""lme4's parameter vector for intervals: standard deviations, correlations, sigma, fixed effects.

``confint``, ``profile`` and ``bootMer`` in lme4 (Bates et al. 2015, section 5.1) report the variance
parameters on the standard-deviation scale: per random-effects term the lower triangle of its
sd/correlation matrix column by column (standard deviations on the diagonal, correlations below it),
then the residual standard deviation, then the fixed effects.  This module converts between that
vector and (theta, sigma), and names its entries as lme4 does, ``.sig01``, ``.sig02``, ..., ``.sigma``
(``oldNames = TRUE``) or ``sd_(Intercept)|Subject``, ``cor_Days.(Intercept)|Subject``, ``sigma``.

Structured terms (``diag``, ``cs``, ``ar1``, ``toep``; no lme4 equivalent) contribute their own
parameters on the same scales: their standard deviations (``sd_<column>|g``, or ``sd|g`` for ar1's
common one) and correlation parameters (``cor|g`` for cs and ar1, ``pcor_lag<k>|g`` for toep's partial
autocorrelations), as many as theta has for the term.

gls and lme fits (nlme's residual structures) add their correlation structure's and variance function's
parameters on nlme's reported scale between the random effects' and sigma (``corStruct.Phi``,
``varStruct.power``: nlme's order in ``intervals``); an lme fit without structures has exactly the
rows of the equivalent lmer fit, and a gls fit no random-effects rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..engine.covariance import Toeplitz, Unstructured

if TYPE_CHECKING:
    from ..models.lmm import LinearMixedModel
    from .view import SimulationView

__all__ = [
    "variance_names",
    "parameter_names",
    "theta_to_sdcor",
    "sdcor_to_theta",
    "semidefinite_cholesky",
    "sdcor_bounds",
    "model_parameters",
    "theta_slices",
]


def _term_names(term, covariance) -> list[str]:
    group, columns = term.group.name, term.column_names
    if isinstance(covariance, Unstructured):
        return [
            f"sd_{columns[row]}|{group}" if row == col else f"cor_{columns[row]}.{columns[col]}|{group}"
            for row, col in zip(*covariance.positions)
        ]
    sds = [f"sd_{c}|{group}" for c in columns] if covariance.n_sd == covariance.size else [f"sd|{group}"]
    if isinstance(covariance, Toeplitz):
        return sds + [f"pcor_lag{k + 1}|{group}" for k in range(covariance.n_corr)]
    return sds + [f"cor|{group}"] * covariance.n_corr


def theta_slices(covariances) -> list[slice]:
    """The part of theta of each random-effects term."""
    bounds = np.cumsum([0] + [c.n_params for c in covariances])
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def variance_names(model: SimulationView, old_names: bool = True) -> list[str]:
    """Names of the sd/cor parameters, the residual structure's and sigma, in lme4's order."""
    structure = list(model.structure_parameters.index)
    sigma = model.has_residual_variance  # no sigma row for a binomial or Poisson GLMM, as lme4
    if old_names:
        count = len(model.theta)
        return [f".sig{i + 1:02d}" for i in range(count)] + structure + [".sigma"] * sigma
    names = [name for t, c in zip(model.frame.terms, model.covariances) for name in _term_names(t, c)]
    return names + structure + ["sigma"] * sigma


def parameter_names(model: SimulationView, old_names: bool = True) -> list[str]:
    """Names of all rows of lme4's ``confint``: variance parameters, then fixed effects."""
    return variance_names(model, old_names) + list(model.frame.fixed_names)


def theta_to_sdcor(model: SimulationView, theta: np.ndarray, sigma: float) -> np.ndarray:
    """(sd/cor of every term, sigma) from (theta, sigma), as lme4's ``Cv_to_Sv``.

    A correlation with a zero standard deviation is NaN (0/0), as in lme4.
    """
    theta = np.asarray(theta, dtype=float)
    values = []
    for covariance, part in zip(model.covariances, theta_slices(model.covariances)):
        if not isinstance(covariance, Unstructured):
            x = theta[part][covariance.n_sd :]
            values += [sigma * theta[part][: covariance.n_sd], x / np.sqrt(1.0 + x * x)]
            continue
        t = covariance.lambda_(theta[part])
        cov = sigma * sigma * (t @ t.T)
        sd = np.sqrt(np.diag(cov))
        with np.errstate(invalid="ignore", divide="ignore"):
            sdcor = cov / np.outer(sd, sd)
        sdcor[np.diag_indices_from(sdcor)] = sd
        values.append(sdcor[covariance.positions])
    return np.concatenate(values + [[sigma]])


def semidefinite_cholesky(cov: np.ndarray) -> np.ndarray | None:
    """Lower-triangular ``L`` with ``L L' = cov`` for a positive semidefinite ``cov``; None if it is not.

    Columns whose pivot vanishes (a zero standard deviation, or a correlation of +-1) are zero, which
    is how such boundary points are represented by theta.
    """
    size = cov.shape[0]
    lower = np.zeros_like(cov)
    scale = float(np.max(np.diag(cov), initial=0.0))
    tol = 1e-12 * scale
    for j in range(size):
        pivot = cov[j, j] - lower[j, :j] @ lower[j, :j]
        if pivot < -tol:
            return None
        if pivot <= tol:
            continue
        lower[j, j] = np.sqrt(pivot)
        lower[j + 1 :, j] = (cov[j + 1 :, j] - lower[j + 1 :, :j] @ lower[j, :j]) / lower[j, j]
    if np.max(np.abs(cov - lower @ lower.T), initial=0.0) > 1e-8 * scale:
        return None  # a zero pivot with nonzero entries below it: not semidefinite
    return lower


def sdcor_to_theta(model: LinearMixedModel, sdcor: np.ndarray) -> np.ndarray | None:
    """theta from (sd/cor of every term, sigma), as lme4's ``Sv_to_Cv``; None if not a covariance.

    A NaN correlation (that of a zero standard deviation, see :func:`theta_to_sdcor`) counts as 0.
    """
    sdcor = np.asarray(sdcor, dtype=float)
    sdcor = np.where(np.isnan(sdcor), 0.0, sdcor)
    sigma = sdcor[-1]
    theta = []
    for covariance, part in zip(model.covariances, theta_slices(model.covariances)):
        values = sdcor[part]
        if not isinstance(covariance, Unstructured):
            rho = values[covariance.n_sd :]
            if np.any(np.abs(rho) >= 1):
                return None
            theta += [values[: covariance.n_sd] / sigma, rho / np.sqrt(1.0 - rho * rho)]
            continue
        rows, cols = covariance.positions
        matrix = np.eye(covariance.size)
        matrix[rows, cols] = matrix[cols, rows] = values
        sd = np.diag(matrix).copy()
        cov = matrix * np.outer(sd, sd)
        cov[np.diag_indices_from(cov)] = sd * sd
        lower = semidefinite_cholesky(cov)
        if lower is None:
            return None
        theta.append(lower[rows, cols] / sigma)
    return np.concatenate(theta) if theta else np.zeros(0)  # gls: no random-effects terms


def sdcor_bounds(model: LinearMixedModel) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of (sd/cor, sigma): sd and sigma >= 0, correlations in [-1, 1] (lme4's profile)."""
    lower, upper = [], []
    for covariance in model.covariances:
        if isinstance(covariance, Unstructured):
            rows, cols = covariance.positions
            is_sd = rows == cols
        else:
            is_sd = np.arange(covariance.n_params) < covariance.n_sd
        lower.append(np.where(is_sd, 0.0, -1.0))
        upper.append(np.where(is_sd, np.inf, 1.0))
    return np.concatenate(lower + [[0.0]]), np.concatenate(upper + [[np.inf]])


def model_parameters(model: SimulationView) -> np.ndarray:
    """The fit's (sd/cor, residual structure, sigma, fixed effects): the rows of ``confint``, lme4's
    bootstrap statistic."""
    sdcor = theta_to_sdcor(model, model.theta, model.sigma)
    structure = model.structure_parameters.to_numpy()
    sigma = sdcor[-1:] if model.has_residual_variance else []
    return np.concatenate([sdcor[:-1], structure, sigma, model.fixef.to_numpy()])
