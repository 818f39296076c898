"""The one dispatch point from a denominator-df method to F and t tests of fixed-effect contrasts.

Methods (``ddf=``):

* ``"satterthwaite"`` -- lmerTest's default (Kuznetsova et al. 2017): per-contrast Satterthwaite df,
  F tests combined as in ``contestMD`` (inference/satterthwaite.py);
* ``"kenward-roger"`` -- Kenward & Roger (1997) as pbkrtest (Halekoh & Højsgaard 2014): adjusted
  covariance of beta and scaled F (inference/kenward_roger.py);
* ``"containment"`` -- SAS PROC MIXED's default DDFM=CONTAIN (inference/containment.py);
* ``"residual"`` -- n - p for every test;
* ``"asymptotic"`` -- infinite df: normal and chi-square/q reference distributions.

Every method but Kenward-Roger uses the model's covariance of beta and the Wald F statistic
``(L beta)' (L C L')^{-1} (L beta) / q`` with q the rank of ``L C L'``.  The model is read through
:class:`.view.InferenceView`, so lmer, lme and gls fits are tested alike (Kenward-Roger from lmer's
cross-product blocks or from the marginal covariance of gls and lme fits group by group); containment
needs lmer's cross-product blocks and is refused for the fits that do not list it in ``ddf_methods``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import check_choice
from .satterthwaite import independent_contrasts, satterthwaite_df, satterthwaite_f_test, wald_f

if TYPE_CHECKING:
    from .view import InferenceView

__all__ = [
    "DDF_METHODS",
    "VIEW_DDF_METHODS",
    "F_TABLE_COLUMNS",
    "FTest",
    "check_ddf",
    "f_table",
    "f_test",
    "t_test",
]

F_TABLE_COLUMNS = ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]

DDF_METHODS = ("satterthwaite", "kenward-roger", "containment", "residual", "asymptotic")
VIEW_DDF_METHODS = ("satterthwaite", "kenward-roger", "residual", "asymptotic")  # what lme and gls give


def check_ddf(ddf: str, model: InferenceView | None = None) -> str:
    """The method's canonical name (case and ``_``/``-`` do not matter); unknown names raise, and so do
    methods that ``model`` does not support."""
    method = check_choice("ddf", ddf, DDF_METHODS, canonical=lambda name: name.lower().replace("_", "-"))
    if model is not None and method not in model.ddf_methods:
        raise ValueError(
            f"ddf={ddf!r} is not available for {type(model).__name__} fits; "
            f"choose from {', '.join(map(repr, model.ddf_methods))}"
        )
    return method


@dataclass(frozen=True)
class FTest:
    """An F test of ``L beta = 0``.

    ``unscaled_f`` is the Wald F before any small-sample scaling (only Kenward-Roger scales); as in
    lmerTest, a table's Mean Sq is ``unscaled_f * sigma^2``.
    """

    f_value: float
    numdf: int
    dendf: float
    unscaled_f: float

    @property
    def p_value(self) -> float:
        if np.isnan(self.f_value):
            return np.nan
        if np.isinf(self.dendf):
            return float(stats.chi2.sf(self.f_value * self.numdf, self.numdf))
        return float(stats.f.sf(self.f_value, self.numdf, self.dendf))

    def as_row(self, sigma: float) -> list[float]:
        """Sum Sq, Mean Sq, NumDF, DenDF, F value, Pr(>F) (lmerTest's columns)."""
        mean_sq = self.unscaled_f * sigma**2
        numdf = self.numdf or np.nan
        return [mean_sq * numdf, mean_sq, numdf, self.dendf, self.f_value, self.p_value]


EMPTY_TEST = FTest(np.nan, 0, np.nan, np.nan)


def f_table(tests: Mapping[Hashable, FTest], sigma: float) -> pd.DataFrame:
    """F tests as lmerTest's table (NumDF integer unless a test is empty)."""
    table = pd.DataFrame(
        [test.as_row(sigma) for test in tests.values()],
        index=list(tests),
        columns=F_TABLE_COLUMNS,
        dtype=float,
    )
    if table["NumDF"].notna().all():
        table["NumDF"] = table["NumDF"].astype(int)
    return table


# -- Kenward-Roger ------------------------------------------------------------------------------------------
# As lmerTest with ddf="Kenward-Roger" (inference/kenward_roger.py):
#   F test: f_value = the scaled F of pbkrtest's KRmodcomp, unscaled_f = its unscaled F (Wald F with the
#           adjusted covariance), dendf = its ddf;
#   t test: standard error from the adjusted covariance (pbkrtest's vcovAdj), df = pbkrtest's Lb_ddf.
def _kenward_roger_f_test(model: InferenceView, contrasts: np.ndarray) -> FTest:
    if not np.any(contrasts):
        return EMPTY_TEST
    scaled, numdf, dendf, unscaled = model.kenward_roger.f_tests(contrasts)
    return FTest(scaled, numdf, dendf, unscaled)


def _kenward_roger_t_test(model: InferenceView, contrast: np.ndarray) -> tuple[float, float]:
    kenward_roger = model.kenward_roger
    se = float(np.sqrt(contrast @ kenward_roger.adjusted_vcov @ contrast))
    return se, kenward_roger.df(contrast)


# -- the dispatch --------------------------------------------------------------------------------------------
def _final_term(model: InferenceView, contrasts: np.ndarray) -> str:
    """SAS's rule for CONTRAST and ESTIMATE: the df of "the final effect you list", here the last
    fixed-effect term (in model order, intercept first) with a nonzero coefficient."""
    from .anova import FixedTerms

    terms = FixedTerms(model.frame.fixed_design, model.frame.kept_columns)
    owners = terms.column_terms(model.n_fixed)
    used = {owners[c] for c in np.flatnonzero(np.any(contrasts != 0, axis=0))}
    ordered = ["(Intercept)", *terms.labels]
    return next((label for label in reversed(ordered) if label in used), "(Intercept)")


def _common_df(model: InferenceView, method: str, contrasts: np.ndarray, term: str | None) -> float:
    """Denominator df of the methods whose df does not depend on the covariance parameters."""
    if method == "residual":
        return float(model.nobs - model.n_fixed)
    if method == "asymptotic":
        return np.inf
    return model.containment_df.by_term[term or _final_term(model, contrasts)]


def f_test(
    model: InferenceView, contrasts: np.ndarray, ddf: str = "satterthwaite", term: str | None = None
) -> FTest:
    """F test of ``contrasts @ beta = 0`` (contrasts: q x p) with the chosen denominator df.

    ``term`` names the fixed-effect term an ANOVA row tests; the containment method then uses that
    term's df (otherwise the df of the last term the contrasts involve, as SAS's CONTRAST).
    """
    method = check_ddf(ddf, model)
    contrasts = np.atleast_2d(np.asarray(contrasts, dtype=float))
    if contrasts.shape[0] == 0:
        return EMPTY_TEST
    if method == "kenward-roger":
        return _kenward_roger_f_test(model, contrasts)
    if method == "satterthwaite":
        statistic, numdf, dendf = satterthwaite_f_test(model, contrasts)
        return FTest(statistic, numdf, dendf, statistic) if numdf else EMPTY_TEST
    rotated, variances = independent_contrasts(contrasts, model.vcov.to_numpy())
    if len(variances) == 0:
        return EMPTY_TEST
    statistic = wald_f(model.fixef.to_numpy(), rotated, variances)
    return FTest(statistic, len(variances), _common_df(model, method, contrasts, term), statistic)


def t_test(model: InferenceView, contrast: np.ndarray, ddf: str = "satterthwaite") -> tuple[float, float]:
    """Standard error and df of ``contrast @ beta`` (one contrast of length p)."""
    method = check_ddf(ddf, model)
    contrast = np.asarray(contrast, dtype=float)
    if method == "kenward-roger":
        return _kenward_roger_t_test(model, contrast)
    se = float(np.sqrt(contrast @ model.vcov.to_numpy() @ contrast))
    if method == "satterthwaite":
        return se, satterthwaite_df(model.varpar, contrast)
    return se, _common_df(model, method, contrast[None, :], None)
