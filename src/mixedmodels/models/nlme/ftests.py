"""F tests of the fixed effects of one gls or lme fit, as nlme's ``anova`` of a single model.

Every row is the Wald F test of ``L beta = 0`` with the covariance of beta nlme's tests use (lme fitted
by ML: scaled by N / (N - p), nlme's ``adjustSigma``; gls: ``vcov``), so it shares lmerTest's pieces:

* ``type="sequential"`` (nlme's default): each term adjusted for the terms before it.  nlme takes the
  term's entries of ``R beta``, R the Cholesky factor of ``(X' V^-1 X)``; these are the type I
  hypotheses of lmerTest, the Doolittle rows, here of the whitened cross-product ``X' V^-1 X`` (the
  inverse of the covariance) instead of ``X'X``;
* ``type="marginal"``: each term's coefficients equal to zero given all the others (L = rows of the
  identity), whatever the terms that contain it (nlme ignores the hierarchy, unlike SAS's type III);
* ``L=``: one joint test of the rows of a contrast matrix.

Denominator df: lme, nlme's inner-outer rule (``fixDF``, nlme/fixdf.py): per term for the terms, and
for ``L`` the common df of the fixed effects it involves (an error if they differ); gls, N - p.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ...errors import check_choice
from ...inference.anova import doolittle_rows
from ...inference.contrasts import contrast_matrix
from ...inference.ddf import FTest
from ...inference.satterthwaite import independent_contrasts, wald_f
from .fixdf import term_columns

if TYPE_CHECKING:
    from .results import NlmeModel

__all__ = ["F_TEST_COLUMNS", "TEST_TYPES", "f_tests"]

TEST_TYPES = ("sequential", "marginal")
F_TEST_COLUMNS = ["numDF", "denDF", "F-value", "p-value"]


def _wald_test(beta: np.ndarray, cov: np.ndarray, contrasts: np.ndarray, dendf: float) -> FTest:
    """F test of ``contrasts @ beta = 0``; the rows are scaled to unit variance first, so that the
    rank of the hypothesis does not depend on the units of the coefficients."""
    contrasts = contrasts[np.any(contrasts != 0, axis=1)]
    sd = np.sqrt(np.einsum("ij,jk,ik->i", contrasts, cov, contrasts))
    rotated, variances = independent_contrasts(contrasts / sd[:, None], cov)
    statistic = wald_f(beta, rotated, variances)
    return FTest(statistic, len(variances), dendf, statistic)


def _table(tests: dict[str, FTest]) -> pd.DataFrame:
    """nlme's columns; the df as integers (they always are)."""
    table = pd.DataFrame(
        [[t.numdf, t.dendf, t.f_value, t.p_value] for t in tests.values()],
        index=list(tests),
        columns=F_TEST_COLUMNS,
    )
    return table.astype({"numDF": int, "denDF": int})


def _contrast_df(model: NlmeModel, contrasts: np.ndarray) -> float:
    """The denominator df of the fixed effects that ``contrasts`` involve, which must be one."""
    involved = np.any(contrasts != 0, axis=0)
    df = model.fixed_df[involved]
    if df.nunique() > 1:
        listed = ", ".join(f"{name} ({value:g})" for name, value in df.items())
        raise ValueError(
            f"L may only involve fixed effects with the same denominator df; it involves {listed}"
        )
    return float(df.iloc[0])


def f_tests(
    model: NlmeModel,
    type: str | None = None,  # noqa: A002 - nlme's name
    L=None,
) -> pd.DataFrame:
    """nlme's ``anova(m)``: numDF, denDF, F-value and p-value of each fixed-effects term (rows
    "(Intercept)" and the terms' labels), ``type`` "sequential" (default) or "marginal"; with ``L`` (a
    vector or matrix with one column per fixed effect, or coefficients by name, as ``contrast``), one
    row "L" testing ``L beta = 0``."""
    beta = model.fixef.to_numpy()
    cov = model.wald_vcov.to_numpy()
    if L is not None:
        if type is not None:
            raise ValueError("give either type= (tests of the terms) or L= (a test of L beta = 0), not both")
        contrasts, _ = contrast_matrix(model, L)
        return _table({"L": _wald_test(beta, cov, contrasts, _contrast_df(model, contrasts))})
    type = check_choice("type", "sequential" if type is None else type, TEST_TYPES)
    if type == "sequential":
        # the Doolittle rows of the inverse covariance: the columns adjusted for those before them
        rows = doolittle_rows(np.linalg.inv(cov), eps=0.0)
    else:
        rows = np.eye(len(beta))
    dendf = model.terms_df
    terms = term_columns(model.frame)
    return _table({label: _wald_test(beta, cov, rows[cols], dendf[label]) for label, cols in terms.items()})
