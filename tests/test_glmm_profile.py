"""Profile confidence intervals of glmer fits against lme4 1.1-31's ``confint(m, method = "profile")``
(fixture of tools/reference_glmer_profile.R).

lme4 interpolates its profile's trace with splines; the limits here solve zeta = -+1.96 on the exact
profile, so they agree with lme4's to about 1e-3 relative (on cbpp to about 1e-5), the tolerance of
lmer's profile tests.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import mixedmodels as mm
from mixedmodels.inference.parameters import model_parameters
from mixedmodels.inference.profile import LikelihoodProfile

FIXTURES = Path(__file__).parent / "fixtures" / "glmm"
CBPP = json.loads((FIXTURES / "profile_cbpp.json").read_text())
PROFILED = [".sig01", "period2"]  # a standard deviation and a fixed effect (each profile takes seconds)


@cache
def _cbpp(nagq: int = 1):
    return mm.glmer(CBPP["formula"], mm.datasets.load("cbpp"), family="binomial", nAGQ=nagq)


def test_profile_intervals_match_lme4():
    model = _cbpp()
    expected = pd.DataFrame({"lower": CBPP["lower"], "upper": CBPP["upper"]}, index=CBPP["names"])
    assert model.confint(method="wald").index.tolist() == CBPP["names"]  # no .sigma row
    ours = model.confint(parm=PROFILED)  # lme4's default method: the profile
    np.testing.assert_allclose(ours.to_numpy(), expected.loc[PROFILED].to_numpy(), rtol=1e-3)


def test_profile_is_of_the_laplace_deviance_and_reaches_the_limits_exactly():
    model = _cbpp()
    profile = LikelihoodProfile(model)
    np.testing.assert_allclose(profile.base, CBPP["deviance"], rtol=1e-9)
    np.testing.assert_allclose(profile.optimum, model_parameters(model), rtol=1e-12)
    index = CBPP["names"].index(".sig01")
    limits = profile.limits(index)
    zetas = [profile.point(index, value)[0] for value in limits]
    np.testing.assert_allclose(zetas, stats.norm.ppf([0.025, 0.975]), atol=1e-6)


def test_profile_traces_pass_through_the_estimates():
    model = _cbpp()
    traces = model.profile(parm=".sig01")
    assert ".sigma" not in traces.columns
    at_estimate = traces[traces["zeta"] == 0].iloc[:, 3:]
    np.testing.assert_allclose(at_estimate.to_numpy()[0], model_parameters(model), rtol=1e-12)
    assert np.all(np.diff(traces["zeta"].to_numpy()) > 0)


def test_profiles_need_a_laplace_fit_without_dispersion():
    with pytest.raises(ValueError, match="nAGQ = 1"):
        _cbpp(nagq=0).confint(method="profile")
    data = pd.read_csv(FIXTURES / "data" / "gamma_sim.csv")
    gamma = mm.glmer("y ~ x + (1 | g)", data, family="Gamma")
    with pytest.raises(ValueError, match="dispersion parameter"):
        gamma.confint(method="profile")


def test_refit_from_another_start_finds_the_fit():
    """A profile that finds a lower deviance refits from there (``refit(start=)``): glmer's fit again."""
    view = _cbpp().profile_view()
    refitted = view.refit(start=1.5 * view.phi)
    np.testing.assert_allclose(refitted.deviance, view.deviance, rtol=1e-9)
    np.testing.assert_allclose(refitted.parameters(), view.parameters(), rtol=1e-4)


def test_negative_binomial_fits_are_not_profiled_yet():
    """Profiles of negative binomial fits are not checked against lme4, so they are refused."""
    cbpp = mm.datasets.load("cbpp")
    model = mm.glmer("incidence ~ period + (1 | herd)", cbpp, family=mm.families.NegativeBinomial(theta=2.0))
    with pytest.raises(ValueError, match="glmer.nb fit are not available yet"):
        model.confint()
