"""Covariance parameter estimates with SAS PROC MIXED's COVTEST and CL intervals.

The parameters are on the variance scale: each random-effects term's variances and covariances
(``sigma^2 T T'``) and the residual variance ``sigma^2``.  Their asymptotic covariance is twice the
inverse of the observed Hessian of the -2 (REML or ML, as fitted) log-likelihood in them, PROC
MIXED's ASYCOV.  At the optimum, where the gradient is zero, that equals the delta-method transform
``J A J'`` of the covariance ``A`` of ``(theta, sigma)`` (:class:`~.varpar.VarianceParameters`), with
``J`` the Jacobian of the variance-scale parameters in ``(theta, sigma)``.

Limits (PROC MIXED's CL option): for a variance, Satterthwaite's ``df = 2 Z^2`` with ``Z = estimate /
SE`` and ``(df est / chi2_{1-alpha/2, df}, df est / chi2_{alpha/2, df})``; for a covariance, Wald
limits ``est -/+ z_{1-alpha/2} SE``.  ``Pr > Z`` is one-sided for variances and two-sided for
covariances, as SAS reports them.  A variance estimated as zero (a singular fit) has no standard
error, test or limits (NaN), as in SAS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import check_probability
from .numdiff import derivatives

if TYPE_CHECKING:
    from ..models.lmm import LinearMixedModel

__all__ = ["covariance_parameters"]


def _layout(model: LinearMixedModel) -> list[tuple[str, str, int | None, int, int]]:
    """(Cov Parm, Subject, term index or None for the residual, row, column) of each parameter.

    PROC MIXED's names: a random intercept ``(1 | g)`` is a variance component named ``g``; other
    terms are listed per subject ``g`` as ``UN(i,j)`` (lower triangle by rows) or, with one column,
    by that column's name.
    """
    layout = []
    for k, term in enumerate(model.frame.terms):
        group = term.group.name
        if term.column_names == ["(Intercept)"]:
            layout.append((group, "", k, 0, 0))
        elif term.ncols == 1:
            layout.append((term.column_names[0], group, k, 0, 0))
        else:
            for i in range(term.ncols):
                for j in range(i + 1):
                    layout.append((f"UN({i + 1},{j + 1})", group, k, i, j))
    layout.append(("Residual", "", None, 0, 0))
    return layout


def covariance_parameters(model: LinearMixedModel, level: float = 0.95) -> pd.DataFrame:
    """PROC MIXED's "Covariance Parameter Estimates" with COVTEST and CL (see the module docstring).

    Columns Cov Parm (and Subject, when a term is not a random intercept), Estimate, Standard Error,
    Z Value, Pr > Z, Alpha, Lower, Upper.
    """
    level = check_probability("level", level)
    alpha = 1.0 - level
    layout = _layout(model)
    varpar = model.varpar

    def variance_scale(x: np.ndarray) -> np.ndarray:
        s2 = x[-1] ** 2
        lambdas = model.objective.lambdas(x[:-1])
        return np.array([s2 if k is None else s2 * lambdas[k][i] @ lambdas[k][j] for _, _, k, i, j in layout])

    estimate = variance_scale(varpar.estimate)
    gradient = derivatives(variance_scale, varpar.estimate)[1]
    se = np.sqrt(np.diag(gradient @ varpar.covariance @ gradient.T))
    se[se == 0] = np.nan  # a variance on its boundary (zero), for which SAS reports no standard error
    is_variance = np.array([i == j for _, _, _, i, j in layout])
    with np.errstate(divide="ignore", invalid="ignore"):
        z = estimate / se
        df = 2 * z**2
        wald = stats.norm.ppf(1 - alpha / 2) * se
        lower = np.where(is_variance, df * estimate / stats.chi2.ppf(1 - alpha / 2, df), estimate - wald)
        upper = np.where(is_variance, df * estimate / stats.chi2.ppf(alpha / 2, df), estimate + wald)
    table = pd.DataFrame(
        {
            "Cov Parm": [name for name, *_ in layout],
            "Subject": [subject for _, subject, *_ in layout],
            "Estimate": estimate,
            "Standard Error": se,
            "Z Value": z,
            "Pr > Z": np.where(is_variance, stats.norm.sf(z), 2 * stats.norm.sf(np.abs(z))),
            "Alpha": alpha,
            "Lower": lower,
            "Upper": upper,
        }
    )
    return table if table["Subject"].any() else table.drop(columns="Subject")
