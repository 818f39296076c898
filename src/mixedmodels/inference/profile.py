"""Likelihood profiles and profile confidence intervals, with the conventions of lme4's ``profile.merMod``.

One implementation for lmer, lme, gls and glmer fits: it reads a fit through its ``profile_view()``
(:mod:`.profile_view`), which gives the parameter vector, ML refits and the objective with a fixed
effect held; gls and lme fits add their residual structure's parameters (nlme's corStruct and
varStruct, profiled on their unconstrained scale and reported on nlme's) before sigma.  glmer fits
(``models.glmm.profile``) have no sigma (``fixed_sigma``) and their deviance is the Laplace one; as
lme4's, each of their profile points is one search over all the parameters not held, the fixed
effects with theta (``searches_fixed_effects``), started at the neighbouring point.

For each parameter ``psi`` of lme4's vector (sd/cor of the random effects, sigma, fixed effects; see
:mod:`.parameters`) the profile is ``zeta(psi) = sign(psi - psi_hat) sqrt(d(psi) - d_hat)``, where
``d(psi)`` is the deviance minimized over all other parameters with ``psi`` held fixed and ``d_hat``
the minimum (Bates et al. 2015, section 5.1; Bates 2010, lme4 book ch. 1.5).  As lme4 does:

* the profile is always of the ML deviance: a REML fit is first refitted by ML (lme4's ``devfun2``
  calls ``refitML``), so ``zeta = 0`` at the ML estimates;
* a variance parameter is profiled by minimizing the profiled-beta deviance
  ``log|L|^2 + pwrss/sigma^2 + n log(2 pi sigma^2)`` (:func:`.engine.deviance.deviance_at_sigma`)
  over all other variance parameters (lme4's ``devfun2``).  lme4 searches over the other sd/cor
  values directly; here the search is over theta and sigma, written so that the held parameter keeps
  its value (see ``_VarianceHeld``), which has only box bounds and no correlation matrices that are
  not positive definite.  The minimum is the same; the search is more reliable for terms with three
  or more columns;
* a fixed effect ``beta_j`` is profiled by holding it at a value ``b`` and refitting the variance
  parameters: the model loses column ``j`` and its response becomes ``y - b x_j`` (an offset).  For
  lmer that is a linear update of the existing [X y] cross-product blocks (no pass over the rows);
  gls and lme assemble the problem with that offset (``nlme.fitting.assemble``'s ``held``);
* the trace steps outward from the estimate with lme4's rule (steps of about ``delta`` in zeta,
  ``delta = cutoff / 8``, ``cutoff = sqrt(qchisq(1 - alphamax, n_parameters))``).

Confidence limits solve ``zeta(psi) = qnorm(alpha/2)`` and ``qnorm(1 - alpha/2)`` by Brent's method on
the exact profile, in the bracket the trace gives.  lme4 interpolates the trace with splines instead,
which is accurate to about 1e-4 on smooth profiles but not near a correlation of +-1 (on
``score ~ Machine + (0 + Machine | Worker)`` lme4's limits for the correlations sit at zeta from
1.58 to 1.99 instead of 1.96).
A limit the profile does not reach before a bound is the bound (0 for a standard deviation, +-1 for a
correlation, Inf above).  Where lme4 stops or gives NaN, this module goes on:

* a point whose inner optimization stopped in a local minimum shows as a profile that is not
  monotone on one side of the estimate; such a point is re-optimized from its outer neighbour's
  parameters (e.g. a slope SD of 0, where every correlation has the same deviance).  A side that is
  still not monotone gives a NaN limit with a warning, as lme4's ``confint.thpr``, the other side
  is kept;
* a point with a deviance below the fit's shows that the ML fit had not reached its optimum (lme4
  stops with "profiling detected new, lower deviance"): the model is refitted by ML from that point,
  with a ``ConvergenceWarning``, and the profiles start again from the new optimum.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ..engine.covariance import Unstructured
from ..engine.optimize import OptimizerControl, minimize_bobyqa
from ..engine.threads import limited_threads
from ..errors import ConvergenceWarning, FitError, check_integer, check_positive, check_probability
from .parameters import semidefinite_cholesky

if TYPE_CHECKING:
    from .profile_view import HeldFixedEffect, ProfileView

__all__ = ["LikelihoodProfile", "profile_frame", "profile_table"]

# BOBYQA run to a tight tolerance: the fit's default (a moderate tolerance, then Newton steps) stops
# short near a bound, e.g. a correlation at 1 on sleepstudy's .sig01 profile (0.1 in deviance).
_INNER_CONTROL = OptimizerControl(
    check_convergence=False, ftol_abs=1e-12, ftol_rel=1e-14, xtol_abs=1e-10, newton_steps=0
)
# the joint search of a glmer profile point: it starts at the neighbouring point, so BOBYQA starts with
# small steps (in units of theta and of the fixed effects' standard errors); run to 1e-10 in deviance it
# needs fewer evaluations than a looser run finished by finite-difference Newton steps
_JOINT_CONTROL = OptimizerControl(
    check_convergence=False, ftol_abs=1e-10, xtol_abs=1e-8, restarts=0, newton_steps=0
)
_JOINT_STEP = 0.05
_BRENT_XTOL = 1e-8  # a limit's tolerance, relative to the trace's bracket around it
_BRENT_RTOL = 4 * np.finfo(float).eps  # brentq's least
_NON_MONOTONE_TOL = 0.01  # lme4's non.mono.tol
_MIN_STEP = 1e-6  # lme4's minstep
_LOWER_DEVIANCE_TOL = 1e-6  # relative: a profile point this far below the fit's deviance is a new optimum
_MAX_REFITS = 3  # new optima a profile may move to before it gives up

T = TypeVar("T")


class _LowerDeviance(Exception):
    """Raised by a profile point whose deviance is below the fit's; carries the point's parameters."""

    def __init__(self, params: np.ndarray, deviance: float):
        super().__init__(deviance)
        self.params, self.deviance = params, deviance


class _VarianceHeld:
    """The ML deviance over (phi, sigma) with one sd/cor parameter, a residual structure's parameter,
    or sigma, held at a value.

    The free parameters keep the constraint by construction, so the optimizer sees only theta's
    bounds (a search over sd/cor directly would meet correlation matrices that are not positive
    definite, and stall there):

    * sigma held: phi is free;
    * a residual structure's (unconstrained) parameter held: that entry of phi is the value;
    * a structured term's sd or correlation parameter held: that entry of theta follows from the
      value (``sd / sigma``, or ``rho / sqrt(1 - rho^2)``);
    * an unstructured term's sd_i or cor_ij held: the term is written through the Cholesky factor
      ``L`` of its covariance with the columns reordered to put ``i`` (and ``j``) first, so sd_i fixes
      ``L[0, 0] = sd_i / sigma`` and cor_ij fixes the direction of row 1, ``L[1] = n (r, sqrt(1 - r^2))``
      with ``n >= 0`` free; the term's theta is the Cholesky factor of that covariance in the
      original order.

    The free vector is phi (the held term's slice of theta replaced by the entries of ``L``, less the
    one the value fixes), then sigma unless it is held or the view fixes it (``fixed_sigma``).
    """

    def __init__(self, view: ProfileView, index: int):
        self.view = view
        n_phi = len(view.phi)
        self.sigma_held = index == n_phi
        self.fixed_sigma = view.fixed_sigma  # a family without a dispersion: sigma is 1, not searched
        self.sigma_free = not self.sigma_held and self.fixed_sigma is None
        self.part: slice | None = None
        self.reordered: Unstructured | None = None
        self.is_sd = False
        lower = view.phi_lower.copy()
        fixed = None
        if view.n_theta <= index < n_phi:
            fixed = index
        elif not self.sigma_held:
            k = next(k for k, part in enumerate(view.theta_slices) if part.start <= index < part.stop)
            self.part, covariance = view.theta_slices[k], view.covariances[k]
            local = index - self.part.start
            if isinstance(covariance, Unstructured):
                rows, cols = covariance.positions
                i, j = int(rows[local]), int(cols[local])
                self.is_sd = i == j
                first = [i] if self.is_sd else [i, j]
                self.order = np.array(first + [c for c in range(covariance.size) if c not in first])
                self.covariance = covariance
                self.reordered = Unstructured(covariance.size)
                r_rows, r_cols = self.reordered.positions
                at = {(int(a), int(b)): n for n, (a, b) in enumerate(zip(r_rows, r_cols))}
                fixed = self.part.start + (at[0, 0] if self.is_sd else at[1, 1])
                self._scale_entry = self.part.start + at.get((1, 0), 0)  # n, for a correlation
                lower[self.part] = self.reordered.lower_bounds
                if not self.is_sd:
                    lower[self._scale_entry] = 0.0
            else:
                self.is_sd = local < covariance.n_sd
                fixed = index
        self.free = np.ones(n_phi, dtype=bool)
        if fixed is not None:
            self.free[fixed] = False
        self.fixed = fixed
        self.lower = np.concatenate([lower[self.free], [0.0] if self.sigma_free else []])

    def unpack(self, z: np.ndarray, value: float) -> tuple[np.ndarray, float] | None:
        """(phi, sigma) for free parameters ``z``; None where they give no valid covariance."""
        full = np.zeros(len(self.free))
        full[self.free] = z[: int(self.free.sum())]
        sigma = value if self.sigma_held else z[-1] if self.sigma_free else self.fixed_sigma
        if not sigma > 0:
            return None
        if self.sigma_held:
            return full, sigma
        if self.part is None:  # a residual structure's parameter: the held entry is phi's own
            full[self.fixed] = value
            return full, sigma
        if self.reordered is None:  # a structured term: the held entry is theta's own
            if self.is_sd:
                full[self.fixed] = value / sigma
            elif abs(value) < 1:
                full[self.fixed] = value / np.sqrt(1.0 - value * value)
            else:
                return None
            return full, sigma
        t = self.reordered.lambda_(full[self.part])
        if self.is_sd:
            t[0, 0] = value / sigma
        else:
            n = t[1, 0]
            t[1, 0], t[1, 1] = value * n, np.sqrt(max(1.0 - value * value, 0.0)) * n
        back = np.argsort(self.order)
        cov = (t @ t.T)[np.ix_(back, back)]
        term = semidefinite_cholesky(cov)
        if term is None:
            return None
        full[self.part] = term[self.covariance.positions]
        return full, sigma

    def pack(self, phi: np.ndarray, sigma: float) -> np.ndarray:
        """Free parameters for (phi, sigma) (the held value is taken from them, not kept)."""
        full = np.asarray(phi, dtype=float).copy()
        if self.reordered is not None:
            t = self.covariance.lambda_(full[self.part])
            reordered = semidefinite_cholesky((t @ t.T)[np.ix_(self.order, self.order)])
            if reordered is None:
                reordered = np.eye(len(self.order))
            entries = reordered[self.reordered.positions]
            if not self.is_sd:
                entries[self._scale_entry - self.part.start] = np.hypot(reordered[1, 0], reordered[1, 1])
            full[self.part] = entries
        return np.concatenate([full[self.free], [sigma] if self.sigma_free else []])

    def deviance(self, z: np.ndarray, value: float) -> float:
        unpacked = self.unpack(z, value)
        if unpacked is None:
            return np.inf
        return self.view.varpar.deviance(np.append(*unpacked))


class LikelihoodProfile:
    """Profiles of the ML deviance of a fitted model in each of lme4's parameters.

    ``alphamax``, ``maxpts``, ``delta`` and ``maxmult`` are lme4's arguments of the same names.
    Use :meth:`limits_table` and :func:`profile_table` for several parameters: they start again from
    a new optimum if a profile finds one (see the module's docstring).
    """

    def __init__(
        self,
        model,
        alphamax: float = 0.01,
        maxpts: int = 100,
        delta: float | None = None,
        maxmult: float = 10.0,
    ):
        alphamax = check_probability("alphamax", alphamax)
        self.maxpts = check_integer("maxpts", maxpts)
        if delta is not None:
            delta = check_positive("delta", delta)
        self.model = model
        view = model.profile_view()
        self._set_fit(view.refit(reml=False) if view.reml else view)
        self.cutoff = float(np.sqrt(stats.chi2.ppf(1 - alphamax, len(self.optimum))))
        self.delta = self.cutoff / 8 if delta is None else delta
        self.maxmult = float(maxmult)

    def _set_fit(self, ml: ProfileView) -> None:
        """Profile around the ML fit ``ml``: its deviance, estimates, bounds and held-parameter objectives."""
        self.ml = ml
        self.base = ml.deviance
        self.optimum = ml.parameters()
        self.n_variance = ml.n_variance
        self.lower, self.upper = ml.bounds()
        self._fixed_se = ml.fixed_se
        self._held_fixed: dict[int, HeldFixedEffect] = {}
        self._held_variance: dict[int, _VarianceHeld] = {}

    def names(self, old_names: bool = True) -> list[str]:
        return self.ml.names(old_names)

    def restarting(self, work: Callable[[], T]) -> T:
        """``work()``, run again around the new optimum each time a profile point finds a lower deviance."""
        for _ in range(_MAX_REFITS):
            try:
                return work()
            except _LowerDeviance as lower:
                phi = self.ml.to_varpar(lower.params[: self.n_variance])[0]
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    ml = self.ml.refit(reml=False, start=phi)
                fit = "the fit" if self.ml.fit is self.model else "the ML refit of the REML fit"
                warnings.warn(
                    f"profiling found a deviance {self.base - lower.deviance:.3g} below the fit's, so "
                    f"{fit} had not converged: the profile is of a new ML fit from that point (deviance "
                    f"{ml.deviance:.6f}; refit the model to use it)",
                    ConvergenceWarning,
                    stacklevel=3,
                )
                self._set_fit(ml)
        try:
            return work()
        except _LowerDeviance as lower:
            raise FitError(
                f"profiling keeps finding lower deviances ({lower.deviance:.6f} after {_MAX_REFITS} new "
                "fits): the model's optimum cannot be located; simplify the random effects"
            ) from None

    def limits_table(self, indices: list[int], level: float = 0.95) -> np.ndarray:
        """Lower and upper limits (one row per parameter index), all from the same optimum, with a
        residual structure's parameters on nlme's scale (:meth:`reported_limits`)."""
        return self.restarting(
            lambda: np.array([self.reported_limits(i, self.limits(i, level)) for i in indices]).reshape(-1, 2)
        )

    def reported_limits(self, index: int, limits: np.ndarray) -> np.ndarray:
        """Limits of parameter ``index`` on its reported scale (a residual structure's parameter is
        profiled on its unconstrained scale, a monotone function of the reported one)."""
        rows = np.tile(self.optimum, (2, 1))
        rows[:, index] = limits
        reported = self.ml.reported(rows)[:, index]
        return reported if np.isnan(reported).any() else np.sort(reported)

    # -- one point of a profile ----------------------------------------------------------------------
    def _start_varpar(self, params: np.ndarray) -> tuple[np.ndarray, float]:
        """(phi, sigma) of a parameter vector to start from (the fit's phi if it gives no covariance)."""
        unpacked = self.ml.to_varpar(params[: self.n_variance])
        return (self.ml.phi, params[self.n_variance - 1]) if unpacked is None else unpacked

    def deviance(self, index: int, params: np.ndarray) -> float:
        """ML deviance at a point of parameter ``index``'s profile given all parameters ``params``.

        The fixed effects other than a profiled one are profiled out (they are not read), so this is
        the function the profile minimizes, evaluated at given values of the parameters it optimizes
        (lme4's devfun2 for a variance parameter).  A view that searches the fixed effects (glmer) reads
        them too: its profile minimizes over all of them (lme4's devfun2 over (theta, beta)).
        """
        params = np.asarray(params, dtype=float)
        unpacked = self.ml.to_varpar(params[: self.n_variance])
        if unpacked is None or not unpacked[1] > 0:
            return np.inf
        with limited_threads():
            if self.ml.searches_fixed_effects:
                return self.ml.deviance_at(unpacked[0], params[self.n_variance :])
            if index < self.n_variance:
                return self.ml.varpar.deviance(np.append(*unpacked))
            held = self._held_fixed_effect(index - self.n_variance)
            held.hold(params[index])
            return held(unpacked[0])

    def _held_fixed_effect(self, j: int) -> HeldFixedEffect:
        if j not in self._held_fixed:
            self._held_fixed[j] = self.ml.fixed_effect_held(j)
        return self._held_fixed[j]

    def _row(self, index: int, value: float, deviance: float, params: np.ndarray) -> np.ndarray:
        """[zeta, params] of a profile point; raises ``_LowerDeviance`` below the fit's deviance."""
        difference = deviance - self.base
        if difference < -_LOWER_DEVIANCE_TOL * max(1.0, abs(self.base)):
            raise _LowerDeviance(params, deviance)
        zeta = np.sign(value - self.optimum[index]) * np.sqrt(max(difference, 0.0))
        return np.concatenate([[zeta], params])

    def point(self, index: int, value: float, start: np.ndarray | None = None) -> np.ndarray:
        """[zeta, all parameters] with parameter ``index`` held at ``value``, the others optimized.

        ``start`` is a parameter vector to start the optimization from (default: the estimates).
        """
        start = self.optimum if start is None else np.asarray(start, dtype=float)
        with limited_threads():
            if index < self.n_variance:
                return self._variance_point(index, value, start)
            return self._fixed_point(index - self.n_variance, value, start)

    def _variance_point(self, index: int, value: float, start: np.ndarray) -> np.ndarray:
        held = self._held_variance.get(index)
        if held is None:
            held = self._held_variance[index] = _VarianceHeld(self.ml, index)
        z0 = held.pack(*self._start_varpar(start))
        if self.ml.searches_fixed_effects:
            return self._joint_point(index, value, start, z0, held.lower, lambda z: held.unpack(z, value))
        result = minimize_bobyqa(lambda z: held.deviance(z, value), z0, held.lower, _INNER_CONTROL)
        unpacked = held.unpack(result.x, value)
        if unpacked is None or not np.isfinite(held.deviance(result.x, value)):
            return np.full(1 + len(self.optimum), np.nan)
        beta = self.ml.fixed_effects_at(unpacked[0])
        variance = self.ml.from_varpar(*unpacked)
        variance[index] = value
        return self._row(index, value, result.fun, np.concatenate([variance, beta]))

    def _fixed_point(self, j: int, value: float, start: np.ndarray) -> np.ndarray:
        if self.ml.searches_fixed_effects:
            phi0, sigma = self._start_varpar(start)
            return self._joint_point(
                self.n_variance + j, value, start, phi0, self.ml.phi_lower, lambda phi: (phi, sigma)
            )
        held = self._held_fixed_effect(j)
        held.hold(value)
        result = minimize_bobyqa(held, self._start_varpar(start)[0], held.lower_bounds, _INNER_CONTROL)
        estimates = held.estimates(result.x)
        if estimates is None:
            return np.full(1 + len(self.optimum), np.nan)
        sigma, others = estimates
        beta = np.insert(others, j, value)
        variance = self.ml.from_varpar(result.x, sigma)
        return self._row(self.n_variance + j, value, result.fun, np.concatenate([variance, beta]))

    def _joint_point(
        self,
        index: int,
        value: float,
        start: np.ndarray,
        z0: np.ndarray,
        z_lower: np.ndarray,
        unpack: Callable[[np.ndarray], tuple[np.ndarray, float] | None],
    ) -> np.ndarray:
        """A profile point of a view that searches the fixed effects (glmer), as lme4's: one search over
        the free variance parameters ``z`` (``unpack`` gives (phi, sigma)) and the fixed effects not
        held, from ``start``'s, the fixed effects in units of their standard errors."""
        held_beta = index - self.n_variance
        free = np.arange(len(self._fixed_se)) != held_beta
        beta = np.asarray(start[self.n_variance :], dtype=float).copy()
        if held_beta >= 0:
            beta[held_beta] = value
        k = len(z0)

        def deviance(x: np.ndarray) -> float:
            unpacked = unpack(x[:k])
            if unpacked is None:
                return np.inf
            beta[free] = x[k:]
            return self.ml.deviance_at(unpacked[0], beta)

        x0 = np.concatenate([z0, beta[free]])
        lower = np.concatenate([z_lower, np.full(int(free.sum()), -np.inf)])
        scale = np.concatenate([np.ones(k), self._fixed_se[free]])
        step = np.full(len(x0), _JOINT_STEP) * scale
        result = minimize_bobyqa(deviance, x0, lower, _JOINT_CONTROL, initial_step=step, scale=scale)
        unpacked = unpack(result.x[:k])
        if unpacked is None or not np.isfinite(result.fun):
            return np.full(1 + len(self.optimum), np.nan)
        beta[free] = result.x[k:]
        variance = self.ml.from_varpar(*unpacked)
        if index < self.n_variance:
            variance[index] = value
        return self._row(index, value, result.fun, np.concatenate([variance, beta]))

    # -- traces -----------------------------------------------------------------------------------------
    def _next_value(self, previous: np.ndarray, current: np.ndarray, column: int, index: int) -> float:
        """lme4's ``nextpar``: a step of about ``delta`` in zeta, from the last two points."""
        change = current[column] - previous[column]
        rise = current[0] - previous[0]
        if not np.isfinite(rise) or rise == 0:
            step = _MIN_STEP
        else:
            step = self.delta * change / rise
            if step < 0:
                step = _MIN_STEP
            elif abs(step) > self.maxmult * abs(change):
                step = np.sign(step) * self.maxmult * abs(change)
        value = current[column] + np.sign(change) * step
        return float(min(self.upper[index], max(self.lower[index], value)))

    def _extend(self, rows: list[np.ndarray], index: int, cutoff: float) -> list[np.ndarray]:
        """Add points until |zeta| passes ``cutoff``, a bound is reached or there are maxpts rows."""
        column = 1 + index
        while (
            len(rows) < self.maxpts
            and self.lower[index] < rows[-1][column] < self.upper[index]
            and abs(rows[-1][0]) <= cutoff  # a failed point (NaN) also ends the trace
        ):
            value = self._next_value(rows[-2], rows[-1], column, index)
            rows.append(self.point(index, value, rows[-1][1:]))
        return rows

    def trace(self, index: int, cutoff: float | None = None) -> np.ndarray:
        """Rows [zeta, parameters] along the profile of parameter ``index``, sorted by its value.

        The trace goes out in both directions until |zeta| exceeds ``cutoff`` (default: lme4's, from
        ``alphamax``) or the parameter reaches a bound.
        """
        cutoff = self.cutoff if cutoff is None else cutoff
        estimate = self.optimum[index]
        at_optimum = np.concatenate([[0.0], self.optimum])
        if index < self.n_variance:
            first = 0.001 if estimate == 0 else estimate * 1.01
        else:
            first = estimate + self.delta * self._fixed_se[index - self.n_variance]
        shifted = self.point(index, first)
        one_side = self._extend([at_optimum, shifted], index, cutoff)[1:]
        other_side = []
        if estimate > self.lower[index]:
            other_side = self._extend([shifted, at_optimum], index, cutoff)[2:]
        rows = [at_optimum]
        for side in (one_side, other_side):  # each in outward order
            rows += self._monotone_outward(index, side)
        table = np.unique(np.array(rows), axis=0)
        return table[np.argsort(table[:, 1 + index], kind="stable")]

    def _monotone_outward(self, index: int, rows: list[np.ndarray]) -> list[np.ndarray]:
        """One side of a trace (points in outward order) with its local minima repaired.

        Outward, |zeta| cannot fall: where it does, the inner point's optimization stopped above the
        minimum, and it is optimized again from the outer point's parameters (kept if lower).
        """
        rows = list(rows)
        column = 1 + index
        for _ in range(len(rows)):
            repaired = False
            for k in range(len(rows) - 1, 0, -1):
                inner, outer = rows[k - 1], rows[k]
                if abs(outer[0]) < abs(inner[0]) - _NON_MONOTONE_TOL:
                    again = self.point(index, inner[column], outer[1:])
                    if abs(again[0]) < abs(inner[0]) - _NON_MONOTONE_TOL:
                        rows[k - 1], repaired = again, True
            if not repaired:
                break
        return rows

    # -- limits -----------------------------------------------------------------------------------------
    def limits(self, index: int, level: float = 0.95, trace: np.ndarray | None = None) -> np.ndarray:
        """Lower and upper profile confidence limits of parameter ``index``.

        Each side of the estimate is read on its own: a side whose profile is not monotone gives a
        NaN limit (with a warning), the other side's limit is kept.
        """
        targets = stats.norm.ppf([(1 - level) / 2, (1 + level) / 2])
        if trace is None:
            trace = self.trace(index, cutoff=float(np.max(np.abs(targets))))
        column = 1 + index
        trace = trace[np.isfinite(trace[:, 0])]
        estimate = self.optimum[index]
        bounds = (self.lower[index], self.upper[index])
        result = np.empty(2)
        for k, (target, side, where) in enumerate(zip(targets, ("lower", "upper"), ("below", "above"))):
            half = trace[trace[:, column] <= estimate] if k == 0 else trace[trace[:, column] >= estimate]
            zetas = half[:, 0]
            if np.any(np.diff(zetas) < -_NON_MONOTONE_TOL):
                warnings.warn(
                    f"non-monotonic profile for {self.names()[index]} {where} its estimate: no {side} limit",
                    RuntimeWarning,
                    stacklevel=3,
                )
                result[k] = np.nan
                continue
            above = np.flatnonzero(zetas >= target)
            if len(above) == 0 or above[0] == 0:
                # the profile does not reach the target: lme4 reports the bound (NaN for fixed effects)
                bound = bounds[0] if len(above) else bounds[1]
                result[k] = bound if index < self.n_variance else np.nan
                continue
            i = above[0]
            if zetas[i] == target:
                result[k] = half[i, column]
            else:
                result[k] = self._crossing(index, half[i - 1], half[i], target)
        return result

    def _crossing(self, index: int, left: np.ndarray, right: np.ndarray, target: float) -> float:
        """The value between two trace points where zeta = target, by Brent's method.

        The ends keep their trace values (a re-optimization from another start could land elsewhere
        on a flat profile); the first point inside starts from the end nearer the target, each later
        one from the last point found (Brent's iterates close in on the limit).
        """
        column = 1 + index
        start = (right if abs(right[0] - target) < abs(left[0] - target) else left)[1:]
        known = {left[column]: left[0], right[column]: right[0]}

        def excess(value: float) -> float:
            nonlocal start
            if value in known:
                return known[value] - target
            row = self.point(index, value, start)
            if np.all(np.isfinite(row)):
                start = row[1:]
            return row[0] - target

        # to 1e-8 of the bracket (a step of about delta in zeta): the points are found to ~1e-10 in
        # deviance, so zeta itself is known to ~1e-9
        xtol = _BRENT_XTOL * abs(right[column] - left[column])
        return optimize.brentq(excess, left[column], right[column], xtol=xtol, rtol=_BRENT_RTOL)


def profile_table(profile: LikelihoodProfile, indices: list[int], old_names: bool = True) -> pd.DataFrame:
    """Tidy traces: one row per point, columns parameter, value, zeta and every parameter's value."""
    traces = profile.restarting(lambda: [profile.trace(index) for index in indices])
    names = profile.names(old_names)
    frames = []
    for index, trace in zip(indices, traces):
        trace[:, 1:] = profile.ml.reported(trace[:, 1:])
        frame = pd.DataFrame(trace[:, 1:], columns=names)
        frame.insert(0, "zeta", trace[:, 0])
        frame.insert(0, "value", trace[:, 1 + index])
        frame.insert(0, "parameter", names[index])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def profile_frame(
    model, parm=None, old_names: bool = True, alphamax: float = 0.01, maxpts: int = 100, delta=None
) -> pd.DataFrame:
    """The profiles of ``model``'s parameters ``parm`` (see ``confint``) as :func:`profile_table`."""
    from .confint import select_parameters

    indices = select_parameters(model, parm, old_names)
    profile = LikelihoodProfile(model, alphamax=alphamax, maxpts=maxpts, delta=delta)
    return profile_table(profile, indices, old_names)
