"""Likelihood-ratio comparison of nested linear mixed models, as lme4's ``anova(m0, m1, ...)``.

Models are ordered by their number of parameters; each row after the first is tested against the row
before it with ``Chisq = 2 max(0, logLik_k - logLik_{k-1})`` on ``npar_k - npar_{k-1}`` degrees of
freedom (lme4 1.1-31, ``anova.merMod``).  By default REML fits are refitted by maximum likelihood
first, since REML criteria of models with different fixed effects are not comparable.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import ModelMessage, check_flag

if TYPE_CHECKING:
    from ..lmm import LinearMixedModel

__all__ = ["anova", "likelihood_ratio_table"]

REFIT_MESSAGE = "refitting model(s) with ML (instead of REML)"


def anova(
    *models: LinearMixedModel,
    refit: bool = True,
    names: Sequence[str] | None = None,
    **named_models: LinearMixedModel,
):
    """Compare fitted models by likelihood-ratio tests (lme4's ``anova(m0, m1, ..., refit = TRUE)``).

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
    elif isinstance(names, str) or not isinstance(names, (Sequence, np.ndarray, pd.Index)):
        raise TypeError(f"names must be a list of row names, one per model, not {names!r}")
    else:
        names = [str(name) for name in names]
    return likelihood_ratio_table(fits, names, refit)


def likelihood_ratio_table(
    models: Sequence[LinearMixedModel], names: Sequence[str], refit: bool = True
) -> pd.DataFrame:
    """The table of :func:`anova` for two or more models with the given row names."""
    _check_models(models, names)
    reml = [m.reml for m in models]
    if refit:
        if any(reml):
            warnings.warn(REFIT_MESSAGE, ModelMessage, stacklevel=3)
        models = [m.refit(reml=False) if m.reml else m for m in models]
    elif any(reml) and not all(reml):
        warnings.warn("some models fit with REML = TRUE, some not", UserWarning, stacklevel=3)

    npar = np.array([m.df_loglik for m in models])
    order = np.argsort(npar, kind="stable")  # R's order(): ties keep the order given
    models = [models[k] for k in order]
    npar = npar[order]
    loglik = np.array([m.loglik for m in models])
    chisq = np.concatenate([[np.nan], 2 * np.maximum(0.0, np.diff(loglik))])
    df = np.concatenate([[np.nan], np.diff(npar).astype(float)])
    with np.errstate(invalid="ignore"):
        p_value = np.where(df == 0, np.nan, stats.chi2.sf(chisq, np.where(df > 0, df, np.nan)))
    table = pd.DataFrame(
        {
            "npar": npar,
            "AIC": [m.aic for m in models],
            "BIC": [m.bic for m in models],
            "logLik": loglik,
            "deviance": -2 * loglik,
            "Chisq": chisq,
            "Df": df,
            "Pr(>Chisq)": p_value,
        },
        index=[names[k] for k in order],
    )
    table.attrs["models"] = {names[k]: m.frame.formula.text for k, m in zip(order, models)}
    return table


def _check_models(models: Sequence[LinearMixedModel], names: Sequence[str]) -> None:
    """Fitted models of the same rows and response, with one distinct name each."""
    for model in models:
        if not all(callable(getattr(type(model), name, None)) for name in ("refit", "update_random")):
            raise TypeError(f"anova() compares fitted models (lmer results), not {type(model).__name__}")
    if len(names) != len(models):
        raise ValueError(f"{len(names)} names given for {len(models)} models")
    duplicated = sorted({name for name in names if list(names).count(name) > 1})
    if duplicated:
        raise ValueError(f"model names must differ; repeated: {', '.join(duplicated)}")
    first = models[0].frame
    nobs = [m.nobs for m in models]
    if len(set(nobs)) > 1:
        listed = ", ".join(f"{name}: {n}" for name, n in zip(names, nobs))
        raise ValueError(f"models were not all fitted to the same size of dataset ({listed} rows)")
    for name, model in zip(names[1:], models[1:]):
        frame = model.frame
        if not first.data.index.equals(frame.data.index) or not np.array_equal(first.y, frame.y):
            raise ValueError(
                f"models must be fitted to the same data: {name} uses other rows or another response "
                f"than {names[0]}"
            )
