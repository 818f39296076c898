"""Likelihood profiles and profile confidence intervals, with the conventions of lme4's ``profile.merMod``.

For each parameter ``psi`` of lme4's vector (sd/cor of the random effects, sigma, fixed effects; see
:mod:`.parameters`) the profile is ``zeta(psi) = sign(psi - psi_hat) sqrt(d(psi) - d_hat)``, where
``d(psi)`` is the deviance minimized over all other parameters with ``psi`` held fixed and ``d_hat``
the minimum (Bates et al. 2015, section 5.1; Bates 2010, lme4 book ch. 1.5).  As lme4 does:

* the profile is always of the ML deviance: a REML fit is first refitted by ML (lme4's ``devfun2``
  calls ``refitML``), so ``zeta = 0`` at the ML estimates;
* a variance parameter is profiled by minimizing the deviance over the other sd/cor parameters and
  sigma with BOBYQA, within sd >= 0, -1 <= cor <= 1, sigma >= 0 (the profiled-beta deviance
  ``log|L|^2 + pwrss/sigma^2 + n log(2 pi sigma^2)``);
* a fixed effect ``beta_j`` is profiled by holding it at a value ``b`` and refitting theta: the model
  loses column ``j`` and its response becomes ``y - b x_j``.  With cross-products that is a linear
  update of the existing [X y] blocks (no pass over the rows);
* the trace steps outward from the estimate with lme4's rule (steps of about ``delta`` in zeta,
  ``delta = cutoff / 8``, ``cutoff = sqrt(qchisq(1 - alphamax, n_parameters))``).

Confidence limits solve ``zeta(psi) = qnorm(alpha/2)`` and ``qnorm(1 - alpha/2)`` by Brent's method on
the exact profile, in the bracket the trace gives (lme4 interpolates the trace with splines instead).
A limit the profile does not reach before a bound is the bound (0 for a standard deviation, +-1 for a
correlation, Inf above), and a non-monotonic profile gives NaN, as lme4's ``confint.thpr``.
"""

from __future__ import annotations

import warnings
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import optimize, stats

from ..engine.blas import single_threaded_blas
from ..engine.cholesky import BlockedCholesky
from ..engine.crossprod import CrossProducts
from ..engine.deviance import ProfiledObjective
from ..engine.optimize import OptimizerControl, minimize_bobyqa
from .parameters import model_parameters, parameter_names, sdcor_bounds, sdcor_to_theta, theta_to_sdcor
from .varpar import VarianceParameters

if TYPE_CHECKING:
    from ..lmm import LinearMixedModel

__all__ = ["LikelihoodProfile", "profile_table"]

_INNER_CONTROL = OptimizerControl(check_convergence=False)
_NON_MONOTONE_TOL = 0.01  # lme4's non.mono.tol
_MIN_STEP = 1e-6  # lme4's minstep


class _FixedEffectHeld:
    """The ML objective over theta with fixed effect ``j`` held at a value, on updated cross-products.

    The [X y] part of the cross-products loses column ``j`` and its response column becomes
    ``y - b x_j``: the blocks X'y, y'y and Z'y change linearly in ``b`` and are rewritten in place.
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
        )
        self.objective = ProfiledObjective(BlockedCholesky(self.cross, p - 1), model.covariances, reml=False)

    def hold(self, value: float) -> None:
        """Set the response column to ``y - value x_j``."""
        xy, j, p = self._xy, self.j, self.p
        last = self.cross.xy.shape[0] - 1
        for reduced, y_z, x_z in zip(self.cross.xyz, self._y_z, self._x_z):
            reduced[last] = y_z - value * x_z
        x_y = xy[self._keep_x, p] - value * xy[self._keep_x, j]
        self.cross.xy[last, :last] = self.cross.xy[:last, last] = x_y
        self.cross.xy[last, last] = xy[p, p] - 2 * value * xy[j, p] + value * value * xy[j, j]


class LikelihoodProfile:
    """Profiles of the ML deviance of a fitted model in each of lme4's parameters.

    ``alphamax``, ``maxpts``, ``delta`` and ``maxmult`` are lme4's arguments of the same names.
    """

    def __init__(
        self,
        model: LinearMixedModel,
        alphamax: float = 0.01,
        maxpts: int = 100,
        delta: float | None = None,
        maxmult: float = 10.0,
    ):
        self.model = model
        with single_threaded_blas():
            self.ml = model.refit(reml=False) if model.reml else model
        self.base = self.ml.deviance
        self.optimum = model_parameters(self.ml)
        self.n_variance = len(self.ml.theta) + 1
        lower, upper = sdcor_bounds(self.ml)
        n_fixed = self.ml.n_fixed
        self.lower = np.concatenate([lower, np.full(n_fixed, -np.inf)])
        self.upper = np.concatenate([upper, np.full(n_fixed, np.inf)])
        self.cutoff = float(np.sqrt(stats.chi2.ppf(1 - alphamax, len(self.optimum))))
        self.delta = self.cutoff / 8 if delta is None else float(delta)
        self.maxpts = int(maxpts)
        self.maxmult = float(maxmult)
        self._varpar = VarianceParameters(self.ml)
        self._held: dict[int, _FixedEffectHeld] = {}

    @cached_property
    def _fixed_se(self) -> np.ndarray:
        return np.sqrt(np.diag(self.ml.vcov.to_numpy()))

    def names(self, old_names: bool = True) -> list[str]:
        return parameter_names(self.ml, old_names)

    # -- one point of a profile ----------------------------------------------------------------------
    def _variance_deviance(self, sdcor: np.ndarray) -> float:
        """ML deviance at (sd/cor, sigma) with the fixed effects profiled out (lme4's devfun2)."""
        theta = sdcor_to_theta(self.ml, sdcor)
        if theta is None or not sdcor[-1] > 0:
            return np.inf
        return self._varpar.deviance(np.append(theta, sdcor[-1]))

    def deviance(self, index: int, params: np.ndarray) -> float:
        """ML deviance at a point of parameter ``index``'s profile given all parameters ``params``.

        The fixed effects other than a profiled one are profiled out (they are not read), so this is
        the function the profile minimizes, evaluated at given values of the parameters it optimizes.
        """
        params = np.asarray(params, dtype=float)
        with single_threaded_blas():
            if index < self.n_variance:
                return self._variance_deviance(params[: self.n_variance])
            held = self._held_fixed_effect(index - self.n_variance)
            held.hold(params[index])
            theta = sdcor_to_theta(self.ml, params[: self.n_variance])
            return np.inf if theta is None else held.objective(theta)

    def _held_fixed_effect(self, j: int) -> _FixedEffectHeld:
        if j not in self._held:
            self._held[j] = _FixedEffectHeld(self.ml, j)
        return self._held[j]

    def _zeta(self, index: int, value: float, deviance: float) -> float:
        difference = deviance - self.base
        if difference < -1e-6 * max(1.0, abs(self.base)):
            warnings.warn(
                f"profiling found a deviance {-difference:.3g} below the fit's: the fit may not have "
                "converged",
                RuntimeWarning,
                stacklevel=4,
            )
        return float(np.sign(value - self.optimum[index]) * np.sqrt(max(difference, 0.0)))

    def point(self, index: int, value: float, start: np.ndarray | None = None) -> np.ndarray:
        """[zeta, all parameters] with parameter ``index`` held at ``value``, the others optimized.

        ``start`` is a parameter vector to start the optimization from (default: the estimates).
        """
        start = self.optimum if start is None else np.asarray(start, dtype=float)
        with single_threaded_blas():
            if index < self.n_variance:
                return self._variance_point(index, value, start)
            return self._fixed_point(index - self.n_variance, value, start)

    def _variance_point(self, index: int, value: float, start: np.ndarray) -> np.ndarray:
        nvp = self.n_variance
        free = np.arange(nvp) != index
        params = start[:nvp].copy()
        params[index] = value

        def deviance(x: np.ndarray) -> float:
            params[free] = x
            return self._variance_deviance(params)

        x0 = np.clip(start[:nvp][free], self.lower[:nvp][free], self.upper[:nvp][free])
        result = minimize_bobyqa(
            deviance, x0, self.lower[:nvp][free], _INNER_CONTROL, upper=self.upper[:nvp][free]
        )
        params[free] = result.x
        if not np.isfinite(self._variance_deviance(params)):  # also leaves the factor at the optimum
            return np.full(1 + len(self.optimum), np.nan)
        beta = self._varpar.objective.factor.solve()[0]
        return np.concatenate([[self._zeta(index, value, result.fun)], params, beta])

    def _fixed_point(self, j: int, value: float, start: np.ndarray) -> np.ndarray:
        held = self._held_fixed_effect(j)
        held.hold(value)
        objective = held.objective
        theta0 = sdcor_to_theta(self.ml, start[: self.n_variance])
        if theta0 is None:
            theta0 = self.ml.theta
        result = minimize_bobyqa(objective, theta0, objective.lower_bounds, _INNER_CONTROL)
        if not objective.update(result.x):
            return np.full(1 + len(self.optimum), np.nan)
        factor = objective.factor
        sigma = np.sqrt(factor.pwrss() / factor.cross.nobs)
        others = factor.solve()[0] if factor.nfixed else np.zeros(0)
        beta = np.insert(others, j, value)
        sdcor = theta_to_sdcor(self.ml, result.x, sigma)
        zeta = self._zeta(self.n_variance + j, value, result.fun)
        return np.concatenate([[zeta], sdcor, beta])

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
            and not abs(rows[-1][0]) > cutoff
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
        rows = self._extend([at_optimum, shifted], index, cutoff)
        if estimate > self.lower[index]:
            rows += self._extend([shifted, at_optimum], index, cutoff)[2:]
        table = np.unique(np.array(rows), axis=0)
        return table[np.argsort(table[:, 1 + index], kind="stable")]

    # -- limits -----------------------------------------------------------------------------------------
    def limits(self, index: int, level: float = 0.95, trace: np.ndarray | None = None) -> np.ndarray:
        """Lower and upper profile confidence limits of parameter ``index``."""
        targets = stats.norm.ppf([(1 - level) / 2, (1 + level) / 2])
        if trace is None:
            trace = self.trace(index, cutoff=float(np.max(np.abs(targets))))
        column = 1 + index
        trace = trace[np.isfinite(trace[:, 0])]
        values, zetas = trace[:, column], trace[:, 0]
        name = self.names()[index]
        if np.any(np.diff(zetas) < -_NON_MONOTONE_TOL):
            warnings.warn(f"non-monotonic profile for {name}", RuntimeWarning, stacklevel=3)
            return np.full(2, np.nan)
        bounds = (self.lower[index], self.upper[index])
        result = np.empty(2)
        for k, target in enumerate(targets):
            above = np.flatnonzero(zetas >= target)
            if len(above) == 0 or above[0] == 0:
                # the profile does not reach the target: lme4 reports the bound (NaN for fixed effects)
                bound = bounds[0] if len(above) else bounds[1]
                result[k] = bound if index < self.n_variance else np.nan
                continue
            i = above[0]
            if zetas[i] == target:
                result[k] = values[i]
                continue
            start = trace[i if abs(zetas[i] - target) < abs(zetas[i - 1] - target) else i - 1, 1:]
            result[k] = optimize.brentq(
                lambda v, start=start, target=target: self.point(index, v, start)[0] - target,
                values[i - 1],
                values[i],
                xtol=1e-12 * max(abs(values[i]), 1e-3),
                rtol=1e-10,
            )
        return result


def profile_table(profile: LikelihoodProfile, indices: list[int], old_names: bool = True) -> pd.DataFrame:
    """Tidy traces: one row per point, columns parameter, value, zeta and every parameter's value."""
    names = profile.names(old_names)
    frames = []
    for index in indices:
        trace = profile.trace(index)
        frame = pd.DataFrame(trace[:, 1:], columns=names)
        frame.insert(0, "zeta", trace[:, 0])
        frame.insert(0, "value", trace[:, 1 + index])
        frame.insert(0, "parameter", names[index])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
