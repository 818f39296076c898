"""The one pass over the rows: cross-products of the random-effects, fixed-effects and response columns.

Random-effects term ``k`` has ``nlevels[k]`` levels and ``p_k`` columns; its random effects are ordered
level-major (all ``p_k`` coefficients of level 0, then of level 1, ...), as in lme4 and MixedModels.jl.
With ``W = diag(weights)`` and ``XY = [X y]`` the blocks are

* ``diag[k]``   -- Z_k'W Z_k, block-diagonal, stored as an array (nlevels, p_k, p_k);
* ``off[i, j]`` -- Z_i'W Z_j for i > j, a sparse matrix (q_i x q_j);
* ``xyz[k]``    -- XY'W Z_k, dense (m x q_k);
* ``xy``        -- XY'W XY, dense (m x m).

:func:`cross_products` works on any subset of the rows, and :class:`CrossProducts` add, so data that does
not fit in memory (or is split across workers) is handled chunk by chunk with the same code; subtracting
the blocks of some rows gives the blocks without them.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["GroupingColumns", "CrossProducts", "cross_products", "sum_cross_products", "with_response"]


@dataclass(frozen=True)
class GroupingColumns:
    """The rows' view of one random-effects term: level codes (0-based) and model-matrix columns."""

    codes: np.ndarray  # (n,) integer codes into the factor's levels
    z: np.ndarray  # (n, p) columns of the term's model matrix
    nlevels: int

    @property
    def ncols(self) -> int:
        return self.z.shape[1]


@dataclass
class CrossProducts:
    """Blocks of [Z X y]'W[Z X y] plus the row count and the sum of log prior weights."""

    diag: list[np.ndarray]
    off: dict[tuple[int, int], sp.csr_matrix]
    xyz: list[np.ndarray]
    xy: np.ndarray
    nobs: int
    sum_log_weights: float

    def _combine(self, other: CrossProducts, op) -> CrossProducts:
        return CrossProducts(
            diag=[op(a, b) for a, b in zip(self.diag, other.diag)],
            off={key: op(self.off[key], other.off[key]) for key in self.off},
            xyz=[op(a, b) for a, b in zip(self.xyz, other.xyz)],
            xy=op(self.xy, other.xy),
            nobs=op(self.nobs, other.nobs),
            sum_log_weights=op(self.sum_log_weights, other.sum_log_weights),
        )

    def __add__(self, other: CrossProducts) -> CrossProducts:
        """The blocks of both sets of rows (chunks add up)."""
        return self._combine(other, operator.add)

    def __sub__(self, other: CrossProducts) -> CrossProducts:
        """The blocks without the rows of ``other`` (a subset of these rows), e.g. to drop a group."""
        return self._combine(other, operator.sub)


def _level_sums(codes: np.ndarray, values: np.ndarray, nlevels: int) -> np.ndarray:
    return np.bincount(codes, weights=values, minlength=nlevels)


def cross_products(
    terms: Sequence[GroupingColumns], xy: np.ndarray, weights: np.ndarray | None = None
) -> CrossProducts:
    """Blocks of [Z X y]'W[Z X y] for one chunk of rows (``xy`` is the n x m matrix [X y])."""
    xy = np.asarray(xy, dtype=float)
    nobs = xy.shape[0]
    if weights is None:
        sqrt_w = None
        sum_log_weights = 0.0
    else:
        weights = np.asarray(weights, dtype=float)
        sqrt_w = np.sqrt(weights)
        sum_log_weights = float(np.sum(np.log(weights)))
        xy = xy * sqrt_w[:, None]
    zs = [t.z if sqrt_w is None else t.z * sqrt_w[:, None] for t in terms]

    diag = []
    for term, z in zip(terms, zs):
        p = term.ncols
        block = np.empty((term.nlevels, p, p))
        for a in range(p):
            for b in range(a + 1):
                block[:, a, b] = block[:, b, a] = _level_sums(term.codes, z[:, a] * z[:, b], term.nlevels)
        diag.append(block)

    off = {}
    for i, (ti, zi) in enumerate(zip(terms, zs)):
        for j in range(i):
            tj, zj = terms[j], zs[j]
            rows, cols, vals = [], [], []
            for a in range(ti.ncols):
                for b in range(tj.ncols):
                    rows.append(ti.codes * ti.ncols + a)
                    cols.append(tj.codes * tj.ncols + b)
                    vals.append(zi[:, a] * zj[:, b])
            shape = (ti.nlevels * ti.ncols, tj.nlevels * tj.ncols)
            off[i, j] = sp.csr_matrix(
                (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=shape
            )

    xyz = [_column_by_z(term, z, xy) for term, z in zip(terms, zs)]
    return CrossProducts(diag, off, xyz, xy.T @ xy, nobs, sum_log_weights)


def _column_by_z(term: GroupingColumns, z: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """``columns' Z_k`` (m x q_k) for one term, from per-level sums (rows already weighted)."""
    m, p = columns.shape[1], term.ncols
    block = np.empty((m, term.nlevels, p))
    for c in range(m):
        for a in range(p):
            block[c, :, a] = _level_sums(term.codes, columns[:, c] * z[:, a], term.nlevels)
    return block.reshape(m, term.nlevels * p)


def with_response(
    cross: CrossProducts,
    terms: Sequence[GroupingColumns],
    x: np.ndarray,
    response: np.ndarray,
    weights: np.ndarray | None = None,
) -> CrossProducts:
    """The cross-products of the same rows with a new response column (e.g. a simulated one).

    Only the last column of [Z X y]'W[Z X y] changes: Z'Wy, X'Wy and y'Wy are made in one pass over
    ``response``; the Z'WZ, X'WZ and X'WX blocks are shared with ``cross``, not copied.
    """
    response = np.asarray(response, dtype=float)
    x = np.asarray(x, dtype=float)
    if weights is None:
        weighted, weighted_x, zs = response, x, [t.z for t in terms]
    else:
        sqrt_w = np.sqrt(np.asarray(weights, dtype=float))
        weighted, weighted_x = response * sqrt_w, x * sqrt_w[:, None]
        zs = [t.z * sqrt_w[:, None] for t in terms]
    nfixed = x.shape[1]
    xy = cross.xy.copy()
    xy[nfixed, :nfixed] = xy[:nfixed, nfixed] = weighted_x.T @ weighted
    xy[nfixed, nfixed] = weighted @ weighted
    xyz = []
    for block, term, z in zip(cross.xyz, terms, zs):
        block = block.copy()
        block[nfixed] = _column_by_z(term, z, weighted[:, None])[0]
        xyz.append(block)
    return CrossProducts(cross.diag, cross.off, xyz, xy, cross.nobs, cross.sum_log_weights)


def sum_cross_products(chunks: Iterable[CrossProducts]) -> CrossProducts:
    """Add the blocks of several chunks of rows."""
    total = None
    for chunk in chunks:
        total = chunk if total is None else total + chunk
    if total is None:
        raise ValueError("no chunks of rows to add up")
    return total
