"""Likelihood-profile confidence intervals of gls and lme fits (which nlme does not give).

* lme fits without residual structures are lmer fits: their profile intervals must be lme4's
  (tests/fixtures/inference/<model>.json, ``confint_profile``; tools/reference_inference.R) at the
  tolerance of lmer's own test (test_confint.test_profile_intervals).
* With a correlation structure or a variance function, the limits are those computed independently
  in R by tools/reference_profile_nlme.R (tests/fixtures/nlme_profile/<model>.json): each parameter
  held (a structure with ``fixed = TRUE``, a fixed effect by refitting ``y - b x_j``, sigma by
  ``glsControl(sigma=)``), the rest maximized, the limits by uniroot.  As lme4's, the profile is of
  the ML deviance, so the REML fits here are profiled through their ML refits.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import reference_models as models
from nlme_models import ovary
from test_inference import reference

import mixedmodels as mm

FIXTURES = Path(__file__).parent / "fixtures" / "nlme_profile"

# lmer models of the inference fixtures that lme4 profiled, as lme calls: (data, fixed, random)
AS_LME = {
    "dyestuff": ("Dyestuff", "Yield ~ 1", "~ 1 | Batch"),
    "dyestuff2_singular": ("Dyestuff2", "Yield ~ 1", "~ 1 | Batch"),
    "sleepstudy_slope": ("sleepstudy", "Reaction ~ Days", "~ Days | Subject"),
    "orthodont_intercept": ("Orthodont", "distance ~ age * Sex", "~ 1 | Subject"),
    "pastes": ("Pastes", "strength ~ 1", "~ 1 | batch/cask"),
    "sires": (models.sires, "bw ~ 1", "~ 1 | sire"),
}


def _table(block: dict) -> pd.DataFrame:
    values = {k: [np.nan if v is None else v for v in col] for k, col in block["values"].items()}
    return pd.DataFrame(values, index=block["rownames"])[block["columns"]]


def _data(source):
    return source() if callable(source) else mm.datasets.load(source)


@pytest.mark.parametrize("name", sorted(AS_LME))
def test_lme_profile_intervals_are_lme4s(name):
    """An lme fit without structures is the lmer fit: its profile limits are lme4's, named as lme4's."""
    source, fixed, random = AS_LME[name]
    expected = _table(reference(name)["confint_profile"]["confint"])
    ours = mm.lme(fixed, _data(source), random=random).confint()
    assert ours.index.equals(expected.index)
    assert list(ours.columns) == list(expected.columns)
    assert np.array_equal(ours.to_numpy() == 0, expected.to_numpy() == 0)
    np.testing.assert_allclose(ours.to_numpy(), expected.to_numpy(), rtol=1e-3)


@cache
def _fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


NLME_MODELS = {
    "gls_ovary_ar1": lambda: mm.gls("follicles ~ sinT + cosT", ovary(), correlation=mm.CorAR1("~ 1 | Mare")),
    "gls_orthodont_power": lambda: mm.gls(
        "distance ~ age * Sex", mm.datasets.load("Orthodont"), weights=mm.VarPower("~ age")
    ),
    "lme_ovary_ar1": lambda: mm.lme(
        "follicles ~ sinT + cosT", ovary(), random="~ 1 | Mare", correlation=mm.CorAR1()
    ),
}


# every model whose R fixture is committed (tools/reference_profile_nlme.R writes one per model)
FIXTURED = sorted(path.stem for path in FIXTURES.glob("*.json"))


def test_fixtures_are_of_known_models():
    assert FIXTURED and set(FIXTURED) <= set(NLME_MODELS)


@pytest.mark.parametrize("name", FIXTURED)
def test_profile_limits_match_r(name):
    """Limits of the structure's parameter (on nlme's scale), sigma and fixed effects, from the REML
    fit's ML refit, as R's held-parameter refits and uniroot give them."""
    expected = _fixture(name)
    m = NLME_MODELS[name]()
    assert m.reml
    wanted = list(expected["limits"])
    ours = m.confint(parm=wanted, old_names=False)
    assert list(ours.index) == wanted
    limits = np.array([expected["limits"][n] for n in wanted])
    np.testing.assert_allclose(ours.to_numpy(), limits, rtol=1e-6)


@pytest.mark.parametrize("name", FIXTURED)
def test_profile_is_of_the_ml_fit(name):
    """The profile's optimum is R's ML optimum; zeta is 0 there and the trace is on nlme's scale."""
    expected = _fixture(name)
    m = NLME_MODELS[name]()
    ml_estimates = expected["estimates"]
    structure = next(n for n in ml_estimates if n.startswith(("corStruct", "varStruct")))
    table = m.profile(parm=structure, old_names=False)
    at_zero = table.loc[table["zeta"] == 0].iloc[0]
    for parameter, value in ml_estimates.items():
        np.testing.assert_allclose(at_zero[parameter], value, rtol=1e-5)
    lower, upper = expected["limits"][structure]
    assert table["value"].min() < lower and table["value"].max() > upper  # past both limits


def test_parameter_names_and_wald():
    """Rows: sd/cor (lme4's names), the structure's, sigma, fixed effects; Wald: fixed effects only."""
    m = NLME_MODELS["lme_ovary_ar1"]()
    wald = m.confint("wald")
    assert list(wald.index) == [".sig01", "corStruct.Phi", ".sigma", "(Intercept)", "sinT", "cosT"]
    assert wald.iloc[:3].isna().all().all() and wald.iloc[3:].notna().all().all()
    new = m.confint("wald", old_names=False)
    assert list(new.index[:3]) == ["sd_(Intercept)|Mare", "corStruct.Phi", "sigma"]


def test_profiles_refused_with_a_clear_error():
    ovary_data = ovary()
    fitted_power = mm.gls("follicles ~ sinT + cosT", ovary_data, weights=mm.VarPower())
    with pytest.raises(ValueError, match="variance function of a covariate"):
        fitted_power.confint()
    symm = mm.gls("distance ~ age", mm.datasets.load("Orthodont"), correlation=mm.CorSymm("~ 1 | Subject"))
    with pytest.raises(ValueError, match="CorSymm's parameters are not profiled"):
        symm.profile()
    with pytest.raises(ValueError, match="method must be one of 'profile', 'wald', 'boot'"):
        NLME_MODELS["gls_ovary_ar1"]().confint("nope")
