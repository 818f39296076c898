"""Profile confidence intervals of glmer fits against lme4 1.1-31's ``confint(m, method = "profile")``
(fixtures of tools/reference_glmer_profile.R).

lme4 interpolates its profile's trace with splines; the limits here solve zeta = -+1.96 on the exact
profile.  On cbpp and grouseticks (Poisson) they agree with lme4's to 1e-5, except where lme4's spline
crosses a kink of the profile (a standard deviation reaching 0 between two trace points).  lme4
profiles a glmer.nb fit with the negative binomial's theta held at its estimate; so does this package.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import interpolate, stats

import mixedmodels as mm
from mixedmodels.inference.parameters import model_parameters
from mixedmodels.inference.profile import LikelihoodProfile

FIXTURES = Path(__file__).parent / "fixtures" / "glmm"
CBPP = json.loads((FIXTURES / "profile_cbpp.json").read_text())
GROUSE = json.loads((FIXTURES / "profile_grouseticks_poisson.json").read_text())
GROUSE_NB = json.loads((FIXTURES / "profile_grouseticks_nb.json").read_text())
LIMITS = stats.norm.ppf([0.025, 0.975])


@cache
def _cbpp(nagq: int = 1):
    return mm.glmer(CBPP["formula"], mm.datasets.load("cbpp"), family="binomial", nAGQ=nagq)


@cache
def _grouseticks(family: str = "poisson"):
    data = mm.datasets.load("grouseticks")
    if family == "poisson":
        return mm.glmer(GROUSE["formula"], data, family="poisson")
    return mm.glmer_nb(GROUSE_NB["formula"], data)


def _lme4_limits(fixture: dict) -> pd.DataFrame:
    return pd.DataFrame({"lower": fixture["lower"], "upper": fixture["upper"]}, index=fixture["names"])


def test_profile_intervals_match_lme4():
    model = _cbpp()
    assert model.confint(method="wald").index.tolist() == CBPP["names"]  # no .sigma row
    ours = model.confint()  # lme4's default method: the profile
    np.testing.assert_allclose(ours.to_numpy(), _lme4_limits(CBPP).to_numpy(), rtol=1e-5)


def test_poisson_profile_intervals_match_lme4():
    """grouseticks, three nested intercepts: LOCATION's sd (.sig03) reaches its bound 0 at the lower
    limit; the intercept's lower limit is near 0 (compared absolutely: lme4's trace points there are
    ~3e-5 off in zeta, its limit ~5e-6)."""
    model = _grouseticks()
    parm = [".sig03", "(Intercept)"]  # (each profile takes seconds)
    ours = model.confint(parm=parm).to_numpy()
    expected = _lme4_limits(GROUSE).loc[parm].to_numpy()
    near_zero = np.abs(expected) < 0.1
    np.testing.assert_allclose(ours[~near_zero], expected[~near_zero], rtol=1e-5)
    np.testing.assert_allclose(ours[near_zero], expected[near_zero], atol=1e-5)


def _lme4_spline_limits(values: np.ndarray, zetas: np.ndarray) -> np.ndarray:
    """lme4's ``confint.thpr``: the inverse of the natural cubic spline of zeta through a trace
    (``backSpline(interpSpline(...))``: cubic Hermite through (zeta, value), slopes 1 / the spline's)
    at zeta = -+1.96."""
    forward = interpolate.CubicSpline(values, zetas, bc_type="natural")
    return interpolate.CubicHermiteSpline(zetas, values, 1 / forward(values, 1))(LIMITS)


def test_poisson_profile_across_a_kink_is_lme4s_profile():
    """.sig02's upper limit: LOCATION's sd (.sig03) reaches 0 inside .sig02's trace, a kink of the
    profile, and lme4's spline through the trace misses the limit by 2e-4 there.  The profile itself is
    lme4's: lme4's spline through it at lme4's trace points gives lme4's limits; the limit here solves
    zeta = 1.96 exactly."""
    profile = LikelihoodProfile(_grouseticks())
    index = GROUSE["names"].index(".sig02")
    trace = GROUSE["trace_sig02"]
    values, lme4_zetas = np.asarray(trace["sig02"]), np.asarray(trace["zeta"])
    expected = [GROUSE["lower"][index], GROUSE["upper"][index]]
    np.testing.assert_allclose(_lme4_spline_limits(values, lme4_zetas), expected, rtol=1e-9)
    zetas = np.array([profile.point(index, value)[0] for value in values])
    np.testing.assert_allclose(
        zetas, lme4_zetas, atol=2e-3
    )  # lme4's points, found to its optimizer's tolerance
    np.testing.assert_allclose(_lme4_spline_limits(values, zetas), expected, rtol=1e-5)
    upper = profile.limits(index)[1]
    at_upper = profile.point(index, upper)
    np.testing.assert_allclose(at_upper[0], LIMITS[1], atol=1e-6)
    assert at_upper[1 + GROUSE["names"].index(".sig03")] < 1e-6  # past the kink: LOCATION's sd is 0
    assert min(trace["sig03"]) == 0.0 < trace["sig03"][0]
    assert abs(upper / expected[1] - 1) < 3e-4


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


def test_negative_binomial_profile_holds_theta_as_lme4():
    """lme4 profiles a glmer.nb fit at its estimated theta, on a devfun whose PIRLS stops early: there
    it is 2.7e-3 above the fit's -2 logLik at the estimates and ragged by a few 1e-3, so its limits are
    off by up to ~6e-4 of the interval's width.  The profile here is of the exact Laplace deviance the
    fit minimized: zeta is 0 at the estimates and -+1.96 at the limits."""
    model = _grouseticks("negative_binomial")
    np.testing.assert_allclose(model.nb_theta, GROUSE_NB["nb_theta"], rtol=2e-5)
    parm = [".sig01"]  # the farthest from lme4's (each profile takes seconds)
    profile = LikelihoodProfile(model)
    assert profile.names() == GROUSE_NB["names"]  # no rows for sigma or the negative binomial's theta
    np.testing.assert_allclose(profile.base, -2 * model.loglik, rtol=1e-12)
    indices = [GROUSE_NB["names"].index(name) for name in parm]
    ours = profile.limits_table(indices)
    expected = _lme4_limits(GROUSE_NB).loc[parm].to_numpy()
    width = (expected[:, 1] - expected[:, 0])[:, None]
    assert np.all(np.abs(ours - expected) <= 1e-3 * width)
    zetas = [profile.point(indices[0], value)[0] for value in ours[0]]
    np.testing.assert_allclose(zetas, LIMITS, atol=1e-6)
    assert model.nb_theta == model.family.theta  # held: the fit is unchanged
