"""SAS PROC MIXED's containment denominator degrees of freedom (DDFM=CONTAIN, its default).

SAS documents the rule (SAS/STAT User's Guide, PROC MIXED MODEL statement DDFM=CONTAIN; PROC GLIMMIX
"Containment Degrees of Freedom Approximation"): for a fixed effect A, search the random effects for
those that syntactically contain A (whose variables include all of A's); compute their rank
contributions to ``[X Z]``, in the order the random effects are listed; A's denominator df is the
smallest of them.  If no random effect contains A, it gets the residual df ``n - rank([X Z])``.  The
intercept has no variables, so every random effect contains it.  One choice of ours: a random effect
that adds nothing to the rank (e.g. ``dept`` listed after ``d`` when instructors ``d`` are nested in
departments) is passed over, where the literal rule would give 0 df.

A random effect here is what SAS's RANDOM statement would list: per lme4 term ``(lhs | g)``, the
intercept column (effect ``g``) and each term of ``lhs`` (effect ``x*g``), in the order of the formula
(lme4 reorders terms; SAS's rule uses the order as written).  The rank contribution of effect ``i`` is
``rank([X Z_1 .. Z_i]) - rank([X Z_1 .. Z_{i-1}])``.

Ranks come from the cross-product blocks of the fit, never from the rows: the largest grouping factor,
whose block of Z'Z is block-diagonal, is eliminated level by level (a Schur complement with per-level
pseudo-inverses), so no dense matrix over its random effects is formed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

if TYPE_CHECKING:
    from ..models.lmm import LinearMixedModel

__all__ = ["RandomEffect", "ContainmentDF", "containment_df"]

#: Eigenvalues of the column-normalized cross-product matrix below this count as zero.
RANK_TOLERANCE = 1e-9

INTERCEPT = "(Intercept)"


@dataclass(frozen=True)
class RandomEffect:
    """One random effect in SAS's sense: some columns of one lme4 term, and the variables it involves."""

    label: str
    term: int  # index into model.frame.terms
    columns: tuple[int, ...]  # columns of that term's model matrix
    variables: frozenset[str]


@dataclass(frozen=True)
class ContainmentDF:
    """Containment df of each fixed-effect term (``"(Intercept)"`` included) and the residual df."""

    by_term: dict[str, float]
    residual: float
    contributions: dict[str, int]  # rank contribution of each random effect, in SAS order


def random_effects(model: LinearMixedModel) -> list[RandomEffect]:
    """The random effects in the order of the formula (as a RANDOM statement would list them).

    Nested factors are listed outer first, as a RANDOM statement names them (``Block Block*Variety``
    for ``(1 | Block/Variety)``), whatever order lme4's expansion of ``a/b`` gives the terms.
    """
    frame = model.frame
    effects = []
    written_terms = sorted(frame.formula.random, key=lambda term: len(term.factors))
    for written in written_terms:
        k = next(i for i, term in enumerate(frame.terms) if term.term is written)
        term = frame.terms[k]
        grouping = frozenset(term.group.variables)
        design = term.design
        if design.has_intercept:
            column = design.column_names.index(INTERCEPT)
            effects.append(RandomEffect(term.group.name, k, (column,), grouping))
        for lhs in design.terms:
            effects.append(
                RandomEffect(f"{lhs.label}:{term.group.name}", k, lhs.columns, grouping | set(lhs.variables))
            )
    return effects


def _psd_rank(gram: np.ndarray) -> int:
    if gram.size == 0:
        return 0
    return int(np.sum(np.linalg.eigvalsh(gram) > RANK_TOLERANCE))


class _ScaledGram:
    """Blocks of [X Z]'W[X Z] with every column scaled to unit length (zero columns stay zero)."""

    def __init__(self, model: LinearMixedModel):
        cross, p = model.cross, model.n_fixed
        self.p = p
        self.ncols = [d.shape[1] for d in cross.diag]
        self.nlevels = [d.shape[0] for d in cross.diag]

        def inverse_norms(squares: np.ndarray) -> np.ndarray:
            return np.where(squares > 0, 1.0 / np.sqrt(np.where(squares > 0, squares, 1.0)), 0.0)

        x_scale = inverse_norms(np.diag(cross.xy)[:p])
        z_scale = [inverse_norms(np.diagonal(d, axis1=1, axis2=2).reshape(-1)) for d in cross.diag]
        self.xx = cross.xy[:p, :p] * np.outer(x_scale, x_scale)
        self.xz = [x_scale[:, None] * b[:p] * s[None, :] for b, s in zip(cross.xyz, z_scale)]
        self.diag = [
            d * s.reshape(d.shape[:2])[:, :, None] * s.reshape(d.shape[:2])[:, None, :]
            for d, s in zip(cross.diag, z_scale)
        ]
        self.off = {
            (i, j): sp.csr_matrix(sp.diags(z_scale[i]) @ block @ sp.diags(z_scale[j]))
            for (i, j), block in cross.off.items()
        }

    def _indices(self, term: int, columns: list[int]) -> np.ndarray:
        """Positions of ``columns`` of ``term`` among its random effects (level-major)."""
        levels = np.arange(self.nlevels[term])[:, None] * self.ncols[term]
        return (levels + np.asarray(columns)[None, :]).reshape(-1)

    def _zz(self, i: int, ci: list[int], j: int, cj: list[int]):
        """Z_i[:, ci]' Z_j[:, cj] (dense for i == j, sparse otherwise)."""
        if i == j:
            block = self.diag[i][:, ci][:, :, ci]
            n, m = block.shape[0], len(ci)
            dense = np.zeros((n * m, n * m))
            for a in range(m):
                for b in range(m):
                    dense[a::m, b::m][np.diag_indices(n)] = block[:, a, b]
            return dense
        if i > j:
            return self.off[i, j][self._indices(i, ci)][:, self._indices(j, cj)]
        return self.off[j, i][self._indices(j, cj)][:, self._indices(i, ci)].T

    def rank(self, selected: dict[int, list[int]]) -> int:
        """rank([X Z_selected]) for term -> columns ``selected``."""
        others = sorted(k for k in selected if k != 0)
        blocks = [[self.xx] + [self.xz[k][:, self._indices(k, selected[k])] for k in others]]
        for a, i in enumerate(others):
            row = [blocks[0][a + 1].T]
            for j in others:
                block = self._zz(i, selected[i], j, selected[j])
                row.append(block.toarray() if sp.issparse(block) else block)
            blocks.append(row)
        gram = np.block(blocks)
        if 0 not in selected:
            return _psd_rank(gram)
        # eliminate the first (largest) term level by level: rank(G) = rank(D) + rank(G_bb - G_b0 D^+ G_0b)
        c0 = selected[0]
        per_level = self.diag[0][:, c0][:, :, c0]
        values, vectors = np.linalg.eigh(per_level)
        positive = values > RANK_TOLERANCE
        inverse_values = np.where(positive, 1.0 / np.where(positive, values, 1.0), 0.0)
        pseudo_inverse = np.einsum("kab,kb,kcb->kac", vectors, inverse_values, vectors)
        n0, m0 = per_level.shape[0], len(c0)
        pinv = sp.bsr_matrix((pseudo_inverse, np.arange(n0), np.arange(n0 + 1)), shape=(n0 * m0, n0 * m0))
        cross_rows = [sp.csr_matrix(self.xz[0][:, self._indices(0, c0)])]
        cross_rows += [sp.csr_matrix(self._zz(k, selected[k], 0, c0)) for k in others]
        g_b0 = sp.vstack(cross_rows).tocsr()
        schur = gram - (g_b0 @ pinv @ g_b0.T).toarray()
        return int(positive.sum()) + _psd_rank(schur)


def containment_df(model: LinearMixedModel) -> ContainmentDF:
    """SAS's containment df for the intercept and every fixed-effect term of the model."""
    effects = random_effects(model)
    gram = _ScaledGram(model)
    selected: dict[int, list[int]] = {}
    previous = gram.rank(selected)
    contributions = []
    for effect in effects:
        selected.setdefault(effect.term, [])
        selected[effect.term] = sorted(set(selected[effect.term]) | set(effect.columns))
        current = gram.rank(selected)
        contributions.append(current - previous)
        previous = current
    residual = float(model.nobs - previous)
    fixed_terms = [(INTERCEPT, frozenset())] + [
        (t.label, frozenset(t.variables)) for t in model.frame.fixed_design.terms
    ]
    by_term = {}
    for label, variables in fixed_terms:
        containing = [c for e, c in zip(effects, contributions) if c > 0 and variables <= e.variables]
        by_term[label] = float(min(containing)) if containing else residual
    return ContainmentDF(by_term, residual, {e.label: c for e, c in zip(effects, contributions)})
