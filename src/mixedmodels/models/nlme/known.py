"""GLS with a known residual covariance: the marginal-model view of a mixed model.

For y = X beta + e with Var(e) = V known and block diagonal (one block V_g per group),
beta_hat = (X'V^-1 X)^-1 X'V^-1 y with covariance (X'V^-1 X)^-1 (inverse-variance weighting).  Each
group's rows are whitened by the inverse Cholesky factor of its block, batched over groups of the
same size, so V is never formed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from scipy import stats

from ...data.frame import build_frame
from ...data.tables import check_finite, to_pandas
from ...data.terms import grouping_factor
from ...engine.deviance import deviance_at_sigma
from ...errors import check_instance, check_numbers
from ...formula.parse import parse_formula
from .groups import GroupLayout, sort_order

__all__ = ["gls_known_covariance", "KnownCovarianceGLS"]


class KnownCovarianceGLS:
    """Result of :func:`gls_known_covariance`."""

    def __init__(self, frame, beta, cov, loglik, names, index: pd.Index):
        self.frame = frame
        self._index = index
        self._beta, self._cov, self.loglik = beta, cov, loglik
        self._names = names

    @property
    def nobs(self) -> int:
        return self.frame.nobs

    @property
    def fixef(self) -> pd.Series:
        return pd.Series(self._beta, index=self._names, name="Estimate")

    @property
    def vcov(self) -> pd.DataFrame:
        """(X'V^-1 X)^-1: exact, as V is known (no residual variance is estimated)."""
        return pd.DataFrame(self._cov, index=self._names, columns=self._names)

    def coef_table(self) -> pd.DataFrame:
        """Estimate, Std. Error, z value and Pr(>|z|) (normal: V is known)."""
        se = np.sqrt(np.diag(self._cov))
        z = self._beta / se
        return pd.DataFrame(
            {
                "Estimate": self._beta,
                "Std. Error": se,
                "z value": z,
                "Pr(>|z|)": 2 * stats.norm.sf(np.abs(z)),
            },
            index=self._names,
        )

    @property
    def fitted(self) -> pd.Series:
        return pd.Series(self.frame.x @ self._beta, index=self._index, name="fitted")

    @property
    def residuals(self) -> pd.Series:
        return pd.Series(self.frame.y - self.frame.x @ self._beta, index=self._index, name="residuals")


def gls_known_covariance(
    formula: str, data, groups: str, covariance, functions: Mapping[str, Callable] | None = None
) -> KnownCovarianceGLS:
    """Fit ``formula`` by GLS with the known covariance blocks of ``groups``.

    ``covariance`` is one of: a matrix used for every group (its leading n_g x n_g block for a group
    of n_g rows); a dict {group label: matrix}; or a function of the group's rows (a DataFrame)
    returning its matrix.  Rows of a group keep their order in the data.  The log-likelihood is the
    full Gaussian one, -1/2 (N log 2 pi + log|V| + r'V^-1 r) (:func:`.engine.deviance.deviance_at_sigma`
    at sigma 1).  ``functions`` are your own functions the formula may call, beyond R's and NumPy's.
    """
    check_instance("groups", groups, str, "a column name")
    original = to_pandas(data)
    table = original.reset_index(drop=True)
    if groups not in table.columns:
        raise ValueError(f"unknown column {groups!r} in groups; data has columns {list(table.columns)}")
    frame = build_frame(
        parse_formula(formula),
        table,
        require_random=False,
        functions=functions,
        other_variables={groups: "grouping factor of the covariance blocks"},
    )
    factor = grouping_factor(table.loc[frame.data.index], (groups,), groups)
    order = sort_order([factor.codes], frame.nobs)
    layout = GroupLayout.from_codes(factor.codes[order])
    labels = factor.levels
    rows_data = table.loc[frame.data.index].reset_index(drop=True).iloc[order]
    xy = np.column_stack([frame.x, frame.y])[order]
    whitened = np.empty_like(xy)
    logdet = 0.0
    group_codes = factor.codes[order][layout.starts]
    for bucket in layout.buckets:
        blocks = np.stack(
            [
                _block(
                    covariance,
                    labels[group_codes[g]],
                    rows_data.iloc[layout.starts[g] : layout.starts[g] + bucket.size],
                    bucket.size,
                )
                for g in bucket.groups
            ]
        )
        try:
            lower = np.linalg.cholesky(blocks)
        except np.linalg.LinAlgError as exc:
            raise ValueError("a covariance block is not positive definite") from exc
        whitened[bucket.rows] = np.linalg.solve(lower, xy[bucket.rows])
        logdet += 2.0 * float(np.log(np.diagonal(lower, axis1=1, axis2=2)).sum())
    p = frame.x.shape[1]
    r = np.linalg.qr(whitened, mode="r")
    inverse = np.linalg.inv(r[:p, :p])
    beta = inverse @ r[:p, p]
    loglik = -0.5 * deviance_at_sigma(1.0, r[p, p] ** 2, frame.nobs, logdet)
    index = original.index[frame.data.index.to_numpy()]
    return KnownCovarianceGLS(frame, beta, inverse @ inverse.T, loglik, frame.fixed_names, index)


def _block(covariance, label: str, rows: pd.DataFrame, size: int) -> np.ndarray:
    if callable(covariance):
        given = covariance(rows)
    elif isinstance(covariance, dict):
        if label not in covariance:
            raise ValueError(f"no covariance block for group {label!r}")
        given = covariance[label]
    else:
        given = covariance
    block = check_numbers(f"the covariance block of group {label!r}", given)
    if block.ndim == 2 and not (callable(covariance) or isinstance(covariance, dict)):
        block = block[:size, :size]
    if block.shape != (size, size):
        raise ValueError(
            f"the covariance block of group {label!r} must be {size} x {size}, not {block.shape}"
        )
    check_finite(block, f"the covariance block of group {label!r}")
    return block
