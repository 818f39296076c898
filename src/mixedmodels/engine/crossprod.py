"""The one pass over the rows: cross-products of the random-effects, fixed-effects and response columns.

Random-effects term ``k`` has ``nlevels[k]`` levels and ``p_k`` columns; its random effects are ordered
level-major (all ``p_k`` coefficients of level 0, then of level 1, ...), as in lme4 and MixedModels.jl.
With ``W = diag(weights)`` and ``XY = [X y]`` the blocks are

* ``diag[k]``   -- Z_k'W Z_k, block-diagonal, stored as an array (nlevels, p_k, p_k);
* ``off[i, j]`` -- Z_i'W Z_j for i > j, a sparse matrix (q_i x q_j);
* ``xyz[k]``    -- XY'W Z_k, dense (m x q_k);
* ``xy``        -- XY'W XY, dense (m x m).

The response column is not y itself but ``(y - X shift) / scale`` (:class:`ResponseUnits`): y less
a least-squares fit, in units of its residual spread.  The model is the same (the fixed effects absorb
the shift, sigma and the random effects the scale), but the blocks no longer carry the response's
mean and units: ``y'y`` of a response whose mean is 1e7 residual SDs away from zero would lose 14
digits to cancellation in the penalized residual sum of squares, and one of 1e300 would overflow.
The factor maps its solutions back (:meth:`BlockedCholesky.solve`, :meth:`BlockedCholesky.pwrss`).

:func:`cross_products` works on any subset of the rows, and :class:`CrossProducts` add, so data that does
not fit in memory (or is split across workers) is handled chunk by chunk with the same code; subtracting
the blocks of some rows gives the blocks without them.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
from scipy.linalg import solve_triangular

__all__ = [
    "ReBlock",
    "ResponseUnits",
    "CrossProducts",
    "SparsityPattern",
    "cross_products",
    "off_diagonal_patterns",
    "sum_cross_products",
    "with_response",
]

#: the response's residual spread must lie within these bounds for sigma^2 and its products with the
#: cross-products to be representable in double precision
SCALE_LIMITS = (1e-150, 1e150)


@dataclass(frozen=True)
class ReBlock:
    """The engine's arrays of one random-effects term: the rows' level codes (0-based) and model-matrix
    columns."""

    codes: np.ndarray  # (n,) integer codes into the factor's levels
    z: np.ndarray  # (n, p) columns of the term's model matrix
    nlevels: int

    @property
    def ncols(self) -> int:
        return self.z.shape[1]

    @cached_property
    def _unit_columns(self) -> np.ndarray:
        return np.all(self.z == 1.0, axis=0)

    def column(self, a: int) -> np.ndarray | None:
        """Column ``a`` of the term's model matrix, None where it is all ones (an intercept: products
        with it are skipped)."""
        return None if self._unit_columns[a] else self.z[:, a]

    def rows(self, index: np.ndarray) -> ReBlock:
        """The block of the rows ``index`` selects (all levels kept, so blocks of subsets add up)."""
        return ReBlock(self.codes[index], self.z[index], self.nlevels)


@dataclass(frozen=True)
class ResponseUnits:
    """The response enters the blocks as ``(y - X shift) / scale``; ``UNIT`` leaves it as it is."""

    shift: np.ndarray | None  # coefficients of the fixed-effects columns subtracted (None: none)
    scale: float

    def apply(self, x: np.ndarray, response: np.ndarray) -> np.ndarray:
        shifted = response if self.shift is None else response - x @ self.shift
        return shifted if self.scale == 1.0 else shifted / self.scale

    def beta(self, internal: np.ndarray) -> np.ndarray:
        """Fixed effects in the response's units from those of the blocks."""
        beta = internal * self.scale
        return beta if self.shift is None else beta + self.shift

    def internal_coefficient(self, j: int, value: float) -> float:
        """Fixed effect ``j`` at ``value`` (response units) in the units of the blocks: the inverse of
        :meth:`beta` for one coefficient."""
        return (value - (0.0 if self.shift is None else float(self.shift[j]))) / self.scale

    def without(self, j: int) -> ResponseUnits:
        """The units once fixed-effects column ``j`` is moved into the response (a held effect)."""
        return ResponseUnits(None if self.shift is None else np.delete(self.shift, j), self.scale)

    @classmethod
    def least_squares(cls, x: np.ndarray, response: np.ndarray, weights: np.ndarray | None) -> ResponseUnits:
        """Shift by the (weighted) least-squares coefficients, scale by the residuals' root mean square.

        Raises ValueError when the residuals vanish (a constant response, or one the fixed effects fit
        exactly: the likelihood is unbounded as sigma -> 0) or their spread cannot be represented.
        """
        wx, wy = _weighted_rows(x, response, weights)
        magnitude = float(np.max(np.abs(wy))) if len(wy) else 0.0
        if magnitude == 0.0 or not np.isfinite(magnitude):
            magnitude = 1.0
        with np.errstate(all="ignore"):  # the least-squares fit of wy / magnitude cannot overflow
            unit_shift = np.linalg.lstsq(wx, wy / magnitude, rcond=None)[0] if x.shape[1] else None
            residuals = wy / magnitude if unit_shift is None else wy / magnitude - wx @ unit_shift
            shift = None if unit_shift is None else unit_shift * magnitude
            scale = magnitude * float(np.sqrt(np.mean(residuals**2)))
        return cls._checked(shift, scale, magnitude)

    @classmethod
    def least_squares_chunks(
        cls, chunks: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray | None]]
    ) -> ResponseUnits:
        """:meth:`least_squares` of rows given as chunks ``(x, response, weights)``, one chunk held at a time.

        The R factor of the stacked rows [sqrt(W) X, sqrt(W) y / magnitude] is the R factor of the
        stacked R factors of its parts (TSQR: Demmel et al. 2012, SIAM J. Sci. Comput. 34, A206), so R is
        updated chunk by chunk; ``magnitude``, the largest |sqrt(w) y| so far, rescales R's last column
        when a chunk raises it.  The shift solves the triangular system, and the residuals' root mean
        square is ``|R[p, p]| / sqrt(n)``.
        """
        r, magnitude, nobs = None, 0.0, 0
        for x, response, weights in chunks:
            wx, wy = _weighted_rows(x, response, weights)
            largest = float(np.max(np.abs(wy), initial=0.0))
            if largest > magnitude:
                if r is not None and magnitude > 0.0:
                    r[:, -1] *= magnitude / largest
                magnitude = largest
            rows = np.column_stack([wx, wy / (magnitude or 1.0)])
            r = np.linalg.qr(rows if r is None else np.vstack([r, rows]), mode="r")
            nobs += len(wy)
        if r is None:
            raise ValueError("no rows to fit")
        p = r.shape[1] - 1
        residual_norm = abs(r[p, p]) if r.shape[0] > p else 0.0
        magnitude = magnitude or 1.0
        with np.errstate(all="ignore"):
            shift = magnitude * solve_triangular(r[:p, :p], r[:p, p]) if p else None
            scale = magnitude * residual_norm / np.sqrt(nobs)
        return cls._checked(shift, scale, magnitude)

    @classmethod
    def _checked(cls, shift: np.ndarray | None, scale: float, magnitude: float) -> ResponseUnits:
        """The units, unless the residuals vanish or their spread cannot be represented (ValueError)."""
        if not np.isfinite(scale) or (shift is not None and not np.all(np.isfinite(shift))):
            raise ValueError("the response's values are too large to be represented: rescale the response")
        if scale <= 1e-12 * magnitude:
            raise ValueError(
                "the response is constant, or fitted exactly by the fixed effects: the residual variance "
                "is zero and the likelihood has no maximum"
            )
        low, high = SCALE_LIMITS
        if not low <= scale <= high:
            raise ValueError(
                f"the response's residual spread ({scale:.3g}) is outside [{low:g}, {high:g}]: its "
                "variance cannot be represented in double precision; rescale the response"
            )
        return cls(shift, scale)


def _weighted_rows(
    x: np.ndarray, response: np.ndarray, weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """sqrt(W) X and sqrt(W) y: the rows of the weighted least-squares problem."""
    if weights is None:
        return x, response
    sqrt_w = np.sqrt(weights)
    return x * sqrt_w[:, None], response * sqrt_w


UNIT = ResponseUnits(None, 1.0)


@dataclass
class CrossProducts:
    """Blocks of [Z X y]'W[Z X y] plus the row count, the sum of log prior weights, and the units of
    the response column."""

    diag: list[np.ndarray]
    off: dict[tuple[int, int], sp.csr_matrix]
    xyz: list[np.ndarray]
    xy: np.ndarray
    nobs: int
    sum_log_weights: float
    units: ResponseUnits = UNIT

    def _combine(self, other: CrossProducts, op) -> CrossProducts:
        if other.units is not self.units:
            raise ValueError("cross-products in different response units cannot be combined")
        return CrossProducts(
            diag=[op(a, b) for a, b in zip(self.diag, other.diag)],
            off={key: op(self.off[key], other.off[key]) for key in self.off},
            xyz=[op(a, b) for a, b in zip(self.xyz, other.xyz)],
            xy=op(self.xy, other.xy),
            nobs=op(self.nobs, other.nobs),
            sum_log_weights=op(self.sum_log_weights, other.sum_log_weights),
            units=self.units,
        )

    def with_fixed_in_response(self, beta: np.ndarray) -> CrossProducts:
        """The blocks of [Z r]'W[Z r] with ``r = y - X beta`` (the fixed effects held at ``beta`` and
        moved into the response), from these blocks of [Z X y]: no pass over the rows."""
        combination = np.append(-np.asarray(beta, dtype=float), 1.0)
        return CrossProducts(
            diag=self.diag,
            off=self.off,
            xyz=[(combination @ block)[None, :] for block in self.xyz],
            xy=np.array([[combination @ self.xy @ combination]]),
            nobs=self.nobs,
            sum_log_weights=self.sum_log_weights,
            units=self.units,
        )

    def scaled(self, factor: float) -> CrossProducts:
        """The blocks of the same rows with every weight multiplied by ``factor``."""
        return CrossProducts(
            diag=[block * factor for block in self.diag],
            off={key: block * factor for key, block in self.off.items()},
            xyz=[block * factor for block in self.xyz],
            xy=self.xy * factor,
            nobs=self.nobs,
            sum_log_weights=self.sum_log_weights + self.nobs * float(np.log(factor)),
            units=self.units,
        )

    def __add__(self, other: CrossProducts) -> CrossProducts:
        """The blocks of both sets of rows (chunks add up)."""
        return self._combine(other, operator.add)

    def __sub__(self, other: CrossProducts) -> CrossProducts:
        """The blocks without the rows of ``other`` (a subset of these rows), e.g. to drop a group."""
        return self._combine(other, operator.sub)


def _level_sums(codes: np.ndarray, values: np.ndarray | None, nlevels: int) -> np.ndarray:
    """Per-level sums of ``values`` (None: of ones, the level counts)."""
    return np.bincount(codes, weights=values, minlength=nlevels).astype(float, copy=False)


@dataclass(frozen=True)
class SparsityPattern:
    """Where the rows' products land in the canonical CSR matrix Z_i'W Z_j (i > j): the same for every
    weighting of the same rows, so it is found once and each weighting only sums its values."""

    columns: list[tuple[int, int]]  # the (column of Z_i, column of Z_j) pairs, in the order of ``slots``
    slots: np.ndarray  # per product of rows (pairs stacked): its position in the matrix's data
    indices: np.ndarray
    indptr: np.ndarray
    shape: tuple[int, int]

    @classmethod
    def of(cls, ti: ReBlock, tj: ReBlock) -> SparsityPattern:
        columns = [(a, b) for a in range(ti.ncols) for b in range(tj.ncols)]
        rows = np.concatenate([ti.codes * ti.ncols + a for a, _ in columns]).astype(np.int64)
        cols = np.concatenate([tj.codes * tj.ncols + b for _, b in columns]).astype(np.int64)
        shape = (ti.nlevels * ti.ncols, tj.nlevels * tj.ncols)
        keys, slots = np.unique(rows * shape[1] + cols, return_inverse=True)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(keys // shape[1], minlength=shape[0]))])
        index_dtype = np.int32 if max(shape[1], len(keys)) < 2**31 else np.int64
        return cls(
            columns, slots.ravel(), (keys % shape[1]).astype(index_dtype), indptr.astype(index_dtype), shape
        )

    def matrix(self, values: list[np.ndarray | None], nobs: int) -> sp.csr_matrix:
        """The matrix of the rows' products ``values`` (one array per pair of ``columns``, None for
        ones; ``nobs`` rows); repeated entries are summed in the rows' order."""
        stacked = np.concatenate([np.ones(nobs) if v is None else v for v in values])
        data = np.bincount(self.slots, weights=stacked, minlength=len(self.indices))
        return sp.csr_matrix((data, self.indices, self.indptr), shape=self.shape)


def off_diagonal_patterns(terms: Sequence[ReBlock]) -> dict[tuple[int, int], SparsityPattern]:
    """The sparsity patterns of the off-diagonal blocks Z_i'W Z_j (i > j) of one chunk of rows."""
    return {(i, j): SparsityPattern.of(terms[i], terms[j]) for i in range(len(terms)) for j in range(i)}


def cross_products(
    terms: Sequence[ReBlock],
    xy: np.ndarray,
    weights: np.ndarray | None = None,
    units: ResponseUnits = UNIT,
    patterns: dict[tuple[int, int], SparsityPattern] | None = None,
    log_weights: bool = True,
) -> CrossProducts:
    """Blocks of [Z X y]'W[Z X y] for one chunk of rows: ``xy`` is the n x m matrix [X y] whose last
    column is the response already in ``units`` (:meth:`ResponseUnits.apply`).  ``patterns``: the
    rows' :func:`off_diagonal_patterns`, made once where the same rows are weighted again and again
    (PIRLS); ``log_weights=False`` leaves out the sum of log weights (0), which only a likelihood with
    prior weights needs, not PIRLS's working weights."""
    xy = np.asarray(xy, dtype=float)
    nobs = xy.shape[0]
    if weights is None:
        weighted_xy, sum_log_weights = xy, 0.0
    else:
        weights = np.asarray(weights, dtype=float)
        weighted_xy = xy * weights[:, None]
        sum_log_weights = float(np.sum(np.log(weights))) if log_weights else 0.0

    def weighted_products(i: int, a: int, j: int, b: int) -> np.ndarray | None:
        """w z_ia z_jb per row (None: the weights themselves, or 1 without weights)."""
        product = _product(terms[i].column(a), terms[j].column(b))
        if weights is None or product is None:
            return weights if product is None else product
        return weights * product

    diag = []
    for k, term in enumerate(terms):
        p = term.ncols
        block = np.empty((term.nlevels, p, p))
        for a in range(p):
            for b in range(a + 1):
                block[:, a, b] = block[:, b, a] = _level_sums(
                    term.codes, weighted_products(k, a, k, b), term.nlevels
                )
        diag.append(block)

    patterns = off_diagonal_patterns(terms) if patterns is None else patterns
    off = {
        (i, j): pattern.matrix([weighted_products(i, a, j, b) for a, b in pattern.columns], nobs)
        for (i, j), pattern in patterns.items()
    }

    xyz = [_column_by_z(term, weighted_xy) for term in terms]
    xy_block = weighted_xy.T @ xy
    xy_block = (xy_block + xy_block.T) / 2  # (x w) y and (y w) x round apart
    return CrossProducts(diag, off, xyz, xy_block, nobs, sum_log_weights, units)


def _product(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    """The rows' product of two columns, where None is a column of ones."""
    if a is None:
        return b
    return a if b is None else a * b


def _column_by_z(term: ReBlock, columns: np.ndarray) -> np.ndarray:
    """``columns' Z_k`` (m x q_k) for one term, from per-level sums (rows already weighted)."""
    m, p = columns.shape[1], term.ncols
    block = np.empty((m, term.nlevels, p))
    for a in range(p):
        z = term.column(a)
        for c in range(m):
            block[c, :, a] = _level_sums(
                term.codes, columns[:, c] if z is None else columns[:, c] * z, term.nlevels
            )
    return block.reshape(m, term.nlevels * p)


def with_response(
    cross: CrossProducts,
    terms: Sequence[ReBlock],
    x: np.ndarray,
    response: np.ndarray,
    weights: np.ndarray | None = None,
    units: ResponseUnits | None = None,
) -> CrossProducts:
    """The cross-products of the same rows with a new response column (e.g. a simulated one).

    Only the last column of [Z X y]'W[Z X y] changes: Z'Wy, X'Wy and y'Wy are made in one pass over
    ``response`` (taken to ``units``, by default ``cross``'s); the Z'WZ, X'WZ and X'WX blocks are
    shared with ``cross``, not copied.
    """
    x = np.asarray(x, dtype=float)
    units = cross.units if units is None else units
    response = units.apply(x, np.asarray(response, dtype=float))
    weighted = response if weights is None else response * np.asarray(weights, dtype=float)
    nfixed = x.shape[1]
    xy = cross.xy.copy()
    xy[nfixed, :nfixed] = xy[:nfixed, nfixed] = x.T @ weighted
    xy[nfixed, nfixed] = weighted @ response
    xyz = []
    for block, term in zip(cross.xyz, terms):
        block = block.copy()
        block[nfixed] = _column_by_z(term, weighted[:, None])[0]
        xyz.append(block)
    return CrossProducts(cross.diag, cross.off, xyz, xy, cross.nobs, cross.sum_log_weights, units)


def sum_cross_products(chunks: Iterable[CrossProducts]) -> CrossProducts:
    """Add the blocks of several chunks of rows."""
    total = None
    for chunk in chunks:
        total = chunk if total is None else total + chunk
    if total is None:
        raise ValueError("no chunks of rows to add up")
    return total
