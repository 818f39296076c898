"""nlme's ``anova``: F tests of one gls or lme fit (nlme/ftests.py), likelihood-ratio comparison of
several (``anova(m1, m2, ...)``)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ...errors import check_instance
from ...inference.comparison import likelihood_ratio_tests
from .ftests import f_tests

__all__ = ["anova"]


def anova(
    *models,
    names: list[str] | None = None,
    type: str | None = None,  # noqa: A002 - nlme's name
    L=None,
) -> pd.DataFrame:
    """nlme's ``anova`` of gls and lme fits.

    One fit: its F tests, as ``anova(m)`` (:func:`~mixedmodels.models.nlme.ftests.f_tests`): one row per
    fixed-effects term with numDF, denDF, F-value and p-value, ``type`` "sequential" (default) or
    "marginal", or one test of ``L beta = 0``.

    Several fits: table of df, AIC, BIC and logLik of the fits in the order given, with the
    likelihood-ratio test of each model against the previous one when their numbers of parameters differ
    (``L.Ratio = 2 |logLik_i - logLik_(i-1)|`` on ``|df_i - df_(i-1)|`` degrees of freedom; the numbers
    of :func:`mixedmodels.inference.comparison.likelihood_ratio_tests`, in nlme's layout).  All fits
    must use the same rows, response and method; REML fits with different fixed effects give a warning,
    as their restricted likelihoods are not comparable.
    """
    from .results import NlmeModel

    if not models:
        raise TypeError("anova() needs at least one fitted model")
    for model in models:
        check_instance("anova()'s models", model, NlmeModel, "gls or lme fits (mm.anova compares lmer fits)")
    if len(models) == 1:
        return f_tests(models[0], type, L)
    if type is not None or L is not None:
        raise ValueError("type= and L= are for the F tests of one model; several models are compared by LRT")
    if len({m.method for m in models}) > 1:
        raise ValueError("all fitted objects must have the same estimation method")
    names = [f"m{i + 1}" for i in range(len(models))] if names is None else names
    tests = likelihood_ratio_tests(models, names, "nlme")
    if models[0].reml and len({tuple(sorted(m.frame.fixed_names)) for m in models}) > 1:
        warnings.warn(
            "fitted objects with different fixed effects. REML comparisons are not meaningful.",
            UserWarning,
            stacklevel=2,
        )
    table = pd.DataFrame(
        {
            "Model": np.arange(1, len(models) + 1),
            "df": tests.npar,
            "AIC": tests.aic,
            "BIC": tests.bic,
            "logLik": tests.loglik,
        },
        index=tests.names,
    )
    if np.any(tests.df[1:] != 0):
        tested = ~np.isnan(tests.statistic)
        table["Test"] = [f"{k} vs {k + 1}" if tested[k] else "" for k in range(len(models))]
        table["L.Ratio"] = tests.statistic
        table["p-value"] = tests.p_value
    return table
