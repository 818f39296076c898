"""The profiled deviance and REML criterion of a linear mixed model (Bates et al. 2015, eqs. 34 and 41).

With ``n`` observations, ``p`` fixed effects, prior weights ``w`` and ``L`` the blocked Cholesky factor,

    ML:   -2 log L = log|L_RE|^2 - sum(log w) + n (1 + log(2 pi pwrss / n))
    REML: -2 log L_R = log|L_RE|^2 - sum(log w) + log|R_X|^2 + (n - p)(1 + log(2 pi pwrss / (n - p)))

which is what lme4 reports as the deviance (ML) or the REML criterion.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cached_property

import numpy as np

from .cholesky import BlockedCholesky
from .covariance import CovarianceStructure
from .start import column_mean_squares, moment_start

__all__ = ["ProfiledObjective", "objective_from_factor"]


def objective_from_factor(factor: BlockedCholesky, reml: bool) -> float:
    """The ML deviance or REML criterion from an up-to-date factor."""
    cross = factor.cross
    n = cross.nobs
    dof = n - factor.nfixed if reml else n
    pwrss = factor.pwrss()
    if pwrss <= 0.0:
        return np.inf
    value = factor.logdet_random() - cross.sum_log_weights
    value += dof * (1.0 + math.log(2.0 * math.pi * pwrss / dof))
    if reml:
        value += factor.logdet_fixed()
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
        """Moment-based starting parameters and BOBYQA's initial step for each (see :mod:`.start`).

        The step is a fifth of the parameter, or of the mean of its term's diagonal where that is larger,
        in natural units (:attr:`parameter_scale`); a quarter for correlation parameters.
        """
        diagonals = moment_start(self.factor.cross, self.factor.nfixed)
        x0 = np.concatenate([c.from_diagonal(d) for c, d in zip(self.covariances, diagonals)])
        scale = self.parameter_scale
        natural = x0 / scale
        term_scale = np.concatenate([np.full(c.n_params, np.mean(natural[s])) for c, s in self._parts])
        is_scale = np.concatenate([c.is_scale for c in self.covariances])
        return x0, np.where(is_scale, 0.2 * np.maximum(np.abs(natural), term_scale), 0.25) * scale

    @cached_property
    def parameter_scale(self) -> np.ndarray:
        """The natural unit of each parameter: row ``a`` of a term's T is in units of
        ``1 / rms(Z_a)`` (the root mean square of the column over the rows, weighted), so that the
        optimizer and the boundary checks see the same problem whatever the units of a covariate."""
        parts = []
        for covariance, mean_square in zip(self.covariances, column_mean_squares(self.factor.cross)):
            root = np.sqrt(mean_square)
            row_scale = np.divide(1.0, root, out=np.ones_like(root), where=root > 0)
            parts.append(covariance.parameter_scale(row_scale))
        return np.concatenate(parts) if parts else np.zeros(0)

    def factors(self, theta: np.ndarray) -> list[np.ndarray]:
        """Per-term relative covariance factors T_k for the whole parameter vector."""
        return [c.factor(theta[s]) for c, s in self._parts]

    def update(self, theta: np.ndarray) -> bool:
        """Refactor L at theta; False when it is not positive definite there."""
        return self.factor.update(self.factors(np.asarray(theta, dtype=float)))

    def __call__(self, theta: np.ndarray) -> float:
        if not self.update(theta):
            return np.inf
        return objective_from_factor(self.factor, self.reml)
