"""Kernels of the Gibbs sampler, on the same blocked factor as the profiled deviance.

At given covariance matrices the random and fixed effects have the Gaussian conditional distribution
N(mode, s^2 (L L')^{-1}), with L the blocked factor of the penalized cross-products and s the residual SD,
so one back substitution with a shifted right-hand side draws them jointly and exactly
(:func:`location_draw`; Garcia-Cortes & Sorensen 1996 for the idea, Bates et al. 2015 for the factor).
The penalized residual sum of squares at the draw follows without a pass over the rows:
``PWRSS(draw) = PWRSS(mode) + s^2 |z|^2``.  :func:`residual_products` gives Z'e, X'e and e'e of any
location effects from the cross-product blocks alone.  The (inverse-)Wishart draws use Bartlett's
decomposition.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.linalg as la

from .cholesky import BlockedCholesky
from .crossprod import CrossProducts

_trtrs = la.lapack.dtrtrs  # LAPACK directly: scipy.linalg's wrapper costs more than a small solve

__all__ = ["inverse_gamma", "inverse_wishart", "location_draw", "residual_products"]


def location_draw(
    chol: BlockedCholesky, sigma: float, rng: np.random.Generator
) -> tuple[np.ndarray, list[np.ndarray], float]:
    """A joint draw of the fixed effects and spherical random effects (blocks' units) from their
    conditional distribution at residual SD ``sigma`` (blocks' units), and the penalized residual sum
    of squares at the draw."""
    z_fixed = rng.standard_normal(chol.nfixed) * sigma
    z_random = [rng.standard_normal(n * p) * sigma for n, p in zip(chol.nlevels, chol.ncols)]
    beta, modes = chol.back_substitute(z_fixed, z_random)
    root = float(chol.blocks[chol.nterms, chol.nterms][chol.nfixed, chol.nfixed])
    shifted = float(z_fixed @ z_fixed) + sum(float(z @ z) for z in z_random)
    return beta, modes, root * root + shifted


def residual_products(
    cross: CrossProducts, beta: np.ndarray, effects: Sequence[np.ndarray]
) -> tuple[list[np.ndarray], np.ndarray, float]:
    """Z_k'e (one vector per term), X'e and e'e for ``e = y - X beta - sum_k Z_k b_k``, from the blocks.

    ``effects`` are the terms' random effects b_k (not spherical), level-major, in the blocks' units.
    """
    p = len(beta)
    xy = cross.xy
    x_e = xy[:p, p] - xy[:p, :p] @ beta
    y_e = xy[p, p] - xy[p, :p] @ beta
    z_e = []
    for k, (block, b) in enumerate(zip(cross.xyz, effects)):
        x_e -= block[:p] @ b
        y_e -= block[p] @ b
        nlevels, ncols = cross.diag[k].shape[:2]
        own = np.einsum("lab,lb->la", cross.diag[k], b.reshape(nlevels, ncols)).ravel()
        z_e.append(block[p] - block[:p].T @ beta - own)
    for (i, j), off in cross.off.items():
        z_e[i] -= off @ effects[j]
        z_e[j] -= off.T @ effects[i]
    e_e = y_e - beta @ x_e - sum(float(b @ ze) for b, ze in zip(effects, z_e))
    return z_e, x_e, float(e_e)


def inverse_gamma(shape: np.ndarray | float, scale: np.ndarray | float, rng: np.random.Generator):
    """Draws of an inverse-gamma(shape, scale) variable: scale / Gamma(shape, 1)."""
    return np.asarray(scale) / rng.standard_gamma(shape)


def inverse_wishart(scale: np.ndarray, df: float, rng: np.random.Generator) -> np.ndarray:
    """A draw of G ~ inverse-Wishart(df, scale): G^{-1} ~ Wishart(df, scale^{-1}).

    With scale = M M' (Cholesky) and Bartlett's A (lower, A_ii^2 ~ chi^2(df - i), A_ij ~ N(0, 1) below
    the diagonal) the Wishart draw is M^{-T} A A' M^{-1}, so G = (M A^{-T})(M A^{-T})'.
    """
    p = scale.shape[0]
    if p == 1:
        return np.array([[scale[0, 0] / rng.chisquare(df)]])
    bartlett = np.zeros((p, p))
    bartlett[np.diag_indices(p)] = np.sqrt(rng.chisquare(df - np.arange(p)))
    rows, cols = np.tril_indices(p, -1)
    bartlett[rows, cols] = rng.standard_normal(len(rows))
    root = np.linalg.cholesky(scale)
    half = _trtrs(bartlett, root.T, lower=1)[0].T  # M A^{-T}
    return half @ half.T
