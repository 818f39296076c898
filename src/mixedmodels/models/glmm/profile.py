"""A glmer fit as likelihood profiles see it (:mod:`mixedmodels.inference.profile`), as lme4's
``profile`` of a glmerMod.

lme4 profiles a glmer fit through its nAGQ = 1 deviance function over (theta, beta): each parameter --
an sd/cor of the random effects or a fixed effect -- is held at a value and the Laplace deviance is
minimized over all the others.  The vector has no sigma (binomial and Poisson fits; lme4 does not
profile GLMMs with a dispersion parameter).  Here phi is theta, and the fixed effects not held are
minimized out of the Laplace deviance at each theta (:class:`LaplaceOverFixedEffects`): the minimum
over (theta, beta) is the same as lme4's joint one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...engine.families import NegativeBinomial
from ...engine.optimize import OptimizerControl, minimize_bobyqa
from ...inference.parameters import sdcor_bounds, theta_slices
from ...inference.profile_view import ProfileView

if TYPE_CHECKING:
    from .results import GeneralizedLinearMixedModel

__all__ = ["GlmmProfileView", "LaplaceOverFixedEffects"]

# the inner minimization over the fixed effects (in units of their standard errors, where the deviance is
# about quadratic: a step of 1e-6 changes it by about 1e-12)
_BETA_CONTROL = OptimizerControl(check_convergence=False, ftol_abs=1e-11, xtol_abs=1e-6, newton_steps=0)


class LaplaceOverFixedEffects:
    """The Laplace deviance at theta minimized over the fixed effects, with fixed effect ``held``
    (if any) at a value; as a :class:`.inference.profile_view.HeldFixedEffect` it reads theta (phi), as
    the fit's ``varpar`` it reads (theta, sigma), sigma unused."""

    def __init__(self, fit: GeneralizedLinearMixedModel, held: int | None = None):
        self.objective = fit.objective
        self.held = held
        self.lower_bounds = self.objective.lower_bounds
        self.free = np.ones(fit.n_fixed, dtype=bool)
        if held is not None:
            self.free[held] = False
        self.scale = fit.std_errors.to_numpy()[self.free]  # beta in units of its standard error
        self.beta = fit.fixef.to_numpy().copy()  # the last minimizer: the next search starts there
        self.value = 0.0 if held is None else float(self.beta[held])

    def hold(self, value: float) -> None:
        """Hold the fixed effect at ``value``."""
        self.value = float(value)
        self.beta[self.held] = self.value

    def minimize(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """(the minimum over the free fixed effects, all fixed effects there) at theta."""
        theta = np.asarray(theta, dtype=float)
        if np.any(theta < self.lower_bounds):
            return np.inf, self.beta.copy()
        beta = self.beta.copy()
        if self.held is not None:
            beta[self.held] = self.value

        def deviance(free: np.ndarray) -> float:
            beta[self.free] = free
            return self.objective.laplace(np.concatenate([theta, beta]))

        if not np.isfinite(deviance(beta[self.free])):
            return np.inf, beta
        lower = np.full(int(self.free.sum()), -np.inf)
        start, step = beta[self.free].copy(), self.scale / 3
        result = minimize_bobyqa(deviance, start, lower, _BETA_CONTROL, initial_step=step, scale=self.scale)
        beta[self.free] = result.x
        if np.isfinite(result.fun):
            self.beta = beta.copy()
        return float(result.fun), beta

    def __call__(self, phi: np.ndarray) -> float:
        return self.minimize(phi)[0]

    def deviance(self, parameters: np.ndarray) -> float:
        """The deviance at (theta, sigma): sigma is not a parameter of these families."""
        return self.minimize(np.asarray(parameters)[:-1])[0]

    def estimates(self, phi: np.ndarray) -> tuple[float, np.ndarray] | None:
        value, beta = self.minimize(phi)
        if not np.isfinite(value):
            return None
        return 1.0, beta[self.free]


class GlmmProfileView(ProfileView):
    """A glmer fit (nAGQ = 1, no dispersion parameter): phi is theta, the vector has no sigma, and the
    deviance is the Laplace deviance the fit minimized."""

    fixed_sigma = 1.0

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
        if isinstance(fit.family, NegativeBinomial):
            raise ValueError(
                "profiles of a glmer.nb fit are not available yet (lme4 profiles them at the estimated "
                "theta; that path is not checked against it here); use confint(method='wald') or 'boot'"
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
        self._profiled = LaplaceOverFixedEffects(fit)

    @property
    def deviance(self) -> float:
        """The Laplace deviance at the estimates (lme4's ``-2 logLik``)."""
        return -2.0 * self.fit.loglik

    @property
    def varpar(self) -> LaplaceOverFixedEffects:
        return self._profiled

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
        """The Laplace fit again (glmer's :func:`.fitting.fit`), from theta = ``start``."""
        from .fitting import fit

        return GlmmProfileView(fit(self.fit.problem, 1, self.fit.control, start=start))

    def fixed_effect_held(self, j: int) -> LaplaceOverFixedEffects:
        return LaplaceOverFixedEffects(self.fit, held=j)

    def fixed_effects_at(self, phi: np.ndarray) -> np.ndarray:
        return self._profiled.minimize(phi)[1]
