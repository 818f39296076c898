"""A glmer fit as likelihood profiles see it (:mod:`mixedmodels.inference.profile`), as lme4's
``profile`` of a glmerMod.

lme4 profiles a glmer fit through its nAGQ = 1 deviance function over (theta, beta): each parameter --
an sd/cor of the random effects or a fixed effect -- is held at a value and the Laplace deviance is
minimized over all the others by one search (``devfun2``), started at the neighbouring profile point.
The profile here does the same (``searches_fixed_effects``; the search is
``LikelihoodProfile._joint_point``).  The vector has no sigma (binomial, Poisson and negative binomial
fits; lme4 does not profile GLMMs with a dispersion parameter).  A glmer.nb fit is profiled with the
negative binomial's theta held at its estimate, as lme4's ``profile`` of it does: the fit's family is
``negative.binomial(theta)``, and theta is not in the vector.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...engine.families import NegativeBinomial
from ...inference.parameters import sdcor_bounds, theta_slices
from ...inference.profile_view import ProfileView

if TYPE_CHECKING:
    from .results import GeneralizedLinearMixedModel

__all__ = ["GlmmProfileView"]


class GlmmProfileView(ProfileView):
    """A glmer fit (nAGQ = 1, no dispersion parameter): phi is theta, the vector has no sigma, the
    deviance is the Laplace deviance the fit minimized, and each profile point searches the fixed
    effects with theta."""

    fixed_sigma = 1.0
    searches_fixed_effects = True

    def __init__(self, fit: GeneralizedLinearMixedModel):
        if fit.has_residual_variance:
            raise ValueError(
                f"profiles of a glmer fit with a dispersion parameter ({fit.family.name}) are not "
                "available, as in lme4; use confint(method='wald') or 'boot'"
            )
        if isinstance(fit.family, NegativeBinomial) and fit.family.observed_curvature:
            raise ValueError(
                "profiles of an nbinom2 fit are not available yet (glmmTMB's profile holds the dispersion "
                "free too); use confint(method='wald') or 'boot'"
            )
        if fit.nagq != 1:
            raise ValueError(
                f"profiles need the Laplace fit (nAGQ = 1), this one has nAGQ = {fit.nagq}: refit it with "
                "nAGQ=1 or use confint(method='wald') or 'boot'"
            )
        self.fit = fit
        self.phi = fit.theta
        self.phi_lower = fit.objective.lower_bounds
        self.covariances = fit.covariances
        self.theta_slices = theta_slices(fit.covariances)

    @property
    def deviance(self) -> float:
        """The Laplace deviance at the estimates (lme4's ``-2 logLik``)."""
        return -2.0 * self.fit.loglik

    @property
    def n_variance(self) -> int:
        return len(self.phi)

    def parameters(self) -> np.ndarray:
        return np.concatenate([self.from_varpar(self.phi, 1.0), self.fit.fixef.to_numpy()])

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        lower, upper = sdcor_bounds(self)
        fixed = np.full(self.fit.n_fixed, np.inf)
        return np.concatenate([lower[:-1], -fixed]), np.concatenate([upper[:-1], fixed])

    def to_varpar(self, variance: np.ndarray) -> tuple[np.ndarray, float] | None:
        return super().to_varpar(np.append(variance, 1.0))

    def from_varpar(self, phi: np.ndarray, sigma: float) -> np.ndarray:
        return super().from_varpar(phi, 1.0)[:-1]

    def refit(self, reml: bool | None = None, start: np.ndarray | None = None) -> GlmmProfileView:
        """The Laplace fit again (glmer's :func:`.fitting.fit`, at a glmer.nb fit's theta), from
        theta = ``start``."""
        from .fitting import fit

        return GlmmProfileView(fit(self.fit.problem, 1, self.fit.control, start=start))

    def deviance_at(self, phi: np.ndarray, beta: np.ndarray) -> float:
        """The Laplace deviance at (theta, beta) (lme4's devfun of the fit)."""
        return self.fit.objective.laplace(np.concatenate([phi, beta]))
