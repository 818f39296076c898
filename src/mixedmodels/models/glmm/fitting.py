"""Fitting a generalized linear mixed model, as lme4's ``glmer`` pipeline.

``glmer`` parses the formula and builds the model frame (``glFormula``), with the response in the
binomial family's forms: ``cbind(successes, failures)``, 0/1, logical, a factor (first level =
failure), or a proportion with the number of trials as ``weights=``.  :func:`assemble` makes the rows
PIRLS reads and the Laplace objective (``mkGlmerDevfun``); :func:`fit` runs lme4's two stages
(``optimizeGlmer``): theta by BOBYQA with beta inside PIRLS (nAGQ = 0), then, for nAGQ = 1, theta and
beta jointly from that optimum (quasi-Newton steps from finite-difference derivatives, BOBYQA where they
do not converge).  The result is a :class:`.results.GeneralizedLinearMixedModel`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import scipy.linalg as la

from ...data.design import formula_names
from ...data.frame import ModelFrame, build_frame
from ...data.rows import chunk_slices
from ...data.tables import numeric_vector, to_pandas
from ...engine.covariance import CovarianceStructure, covariance_for
from ...engine.families import Binomial, Family, NegativeBinomial, family_for
from ...engine.heap import kept_heap
from ...engine.laplace import CONVERGENCE, LaplaceObjective
from ...engine.optimize import OptimizationResult, OptimizerControl, minimize_bobyqa
from ...engine.pirls import GlmRows, Pirls, PirlsError
from ...engine.quadrature import MAX_NODES, QuadratureObjective
from ...engine.threads import limited_threads
from ...errors import FitError, FormulaError, check_choice, check_instance, check_integer
from ...formula.parse import ParsedFormula, parse_formula
from .pql import PenalizedQuasiLikelihoodFit, fit_pql
from .results import GeneralizedLinearMixedModel

__all__ = ["GeneralizedMixedProblem", "assemble", "fit", "glmer"]

FTOL_PER_OBSERVATION = 1e-8  # BOBYQA's absolute tolerance on the deviance per row; Newton steps finish
STAGE0_STEP = 0.25  # BOBYQA's first step in theta from lme4's start of 1 (nlopt's own: 0.75)


@limited_threads()  # building the frame too: a BLAS pool woken there spins on
def glmer(
    formula: str,
    data,
    family: str | Family = "binomial",
    weights: str | np.ndarray | None = None,
    offset: str | np.ndarray | None = None,
    nAGQ: int = 1,  # noqa: N803 - lme4's name
    control: OptimizerControl | None = None,
    functions: Mapping[str, Callable] | None = None,
    pirls_convergence: str = "lme4",
    chunk_rows: int | None = None,
    method: str | None = None,
) -> GeneralizedLinearMixedModel | PenalizedQuasiLikelihoodFit:
    """Fit a generalized linear mixed model with an lme4 formula (lme4's ``glmer``).

    ``family``: ``"binomial"``, ``"poisson"``, ``"Gamma"``, ``"inverse.gaussian"``, ``"gaussian"``,
    ``"negative_binomial"`` (its theta estimated, as :func:`glmer_nb`), ``"nbinom2"`` (glmmTMB's fit of
    the same distribution: the Laplace approximation with the observed curvature, all parameters jointly,
    glmmTMB's standard errors; see :mod:`.nbinom2`; nAGQ 1 only) or a family object such as
    ``mm.families.Binomial(link="probit")`` or ``mm.families.NegativeBinomial(theta=2)`` (theta given).
    A binomial response is ``cbind(successes, failures)``, 0/1, logical, a factor (its first level is
    failure) or a proportion with the number of trials as ``weights``.  ``weights`` and ``offset`` are
    column names or arrays; ``offset(...)`` terms in the formula add to the offset.  ``nAGQ=1`` is the
    Laplace approximation, ``nAGQ=0`` optimizes theta only, the fixed effects found by PIRLS (faster,
    slightly less exact); ``nAGQ > 1`` (up to 100, as lme4) is adaptive Gauss-Hermite quadrature with
    that many nodes, for a single scalar random-effects term: its logLik and AIC leave out the binomial
    and Poisson likelihoods' constants, as lme4's do (see :mod:`mixedmodels.engine.quadrature`).
    ``pirls_convergence``: ``"lme4"`` evaluates the Laplace deviance as lme4 does (its PIRLS stopping
    rule, so estimates agree with lme4's to ~1e-7), ``"exact"`` with PIRLS fully converged (the exact
    Laplace approximation, as MixedModels.jl; optima differ from lme4's by up to ~1e-4 relative).
    ``chunk_rows=k``: each PIRLS iteration reads the rows k at a time (the cross-products of the chunks
    add up), as it would read rows that are not all in memory; the fit is the same.
    ``method="PQL"`` fits by penalized quasi-likelihood instead, as MASS's ``glmmPQL`` (see
    :mod:`.pql`; ``nAGQ`` does not apply).
    """
    if method is not None:
        method = check_choice("method", method, ("PQL",))
    family = family_for(family)
    pirls_convergence = check_choice("pirls_convergence", pirls_convergence, CONVERGENCE)
    if chunk_rows is not None:
        chunk_rows = check_integer("chunk_rows", chunk_rows)
    if isinstance(nAGQ, bool) or not isinstance(nAGQ, (int, np.integer)) or not 0 <= nAGQ <= MAX_NODES:
        raise ValueError(f"nAGQ must be an integer from 0 to {MAX_NODES}, got {nAGQ!r}")
    if control is not None:
        check_instance("control", control, OptimizerControl, "an OptimizerControl")
    if family.observed_curvature:  # glmmTMB's Laplace approximation, its inner Newton iteration converged
        if method is not None or nAGQ != 1:
            raise ValueError(
                f"the {family.name} family is fitted by glmmTMB's Laplace approximation: nAGQ must be 1 "
                "and method None"
            )
        pirls_convergence = "exact"
    parsed = parse_formula(formula)
    table = to_pandas(data)
    parsed, failures, table = _binomial_response(parsed, table, family)
    # the failures' variables are the response's: rows missing them are left out
    others = {} if failures is None else dict.fromkeys(formula_names(failures)[0], "response")
    frame = build_frame(
        parsed,
        table,
        weights=weights,
        offset=offset,
        functions=functions,
        other_variables=others,
        allow_n=True,
    )
    if method == "PQL":
        return fit_pql(frame, family, glm_rows(frame, family, failures), formula, control)
    problem = assemble(frame, family, failures, formula, pirls_convergence, chunk_rows)
    if isinstance(family, NegativeBinomial) and family.theta is None:
        if family.observed_curvature:
            from .nbinom2 import fit_nbinom2  # it fits glmer's problem jointly with theta

            return fit_nbinom2(problem, control)
        from .negbin import fit_negative_binomial  # it fits glmer's problem at each theta

        return fit_negative_binomial(problem, int(nAGQ), control)
    return fit(problem, int(nAGQ), control)


def _top_level_arguments(text: str) -> list[str]:
    """The arguments of a call's text ``f(a, b)`` split at top-level commas."""
    inner = text[text.index("(") + 1 : text.rindex(")")]
    parts, depth, start = [], 0, 0
    for i, char in enumerate(inner):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(inner[start:i].strip())
            start = i + 1
    parts.append(inner[start:].strip())
    return parts


def _binomial_response(
    parsed: ParsedFormula, table: pd.DataFrame, family: Family
) -> tuple[ParsedFormula, str | None, pd.DataFrame]:
    """The formula with a numeric response: for ``cbind(s, f)`` the successes (the failures' expression
    returned), for a logical or factor column 0/1 (R: the first level is failure)."""
    response = parsed.response.strip()
    if response.replace(" ", "").startswith("cbind("):
        if not isinstance(family, Binomial):
            raise FormulaError(
                f"a cbind(successes, failures) response needs the binomial family, not {family.name}"
            )
        arguments = _top_level_arguments(response)
        if len(arguments) != 2:
            raise FormulaError(
                f"cbind() in the response needs two arguments (successes, failures): {response!r}"
            )
        return replace(parsed, response=arguments[0]), arguments[1], table
    if isinstance(family, Binomial) and response in table.columns:
        column = table[response]
        if isinstance(column.dtype, pd.CategoricalDtype) or column.dtype == object or column.dtype == bool:
            if column.dtype == bool:
                values = column.astype(float)
            else:
                categorical = column.astype("category")
                first = categorical.cat.categories[0]
                values = (categorical != first).astype(float).where(categorical.notna())
            table = table.assign(**{response: values})
    return parsed, None, table


def glm_rows(frame: ModelFrame, family: Family, failures: str | None) -> GlmRows:
    """The rows as PIRLS reads them, with R's binomial conventions: for ``cbind(s, f)`` the response
    s / (s + f), prior weights (s + f) x weights and ``trials`` s + f; checks of the response's support."""
    nobs = frame.nobs
    y = np.asarray(frame.y, dtype=float)
    weights = np.ones(nobs) if frame.weights is None else np.asarray(frame.weights, dtype=float)
    trials = np.ones(nobs)
    if failures is not None:
        fails = numeric_vector(frame.data, failures, "failures", frame.functions)
        if np.any(~np.isfinite(fails)):
            raise ValueError(
                f"the failures {failures!r} of the cbind() response have missing or infinite values"
            )
        if np.any(y < 0) or np.any(fails < 0):
            raise ValueError(
                f"negative counts in cbind({frame.formula.response}, {failures}): successes and failures "
                "must not be negative"
            )
        trials = y + fails
        if np.any(trials == 0):
            raise ValueError(
                f"{int(np.sum(trials == 0))} rows of the cbind() response have no trials (successes + "
                "failures = 0); leave them out of the data"
            )
        y = y / trials
        weights = weights * trials
    family.check_response(y, weights)
    offset = np.zeros(nobs) if frame.offset is None else np.asarray(frame.offset, dtype=float)
    # column-major X: PIRLS copies its columns into every iteration's [X z]
    return GlmRows(np.asfortranarray(frame.x), y, weights, trials, offset, frame.blocks)


@dataclass(frozen=True)
class GeneralizedMixedProblem:
    """What lme4's ``mkGlmerDevfun`` makes: the model frame, the rows PIRLS reads, the covariance
    parameterization of each random-effects term and the Laplace objective."""

    frame: ModelFrame
    family: Family
    rows: GlmRows
    covariances: list[CovarianceStructure]
    objective: LaplaceObjective
    formula_text: str  # as the user wrote it (cbind() included)


def assemble(
    frame: ModelFrame,
    family: Family,
    failures: str | None = None,
    formula_text: str | None = None,
    pirls_convergence: str = "lme4",
    chunk_rows: int | None = None,
) -> GeneralizedMixedProblem:
    """The problem of fitting ``frame`` with ``family`` (``failures``: the second argument of a
    ``cbind()`` response; ``pirls_convergence`` see :class:`.engine.laplace.LaplaceObjective`;
    ``chunk_rows``: PIRLS reads the rows in chunks of that many)."""
    rows = glm_rows(frame, family, failures)
    chunks = (
        [rows] if chunk_rows is None else [rows.rows(part) for part in chunk_slices(frame.nobs, chunk_rows)]
    )
    covariances = [covariance_for(t.term.structure, t.ncols) for t in frame.terms]
    objective = LaplaceObjective(Pirls(family, chunks, frame.x.shape[1]), covariances, pirls_convergence)
    text = frame.formula.text if formula_text is None else formula_text
    return GeneralizedMixedProblem(frame, family, rows, covariances, objective, text)


def fit(
    problem: GeneralizedMixedProblem,
    nAGQ: int = 1,
    control: OptimizerControl | None = None,  # noqa: N803
    start: np.ndarray | None = None,
) -> GeneralizedLinearMixedModel:
    """lme4's ``optimizeGlmer``: theta by BOBYQA with beta in PIRLS (from theta = ``start``, default
    lme4's initial theta), then for ``nAGQ >= 1`` (theta, beta) by BOBYQA from there, on the Laplace or
    (nAGQ > 1) quadrature deviance; convergence warnings as lme4's."""
    control = control or OptimizerControl()
    if nAGQ > 1:
        laplace = problem.objective
        quadrature = QuadratureObjective(laplace.pirls, problem.covariances, nAGQ, laplace.convergence)
        problem = replace(problem, objective=quadrature)
    objective = problem.objective
    if control.ftol_abs is None:
        control = replace(control, ftol_abs=FTOL_PER_OBSERVATION * problem.frame.nobs)
    # the nAGQ = 0 optimum is the start of the Laplace stage and its linear predictor lme4's lp0: found as
    # precisely as a final one (lp0 shapes lme4's Laplace deviance at the 1e-6 level), without its warnings
    first = control if nAGQ == 0 else replace(control, check_convergence=False)
    try:
        with limited_threads(), kept_heap():
            # lme4's lp0 for this stage: the modes at its start (T = I unless one is given); BOBYQA
            # itself starts nearer the optimum where no start is given
            objective.restart_here(objective.initial if start is None else start)
            start = objective.gaussian_start() if start is None else np.asarray(start, dtype=float)
            stage0 = minimize_bobyqa(
                objective.fast,
                start,
                objective.lower_bounds,
                first,
                initial_step=np.full(len(start), STAGE0_STEP),
            )
            if nAGQ == 0:
                return GeneralizedLinearMixedModel(problem, stage0.x, None, 0, control, stage0)
            result = laplace_stage(objective, stage0.x, control, theta_hessian=stage0.hessian)
            k = objective.n_params
            return GeneralizedLinearMixedModel(problem, result.x[:k], result.x[k:], nAGQ, control, result)
    except PirlsError as error:
        raise FitError(f"the model cannot be fitted: {error}{_failure_hint(problem.family, error)}") from None


def _failure_hint(family: Family, error: PirlsError) -> str:
    """Why PIRLS may have failed, from the means it reached: fitted probabilities of 0 or 1 (complete
    separation) or counts fitted as 0 (e.g. a group whose responses are all 0)."""
    if error.mus is None:
        return ""
    mu = np.concatenate(error.mus)
    if isinstance(family, Binomial) and (error.singular or np.any((mu < 1e-10) | (mu > 1 - 1e-10))):
        return (
            "; a predictor (or a group) may separate the outcomes completely (complete separation), "
            "so that some coefficient is infinite and fitted probabilities tend to 0 or 1"
        )
    if family.name == "poisson" and np.any(mu < 1e-10):
        return "; fitted means reached 0: a group or a level of a factor has only zero counts"
    return ""


def laplace_stage(
    objective: LaplaceObjective,
    theta: np.ndarray,
    control,
    beta: np.ndarray | None = None,
    theta_hessian: np.ndarray | None = None,
) -> OptimizationResult:
    """(theta, beta) from the nAGQ = 0 optimum ``theta`` (or, as lme4's ``refit``, from ``(theta,
    beta)``, lp0 there): Newton steps first, then BOBYQA if they do not converge, its initial steps as
    MixedModels.jl's: a third of beta's standard errors at theta (from R_X), a quarter of theta (at most
    0.05).  ``theta_hessian``: the nAGQ = 0 stage's Hessian over theta (beta profiled out) at its
    optimum; with twice R_X'R_X for beta it is the Newton steps' first Hessian, instead of finite
    differences (the inverse of that block-diagonal matrix has the right theta block, the Schur
    complement's inverse)."""
    modes = objective.restart_here(theta)
    se = np.sqrt(np.diag(modes.chol.inverse_fixed_crossprod()))
    if beta is not None:
        objective.restart_here(theta, beta)
    start = np.concatenate([theta, modes.beta if beta is None else beta])
    lower = np.concatenate([objective.lower_bounds, np.full(len(modes.beta), -np.inf)])
    theta_step = np.where(theta != 0, np.minimum(0.05, np.abs(theta) / 4), 0.05)
    step = np.concatenate([theta_step, se / 3])
    # beta in units of its standard error: a coefficient of a covariate in the hundreds (age^2) is then
    # of order 1, and BOBYQA's trust region and the Newton steps see a well-scaled problem
    scale = np.concatenate([np.ones(len(theta)), se])
    hessian = None
    if theta_hessian is not None and theta_hessian.shape == (len(theta), len(theta)):
        beta_block = 2.0 * np.linalg.inv(modes.chol.inverse_fixed_crossprod()) * np.outer(se, se)
        hessian = la.block_diag(theta_hessian, beta_block)
    return minimize_bobyqa(
        objective.laplace,
        start,
        lower,
        control,
        initial_step=step,
        scale=scale,
        newton_first=True,
        hessian=hessian,
    )
