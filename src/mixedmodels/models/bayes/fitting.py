"""``mm.mcmc``: Bayesian mixed models sampled as MCMCglmm samples them.

The pipeline mirrors ``lmer``'s: the MCMCglmm syntax becomes an lme4 formula (:mod:`.spec`), one model
frame and one pass over the rows give the cross-product blocks, the priors are read and checked against
the model (:mod:`.priors`), then each chain runs the Gibbs sampler (:mod:`.sampler`) on the shared
blocked factor.  Chains run in separate processes when there are several.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from ...data.design import formula_names
from ...data.frame import ModelFrame, build_frame
from ...data.tables import to_pandas
from ...engine.crossprod import UNIT
from ...engine.families import family_for
from ...engine.threads import limited_threads
from ...errors import FitError, FormulaError, check_choice, check_flag, check_integer, check_seed
from ...formula.parse import parse_formula
from ..glmm.fitting import _binomial_response, glm_rows
from .draws import PosteriorDraws, StructureColumns
from .priors import read_priors
from .progress import progress_bar
from .sampler import LATENT_FAMILIES, GibbsChain, SamplerModel, SamplerTermInfo, join_effects, split_effects
from .spec import SamplerTerm, lme4_formula, mcmc_terms, residual_groups

__all__ = ["BayesProblem", "mcmc"]

FAMILIES = ("gaussian",) + LATENT_FAMILIES
_FROM_GLMTMB = {"us": "us", "diag": "idh", "cs": "corh"}


@dataclass
class BayesProblem:
    """A sampled model's spec: the sampler's model and the formulas as the user wrote them."""

    model: SamplerModel
    fixed_formula: str
    random_formula: str | None
    rcov_formula: str

    @property
    def family(self) -> str:
        return self.model.family

    @property
    def nobs(self) -> int:
        return self.model.frame.nobs

    def simulate_response(self, beta, b, variances, rng: np.random.Generator) -> np.ndarray:
        """One response drawn at a saved draw (``b``: random effects as in ``sol``, or None for new ones)."""
        return self.model.simulate_response(beta, b, variances, rng)


@limited_threads()
def mcmc(
    formula: str,
    data,
    random: str | None = None,
    rcov: str = "~units",
    family: str = "gaussian",
    prior: dict | None = None,
    nitt: int = 13000,
    burnin: int = 3000,
    thin: int = 10,
    chains: int = 1,
    seed=None,
    pr: bool = False,
    progress: bool | None = None,
    n_jobs: int | None = None,
):
    """Sample a Bayesian mixed model by MCMC with MCMCglmm's syntax, priors and defaults.

    ``formula`` is the fixed part (``"SCT ~ 1 + tarsus"``) with ``random`` in MCMCglmm's syntax
    (``"~us(1 + tarsus):line"``, ``"~idh(1 + x):g"``, ``"~corh(f):g"``, ``"~cor(f):g"``, ``"~g + h"``),
    or an lme4 formula with its random terms (``"SCT ~ 1 + tarsus + (1 + tarsus | line)"``; ``diag(...)``
    and ``cs(...)`` terms are idh and corh).  ``rcov``: ``"~units"`` or ``"~idh(f):units"``.
    ``family``: ``"gaussian"``, or through latent variables as MCMCglmm: ``"categorical"`` (a binary
    response, logit), ``"threshold"`` (binary, probit), ``"multinomial2"`` (``cbind(successes,
    failures)``, logit) and ``"poisson"`` (log); the latent variable l = eta + e has e ~ N(0, R), so R
    is additive overdispersion (and for binary responses not identified: fixed at 1 by default).
    ``prior`` as MCMCglmm's (see :mod:`mixedmodels.models.bayes.priors`).  MCMCglmm's ``nitt``,
    ``burnin``, ``thin`` and ``pr`` (keep the random effects' draws); ``chains`` independent chains
    (in ``n_jobs`` processes, by default one per chain up to the number of cores), reproducible by
    ``seed``; ``progress``: a progress bar (tqdm), by default only on a terminal.
    """
    family = check_choice("family", family, FAMILIES)
    nitt, thin = check_integer("nitt", nitt), check_integer("thin", thin)
    burnin = check_integer("burnin", burnin, minimum=0)
    chains = check_integer("chains", chains)
    pr = check_flag("pr", pr)
    if burnin >= nitt:
        raise ValueError(f"burnin ({burnin}) must be less than nitt ({nitt}): no iterations would be kept")
    if (nitt - burnin) // thin < 1:
        raise ValueError(
            f"thin ({thin}) is larger than nitt - burnin ({nitt - burnin}): no draws would be kept"
        )
    problem = assemble(formula, data, random, rcov, family, prior)
    seeds = np.random.SeedSequence(check_seed(seed)).spawn(chains)
    jobs = min(chains, os.cpu_count() or 1) if n_jobs is None else check_integer("n_jobs", n_jobs)
    arguments = [(problem.model, nitt, burnin, thin, s, pr) for s in seeds]
    if chains == 1 or jobs == 1:
        bar = progress_bar(nitt * chains, progress, "MCMC")
        try:
            runs = [run_chain(*args, bar.update) for args in arguments]
        finally:
            bar.close()
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            runs = list(pool.map(run_chain, *zip(*arguments)))
    return results_of(problem, runs, nitt, burnin, thin, pr)


def assemble(formula: str, data, random: str | None, rcov: str, family: str, prior) -> BayesProblem:
    """The sampler's model: terms, frame, cross-product blocks and checked priors."""
    sampler_terms = mcmc_terms(random)
    lme4_text = lme4_formula(formula, sampler_terms) if random is not None else formula
    parsed = parse_formula(lme4_text)
    if random is None:
        sampler_terms = [_from_lme4(term) for term in parsed.random]
    residual_factor = residual_groups(rcov)
    table = to_pandas(data)
    failures = None
    if family != "gaussian":
        glm_family = family_for("poisson" if family == "poisson" else "binomial")
        parsed, failures, table = _binomial_response(parsed, table, glm_family)
        if failures is not None and family != "multinomial2":
            raise FormulaError(
                f"a cbind(successes, failures) response needs family='multinomial2', not {family!r}"
            )
        if family == "multinomial2" and failures is None:
            raise FormulaError("family='multinomial2' needs a cbind(successes, failures) response")
    others = {} if residual_factor is None else {residual_factor: "the residual structure"}
    if failures is not None:
        others.update(dict.fromkeys(formula_names(failures)[0], "response"))
    frame = build_frame(parsed, table, other_variables=others, allow_n=family != "gaussian")
    if frame.weights is not None:
        raise ValueError("weights are not available for mm.mcmc")
    response, trials = _family_response(frame, family, failures)
    terms = _term_infos(frame, sampler_terms)
    codes, names = _residual_levels(frame, residual_factor)
    binary = family in ("categorical", "threshold")
    as_written = sorted(terms, key=lambda t: t.written)
    sizes, nlevels = [t.ncols for t in as_written], [t.nlevels for t in as_written]
    priors = read_priors(prior, frame.fixed_names, sizes, nlevels, len(names), binary)
    if family == "threshold" and not priors.residual.fix:
        raise FitError("the threshold family needs the residual variance fixed: prior R=dict(V=1, fix=1)")
    terms = [replace(t, prior=priors.random[t.written]) for t in terms]
    if family == "gaussian":
        cross = frame.cross_products()
    else:
        cross = frame.chunk().cross_products(UNIT)
    residual_cross = None
    if codes is not None:
        if family != "gaussian":
            raise ValueError("rcov=~idh(f):units is available for the gaussian family only")
        residual_cross = [frame.cross_products(np.flatnonzero(codes == level)) for level in range(len(names))]
    model = SamplerModel(frame, family, cross, terms, priors, codes, residual_cross, names, trials, response)
    random_text = random if random is not None else _random_text(sampler_terms)
    fixed_text = formula if random is not None else _fixed_text(parsed)
    return BayesProblem(model, fixed_text, random_text, rcov)


def _from_lme4(term) -> SamplerTerm:
    if term.structure not in _FROM_GLMTMB:
        raise FormulaError(
            f"the {term.structure} structure of {term.formula_text} has no MCMCglmm counterpart; mm.mcmc "
            "samples (x | g), diag(x | g) and cs(x | g) terms (us, idh and corh)"
        )
    structure = _FROM_GLMTMB[term.structure]
    lhs = term.lhs.r_text
    bare = lhs == "1" and structure == "us"
    text = term.group if bare else f"{structure}({lhs}):{term.group}"
    return SamplerTerm(text, structure, term.formula_text, bare)


def _random_text(terms: list[SamplerTerm]) -> str | None:
    return "~" + " + ".join(t.text for t in terms) if terms else None


def _fixed_text(parsed) -> str:
    return f"{parsed.response} ~ {parsed.fixed.r_text}"


def _term_infos(frame: ModelFrame, sampler_terms: list[SamplerTerm]) -> list[SamplerTermInfo]:
    """The G structures in the factor's (lme4's) order, each knowing its position as written."""
    written = {parse_formula(f"y ~ {t.lme4_term}").random[0]: i for i, t in enumerate(sampler_terms)}
    infos = []
    for re_term in frame.terms:
        i = written[re_term.term]
        term = sampler_terms[i]
        infos.append(
            SamplerTermInfo(
                term.structure,
                None,
                re_term.group.nlevels,
                re_term.ncols,
                list(re_term.column_names),
                re_term.group.name,
                i,
                term.text,
                term.bare,
            )
        )
    return infos


def _family_response(frame: ModelFrame, family: str, failures: str | None):
    """The response the sampler reads (Gaussian: y less the offset; counts or 0/1 otherwise) and the
    number of trials of a multinomial2 response."""
    if family == "gaussian":
        return frame.response, None
    rows = glm_rows(frame, family_for("poisson" if family == "poisson" else "binomial"), failures)
    if family == "multinomial2":
        return rows.y * rows.trials, rows.trials
    if family != "poisson" and not np.all((rows.y == 0) | (rows.y == 1)):
        raise ValueError(f"the {family} family needs a binary response (0/1, logical or a two-level factor)")
    return rows.y, None


def _residual_levels(frame: ModelFrame, factor: str | None) -> tuple[np.ndarray | None, list[str]]:
    if factor is None:
        return None, ["units"]
    column = frame.data[factor].astype("category")
    levels = column.cat.remove_unused_categories().cat.categories
    codes = np.asarray(column.cat.set_categories(levels).cat.codes)
    return codes, [f"{factor}{level}.units" for level in levels]


def variance_names(model: SamplerModel, rcov: str) -> tuple[list[str], list[StructureColumns]]:
    """MCMCglmm's VCV column names and the columns of each structure."""
    names: list[str] = []
    structures = []
    for term in sorted(model.terms, key=lambda t: t.written):
        start = len(names)
        cols, group = term.column_names, term.group
        if term.bare:
            names.append(group)
        elif term.structure == "idh":
            names += [f"{c}.{group}" for c in cols]
        else:
            names += [f"{r}:{c}.{group}" for c in cols for r in cols]
        structures.append(StructureColumns("G", f"~{term.label}", slice(start, len(names))))
    start = len(names)
    names += model.residual_names
    structures.append(StructureColumns("R", rcov, slice(start, len(names))))
    return names, structures


def random_effect_names(model: SamplerModel) -> list[str]:
    """MCMCglmm's Sol names of the random effects: column.group.level, terms as written."""
    names = []
    for k in sorted(range(len(model.terms)), key=lambda k: model.terms[k].written):
        term = model.terms[k]
        for level in model.frame.terms[k].group.levels:
            names += [f"{c}.{term.group}.{level}" for c in term.column_names]
    return names


def run_chain(model: SamplerModel, nitt: int, burnin: int, thin: int, seed, pr: bool, advance=None) -> dict:
    """One chain: its saved draws and the posterior means of the location effects, R and latent values."""
    rng = np.random.default_rng(seed)
    try:
        chain = GibbsChain(model, rng)
        nsaved = (nitt - burnin + thin - 1) // thin
        fixed = np.empty((nsaved, model.nfixed))
        variances = None
        deviance = np.empty(nsaved)
        random = None
        sums = None
        saved = 0
        for iteration in range(1, nitt + 1):
            chain.burning_in = iteration <= burnin
            chain.iterate()
            if advance is not None and iteration % 100 == 0:
                advance(100)
            if iteration <= burnin or (iteration - burnin - 1) % thin:
                continue
            row = model.pack(chain.covariances, chain.residual)
            effects = join_effects(model, chain.effects)
            if variances is None:
                variances = np.empty((nsaved, len(row)))
                random = np.empty((nsaved, len(effects))) if pr else None
                sums = [
                    np.zeros_like(chain.beta),
                    np.zeros_like(effects),
                    np.zeros_like(chain.residual),
                    None,
                ]
            fixed[saved], variances[saved], deviance[saved] = chain.beta, row, chain.deviance()
            if pr:
                random[saved] = effects
            sums[0] += chain.beta
            sums[1] += effects
            sums[2] += chain.residual
            if chain.latent is not None:
                sums[3] = chain.latent.copy() if sums[3] is None else sums[3] + chain.latent
            saved += 1
    except FloatingPointError as error:
        raise FitError(f"the sampler failed: {error}") from None
    if advance is not None:
        advance(nitt % 100)
    means = [s / saved if s is not None else None for s in sums]
    return dict(fixed=fixed, variances=variances, deviance=deviance, random=random, means=means)


def results_of(problem: BayesProblem, runs: list[dict], nitt: int, burnin: int, thin: int, pr: bool):
    """The results of the chains' runs: their draws, and the deviance at the posterior means (DIC)."""
    from .results import BayesianMixedModel

    model = problem.model
    fixed, effects, residual, latent = (
        None if runs[0]["means"][i] is None else np.mean([run["means"][i] for run in runs], axis=0)
        for i in range(4)
    )
    names, structures = variance_names(model, problem.rcov_formula)
    draws = PosteriorDraws(
        fixed=np.stack([run["fixed"] for run in runs]),
        fixed_names=list(model.frame.fixed_names),
        variances=np.stack([run["variances"] for run in runs]),
        variance_names=names,
        structures=structures,
        deviance=np.stack([run["deviance"] for run in runs]),
        deviance_at_mean=model.deviance(fixed, split_effects(model, effects), residual, latent),
        nitt=nitt,
        burnin=burnin,
        thin=thin,
        random=np.stack([run["random"] for run in runs]) if pr else None,
        random_names=random_effect_names(model) if pr else None,
    )
    return BayesianMixedModel(problem, draws)
