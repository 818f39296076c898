"""Likelihood-ratio comparison of fitted models of any family, and lme4's ``anova(m0, m1, ...)``.

:func:`likelihood_ratio_tests` computes the comparison once for every family: each model after the first
is tested against the model before it with the statistic ``2 (logLik_k - logLik_(k-1))`` on
``npar_k - npar_(k-1)`` degrees of freedom (chi-square), after checking that the models were fitted to the
same rows and response.  lme4 and nlme differ in two conventions, chosen by ``convention``:

* ``"lme4"`` (lme4 1.1-31, ``anova.merMod``): the models are ordered by their number of parameters (ties
  in the order given) and a statistic below zero (the larger model fits worse) counts as 0;
* ``"nlme"`` (nlme 3.1-162, ``anova.lme``): the models stay in the order given and the statistic and df
  are the absolute differences; there is no test between models with as many parameters.

Two formatters print the numbers in the packages' layouts: :func:`likelihood_ratio_table` (lme4's npar,
AIC, BIC, logLik, deviance, Chisq, Df, Pr(>Chisq)) and ``mixedmodels.models.nlme.anova`` (nlme's Model, df,
AIC, BIC, logLik, Test, L.Ratio, p-value).  :func:`anova` is lme4's: by default REML fits are refitted by
maximum likelihood first, since REML criteria of models with different fixed effects are not comparable.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import ModelMessage, check_choice, check_flag

if TYPE_CHECKING:
    from ..models.base import FittedModel
    from ..models.lmm import LinearMixedModel

__all__ = ["LikelihoodRatioTests", "anova", "likelihood_ratio_table", "likelihood_ratio_tests"]

REFIT_MESSAGE = "refitting model(s) with ML (instead of REML)"
CONVENTIONS = ("lme4", "nlme")


@dataclass(frozen=True)
class LikelihoodRatioTests:
    """Fitted models compared by likelihood-ratio tests, in the order of the comparison: each model's name,
    number of parameters (``df_loglik``), AIC, BIC and log-likelihood, and its test against the model
    before it (statistic, df, p-value; NaN in the first row, and p-value NaN where the df is 0)."""

    names: list[str]
    models: list[FittedModel]
    npar: np.ndarray
    aic: np.ndarray
    bic: np.ndarray
    loglik: np.ndarray
    statistic: np.ndarray
    df: np.ndarray
    p_value: np.ndarray


def likelihood_ratio_tests(
    models: Sequence[FittedModel], names: Sequence[str], convention: str = "lme4"
) -> LikelihoodRatioTests:
    """Likelihood-ratio tests of two or more fitted models of the same rows and response, with the given
    row names, by lme4's or nlme's ``convention`` (see the module docstring).  The models' likelihoods
    are compared as fitted: the callers decide what to do with REML fits."""
    convention = check_choice("convention", convention, CONVENTIONS)
    names = _check_comparable(models, names)
    npar = np.array([m.df_loglik for m in models])
    order = np.argsort(npar, kind="stable") if convention == "lme4" else np.arange(len(models))
    models = [models[k] for k in order]
    npar = npar[order]
    loglik = np.array([m.loglik for m in models])
    change, df = np.diff(loglik), np.diff(npar).astype(float)
    if convention == "lme4":
        change = np.maximum(0.0, change)
    else:
        change, df = np.abs(change), np.abs(df)
        change[df == 0] = np.nan
    statistic = np.concatenate([[np.nan], 2 * change])
    df = np.concatenate([[np.nan], df])
    with np.errstate(invalid="ignore"):
        p_value = np.where(df == 0, np.nan, stats.chi2.sf(statistic, np.where(df > 0, df, np.nan)))
    return LikelihoodRatioTests(
        names=[names[k] for k in order],
        models=models,
        npar=npar,
        aic=np.array([m.aic for m in models]),
        bic=np.array([m.bic for m in models]),
        loglik=loglik,
        statistic=statistic,
        df=df,
        p_value=p_value,
    )


def _check_comparable(models: Sequence[FittedModel], names) -> list[str]:
    """The row names as strings, one distinct name per model; the models fitted to the same rows and
    response."""
    if isinstance(names, str) or not isinstance(names, (Sequence, np.ndarray, pd.Index)):
        raise TypeError(f"names must be a list of row names, one per model, not {names!r}")
    names = [str(name) for name in names]
    if len(names) != len(models):
        raise ValueError(f"{len(names)} names given for {len(models)} models")
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise ValueError(f"model names must differ; repeated: {', '.join(duplicated)}")
    nobs = [m.nobs for m in models]
    if len(set(nobs)) > 1:
        listed = ", ".join(f"{name}: {n}" for name, n in zip(names, nobs))
        raise ValueError(f"models were not all fitted to the same size of dataset ({listed} rows)")
    first = models[0].frame
    for name, model in zip(names[1:], models[1:]):
        frame = model.frame
        if not first.data.index.equals(frame.data.index) or not np.array_equal(first.y, frame.y):
            raise ValueError(
                f"models must be fitted to the same data: {name} uses other rows or another response "
                f"than {names[0]}"
            )
    return names


def anova(
    *models: LinearMixedModel,
    refit: bool = True,
    names: Sequence[str] | None = None,
    **named_models: LinearMixedModel,
):
    """Compare fitted models by likelihood-ratio tests (lme4's ``anova(m0, m1, ..., refit = TRUE)``):
    lmer fits, or glmer fits (maximum likelihood already, compared by their Laplace or quadrature
    log-likelihoods as lme4 does).

    Models are given positionally, by keyword (``anova(m0=fit0, m1=fit1)``: the keywords become the row
    names) or both (positional first).  Row names come from ``names`` when given, else from the
    keywords, else are ``MODEL1``, ``MODEL2``, ... in the order given (lme4's generic names; Python
    cannot see the caller's variable names).  With ``refit`` (the default) REML fits are refitted by
    ML, with lme4's message (a :class:`ModelMessage` warning); ``refit=False`` compares the criteria
    as fitted.  With a single model this is that model's own ``anova()`` table.

    Returns a DataFrame with lme4's columns npar, AIC, BIC, logLik, deviance, Chisq, Df and
    Pr(>Chisq), one row per model in order of npar; ``attrs["models"]`` maps row names to formulas.
    """
    fits = list(models) + list(named_models.values())
    if not fits:
        raise TypeError("anova() needs at least one fitted model")
    refit = check_flag("refit", refit)
    if len(fits) == 1:
        return fits[0].anova()
    if names is None:
        names = [f"MODEL{k + 1}" for k in range(len(models))] + list(named_models)
    return likelihood_ratio_table(fits, names, refit)


def likelihood_ratio_table(
    models: Sequence[LinearMixedModel], names: Sequence[str], refit: bool = True
) -> pd.DataFrame:
    """The table of :func:`anova` for two or more lmer or glmer fits with the given row names."""
    from ..models.base import FittedModel

    for model in models:
        # lmer fits (a REML fit is refitted by ML) and fits by maximum likelihood (glmer)
        if not isinstance(model, FittedModel) or (model.reml and not callable(getattr(model, "refit", None))):
            raise TypeError(
                f"anova() compares fitted models (lmer or glmer results), not {type(model).__name__}"
            )
    reml = [m.reml for m in models]
    if refit:
        _check_comparable(models, names)  # before the refits
        if any(reml):
            warnings.warn(REFIT_MESSAGE, ModelMessage, stacklevel=3)
        models = [m.refit(reml=False) if m.reml else m for m in models]
    elif any(reml) and not all(reml):
        warnings.warn("some models fit with REML = TRUE, some not", UserWarning, stacklevel=3)
    tests = likelihood_ratio_tests(models, names, "lme4")
    table = pd.DataFrame(
        {
            "npar": tests.npar,
            "AIC": tests.aic,
            "BIC": tests.bic,
            "logLik": tests.loglik,
            "deviance": -2 * tests.loglik,
            "Chisq": tests.statistic,
            "Df": tests.df,
            "Pr(>Chisq)": tests.p_value,
        },
        index=tests.names,
    )
    table.attrs["models"] = {name: m.frame.formula.text for name, m in zip(tests.names, tests.models)}
    return table
