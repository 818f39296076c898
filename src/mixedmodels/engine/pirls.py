"""Penalized iteratively reweighted least squares (PIRLS): the conditional modes of a GLMM at given theta.

At covariance parameters theta (relative factors ``Lambda``) the spherical random effects ``u`` (and, for
lme4's ``nAGQ = 0``, the fixed effects ``beta`` too) minimize the penalized deviance
``sum(dev.resids(y, mu)) + ||u||^2`` with ``mu = g^{-1}(offset + X beta + Z Lambda u)``.  Each iteration
is a penalized weighted least-squares problem of the linear mixed model: working weights
``w mu_eta^2 / V(mu)`` and working response ``eta - offset + (y - mu) / mu_eta`` enter the same
cross-product blocks of [Z X y]'W[Z X y] and the same :class:`.cholesky.BlockedCholesky` that the LMM
uses (one pass over the rows per iteration, chunk by chunk), whose solution is the next iterate.  A step
that raises the penalized deviance is halved toward the last iterate, up to 10 times (lme4's
``pwrssUpdate``; Bates et al. 2015, section 3.6; MixedModels.jl's ``pirls!``).

When the iterates have converged the factor is made once more at the weights of the final ``mu``, so
that ``log|L_theta|^2`` in the Laplace approximation belongs to the returned modes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .cholesky import BlockedCholesky
from .crossprod import CrossProducts, ReBlock, cross_products, off_diagonal_patterns, sum_cross_products
from .families import Family

__all__ = ["GlmRows", "PirlsFit", "Pirls", "PirlsError"]

MAX_ITERATIONS = 100
MAX_HALVINGS = 10
STEP_TOL = 1e-9  # converged after a step this small in u and beta (the next is ~its square, or ~rate x it)
ROUNDOFF = 1e-13  # a relative increase of the penalized deviance this small is rounding, not a worse point


class PirlsError(ArithmeticError):
    """PIRLS could not find the conditional modes (step-halving failed, or no convergence); ``mus``: the
    means it had reached (per chunk), to say why."""

    def __init__(self, message: str, mus: list[np.ndarray] | None = None, singular: bool = False):
        super().__init__(message)
        self.mus = mus
        self.singular = singular


@dataclass(frozen=True)
class GlmRows:
    """One chunk of a GLMM's rows: the fixed-effects columns, the random-effects terms' codes and
    columns, the response with R's binomial ``n`` (``trials``), prior weights and the offset."""

    x: np.ndarray
    y: np.ndarray
    prior_weights: np.ndarray
    trials: np.ndarray
    offset: np.ndarray
    blocks: list[ReBlock]

    @cached_property
    def _has_offset(self) -> bool:
        return bool(np.any(self.offset))

    def rows(self, index: slice | np.ndarray) -> GlmRows:
        """The chunk of the rows ``index`` selects (every level of every term kept)."""
        return GlmRows(
            self.x[index],
            self.y[index],
            self.prior_weights[index],
            self.trials[index],
            self.offset[index],
            [block.rows(index) for block in self.blocks],
        )

    def working(self, family: Family, eta: np.ndarray, mu: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """IRLS's working response ``eta - offset + (y - mu) / mu_eta`` and working weights
        ``w mu_eta^2 / V(mu)`` of these rows at linear predictor ``eta`` and means ``mu``; for a family
        with ``observed_curvature`` Newton's: weights ``w h`` (``h`` the observed information) and
        response ``eta - offset + (y - mu) mu_eta / (V(mu) h)``."""
        mu_eta = family.link.mu_eta(eta, mu)
        if family.observed_curvature:
            curvature = family.observed_weights(self.y, mu)
            step = (self.y - mu) * mu_eta / (family.variance(mu) * curvature)
            return eta - self.offset + step, self.prior_weights * curvature
        response = self.y - mu
        response /= mu_eta
        response += eta
        response -= self.offset
        weights = self.prior_weights * mu_eta
        if family.link.name != family.canonical_link:
            weights *= mu_eta
            weights /= family.variance(mu)
        return response, weights

    def linear_predictor(self, beta: np.ndarray, effects: Sequence[np.ndarray]) -> np.ndarray:
        """``offset + X beta + sum_k Z_k b_k`` for random effects ``b_k`` laid out (nlevels, p)."""
        eta = self.x @ beta if len(beta) else np.zeros(len(self.offset))
        if self._has_offset:
            eta += self.offset
        for block, b in zip(self.blocks, effects):
            if block.ncols == 1:
                gathered = np.take(b[:, 0], block.codes)
                column = block.column(0)
                if column is not None:
                    gathered *= column
                eta += gathered
            else:
                eta += np.einsum("np,np->n", block.z, b[block.codes])
        return eta


def random_effects(u: Sequence[np.ndarray], lambdas: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``b_k = T_k u_k`` per term as (nlevels, p) arrays from the spherical effects ``u_k`` (level-major)."""
    return [uk.reshape(-1, t.shape[0]) @ t.T for uk, t in zip(u, lambdas)]


@dataclass
class PirlsFit:
    """The conditional modes at given theta and what the Laplace approximation needs from them."""

    beta: np.ndarray
    u: list[np.ndarray]  # spherical random effects per term
    etas: list[np.ndarray]  # linear predictor per chunk (offset included)
    mus: list[np.ndarray]
    chol: BlockedCholesky  # factored at the working weights of ``factor_point``'s means
    deviance: float  # sum of the deviance residuals
    iterations: int
    factor_point: tuple[list[np.ndarray], list[np.ndarray]]  # (etas, mus) of the factor's weights

    @property
    def sqr_u(self) -> float:
        """||u||^2, the penalty."""
        return float(sum(uk @ uk for uk in self.u))


def _step_size(new: tuple, old: tuple) -> float:
    """The largest change of beta and u between two iterates (both of order 1: u is spherical)."""
    changes = [np.abs(new[0] - old[0])] + [np.abs(a - b) for a, b in zip(new[1], old[1])]
    return float(max((c.max() for c in changes if c.size), default=0.0))


class Pirls:
    """PIRLS for a family over chunks of rows; :meth:`solve` at each theta (and beta)."""

    def __init__(self, family: Family, chunks: Sequence[GlmRows], nfixed: int):
        self.family = family
        self.chunks = list(chunks)
        self.nfixed = nfixed
        self.nlevels = [b.nlevels * b.ncols for b in self.chunks[0].blocks]
        self._patterns = [off_diagonal_patterns(chunk.blocks) for chunk in self.chunks]
        self._plans_from: BlockedCholesky | None = None
        self._deviance_of: tuple[Family, list] | None = None  # each chunk's deviance as a function of mu
        # lme4's evaluations all start from the same linear predictors: their deviance, means and
        # [Z X working]'W[Z X working] blocks are kept (keyed by the list of linear predictors)
        self._start: tuple[list[np.ndarray], float, list[np.ndarray], CrossProducts] | None = None

    @cached_property
    def mustart_etas(self) -> list[np.ndarray]:
        """The linear predictors of R's starting means (``mustart``), per chunk."""
        return [self.family.link.linkfun(self.family.mustart(c.y, c.prior_weights)) for c in self.chunks]

    def _deviance(self, etas: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
        family, total, mus = self.family, 0.0, []
        if self._deviance_of is None or self._deviance_of[0] is not family:  # the family may be swapped
            self._deviance_of = (family, [family.deviance_of(c.y, c.prior_weights) for c in self.chunks])
        for deviance, eta in zip(self._deviance_of[1], etas):
            mu = family.link.linkinv(eta)
            mus.append(mu)
            total += deviance(mu)
        return total, mus

    def _weighted_cross(self, etas, mus, beta: np.ndarray | None = None) -> CrossProducts:
        """The blocks of the weighted least-squares problem at linear predictors ``etas`` and means
        ``mus``: [Z X z]'W[Z X z] with working response z and weights W, or with ``beta`` given
        [Z (z - X beta)]'W[Z (z - X beta)] (u alone: X beta goes into the offset)."""
        parts = []
        for chunk, patterns, eta, mu in zip(self.chunks, self._patterns, etas, mus):
            working, weights = chunk.working(self.family, eta, mu)
            if beta is None:  # column-major: the rows' weighting and per-level sums read whole columns
                xy = np.empty((len(working), self.nfixed + 1), order="F")
                xy[:, :-1] = chunk.x
                xy[:, -1] = working
            else:
                xy = (working - chunk.x @ beta if len(beta) else working)[:, None]
            parts.append(cross_products(chunk.blocks, xy, weights, patterns=patterns, log_weights=False))
        return sum_cross_products(parts)

    def factor(self, etas, mus, lambdas, beta: np.ndarray | None = None) -> BlockedCholesky | None:
        """The blocked Cholesky factor of the weighted least-squares problem at the linear predictors
        ``etas`` and means ``mus`` (u alone when ``beta`` is given; None where it is not positive
        definite)."""
        return self._factored(self._weighted_cross(etas, mus, beta), lambdas, beta)

    def _factored(self, cross: CrossProducts, lambdas, beta: np.ndarray | None) -> BlockedCholesky | None:
        chol = BlockedCholesky(cross, 0 if beta is not None else self.nfixed, self._plans_from)
        self._plans_from = chol  # the same rows' sparsity at every weighting: its product plans are reused
        return chol if chol.update(lambdas) else None

    def at_start(self, start_etas: list[np.ndarray]) -> tuple[float, list[np.ndarray], CrossProducts]:
        """Deviance, means and the weighted blocks [Z X z]'W[Z X z] at ``start_etas``, made once per
        list."""
        if self._start is None or self._start[0] is not start_etas:
            deviance, mus = self._deviance(start_etas)
            self._start = (start_etas, deviance, mus, self._weighted_cross(start_etas, mus))
        return self._start[1:]

    def solve(
        self,
        lambdas: Sequence[np.ndarray],
        beta: np.ndarray | None = None,
        start: PirlsFit | None = None,
        start_etas: list[np.ndarray] | None = None,
        lme4_tol: float | None = None,
    ) -> PirlsFit:
        """The conditional modes at relative factors ``lambdas``: u at the given ``beta`` (lme4's nAGQ = 1
        stage), or u and beta jointly when ``beta`` is None (nAGQ = 0).  ``start``: a fit to start
        from (its u, and beta when it is estimated here); else ``start_etas`` (linear predictors); else
        R's ``mustart``.

        ``lme4_tol``: stop as lme4's ``pwrssUpdate`` does, as soon as an iteration changes the penalized
        deviance by less than this relative amount, keeping the factor made at the weights before that
        last iteration (lme4's ``ldL2`` of its Laplace deviance; with its ``tolPwrss = 1e-7`` this
        shifts lme4's optimum by up to ~1e-4 relative from the exact modes').  Otherwise iterate until
        the step is below :data:`STEP_TOL` and make the factor at the final weights.
        """
        fixed = beta is not None
        held = np.asarray(beta, dtype=float) if fixed else None
        first_cross = None  # the first iteration's blocks, where they are known without a pass
        if start is None:
            etas = self.mustart_etas if start_etas is None else start_etas
            deviance, mus, first_cross = self.at_start(etas)
            if fixed:
                first_cross = first_cross.with_fixed_in_response(held)
            current, pdev = None, np.inf
        else:
            current_beta = held if fixed else np.asarray(start.beta, dtype=float)
            current = (current_beta, [uk.copy() for uk in start.u])
            etas = self._etas(current, lambdas)
            deviance, mus = self._deviance(etas)
            pdev = deviance + sum(float(uk @ uk) for uk in current[1])
        converged = False
        for iteration in range(MAX_ITERATIONS):
            if first_cross is not None:
                chol, first_cross = self._factored(first_cross, lambdas, held), None
            else:
                chol = self.factor(etas, mus, lambdas, held)
            if chol is None:
                raise PirlsError(
                    "the penalized weighted least-squares system is singular (the working response is fitted "
                    "exactly, or the working weights vanish)",
                    mus,
                    singular=True,
                )
            if converged:
                return PirlsFit(current[0], current[1], etas, mus, chol, deviance, iteration, (etas, mus))
            new_beta, new_u = chol.solve()
            candidate = (held if fixed else new_beta, new_u)
            new_pdev, new_etas, new_mus, new_deviance = self._evaluate(candidate, lambdas)
            if lme4_tol is not None and abs(pdev - new_pdev) < lme4_tol * abs(new_pdev):
                return PirlsFit(
                    candidate[0],
                    candidate[1],
                    new_etas,
                    new_mus,
                    chol,
                    new_deviance,
                    iteration + 1,
                    (etas, mus),
                )
            halvings = 0
            slack = ROUNDOFF * abs(pdev) if np.isfinite(pdev) else 0.0
            while current is not None and not new_pdev <= pdev + slack and halvings < MAX_HALVINGS:
                candidate = (
                    (candidate[0] + current[0]) / 2,
                    [(a + b) / 2 for a, b in zip(candidate[1], current[1])],
                )
                new_pdev, new_etas, new_mus, new_deviance = self._evaluate(candidate, lambdas)
                halvings += 1
            if not np.isfinite(new_pdev) or not new_pdev <= pdev + slack:
                raise PirlsError("PIRLS step-halvings failed to reduce the penalized deviance", mus)
            converged = current is not None and _step_size(candidate, current) <= STEP_TOL
            current, pdev, etas, mus, deviance = candidate, new_pdev, new_etas, new_mus, new_deviance
        raise PirlsError(f"PIRLS did not converge in {MAX_ITERATIONS} iterations", mus)

    def _etas(self, point, lambdas) -> list[np.ndarray]:
        effects = random_effects(point[1], lambdas)
        return [chunk.linear_predictor(point[0], effects) for chunk in self.chunks]

    def _evaluate(self, point, lambdas):
        """Penalized deviance, linear predictors, means and deviance at ``point`` = (beta, u)."""
        etas = self._etas(point, lambdas)
        if not all(self.family.link.valid_eta(eta) for eta in etas):
            return np.inf, etas, None, np.inf
        deviance, mus = self._deviance(etas)
        if not all(self.family.valid_mu(mu) for mu in mus):
            return np.inf, etas, mus, np.inf
        return deviance + sum(float(uk @ uk) for uk in point[1]), etas, mus, deviance
