"""Blocked Cholesky factor of the penalized cross-product matrix.

For relative covariance factor Lambda(theta) the matrix

    [Lambda'Z'WZ Lambda + I   Lambda'Z'W XY]
    [XY'WZ Lambda             XY'W XY      ]  =  L L'

is factored block by block, left-looking, as in MixedModels.jl's ``updateL!``.  Block row/column ``k``
is random-effects term ``k`` (terms sorted so the first has the most random effects) and the last one
is ``XY = [X y]``.  The first term's diagonal block stays block-diagonal (one small ``p x p`` Cholesky
per level) and its off-diagonal blocks keep the sparsity of Z_i'Z_0; later diagonal blocks are dense.
Nothing here grows with the number of observations.

From ``L``: log|Lambda'Z'WZ Lambda + I| = 2 sum log diag(L_RE), the penalized residual sum of squares
is the square of the last diagonal element, and log|R_X|^2 = 2 sum log diag(L_XX) (Bates et al. 2015,
section 3).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from functools import cache

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp

from .crossprod import CrossProducts

__all__ = ["BlockedCholesky", "ProductPlan", "block_diagonal"]

# LAPACK directly: scipy.linalg's wrappers cost more than the factorization of the small blocks
_potrf = la.lapack.dpotrf
_trtrs = la.lapack.dtrtrs

Block = np.ndarray | sp.spmatrix

# an off-diagonal block Z_i'WZ_0 of scalar terms at least this full, and with at most this many entries,
# is kept dense: its products are BLAS calls instead of sparse ones
DENSE_FILL = 0.25
DENSE_PRODUCT_ENTRIES = 1_000_000


def batched_cholesky(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Lower Cholesky factors of a stack of small SPD blocks and their inverses; None if one is not PD."""
    if blocks.shape[1] == 1:  # 1 x 1 blocks: LAPACK's square roots and reciprocals, without its overhead
        if not np.all(blocks > 0):  # NaN fails too, as in LAPACK's potrf
            return None
        factor = np.sqrt(blocks)
        return factor, 1.0 / factor
    try:
        factor = np.linalg.cholesky(blocks)
    except np.linalg.LinAlgError:
        return None
    return factor, np.linalg.inv(factor)


@cache
def _kron_positions(p: int) -> tuple[np.ndarray, np.ndarray]:
    """Where the two factors of each entry of ``T kron T`` sit in ``T`` flattened row-major."""
    i, k, j, m = np.indices((p, p, p, p)).reshape(4, -1)
    return i * p + j, k * p + m


def kron_square(t: np.ndarray) -> np.ndarray:
    """``T kron T``: with row-major flattening, ``vec(T'A T) = vec(A) @ (T kron T)`` for a row vector."""
    p = t.shape[0]
    first, second = _kron_positions(p)
    flat = t.ravel()
    return (flat[first] * flat[second]).reshape(p * p, p * p)


@cache
def _flat_identity(p: int) -> np.ndarray:
    return np.eye(p).ravel()


def penalized_blocks(blocks: np.ndarray, kron: np.ndarray) -> np.ndarray:
    """``S_k = T'A_k T + I`` for crossproduct blocks ``A_k`` flattened row-major to (nlevels, p*p), as
    ``vec(S_k) = vec(A_k) K + vec(I)`` with ``K = T kron T`` (flattened the same way)."""
    scaled = blocks @ kron
    scaled += _flat_identity(math.isqrt(kron.shape[0]))  # K is p^2 x p^2
    return scaled


# row-major flattened 2 x 2 blocks [a, b, c, d] -> their adjugates [d, -b, -c, a], as a right factor
_ADJUGATE_2 = np.array([[0, 0, 0, 1], [0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0]], dtype=float)


def weighted_inverse(blocks: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, float, np.ndarray] | None:
    """For the crossproduct blocks ``A_k`` of one term, flattened row-major to (nlevels, p*p):
    ``S_k = T'A_k T + I``, ``sum log|S_k|`` and ``M_k = T S_k^{-1} T'`` (both flattened); None if an
    ``S_k`` is not positive definite.

    This is all an evaluation of the objective needs from the first term's block-diagonal part.  With
    ``K = T kron T`` the scaling is one product, ``vec(S_k) = vec(A_k) K + vec(I)``, and so is
    ``vec(M_k) = vec(S_k^{-1}) K'``.  Blocks of size 1 and 2 invert in closed form (``S^{-1} =
    adj(S) / |S|``): NumPy's batched LAPACK calls cost more than the arithmetic at these sizes, and
    they are the common case (random intercepts and slopes).
    """
    p = t.shape[0]
    kron = kron_square(t)
    scaled = penalized_blocks(blocks, kron)
    if p <= 2:
        det = scaled[:, 0] if p == 1 else scaled[:, 0] * scaled[:, 3] - scaled[:, 1] * scaled[:, 2]
        # crossproducts A_k are positive semidefinite, so S_00 >= 1 and |S| > 0 <=> positive definite
        if not det.min() > 0.0:
            return None
        middle = kron / scaled if p == 1 else (scaled @ (_ADJUGATE_2 @ kron.T)) / det[:, None]
        return scaled, float(np.log(det).sum()), middle
    factored = batched_cholesky(scaled.reshape(-1, p, p))
    if factored is None:
        return None
    factor, factor_inv = factored
    half = factor_inv @ t.T  # L_k^{-1} T' per level
    logdet = 2.0 * float(np.log(np.diagonal(factor, axis1=1, axis2=2)).sum())
    return scaled, logdet, (half.transpose(0, 2, 1) @ half).reshape(scaled.shape)


def block_diagonal(blocks: np.ndarray) -> sp.bsr_matrix:
    """Sparse block-diagonal matrix from an array of ``nlevels`` square blocks."""
    nlevels, p, _ = blocks.shape
    return sp.bsr_matrix(
        (blocks, np.arange(nlevels), np.arange(nlevels + 1)), shape=(nlevels * p, nlevels * p)
    )


def _canonical_csc(matrix: sp.spmatrix) -> tuple[sp.csc_matrix, np.ndarray | None]:
    """``matrix`` in CSC form with sorted row indices and no duplicates, and where its values come from
    in ``matrix.data`` (None unless ``matrix`` is a canonical CSR matrix, whose values then refill it)."""
    if not (sp.isspmatrix_csr(matrix) and matrix.has_canonical_format):
        matrix = sp.csc_matrix(matrix)
        matrix.sum_duplicates()
        return matrix, None
    numbered = sp.csr_matrix(
        (np.arange(1, matrix.nnz + 1, dtype=float), matrix.indices, matrix.indptr), matrix.shape
    )
    numbered = numbered.tocsc()
    numbered.sum_duplicates()
    origin = numbered.data.astype(np.int64) - 1
    numbered.data = matrix.data[origin]
    return numbered, origin


class ProductPlan:
    """Precomputed structure for the dense product ``A M B'`` with block-diagonal ``M``.

    ``A`` (r x q0) and ``B`` (s x q0) are fixed sparse matrices and ``M`` has ``nlevels`` blocks of size
    ``p x p`` that change with theta.  Each entry of the product is a fixed linear combination of the
    entries of ``M``, so the plan stores that linear map as one sparse matrix (built once, from every
    pair of nonzeros of ``A`` and ``B`` in the same level) and an evaluation is a single sparse
    matrix-vector product.  With ``lower`` only entries on or below the diagonal are made (enough for a
    Cholesky factorization).  Plans with more than ``max_entries`` pairs are not built.
    """

    def __init__(
        self,
        linear_map: sp.csr_matrix,
        positions: np.ndarray,
        shape: tuple[int, int],
        sources: tuple[np.ndarray, np.ndarray] | None = None,
    ):
        self.linear_map, self.positions, self.shape = linear_map, positions, shape
        # per entry of linear_map.data: its factors' positions in the data of the canonical CSR A and B
        # it was built from (None: they were not canonical CSR matrices)
        self.sources = sources

    def with_values(self, a: sp.csr_matrix, b: sp.csr_matrix) -> ProductPlan | None:
        """The plan for canonical CSR matrices of the same sparsity pattern as the ones it was built from
        (the cross-products of the same rows under other weights: a GLMM's PIRLS), only the values
        changed; None if the plan was not built from such matrices."""
        if self.sources is None:
            return None
        a_index, b_index = self.sources
        pattern = self.linear_map
        linear_map = sp.csr_matrix(
            (a.data[a_index] * b.data[b_index], pattern.indices, pattern.indptr), shape=pattern.shape
        )
        return ProductPlan(linear_map, self.positions, self.shape, self.sources)

    @classmethod
    def build(cls, a: sp.spmatrix, b: sp.spmatrix, p: int, lower: bool, max_entries: int = 30_000_000):
        same = a is b
        a, a_origin = _canonical_csc(a)
        b, b_origin = (a, a_origin) if same else _canonical_csc(b)
        a_col = np.repeat(np.arange(a.shape[1]), np.diff(a.indptr))
        b_col = np.repeat(np.arange(b.shape[1]), np.diff(b.indptr))
        nlevels = a.shape[1] // p
        a_level = a_col // p
        if lower and same and p == 1:
            # A M A' with one column per level: the pairs (u, v) of nonzeros of a column with v at or
            # before u (rows sorted) are exactly the entries on or below the diagonal
            repeats = np.arange(a.nnz) - a.indptr[a_col] + 1
            starts = a.indptr[a_col]
        else:
            b_counts = np.bincount(b_col // p, minlength=nlevels)
            repeats = b_counts[a_level]
            starts = np.concatenate([[0], np.cumsum(b_counts)[:-1]])[a_level]
        total = int(repeats.sum())
        if total > max_entries:
            return None
        left = np.repeat(np.arange(len(a_col)), repeats)
        right = np.arange(total) - np.repeat(np.cumsum(repeats) - repeats - starts, repeats)
        rows, cols = a.indices[left], b.indices[right]
        if lower and not (same and p == 1):
            keep = rows >= cols
            left, right, rows, cols = left[keep], right[keep], rows[keep], cols[keep]
        # the entries of the product that occur, numbered in row-major order without sorting
        target = rows.astype(np.int64) * b.shape[0] + cols
        occurs = np.zeros(a.shape[0] * b.shape[0], dtype=bool)
        occurs[target] = True
        positions = np.flatnonzero(occurs)
        number = np.cumsum(occurs) - 1
        middle_index = a_level[left] * p * p + (a_col[left] % p) * p + (b_col[right] % p)
        # each (entry, level, a, b) occurs once, so the CSR conversion only reorders: entry k of the map's
        # data comes from pair order[k], which :meth:`with_values` uses to refill the values
        linear_map = sp.csr_matrix(
            (np.arange(1, len(left) + 1, dtype=float), (number[target], middle_index)),
            shape=(len(positions), nlevels * p * p),
        )
        order = linear_map.data.astype(np.int64) - 1
        left, right = left[order], right[order]
        linear_map.data = a.data[left] * b.data[right]
        sources = None if a_origin is None or b_origin is None else (a_origin[left], b_origin[right])
        return cls(linear_map, positions, (a.shape[0], b.shape[0]), sources)

    def subtract_from(self, dense: np.ndarray, middle: np.ndarray) -> None:
        """``dense -= A M B'`` in place, for the blocks ``middle`` (nlevels, p, p)."""
        dense.ravel()[self.positions] -= self.linear_map @ middle.reshape(-1)

    def apply(self, middle: np.ndarray) -> np.ndarray:
        """``A M B'`` as a dense array for the blocks ``middle`` (nlevels, p, p)."""
        dense = np.zeros(self.shape)
        self.subtract_from(dense, -middle)
        return dense


class BlockedCholesky:
    """The factor ``L`` for one set of cross-products, updated in place for each new Lambda."""

    def __init__(self, cross: CrossProducts, nfixed: int, like: BlockedCholesky | None = None):
        """``like``: a factor of cross-products with the same sparsity (the same rows under other
        weights), whose product plans are reused with the new values."""
        self.cross = cross
        self.nterms = len(cross.diag)
        self.nlevels = [d.shape[0] for d in cross.diag]
        self.ncols = [d.shape[1] for d in cross.diag]
        self.nfixed = nfixed
        self.lambdas: list[np.ndarray] = []  # the terms' T_k it was last updated with
        self._crossprod0 = cross.diag[0].reshape(self.nlevels[0], -1)  # A_k flattened, a view
        self._block0: np.ndarray | None = None  # the first term's diagonal blocks, (nlevels, p, p)
        self._logdet0 = 0.0
        self._diag0: tuple[np.ndarray, np.ndarray] | None = None  # their factors and inverses, on demand
        self.blocks: dict[tuple[int, int], Block] = {}
        self._middle: np.ndarray | None = None
        self._xyz0_m: np.ndarray | None = None  # A_K0 M, made when a block needs it
        self._plans = {}
        self._first_columns: dict[int, Block] = {}
        # scalar terms crossed with a scalar first term through a dense off-diagonal block (VerbAgg's
        # items and subjects): A_i0 as an array, whose products BLAS makes faster than any plan
        self._dense_first: dict[int, np.ndarray] = {}
        if self.ncols[0] == 1:
            for i in range(1, self.nterms):
                off = cross.off[i, 0]
                size = off.shape[0] * off.shape[1]
                if self.ncols[i] == 1 and size <= DENSE_PRODUCT_ENTRIES and off.nnz >= DENSE_FILL * size:
                    self._dense_first[i] = off.toarray()
        if like is not None:
            plans = {
                (i, j): plan.with_values(cross.off[i, 0], cross.off[j, 0])
                for (i, j), plan in like._plans.items()
            }
            if all(plan is not None for plan in plans.values()):
                self._plans = plans
                return
        for i in range(1, self.nterms):
            for j in range(1, i + 1):
                if i in self._dense_first and j in self._dense_first:
                    continue
                # only the lower triangle is needed on the diagonal, unless block scaling mixes the two
                lower = i == j and self.ncols[i] == 1
                plan = ProductPlan.build(cross.off[i, 0], cross.off[j, 0], self.ncols[0], lower)
                if plan is not None:
                    self._plans[i, j] = plan

    @property
    def diag0(self) -> np.ndarray:
        """Lower Cholesky factors of the first term's diagonal blocks, (nlevels, p, p)."""
        return self._factored_block0()[0]

    @property
    def diag0_inv(self) -> np.ndarray:
        """Their inverses."""
        return self._factored_block0()[1]

    def _factored_block0(self) -> tuple[np.ndarray, np.ndarray]:
        if self._diag0 is None:
            self._diag0 = batched_cholesky(self._block0)
        return self._diag0

    def copy(self) -> BlockedCholesky:
        """An independent factor of the same cross-products that shares the precomputed product plans.

        For work at other parameter values (numerical derivatives) without disturbing the fitted
        model's factor or paying for the plans again.  ``update`` replaces the factor's arrays rather
        than writing into them, so a shallow copy is enough.
        """
        twin = copy.copy(self)
        twin._first_columns = {}
        return twin

    @property
    def largest_dense_block(self) -> int:
        """Order of the largest dense diagonal block of L (terms after the first, and [X y])."""
        return max([self.nlevels[k] * self.ncols[k] for k in range(1, self.nterms)] + [self.nfixed + 1])

    # -- scaling by Lambda ------------------------------------------------------------------------
    def _scale_left(self, k: int, block: Block) -> Block:
        """``Lambda_k' @ block`` (block has q_k rows)."""
        t = self.lambdas[k]
        if t.shape[0] == 1:
            return block * t[0, 0]
        if sp.issparse(block):
            return block_diagonal(np.broadcast_to(t.T, (self.nlevels[k],) + t.shape)) @ block
        p = t.shape[0]
        shaped = block.reshape(self.nlevels[k], p, -1)
        return np.einsum("ab,kac->kbc", t, shaped).reshape(block.shape)

    def _scale_right(self, k: int, block: Block) -> Block:
        """``block @ Lambda_k`` (block has q_k columns)."""
        t = self.lambdas[k]
        if t.shape[0] == 1:
            return block * t[0, 0]
        if sp.issparse(block):
            return block @ block_diagonal(np.broadcast_to(t, (self.nlevels[k],) + t.shape))
        p = t.shape[0]
        rows = block.shape[0]
        return (block.reshape(rows, self.nlevels[k], p) @ t).reshape(block.shape)

    def _divide_by_diag0(self, block: Block) -> Block:
        """``block @ L_00^{-T}`` with L_00 the first term's block-diagonal factor."""
        if self.ncols[0] == 1:
            inverse = self.diag0_inv[:, 0, 0]
            if sp.issparse(block):
                return block @ sp.diags(inverse)
            return block * inverse
        inverse_t = self.diag0_inv.transpose(0, 2, 1)
        if sp.issparse(block):
            return (block @ block_diagonal(inverse_t)).tocsr()
        rows, p = block.shape[0], self.ncols[0]
        shaped = block.reshape(rows, self.nlevels[0], p)
        return np.einsum("rkp,kpq->rkq", shaped, inverse_t).reshape(block.shape)

    def _dense_diag(self, k: int) -> np.ndarray:
        """Lambda_k' Z_k'WZ_k Lambda_k + I as a dense matrix."""
        nlevels, p = self.nlevels[k], self.ncols[k]
        blocks = self.cross.diag[k].reshape(nlevels, p * p)
        scaled = penalized_blocks(blocks, kron_square(self.lambdas[k])).reshape(nlevels, p, p)
        dense = np.zeros((nlevels * p, nlevels * p))
        for a in range(p):
            for b in range(p):
                dense[a::p, b::p][np.diag_indices(nlevels)] = scaled[:, a, b]
        return dense

    # -- the factorization --------------------------------------------------------------------------
    def _subtract_first_term_product(self, dense: np.ndarray, i: int, j: int) -> None:
        """``dense -= L_i0 L_j0'``, the first term's contribution to block (i, j), i >= j >= 1.

        With L_i0 = Lambda_i' A_i0 Lambda_0 L_00^{-T} this is Lambda_i' A_i0 M A_j0' Lambda_j, where
        M = Lambda_0 (L_00 L_00')^{-1} Lambda_0' is block-diagonal; the [X y] block is not scaled.
        """
        last = self.nterms
        if i == last:
            weighted = self._weighted_xyz0()
            if j == last:
                dense -= weighted @ self.cross.xyz[0].T
            else:
                dense -= self._scale_right(j, np.asarray(self.cross.off[j, 0] @ weighted.T).T)
            return
        if i in self._dense_first and j in self._dense_first:
            scale = self._middle[:, 0, 0] * (self.lambdas[i][0, 0] * self.lambdas[j][0, 0])
            dense -= (self._dense_first[i] * scale) @ self._dense_first[j].T
            return
        plan = self._plans.get((i, j))
        scalar = self.ncols[i] == 1 and self.ncols[j] == 1
        if plan is not None and scalar:
            plan.subtract_from(dense, self._middle * (self.lambdas[i][0, 0] * self.lambdas[j][0, 0]))
            return
        if plan is not None:
            product = plan.apply(self._middle)
        elif self.ncols[0] == 1 and sp.isspmatrix_csr(left := self.cross.off[i, 0]):
            # A_i0 M A_j0' with M diagonal: M scales A_i0's stored values by their columns
            scaled = sp.csr_matrix(
                (left.data * self._middle[left.indices, 0, 0], left.indices, left.indptr), left.shape
            )
            product = (scaled @ self.cross.off[j, 0].T).toarray()
        else:
            middle = block_diagonal(self._middle)
            product = (self.cross.off[i, 0] @ middle @ self.cross.off[j, 0].T).toarray()
        dense -= self._scale_right(j, self._scale_left(i, product))

    def update(self, lambdas: Sequence[np.ndarray]) -> bool:
        """Refactor for the terms' relative covariance factors ``T_k``; False when a block is not positive
        definite."""
        self.lambdas = list(lambdas)
        self._first_columns = {}
        cross, nterms, p0 = self.cross, self.nterms, self.ncols[0]
        blocks: dict[tuple[int, int], Block] = {}

        weighted = weighted_inverse(self._crossprod0, self.lambdas[0])
        if weighted is None:
            return False
        scaled0, self._logdet0, middle = weighted
        shape = (self.nlevels[0], p0, p0)
        self._block0, self._middle = scaled0.reshape(shape), middle.reshape(shape)
        self._diag0 = self._xyz0_m = None

        for j in range(1, nterms + 1):
            diag = self._dense_diag(j) if j < nterms else cross.xy.copy()
            self._subtract_first_term_product(diag, j, j)
            for jj in range(1, j):
                diag -= blocks[j, jj] @ blocks[j, jj].T
            # the transposed view is Fortran-ordered, so LAPACK works in place: U = L' there is L here
            upper, info = _potrf(diag.T, lower=0, clean=1, overwrite_a=1)
            if info != 0:
                return False
            blocks[j, j] = diag = upper.T
            for i in range(j + 1, nterms + 1):
                if i < nterms and self.ncols[i] == 1 and self.ncols[j] == 1 and sp.issparse(cross.off[i, j]):
                    # scalar terms: scaled as a dense array, the same products without two sparse copies
                    below = cross.off[i, j].toarray()
                    below *= self.lambdas[i][0, 0]
                    below *= self.lambdas[j][0, 0]
                elif i < nterms:
                    below = self._scale_right(j, self._scale_left(i, cross.off[i, j]))
                    below = below.toarray() if sp.issparse(below) else below
                else:
                    below = self._scale_right(j, cross.xyz[j])
                self._subtract_first_term_product(below, i, j)
                for jj in range(1, j):
                    below -= blocks[i, jj] @ blocks[j, jj].T
                blocks[i, j] = _trtrs(upper, below.T, lower=0, trans=1)[0].T  # below L^{-T}
        self.blocks = blocks
        return True

    def _weighted_xyz0(self) -> np.ndarray:
        """A_K0 M: the [X y] rows of Z_0's crossproducts times the first term's middle blocks."""
        if self._xyz0_m is None:
            xyz0, p0 = self.cross.xyz[0], self.ncols[0]
            if p0 == 1:
                self._xyz0_m = xyz0 * self._middle[:, 0, 0]
            else:
                shaped = xyz0.reshape(-1, self.nlevels[0], p0).transpose(1, 0, 2)
                self._xyz0_m = (shaped @ self._middle).transpose(1, 0, 2).reshape(xyz0.shape)
        return self._xyz0_m

    def first_column_block(self, i: int) -> Block:
        """L_i0 = Lambda_i' A_i0 Lambda_0 L_00^{-T} (sparse for random-effects rows, dense for [X y])."""
        if i == self.nterms:
            return self._divide_by_diag0(self._scale_right(0, self.cross.xyz[0]))
        off = self.cross.off[i, 0]
        if self.ncols[0] == 1 and self.ncols[i] == 1 and sp.isspmatrix_csr(off):
            # scalar terms: each stored value scaled by T_i T_0 / L_00[column], without sparse products
            factor = self.lambdas[i][0, 0] * self.lambdas[0][0, 0] * self.diag0_inv[:, 0, 0]
            return sp.csr_matrix((off.data * factor[off.indices], off.indices, off.indptr), shape=off.shape)
        return self._divide_by_diag0(self._scale_right(0, self._scale_left(i, off)))

    # -- quantities for the objective -----------------------------------------------------------------
    def logdet_random(self) -> float:
        """log |Lambda'Z'WZ Lambda + I|."""
        total = self._logdet0
        for j in range(1, self.nterms):
            total += 2.0 * float(np.log(self.blocks[j, j].diagonal()).sum())
        return total

    @property
    def fixed_factor(self) -> np.ndarray:
        """L_XX, the lower Cholesky factor of the fixed-effects part (R_X' in lme4's notation)."""
        return self.blocks[self.nterms, self.nterms][: self.nfixed, : self.nfixed]

    def logdet_fixed(self) -> float:
        """log |R_X|^2."""
        return 2.0 * sum(
            map(math.log, self.blocks[self.nterms, self.nterms].diagonal()[: self.nfixed].tolist())
        )

    def pwrss(self, response_units: bool = True) -> float:
        """Penalized weighted residual sum of squares at the conditional optimum, in the response's
        units (or in those of the cross-products' response column)."""
        root = float(self.blocks[self.nterms, self.nterms][self.nfixed, self.nfixed])
        if response_units:
            root *= self.cross.units.scale
        return root * root

    # -- solutions --------------------------------------------------------------------------------------
    def _solve_diag(self, j: int, rhs: np.ndarray, transpose: bool = False) -> np.ndarray:
        """L_jj^{-1} rhs, or L_jj^{-T} rhs, for a vector or a matrix ``rhs`` with q_j rows."""
        if j == 0:
            if self.ncols[0] == 1:
                scale = self.diag0[:, 0, 0]
                return rhs / (scale if rhs.ndim == 1 else scale[:, None])
            shaped = rhs.reshape(self.nlevels[0], self.ncols[0], -1)
            pattern = "kpq,kpb->kqb" if transpose else "kqp,kpb->kqb"
            return np.einsum(pattern, self.diag0_inv, shaped).reshape(rhs.shape)
        # blocks are C-ordered lower factors: their Fortran-ordered transposes are upper factors
        return _trtrs(self.blocks[j, j].T, rhs, lower=0, trans=int(not transpose))[0]

    def _first_column(self, i: int) -> Block:
        """L_i0, made once per factorization (see :meth:`first_column_block`)."""
        if i not in self._first_columns:
            self._first_columns[i] = self.first_column_block(i)
        return self._first_columns[i]

    def solve_random(self, rhs: np.ndarray) -> np.ndarray:
        """(Lambda'Z'WZ Lambda + I)^{-1} rhs = (L_RE L_RE')^{-1} rhs for a dense ``rhs`` (q x m).

        Two block triangular solves over the terms, so the cost is that of applying L_RE twice; used
        where traces over all random effects are needed (Kenward-Roger), a chunk of columns at a time.
        """
        rhs = np.asarray(rhs, dtype=float)
        edges = np.cumsum([0] + [n * p for n, p in zip(self.nlevels, self.ncols)])
        parts = [rhs[edges[k] : edges[k + 1]] for k in range(self.nterms)]
        below = [
            [self._first_column(i) if j == 0 else self.blocks[i, j] for j in range(i)]
            for i in range(self.nterms)
        ]
        forward: list[np.ndarray] = []
        for i in range(self.nterms):
            right = parts[i].copy()
            for j in range(i):
                right -= below[i][j] @ forward[j]
            forward.append(self._solve_diag(i, right))
        result: list[np.ndarray] = [np.empty(0)] * self.nterms
        for j in reversed(range(self.nterms)):
            right = forward[j].copy()
            for i in range(j + 1, self.nterms):
                right -= below[i][j].T @ result[i]
            result[j] = self._solve_diag(j, right, transpose=True)
        return np.concatenate(result, axis=0)

    def solve(self) -> tuple[np.ndarray, list[np.ndarray]]:
        """Fixed effects beta and spherical random effects u (one vector per term) at the optimum, in
        the response's units."""
        units = self.cross.units
        beta, modes = self.back_substitute()
        return units.beta(beta), [u * units.scale for u in modes]

    def back_substitute(
        self, shift_fixed: np.ndarray | None = None, shift_random: Sequence[np.ndarray] | None = None
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """The back substitution L' [u; beta] = l + shift, with l the response's row of L (in the
        blocks' units).  Without a shift this is the conditional mode; with ``shift = s z``, z standard
        normal, it is an exact draw from the conditional distribution N(mode, s^2 (L L')^{-1}) of the
        random and fixed effects at residual SD ``s`` (a Gibbs sampler's joint location draw)."""
        p, last = self.nfixed, self.nterms
        lxx = self.blocks[last, last]
        top = lxx[p, :p] if shift_fixed is None else lxx[p, :p] + shift_fixed
        # L_XX' beta = l_Xy, through the Fortran-ordered transpose (upper) as elsewhere
        beta = _trtrs(lxx[:p, :p].T, top, lower=0)[0] if p else np.zeros(0)
        modes: list[np.ndarray] = [np.empty(0)] * self.nterms
        for j in reversed(range(self.nterms)):
            lkj = self.blocks[last, j] if j > 0 else self._first_column(last)
            rhs = np.asarray(lkj[p, :]).ravel() - np.asarray(lkj[:p, :]).T @ beta
            if shift_random is not None:
                rhs = rhs + shift_random[j]
            for i in range(j + 1, self.nterms):
                below = self.blocks[i, j] if j > 0 else self._first_column(i)
                rhs = rhs - np.asarray(below.T @ modes[i]).ravel()
            modes[j] = self._solve_diag(j, rhs, transpose=True)
        return beta, modes

    def inverse_fixed_crossprod(self) -> np.ndarray:
        """(L_XX L_XX')^{-1}: the fixed effects' covariance over sigma^2."""
        if self.nfixed == 0:  # a model without fixed effects; scipy < 1.14 rejects a 0 x 0 triangular solve
            return np.zeros((0, 0))
        inv = la.solve_triangular(self.fixed_factor, np.eye(self.nfixed), lower=True, check_finite=False)
        return inv.T @ inv

    def _forward_columns(self, j: int) -> dict[int, np.ndarray]:
        """Blocks of L_RE^{-1} E_j, with E_j the columns of term j (block rows j ... K-1)."""
        if j == 0:
            if self.ncols[0] == 1:
                first = sp.diags(1.0 / self.diag0[:, 0, 0]).tocsr()
            else:
                first = block_diagonal(self.diag0_inv).tocsr()
        else:
            first = la.solve_triangular(self.blocks[j, j], np.eye(self.blocks[j, j].shape[0]), lower=True)
        columns: dict[int, Block] = {j: first}
        for i in range(j + 1, self.nterms):
            rhs = np.zeros((self.blocks[i, i].shape[0], first.shape[1]))
            for m in range(j, i):
                block = self.blocks[i, m] if m > 0 else self._first_column(i)
                product = block @ columns[m]
                rhs -= product.toarray() if sp.issparse(product) else np.asarray(product)
            columns[i] = la.solve_triangular(self.blocks[i, i], rhs, lower=True, check_finite=False)
        return columns

    def conditional_covariance_blocks(self, j1: int, j2: int) -> np.ndarray:
        """Per-level blocks of (L_RE L_RE')^{-1} between terms j1 and j2 on the same grouping factor.

        Returns an array (nlevels, p_j1, p_j2) of the spherical random effects' conditional covariance
        over sigma^2 (conditional on the fixed effects, as lme4's ``condVar``).
        """
        left = self._forward_columns(j1)
        right = left if j2 == j1 else self._forward_columns(j2)
        nlevels, p1, p2 = self.nlevels[j1], self.ncols[j1], self.ncols[j2]
        result = np.zeros((nlevels, p1, p2))
        for i in set(left) & set(right):
            a, b = left[i], right[i]
            for r in range(p1):
                for c in range(p2):
                    ca, cb = a[:, r::p1], b[:, c::p2]
                    if sp.issparse(ca) or sp.issparse(cb):
                        prod = (sp.csr_matrix(ca).multiply(sp.csr_matrix(cb))).sum(axis=0)
                    else:
                        prod = np.einsum("ij,ij->j", ca, cb)
                    result[:, r, c] += np.asarray(prod).ravel()
        return result
