"""Adaptive Gauss-Hermite quadrature (lme4's ``nAGQ > 1``) for a GLMM with a single scalar random-effects
term.

With one scalar term the integral over the random effects factors into one integral per level ``j``.
Centred at the conditional mode ``u_j`` that PIRLS finds and scaled by its conditional standard
deviation ``s_j = 1 / L_jj`` (``L`` is diagonal here), each is a sum over the nodes ``z_i`` and weights
``w_i`` of a Gauss-Hermite rule for the standard normal density (lme4's ``GHrule``).  lme4's
``glmerAGQ`` (src/external.cpp) evaluates, per level, ``d_j(u) = u^2 + sum of the deviance residuals of
the level's rows`` at ``u_j + z_i s_j`` and returns :func:`.deviance.quadrature_deviance`.

The deviance residuals make the binomial (and Poisson) likelihood's constants drop out: lme4's logLik
and AIC with nAGQ > 1 leave them out, unlike the Laplace fit's (for cbpp -2 logLik is 100.01 with
nAGQ = 25 against 184.05 by Laplace), and so does this.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .covariance import CovarianceStructure
from .deviance import quadrature_deviance
from .laplace import LaplaceObjective
from .pirls import Pirls, PirlsError, PirlsFit, random_effects

__all__ = ["MAX_NODES", "QuadratureObjective", "gauss_hermite_rule"]

MAX_NODES = 100  # lme4's GHrule: ord < 101


def gauss_hermite_rule(order: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights of the ``order``-point Gauss-Hermite rule for the standard normal density
    (the weights sum to 1; lme4's ``GHrule``), made symmetric about 0 as lme4's and MixedModels.jl's."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(order)
    nodes = (nodes - nodes[::-1]) / 2
    weights = (weights + weights[::-1]) / 2
    return nodes, weights / weights.sum()


class QuadratureObjective(LaplaceObjective):
    """(theta, beta) -> the adaptive Gauss-Hermite deviance with ``order`` nodes, u from PIRLS (lme4's
    nAGQ > 1 stage); theta -> the Laplace deviance with beta in PIRLS for the first stage, as lme4."""

    def __init__(
        self,
        pirls: Pirls,
        covariances: Sequence[CovarianceStructure],
        order: int,
        convergence: str = "lme4",
    ):
        blocks = pirls.chunks[0].blocks
        if len(blocks) != 1 or blocks[0].ncols != 1:
            raise ValueError(
                f"nAGQ={order}: adaptive Gauss-Hermite quadrature needs a single scalar random-effects "
                "term such as (1 | g); use nAGQ=1 (Laplace) for vector-valued or several terms"
            )
        super().__init__(pirls, covariances, convergence)
        self.order = order
        self.nodes, self.weights = gauss_hermite_rule(order)

    def _level_deviances(self, beta: np.ndarray, u: np.ndarray, lambdas) -> np.ndarray:
        """``u_j^2`` plus the sum of the deviance residuals of level j's rows (lme4's ``devcCol``)."""
        family, nlevels = self.pirls.family, len(u)
        effects = random_effects([u], lambdas)
        total = u * u
        for chunk in self.pirls.chunks:
            mu = family.link.linkinv(chunk.linear_predictor(beta, effects))
            residuals = family.deviance_residuals(chunk.y, mu, chunk.prior_weights)
            total = total + np.bincount(chunk.blocks[0].codes, residuals, minlength=nlevels)
        return total

    def value(self, fit: PirlsFit, saturated: bool = False) -> float:
        """The quadrature deviance at PIRLS's modes (relative to the saturated model either way:
        ``saturated`` is accepted for :class:`.laplace.LaplaceObjective`'s callers)."""
        lambdas = fit.chol.lambdas
        u0 = fit.u[0]
        sd = 1.0 / np.abs(fit.chol.diag0[:, 0, 0])
        at_modes = self._level_deviances(fit.beta, u0, lambdas)
        sums = np.zeros_like(u0)
        for z, w in zip(self.nodes, self.weights):
            change = self._level_deviances(fit.beta, u0 + z * sd, lambdas) - at_modes
            sums += w * np.exp(-0.5 * change + 0.5 * z * z)
        return quadrature_deviance(at_modes, fit.chol.logdet_random(), sums)

    def fast(self, theta: np.ndarray) -> float:
        """The first stage's objective: the Laplace deviance at theta, beta and u from PIRLS (lme4)."""
        try:
            return LaplaceObjective.value(self, self.modes(theta))
        except PirlsError:
            return np.inf
