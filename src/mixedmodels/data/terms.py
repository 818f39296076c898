"""A model's terms on its rows: grouping factors with R's levels and the rows' codes, and the
fixed-effects columns R's QR keeps.

``grouping_factor`` codes the rows of a grouping variable (or an interaction of several, ``a:b``) with the
levels in R's order (``as.factor``: a categorical's categories in their order, other values sorted,
unused levels dropped); aov, nlme and the diagnostics use it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.linalg import lapack

from ..engine.threads import limited_threads
from .spec import GroupLevels
from .tables import r_label

__all__ = ["GroupingFactor", "grouping_factor", "independent_columns"]


@dataclass
class GroupingFactor(GroupLevels):
    """A grouping factor's levels and the codes of the rows (0-based indices into ``levels``)."""

    codes: np.ndarray

    @property
    def group_levels(self) -> GroupLevels:
        """The factor without its rows' codes (what a model spec keeps)."""
        return GroupLevels(self.name, self.variables, self.levels)


def _r_labels(values: pd.Index | np.ndarray) -> pd.Index:
    """:func:`r_label` of each of distinct ``values``; strings and integers convert all at once."""
    dtype = values.dtype
    if isinstance(dtype, pd.StringDtype) or (isinstance(dtype, np.dtype) and dtype.kind in "iuU"):
        labels = values.astype(str)
        if isinstance(labels, np.ndarray):
            return pd.Index(labels)
        return labels if labels.name is None else labels.rename(None)
    return pd.Index([r_label(v) for v in values])


def _factor_codes(column: pd.Series) -> tuple[np.ndarray, pd.Index]:
    """Codes and R labels of ``as.factor(column)[, drop = TRUE]``: categories in their order, other
    values sorted; unused levels dropped."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.array.codes.astype(np.int64)
        categories = column.dtype.categories
        used = np.bincount(codes, minlength=len(categories)) > 0
        if not used.all():
            codes = (np.cumsum(used) - 1)[codes]
            categories = categories[used]
        return codes, _r_labels(categories)
    values, codes = np.unique(column.to_numpy(), return_inverse=True)
    return codes.astype(np.int64).ravel(), _r_labels(values)


def grouping_factor(
    data: pd.DataFrame | Mapping[str, pd.Series], variables: tuple[str, ...], name: str
) -> GroupingFactor:
    """Interaction of ``variables`` with R's level order (first variable slowest), unused levels dropped."""
    codes, labels = _factor_codes(data[variables[0]])
    for var in variables[1:]:
        more_codes, more_labels = _factor_codes(data[var])
        used, codes = np.unique(codes * len(more_labels) + more_codes, return_inverse=True)
        labels = pd.Index(
            [f"{labels[c // len(more_labels)]}:{more_labels[c % len(more_labels)]}" for c in used]
        )
        codes = codes.ravel()
    return GroupingFactor(name, variables, labels, codes)


def independent_columns(x: np.ndarray, tol: float = 1e-7) -> np.ndarray:
    """Indices of the columns R's QR (LINPACK ``dqrdc2``) keeps: a column goes when its residual after
    projection on the columns before it is below ``tol`` times its norm; later collinear ones go first.

    The diagonal of R in a QR decomposition is exactly that residual norm, and R's columns have the norms
    of x's (Householder QR is column-wise backward stable), so one QR per dropped column (usually none)
    decides it.  LAPACK's dgeqrf is called directly: ``np.linalg.qr`` costs several times more.  It
    runs on the fits' threads (:func:`.engine.threads.limited_threads`): waking a thread pool for a
    small QR costs more than the QR.
    """
    kept = np.arange(x.shape[1])
    while kept.size:
        with limited_threads():
            factored = lapack.dgeqrf(x if kept.size == x.shape[1] else x[:, kept])[0]
        r = np.triu(factored[: kept.size])
        residual = np.abs(np.diagonal(r))
        small = np.flatnonzero(~(residual > tol * np.sqrt(np.einsum("ij,ij->j", r, r))))
        if small.size == 0:
            break
        kept = np.delete(kept, small[0])
    return kept
