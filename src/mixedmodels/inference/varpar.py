"""A fit as a function of its variance parameters ``varpar = (phi, sigma)``, for degrees-of-freedom methods.

lmerTest's Satterthwaite method (Kuznetsova et al. 2017, J. Stat. Softw. 82(13)) needs the asymptotic
covariance of the variance parameters, ``A = 2 H^{-1}`` with ``H`` the Hessian of the (REML or ML, as
fitted) deviance in ``varpar``, and the derivatives of the fixed effects' covariance
``C(varpar) = sigma^2 (R_X' R_X)^{-1}`` in ``varpar``.  ``phi`` is every variance parameter but sigma:
lme4's theta for lmer; theta and the residual structures' unconstrained parameters for lme; those
parameters alone for gls.

Both are explicit in sigma.  With ``d(phi)`` the terms sigma does not enter (``log|L_theta|^2``, plus
``log|R_X|^2`` for REML, less twice the log-Jacobian of nlme's whitening) and ``r(phi) = pwrss``,

    deviance(phi, sigma) = d(phi) + r(phi) / sigma^2 + dof log(2 pi sigma^2) - sum(log w)
                           (:func:`mixedmodels.engine.deviance.deviance_at_sigma`),

so only d, r and (R_X'R_X)^{-1} are differenced in phi (one stencil, :func:`.numdiff.derivatives`) and
every derivative involving sigma is written out.  For lmer and lme each stencil point is one update of
the blocked factor on the fit's cross-products (lme: of the whitened rows when the residual structure
changes), so nothing grows with the number of rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from ..engine.cholesky import BlockedCholesky
from ..engine.deviance import ProfiledObjective, chol_logdet, deviance_at_sigma, residual_dof
from ..engine.optimize import ConvergenceWarning
from .numdiff import derivatives

if TYPE_CHECKING:
    from ..models.lmm import LinearMixedModel

__all__ = ["SigmaFreeTerms", "VarianceParameters", "chol_terms", "lmer_variance_parameters"]

SigmaFreeTerms = Callable[[np.ndarray], tuple[float, float, np.ndarray] | None]
"""phi -> (d, pwrss, (R_X'R_X)^{-1}) (see the module docstring); None where phi gives no valid model."""


def chol_terms(chol: BlockedCholesky, reml: bool) -> tuple[float, float, np.ndarray]:
    """(log-determinant term, pwrss, (R_X'R_X)^{-1}) of an up-to-date blocked Cholesky factor."""
    return chol_logdet(chol, reml), chol.pwrss(), chol.inverse_fixed_crossprod()


class _LmerTerms:
    """theta -> the sigma-free terms of an lmer fit, on a blocked Cholesky factor of its own (so that the
    fitted model's chol keeps the optimum)."""

    def __init__(self, model: LinearMixedModel):
        self.objective = ProfiledObjective(model.chol.copy(), model.covariances, model.reml)

    def __call__(self, theta: np.ndarray) -> tuple[float, float, np.ndarray] | None:
        if not self.objective.update(theta):
            return None
        return chol_terms(self.objective.chol, self.objective.reml)


def lmer_variance_parameters(model: LinearMixedModel) -> VarianceParameters:
    """An lmer fit as a function of (theta, sigma)."""
    dof = residual_dof(model.cross.nobs, model.n_fixed, model.reml)
    estimate = np.append(model.theta, model.sigma)
    return VarianceParameters(_LmerTerms(model), estimate, model.n_fixed, dof, model.cross.sum_log_weights)


class VarianceParameters:
    """Deviance and fixed-effects covariance of a fitted model as functions of ``varpar = (phi, sigma)``.

    ``terms`` gives the sigma-free terms at phi, ``estimate`` is varpar at the fit, ``dof`` the residual
    degrees of freedom (:func:`~mixedmodels.engine.deviance.residual_dof`) and ``sum_log_weights`` the
    constant ``sum(log w)`` of prior weights; ``relative`` is the derivatives' step
    (:func:`.numdiff.derivatives`).
    """

    def __init__(
        self,
        terms: SigmaFreeTerms,
        estimate: np.ndarray,
        n_fixed: int,
        dof: int,
        sum_log_weights: float = 0.0,
        relative: float = 2e-2,
    ):
        self.terms = terms
        self.estimate = np.asarray(estimate, dtype=float)
        self.n_fixed = n_fixed
        self.dof = dof
        self.sum_log_weights = sum_log_weights
        self.relative = relative

    def _phi_parts(self, phi: np.ndarray) -> np.ndarray:
        """[d(phi), r(phi), (R_X'R_X)^{-1} flattened]; NaN where phi gives no valid model."""
        terms = self.terms(phi)
        if terms is None:
            return np.full(2 + self.n_fixed * self.n_fixed, np.nan)
        logdet, pwrss, inverse = terms
        return np.concatenate([[logdet, pwrss], inverse.ravel()])

    def deviance(self, varpar: np.ndarray) -> float:
        """-2 log-likelihood (restricted, for REML) at phi = varpar[:-1], sigma = varpar[-1]."""
        logdet, pwrss = self._phi_parts(np.asarray(varpar[:-1], dtype=float))[:2]
        if np.isnan(logdet):
            return np.inf
        return deviance_at_sigma(varpar[-1], pwrss, self.dof, logdet, self.sum_log_weights)

    def vcov_beta(self, varpar: np.ndarray) -> np.ndarray:
        """sigma^2 (R_X' R_X)^{-1} at varpar."""
        inverse = self._phi_parts(np.asarray(varpar[:-1], dtype=float))[2:]
        return varpar[-1] ** 2 * inverse.reshape(self.n_fixed, self.n_fixed)

    @cached_property
    def _phi_derivatives(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return derivatives(self._phi_parts, self.estimate[:-1], relative=self.relative)

    @property
    def vcov(self) -> np.ndarray:
        """The fixed effects' covariance C at the estimate (whose derivatives :attr:`vcov_jacobian` are)."""
        value = self._phi_derivatives[0]
        return self.estimate[-1] ** 2 * value[2:].reshape(self.n_fixed, self.n_fixed)

    @cached_property
    def hessian(self) -> np.ndarray:
        """Hessian of the deviance in varpar = (phi, sigma) at the estimate."""
        value, gradient, second = self._phi_derivatives
        sigma = self.estimate[-1]
        pwrss = value[1]
        k = len(self.estimate)
        result = np.empty((k, k))
        result[:-1, :-1] = second[0] + second[1] / sigma**2
        result[:-1, -1] = result[-1, :-1] = -2 * gradient[1] / sigma**3
        result[-1, -1] = 6 * pwrss / sigma**4 - 2 * self.dof / sigma**2
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
                    f"the Hessian of the deviance in the variance parameters has {bad.sum()} {label} "
                    f"eigenvalue(s): {shown}; the model may not have converged",
                    ConvergenceWarning,
                    stacklevel=2,
                )
        positive = values > tol
        return 2.0 * (vectors[:, positive] / values[positive]) @ vectors[:, positive].T

    @cached_property
    def vcov_jacobian(self) -> np.ndarray:
        """d C / d varpar_i, an array (n_varpar, p, p)."""
        value, gradient, _ = self._phi_derivatives
        nfixed = self.n_fixed
        sigma = self.estimate[-1]
        by_phi = np.moveaxis(gradient[2:].reshape(nfixed, nfixed, -1), -1, 0)
        by_sigma = 2 * sigma * value[2:].reshape(nfixed, nfixed)
        return np.concatenate([sigma**2 * by_phi, by_sigma[None]], axis=0)
