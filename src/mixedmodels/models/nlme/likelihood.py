"""The per-group likelihood of gls and lme models with variance functions and correlation structures.

Pinheiro & Bates (2000, ch. 5): with Var(e_g) = sigma^2 V_g^(1/2) C_g V_g^(1/2) for each group g
(V_g the diagonal of squared variance-function factors, C_g the correlation), the rows of a group are
multiplied by the weights w = V_g^(-1/2) and then by the whitening factor F_g of C_g.  The transformed
model has independent residuals with constant variance, and

    log L = log L_transformed + sum_i log w_i + sum_g log|F_g|.

The transformed model is a linear model (gls: profiled over beta and sigma from one QR decomposition)
or a linear mixed model (lme: the profiled deviance of Bates et al. 2015 from the project's blocked
Cholesky factor of the cross-products, so any nesting of random effects works); both likelihoods are
those of :mod:`mixedmodels.engine.deviance`, with ``sum log w = 2 log|Jacobian|``.  Nothing here builds
a matrix over all rows: the whitening is group by group (see :mod:`.corstruct`).

The rows come as chunks of whole residual groups (:class:`ResidualChunk`), each with the residual
structure bound to its rows; in memory, all rows are one chunk.  The structures' parameters change the
whitening at every evaluation, so an evaluation is a pass over the chunks: lme sums the chunks' whitened
cross-products (:func:`mixedmodels.engine.crossprod.sum_cross_products`), gls stacks their R factors
(R'R is the sum of the chunks' R_c'R_c; TSQR, as
:meth:`~mixedmodels.engine.crossprod.ResponseUnits.least_squares_chunks`).  The response is in units
that all chunks share, found from all rows before.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ...data.rows import RowChunk
from ...engine.cholesky import BlockedCholesky
from ...engine.covariance import Unstructured
from ...engine.crossprod import CrossProducts, ReBlock, ResponseUnits, cross_products, sum_cross_products
from ...engine.deviance import (
    chol_logdet,
    deviance_at_sigma,
    linear_model_deviance,
    linear_model_terms,
    objective_from_chol,
    residual_dof,
)
from ...engine.start import parameter_scale, start_and_step
from ...errors import FitError
from ...inference.varpar import chol_terms
from .corstruct import CorStruct
from .groups import GroupLayout
from .varfunc import VarFunc

__all__ = [
    "ResidualChunk",
    "ResidualModel",
    "GLSLikelihood",
    "LMELikelihood",
    "least_squares",
    "natural_covariance",
    "covariance_from_natural",
    "split_natural",
]


def least_squares(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Ordinary least-squares coefficients of y on the columns of x (none when x has no columns)."""
    return np.linalg.lstsq(x, y, rcond=None)[0] if x.shape[1] else np.zeros(0)


class ResidualModel:
    """A bound variance function and correlation structure: parameters -> whitened rows.

    Parameters are ordered as nlme's: the correlation structure's, then the variance function's.
    """

    def __init__(self, varfunc: VarFunc | None, corstruct: CorStruct | None):
        self.varfunc = varfunc
        self.corstruct = corstruct
        self.sizes = (corstruct.n_params if corstruct else 0, varfunc.n_params if varfunc else 0)

    @property
    def n_params(self) -> int:
        return sum(self.sizes)

    @property
    def initial(self) -> np.ndarray:
        parts = [s.initial for s in (self.corstruct, self.varfunc) if s is not None]
        return np.concatenate(parts) if parts else np.zeros(0)

    @property
    def uses_fitted(self) -> bool:
        return self.varfunc is not None and self.varfunc.uses_fitted

    def split(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        params = np.asarray(params, dtype=float)
        return params[: self.sizes[0]], params[self.sizes[0] :]

    def log_weights(self, params: np.ndarray, fitted: np.ndarray | None = None) -> np.ndarray | None:
        if self.varfunc is None:
            return None
        return self.varfunc.log_weights(self.split(params)[1], fitted)

    def whiten(self, params: np.ndarray, matrix: np.ndarray, fitted=None, natural: bool = False):
        """(whitened rows, sum log w + sum log|F_g|), or None where the covariance is not valid."""
        cor_params, var_params = self.split(params)
        out, log_jacobian = matrix, 0.0
        if self.varfunc is not None:
            log_w = self.varfunc.log_weights(var_params, fitted)
            if not np.all(np.abs(log_w) < _LARGEST_LOG_WEIGHT):
                return None
            weights = np.exp(log_w)
            out = out * (weights if out.ndim == 1 else weights[:, None])
            log_jacobian += float(log_w.sum())
        if self.corstruct is not None:
            result = self.corstruct.whiten(cor_params, out, natural=natural)
            if result is None:
                return None
            out, logdet = result
            log_jacobian += logdet
        return out, log_jacobian

    def color(self, params: np.ndarray, standard: np.ndarray, fitted=None) -> np.ndarray:
        """Residual errors in units of sigma from independent standard normal draws (sorted rows):
        ``V_g^(1/2) S_g e_g`` in each group, with ``S_g S_g' = C_g``, whose covariance is the model's
        ``V_g^(1/2) C_g V_g^(1/2)`` (the inverse of :meth:`whiten`'s transformation)."""
        cor_params, var_params = self.split(params)
        out = np.asarray(standard, dtype=float)
        if self.corstruct is not None:
            out = self.corstruct.color(cor_params, out)
        if self.varfunc is not None:
            out = out * np.exp(-self.varfunc.log_weights(var_params, fitted))
        return out

    def natural(self, params: np.ndarray) -> np.ndarray:
        cor_params, var_params = self.split(params)
        parts = []
        if self.corstruct is not None:
            parts.append(self.corstruct.natural(cor_params))
        if self.varfunc is not None:
            parts.append(self.varfunc.natural(var_params))
        return np.concatenate(parts) if parts else np.zeros(0)

    def for_rows(self, data: pd.DataFrame, layout: GroupLayout | None) -> ResidualModel:
        """The bound structures on a chunk of whole groups of their rows (``data``, its groups ``layout``;
        None without a correlation structure), see :meth:`VarFunc.for_rows`, :meth:`CorStruct.for_rows`."""
        varfunc = None if self.varfunc is None else self.varfunc.for_rows(data)
        corstruct = None if self.corstruct is None else self.corstruct.for_rows(data, layout)
        return ResidualModel(varfunc, corstruct)


_LARGEST_LOG_WEIGHT = 600.0  # exp() of more overflows in the products of the whitened rows


@dataclass(frozen=True)
class ResidualChunk:
    """Whole residual groups of the model's sorted rows (``rows``: their positions): the engine's arrays
    and the residual structure bound to them."""

    rows: slice
    arrays: RowChunk
    residual: ResidualModel


def response_units(chunks: Sequence[ResidualChunk]) -> ResponseUnits:
    """The least-squares units of the response (:class:`ResponseUnits`) of all chunks' rows."""
    if len(chunks) == 1:
        arrays = chunks[0].arrays
        return ResponseUnits.least_squares(arrays.x, arrays.response, None)
    return ResponseUnits.least_squares_chunks((c.arrays.x, c.arrays.response, None) for c in chunks)


def _with_response(arrays: RowChunk, units: ResponseUnits, before: list[np.ndarray]) -> np.ndarray:
    """The columns ``before``, then X and the response in ``units``, of a chunk's rows."""
    return np.column_stack(before + [arrays.x, units.apply(arrays.x, arrays.response)])


@dataclass
class GLSFit:
    """Estimates of a gls model at given variance parameters."""

    beta: np.ndarray
    sigma: float
    r_fixed: np.ndarray  # upper-triangular R_X of the whitened X (p x p)
    loglik: float


class GLSLikelihood:
    """gls: the log-likelihood profiled over beta and sigma (nlme's gls_loglik and gls_estimate)."""

    def __init__(self, chunks: Sequence[ResidualChunk], residual: ResidualModel, reml: bool):
        # the response in units free of its location and scale (see engine.crossprod.ResponseUnits)
        self.units = response_units(chunks)
        self.chunks = [(c.rows, _with_response(c.arrays, self.units, []), c.residual) for c in chunks]
        self.residual = residual
        self.reml = reml
        self.nobs = sum(len(c.arrays.response) for c in chunks)
        self.nfixed = chunks[0].arrays.x.shape[1]
        self.nr = residual_dof(self.nobs, self.nfixed, reml)
        self.fitted_covariate: np.ndarray | None = None

    def _decompose(self, params, natural=False):
        r, log_jacobian = None, 0.0
        fitted = self.fitted_covariate
        for rows, xy, residual in self.chunks:
            whitened = residual.whiten(params, xy, None if fitted is None else fitted[rows], natural)
            if whitened is None:
                return None
            r = np.linalg.qr(whitened[0] if r is None else np.vstack([r, whitened[0]]), mode="r")
            log_jacobian += whitened[1]
        p = self.nfixed
        diagonal = np.abs(np.diagonal(r))
        if r.shape[0] < p + 1 or np.any(diagonal[:p] <= 1e-10 * max(diagonal.max(), 1.0)):
            return None
        return r, log_jacobian

    def deviance(self, params: np.ndarray, response_units: bool = True) -> float:
        """-2 log-likelihood (restricted for REML) at the variance parameters, profiled over beta and
        sigma (without ``response_units``: less ``2 nr log(scale)``, the response in the units of
        ``self.units``; what the optimizer minimizes)."""
        decomposed = self._decompose(params)
        if decomposed is None:
            return np.inf
        r, log_jacobian = decomposed
        scale = self.units.scale if response_units else 1.0
        value = linear_model_deviance(np.diagonal(r), self.nobs, self.reml, 2.0 * log_jacobian, scale)
        return value if np.isfinite(value) else np.inf

    def fit(self, params: np.ndarray) -> GLSFit:
        decomposed = self._decompose(params)
        if decomposed is None:
            raise FitError("the variance parameters give a singular fit")
        r, _ = decomposed
        p = self.nfixed
        r_fixed = r[:p, :p]
        beta = self.units.beta(np.linalg.solve(r_fixed, r[:p, p]))
        sigma = abs(r[p, p]) * self.units.scale / math.sqrt(self.nr)
        return GLSFit(beta, sigma, r_fixed, -0.5 * self.deviance(params))

    def sigma_free_terms(self, params: np.ndarray) -> tuple[float, float, np.ndarray] | None:
        """The deviance's terms that sigma does not enter, at the variance parameters (see
        :mod:`mixedmodels.inference.varpar`): the REML term less twice the log-Jacobian, the residual
        sum of squares and (R_X'R_X)^{-1}; None where the parameters give no valid model."""
        decomposed = self._decompose(params)
        if decomposed is None:
            return None
        r, log_jacobian = decomposed
        logdet, rss = linear_model_terms(np.diagonal(r), self.reml, self.units.scale)
        inverse = np.linalg.inv(r[: self.nfixed, : self.nfixed])
        return logdet - 2.0 * log_jacobian, rss, inverse @ inverse.T

    def loglik_sigma(self, natural: np.ndarray) -> float:
        """Log-likelihood in (natural variance parameters, log sigma), beta profiled out: the function
        whose Hessian is nlme's apVar (glsApVar.fullGlsLogLik)."""
        params, log_sigma = natural[:-1], natural[-1]
        decomposed = self._decompose(params, natural=True)
        if decomposed is None:
            return -np.inf
        r, log_jacobian = decomposed
        deviance = linear_model_deviance(
            np.diagonal(r), self.nobs, self.reml, 2.0 * log_jacobian, self.units.scale, math.exp(log_sigma)
        )
        return -0.5 * deviance


# -- lme -------------------------------------------------------------------------------------------------
def natural_covariance(cov: np.ndarray) -> np.ndarray:
    """nlme's pdNatural parameters of a covariance matrix: log SDs, then Fisher's z of the correlations
    (lower triangle, column by column)."""
    sd = np.sqrt(np.diag(cov))
    corr = cov / np.outer(sd, sd)
    rows, cols = np.triu_indices(len(sd), 1)
    r = corr[rows, cols]
    return np.concatenate([np.log(sd), np.log((1 + r) / (1 - r))])


def split_natural(natural: np.ndarray, sizes: Sequence[int]) -> tuple[list[np.ndarray], np.ndarray]:
    """The pdNatural blocks of q x q covariances (q = each of ``sizes``; q log SDs, then q(q-1)/2
    Fisher's z) at the start of ``natural``, in turn, and the rest of ``natural``."""
    blocks = []
    start = 0
    for q in sizes:
        count = q + q * (q - 1) // 2
        blocks.append(natural[start : start + count])
        start += count
    return blocks, natural[start:]


def covariance_from_natural(natural: np.ndarray, size: int) -> np.ndarray:
    sd = np.exp(natural[:size])
    corr = np.eye(size)
    rows, cols = np.triu_indices(size, 1)
    corr[rows, cols] = corr[cols, rows] = np.tanh(natural[size:] / 2.0)
    return corr * np.outer(sd, sd)


class LMELikelihood:
    """lme: the profiled deviance of the whitened model over theta (lme4's relative covariance factors,
    one lower-triangular T per term) and the residual structure's parameters."""

    def __init__(self, chunks: Sequence[ResidualChunk], residual: ResidualModel, reml: bool):
        self.residual = residual
        self.reml = reml
        self.nobs = sum(len(c.arrays.response) for c in chunks)
        self.nfixed = chunks[0].arrays.x.shape[1]
        self.nr = residual_dof(self.nobs, self.nfixed, reml)
        self.nlevels = [block.nlevels for block in chunks[0].arrays.blocks]
        self.ncols = [block.ncols for block in chunks[0].arrays.blocks]
        self.covariances = [Unstructured(q) for q in self.ncols]
        sizes = [c.n_params for c in self.covariances]
        self.n_theta = sum(sizes)
        bounds = np.cumsum([0] + sizes)
        self.theta_slices = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
        # the response in units free of its location and scale (see engine.crossprod.ResponseUnits):
        # whitening is linear, so the whitened response column stays in these units
        self.units = response_units(chunks)
        self.chunks = [
            (
                c.rows,
                _with_response(c.arrays, self.units, [block.z for block in c.arrays.blocks]),
                [block.codes for block in c.arrays.blocks],
                c.residual,
            )
            for c in chunks
        ]
        self.fitted_covariate: np.ndarray | None = None
        self._cache: tuple[bytes, CrossProducts, float] | None = None

    @property
    def lower_bounds(self) -> np.ndarray:
        theta = [c.lower_bounds for c in self.covariances]
        return np.concatenate(theta + [np.full(self.residual.n_params, -np.inf)])

    def cross(self, psi: np.ndarray, natural: bool = False) -> tuple[CrossProducts, float] | None:
        """Cross-products of the whitened [Z X y] and the log-Jacobian, at residual parameters psi."""
        key = np.asarray(psi, dtype=float).tobytes() + bytes([natural])
        if self._cache is not None and self._cache[0] == key and self.fitted_covariate is None:
            return self._cache[1], self._cache[2]
        parts, log_jacobian = [], 0.0
        fitted = self.fitted_covariate
        for rows, full, codes, residual in self.chunks:
            whitened = residual.whiten(psi, full, None if fitted is None else fitted[rows], natural)
            if whitened is None:
                return None
            start = 0
            grouping = []
            for term_codes, nlevels, ncol in zip(codes, self.nlevels, self.ncols):
                grouping.append(ReBlock(term_codes, whitened[0][:, start : start + ncol], nlevels))
                start += ncol
            parts.append(cross_products(grouping, whitened[0][:, start:], units=self.units))
            log_jacobian += whitened[1]
        cross = sum_cross_products(parts)
        self._cache = (key, cross, log_jacobian)
        return cross, log_jacobian

    def lambdas(self, theta: np.ndarray) -> list[np.ndarray]:
        return [c.lambda_(theta[s]) for c, s in zip(self.covariances, self.theta_slices)]

    def chol_at(self, params: np.ndarray, natural: bool = False):
        """(BlockedCholesky updated at params, log-Jacobian) or None."""
        params = np.asarray(params, dtype=float)
        crossed = self.cross(params[self.n_theta :], natural)
        if crossed is None:
            return None
        cross, log_jacobian = crossed
        chol = BlockedCholesky(cross, self.nfixed)
        if not chol.update(self.lambdas(params[: self.n_theta])):
            return None
        return chol, log_jacobian

    def deviance(self, params: np.ndarray, response_units: bool = True) -> float:
        """-2 log-likelihood (restricted for REML), profiled over beta and sigma (the optimizer minimizes
        it without ``response_units``: see :func:`mixedmodels.engine.deviance.objective_from_chol`)."""
        result = self.chol_at(params)
        if result is None:
            return np.inf
        chol, log_jacobian = result
        value = objective_from_chol(chol, self.reml, response_units) - 2.0 * log_jacobian
        return float(value) if np.isfinite(value) else np.inf

    def sigma_free_terms(self, params: np.ndarray) -> tuple[float, float, np.ndarray] | None:
        """The deviance's terms that sigma does not enter, at (theta, residual parameters) (see
        :mod:`mixedmodels.inference.varpar`): the log-determinant term less twice the log-Jacobian,
        pwrss and (R_X'R_X)^{-1}; None where the parameters give no valid model."""
        result = self.chol_at(params)
        if result is None:
            return None
        chol, log_jacobian = result
        logdet, pwrss, inverse = chol_terms(chol, self.reml)
        return logdet - 2.0 * log_jacobian, pwrss, inverse

    def start(self, psi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Moment-based starting theta (as the lmer engine) and BOBYQA's initial steps."""
        crossed = self.cross(psi)
        if crossed is None:
            raise ValueError("the starting values of the variance function or correlation are not valid")
        theta, step = start_and_step(self.covariances, crossed[0], self.nfixed)
        return np.concatenate([theta, psi]), np.concatenate([step, np.full(len(psi), 0.3)])

    def parameter_scale(self, psi: np.ndarray) -> np.ndarray:
        """Natural units of theta (see :func:`mixedmodels.engine.start.parameter_scale`), then 1 for
        the residual structure's parameters."""
        crossed = self.cross(psi)
        if crossed is None:
            raise ValueError("the starting values of the variance function or correlation are not valid")
        return np.concatenate([parameter_scale(self.covariances, crossed[0]), np.ones(len(psi))])

    def loglik_sigma(self, natural: np.ndarray, term_sizes: Sequence[int]) -> float:
        """Log-likelihood in (pdNatural parameters of each term's absolute covariance, natural residual
        parameters, log sigma), beta profiled out: nlme's lmeApVar.fullLmeLogLik."""
        log_sigma = natural[-1]
        sigma = math.exp(log_sigma)
        blocks, rest = split_natural(natural, term_sizes)
        theta = []
        for q, block in zip(term_sizes, blocks):
            try:
                lower = np.linalg.cholesky(covariance_from_natural(block, q)) / sigma
            except np.linalg.LinAlgError:
                return -np.inf
            theta.append(lower.T[np.triu_indices(q)])  # lower triangle column by column (Unstructured)
        psi = rest[:-1]
        result = self.chol_at(np.concatenate(theta + [psi]), natural=True)
        if result is None:
            return -np.inf
        chol, log_jacobian = result
        logdet = chol_logdet(chol, self.reml)
        return -0.5 * deviance_at_sigma(sigma, chol.pwrss(), self.nr, logdet, 2.0 * log_jacobian)
