"""The fit as a function of its variance parameters (theta, sigma), for degrees-of-freedom methods.

lmerTest's Satterthwaite method (Kuznetsova et al. 2017, J. Stat. Softw. 82(13)) needs the asymptotic
covariance of the variance parameters ``varpar = (theta, sigma)``, ``A = 2 H^{-1}`` with ``H`` the Hessian
of the (REML or ML, as fitted) deviance in ``varpar``, and the derivatives of the fixed effects'
covariance ``C(varpar) = sigma^2 (R_X' R_X)^{-1}`` in ``varpar``.

Both are explicit in sigma.  With ``d(theta) = log|L_RE|^2 (+ log|R_X|^2 for REML)`` and
``r(theta) = pwrss``,

    deviance(theta, sigma) = d(theta) + r(theta) / sigma^2 + dof log(2 pi sigma^2) - sum(log w)
                             (:func:`mixedmodels.engine.deviance.deviance_at_sigma`),

so only d, r and (R_X'R_X)^{-1} are differenced in theta (one stencil, :func:`.numdiff.derivatives`)
and every derivative involving sigma is written out.  Each stencil point is one update of the blocked
factor on the fit's cross-products, so nothing grows with the number of rows.
"""

from __future__ import annotations

import warnings
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from ..engine.deviance import ProfiledObjective, deviance_at_sigma, factor_logdet, residual_dof
from ..engine.optimize import ConvergenceWarning
from .numdiff import derivatives

if TYPE_CHECKING:
    from ..lmm import LinearMixedModel

__all__ = ["VarianceParameters"]


class VarianceParameters:
    """Deviance and fixed-effects covariance of a fitted model as functions of (theta, sigma)."""

    def __init__(self, model: LinearMixedModel):
        self.model = model
        # a factor of its own, so the fitted model's factor keeps the optimum
        self.objective = ProfiledObjective(model.chol.copy(), model.covariances, model.reml)
        self.estimate = np.append(model.theta, model.sigma)
        self._dof = residual_dof(model.cross.nobs, model.n_fixed, model.reml)

    def _theta_parts(self, theta: np.ndarray) -> np.ndarray:
        """[d(theta), r(theta), (R_X'R_X)^{-1} flattened]; NaN where the factor is not positive definite."""
        nfixed = self.model.n_fixed
        if not self.objective.update(theta):
            return np.full(2 + nfixed * nfixed, np.nan)
        factor = self.objective.factor
        logdet = factor_logdet(factor, self.model.reml)
        return np.concatenate([[logdet, factor.pwrss()], factor.inverse_fixed_crossprod().ravel()])

    def deviance(self, varpar: np.ndarray) -> float:
        """-2 log-likelihood (restricted, for REML fits) at theta = varpar[:-1], sigma = varpar[-1]."""
        logdet, pwrss = self._theta_parts(np.asarray(varpar[:-1], dtype=float))[:2]
        if np.isnan(logdet):
            return np.inf
        return deviance_at_sigma(varpar[-1], pwrss, self._dof, logdet, self.model.cross.sum_log_weights)

    def vcov_beta(self, varpar: np.ndarray) -> np.ndarray:
        """sigma^2 (R_X' R_X)^{-1} at varpar."""
        nfixed = self.model.n_fixed
        inverse = self._theta_parts(np.asarray(varpar[:-1], dtype=float))[2:].reshape(nfixed, nfixed)
        return varpar[-1] ** 2 * inverse

    @cached_property
    def _theta_derivatives(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return derivatives(self._theta_parts, self.estimate[:-1])

    @cached_property
    def hessian(self) -> np.ndarray:
        """Hessian of the deviance in varpar = (theta, sigma) at the estimate."""
        value, gradient, second = self._theta_derivatives
        sigma = self.estimate[-1]
        pwrss = value[1]
        k = len(self.estimate)
        result = np.empty((k, k))
        result[:-1, :-1] = second[0] + second[1] / sigma**2
        result[:-1, -1] = result[-1, :-1] = -2 * gradient[1] / sigma**3
        result[-1, -1] = 6 * pwrss / sigma**4 - 2 * self._dof / sigma**2
        return result

    @cached_property
    def covariance(self) -> np.ndarray:
        """Asymptotic covariance of varpar: 2 x the inverse Hessian of the deviance.

        As lmerTest, the inverse is taken over the eigenvalues above 1e-8 only, with a warning when
        some are negative or near zero (a fit that has not converged or is not identified).
        """
        values, vectors = np.linalg.eigh(self.hessian)
        tol = 1e-8
        for label, bad in [("negative", values < -tol), ("close to zero", np.abs(values) <= tol)]:
            if bad.any():
                shown = " ".join(f"{v:.1e}" for v in values[bad])
                warnings.warn(
                    f"the Hessian of the deviance in (theta, sigma) has {bad.sum()} {label} "
                    f"eigenvalue(s): {shown}; the model may not have converged",
                    ConvergenceWarning,
                    stacklevel=2,
                )
        positive = values > tol
        return 2.0 * (vectors[:, positive] / values[positive]) @ vectors[:, positive].T

    @cached_property
    def vcov_jacobian(self) -> np.ndarray:
        """d C / d varpar_i, an array (n_varpar, p, p)."""
        value, gradient, _ = self._theta_derivatives
        nfixed = self.model.n_fixed
        sigma = self.estimate[-1]
        by_theta = np.moveaxis(gradient[2:].reshape(nfixed, nfixed, -1), -1, 0)
        by_sigma = 2 * sigma * value[2:].reshape(nfixed, nfixed)
        return np.concatenate([sigma**2 * by_theta, by_sigma[None]], axis=0)
