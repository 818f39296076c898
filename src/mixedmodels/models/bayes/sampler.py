"""The blocked Gibbs sampler of MCMCglmm (Hadfield 2010, J. Stat. Softw. 33(2)) on the shared engine.

Each iteration draws, in turn:

1. for a non-Gaussian response, the latent variables l (l = eta + e, e ~ N(0, R)): exactly from a
   truncated normal for ``threshold``, by a Metropolis-Hastings step per observation otherwise (its
   proposal scale tuned during burn-in only, as MCMCglmm's);
2. the fixed and random effects jointly, from the blocked factor of the mixed-model equations
   (:func:`mixedmodels.engine.sampler.location_draw`: no dense matrix over a large factor's effects);
3. parameter-expanded structures' working scale alpha (a normal regression on Z_k (alpha * eta));
4. each G structure from its conditional: inverse-Wishart (``us``), inverse-gamma per variance (``idh``),
   random-walk Metropolis-Hastings on log variances and Fisher-z correlations (``corh``, ``cor``);
5. the residual variance(s) from their inverse-gamma conditional.

Sums of squares come from the cross-product blocks (``PWRSS(draw) = PWRSS(mode) + s^2 |z|^2``), so a
Gaussian iteration costs nothing that grows with the rows; a latent-variable iteration makes one pass over
the rows for eta and the new response column.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from ...data.frame import ModelFrame
from ...engine.cholesky import BlockedCholesky
from ...engine.crossprod import UNIT, CrossProducts, ResponseUnits, with_response
from ...engine.sampler import inverse_gamma, inverse_wishart, location_draw, residual_products
from .priors import CovariancePrior, ModelPriors

__all__ = ["GibbsChain", "SamplerModel", "SamplerTermInfo"]

LATENT_FAMILIES = ("categorical", "threshold", "multinomial2", "poisson")
METROPOLIS_TARGET = 0.44  # acceptance rate of a one-dimensional random walk (Roberts & Rosenthal 2001)
COVARIANCE_TARGET = 0.3
COVARIANCE_STEPS = 5  # Metropolis-Hastings steps on a corh/cor structure per iteration


@dataclass(frozen=True)
class SamplerTermInfo:
    """One G structure in the factor's order: its structure, prior, size and names."""

    structure: str  # us, idh, corh, cor
    prior: CovariancePrior | None  # None until the priors are read
    nlevels: int
    ncols: int
    column_names: list[str]
    group: str
    written: int  # its position in the random formula as written (MCMCglmm's G1, G2, ...)
    label: str  # as written, e.g. "us(1 + Days):Subject"
    bare: bool  # written as a bare grouping factor: its one VCV column is named by the group


@dataclass
class SamplerModel:
    """Everything a chain needs, made once; it pickles, so chains can run in other processes."""

    frame: ModelFrame
    family: str
    cross: CrossProducts  # blocks' units: the response's (Gaussian) or UNIT (latent variables)
    terms: list[SamplerTermInfo]
    priors: ModelPriors
    residual_codes: np.ndarray | None  # level of each row's residual variance (rcov=~idh(f):units)
    residual_cross: list[CrossProducts] | None  # the blocks of each residual level's rows
    residual_names: list[str]
    trials: np.ndarray | None  # multinomial2: successes + failures per row
    response: np.ndarray  # Gaussian: y less the offset; otherwise the observed counts or 0/1

    @property
    def units(self) -> ResponseUnits:
        return self.cross.units

    @property
    def latent(self) -> bool:
        return self.family in LATENT_FAMILIES

    @property
    def nfixed(self) -> int:
        return self.frame.x.shape[1]

    @property
    def offset(self) -> np.ndarray:
        return np.zeros(self.frame.nobs) if self.frame.offset is None else self.frame.offset

    def linear_predictor(self, beta: np.ndarray, effects: list[np.ndarray]) -> np.ndarray:
        """X beta + Z b + offset per row (``effects`` in the factor's order, response units)."""
        eta = self.frame.x @ beta + self.offset
        for block, b in zip(self.frame.blocks, effects):
            eta += np.einsum("ra,ra->r", block.z, b.reshape(block.nlevels, block.ncols)[block.codes])
        return eta

    def row_residual_variances(self, residual: np.ndarray) -> np.ndarray:
        if self.residual_codes is None:
            return np.full(self.frame.nobs, residual[0])
        return residual[self.residual_codes]

    def observation_log_density(self, latent: np.ndarray) -> np.ndarray:
        """log p(y_i | l_i) for a latent-variable family."""
        y = self.response
        if self.family == "poisson":
            return y * latent - np.exp(latent) - special.gammaln(y + 1)
        if self.family == "threshold":
            return np.where((latent > 0) == (y > 0), 0.0, -np.inf)
        trials = 1.0 if self.trials is None else self.trials
        log_choose = (
            0.0
            if self.trials is None
            else (special.gammaln(trials + 1) - special.gammaln(y + 1) - special.gammaln(trials - y + 1))
        )
        return log_choose + y * latent - trials * np.logaddexp(0.0, latent)

    def deviance(self, beta, effects, residual, latent=None) -> float:
        """-2 log p(y | location effects, R) (Gaussian), -2 log p(y | l) for latent variables and, for
        ``threshold``, -2 log P(y | eta) (the latent variable decides y)."""
        if self.family == "threshold":
            eta = self.linear_predictor(beta, effects)
            scaled = eta / np.sqrt(self.row_residual_variances(residual))
            return float(-2.0 * np.sum(special.log_ndtr(np.where(self.response > 0, scaled, -scaled))))
        if self.latent:
            return float(-2.0 * np.sum(self.observation_log_density(latent)))
        squares = self.residual_squares(beta, effects)
        counts = self.residual_counts()
        return float(np.sum(counts * np.log(2.0 * math.pi * residual) + squares / residual))

    def residual_counts(self) -> np.ndarray:
        if self.residual_codes is None:
            return np.array([float(self.frame.nobs)])
        return np.bincount(self.residual_codes, minlength=len(self.residual_names)).astype(float)

    def residual_squares(self, beta, effects) -> np.ndarray:
        """e'e of each residual level at these location effects (response units), from the blocks."""
        units = self.units
        internal_beta = (beta - (0.0 if units.shift is None else units.shift)) / units.scale
        internal = [b / units.scale for b in effects]
        crosses = [self.cross] if self.residual_cross is None else self.residual_cross
        return np.array([residual_products(c, internal_beta, internal)[2] for c in crosses]) * units.scale**2

    def unpack(self, variances: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
        """The G matrices (factor order) and residual variances from one row of MCMCglmm's VCV."""
        by_written: dict[int, np.ndarray] = {}
        at = 0
        for term in sorted(self.terms, key=lambda t: t.written):
            p = term.ncols
            if term.structure == "idh":
                by_written[term.written] = np.diag(variances[at : at + p])
                at += p
            else:
                by_written[term.written] = variances[at : at + p * p].reshape(p, p, order="F")
                at += p * p
        return [by_written[t.written] for t in self.terms], np.asarray(variances[at:], dtype=float)

    def pack(self, covariances: list[np.ndarray], residual: np.ndarray) -> np.ndarray:
        """MCMCglmm's VCV row: each G structure as written (us/corh/cor: the full matrix column-major;
        idh: its variances), then the residual variances."""
        parts = []
        for k in sorted(range(len(self.terms)), key=lambda k: self.terms[k].written):
            g = covariances[k]
            parts.append(np.diag(g) if self.terms[k].structure == "idh" else g.ravel(order="F"))
        parts.append(residual)
        return np.concatenate(parts)

    def simulate_response(self, beta, effects, variances, rng: np.random.Generator) -> np.ndarray:
        """One draw of the response at these parameters; ``effects`` None draws new random effects."""
        covariances, residual = self.unpack(np.asarray(variances, dtype=float))
        if effects is None:
            effects = [
                (rng.standard_normal((t.nlevels, t.ncols)) @ _root(g).T).ravel()
                for t, g in zip(self.terms, covariances)
            ]
        else:
            effects = split_effects(self, np.asarray(effects, dtype=float))
        eta = self.linear_predictor(np.asarray(beta, dtype=float), effects)
        noisy = eta + rng.standard_normal(len(eta)) * np.sqrt(self.row_residual_variances(residual))
        if self.family == "gaussian":
            return noisy
        if self.family == "poisson":
            return rng.poisson(np.exp(np.minimum(noisy, 700.0))).astype(float)
        if self.family == "threshold":
            return (noisy > 0).astype(float)
        probability = special.expit(noisy)
        if self.trials is None:
            return (rng.random(len(eta)) < probability).astype(float)
        return rng.binomial(self.trials.astype(np.int64), probability).astype(float)


def _root(g: np.ndarray) -> np.ndarray:
    """A square root of a positive semi-definite matrix (Cholesky where it exists)."""
    try:
        return np.linalg.cholesky(g)
    except np.linalg.LinAlgError:
        values, vectors = np.linalg.eigh(g)
        return vectors * np.sqrt(np.maximum(values, 0.0))


def split_effects(model: SamplerModel, effects: np.ndarray) -> list[np.ndarray]:
    """Random effects of all terms (written order, as MCMCglmm's Sol) per term in the factor's order."""
    sizes = {t.written: t.nlevels * t.ncols for t in model.terms}
    starts = np.cumsum([0] + [sizes[w] for w in sorted(sizes)])
    return [effects[starts[t.written] : starts[t.written + 1]] for t in model.terms]


def join_effects(model: SamplerModel, effects: list[np.ndarray]) -> np.ndarray:
    order = sorted(range(len(model.terms)), key=lambda k: model.terms[k].written)
    return np.concatenate([effects[k] for k in order]) if order else np.zeros(0)


class _Tuner:
    """A proposal scale adapted during burn-in towards an acceptance rate, then held (so the chain after
    burn-in is a time-homogeneous Markov chain)."""

    def __init__(self, target: float, scale=1.0):
        self.target, self.log_scale, self.count = target, np.log(np.asarray(scale, dtype=float)), 0

    @property
    def scale(self):
        return np.exp(self.log_scale)

    def adapt(self, accepted) -> None:
        self.count += 1
        self.log_scale = self.log_scale + (np.asarray(accepted, dtype=float) - self.target) / self.count**0.6


class GibbsChain:
    """One chain's state and its iteration."""

    def __init__(self, model: SamplerModel, rng: np.random.Generator):
        self.model, self.rng = model, rng
        cross = model.cross
        self.chol = BlockedCholesky(cross, model.nfixed)
        nres = len(model.residual_names)
        scale2 = model.units.scale**2
        prior_r = model.priors.residual
        self.residual = np.diag(prior_r.V).copy() if prior_r.fix else np.full(nres, scale2)
        self.covariances = [
            np.eye(t.ncols) * (0.1 * scale2 if not model.latent else 0.5) for t in model.terms
        ]
        self.working = [g.copy() for g in self.covariances]  # G* of parameter-expanded structures
        self.alpha = [np.ones(t.ncols) for t in model.terms]
        self.beta = np.zeros(model.nfixed)
        self.effects = [np.zeros(t.nlevels * t.ncols) for t in model.terms]
        self.tuners = [_Tuner(COVARIANCE_TARGET, 0.1) for _ in model.terms]
        self.latent = None
        if model.latent:
            self.latent = _latent_start(model)
            self.latent_tuner = _Tuner(METROPOLIS_TARGET, np.full(model.frame.nobs, 1.0))
        self.squares = np.zeros(nres)
        self.burning_in = True

    # -- one iteration -----------------------------------------------------------------------------
    def iterate(self) -> None:
        model = self.model
        if model.latent:
            self._update_latent()
        self._update_location()
        for k, term in enumerate(model.terms):
            if term.prior.fix:
                continue
            if term.prior.expanded:
                self._update_expanded(k)
            elif term.structure in ("corh", "cor"):
                self._update_correlated(k)
            else:
                self.covariances[k] = self._conjugate(term, term.prior, self._scatter(k, self.effects[k]))
        self._update_residual()

    def _scatter(self, k: int, effects: np.ndarray) -> np.ndarray:
        term = self.model.terms[k]
        shaped = effects.reshape(term.nlevels, term.ncols)
        return shaped.T @ shaped

    def _conjugate(self, term: SamplerTermInfo, prior: CovariancePrior, scatter: np.ndarray) -> np.ndarray:
        """G from its inverse-Wishart (us) or inverse-gamma (idh) conditional."""
        if term.structure == "idh":
            shape = (prior.nu + term.nlevels) / 2.0
            scale = (prior.nu * np.diag(prior.V) + np.diag(scatter)) / 2.0
            return np.diag(inverse_gamma(shape, scale, self.rng))
        return inverse_wishart(prior.nu * prior.V + scatter, prior.nu + term.nlevels, self.rng)

    def _current_cross(self) -> tuple[CrossProducts, float]:
        """The blocks the location draw uses and its residual variance in the blocks' units: the
        response's blocks at one residual variance, or blocks weighted by 1/R_f at variance 1."""
        model = self.model
        scale2 = model.units.scale**2
        if model.residual_cross is None:
            cross = (
                model.cross
                if not model.latent
                else with_response(
                    model.cross, model.frame.blocks, model.frame.x, self.latent - model.offset, units=UNIT
                )
            )
            return cross, self.residual[0] / scale2
        weighted = None
        for part, variance in zip(model.residual_cross, self.residual):
            term = part.scaled(scale2 / variance)
            weighted = term if weighted is None else weighted + term
        return weighted, 1.0

    def _update_location(self) -> None:
        model, units = self.model, self.model.units
        cross, variance = self._current_cross()
        shift = 0.0 if units.shift is None else units.shift
        # beta ~ N(mu, V_B): in the blocks' units a penalty sigma^2 V_B^{-1} (relative to the variance)
        prior = model.priors.fixed
        p = model.nfixed
        penalty = prior.precision * (variance * units.scale**2)
        mu = (prior.mu - shift) / units.scale
        xy = cross.xy.copy()
        xy[:p, :p] += penalty
        xy[:p, p] += penalty @ mu
        xy[p, :p] = xy[:p, p]
        xy[p, p] += mu @ penalty @ mu
        augmented = dataclasses.replace(cross, xy=xy)
        if model.residual_cross is None:
            self.chol.cross = augmented  # the same Z'Z and X'Z blocks: only [X y]'[X y] and y'Z differ
        else:
            self.chol = BlockedCholesky(augmented, p, like=self.chol)
        sd = math.sqrt(variance)
        lambdas = [_root(g / units.scale**2) / sd for g in self.covariances]
        if not self.chol.update(lambdas):
            raise FloatingPointError("the mixed-model equations are not positive definite at this draw")
        beta, modes, pwrss = location_draw(self.chol, sd, self.rng)
        internal = [
            (u.reshape(t.nlevels, t.ncols) @ lam.T).ravel() for u, t, lam in zip(modes, model.terms, lambdas)
        ]
        self.beta = units.beta(beta)
        self.effects = [b * units.scale for b in internal]
        if model.residual_cross is None and not model.latent:
            penalty_at = (beta - mu) @ penalty @ (beta - mu)
            spherical = sum(float(u @ u) for u in modes)
            self.squares = np.array([(pwrss - spherical - penalty_at) * units.scale**2])
        else:
            self._refresh_squares(cross)

    def _refresh_squares(self, cross: CrossProducts | None = None) -> None:
        model, units = self.model, self.model.units
        if model.residual_cross is not None:
            self.squares = model.residual_squares(self.beta, self.effects)
            return
        cross = cross if cross is not None else self._current_cross()[0]
        internal_beta = (self.beta - (0.0 if units.shift is None else units.shift)) / units.scale
        e_e = residual_products(cross, internal_beta, [b / units.scale for b in self.effects])[2]
        self.squares = np.array([e_e * units.scale**2])

    def _update_expanded(self, k: int) -> None:
        """Parameter expansion (Gelman 2006; MCMCglmm's alpha.mu/alpha.V): b = alpha * eta per column."""
        model, term = self.model, self.model.terms[k]
        prior, units = term.prior, model.units
        alpha = self.alpha[k]
        working = (self.effects[k].reshape(term.nlevels, term.ncols) / alpha).ravel()
        self.working[k] = self._conjugate(term, prior, self._scatter(k, working))
        # alpha | rest: the regression of e + Z_k b_k on the columns Z_k(a) eta(a), in the blocks' units
        cross, variance = self._current_cross()
        internal_beta = (self.beta - (0.0 if units.shift is None else units.shift)) / units.scale
        internal = [b / units.scale for b in self.effects]
        z_e = residual_products(cross, internal_beta, internal)[0][k]
        blocks = cross.diag[k]
        eta = working.reshape(term.nlevels, term.ncols) / units.scale
        own = np.einsum("lab,lb->la", blocks, internal[k].reshape(term.nlevels, term.ncols))
        w_r = np.einsum("la,la->a", eta, z_e.reshape(term.nlevels, term.ncols) + own)
        w_w = np.einsum("la,lab,lb->ab", eta, blocks, eta)
        prior_precision = np.linalg.inv(prior.alpha_V)
        precision = w_w / variance + prior_precision
        covariance = np.linalg.inv(precision)
        mean = covariance @ (w_r / variance + prior_precision @ prior.alpha_mu)
        self.alpha[k] = mean + np.linalg.cholesky(covariance) @ self.rng.standard_normal(term.ncols)
        self.effects[k] = (working.reshape(term.nlevels, term.ncols) * self.alpha[k]).ravel()
        self.covariances[k] = self.alpha[k][:, None] * self.working[k] * self.alpha[k][None, :]
        self._refresh_squares(cross if model.residual_cross is None else None)

    def _update_correlated(self, k: int) -> None:
        """corh / cor: random-walk Metropolis-Hastings on (log variances, Fisher-z correlations)."""
        term = self.model.terms[k]
        scatter = self._scatter(k, self.effects[k])
        current = _correlated_parameters(term, self.covariances[k])
        log_target = _correlated_log_target(term, current, scatter)
        tuner = self.tuners[k]
        for _ in range(COVARIANCE_STEPS):
            proposal = current + tuner.scale * self.rng.standard_normal(len(current))
            proposed = _correlated_log_target(term, proposal, scatter)
            accepted = math.log(self.rng.random()) < proposed - log_target
            if accepted:
                current, log_target = proposal, proposed
            if self.burning_in:
                tuner.adapt(accepted)
        self.covariances[k] = _correlated_matrix(term, current)

    def _update_residual(self) -> None:
        prior = self.model.priors.residual
        if prior.fix:
            return
        counts = self.model.residual_counts()
        scale = (prior.nu * np.diag(prior.V) + self.squares) / 2.0
        if np.any(scale <= 0):
            raise FloatingPointError("the residual variance's conditional is improper (nu V + e'e <= 0)")
        self.residual = np.atleast_1d(inverse_gamma((prior.nu + counts) / 2.0, scale, self.rng))

    def _update_latent(self) -> None:
        model = self.model
        eta = model.linear_predictor(self.beta, self.effects)
        variance = model.row_residual_variances(self.residual)
        sd = np.sqrt(variance)
        if model.family == "threshold":
            self.latent = eta + sd * _truncated_normal(-eta / sd, model.response > 0, self.rng)
            return
        step = self.latent_tuner.scale * sd
        proposal = self.latent + step * self.rng.standard_normal(len(eta))

        def log_target(latent):
            return model.observation_log_density(latent) - (latent - eta) ** 2 / (2.0 * variance)

        ratio = log_target(proposal) - log_target(self.latent)
        accepted = np.log(self.rng.random(len(eta))) < ratio
        self.latent = np.where(accepted, proposal, self.latent)
        if self.burning_in:
            self.latent_tuner.adapt(accepted)

    # -- what is saved ------------------------------------------------------------------------------
    def deviance(self) -> float:
        model = self.model
        if model.latent:
            return model.deviance(self.beta, self.effects, self.residual, self.latent)
        counts = model.residual_counts()
        return float(np.sum(counts * np.log(2.0 * math.pi * self.residual) + self.squares / self.residual))


def _latent_start(model: SamplerModel) -> np.ndarray:
    y = model.response
    if model.family == "poisson":
        return np.log(y + 0.5)
    if model.family == "threshold":
        return np.where(y > 0, 0.5, -0.5)
    trials = 1.0 if model.trials is None else model.trials
    return special.logit((y + 0.5) / (trials + 1.0))


def _truncated_normal(lower: np.ndarray, above: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Standard normal draws above ``lower`` where ``above``, below it elsewhere (inverse CDF, taken on
    the side of the smaller tail for accuracy)."""
    # draw z > a where above, z < a elsewhere; by symmetry z < a is -(z' > -a)
    bound = np.where(above, lower, -lower)
    u = rng.random(len(bound))
    tail = special.ndtr(-bound)  # P(z > bound)
    z = np.where(
        bound > 0,
        -special.ndtri(np.maximum(u * tail, np.finfo(float).tiny)),
        special.ndtri(np.minimum(special.ndtr(bound) + u * tail, 1.0 - 1e-16)),
    )
    z = np.maximum(z, bound)
    return np.where(above, z, -z)


def _correlated_parameters(term: SamplerTermInfo, g: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.diag(g))
    correlation = g / np.outer(sd, sd)
    if term.structure == "corh":
        p = term.ncols
        rho = (correlation.sum() - p) / (p * (p - 1)) if p > 1 else 0.0
        return np.append(2.0 * np.log(sd), np.arctanh(np.clip(rho, -0.999, 0.999)) if p > 1 else [])
    rows, cols = np.tril_indices(term.ncols, -1)
    return np.arctanh(np.clip(correlation[rows, cols], -0.999, 0.999))


def _correlated_matrix(term: SamplerTermInfo, parameters: np.ndarray) -> np.ndarray:
    p = term.ncols
    if term.structure == "corh":
        rho = np.tanh(parameters[p]) if p > 1 else 0.0
        correlation = np.full((p, p), rho) + (1.0 - rho) * np.eye(p)
        sd = np.exp(parameters[:p] / 2.0)
        return correlation * np.outer(sd, sd)
    correlation = np.eye(p)
    rows, cols = np.tril_indices(p, -1)
    correlation[rows, cols] = correlation[cols, rows] = np.tanh(parameters)
    return correlation


def _correlated_log_target(term: SamplerTermInfo, parameters: np.ndarray, scatter: np.ndarray) -> float:
    """log p(parameters | b): the normal likelihood of the levels' effects, the priors (inverse-gamma
    variances for corh, uniform correlations) and the Jacobians of the log and Fisher-z transforms."""
    g = _correlated_matrix(term, parameters)
    try:
        root = np.linalg.cholesky(g)
    except np.linalg.LinAlgError:
        return -math.inf
    logdet = 2.0 * float(np.log(np.diag(root)).sum())
    half = np.linalg.solve(root, np.eye(term.ncols))
    value = -0.5 * term.nlevels * logdet - 0.5 * float(np.sum((half.T @ half) * scatter))
    p = term.ncols
    if term.structure == "corh":
        log_variance = parameters[:p]
        prior = term.prior
        scale = prior.nu * np.diag(prior.V) / 2.0
        # inverse-gamma(nu/2, nu V/2) density of each variance times its Jacobian d variance / d log
        value += float(np.sum(-(prior.nu / 2.0) * log_variance - scale * np.exp(-log_variance)))
        z = parameters[p:]
    else:
        z = parameters
    return value + float(np.sum(np.log1p(-(np.tanh(z) ** 2))))
