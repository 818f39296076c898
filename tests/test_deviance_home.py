"""The likelihood's one home (mixedmodels.engine.deviance): its forms agree with each other and the
model families that call it agree where their models coincide."""

from __future__ import annotations

import numpy as np
import pytest

import mixedmodels as mm
from mixedmodels.engine.deviance import chol_logdet, deviance_at_sigma, residual_dof


def _weighted_sleepstudy():
    data = mm.datasets.load("sleepstudy")
    data["w"] = np.linspace(0.5, 2.0, len(data))
    data["v"] = 1.0 / data["w"]
    return data


@pytest.mark.parametrize("reml", [True, False])
def test_profiled_deviance_is_the_minimum_over_sigma(reml):
    """lmer's criterion (profiled over sigma) is the deviance at a given sigma at the fit's sigma,
    and that sigma minimizes it."""
    model = mm.lmer("Reaction ~ Days + (Days | Subject)", _weighted_sleepstudy(), weights="w", reml=reml)
    factor = model.chol
    dof = residual_dof(model.nobs, model.n_fixed, reml)
    logdet, pwrss = chol_logdet(factor, reml), factor.pwrss()

    def at(sigma):
        return deviance_at_sigma(sigma, pwrss, dof, logdet, model.cross.sum_log_weights)

    criterion = model.reml_criterion if reml else model.deviance
    assert at(model.sigma) == pytest.approx(criterion, rel=1e-12)
    assert at(0.99 * model.sigma) > criterion < at(1.01 * model.sigma)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_gls_without_structure_is_the_linear_model(method):
    """gls with known variance weights (VarFixed, variance v = 1/w) has the log-likelihood of the
    weighted linear model that ranova compares lmer's fit with (R's logLik.lm)."""
    data = _weighted_sleepstudy()
    fit = mm.lmer("Reaction ~ Days + (1 | Subject)", data, weights="w", reml=method == "REML")
    linear_model = fit.ranova().loc["(1 | Subject)", "logLik"]
    gls = mm.gls("Reaction ~ Days", data, weights=mm.VarFixed("~ v"), method=method)
    assert gls.loglik == pytest.approx(linear_model, rel=1e-10)
