"""Minimizing the profiled objective over the covariance parameters, with lme4's checks afterwards.

The optimizer is BOBYQA (Powell 2009) from NLopt, bound-constrained and derivative-free, the default of
lme4 (``nloptwrap``) and MixedModels.jl.  After it stops, parameters within ``boundary_tol`` of a
bound are tried on the bound (lme4's ``boundary.tol``), and the gradient and Hessian are estimated by
central differences.  Those derivatives serve twice: Newton steps from them polish BOBYQA's result
(cheaper than running BOBYQA to full precision), and they report convergence problems as lme4's
``checkConv`` does.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import nlopt
import numpy as np

from ..errors import ConvergenceWarning, check_flag, check_integer, check_positive

__all__ = [
    "OptimizerControl",
    "OptimizationResult",
    "ConvergenceWarning",
    "minimize_bobyqa",
    "finite_differences",
]


@dataclass(frozen=True)
class OptimizerControl:
    """Settings of the optimizer and of the checks after it (names follow lme4's lmerControl)."""

    # BOBYQA stops at a moderate tolerance; the Newton steps after it give the last digits.  The
    # tolerance is absolute: a change of the deviance means the same whatever the data's units, while
    # the deviance itself moves by 2 n log(a) when the response is scaled by a.  None: the model's
    # default, 1e-8 per observation for lmer (the deviance's rounding grows with the rows)
    ftol_abs: float | None = None
    ftol_rel: float = 0.0
    xtol_abs: float = 1e-8
    max_evaluations: int = 100_000
    moment_start: bool = True  # start from moment estimates (else lme4's T = I)
    boundary_tol: float = 1e-5
    check_convergence: bool = True
    newton_steps: int = 6  # at most this many Newton steps after BOBYQA (0: none)
    restarts: int = 5  # BOBYQA restarts when the check finds the result short of an optimum
    gradient_tol: float = 2e-3
    singular_tol: float = 1e-4

    def __post_init__(self) -> None:
        for name in ("ftol_abs", "ftol_rel", "xtol_abs", "boundary_tol", "gradient_tol", "singular_tol"):
            if name != "ftol_abs" or self.ftol_abs is not None:
                check_positive(name, getattr(self, name), allow_zero=True)
        check_integer("max_evaluations", self.max_evaluations, minimum=1)
        check_integer("newton_steps", self.newton_steps, minimum=0)
        check_integer("restarts", self.restarts, minimum=0)
        check_flag("moment_start", self.moment_start)
        check_flag("check_convergence", self.check_convergence)


DERIVATIVE_STEP = 1e-4  # lme4's deriv12 delta
DEFAULT_FTOL_ABS = 1e-6  # where a caller leaves ftol_abs to the optimizer
FLAT_BOUNDARY_TOL = 1e-2  # after the Newton steps, parameters this close to a bound are tried on it
_INFEASIBLE = 1e300  # what BOBYQA is given where the objective is not finite
NEGLIGIBLE_STEP = 1e-5  # after a Newton step this small the error is ~ its square
SHORT_STEP = 1e-2  # after a Newton step this small the next one keeps the Hessian
NEWTON_FIRST_STEPS = 20  # quasi-Newton steps from a start near the optimum before BOBYQA takes over


@dataclass
class OptimizationResult:
    """The optimum ``x``; the derivatives are over the scaled parameters ``x / scale``."""

    x: np.ndarray
    fun: float
    evaluations: int
    return_code: str
    gradient: np.ndarray | None = None
    hessian: np.ndarray | None = None
    free: np.ndarray | None = None  # mask of the parameters the derivatives are over
    derivative_point: np.ndarray | None = None  # where the derivatives were taken
    hessian_reused: bool = False  # the Hessian is from an earlier point than the gradient
    derivatives_failed: bool = False  # the objective was not finite at a difference point
    warnings: list[str] = field(default_factory=list)


def finite_differences(
    fun: Callable[[np.ndarray], float],
    x: np.ndarray,
    step: float = 1e-4,
    f0: float | None = None,
    with_hessian: bool = True,
    central_cross: bool = False,
):
    """Central-difference gradient and Hessian of ``fun`` at ``x`` (as lme4's ``deriv12``).

    ``f0`` is ``fun(x)`` when already known; without the Hessian only the 2k gradient points are
    evaluated (the Hessian returned is None).  The mixed second derivatives are forward differences
    from the gradient's points (one more evaluation each), or with ``central_cross`` lme4's four-point
    central differences ``(f(++) - f(+-) - f(-+) + f(--)) / (2 step)^2``.
    """
    k = len(x)
    f0 = fun(x) if f0 is None else f0
    gradient = np.empty(k)
    hessian = np.empty((k, k))
    plus = np.empty(k)
    minus = np.empty(k)
    for i in range(k):
        e = np.zeros(k)
        e[i] = step
        plus[i], minus[i] = fun(x + e), fun(x - e)
        gradient[i] = (plus[i] - minus[i]) / (2 * step)
        hessian[i, i] = (plus[i] - 2 * f0 + minus[i]) / step**2
    if not with_hessian:
        return gradient, None
    for i in range(k):
        for j in range(i):
            e = np.zeros(k)
            e[i] = e[j] = step
            if central_cross:
                d = np.zeros(k)
                d[i], d[j] = step, -step
                value = (fun(x + e) - fun(x + d) - fun(x - d) + fun(x - e)) / (4 * step**2)
            else:
                value = (fun(x + e) - plus[i] - plus[j] + f0) / step**2
            hessian[i, j] = hessian[j, i] = value
    return gradient, hessian


def minimize_bobyqa(
    fun: Callable[[np.ndarray], float],
    x0: np.ndarray,
    lower: np.ndarray,
    control: OptimizerControl | None = None,
    initial_step: np.ndarray | None = None,
    scale: np.ndarray | None = None,
    newton_first: bool = False,
    hessian: np.ndarray | None = None,
) -> OptimizationResult:
    """Minimize ``fun`` subject to ``x >= lower``, then apply lme4's boundary and convergence checks.

    ``scale`` is each parameter's natural unit: the optimizer, the tolerances and the checks work on
    ``x / scale``, so that a parameter whose values are 1e-3 because a covariate is in other units is
    treated as one of order 1 (results then do not depend on the units).  When the check finds the
    result short of an optimum (BOBYQA can stop early on a flat stretch), BOBYQA is restarted from the
    best point with a new trust region, up to ``control.restarts`` times.

    ``newton_first``: ``x0`` is taken to be near the optimum (a GLMM's Laplace stage starts from the
    nAGQ = 0 optimum), so Newton steps from finite-difference derivatives are tried first; BOBYQA runs
    only if they do not converge to an interior optimum.  Near a smooth optimum Newton needs one Hessian
    and a gradient or two, where BOBYQA needs dozens of evaluations before the same Hessian is taken
    for the checks anyway.  ``hessian``: an approximation of the Hessian at ``x0`` (over ``x / scale``)
    for those steps to start from, instead of finite differences; quasi-Newton updates refine it.
    """
    control = control or OptimizerControl()
    if control.ftol_abs is None:
        control = replace(control, ftol_abs=DEFAULT_FTOL_ABS)
    lower = np.asarray(lower, dtype=float)
    scale = np.ones(len(lower)) if scale is None else np.asarray(scale, dtype=float)
    lower = lower / scale
    x0 = np.maximum(np.asarray(x0, dtype=float) / scale, lower)
    n = len(x0)
    evaluations = 0
    best = [np.inf, x0.copy()]  # the best value and point seen, for an optimizer stopped by roundoff

    def counted(x, grad=None):
        nonlocal evaluations
        evaluations += 1
        value = fun(x * scale)
        if value < best[0] and np.all(x >= lower):  # derivatives may step across a bound
            best[0], best[1] = value, np.array(x, dtype=float)
        return value if math.isfinite(value) else _INFEASIBLE

    if n == 0:
        return OptimizationResult(x0, fun(x0), 1, "no parameters")

    def bobyqa(start, ftol_abs, ftol_rel, xtol_abs, step):
        opt = nlopt.opt(nlopt.LN_BOBYQA, n)
        opt.set_lower_bounds(lower)
        opt.set_min_objective(counted)
        opt.set_ftol_abs(ftol_abs)
        opt.set_ftol_rel(ftol_rel)
        opt.set_xtol_abs(xtol_abs)
        opt.set_maxeval(max(control.max_evaluations - evaluations, 1))
        if step is not None:
            opt.set_initial_step(np.asarray(step, dtype=float))
        try:
            x = opt.optimize(start)
            value = opt.last_optimum_value()
            code = _RETURN_CODES.get(opt.last_optimize_result(), str(opt.last_optimize_result()))
        except nlopt.RoundoffLimited:  # the objective's rounding stopped progress: keep the best point
            value, x = best
            code = "roundoff limited"
        return np.asarray(x, dtype=float), value, code

    def run(start, step) -> OptimizationResult:
        """BOBYQA, a tight finish at a bound, the snap to bounds, then the Newton polish."""
        x, value, code = bobyqa(start, control.ftol_abs, control.ftol_rel, control.xtol_abs, step)
        near_bound = np.isfinite(lower) & (x > lower) & (x - lower < control.singular_tol)
        if near_bound.any() and code != "maxeval reached":
            # Newton cannot finish a parameter that ends at its bound; BOBYQA does, at full precision
            step = np.maximum(0.01 * np.abs(x), control.singular_tol)
            x, value, code = bobyqa(x, 1e-12, 1e-14, 1e-10, step)
        x, value = _snap_to_bounds(counted, np.asarray(x, dtype=float), value, lower, control.boundary_tol)
        result = OptimizationResult(x, value, evaluations, code)
        if control.check_convergence or control.newton_steps or control.restarts:
            _derivatives(counted, result, lower, control)
            _newton_polish(counted, result, lower, control)
            # a flat boundary optimum: Newton's quadratic model stops short of the bound
            snapped, snapped_value = _snap_to_bounds(counted, result.x, result.fun, lower, FLAT_BOUNDARY_TOL)
            if snapped_value < result.fun:
                result.x, result.fun = snapped, snapped_value
                _derivatives(counted, result, lower, control)
                _newton_polish(counted, result, lower, control)
        return result

    result = _newton_from(counted, x0, lower, control, hessian) if newton_first else None
    if result is None:
        start = best[1] if newton_first else x0  # the Newton steps' best point, if they got anywhere
        result = run(start, None if initial_step is None else np.asarray(initial_step, dtype=float) / scale)
    problems = _checked_problems(counted, result, lower, control)
    for _ in range(control.restarts):
        if not problems or result.return_code == "maxeval reached":
            break
        # a fresh trust region from the best point; keep the restart only if it is lower
        step = np.maximum(0.1 * np.abs(result.x), 0.05)
        again = run(result.x, step)
        if not again.fun < result.fun:
            break
        result = again
        problems = _checked_problems(counted, result, lower, control)
    if result.return_code == "maxeval reached":
        result.warnings.append(
            f"convergence code: maximum number of function evaluations ({control.max_evaluations}) exceeded"
        )
    if control.check_convergence:
        result.warnings.extend(problems)
    result.x = result.x * scale
    result.evaluations = evaluations
    for message in result.warnings:
        warnings.warn(message, ConvergenceWarning, stacklevel=3)
    return result


def _checked_problems(fun, result: OptimizationResult, lower, control: OptimizerControl) -> list[str]:
    """lme4's convergence problems at the returned point (derivatives retaken there if stale); they
    decide the restarts even where ``check_convergence`` is off and they are not reported."""
    if not (control.check_convergence or control.restarts):
        return []
    problems = _convergence_problems(result, control)
    stale = result.derivative_point is not None and (
        result.hessian_reused or not np.array_equal(result.derivative_point, result.x)
    )
    if problems and stale:
        # derivatives from before the last (small) Newton step, or a kept Hessian: judge the returned
        # point itself before warning
        _derivatives(fun, result, lower, control)
        problems = _convergence_problems(result, control)
    return problems


_RETURN_CODES = {
    nlopt.SUCCESS: "success",
    nlopt.STOPVAL_REACHED: "stopval reached",
    nlopt.FTOL_REACHED: "ftol reached",
    nlopt.XTOL_REACHED: "xtol reached",
    nlopt.MAXEVAL_REACHED: "maxeval reached",
    nlopt.MAXTIME_REACHED: "maxtime reached",
}


def _newton_from(
    fun, x0, lower, control: OptimizerControl, hessian: np.ndarray | None = None
) -> OptimizationResult | None:
    """Newton steps from ``x0`` (:func:`_newton_polish`), from a given approximation of the ``hessian``
    there (only the gradient is then taken) or from finite differences; the result if they converged to
    an interior optimum with a positive definite Hessian, else None."""
    if np.any(np.isfinite(lower) & (x0 - lower < control.singular_tol)):
        return None
    value = fun(x0)
    if not value < _INFEASIBLE:
        return None
    result = OptimizationResult(np.array(x0, dtype=float), value, 1, "newton")
    if hessian is not None:
        result.hessian, result.free = np.asarray(hessian, dtype=float), np.ones(len(x0), dtype=bool)
    _derivatives(fun, result, lower, control, reuse_hessian=hessian is not None)
    converged = _newton_polish(fun, result, lower, control, keep_hessian=True, steps=NEWTON_FIRST_STEPS)
    interior = not np.any(np.isfinite(lower) & (result.x - lower < control.singular_tol))
    return result if converged and interior else None


def _snap_to_bounds(fun, x, value, lower, tol):
    """Put parameters that ended within ``tol`` of their bound on it, if that is no worse."""
    near = np.isfinite(lower) & (x - lower < tol) & (x != lower)
    if not near.any():
        return x, value
    trial = np.where(near, lower, x)
    trial_value = fun(trial)
    if trial_value <= value:
        return trial, trial_value
    return x, value


def _derivatives(
    fun, result: OptimizationResult, lower, control: OptimizerControl, reuse_hessian=False
) -> None:
    """Central-difference gradient and Hessian, over the parameters not at a bound, into ``result``.

    As lme4's ``deriv12``, the differences may step across a bound: the objective is defined there (a
    standard deviation's sign does not change the covariance), and a parameter just above its bound
    is the case where the derivatives matter most.  Where the objective is not finite at one of the
    points the derivatives are left out (None).  With ``reuse_hessian`` only the gradient is new and
    the Hessian is kept, if it is over the same free parameters (for a second Newton step, whose error
    is then of the order of the first step times the Hessian's change: negligible).
    """
    free = ~(np.isfinite(lower) & (result.x - lower < control.singular_tol))
    kept = result.hessian if reuse_hessian and np.array_equal(free, result.free) else None
    previous = (result.derivative_point, result.gradient)
    result.gradient = result.hessian = result.free = result.derivative_point = None
    if not free.any():
        return
    x = result.x
    finite = True

    # the step is relative for parameters over 1 in natural units: an absolute one is lost in the
    # rounding of the objective there
    relative = np.maximum(np.abs(x[free]), 1.0)

    def restricted(sub):
        nonlocal finite
        full = x.copy()
        full[free] = sub * relative
        value = fun(full)
        finite = finite and value < _INFEASIBLE
        return value

    with np.errstate(over="ignore", invalid="ignore"):
        gradient, hessian = finite_differences(
            restricted, x[free] / relative, DERIVATIVE_STEP, f0=result.fun, with_hessian=kept is None
        )
        gradient = gradient / relative
        if hessian is not None:
            hessian = hessian / np.outer(relative, relative)
    finite = finite and np.all(np.isfinite(gradient)) and (hessian is None or np.all(np.isfinite(hessian)))
    result.derivatives_failed = not finite
    if not finite:
        return
    if kept is not None and previous[0] is not None:
        kept = _bfgs_update(kept, (x - previous[0])[free], gradient - previous[1])
    result.gradient, result.hessian = gradient, kept if kept is not None else hessian
    result.free, result.derivative_point, result.hessian_reused = free, x.copy(), kept is not None


def _bfgs_update(hessian: np.ndarray, step: np.ndarray, change: np.ndarray) -> np.ndarray:
    """The BFGS update of a kept Hessian by a step and the change of the gradient over it (Nocedal &
    Wright 2006, eq. 6.19), unless the curvature along the step is not positive."""
    curvature = float(change @ step)
    along = hessian @ step
    if not curvature > 0 or not step @ along > 0:
        return hessian
    return hessian - np.outer(along, along) / (step @ along) + np.outer(change, change) / curvature


def _newton_polish(
    fun,
    result: OptimizationResult,
    lower,
    control: OptimizerControl,
    keep_hessian: bool = False,
    steps: int | None = None,
) -> bool:
    """Newton steps on the free parameters from the finite-difference derivatives in ``result``; True
    when they converged (a step negligible in size).

    Near a smooth interior optimum Newton's method converges quadratically, while BOBYQA spends many
    evaluations on the last digits; so BOBYQA stops at a moderate tolerance and Newton steps finish.
    The first step uses the derivatives the convergence check needs anyway; a step is taken only if
    it stays within the bounds and lowers the objective.  After a step that is not negligible (after
    a step of relative size s the error is of order s^2) the gradient is recomputed at the new point
    and the Hessian kept, updated by BFGS (after a long step only with ``keep_hessian``).  A negligible
    step that does not lower the objective has met its rounding:
    the point is the optimum.  When the check would warn on derivatives from before the last step or
    on a kept Hessian, all of them are recomputed at the returned point.  ``steps``: at most this many
    (default ``control.newton_steps``; 0 there means none).
    """
    for _ in range(min(control.newton_steps, 1) * (steps or control.newton_steps)):
        if result.gradient is None or not _positive_definite(result.hessian):
            return False
        try:
            step = _projected_newton_step(
                result.gradient, result.hessian, result.x[result.free], lower[result.free]
            )
        except np.linalg.LinAlgError:  # a bound leaves a singular part of the Hessian
            return False
        size = np.max(np.abs(step))  # natural units: parameters of order 1
        trial = result.x.copy()
        trial[result.free] += step
        trial = np.maximum(trial, lower)  # parameters the step puts on their bound land exactly on it
        value = fun(trial)
        if not value < result.fun:
            if size < NEGLIGIBLE_STEP:
                return True
            if not result.hessian_reused:
                return False
            # the kept Hessian is out of date (a flat, far from quadratic direction): take it anew
            _derivatives(fun, result, lower, control)
            continue
        result.x, result.fun = trial, value
        if size < NEGLIGIBLE_STEP:
            return True
        # after a short step the Hessian barely changed; after a long one (BOBYQA stopped far from
        # the optimum) a kept Hessian would make the next steps converge only linearly
        _derivatives(fun, result, lower, control, reuse_hessian=keep_hessian or size < SHORT_STEP)
    return False


def _positive_definite(matrix: np.ndarray) -> bool:
    try:
        np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        return False
    return True


def _projected_newton_step(gradient, hessian, x, lower) -> np.ndarray:
    """Newton step for the quadratic model, with parameters that would cross their bound held on it.

    Each parameter that the step would take below its bound is fixed there and the step of the others
    re-solved (the quadratic model's minimizer over the rest), until no bound is crossed.
    """
    step = -np.linalg.solve(hessian, gradient)
    held = x + step < lower
    while held.any():
        step = np.zeros(len(x))
        step[held] = (lower - x)[held]
        free = ~held
        if free.any():
            rhs = gradient[free] + hessian[np.ix_(free, held)] @ step[held]
            step[free] = -np.linalg.solve(hessian[np.ix_(free, free)], rhs)
        crossing = free & (x + step < lower)
        held |= crossing
        if not crossing.any():
            break
    return step


def _convergence_problems(result: OptimizationResult, control: OptimizerControl) -> list[str]:
    """lme4's checkConv: scaled gradient and positive definiteness of the Hessian at interior optima."""
    if result.derivatives_failed:
        return ["unable to evaluate scaled gradient: the objective is not finite near the optimum"]
    if result.gradient is None:
        return []
    gradient, hessian = result.gradient, result.hessian
    try:
        upper = np.linalg.cholesky(hessian).T
        scaled = np.minimum(np.abs(np.linalg.solve(upper, gradient)), np.abs(gradient))
        max_grad = float(np.max(scaled))
    except np.linalg.LinAlgError:
        eigen = np.linalg.eigvalsh(hessian)
        if eigen.min() < 0:
            return [
                "Model failed to converge: degenerate Hessian with "
                f"{int(np.sum(eigen < 0))} negative eigenvalues"
            ]
        return ["Model is nearly unidentifiable: the Hessian is numerically singular"]
    if max_grad > control.gradient_tol:
        return [
            f"Model failed to converge with max|grad| = {max_grad:.6g} "
            f"(tol = {control.gradient_tol}, component {int(np.argmax(scaled)) + 1})"
        ]
    return []
