"""The profiled deviance and REML criterion of a linear mixed model (Bates et al. 2015, eqs. 34 and 41).

With ``n`` observations, ``p`` fixed effects, prior weights ``w`` and ``L`` the blocked Cholesky factor,

    ML:   -2 log L = log|L_RE|^2 - sum(log w) + n (1 + log(2 pi pwrss / n))
    REML: -2 log L_R = log|L_RE|^2 - sum(log w) + log|R_X|^2 + (n - p)(1 + log(2 pi pwrss / (n - p)))

which is what lme4 reports as the deviance (ML) or the REML criterion.  In the cross-products'
response units (the response divided by ``scale``, see :class:`.crossprod.ResponseUnits`) the same
expressions give the objective less ``2 dof log(scale)``: the optimizer minimizes that, so that its
rounding, and so its path, do not depend on the response's units.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cached_property

import numpy as np

from .cholesky import BlockedCholesky
from .covariance import CovarianceStructure
from .start import parameter_scale, start_and_step

__all__ = ["ProfiledObjective", "objective_from_factor"]


def objective_from_factor(factor: BlockedCholesky, reml: bool, response_units: bool = True) -> float:
    """The ML deviance or REML criterion from an up-to-date factor (``response_units=False``: less
    ``2 dof log(scale)``, the value for the response in the cross-products' units)."""
    cross = factor.cross
    n = cross.nobs
    dof = n - factor.nfixed if reml else n
    pwrss = factor.pwrss(response_units=False)
    if pwrss <= 0.0:
        return np.inf
    value = factor.logdet_random() - cross.sum_log_weights
    value += dof * (1.0 + math.log(2.0 * math.pi * pwrss / dof))
    if reml:
        value += factor.logdet_fixed()
    if response_units:
        value += 2.0 * dof * math.log(cross.units.scale)
    return float(value)


class ProfiledObjective:
    """theta -> profiled deviance (ML) or REML criterion, for an optimizer to minimize."""

    def __init__(self, factor: BlockedCholesky, covariances: Sequence[CovarianceStructure], reml: bool):
        self.factor = factor
        self.covariances = list(covariances)
        self.reml = reml
        sizes = [c.n_params for c in self.covariances]
        self.slices = [slice(a, b) for a, b in zip(np.cumsum([0] + sizes[:-1]), np.cumsum(sizes))]
        self._parts = list(zip(self.covariances, self.slices))
        self.theta: np.ndarray | None = None  # where the factor is

    @property
    def n_params(self) -> int:
        return sum(c.n_params for c in self.covariances)

    @property
    def lower_bounds(self) -> np.ndarray:
        return np.concatenate([c.lower_bounds for c in self.covariances])

    @property
    def initial(self) -> np.ndarray:
        return np.concatenate([c.initial for c in self.covariances])

    def start(self) -> tuple[np.ndarray, np.ndarray]:
        """Moment-based starting parameters and BOBYQA's initial step (see :func:`.start.start_and_step`)."""
        return start_and_step(self.covariances, self.factor.cross, self.factor.nfixed)

    @cached_property
    def parameter_scale(self) -> np.ndarray:
        """The natural unit of each parameter (see :func:`.start.parameter_scale`)."""
        return parameter_scale(self.covariances, self.factor.cross)

    def factors(self, theta: np.ndarray) -> list[np.ndarray]:
        """Per-term relative covariance factors T_k for the whole parameter vector."""
        return [c.factor(theta[s]) for c, s in self._parts]

    def update(self, theta: np.ndarray) -> bool:
        """Refactor L at theta (kept as ``self.theta``); False when it is not positive definite there."""
        self.theta = np.array(theta, dtype=float)
        return self.factor.update(self.factors(self.theta))

    def __call__(self, theta: np.ndarray) -> float:
        if not self.update(theta):
            return np.inf
        return objective_from_factor(self.factor, self.reml)

    def unitless(self, theta: np.ndarray) -> float:
        """The objective less ``2 dof log(scale)`` (see the module docstring): what the optimizer
        minimizes."""
        if not self.update(theta):
            return np.inf
        return objective_from_factor(self.factor, self.reml, response_units=False)
