"""The likelihood of a linear (mixed) model: the one home of its formulas, for every model family.

With ``n`` observations, ``p`` fixed effects, prior weights ``w``, the penalized weighted residual sum of
squares ``pwrss`` and the log-determinant term ``d = log|L_theta|^2`` (plus ``log|R_X|^2`` for REML) of
the blocked Cholesky factor ``L`` (Bates et al. 2015, J. Stat. Softw. 67(1)):

* the degrees of freedom of the residual variance, ``dof = n - p`` (REML) or ``n`` (ML)
  (:func:`residual_dof`);
* -2 log L at a given sigma, beta profiled out (the expression whose minimum over sigma gives eqs. 34
  and 41) (:func:`deviance_at_sigma`)::

      d + pwrss / sigma^2 + dof log(2 pi sigma^2) - sum(log w)

* the same, sigma profiled out too (``sigma^2 = pwrss / dof``; eqs. 34 and 41), what lme4 reports as the
  deviance (ML) or the REML criterion (:func:`profiled_deviance`)::

      d - sum(log w) + dof (1 + log(2 pi pwrss / dof))

* the Laplace approximation to -2 log L of a generalized linear mixed model at its conditional modes u
  (lme4's ``glmResp::Laplace``; Bates et al. 2015, section 3.6), with ``aic`` the family's ``aic`` term,
  -2 log p(y | mu) (:func:`laplace_deviance`)::

      log|L_theta|^2 + ||u||^2 + aic

  which, with the sum of the deviance residuals in place of ``aic``, is MixedModels.jl's deviance;

* a linear model without random effects is the case ``L_theta = I``: R's ``logLik.lm`` and nlme's gls
  likelihood at given variance parameters (Pinheiro & Bates 2000, ch. 5), from the triangular
  factor of the weighted ``[X y]`` (:func:`linear_model_deviance`).

In the cross-products' response units (the response divided by ``scale``, see
:class:`.crossprod.ResponseUnits`) the profiled expressions give the objective less ``2 dof log(scale)``:
the optimizer minimizes that, so that its rounding, and so its path, do not depend on the response's
units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cached_property

import numpy as np

from .cholesky import BlockedCholesky
from .covariance import CovarianceStructure, ThetaLayout
from .start import parameter_scale, start_and_step

__all__ = [
    "ProfiledObjective",
    "deviance_at_sigma",
    "laplace_deviance",
    "quadrature_deviance",
    "chol_logdet",
    "linear_model_deviance",
    "linear_model_terms",
    "objective_from_chol",
    "profiled_deviance",
    "residual_dof",
]


def residual_dof(nobs: int, nfixed: int, reml: bool) -> int:
    """Degrees of freedom of the residual variance: ``n - p`` for REML (the restricted likelihood is
    that of ``n - p`` error contrasts), ``n`` for ML.  The divisor of the profiled ``sigma^2 = pwrss /
    dof``, the count in the likelihood's constant, and nlme's number of observations in a REML BIC."""
    return nobs - nfixed if reml else nobs


def deviance_at_sigma(
    sigma: float, pwrss: float, dof: int, logdet: float = 0.0, sum_log_weights: float = 0.0
) -> float:
    """-2 log L (restricted, for REML) at a given sigma with beta profiled out (Bates et al. 2015; its
    minimum over sigma is eqs. 34 and 41): ``logdet + pwrss / sigma^2 + dof log(2 pi sigma^2) - sum(log w)``.

    ``logdet`` is ``log|L_theta|^2`` (plus ``log|R_X|^2`` for REML; for a known covariance ``V`` and
    sigma 1, ``log|V|``), ``dof`` is :func:`residual_dof`, ``w`` the prior weights."""
    s2 = sigma * sigma
    value = logdet + pwrss / s2 + dof * math.log(2 * math.pi * s2)
    return value - sum_log_weights


def profiled_deviance(pwrss: float, dof: int, logdet: float = 0.0, sum_log_weights: float = 0.0) -> float:
    """-2 log L (restricted, for REML) with beta and sigma profiled out: :func:`deviance_at_sigma` at
    ``sigma^2 = pwrss / dof``, ``logdet - sum(log w) + dof (1 + log(2 pi pwrss / dof))`` (Bates et al.
    2015, eqs. 34 and 41; lme4's deviance and REML criterion).  Infinite where ``pwrss`` is not
    positive: a perfect fit has no finite maximum, so it is no valid point for an optimizer."""
    if pwrss <= 0.0:
        return np.inf
    value = logdet - sum_log_weights
    return value + dof * (1.0 + math.log(2.0 * math.pi * pwrss / dof))


def laplace_deviance(logdet: float, sqr_u: float, aic: float) -> float:
    """-2 log L of a GLMM by the Laplace approximation at the conditional modes u: ``log|L_theta|^2 +
    ||u||^2 + aic`` (lme4's ``glmResp::Laplace``), ``aic`` being -2 log p(y | mu) of the family (R's
    ``family$aic``) or, for the deviance relative to the saturated model, the sum of the deviance
    residuals."""
    return logdet + sqr_u + aic


def linear_model_terms(diagonal: np.ndarray, reml: bool, scale: float = 1.0) -> tuple[float, float]:
    """The terms of a linear model's deviance that sigma does not enter, from the diagonal of the
    triangular factor ``R`` of the weighted ``[X y]`` (see :func:`linear_model_deviance`): the REML
    term ``log|R_X|^2 = 2 sum log|R[i, i]|, i < p`` (0 for ML) and the residual sum of squares
    ``(R[p, p] scale)^2``."""
    diagonal = np.abs(np.asarray(diagonal, dtype=float))
    p = len(diagonal) - 1
    logdet = 2.0 * float(np.log(diagonal[:p]).sum()) if reml else 0.0
    return logdet, float((diagonal[p] * scale) ** 2)


def linear_model_deviance(
    diagonal: np.ndarray,
    nobs: int,
    reml: bool,
    sum_log_weights: float = 0.0,
    scale: float = 1.0,
    sigma: float | None = None,
) -> float:
    """-2 log L (restricted, for REML) of a linear model without random effects, beta profiled out, and
    sigma too unless given: R's ``logLik.lm`` and nlme's gls likelihood of the whitened rows (Pinheiro &
    Bates 2000, ch. 5); the case ``L_theta = I`` of :func:`profiled_deviance` and
    :func:`deviance_at_sigma`.

    ``diagonal`` is the diagonal of the triangular factor ``R`` of the weighted ``[X y]`` (``R'R =
    [X y]'W[X y]``, from a QR or a Cholesky factor): ``(R[p, p] scale)^2`` is the residual sum of squares
    (``scale``: the response's units, see :class:`.crossprod.ResponseUnits`) and ``log|R_X|^2 = 2 sum
    log|R[i, i]|, i < p``, the REML term."""
    logdet, rss = linear_model_terms(diagonal, reml, scale)
    dof = residual_dof(nobs, len(diagonal) - 1, reml)
    if sigma is None:
        return profiled_deviance(rss, dof, logdet, sum_log_weights)
    return deviance_at_sigma(sigma, rss, dof, logdet, sum_log_weights)


def chol_logdet(chol: BlockedCholesky, reml: bool) -> float:
    """The log-determinant term ``d`` of an up-to-date blocked Cholesky factor: ``log|L_theta|^2``, plus
    ``log|R_X|^2`` for REML."""
    return chol.logdet_random() + (chol.logdet_fixed() if reml else 0.0)


def objective_from_chol(chol: BlockedCholesky, reml: bool, response_units: bool = True) -> float:
    """The ML deviance or REML criterion (:func:`profiled_deviance`) from an up-to-date blocked Cholesky
    factor (``response_units=False``: less ``2 dof log(scale)``, the value for the response in the
    cross-products' units)."""
    cross = chol.cross
    dof = residual_dof(cross.nobs, chol.nfixed, reml)
    logdet = chol_logdet(chol, reml)
    value = profiled_deviance(chol.pwrss(response_units=False), dof, logdet, cross.sum_log_weights)
    if response_units:
        value += 2.0 * dof * math.log(cross.units.scale)
    return float(value)


class ProfiledObjective(ThetaLayout):
    """theta -> profiled deviance (ML) or REML criterion, for an optimizer to minimize."""

    def __init__(self, chol: BlockedCholesky, covariances: Sequence[CovarianceStructure], reml: bool):
        super().__init__(covariances)
        self.chol = chol
        self.reml = reml
        self.theta: np.ndarray | None = None  # where chol is

    def start(self) -> tuple[np.ndarray, np.ndarray]:
        """Moment-based starting parameters and BOBYQA's initial step (see :func:`.start.start_and_step`)."""
        return start_and_step(self.covariances, self.chol.cross, self.chol.nfixed)

    @cached_property
    def parameter_scale(self) -> np.ndarray:
        """The natural unit of each parameter (see :func:`.start.parameter_scale`)."""
        return parameter_scale(self.covariances, self.chol.cross)

    def update(self, theta: np.ndarray) -> bool:
        """Refactor L at theta (kept as ``self.theta``); False when it is not positive definite there."""
        self.theta = np.array(theta, dtype=float)
        return self.chol.update(self.lambdas(self.theta))

    def __call__(self, theta: np.ndarray) -> float:
        if not self.update(theta):
            return np.inf
        return objective_from_chol(self.chol, self.reml)

    def unitless(self, theta: np.ndarray) -> float:
        """The objective less ``2 dof log(scale)`` (see the module docstring): what the optimizer
        minimizes."""
        if not self.update(theta):
            return np.inf
        return objective_from_chol(self.chol, self.reml, response_units=False)


def quadrature_deviance(level_deviances: np.ndarray, logdet: float, quadrature_sums: np.ndarray) -> float:
    """-2 log L of a GLMM with one scalar random-effects term by adaptive Gauss-Hermite quadrature
    (lme4's ``glmerAGQ``), relative to the saturated model::

        sum_j d_j(u_j) + log|L_theta|^2 - 2 sum_j log S_j,
        S_j = sum_i w_i exp(-(d_j(u_j + z_i s_j) - d_j(u_j)) / 2 + z_i^2 / 2)

    ``level_deviances``: ``d_j(u_j)``, level j's ``u_j^2`` plus its rows' deviance residuals at the
    conditional modes; ``quadrature_sums``: ``S_j`` over the rule's nodes ``z_i`` and weights ``w_i``
    (for the standard normal density), ``s_j`` the modes' conditional standard deviations.  With one
    node (``z = 0``, ``S_j = 1``) it is the Laplace deviance."""
    return float(np.sum(level_deviances) + logdet - 2.0 * np.sum(np.log(quadrature_sums)))
