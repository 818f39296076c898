"""Sums of squares and expected mean squares of every source, from cross-products only.

Each source's sum of squares is a quadratic form y'Qy with Q a projection:

* Type I (sequential, R's ``anova(lm)``):  Q_k = P_k - P_{k-1}, P_k the projection on the columns of the
  first k terms;
* Type III (R's ``car::Anova(type = 3)`` with sum-to-zero contrasts = SAS PROC GLM's Type III when no
  cell is empty):  Q = X G L'(L G L')^{-1} L G X' with G = (X'X)^{-1} and L selecting the term's columns;
* Error:  Q = I - P.

With y = X b + sum_u Z_u u + e (Var(u) = s2_u I, Var(e) = s2 I),
E[y'Qy] = s2 tr(Q) + sum_u s2_u tr(Z_u'QZ_u) + b'X'QXb, so the coefficient of Var(u) in E[MS] is
tr(Z_u'QZ_u) / df (Searle 1971, ch. 11; SAS computes its Type I/III expected mean squares the same way,
and for balanced data this gives Hartley's and Hocking's coefficients).  A fixed term f enters as
``Q(f)`` when tr(F_f'QF_f) > 0 with F_f its cell columns: its parameters then appear in b'X'QXb.

With U = X R^{-1} (R the Cholesky factor of X'X) the traces are squared norms of rows of R^{-T} X'F, so
only the p x p and p x (cells) blocks of :class:`~mixedmodels.models.aov.design.AnovaDesign` are used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular

from .design import AnovaDesign

__all__ = ["SourceTable", "source_table", "independent_cholesky", "ERROR", "RESIDUALS"]

#: The residual source (R's row name) and its variance component (SAS's name).
RESIDUALS = "Residuals"
ERROR = "Error"

#: Relative size below which a trace counts as zero (roundoff of exactly-zero structural terms).
_ZERO = 1e-8


def _sequential_cholesky(gram: np.ndarray, norms: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Upper Cholesky factor over the columns whose squared residual on the kept columns before them
    exceeds ``tol`` times their squared norm (``norms``); and the kept column indices."""
    size = len(gram)
    try:  # full rank, the usual case: one LAPACK call
        factor = np.linalg.cholesky(gram).T
        if np.all(np.diag(factor) ** 2 > tol * norms):
            return factor, np.arange(size)
    except np.linalg.LinAlgError:
        pass
    schur = gram.copy()
    rows = np.zeros((size, size))
    kept: list[int] = []
    for j in range(size):
        pivot = schur[j, j]
        if norms[j] > 0 and pivot > tol * norms[j]:
            row = schur[j, j:] / np.sqrt(pivot)
            schur[j:, j:] -= np.outer(row, row)
            rows[len(kept), j:] = row
            kept.append(j)
    return rows[: len(kept)][:, kept], np.asarray(kept, dtype=np.int64)


def independent_cholesky(
    gram: np.ndarray, tol: float = 1e-9, block: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Upper Cholesky factor of ``gram`` over the columns independent of the columns before them.

    A column is dropped when its squared residual on the kept columns before it is at most ``tol``
    times its squared norm (by default: a residual norm of at most about 3.2e-5 of the column's norm).
    As in R's ``lm``, earlier columns are kept and later dependent ones dropped, but lm's tolerance is
    1e-7 on the norms.  Works in blocks of columns (left-looking), so large designs cost a few matrix
    products.  Returns the factor and the kept column indices.
    """
    p = gram.shape[0]
    norms = np.diag(gram)
    factor = np.zeros((0, 0))
    kept = np.zeros(0, dtype=np.int64)
    for start in range(0, p, block):
        columns = np.arange(start, min(start + block, p))
        if len(kept):
            coupling = solve_triangular(factor, gram[np.ix_(kept, columns)], trans="T", check_finite=False)
        else:
            coupling = np.zeros((0, len(columns)))
        schur = gram[np.ix_(columns, columns)] - coupling.T @ coupling
        local_factor, local = _sequential_cholesky(schur, norms[columns], tol)
        grown = np.zeros((len(kept) + len(local),) * 2)
        grown[: len(kept), : len(kept)] = factor
        grown[: len(kept), len(kept) :] = coupling[:, local]
        grown[len(kept) :, len(kept) :] = local_factor
        factor, kept = grown, np.concatenate([kept, columns[local]])
    return factor, kept


@dataclass
class SourceTable:
    """Degrees of freedom, sums of squares and expected mean squares of every source for one SS type.

    ``sources`` are the terms then ``"Residuals"``; ``components`` the random terms then ``"Error"``;
    ``coefficients[i, j]`` is the coefficient of Var(components[j]) in E[MS(sources[i])];
    ``fixed[i]`` are the fixed terms whose Q(.) enters E[MS(sources[i])].
    """

    ss_type: int
    sources: list[str]
    df: np.ndarray
    sum_sq: np.ndarray
    components: list[str]
    coefficients: np.ndarray
    fixed: list[tuple[str, ...]]
    rank: int

    @property
    def mean_sq(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.sum_sq / self.df

    def index(self, source: str) -> int:
        return self.sources.index(source)


def _type1(design: AnovaDesign, factor: np.ndarray, kept: np.ndarray):
    """Per term: SS, df and tr(F'QF) for every term's cells (Q = P_k - P_{k-1})."""
    z = solve_triangular(factor, design.xty[kept], trans="T")
    rotated = [solve_triangular(factor, xf[kept], trans="T") for xf in design.x_cells]
    ss, df, traces = [], [], []
    for term in design.terms:
        rows = np.flatnonzero(np.isin(kept, term.columns))
        ss.append(float(z[rows] @ z[rows]))
        df.append(len(rows))
        traces.append([float(np.sum(b[rows] ** 2)) for b in rotated])
    projected = [float(np.sum(b**2)) for b in rotated]
    return ss, df, traces, float(z @ z), projected


def _type3(design: AnovaDesign, factor: np.ndarray):
    """Per term: SS, df and tr(F'QF) for Q = X G L'(LGL')^{-1} L G X' (L selects the term's columns)."""
    inverse_factor = solve_triangular(factor, np.eye(len(factor)))
    g = inverse_factor @ inverse_factor.T
    b = g @ design.xty
    ss, df, traces = [], [], []
    for term in design.terms:
        s = np.asarray(term.columns)
        chol = cho_factor(g[np.ix_(s, s)], lower=True)
        ss.append(float(b[s] @ cho_solve(chol, b[s])))
        df.append(len(s))
        traces.append([float(np.sum(m * cho_solve(chol, m))) for m in (g[s] @ xf for xf in design.x_cells)])
    fitted = float(b @ design.xty)
    projected = [float(np.sum(xf * (g @ xf))) for xf in design.x_cells]
    return ss, df, traces, fitted, projected


def source_table(design: AnovaDesign, ss_type: int) -> SourceTable:
    """Sums of squares and expected mean squares for ``ss_type`` 1 or 3."""
    factor, kept = independent_cholesky(design.gram)
    if ss_type == 1:
        ss, df, traces, fitted, projected = _type1(design, factor, kept)
    else:
        if len(kept) < design.ncols:
            aliased = [design.column_names[j] for j in np.setdiff1d(np.arange(design.ncols), kept)]
            raise ValueError(
                "Type III sums of squares need a design of full rank (no empty cells), but these columns "
                f"are aliased: {', '.join(aliased)}; use ss_type=1"
            )
        ss, df, traces, fitted, projected = _type3(design, factor)
    cells_norm = design.cells_trace
    # Error: tr(F'(I - P)F) = tr(F'F) - tr(F'PF)
    traces.append(list(cells_norm - np.asarray(projected)))
    traces = np.asarray(traces)
    traces[traces < _ZERO * cells_norm] = 0.0
    ss.append(design.yty - fitted)
    df.append(design.nobs - len(kept))
    df = np.asarray(df, dtype=float)

    random = [k for k, t in enumerate(design.terms) if design.is_random(t)]
    with np.errstate(divide="ignore", invalid="ignore"):
        coefficients = np.column_stack([traces[:, random] / df[:, None], np.ones(len(df))])
    fixed_names = [t.label for t in design.fixed_terms]
    fixed_index = [k for k, t in enumerate(design.terms) if not design.is_random(t)]
    fixed = [tuple(name for name, k in zip(fixed_names, fixed_index) if row[k] > 0) for row in traces]
    return SourceTable(
        ss_type=ss_type,
        sources=[t.label for t in design.terms] + [RESIDUALS],
        df=df,
        sum_sq=np.asarray(ss),
        components=[design.terms[k].label for k in random] + [ERROR],
        coefficients=coefficients,
        fixed=fixed,
        rank=len(kept),
    )
