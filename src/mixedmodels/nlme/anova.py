"""nlme's ``anova``: F tests of one gls or lme fit (nlme/ftests.py), likelihood-ratio comparison of
several (``anova(m1, m2, ...)``)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import check_instance
from .ftests import f_tests

__all__ = ["anova"]


def anova(
    *models,
    names: list[str] | None = None,
    type: str | None = None,  # noqa: A002 - nlme's name
    L=None,
) -> pd.DataFrame:
    """nlme's ``anova`` of gls and lme fits.

    One fit: its F tests, as ``anova(m)`` (:func:`~mixedmodels.nlme.ftests.f_tests`): one row per
    fixed-effects term with numDF, denDF, F-value and p-value, ``type`` "sequential" (default) or
    "marginal", or one test of ``L beta = 0``.

    Several fits: table of df, AIC, BIC and logLik of the fits in the order given, with the
    likelihood-ratio test of each model against the previous one when their numbers of parameters differ
    (``L.Ratio = 2 |logLik_i - logLik_(i-1)|`` on ``|df_i - df_(i-1)|`` degrees of freedom).  All fits
    must use the same rows, response and method; REML fits with different fixed effects give a warning,
    as their restricted likelihoods are not comparable.
    """
    from .models import _NlmeModel

    if not models:
        raise TypeError("anova() needs at least one fitted model")
    for model in models:
        check_instance("anova()'s models", model, _NlmeModel, "gls or lme fits (mm.anova compares lmer fits)")
    if len(models) == 1:
        return f_tests(models[0], type, L)
    if type is not None or L is not None:
        raise ValueError("type= and L= are for the F tests of one model; several models are compared by LRT")
    methods = {m.method for m in models}
    if len(methods) > 1:
        raise ValueError("all fitted objects must have the same estimation method")
    if len({m.nobs for m in models}) > 1:
        raise ValueError("all fitted objects must use the same number of observations")
    if len({m.frame.formula.response for m in models}) > 1:
        raise ValueError("all fitted objects must have the same response")
    if methods == {"REML"} and len({tuple(sorted(m.frame.fixed_names)) for m in models}) > 1:
        warnings.warn(
            "fitted objects with different fixed effects. REML comparisons are not meaningful.",
            UserWarning,
            stacklevel=2,
        )
    df = np.array([m.df_loglik for m in models])
    loglik = np.array([m.loglik for m in models])
    table = pd.DataFrame(
        {
            "Model": np.arange(1, len(models) + 1),
            "df": df,
            "AIC": [m.aic for m in models],
            "BIC": [m.bic for m in models],
            "logLik": loglik,
        },
        index=names or [f"m{i + 1}" for i in range(len(models))],
    )
    if np.any(np.diff(df) != 0):
        test = [""]
        ratio = [np.nan]
        p_value = [np.nan]
        for i in range(1, len(models)):
            ddf = df[i] - df[i - 1]
            if ddf == 0:
                test.append("")
                ratio.append(np.nan)
                p_value.append(np.nan)
                continue
            statistic = 2 * abs(loglik[i] - loglik[i - 1])
            test.append(f"{i} vs {i + 1}")
            ratio.append(statistic)
            p_value.append(stats.chi2.sf(statistic, abs(ddf)))
        table["Test"] = test
        table["L.Ratio"] = ratio
        table["p-value"] = p_value
    return table
