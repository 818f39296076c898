"""The results base every fitted model family shares (mixedmodels.models.base): lmer's and lme's fits of
the same model report the same log-likelihood, deviance, AIC and df, and BIC by each package's
convention (lme4: log N; nlme: log(N - p) for REML fits)."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from nlme_models import fit

import mixedmodels as mm
from mixedmodels.models.base import FittedModel


@pytest.mark.parametrize("reml", [True, False])
def test_lmer_and_lme_report_the_same_likelihood(reml):
    orthodont = mm.datasets.load("Orthodont")
    lmer = mm.lmer("distance ~ age + (1 | Subject)", orthodont, reml=reml)
    lme = mm.lme("distance ~ age", orthodont, "~ 1 | Subject", method="REML" if reml else "ML")
    assert isinstance(lmer, FittedModel) and isinstance(lme, FittedModel)
    assert lme.loglik == pytest.approx(lmer.loglik, rel=1e-8)
    assert lme.deviance == -2 * lme.loglik and lmer.deviance == -2 * lmer.loglik
    assert lme.aic == pytest.approx(lmer.aic, rel=1e-8)
    assert lme.df_loglik == lmer.df_loglik == 4
    n, p = lmer.nobs, lmer.n_fixed
    penalty = lmer.df_loglik * (math.log(n) - math.log(n - p if reml else n))
    assert lmer.bic - lme.bic == pytest.approx(penalty, abs=1e-6)
    assert lme.method == lmer.method == ("REML" if reml else "ML")


def test_to_dict_has_the_shared_part_in_every_family():
    shared = {"formula", "reml", "nobs", "fixef", "vcov", "sigma", "loglik", "df_loglik", "aic", "bic"}
    orthodont = mm.datasets.load("Orthodont")
    models = [
        mm.lmer("distance ~ age + (1 | Subject)", orthodont),
        fit("lme_orthodont_slope"),
        fit("gls_ovary_ar1_ml"),
    ]
    for model in models:
        result = json.loads(json.dumps(model.to_dict()))
        assert shared | {"deviance"} <= set(result)
        assert result["loglik"] == model.loglik and result["df_loglik"] == model.df_loglik
    assert {"model", "method", "correlation_parameters"} <= set(models[2].to_dict())


def test_old_names_of_the_variance_parameters_warn():
    """architecture.md's names: nlme's variance-function parameters are ``varfunc_params`` and the
    inference view's variance parameters ``varpar``; the old ``variance_parameters`` warns for one release."""
    orthodont = mm.datasets.load("Orthodont")
    gls = mm.gls("distance ~ age", orthodont, weights=mm.VarIdent("~ 1 | Sex"))
    with pytest.warns(DeprecationWarning, match="use varfunc_params"):
        old = gls.variance_parameters
    pd.testing.assert_series_equal(old, gls.varfunc_params)
    lmer = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    with pytest.warns(DeprecationWarning, match="use varpar"):
        assert lmer.variance_parameters is lmer.varpar
