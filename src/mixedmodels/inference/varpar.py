"""The fit as a function of its variance parameters (theta, sigma), for degrees-of-freedom methods.

lmerTest's Satterthwaite method (Kuznetsova et al. 2017, J. Stat. Softw. 82(13)) needs the asymptotic
covariance of the variance parameters ``varpar = (theta, sigma)``, ``A = 2 H^{-1}`` with ``H`` the Hessian
of the (REML or ML, as fitted) deviance in ``varpar``, and the derivatives of the fixed effects'
covariance ``C(varpar) = sigma^2 (R_X' R_X)^{-1}`` in ``varpar``.  Both come from the blocked factor
on the fit's cross-products, so they cost nothing that grows with the number of rows.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from ..engine.cholesky import BlockedCholesky
from ..engine.deviance import ProfiledObjective
from .numdiff import hessian, jacobian

if TYPE_CHECKING:
    from ..lmm import LinearMixedModel

__all__ = ["VarianceParameters"]


class VarianceParameters:
    """Deviance and fixed-effects covariance of a fitted model as functions of (theta, sigma)."""

    def __init__(self, model: LinearMixedModel):
        self.model = model
        # a factor of its own, so the fitted model's factor keeps the optimum
        factor = BlockedCholesky(model.cross, model.n_fixed)
        self.objective = ProfiledObjective(factor, model.covariances, model.reml)
        self.estimate = np.append(model.theta, model.sigma)

    def deviance(self, varpar: np.ndarray) -> float:
        """-2 log-likelihood (restricted, for REML fits) at theta = varpar[:-1], sigma = varpar[-1]."""
        theta, sigma = varpar[:-1], varpar[-1]
        if not self.objective.update(theta):
            return np.inf
        factor = self.objective.factor
        n, p = factor.cross.nobs, factor.nfixed
        s2 = sigma * sigma
        dof = n - p if self.model.reml else n
        value = factor.logdet_random() + factor.pwrss() / s2 + dof * math.log(2 * math.pi * s2)
        if self.model.reml:
            value += factor.logdet_fixed()
        return value - factor.cross.sum_log_weights

    def vcov_beta(self, varpar: np.ndarray) -> np.ndarray:
        """sigma^2 (R_X' R_X)^{-1} at varpar."""
        self.objective.update(varpar[:-1])
        return varpar[-1] ** 2 * self.objective.factor.inverse_fixed_crossprod()

    @cached_property
    def covariance(self) -> np.ndarray:
        """Asymptotic covariance of varpar: 2 x the inverse Hessian of the deviance."""
        return 2.0 * np.linalg.inv(hessian(self.deviance, self.estimate))

    @cached_property
    def vcov_jacobian(self) -> np.ndarray:
        """d C / d varpar_i, an array (n_varpar, p, p)."""
        return np.moveaxis(jacobian(self.vcov_beta, self.estimate), -1, 0)
