"""Residual and influence diagnostics of a fitted linear mixed model, as numbers.

With prior weights ``W``, the fit's relative covariance factor ``Lambda`` and ``L`` the blocked Cholesky
factor of ``[Lambda'Z'WZ Lambda + I, Lambda'Z'WX; X'WZ Lambda, X'WX]``, the fitted values are
``H y`` with the hat matrix (Bates et al. 2015, section 5.1; lme4's ``hatvalues.merMod``)

    H = W^{1/2} [Z Lambda, X] (L L')^{-1} [Z Lambda, X]' W^{1/2},

at the estimated theta.  Its diagonal, the leverage, is ``h_i = ||L^{-1} v_i||^2`` with
``v_i = w_i^{1/2} [Lambda'z_i; x_i]`` (see :func:`leverage` for how it is computed from the blocks of
``L`` in time linear in the number of rows, with no ``N x N`` matrix).  From it, as lme4 defines them
for a linear mixed model,

* Pearson residuals ``r_i = w_i^{1/2} (y_i - fitted_i)``;
* standardized residuals ``r_i / (sigma sqrt(1 - h_i))`` (lme4's ``rstudent``, which for an LMM is the
  internally studentized residual);
* Cook's distance of a row ``(r_i / (1 - h_i))^2 h_i / (sigma^2 p)``, ``p = rank(X)`` (lme4's
  ``cooks.distance.merMod``).

Influence of whole groups (:func:`group_influence`) refits the model without each level of a grouping
factor, as lme4's ``influence(m, groups = g)`` does; the rows of a level are dropped by subtracting their
cross-products from the fit's, so no model frame is rebuilt.

The numbers behind the plots live here too: normal scores and R's ``qqline``, R's ``lowess`` smoother,
and the per-group "no pooling" fits of the shrinkage plot.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.linalg as la
import scipy.sparse as sp
from scipy import stats

from ..data.terms import grouping_factor
from ..engine.cholesky import BlockedCholesky
from ..errors import ConvergenceWarning, FitError, check_instance

if TYPE_CHECKING:
    from ..models.lmm import LinearMixedModel

__all__ = [
    "GroupInfluence",
    "coefficient_shift",
    "group_codes",
    "group_influence",
    "leverage",
    "lowess",
    "normal_scores",
    "qq_line",
    "random_effects_covariance",
    "residual_diagnostics",
    "scale_location",
    "separate_fits",
]

# work arrays are kept below about this many numbers
_BLOCK_ENTRIES = 1 << 22


# -- leverage and residuals ---------------------------------------------------------------------------
def leverage(model: LinearMixedModel) -> np.ndarray:
    """Diagonal of the hat matrix (lme4's ``hatvalues``), in the order of the rows used.

    Split ``L`` into the first term's block-diagonal ``L_00``, the rest ``L_D`` (the later terms and
    X, dense) and the block ``G = L_D0`` between them.  Then ``L^{-1} v_i`` has the parts
    ``u_i = L_00^{-1} v_i0`` (one small solve with the row's own level ``l``) and
    ``L_D^{-1} (v_iD - G_l u_i)``, with ``G_l`` the columns of ``G`` of level ``l``; with
    ``Z = (L_D L_D')^{-1}``

        h_i = ||u_i||^2 + v_iD' Z v_iD - 2 v_iD' (Z G_l) u_i + u_i' (G_l' Z G_l) u_i.

    ``v_iD`` has a few nonzeros (the row's levels of the later terms and its x), so after forming
    ``Z`` (the cost of one factorization of ``L_D``) and ``Z G`` (sparse ``G``), each row costs a few
    gathers: the total is linear in the number of rows, and no ``N x N`` matrix is formed.
    """
    chol = model.chol
    frame = model.frame
    n, p = model.nobs, model.n_fixed
    sqrt_w = np.ones(n) if frame.weights is None else np.sqrt(frame.weights)
    scaled = [(block.z @ lam) * sqrt_w[:, None] for block, lam in zip(frame.blocks, chol.lambdas)]

    first = frame.blocks[0]
    p0, nlevels0 = first.ncols, first.nlevels
    codes0 = first.codes
    u = np.einsum("nab,nb->na", chol.diag0_inv[codes0], scaled[0])
    hat = np.einsum("na,na->n", u, u)

    nterms = chol.nterms
    sizes = [chol.blocks[i, i].shape[0] for i in range(1, nterms)] + [p]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    if offsets[-1] == 0:
        return hat
    inverse = _trailing_inverse(chol, offsets)
    coupling_t = sp.vstack(  # G' (q0 x D)
        [sp.csr_matrix(chol.first_column_block(i)) for i in range(1, nterms)]
        + [sp.csr_matrix(chol.first_column_block(nterms)[:p])]
    ).T.tocsr()

    # the nonzeros of v_iD: positions (n, k) and values (n, k)
    positions = [
        offset + block.codes[:, None] * block.ncols + np.arange(block.ncols)
        for offset, block in zip(offsets, frame.blocks[1:])
    ]
    positions = np.column_stack(positions + [np.broadcast_to(offsets[-2] + np.arange(p), (n, p))])
    values = np.column_stack(scaled[1:] + [frame.x * sqrt_w[:, None]])
    k = positions.shape[1]

    step = max(1, _BLOCK_ENTRIES // (k * k))
    for start in range(0, n, step):
        rows = slice(start, start + step)
        own = inverse[positions[rows, :, None], positions[rows, None, :]]
        hat[rows] += np.einsum("na,nab,nb->n", values[rows], own, values[rows])

    order = np.argsort(codes0, kind="stable")
    bounds = np.searchsorted(codes0[order], np.arange(nlevels0 + 1))
    step = max(1, _BLOCK_ENTRIES // (p0 * offsets[-1]))
    for low in range(0, nlevels0, step):
        high = min(nlevels0, low + step)
        block_t = coupling_t[low * p0 : high * p0]  # G_l' for these levels, (levels p0) x D
        product = np.asarray(block_t @ inverse)  # (Z G_l)' for these levels
        gram = np.empty((high - low, p0, p0))  # G_l' Z G_l
        for a in range(p0):
            for b in range(p0):
                gram[:, a, b] = np.asarray(block_t[a::p0].multiply(product[b::p0]).sum(axis=1)).ravel()
        block_rows = order[bounds[low] : bounds[high]]
        row_step = max(1, _BLOCK_ENTRIES // (p0 * k))
        for begin in range(0, len(block_rows), row_step):
            rows = block_rows[begin : begin + row_step]
            level = codes0[rows] - low
            columns = level[:, None] * p0 + np.arange(p0)
            cross = product[columns[:, :, None], positions[rows, None, :]]  # (rows, p0, k) of (Z G_l)'
            hat[rows] -= 2.0 * np.einsum("na,nak,nk->n", u[rows], cross, values[rows])
            hat[rows] += np.einsum("na,nab,nb->n", u[rows], gram[level], u[rows])
    return hat


def _trailing_inverse(chol: BlockedCholesky, offsets: np.ndarray) -> np.ndarray:
    """(L_D L_D')^{-1} for the dense trailing part L_D of chol (later terms and the X rows)."""
    nterms = chol.nterms
    size = offsets[-1]
    lower = np.zeros((size, size))
    for i in range(1, nterms + 1):
        for j in range(1, i + 1):
            block = chol.blocks[i, j][: offsets[i] - offsets[i - 1], : offsets[j] - offsets[j - 1]]
            lower[offsets[i - 1] : offsets[i], offsets[j - 1] : offsets[j]] = block
    inverse, info = la.lapack.dpotri(lower, lower=1)
    if info != 0:
        raise FitError("the factor's fixed-effects and later random-effects block is singular")
    return np.tril(inverse) + np.tril(inverse, -1).T


def residual_diagnostics(model: LinearMixedModel) -> pd.DataFrame:
    """Per row used: fitted, residual, pearson, standardized, leverage and cooks_distance.

    Pearson residuals are ``sqrt(w) (y - fitted)``; standardized residuals divide them by
    ``sigma sqrt(1 - leverage)`` (lme4's ``rstudent``); ``cooks_distance`` is lme4's
    ``cooks.distance(m)``, ``(r / (1 - h))^2 h / (sigma^2 p)`` (a one-step approximation at fixed theta;
    :func:`group_influence` refits without whole groups instead).
    """
    frame = model.frame
    residual = model.residuals.to_numpy()
    pearson = residual if frame.weights is None else residual * np.sqrt(frame.weights)
    hat = leverage(model)
    sigma = model.sigma
    with np.errstate(divide="ignore", invalid="ignore"):
        standardized = pearson / (sigma * np.sqrt(1.0 - hat))
        cooks = (pearson / (1.0 - hat)) ** 2 * hat / (sigma**2 * model.n_fixed) if model.n_fixed else np.nan
    return pd.DataFrame(
        {
            "fitted": model.fitted.to_numpy(),
            "residual": residual,
            "pearson": pearson,
            "standardized": standardized,
            "leverage": hat,
            "cooks_distance": cooks,
        },
        index=frame.data.index,
    )


# -- groups -------------------------------------------------------------------------------------------
def group_codes(model: LinearMixedModel, group: str) -> tuple[np.ndarray, pd.Index]:
    """Per-row codes and level labels of a grouping factor of the model or of a column of its data."""
    check_instance("group", group, str, "the name of a grouping factor or of a column")
    for k, term in enumerate(model.frame.terms):
        if term.group.name == group:
            return model.frame.blocks[k].codes, term.group.levels
    if group in model.frame.data.columns:
        factor = grouping_factor(model.frame.data, (group,), group)
        return factor.codes, factor.levels
    choices = sorted({t.group.name for t in model.frame.terms} | set(model.frame.data.columns))
    raise ValueError(f"unknown group {group!r}: use a grouping factor or a column of the model ({choices})")


@dataclass
class GroupInfluence:
    """The model refitted without each level of ``group`` (lme4's ``influence(m, groups = group)``).

    ``fixef``, ``sigma`` and ``theta`` are the estimates without the level, ``dfbeta`` is ``fixef`` minus
    the full fit's (lme4's ``dfbeta``), and Cook's distance is lme4's (1.1-29 and later)

        D_j = (G - p) / (G p) dfbeta_j' V^{-1} dfbeta_j,

    with ``V`` the full fit's ``vcov``, ``G`` the number of levels and ``p`` of fixed effects.
    influence.ME (Nieuwenhuis et al. 2012, R Journal 4(2)) divides the same quadratic form by ``p``
    only: its value is ``D_j G / (G - p)``.  ``converged`` is False where the refit warned; levels
    whose removal leaves the fixed effects unidentifiable get NaN.
    """

    group: str
    fixef: pd.DataFrame
    dfbeta: pd.DataFrame
    cooks_distance: pd.Series
    sigma: pd.Series
    theta: pd.DataFrame
    converged: pd.Series


def group_influence(model: LinearMixedModel, group: str) -> GroupInfluence:
    """Refit ``model`` without each level of ``group`` in turn (see :class:`GroupInfluence`)."""

    if model.n_fixed == 0:
        raise ValueError("influence measures changes in the fixed effects, and the model has none")
    codes, levels = group_codes(model, group)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(levels) + 1))
    p = model.n_fixed
    full_xx = model.cross.xy[:p, :p]
    scale = 1.0 / np.sqrt(np.diag(full_xx))

    fixef = np.full((len(levels), p), np.nan)
    sigma = np.full(len(levels), np.nan)
    theta = np.full((len(levels), len(model.theta)), np.nan)
    converged = np.zeros(len(levels), dtype=bool)
    for j in range(len(levels)):
        rows = order[bounds[j] : bounds[j + 1]]
        reduced = model.cross - model.frame.cross_products(rows)
        if np.linalg.eigvalsh(scale[:, None] * reduced.xy[:p, :p] * scale).min() < 1e-10:
            continue  # X without these rows is rank deficient
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            refit = model.refit_cross(reduced)
        fixef[j], sigma[j], theta[j] = refit.fixef.to_numpy(), refit.sigma, refit.theta
        converged[j] = not any(issubclass(w.category, ConvergenceWarning) for w in caught)

    names = model.frame.fixed_names
    index = pd.Index(levels, name=group)
    dfbeta = fixef - model.fixef.to_numpy()
    vcov_inverse = np.linalg.inv(model.vcov.to_numpy())
    count = len(levels)
    cooks = (count - p) / (count * p) * np.einsum("ja,ab,jb->j", dfbeta, vcov_inverse, dfbeta)
    theta_names = [f"theta{k + 1}" for k in range(theta.shape[1])]
    return GroupInfluence(
        group=group,
        fixef=pd.DataFrame(fixef, index=index, columns=names),
        dfbeta=pd.DataFrame(dfbeta, index=index, columns=names),
        cooks_distance=pd.Series(cooks, index=index, name="cooks_distance"),
        sigma=pd.Series(sigma, index=index, name="sigma"),
        theta=pd.DataFrame(theta, index=index, columns=theta_names),
        converged=pd.Series(converged, index=index, name="converged"),
    )


def _group_terms(model: LinearMixedModel, group: str) -> list[int]:
    check_instance("group", group, str, "the name of a grouping factor")
    terms = model._terms_by_group()
    if group not in terms:
        raise ValueError(f"{group!r} is not a grouping factor of the model (one of {sorted(terms)})")
    return terms[group]


def coefficient_shift(model: LinearMixedModel, columns) -> np.ndarray:
    """The fixed effect of the same name for each random-effects column (0 if none), as ``coef`` adds."""
    fixef = model.fixef
    return np.array([fixef.get(c, 0.0) for c in columns])


def random_effects_covariance(model: LinearMixedModel, group: str) -> pd.DataFrame:
    """Estimated covariance of one level's random effects of ``group``, columns as in ``ranef``.

    ``sigma^2 T_k T_k'`` per term; terms on the same factor (``(x || g)``) are independent.
    """
    ks = _group_terms(model, group)
    products = (t @ t.T for t in (model.lambdas[k] for k in ks))
    blocks = [model.sigma**2 * 0.5 * (p + p.T) for p in products]  # symmetric to the last bit
    columns = model.ranef[group].columns
    return pd.DataFrame(la.block_diag(*blocks), index=columns, columns=columns)


def separate_fits(model: LinearMixedModel, group: str) -> pd.DataFrame:
    """Per-level least-squares estimates of a grouping factor's coefficients: the "no pooling" fits.

    For each level, the weighted least-squares fit of the partial residual
    ``y - fitted + (the factor's random-effects contribution)`` on the factor's random-effects columns,
    from that level's rows only; i.e. the level's effects with every other part of the model held at
    its estimate.  The conditional modes are these estimates shrunk towards zero (for a single term,
    ``b = (Z_j'WZ_j + sigma^2 Sigma^{-1})^{-1} Z_j'W r_j``).  Returned on the scale of ``coef`` (plus
    the fixed effect of the same name); NaN where a level's rows cannot identify its coefficients.
    """
    ks = _group_terms(model, group)
    frame = model.frame
    blocks = [frame.blocks[k] for k in ks]
    codes = blocks[0].codes
    nlevels = blocks[0].nlevels
    z = np.column_stack([block.z for block in blocks])
    partial = model.residuals.to_numpy().copy()
    for k, block in zip(ks, blocks):
        partial += np.einsum("np,np->n", block.z, model.term_effects[k][codes])
    weights = np.ones(len(partial)) if frame.weights is None else frame.weights
    ncols = z.shape[1]
    normal = np.empty((nlevels, ncols, ncols))
    rhs = np.empty((nlevels, ncols))
    for a in range(ncols):
        rhs[:, a] = np.bincount(codes, weights * z[:, a] * partial, minlength=nlevels)
        for b in range(a + 1):
            normal[:, a, b] = normal[:, b, a] = np.bincount(
                codes, weights * z[:, a] * z[:, b], minlength=nlevels
            )
    estimable = np.linalg.matrix_rank(normal) == ncols
    estimates = np.full((nlevels, ncols), np.nan)
    if estimable.any():
        estimates[estimable] = np.linalg.solve(normal[estimable], rhs[estimable][..., None])[..., 0]
    columns = model.ranef[group].columns
    return pd.DataFrame(
        estimates + coefficient_shift(model, columns), index=model.ranef[group].index, columns=columns
    )


# -- normal quantile plots ----------------------------------------------------------------------------
def normal_scores(n: int) -> np.ndarray:
    """R's ``qnorm(ppoints(n))``: the x positions of a normal QQ plot of ``n`` sorted values."""
    a = 3.0 / 8.0 if n <= 10 else 0.5
    return stats.norm.ppf((np.arange(1, n + 1) - a) / (n + 1 - 2 * a))


def scale_location(residuals: np.ndarray) -> np.ndarray:
    """sqrt(|residuals|), the y of a scale-location plot (R's ``plot.lm`` panel 3)."""
    return np.sqrt(np.abs(np.asarray(residuals, dtype=float)))


def qq_line(values: np.ndarray) -> tuple[float, float]:
    """Intercept and slope of R's ``qqline``: the line through the quartiles (type 7) of ``values``."""
    q1, q3 = np.quantile(np.asarray(values, dtype=float), [0.25, 0.75])
    x1, x3 = stats.norm.ppf([0.25, 0.75])
    slope = (q3 - q1) / (x3 - x1)
    return float(q1 - slope * x1), float(slope)


# -- smoother -----------------------------------------------------------------------------------------
def lowess(
    x: np.ndarray, y: np.ndarray, f: float = 2.0 / 3.0, iterations: int = 3, delta: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Robust locally weighted linear regression (Cleveland 1979), as R's ``lowess``.

    Returns x sorted and the smoothed y there.  Each fit uses the ``f n`` nearest points with tricube
    weights, times bisquare robustness weights from the previous pass's residuals (``iterations``
    passes); points within ``delta`` (default 1% of the range of x) of the last fitted point are
    linearly interpolated instead of fitted.
    """
    order = np.argsort(np.asarray(x, dtype=float), kind="stable")
    x = np.asarray(x, dtype=float)[order]
    y = np.asarray(y, dtype=float)[order]
    n = len(x)
    if n < 2:
        return x, y.copy()
    if delta is None:
        delta = 0.01 * (x[-1] - x[0])
    span = max(2, min(n, int(f * n + 1e-7)))
    robustness = None
    for iteration in range(iterations + 1):
        smooth = _lowess_pass(x, y, span, delta, robustness)
        residuals = np.abs(y - smooth)
        if iteration == iterations:
            break
        middle = n // 2
        ordered = np.partition(residuals, [n - middle - 1, middle])
        cmad = 3.0 * (ordered[middle] + ordered[n - middle - 1]) if n % 2 == 0 else 6.0 * ordered[middle]
        if cmad < 1e-7 * residuals.mean():
            break
        with np.errstate(divide="ignore", invalid="ignore"):  # cmad = 0: every weight is 1
            bisquare = (1.0 - (residuals / cmad) ** 2) ** 2
        robustness = np.where(
            residuals <= 0.001 * cmad, 1.0, np.where(residuals <= 0.999 * cmad, bisquare, 0.0)
        )
    return x, smooth


def _lowess_pass(x, y, span, delta, robustness) -> np.ndarray:
    """One pass of lowess over sorted x: local fits at every point not skipped by ``delta``."""
    n = len(x)
    smooth = np.empty(n)
    left, right = 0, span - 1
    last = -1
    i = 0
    while True:
        while right < n - 1 and x[i] - x[left] > x[right + 1] - x[i]:
            left += 1
            right += 1
        value = _local_fit(x, y, i, left, right, robustness)
        smooth[i] = y[i] if value is None else value
        if last < i - 1:
            alpha = (x[last + 1 : i] - x[last]) / (x[i] - x[last])
            smooth[last + 1 : i] = alpha * smooth[i] + (1.0 - alpha) * smooth[last]
        last = i
        ties = int(np.searchsorted(x, x[last], side="right"))
        smooth[last + 1 : ties] = smooth[last]
        last = ties - 1
        if last >= n - 1:
            return smooth
        beyond = int(np.searchsorted(x, x[last] + delta, side="right"))
        i = max(last + 1, beyond - 1)


def _local_fit(x, y, i, left, right, robustness) -> float | None:
    """Weighted linear fit at x[i] over the window from ``left`` (ties beyond ``right`` included)."""
    center = x[i]
    radius = max(center - x[left], x[right] - center)
    end = min(len(x), int(np.searchsorted(x, center + radius, side="right")) + 1)
    window = x[left:end]
    distance = np.abs(window - center)
    outside = (distance > 0.999 * radius) & (window > center)
    if outside.any():
        end = left + int(np.argmax(outside))
        window, distance = window[: end - left], distance[: end - left]
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.where(
            distance <= 0.999 * radius,
            np.where(distance <= 0.001 * radius, 1.0, (1.0 - (distance / radius) ** 3) ** 3),
            0.0,
        )
    if robustness is not None:
        weights = weights * robustness[left:end]
    total = weights.sum()
    if total <= 0.0:
        return None
    weights = weights / total
    if radius > 0.0:
        mean = np.dot(weights, window)
        spread = np.dot(weights, (window - mean) ** 2)
        if math.sqrt(spread) > 0.001 * (x[-1] - x[0]):
            weights = weights * ((center - mean) / spread * (window - mean) + 1.0)
    return float(np.dot(weights, y[left:end]))
