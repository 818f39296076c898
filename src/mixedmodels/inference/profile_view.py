"""A fit as likelihood profiles see it: one parameter vector and its refits, for lmer, lme and gls.

:class:`.profile.LikelihoodProfile` works on the vector of lme4's ``confint`` rows, extended by the
residual structure of nlme fits:

    (sd/cor of each random-effects term, the residual structure's parameters, sigma, fixed effects)

The sd/cor part is lme4's (:mod:`.parameters`; empty for gls).  The structure's parameters (nlme's
correlation structure, then its variance function: Phi, Rho, range, varIdent's ratios, varPower's
power, ...) are profiled on the optimizer's unconstrained scale, where each is a monotone function
of one unconstrained number (the profile, and so its limits, do not depend on a monotone
reparameterization), and reported on nlme's scale (:meth:`ProfileView.reported`).

A family gives a :class:`ProfileView` through its fits' ``profile_view()``: the variance parameters
``phi`` of its :class:`.varpar.VarianceParameters` (lme4's theta, then the structure's unconstrained
parameters), ML refits, the fixed effects at given ``phi``, and the ML objective with one fixed effect
held at a value (an offset) -- :class:`LmerProfileView` here, ``NlmeProfileView`` in nlme,
``GlmmProfileView`` in glmm (sigma fixed at 1: ``fixed_sigma``; the fixed effects searched with theta at
each profile point, as lme4's: ``searches_fixed_effects`` and ``deviance_at``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..engine.cholesky import BlockedCholesky
from ..engine.crossprod import CrossProducts
from ..engine.deviance import ProfiledObjective
from .parameters import parameter_names, sdcor_bounds, sdcor_to_theta, theta_to_sdcor

if TYPE_CHECKING:
    from ..models.lmm import LinearMixedModel
    from .varpar import VarianceParameters

__all__ = ["HeldFixedEffect", "ProfileView", "LmerProfileView"]


class HeldFixedEffect(Protocol):
    """The ML deviance over ``phi`` with fixed effect ``j`` held at a value (the model less column ``j``,
    its response ``y - value x_j``), the other fixed effects and sigma profiled out."""

    lower_bounds: np.ndarray  # of phi

    def hold(self, value: float) -> None:
        """Hold the coefficient at ``value``."""

    def __call__(self, phi: np.ndarray) -> float:
        """The ML deviance at ``phi`` (infinite where phi gives no valid model)."""

    def estimates(self, phi: np.ndarray) -> tuple[float, np.ndarray] | None:
        """(sigma, the other fixed effects) at ``phi``; None where phi gives no valid model."""


class ProfileView:
    """A fitted model's parameter vector for profiles (see the module docstring) and its refits.

    Subclasses set ``fit`` and provide ``phi``, ``phi_lower``, ``covariances``, ``theta_slices``,
    :meth:`structure_reported`, :meth:`refit`, and :meth:`fixed_effect_held` and
    :meth:`fixed_effects_at` (or, with ``searches_fixed_effects``, :meth:`deviance_at`).
    """

    fit: object
    phi: np.ndarray  # the optimizer's variance parameters at the fit: theta, then the structure's
    phi_lower: np.ndarray  # their lower bounds
    covariances: list  # the random-effects terms' covariance parameterizations, in theta's order
    theta_slices: list[slice]  # each term's entries of theta
    fixed_sigma: float | None = None  # sigma of a family without a dispersion (not profiled); None: estimated
    # glmer: the fixed effects have no closed form at given phi, so each profile point searches them with
    # the variance parameters (lme4's devfun2 over (theta, beta)) on :meth:`deviance_at`
    searches_fixed_effects: bool = False

    def structure_reported(self, values: np.ndarray) -> np.ndarray:
        """The structure's parameters on nlme's scale from the unconstrained ones."""
        return np.asarray(values, dtype=float)

    def refit(self, reml: bool | None = None, start: np.ndarray | None = None) -> ProfileView:
        """The model refitted (by ``reml``), starting at ``phi = start``."""
        raise NotImplementedError

    def fixed_effect_held(self, j: int) -> HeldFixedEffect:
        raise NotImplementedError

    def fixed_effects_at(self, phi: np.ndarray) -> np.ndarray:
        """The fixed-effects estimates at ``phi`` (those that minimize the deviance there)."""
        raise NotImplementedError

    def deviance_at(self, phi: np.ndarray, beta: np.ndarray) -> float:
        """The deviance at (phi, beta), for views that search the fixed effects (infinite where it
        cannot be evaluated)."""
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------------------
    @property
    def reml(self) -> bool:
        return self.fit.reml

    @property
    def deviance(self) -> float:
        return self.fit.deviance

    @property
    def frame(self):
        return self.fit.frame

    @property
    def varpar(self) -> VarianceParameters:
        return self.fit.varpar

    @property
    def theta(self) -> np.ndarray:
        return self.phi[: self.n_theta]

    @property
    def n_theta(self) -> int:
        return sum(part.stop - part.start for part in self.theta_slices)

    @property
    def n_variance(self) -> int:
        """Variance parameters in the vector: sd/cor, the structure's, sigma."""
        return len(self.phi) + 1

    @property
    def fixed_se(self) -> np.ndarray:
        return np.sqrt(np.diag(self.fit.vcov.to_numpy()))

    def names(self, old_names: bool = True) -> list[str]:
        """Names: lme4's (``.sig01``, ... or ``sd_...``), the structure's, sigma, the fixed effects."""
        return parameter_names(self.fit, old_names)

    def parameters(self) -> np.ndarray:
        """The vector at the fit."""
        return np.concatenate([self.from_varpar(self.phi, self.fit.sigma), self.fit.fixef.to_numpy()])

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounds of the vector: lme4's for sd/cor and sigma, none for the rest."""
        lower, upper = sdcor_bounds(self)
        free = np.full(len(self.phi) - self.n_theta, np.inf)
        fixed = np.full(len(self.frame.fixed_names), np.inf)
        return (
            np.concatenate([lower[:-1], -free, lower[-1:], -fixed]),
            np.concatenate([upper[:-1], free, upper[-1:], fixed]),
        )

    def to_varpar(self, variance: np.ndarray) -> tuple[np.ndarray, float] | None:
        """(phi, sigma) from the vector's variance part; None if it gives no covariance."""
        variance = np.asarray(variance, dtype=float)
        sigma = variance[-1]
        theta = sdcor_to_theta(self, np.append(variance[: self.n_theta], sigma))
        if theta is None:
            return None
        return np.concatenate([theta, variance[self.n_theta : -1]]), sigma

    def from_varpar(self, phi: np.ndarray, sigma: float) -> np.ndarray:
        """The vector's variance part from (phi, sigma)."""
        sdcor = theta_to_sdcor(self, phi[: self.n_theta], sigma)
        return np.concatenate([sdcor[:-1], phi[self.n_theta :], [sigma]])

    def reported(self, rows: np.ndarray) -> np.ndarray:
        """Rows of the vector with the structure's parameters on nlme's scale."""
        rows = np.array(rows, dtype=float, ndmin=2)
        part = slice(self.n_theta, len(self.phi))
        if part.stop > part.start:
            rows[:, part] = [self.structure_reported(row) for row in rows[:, part]]
        return rows


class LmerProfileView(ProfileView):
    """An lmer fit: phi is theta; held fixed effects update the fit's cross-products."""

    def __init__(self, fit: LinearMixedModel):
        self.fit = fit
        self.phi = fit.theta
        self.phi_lower = fit.objective.lower_bounds
        self.covariances = fit.covariances
        self.theta_slices = fit.theta_slices

    def refit(self, reml: bool | None = None, start: np.ndarray | None = None) -> LmerProfileView:
        return LmerProfileView(self.fit.refit(reml=reml, start=start))

    def fixed_effect_held(self, j: int) -> LmerFixedEffectHeld:
        return LmerFixedEffectHeld(self.fit, j)

    def fixed_effects_at(self, phi: np.ndarray) -> np.ndarray:
        objective = self.fit.varpar.terms.objective  # its own chol (the fit's stays at the optimum)
        if not np.array_equal(objective.theta, phi):
            objective.update(phi)
        return objective.chol.solve()[0]


class LmerFixedEffectHeld:
    """The ML objective over theta with fixed effect ``j`` held at a value, on updated cross-products.

    The [X y] part of the cross-products loses column ``j`` and its response column becomes
    ``y - b x_j``: the blocks X'y, y'y and Z'y change linearly in ``b`` and are rewritten in place
    (in the blocks' response units, where ``b`` is ``(b - shift_j) / scale``).
    """

    def __init__(self, model: LinearMixedModel, j: int):
        cross, p = model.cross, model.n_fixed
        keep = [i for i in range(p) if i != j] + [p]
        self.j, self.p = j, p
        self._y_z = [block[p].copy() for block in cross.xyz]
        self._x_z = [block[j].copy() for block in cross.xyz]
        self._xy = cross.xy.copy()
        self._keep_x = keep[:-1]
        self.cross = CrossProducts(
            cross.diag,
            cross.off,
            [block[keep].copy() for block in cross.xyz],
            cross.xy[np.ix_(keep, keep)].copy(),
            cross.nobs,
            cross.sum_log_weights,
            cross.units.without(j),
        )
        self._units = cross.units
        self.objective = ProfiledObjective(BlockedCholesky(self.cross, p - 1), model.covariances, reml=False)
        self.lower_bounds = self.objective.lower_bounds

    def hold(self, value: float) -> None:
        """Set the response column to ``y - value x_j``."""
        xy, j, p = self._xy, self.j, self.p
        value = self._units.internal_coefficient(j, value)
        last = self.cross.xy.shape[0] - 1
        for reduced, y_z, x_z in zip(self.cross.xyz, self._y_z, self._x_z):
            reduced[last] = y_z - value * x_z
        x_y = xy[self._keep_x, p] - value * xy[self._keep_x, j]
        self.cross.xy[last, :last] = self.cross.xy[:last, last] = x_y
        self.cross.xy[last, last] = xy[p, p] - 2 * value * xy[j, p] + value * value * xy[j, j]

    def __call__(self, phi: np.ndarray) -> float:
        return self.objective(phi)

    def estimates(self, phi: np.ndarray) -> tuple[float, np.ndarray] | None:
        if not self.objective.update(phi):
            return None
        chol = self.objective.chol
        sigma = np.sqrt(chol.pwrss() / chol.cross.nobs)
        return sigma, chol.solve()[0] if chol.nfixed else np.zeros(0)
