"""Kenward-Roger adjusted covariance and degrees of freedom, as pbkrtest 0.5.2 computes them.

Kenward & Roger (1997, Biometrics 53) and Halekoh & Højsgaard (2014, J. Stat. Softw. 59(9)).  The
marginal covariance of y is linear in the variance components gamma (each entry of each term's
covariance matrix, and the residual variance):

    Sigma = sum_r gamma_r G_r + sigma^2 I,   G_r = Z_k (I_levels ⊗ E_r) Z_k'

with E_r the symmetric 0/1 matrix of entry (a, b) of term k's covariance.  With Phi = vcov(beta) and

    P_r = -X' Sigma^-1 G_r Sigma^-1 X,     Q_rs = X' Sigma^-1 G_r Sigma^-1 G_s Sigma^-1 X,
    I_rs = tr(Sigma^-1 G_r Sigma^-1 G_s) - 2 tr(Phi Q_rs) + tr(Phi P_r Phi P_s),   W = 2 I^-1,

pbkrtest's ``vcovAdj`` is Phi_A = Phi + 2 Phi [sum_rs W_rs (Q_rs - P_r Phi P_s)] Phi (the second
derivatives of Sigma vanish, gamma being linear), and ``Lb_ddf`` / ``KRmodcomp`` give the scaled F
statistic and its denominator df from A1 = sum W_rs tr(Theta Phi P_r Phi) tr(Theta Phi P_s Phi) and
A2 = sum W_rs tr(Theta Phi P_r Phi Theta Phi P_s Phi), Theta = L'(L Phi L')^-1 L.

pbkrtest forms Sigma and every G_r as n x n matrices.  Here nothing of size n is made: with
Sigma = sigma^2 V, V = I + Z Lambda Lambda' Z' and M = Lambda'Z'Z Lambda + I = L_RE L_RE' (the blocked
Cholesky factor), Woodbury gives for any columns a, b in the span of [Z X]

    a' V^-k b = a'b - (Lambda'Z'a)' (M^-1 + ... + M^-k) (Lambda'Z'b),

so every trace and product comes from the cross-product blocks Z'Z, Z'X, X'X and solves with M.  The
traces tr(V^-1 G_r V^-1 G_s) = tr(D_r S D_s S), S = Z'V^-1 Z, need all of S; it is made a chunk of
columns at a time (never as a q x q matrix) and reduced at once.  tr(V^-2) = n - q + ||M^-1||_F^2,
and M^-1 = I - M^-1 Lambda'Z'Z Lambda, so its columns come with those of S.

With prior weights W the cross-products are those of W^1/2 [Z X y], which amounts to a residual
covariance sigma^2 W^-1 (the model's own); pbkrtest ignores weights and uses sigma^2 I.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from ..engine.cholesky import block_diagonal
from ..engine.threads import limited_threads
from ..errors import FitError

if TYPE_CHECKING:
    from ..models.lmm import LinearMixedModel
    from .view import InferenceView, MarginalCovarianceView

__all__ = ["KenwardRoger", "kenward_roger_df", "kenward_roger_f_test", "variance_components"]

# dense chunks of the random-effects columns hold at most this many entries (16 MB each)
CHUNK_ENTRIES = 2_000_000


@dataclass(frozen=True)
class _Component:
    """One variance component: entry (a, b) of term ``term``'s covariance, as the 0/1 matrix E."""

    term: int
    indicator: np.ndarray  # E, p_k x p_k symmetric


def variance_components(ncols: list[int]) -> list[_Component]:
    """Per term, the lower triangle of its covariance column by column (pbkrtest's order)."""
    components = []
    for k, p in enumerate(ncols):
        for b in range(p):
            for a in range(b, p):
                indicator = np.zeros((p, p))
                indicator[a, b] = indicator[b, a] = 1.0
                components.append(_Component(k, indicator))
    return components


class _RandomEffectsAlgebra:
    """Z'Z, Lambda and solves with M = Lambda'Z'Z Lambda + I over all q random effects (weighted)."""

    def __init__(self, model: LinearMixedModel):
        cross = model.cross
        self.chol = model.chol.copy()
        lambdas = model.objective.lambdas(model.theta)
        if not self.chol.update(lambdas):
            raise FitError("the fitted covariance parameters give a singular system")
        self.nlevels = [d.shape[0] for d in cross.diag]
        self.ncols = [d.shape[1] for d in cross.diag]
        self.edges = np.cumsum([0] + [n * p for n, p in zip(self.nlevels, self.ncols)])
        self.lambdas = lambdas
        nterms = len(cross.diag)
        blocks: list[list] = [[None] * nterms for _ in range(nterms)]
        for k in range(nterms):
            blocks[k][k] = block_diagonal(cross.diag[k])
        for (i, j), off in cross.off.items():
            blocks[i][j], blocks[j][i] = off, off.T
        self.crossprod = sp.bmat(blocks, format="csc")  # Z'Z
        self.relative = sp.block_diag(
            [block_diagonal(np.broadcast_to(t, (n,) + t.shape)) for t, n in zip(lambdas, self.nlevels)],
            format="csc",
        )  # Lambda
        self.scaled = (self.relative.T @ self.crossprod).tocsc()  # R = Lambda'Z'Z
        self.q = int(self.edges[-1])

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """M^-1 rhs."""
        return self.chol.solve_random(rhs)

    def s_times(self, columns: np.ndarray) -> np.ndarray:
        """S columns = Z'V^-1 Z columns = Z'Z columns - R' M^-1 R columns."""
        return self.crossprod @ columns - self.scaled.T @ self.solve(self.scaled @ columns)

    def term_rows(self, k: int, array: np.ndarray) -> np.ndarray:
        """The rows of term k, shaped (levels, p_k, ...)."""
        return array[self.edges[k] : self.edges[k + 1]].reshape(self.nlevels[k], self.ncols[k], -1)

    def apply_component(self, component: _Component, array: np.ndarray) -> np.ndarray:
        """D_r array, with D_r = I_levels ⊗ E_r on term k's rows and zero elsewhere."""
        out = np.zeros_like(array)
        rows = np.einsum("ab,lbc->lac", component.indicator, self.term_rows(component.term, array))
        out[self.edges[component.term] : self.edges[component.term + 1]] = rows.reshape(-1, array.shape[1])
        return out

    def chunks(self, k: int):
        """Column ranges within term k, whole levels, at most CHUNK_ENTRIES entries per q-row chunk."""
        p = self.ncols[k]
        levels = max(1, CHUNK_ENTRIES // (self.q * p))
        for first in range(0, self.nlevels[k], levels):
            last = min(first + levels, self.nlevels[k])
            yield first, last


@dataclass
class _Derivatives:
    """The products of pbkrtest's vcovAdj for the components (random ones first, residual last)."""

    trace: np.ndarray  # tr(Sigma^-1 G_r Sigma^-1 G_s), (m, m)
    p_matrices: np.ndarray  # P_r, (m, p, p)
    q_matrices: np.ndarray  # Q_rs, (m, m, p, p)
    r_matrices: np.ndarray | None = None  # R_rs, (m, m, p, p); None where Sigma is linear (lmer)


def _derivatives(model: LinearMixedModel) -> _Derivatives:
    algebra = _RandomEffectsAlgebra(model)
    cross, nfixed = model.cross, model.n_fixed
    components = variance_components(algebra.ncols)
    nrandom = len(components)
    m = nrandom + 1
    s2 = model.sigma**2

    # fixed-effects side: U = Z'V^-1 X, Z'V^-2 X, X'V^-2 X, X'V^-3 X
    zx = np.concatenate([block[:nfixed].T for block in cross.xyz], axis=0)  # Z'X
    xx = cross.xy[:nfixed, :nfixed]
    scaled_x = algebra.relative.T @ zx  # F = Lambda'Z'X
    powers = [algebra.solve(scaled_x)]  # M^-1 F, M^-2 F, M^-3 F
    for _ in range(2):
        powers.append(algebra.solve(powers[-1]))
    u = zx - algebra.scaled.T @ powers[0]
    zv2x = zx - algebra.scaled.T @ (powers[0] + powers[1])
    xv2x = xx - scaled_x.T @ (powers[0] + powers[1])
    xv3x = xx - scaled_x.T @ (powers[0] + powers[1] + powers[2])

    # traces: a pass over the columns of S = Z'V^-1 Z, term by term, a chunk at a time
    nterms = len(algebra.ncols)
    # gram[k2][k][c, j, d, i] = sum over levels m of term k2, l of term k of S_ml[c, j] S_ml[d, i]
    gram = [[np.zeros((p2, p, p2, p)) for p in algebra.ncols] for p2 in algebra.ncols]
    v2_diagonal = [np.zeros((n, p, p)) for n, p in zip(algebra.nlevels, algebra.ncols)]  # Z'V^-2 Z
    minv_frobenius = 0.0
    for k in range(nterms):
        p, t = algebra.ncols[k], algebra.lambdas[k]
        for first, last in algebra.chunks(k):
            columns = slice(algebra.edges[k] + first * p, algebra.edges[k] + last * p)
            nl = last - first
            solved = algebra.solve(algebra.scaled[:, columns].toarray())  # J_c = M^-1 R_c
            s_chunk = algebra.crossprod[:, columns].toarray() - algebra.scaled.T @ solved
            for k2 in range(nterms):
                p2 = algebra.ncols[k2]
                rows = s_chunk[algebra.edges[k2] : algebra.edges[k2 + 1]]
                flat = rows.reshape(algebra.nlevels[k2], p2, nl, p).transpose(0, 2, 1, 3).reshape(-1, p2 * p)
                gram[k2][k] += (flat.T @ flat).reshape(p2, p, p2, p)
            own = s_chunk[columns].reshape(nl, p, nl, p)
            shaped = solved.reshape(-1, nl, p)
            v2_diagonal[k][first:last] = np.einsum("lalb->lab", own) - np.einsum(
                "qla,qlb->lab", shaped, shaped
            )
            # columns of M^-1 = I - J Lambda
            product = (shaped @ t).reshape(-1, nl * p)
            minv_frobenius += (product * product).sum() - 2 * np.trace(product[columns]) + nl * p

    trace = np.zeros((m, m))
    for r, cr in enumerate(components):
        for s, cs in enumerate(components):
            trace[r, s] = np.einsum("ij,cd,cjdi->", cr.indicator, cs.indicator, gram[cs.term][cr.term])
        trace[r, -1] = trace[-1, r] = np.einsum("ab,lba->", cr.indicator, v2_diagonal[cr.term])
    trace[-1, -1] = cross.nobs - algebra.q + minv_frobenius
    trace /= s2 * s2

    weighted_u = [algebra.apply_component(c, u) for c in components]  # D_r U
    p_matrices = np.empty((m, nfixed, nfixed))
    q_matrices = np.empty((m, m, nfixed, nfixed))
    for r in range(nrandom):
        p_matrices[r] = -(u.T @ weighted_u[r]) / s2**2
    p_matrices[-1] = -xv2x / s2**2
    for s in range(nrandom):
        s_weighted = algebra.s_times(weighted_u[s])
        for r in range(nrandom):
            q_matrices[r, s] = weighted_u[r].T @ s_weighted
        q_matrices[s, -1] = weighted_u[s].T @ zv2x
        q_matrices[-1, s] = q_matrices[s, -1].T
    q_matrices[-1, -1] = xv3x
    q_matrices /= s2**3
    return _Derivatives(trace, p_matrices, q_matrices)


def _block_derivatives(marginal: MarginalCovarianceView, nfixed: int) -> _Derivatives:
    """The same products from a marginal covariance that is block diagonal over groups of rows: every
    product is a sum over the groups of small dense ones (Sigma_r = d Sigma / d gamma_r,
    Sigma_rs = d^2 Sigma / d gamma_r d gamma_s):

        tr(Sigma^-1 Sigma_r Sigma^-1 Sigma_s),  P_r = -X'Sigma^-1 Sigma_r Sigma^-1 X,
        Q_rs = X'Sigma^-1 Sigma_r Sigma^-1 Sigma_s Sigma^-1 X,  R_rs = X'Sigma^-1 Sigma_rs Sigma^-1 X.
    """
    m = marginal.n_params
    trace = np.zeros((m, m))
    p_matrices = np.zeros((m, nfixed, nfixed))
    q_matrices = np.zeros((m, m, nfixed, nfixed))
    r_matrices = np.zeros((m, m, nfixed, nfixed))
    for block in marginal.blocks():
        inverse = np.linalg.inv(block.sigma)
        solved_x = inverse @ block.x  # Sigma^-1 X
        scaled = inverse[None] @ block.first  # Sigma^-1 Sigma_r
        trace += np.einsum("rgab,sgba->rs", scaled, scaled, optimize=True)
        moved = block.first @ solved_x[None]  # Sigma_r Sigma^-1 X
        p_matrices -= np.einsum("gap,rgaq->rpq", solved_x, moved, optimize=True)
        q_matrices += np.einsum("rgap,sgaq->rspq", moved, inverse[None] @ moved, optimize=True)
        r_matrices += np.einsum("gap,rsgab,gbq->rspq", solved_x, block.second, solved_x, optimize=True)
    return _Derivatives(trace, p_matrices, q_matrices, r_matrices)


def _generalized_inverse(matrix: np.ndarray) -> np.ndarray:
    """MASS::ginv: the pseudo-inverse dropping singular values below sqrt(eps) x the largest."""
    return np.linalg.pinv(matrix, rcond=np.sqrt(np.finfo(float).eps))


class KenwardRoger:
    """pbkrtest's ``vcovAdj`` for a REML fit, and the Kenward-Roger df and F tests built on it.

    ``marginal`` is the fit's marginal covariance group by group (gls and lme fits, with the second
    derivatives of covariance parameters that enter it nonlinearly); without it, lmer's cross-product
    blocks give the derivatives.
    """

    def __init__(self, model: InferenceView, marginal: MarginalCovarianceView | None = None):
        if not model.reml:
            raise ValueError(
                "Kenward-Roger's method is only available for REML fits; use model.refit(reml=True)"
            )
        self.model = model
        self.vcov = model.vcov.to_numpy()
        with limited_threads():
            d = _derivatives(model) if marginal is None else _block_derivatives(marginal, model.n_fixed)
        phi = self.vcov
        nparams = len(d.p_matrices)
        information = np.empty((nparams, nparams))
        for r in range(nparams):
            for s in range(r, nparams):
                information[r, s] = information[s, r] = (
                    d.trace[r, s]
                    - 2 * np.sum(phi * d.q_matrices[r, s])
                    + np.sum((phi @ d.p_matrices[r]) * (d.p_matrices[s] @ phi))
                )
        if np.min(np.abs(np.linalg.eigvalsh(information))) > 1e-10:
            w = 2 * np.linalg.inv(information)
        else:
            w = 2 * _generalized_inverse(information)
        self.information = information
        self.w = (w + w.T) / 2
        self.p_matrices = d.p_matrices
        correction = np.zeros_like(phi)
        for r in range(nparams):
            for s in range(nparams):
                bias = d.q_matrices[r, s] - d.p_matrices[r] @ phi @ d.p_matrices[s]
                if d.r_matrices is not None:
                    bias = bias - d.r_matrices[r, s] / 4
                correction += self.w[r, s] * bias
        self.adjusted_vcov = phi + 2 * phi @ correction @ phi

    def _check(self, contrasts: np.ndarray) -> np.ndarray:
        contrasts = np.atleast_2d(np.asarray(contrasts, dtype=float))
        if contrasts.ndim != 2 or contrasts.shape[1] != len(self.vcov):
            raise ValueError(
                f"the contrast must have {len(self.vcov)} columns (one per fixed effect), "
                f"got shape {np.shape(contrasts)}"
            )
        return contrasts

    def _df_and_scale(self, contrasts: np.ndarray, q: int) -> tuple[float, float]:
        """Denominator df and F scaling for full-row-rank ``contrasts`` (pbkrtest's ``.KR_adjust``).

        Divisions by zero give infinities, as in R (e.g. df = 4 when V2 = 0).
        """
        phi = self.vcov
        theta = contrasts.T @ np.linalg.solve(contrasts @ phi @ contrasts.T, contrasts)
        u = np.stack([theta @ phi @ pr @ phi for pr in self.p_matrices])
        traces = np.trace(u, axis1=1, axis2=2)
        a1 = traces @ self.w @ traces
        a2 = np.sum(self.w * np.einsum("rab,sba->rs", u, u))
        with np.errstate(divide="ignore", invalid="ignore"):
            b = (a1 + 6 * a2) / (2 * q)
            g = ((q + 1) * a1 - (q + 4) * a2) / ((q + 2) * a2)
            c1 = g / (3 * q + 2 * (1 - g))
            c2 = (q - g) / (3 * q + 2 * (1 - g))
            c3 = (q + 2 - g) / (3 * q + 2 * (1 - g))
            v0 = 1 + c1 * b
            v1 = 1 - c2 * b
            v2 = 1 - c3 * b
            v0 = 0.0 if abs(v0) < 1e-10 else v0
            ratio = 1.0 if abs(1 - a2 / q) < 1e-14 and abs(v1) < 1e-14 else (1 - a2 / q) / v1
            rho = ratio**2 * v0 / (q * v2)
            df = 4 + (q + 2) / (q * rho - 1)
            scale = 1.0 if abs(df - 2) < 0.01 else df * (1 - a2 / q) / (df - 2)
        return float(df), float(scale)

    def df(self, contrast: np.ndarray) -> float:
        """Denominator df of the t test of ``contrast @ beta`` (pbkrtest's ``Lb_ddf``)."""
        contrast = self._check(contrast)
        if contrast.shape[0] != 1:
            raise ValueError("kenward_roger_df takes one contrast row; use kenward_roger_f_test for a matrix")
        return self._df_and_scale(contrast, 1)[0]

    def f_tests(self, contrasts: np.ndarray) -> tuple[float, int, float, float]:
        """Scaled F, numerator df, denominator df and the unscaled F (pbkrtest's Ftest and FtestU).

        As pbkrtest's ``KRmodcomp`` (which lmerTest's ``contest`` calls): rows that are linearly
        dependent are replaced by an orthonormal basis of their span; the Wald statistic uses the
        adjusted covariance and is multiplied by the F scaling.
        """
        contrasts = self._check(contrasts)
        q = int(np.linalg.matrix_rank(contrasts))
        if q == 0:
            raise ValueError("the contrast matrix is zero")
        if q < contrasts.shape[0]:  # the test depends on the rows' span only
            contrasts = np.linalg.svd(contrasts)[2][:q]
        df, scale = self._df_and_scale(contrasts, q)
        estimate = contrasts @ self.model.fixef.to_numpy()
        wald = estimate @ np.linalg.solve(contrasts @ self.adjusted_vcov @ contrasts.T, estimate)
        return float(scale * wald / q), q, df, float(wald / q)


def kenward_roger_df(model: LinearMixedModel, contrast: np.ndarray) -> float:
    """Kenward-Roger denominator df of ``contrast @ beta`` for a REML fit (as lmerTest's summary)."""
    return model.kenward_roger.df(contrast)


def kenward_roger_f_test(model: LinearMixedModel, contrasts: np.ndarray) -> tuple[float, int, float]:
    """Kenward-Roger scaled F statistic, numerator df and denominator df for H0: ``contrasts @ beta = 0``."""
    return model.kenward_roger.f_tests(contrasts)[:3]
