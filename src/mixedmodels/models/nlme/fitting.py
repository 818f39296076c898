"""Fitting gls and lme: the problem (:func:`assemble`) and its optimization (:func:`fit`).

As lmer's stages (:func:`mixedmodels.models.lmm.assemble`, :func:`mixedmodels.models.lmm.fit`):
:func:`assemble` builds nlme's (restricted) likelihood of the prepared data, profiled over the fixed
effects and sigma; :func:`fit` maximizes it over the structures' unconstrained parameters (and, for lme,
lme4's relative covariance factors) with BOBYQA, runs nlme's outer iterations for variance functions of
the fitted values and checks variance parameters that went to a limit; the fitted-model classes
(:class:`.gls_model.GLSModel`, :class:`.lme_model.LMEModel`) hold the results only.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from ...engine.optimize import OptimizerControl, minimize_bobyqa
from ...engine.threads import limited_threads
from ...errors import ConvergenceWarning, FitError
from .data import PreparedData
from .gls_model import GLSModel
from .likelihood import GLSLikelihood, LMELikelihood, ResidualChunk, ResidualModel, least_squares
from .lme_model import LMEModel
from .results import NlmeModel

__all__ = ["DEFAULT_CONTROL", "NlmeProblem", "assemble", "fit"]

# nlme reports optimizer failures only; lme4's gradient and Hessian check (made for theta on the scale
# of 1) gives false alarms on the structures' parameters, so it is off unless asked for.  BOBYQA to full
# precision: the profiled nlme objectives are not always smooth (spatial correlations have kinks,
# fitted-value weights are iterated); Newton steps, taken only where they lower the objective, finish
# the flat directions of smooth ones
DEFAULT_CONTROL = OptimizerControl(ftol_abs=1e-12, ftol_rel=1e-14, xtol_abs=1e-10, check_convergence=False)

GLS_STEP = 0.3  # BOBYQA's initial step on the structures' unconstrained parameters (gls)


@dataclass(frozen=True)
class NlmeProblem:
    """What gls and lme maximize: the prepared data, the residual structure (variance function and
    correlation structure) and the likelihood over their parameters (lme: theta first)."""

    data: PreparedData
    reml: bool
    residual: ResidualModel
    likelihood: GLSLikelihood | LMELikelihood

    @property
    def mixed(self) -> bool:
        """An lme problem (with random effects)?"""
        return isinstance(self.likelihood, LMELikelihood)

    def unitless_deviance(self, params: np.ndarray) -> float:
        """What the optimizer minimizes: the deviance of the response in its standard units."""
        return self.likelihood.deviance(params, response_units=False)


def assemble(
    prepared: PreparedData,
    reml: bool = True,
    chunks: Sequence[ResidualChunk] | None = None,
    held: tuple[int, float] | None = None,
) -> NlmeProblem:
    """The problem of fitting ``prepared`` by REML or ML: lme's if it has random-effects terms, else gls's.

    ``chunks``: its rows in chunks of whole residual groups (:meth:`PreparedData.table_chunks`), else all
    rows in memory as one chunk.  ``held = (j, b)`` holds fixed effect ``j`` at ``b`` (a profile's refit):
    the model loses column ``j`` of X and has the offset ``b x_j``.
    """
    residual = ResidualModel(prepared.varfunc, prepared.corstruct)
    if chunks is None:
        chunks = [ResidualChunk(slice(0, prepared.nobs), prepared.frame.chunk(prepared.order), residual)]
    if held is not None:
        chunks = [replace(c, arrays=c.arrays.holding(*held)) for c in chunks]
    likelihood_class = LMELikelihood if prepared.frame.terms else GLSLikelihood
    return NlmeProblem(prepared, reml, residual, likelihood_class(chunks, residual, reml))


def fit(
    problem: NlmeProblem,
    control: OptimizerControl | None = None,
    max_iter: int = 50,
    tolerance: float = 1e-6,
    start: np.ndarray | None = None,
) -> NlmeModel:
    """Maximize the problem's likelihood and return the results (a GLSModel or an LMEModel).

    With a variance function of the fitted values, start from the least-squares fitted values and refit
    with the new fitted values as the covariate until they stop changing: at most ``max_iter`` times,
    until their largest change relative to the largest fitted value is below ``tolerance`` (nlme's outer
    iterations; nlme tests the parameters, which in flat directions move within the optimizer's precision
    while the fitted values do not).  ``start``: the parameters to start from (default: the structures'
    initial values and, for lme, the moment start of theta).
    """
    control = control or DEFAULT_CONTROL
    with limited_threads():
        model = _fit_outer(problem, control, max_iter, tolerance, start)
    model.max_iter, model.tolerance = max_iter, tolerance  # refits (the bootstrap's) iterate alike
    return model


def _fit_outer(
    problem: NlmeProblem, control: OptimizerControl, max_iter: int, tolerance: float, start: np.ndarray | None
) -> NlmeModel:
    """:func:`fit`'s iterations: one maximization, and more while fitted-value weights change."""
    likelihood = problem.likelihood
    if problem.residual.uses_fitted:
        x, y = problem.data.x, problem.data.y
        likelihood.fitted_covariate = x @ least_squares(x, y)
    model = _fit_once(problem, control, start)
    _check_bounded(problem, model._params)
    if not problem.residual.uses_fitted:
        return model
    for iteration in range(1, max_iter + 1):
        covariate = model._fitted_sorted_innermost()
        change = np.max(np.abs(covariate - likelihood.fitted_covariate)) / np.max(np.abs(covariate))
        if change <= tolerance:
            return model
        likelihood.fitted_covariate = covariate
        model = _fit_once(problem, control, model._params, iteration)
        _check_bounded(problem, model._params)
    raise FitError(
        f"the fitted values did not converge in {max_iter} iterations (relative change {change:.2g})"
    )


def _fit_once(
    problem: NlmeProblem, control: OptimizerControl, start: np.ndarray | None = None, iterations: int = 0
) -> NlmeModel:
    """One maximization at the likelihood's current fitted-value covariate, from ``start`` (default:
    the structures' initial values and, for lme, the likelihood's moment start of theta).

    The likelihoods of these models have long flat valleys (weakly determined variance parameters) in
    which one BOBYQA run can stop short, and the structures' parameters can reach values where a
    correlation matrix is not positive definite (objective infinite), which can stop BOBYQA early:
    ``control.restarts`` reruns BOBYQA from the best point while the optimum check finds it short.
    """
    likelihood, residual = problem.likelihood, problem.residual
    if problem.mixed:
        psi = residual.initial if start is None else start[likelihood.n_theta :]
        x0, step = likelihood.start(psi)
        if start is not None:
            x0 = np.asarray(start, dtype=float)
        lower, scale, results = likelihood.lower_bounds, likelihood.parameter_scale(psi), LMEModel
    else:
        x0 = residual.initial if start is None else start
        lower, step, scale, results = np.full(len(x0), -np.inf), np.full(len(x0), GLS_STEP), None, GLSModel
    optimization = minimize_bobyqa(
        problem.unitless_deviance, x0, lower, control, initial_step=step, scale=scale
    )
    return results(problem, optimization.x, control, optimization, iterations)


def _check_bounded(problem: NlmeProblem, params: np.ndarray) -> None:
    """Variance-function parameters that went to a limit: an error if the likelihood still rises beyond
    (it has no maximum; nlme stops with "false convergence"), else a warning (the estimate is on the
    boundary, e.g. a REML fit with a stratum of one row)."""
    varfunc = problem.residual.varfunc
    if varfunc is None:
        return
    first = len(params) - varfunc.n_params
    own = params[first:]
    limit = varfunc.at_limit(own)
    if not limit.any():
        return
    further = params.copy()
    further[first:][limit] += 10.0 * np.sign(own[limit])
    listed = ", ".join(f"{name} ({value:.2g})" for name, value in varfunc.coefficients(own)[limit].items())
    if problem.unitless_deviance(further) < problem.unitless_deviance(params) - 1.0:
        raise FitError(
            f"the likelihood has no maximum: the variance parameters {listed} go to a limit (a stratum "
            "with too few observations for its own variance?)"
        )
    warnings.warn(
        f"the variance parameters {listed} are at a limit (a boundary estimate)",
        ConvergenceWarning,
        stacklevel=5,
    )
