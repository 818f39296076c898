"""The marginal covariance of a gls or lme fit, group by group, with its derivatives (for Kenward-Roger).

Var(y) is block diagonal over the groups of rows that share no random effect and no residual
correlation (gls: the correlation structure's groups, or single rows; lme: the groups of the outermost
grouping factor when the factors are nested).  In group g, with nlme's residual covariance
sigma^2 Rt_g (Rt_g = V_g^1/2 C_g V_g^1/2: variance-function factors and correlation),

    Sigma_g = sum_k (Z_gk G_k Z_gk' masked to rows in the same level of term k) + sigma^2 Rt_g(psi).

The covariance parameters gamma are, as in SAS PROC MIXED and pbkrtest, the entries of each term's
covariance G_k (lower triangle column by column), sigma^2, then the correlation structure's and the
variance function's parameters psi on nlme's reported scale (``coef(..., unconstrained = FALSE)``).
Sigma is linear in G and sigma^2 (exact derivatives; the only second derivatives are
d^2 Sigma / d sigma^2 d psi = d Rt / d psi and sigma^2 d^2 Rt / d psi^2).

Rt_g comes from the fit's own whitening (:meth:`.likelihood.ResidualModel.whiten`) applied to stacked
identity columns: with K_g = F_g W_g the whitened rows of group g, Rt_g = (K_g'K_g)^-1.  Its
derivatives in nlme's unconstrained parameters u are central differences with Richardson extrapolation
(:func:`mixedmodels.inference.numdiff.derivatives`, error about 1e-9 relative), taken to the reported
scale r = rho(u) by the chain rule, with J = d rho / du differenced the same way:

    dRt/dr = dRt/du J^-1,   d^2 Rt/dr^2 = J^-T [d^2 Rt/du^2 - sum_k (dRt/dr_k) d^2 rho_k/du^2] J^-1.

A variance function of the fitted values is taken at the fit's fitted values, as nlme's own apVar.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ...errors import FitError
from ...inference.kenward_roger import variance_components
from ...inference.numdiff import derivatives
from ...inference.view import MarginalBlocks
from .groups import GroupLayout

if TYPE_CHECKING:
    from .results import NlmeModel

__all__ = ["NlmeMarginalCovariance"]

LARGEST_GROUP = 2000  # rows in one group: the dense n x n blocks of more cost too much
CHUNK_ENTRIES = 4_000_000  # entries of the second derivatives made at once (32 MB)


class NlmeMarginalCovariance:
    """A gls or lme fit's marginal covariance by groups (see the module docstring)."""

    def __init__(self, model: NlmeModel):
        self.model = model
        self.random = model.random_terms()  # [(term data in sorted row order, G_k)]
        self.components = variance_components([term.z.shape[1] for term, _ in self.random])
        self.gamma = [  # entry (a, b) of G_k for each component
            np.sum(c.indicator * self.random[c.term][1]) / c.indicator.sum() for c in self.components
        ]
        residual = model.residual
        self.n_residual = residual.n_params
        self.n_params = len(self.components) + 1 + self.n_residual

    @cached_property
    def _groups(self) -> tuple[np.ndarray, GroupLayout]:
        """The sorted rows in group order, and the groups (contiguous in that order)."""
        nobs = self.model.nobs
        keys = [term.codes for term, _ in self.random]
        corstruct = self.model.residual.corstruct
        if corstruct is not None:
            layout = corstruct.layout
            keys.append(np.repeat(np.arange(len(layout.starts)), layout.lengths))
        if keys:  # rows linked by a shared level of any factor: connected components
            offsets = np.cumsum([0] + [int(k.max()) + 1 for k in keys])
            levels = np.concatenate([nobs + offset + k for offset, k in zip(offsets, keys)])
            rows = np.tile(np.arange(nobs), len(keys))
            size = nobs + int(offsets[-1])
            graph = sp.coo_matrix((np.ones(len(rows)), (rows, levels)), shape=(size, size))
            labels = connected_components(graph, directed=False)[1][:nobs]
        else:
            labels = np.arange(nobs)
        order = np.argsort(labels, kind="stable")
        layout = GroupLayout.from_codes(labels[order])
        if layout.max_size > LARGEST_GROUP:
            raise ValueError(
                f"Kenward-Roger works with the marginal covariance group by group, and {layout.max_size} "
                "rows form one group (a correlation structure without groups, or crossed grouping "
                "factors); give the correlation a grouping factor or use ddf='satterthwaite'"
            )
        return order, layout

    def _residual_blocks(self, u: np.ndarray) -> np.ndarray:
        """Rt_g of every group at the residual parameters u (unconstrained), flattened bucket by bucket;
        NaN where u gives no valid covariance."""
        order, layout = self._groups
        identities = np.zeros((self.model.nobs, layout.max_size))
        identities[order, layout.position] = 1.0
        residual = self.model.residual
        whitened = residual.whiten(u, identities, self.model.likelihood.fitted_covariate)
        total = sum(len(bucket.groups) * bucket.size**2 for bucket in layout.buckets)
        if whitened is None:
            return np.full(total, np.nan)
        rows = whitened[0]
        parts = []
        for bucket in layout.buckets:
            k = rows[order[bucket.rows]][:, :, : bucket.size]
            parts.append(np.linalg.inv(np.swapaxes(k, 1, 2) @ k).ravel())
        return np.concatenate(parts)

    def _reported(self, u: np.ndarray) -> np.ndarray:
        """The residual parameters on nlme's reported scale (fixed ones included)."""
        residual = self.model.residual
        cor, var = residual.split(u)
        parts = [np.zeros(0)]
        if residual.corstruct is not None:
            parts.append(residual.corstruct.coefficients(cor).to_numpy())
        if residual.varfunc is not None:
            parts.append(residual.varfunc.coefficients(var).to_numpy())
        return np.concatenate(parts)

    @cached_property
    def _residual(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rt, dRt/dr and d^2Rt/dr^2 (flattened groups first, then the parameters' axes)."""
        u = self.model._structure_params()
        value, gradient, second = derivatives(self._residual_blocks, u)
        if not np.all(np.isfinite(gradient)) or not np.all(np.isfinite(second)):
            raise FitError("the residual covariance is not valid near the estimates; Kenward-Roger needs it")
        if len(u) == 0:
            return value, gradient, second
        _, jacobian, curvature = derivatives(self._reported, u)
        free = np.any(jacobian != 0, axis=1)  # fixed parameters do not move
        if free.sum() != len(u):
            raise FitError("the residual structure's reported parameters do not match its free ones")
        inverse = np.linalg.inv(jacobian[free])
        by_reported = gradient @ inverse
        corrected = second - np.einsum("lk,kcd->lcd", by_reported, curvature[free])
        return value, by_reported, np.einsum("ca,lcd,db->lab", inverse, corrected, inverse)

    def blocks(self) -> Iterator[MarginalBlocks]:
        order, layout = self._groups
        parts = self._residual
        x = self.model.data.x
        sigma2 = self.model.sigma**2
        nrandom, m = len(self.components), self.n_params
        start = 0
        for bucket in layout.buckets:
            n, ngroups = bucket.size, len(bucket.groups)
            stop = start + ngroups * n * n
            shaped = [part[start:stop].reshape((ngroups, n, n) + part.shape[1:]) for part in parts]
            start = stop
            per_chunk = max(1, CHUNK_ENTRIES // (m * m * n * n))
            for first_group in range(0, ngroups, per_chunk):
                chunk = slice(first_group, min(first_group + per_chunk, ngroups))
                rows = order[bucket.rows[chunk]]
                residual, by_r, by_rr = (part[chunk] for part in shaped)
                yield self._block(x[rows], rows, residual, by_r, by_rr, sigma2, nrandom, m)

    def _block(self, x, rows, residual, by_r, by_rr, sigma2, nrandom, m) -> MarginalBlocks:
        ngroups, n = rows.shape
        first = np.zeros((m, ngroups, n, n))
        second = np.zeros((m, m, ngroups, n, n))
        sigma = sigma2 * residual
        for r, component in enumerate(self.components):
            term = self.random[component.term][0]
            codes, z = term.codes[rows], term.z[rows]
            same = codes[:, :, None] == codes[:, None, :]
            first[r] = np.einsum("gia,ab,gjb->gij", z, component.indicator, z) * same
            sigma += self.gamma[r] * first[r]
        first[nrandom] = residual
        for j in range(self.n_residual):
            first[nrandom + 1 + j] = sigma2 * by_r[..., j]
            second[nrandom, nrandom + 1 + j] = second[nrandom + 1 + j, nrandom] = by_r[..., j]
            for i in range(self.n_residual):
                second[nrandom + 1 + i, nrandom + 1 + j] = sigma2 * by_rr[..., i, j]
        return MarginalBlocks(x, sigma, first, second)
