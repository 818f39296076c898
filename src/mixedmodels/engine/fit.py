"""Fitting a profiled objective: lme4's ``optimizeLmer``, on arrays.

:func:`fit_theta` minimizes a :class:`.deviance.ProfiledObjective` over theta on one BLAS thread: BOBYQA
in natural units from the moment start (or a given start), with Newton steps and lme4's checks (see
:func:`.optimize.minimize_bobyqa`).  An optimum on or near a bound from the moment start can be a local
one (a random slope of an uncentred covariate on few groups, say), so then the fit is repeated from
T = I in natural units and in the data's units (lme4's start), and, for an unstructured term with a zero
on the diagonal of its factor, from the other factors of the same covariance (see
:func:`_rotated_starts`); the lowest optimum is kept.  The convergence warnings of the kept run are
returned, not shown, so that a caller decides what to show.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np

from ..errors import ConvergenceWarning
from .covariance import Unstructured
from .deviance import ProfiledObjective
from .optimize import FLAT_BOUNDARY_TOL, OptimizationResult, OptimizerControl, minimize_bobyqa
from .threads import limited_threads

__all__ = ["FTOL_PER_OBSERVATION", "NEGLIGIBLE_RESIDUAL", "at_boundary", "fit_theta"]

FTOL_PER_OBSERVATION = 1e-8  # BOBYQA's absolute tolerance on the deviance, per row (Newton steps finish)
NEGLIGIBLE_RESIDUAL = 1e6  # a relative scale of the random effects (natural units) beyond which sigma ~ 0


def at_boundary(objective: ProfiledObjective, theta: np.ndarray, tol: float) -> bool:
    """Is a variance or a correlation's factor within ``tol`` of its bound, in natural units (lme4's
    ``isSingular`` with ``tol`` its tolerance)?"""
    lower = objective.lower_bounds
    bounded = np.isfinite(lower)
    distance = (theta - lower)[bounded] / objective.parameter_scale[bounded]
    return bool(np.any(distance < tol))


def fit_theta(
    objective: ProfiledObjective, control: OptimizerControl, start: np.ndarray | None = None
) -> tuple[OptimizationResult, list[warnings.WarningMessage]]:
    """The optimum of ``objective`` over theta and the warnings of the run that found it.

    ``start``: theta to start from (default: the moment start when ``control.moment_start``, else T = I).
    BOBYQA's absolute tolerance defaults to :data:`FTOL_PER_OBSERVATION` per row.
    """
    if start is not None:
        start, step = np.maximum(np.asarray(start, dtype=float), objective.lower_bounds), None
    elif control.moment_start:
        start, step = objective.start()
    else:
        start, step = objective.initial, None
    if control.ftol_abs is None:
        control = replace(control, ftol_abs=FTOL_PER_OBSERVATION * objective.chol.cross.nobs)
    scale = objective.parameter_scale
    with limited_threads():
        result, caught = _minimize(objective, start, step, control)
        if control.moment_start and at_boundary(objective, result.x, FLAT_BOUNDARY_TOL):
            result, caught = _lowest(
                objective, control, (result, caught), (objective.initial * scale, objective.initial)
            )
            result, caught = _lowest(
                objective, control, (result, caught), _rotated_starts(objective, result.x)
            )
    largest = float(np.max(result.x / scale, initial=0.0))
    if largest > NEGLIGIBLE_RESIDUAL:
        text = (
            f"the residual standard deviation is nearly zero beside the random effects' (largest relative "
            f"scale {largest:.3g}): the response may be fitted exactly by the random effects"
        )
        caught = [*caught, warnings.WarningMessage(ConvergenceWarning(text), ConvergenceWarning, __file__, 0)]
    return result, caught


def _lowest(objective, control, best, starts):
    """The lowest of ``best`` (a run and its warnings) and the runs from ``starts``."""
    for start in starts:
        other = _minimize(objective, start, None, control)
        if other[0].fun < best[0].fun - 1e-10:
            best = other
    return best


def _rotated_starts(objective: ProfiledObjective, theta: np.ndarray) -> list[np.ndarray]:
    """theta with another lower-triangular factor ``T`` of the same covariance ``T T'``, for each
    unstructured term whose ``T[j, j]`` is (nearly) 0.

    Then row ``j`` of ``T`` is zero in columns ``j`` and ``j + 1``, so a rotation of those two columns
    (the same for every row) keeps ``T T'`` and ``T`` lower triangular.  The rotation that moves row
    ``j + 1`` into column ``j`` (both signs) gives a factor from which BOBYQA can tilt variable ``j``
    toward the others: from the first representation that direction is flat to first order (e.g. a
    random intercept SD of 0 with the slope's factor on the diagonal, while the optimum has the
    intercept and slope perfectly correlated).
    """
    starts = []
    for covariance, part in zip(objective.covariances, objective.slices):
        if not isinstance(covariance, Unstructured):
            continue
        local = theta[part]
        rows, cols = covariance.positions
        natural = local / objective.parameter_scale[part]
        t = covariance.lambda_(local)
        for j in range(covariance.size - 1):
            if natural[(rows == j) & (cols == j)][0] >= FLAT_BOUNDARY_TOL:
                continue
            a, b = t[j + 1, j], t[j + 1, j + 1]
            radius = np.hypot(a, b)
            if radius == 0:
                continue
            for sign in (1.0, -1.0):
                cos, sin = sign * a / radius, sign * b / radius  # row j + 1 -> (sign * radius, 0)
                rotated = t.copy()
                rotated[j + 1 :, j] = cos * t[j + 1 :, j] + sin * t[j + 1 :, j + 1]
                rotated[j + 1 :, j + 1] = -sin * t[j + 1 :, j] + cos * t[j + 1 :, j + 1]
                rotated[j + 1, j + 1] = 0.0
                start = theta.copy()
                start[part] = rotated[rows, cols]
                starts.append(start)
    return starts


def _minimize(objective, start, step, control):
    """BOBYQA and its checks from one start, with the warnings they gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        result = minimize_bobyqa(
            objective.unitless,
            start,
            objective.lower_bounds,
            control,
            initial_step=step,
            scale=objective.parameter_scale,
        )
    return result, caught
