"""The negative binomial GLMM with its shape theta estimated, as lme4's ``glmer.nb``.

lme4 estimates the negative binomial's theta (variance ``mu + mu^2 / theta``) outside the glmer fit:

1. a Poisson GLMM of the same formula, and MASS's ``theta.ml`` on its fitted means (:func:`theta_ml`);
2. the GLMM with ``negative.binomial(theta)`` at that theta;
3. a one-dimensional minimization of -2 log L over log theta (R's ``optimize``: Brent's method) in
   ``log(theta) +- 3``, each evaluation a glmer fit at the trial theta started from the previous
   evaluation's estimates (lme4's ``refitNB``: the Laplace stage only, lp0 at those estimates).

The optimum is the joint maximum of the Laplace likelihood over (theta_nb, theta, beta); the outer search
is as lme4's, with a tighter tolerance (lme4's ``tol = 5e-5`` on log theta leaves its theta ~1e-5 off).
The fit at the optimum is a :class:`NegativeBinomialMixedModel`, whose degrees of freedom count theta_nb.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np
from scipy import optimize, special

from ...engine.families import NegativeBinomial, Poisson
from ...engine.laplace import LaplaceObjective
from ...engine.optimize import OptimizationResult, OptimizerControl, minimize_bobyqa
from ...engine.pirls import Pirls, PirlsError
from ...engine.threads import limited_threads
from .fitting import FTOL_PER_OBSERVATION, GeneralizedMixedProblem, fit, glmer, laplace_stage
from .results import GeneralizedLinearMixedModel

__all__ = [
    "NegativeBinomialMixedModel",
    "fit_negative_binomial",
    "glmer_nb",
    "theta_ml",
    "theta_start",
    "with_family",
]

LOG_THETA_HALF_WIDTH = 3.0  # glmer.nb's interval: log(theta0) +- 3
LOG_THETA_TOL = 1e-7  # Brent's absolute tolerance on log theta (theta to ~1e-7 relative)
THETA_ML_LIMIT = 20  # glmer.nb's initCtrl: theta.ml's iterations and its tolerance (2 x tol = 1e-4)
THETA_ML_EPS = 1e-4


def glmer_nb(
    formula: str,
    data,
    link: str = "log",
    weights: str | np.ndarray | None = None,
    offset: str | np.ndarray | None = None,
    nAGQ: int = 1,  # noqa: N803 - lme4's name
    control: OptimizerControl | None = None,
    functions: Mapping[str, Callable] | None = None,
) -> NegativeBinomialMixedModel:
    """Fit a negative binomial GLMM with its theta estimated (lme4's ``glmer.nb``); the same as
    ``mm.glmer(formula, data, family="negative_binomial")``.  The arguments are :func:`glmer`'s; ``link``
    is ``"log"`` (default), ``"sqrt"`` or ``"identity"``.  The Laplace deviance is the exact one (PIRLS
    converged): lme4's final refit starts at its optimum, where its early PIRLS stop changes nothing."""
    return glmer(
        formula,
        data,
        family=NegativeBinomial(link=link),
        weights=weights,
        offset=offset,
        nAGQ=nAGQ,
        control=control,
        functions=functions,
    )


def theta_ml(y: np.ndarray, mu: np.ndarray, weights: np.ndarray) -> float:
    """MASS's ``theta.ml``: the maximum-likelihood theta of negative binomial counts ``y`` with means
    ``mu`` by Newton's method on the score, from the moment estimate ``n / sum(w (y / mu - 1)^2)``."""
    total = np.sum(weights)
    theta = total / np.sum(weights * (y / mu - 1.0) ** 2)
    for _ in range(THETA_ML_LIMIT - 1):
        theta = abs(theta)
        score = np.sum(
            weights
            * (
                special.digamma(theta + y)
                - special.digamma(theta)
                + np.log(theta)
                + 1.0
                - np.log(theta + mu)
                - (y + theta) / (mu + theta)
            )
        )
        information = np.sum(
            weights
            * (
                -special.polygamma(1, theta + y)
                + special.polygamma(1, theta)
                - 1.0 / theta
                + 2.0 / (mu + theta)
                - (y + theta) / (mu + theta) ** 2
            )
        )
        step = score / information
        theta += step
        if abs(step) <= THETA_ML_EPS:
            break
    if not np.isfinite(theta) or theta <= 0:
        raise ValueError(
            "the counts show no overdispersion beyond the Poisson's (the negative binomial's theta "
            "estimate is infinite or not positive): fit a Poisson model instead"
        )
    return float(theta)


@dataclass(frozen=True)
class ThetaSearch:
    """The outer search for the negative binomial's theta: its start (``theta.ml`` of the Poisson fit),
    the interval of log theta searched, the number of glmer fits and the optimum's -2 log L."""

    start: float
    interval: tuple[float, float]
    evaluations: int
    minus2loglik: float


class NegativeBinomialMixedModel(GeneralizedLinearMixedModel):
    """A glmer.nb fit: the GLMM at the estimated negative binomial theta (``nb_theta``), which counts as
    a parameter of the likelihood (lme4's ``npar``); ``theta_search``: the outer search that found it
    (None where theta was estimated jointly with the other parameters, as glmmTMB's)."""

    def __init__(self, *args, theta_search: ThetaSearch | None, **kwargs):
        super().__init__(*args, **kwargs)
        self.theta_search = theta_search

    @property
    def nb_theta(self) -> float:
        """The negative binomial's estimated shape (lme4's ``getME(m, "glmer.nb.theta")``)."""
        return self.family.theta

    @property
    def df_loglik(self) -> int:
        return super().df_loglik + 1

    def _fitted(self, problem: GeneralizedMixedProblem) -> NegativeBinomialMixedModel:
        """``problem`` fitted by glmer.nb: its negative binomial theta estimated again."""
        return fit_negative_binomial(problem, self.nagq, self.control)

    def to_dict(self) -> dict:
        return super().to_dict() | {"nb_theta": self.nb_theta}


def with_family(problem: GeneralizedMixedProblem, family) -> GeneralizedMixedProblem:
    """The same rows and random effects with another family (a fresh PIRLS and the exact Laplace
    objective: lme4's early-stopping one would make the profile over theta_nb ragged at ~1e-3)."""
    pirls = Pirls(family, problem.objective.pirls.chunks, problem.frame.x.shape[1])
    objective = LaplaceObjective(pirls, problem.covariances, "exact")
    return replace(problem, family=family, objective=objective)


def _refit(
    problem: GeneralizedMixedProblem, previous: np.ndarray, nagq: int, control: OptimizerControl
) -> OptimizationResult:
    """lme4's ``refit`` at another family: the last stage of the fit, started from the ``previous``
    estimates (theta, and beta for nAGQ = 1) with lp0 there."""
    objective = problem.objective
    k = objective.n_params
    if nagq == 0:
        objective.restart_here(previous)
        return minimize_bobyqa(objective.fast, previous, objective.lower_bounds, control)
    return laplace_stage(objective, previous[:k], control, previous[k:])


def theta_start(
    problem: GeneralizedMixedProblem, nagq: int, control: OptimizerControl
) -> tuple[float, GeneralizedLinearMixedModel]:
    """glmer.nb's start for the negative binomial's theta (``problem.family``, theta to be estimated): a
    Poisson fit of the same model, MASS's ``theta.ml`` of its means, and the fit at that theta (their
    warnings are not the answer's)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        poisson = fit(with_family(problem, Poisson(problem.family.link.name)), nagq, control)
        start = theta_ml(problem.rows.y, poisson.fitted.to_numpy(), problem.rows.prior_weights)
        first = fit(with_family(problem, problem.family.with_theta(start)), nagq, control)
    return start, first


def fit_negative_binomial(
    problem: GeneralizedMixedProblem,
    nAGQ: int = 1,
    control: OptimizerControl | None = None,  # noqa: N803
) -> NegativeBinomialMixedModel:
    """glmer.nb's fit of ``problem`` (its family a :class:`NegativeBinomial` whose theta is to be
    estimated): a Poisson start, ``theta.ml``, then Brent's method over log theta, each step a refit."""
    link = problem.family.link.name
    control = control or OptimizerControl()
    if control.ftol_abs is None:
        control = replace(control, ftol_abs=FTOL_PER_OBSERVATION * problem.frame.nobs)
    quiet = replace(control, check_convergence=False)  # the trial fits' warnings are not the answer's
    start, first = theta_start(problem, nAGQ, quiet)
    best = {"x": _estimates(first), "value": -2 * first.loglik, "log_theta": np.log(start)}
    evaluations = 0

    def profile(log_theta: float) -> float:
        """-2 log L maximized over (theta, beta) at the negative binomial's exp(log_theta)."""
        nonlocal evaluations
        evaluations += 1
        trial = with_family(problem, NegativeBinomial(float(np.exp(log_theta)), link))
        with warnings.catch_warnings(), limited_threads():
            warnings.simplefilter("ignore")
            try:
                result = _refit(trial, best["x"], nAGQ, quiet)
            except PirlsError:  # no conditional modes at this theta: not the optimum
                return np.inf
        if result.fun < best["value"]:
            best.update(x=result.x, value=result.fun, log_theta=log_theta)
        return result.fun

    interval = (np.log(start) - LOG_THETA_HALF_WIDTH, np.log(start) + LOG_THETA_HALF_WIDTH)
    search = optimize.minimize_scalar(
        profile, bounds=interval, method="bounded", options={"xatol": LOG_THETA_TOL}
    )
    log_theta = float(search.x) if search.fun <= best["value"] else best["log_theta"]
    final = with_family(problem, NegativeBinomial(float(np.exp(log_theta)), link))
    with limited_threads():
        result = _refit(final, best["x"], nAGQ, control)
    k = final.objective.n_params
    record = ThetaSearch(start, interval, evaluations, float(result.fun))
    if nAGQ == 0:
        return NegativeBinomialMixedModel(final, result.x, None, 0, control, result, theta_search=record)
    return NegativeBinomialMixedModel(
        final, result.x[:k], result.x[k:], 1, control, result, theta_search=record
    )


def _estimates(model: GeneralizedLinearMixedModel) -> np.ndarray:
    """The parameters an nAGQ = 1 fit optimizes (theta, beta), or theta alone for nAGQ = 0."""
    return model.theta if model.nagq == 0 else np.concatenate([model.theta, model.fixef.to_numpy()])
