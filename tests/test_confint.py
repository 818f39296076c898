"""Wald and profile confidence intervals and likelihood profiles against lme4 1.1-31.

Fixtures: tests/fixtures/inference/<model>.json (tools/reference_inference.R): ``confint_names`` (old
and new parameter names), ``confint_wald``, and for the models profiled there ``confint_profile``
(lme4's ``profile()`` traces and ``confint()`` of them).
"""

from __future__ import annotations

import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest
import reference_models as models
from scipy import stats
from test_inference import MODELS, reference

import mixedmodels as mm
from mixedmodels.inference.confint import percent_labels
from mixedmodels.inference.parameters import model_parameters
from mixedmodels.inference.profile import LikelihoodProfile

# the inference models, and a singular fit (Batch sd = 0 at the optimum) whose profile starts at a bound
CONFINT_MODELS = {**MODELS, "dyestuff2": ("Dyestuff2", "Yield ~ 1 + (1 | Batch)")}
PROFILED = sorted(name for name in CONFINT_MODELS if reference(name)["confint_profile"])


def fitted(name: str) -> mm.LinearMixedModel:
    return models.fit(*CONFINT_MODELS[name])[1]


def _table(block: dict) -> pd.DataFrame:
    values = {k: [np.nan if v is None else v for v in col] for k, col in block["values"].items()}
    return pd.DataFrame(values, index=block["rownames"])[block["columns"]]


@cache
def profile_of(name: str) -> pd.DataFrame:
    return fitted(name).profile()


def test_every_profile_fixture_is_tested():
    """The issue names sleepstudy and Penicillin; every model lme4 profiled is checked."""
    assert {"sleepstudy_slope", "penicillin", "dyestuff2"} <= set(PROFILED)
    assert len(PROFILED) == 9


@pytest.mark.parametrize("name", sorted(CONFINT_MODELS))
def test_parameter_names(name):
    expected = reference(name)["confint_names"]
    m = fitted(name)
    assert list(m.confint("wald").index) == expected["old"]
    assert list(m.confint("Wald", old_names=False).index) == expected["new"]


@pytest.mark.parametrize("name", sorted(CONFINT_MODELS))
def test_wald_intervals(name):
    expected = _table(reference(name)["confint_wald"])
    ours = fitted(name).confint("wald")
    assert list(ours.columns) == ["2.5 %", "97.5 %"]
    assert ours.index.equals(expected.index)
    pd.testing.assert_frame_equal(ours.isna(), expected.isna())  # NaN for the variance parameters
    # relative to the limit, or to the interval's width for a limit near 0
    width = (expected.iloc[:, 1] - expected.iloc[:, 0]).to_numpy()[:, None]
    fixed = np.isfinite(width[:, 0])
    difference = np.abs(ours.to_numpy()[fixed] - expected.to_numpy()[fixed])
    assert np.all(difference <= 1e-6 * (np.abs(expected.to_numpy()[fixed]) + width[fixed]))


@pytest.mark.parametrize("name", PROFILED)
def test_profile_intervals(name):
    """Limits by root-finding on the exact profile agree with lme4's spline interpolation to 1e-3."""
    expected = _table(reference(name)["confint_profile"]["confint"])
    ours = fitted(name).confint("profile")
    assert ours.index.equals(expected.index)
    assert list(ours.columns) == list(expected.columns)
    at_bound = expected.to_numpy() == 0  # a standard deviation whose profile reaches 0 first
    assert np.array_equal(ours.to_numpy() == 0, at_bound)
    np.testing.assert_allclose(ours.to_numpy(), expected.to_numpy(), rtol=1e-3)


@pytest.mark.parametrize("name", PROFILED)
def test_profile_traces(name):
    """Our traces step like lme4's, point for point: same values, zeta and other parameters.

    Where a point differs (zeta by more than 1e-4, or another parameter by more than 1e-3 of its
    scale: its largest value on the trace or the width of its interval), our profile at lme4's value
    of the parameter must reach a deviance no higher than the one at lme4's parameters, evaluated
    here: lme4's inner optimizer stopped short there (its fixed-effect profiles run the optimizer
    with default tolerances).
    """
    m = fitted(name)
    ours = profile_of(name)
    names = list(reference(name)["confint_names"]["old"])
    profile = LikelihoodProfile(m)
    lme4_limits = _table(reference(name)["confint_profile"]["confint"])
    widths = (lme4_limits.iloc[:, 1] - lme4_limits.iloc[:, 0]).to_numpy()
    for parameter, expected in reference(name)["confint_profile"]["profile"].items():
        index = names.index(parameter)
        trace = ours[ours["parameter"] == parameter]
        assert list(trace.columns) == ["parameter", "value", "zeta"] + names
        assert len(trace) == len(expected["zeta"]), parameter
        np.testing.assert_allclose(trace["value"], expected["focal"], rtol=1e-4, atol=1e-6)
        lme4_zeta = np.array(expected["zeta"])
        lme4_params = np.column_stack([expected["params"][n] for n in names]).astype(float)
        ours_zeta, ours_params = trace["zeta"].to_numpy(), trace[names].to_numpy()
        scale = np.maximum(np.max(np.abs(lme4_params), axis=0), widths)  # widths: sd near 0 all along
        zeta_differs = np.abs(ours_zeta - lme4_zeta) > 1e-4
        params_differ = np.any(np.abs(ours_params - lme4_params) > 1e-3 * scale, axis=1)
        assert zeta_differs.sum() <= 1 and params_differ.sum() <= 2, parameter
        for i in np.flatnonzero(zeta_differs | params_differ):
            at_lme4 = profile.deviance(index, lme4_params[i]) - profile.base
            ours_there = profile.point(index, lme4_params[i, index], start=ours_params[i])
            at_ours = profile.deviance(index, ours_there[1:]) - profile.base
            np.testing.assert_allclose(at_ours, ours_there[0] ** 2, rtol=1e-8, atol=1e-9)
            assert at_ours <= at_lme4 + 1e-9, (parameter, i)
            if zeta_differs[i]:  # a real difference only far out in the tails
                np.testing.assert_allclose(at_lme4, lme4_zeta[i] ** 2, rtol=1e-6)
                assert abs(lme4_zeta[i]) > 3 and abs(ours_zeta[i]) < abs(lme4_zeta[i]), (parameter, i)


def test_profile_is_of_the_ml_deviance():
    """As lme4's profile.merMod (devfun2 calls refitML): zeta = 0 at the ML estimates of a REML fit."""
    m = fitted("sleepstudy_slope")
    ml = m.refit(reml=False)
    table = profile_of("sleepstudy_slope")
    names = list(m.confint("wald").index)
    at_zero = table.loc[table["zeta"] == 0, names]
    assert len(at_zero) == len(names)  # one row per parameter
    np.testing.assert_allclose(at_zero.to_numpy(), np.tile(model_parameters(ml), (len(names), 1)), rtol=1e-12)
    assert LikelihoodProfile(m).base == ml.deviance
    assert not np.allclose(model_parameters(ml), model_parameters(m), rtol=1e-3)


def test_limits_solve_zeta_at_other_levels():
    """At any level the limits are where the exact profile crosses qnorm((1 -+ level) / 2)."""
    m = fitted("penicillin")
    table = m.confint(level=0.8, parm=["sd_(Intercept)|sample", "(Intercept)"], old_names=False)
    assert list(table.columns) == ["10 %", "90 %"]
    profile = LikelihoodProfile(m)
    for row, index in zip(table.to_numpy(), [1, 3]):
        zetas = [profile.point(index, value)[0] for value in row]
        np.testing.assert_allclose(zetas, stats.norm.ppf([0.1, 0.9]), atol=1e-7)


def test_fixed_effect_profile_with_weights_and_offset():
    """Holding beta_j = b by updating the [X y] blocks equals an ML fit with offset b x_j, without x_j."""
    data = models.sleepstudy_weights()
    data["off"] = 2.5 * data["Days"]
    m = mm.lmer("Reaction ~ Days + (Days | Subject)", data, weights="w", offset="off")
    profile = LikelihoodProfile(m)
    b = 12.0
    row = profile.point(5, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.ConvergenceWarning)
        held = mm.lmer(
            "Reaction ~ 1 + (Days | Subject)",
            data,
            reml=False,
            weights="w",
            offset=data["off"] + b * data["Days"],
        )
    np.testing.assert_allclose(row[0] ** 2, held.deviance - profile.base, rtol=1e-6)
    np.testing.assert_allclose(row[-2], held.fixef["(Intercept)"], rtol=1e-6)
    assert row[-1] == b


def test_singular_fit_profile_starts_at_the_bound():
    """Dyestuff2: sd = 0 at the optimum; lme4 steps up from 0.001 and has no lower side."""
    m = fitted("dyestuff2")
    assert m.is_singular
    trace = profile_of("dyestuff2").query("parameter == '.sig01'")
    assert trace["value"].iloc[0] == 0 and trace["value"].iloc[1] == 0.001
    assert (trace["zeta"] >= 0).all()


def test_singular_direction_and_bounds():
    """Pastes: the profile of the batch sd reaches 0 before zeta = -1.96, so the lower limit is 0."""
    table = profile_of("pastes")
    sig02 = table[table["parameter"] == ".sig02"]
    assert sig02["value"].min() == 0.0
    assert sig02["zeta"].min() > stats.norm.ppf(0.025)
    assert (np.diff(sig02["zeta"]) > 0).all()


def test_parameter_selection():
    m = fitted("sleepstudy_slope")
    assert list(m.confint("wald", parm="beta_").index) == ["(Intercept)", "Days"]
    assert list(m.confint("wald", parm="theta_").index) == [".sig01", ".sig02", ".sig03", ".sigma"]
    assert list(m.confint("wald", parm=[5, ".sigma"]).index) == ["Days", ".sigma"]
    assert list(m.confint("wald", parm="sigma", old_names=False).index) == ["sigma"]
    profile = m.profile(parm=["Days"])
    assert set(profile["parameter"]) == {"Days"}


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"method": "bogus"}, ValueError, "method"),
        ({"method": "wald", "level": 1.5}, ValueError, "level"),
        ({"method": "wald", "parm": "nope"}, ValueError, "unknown parameter 'nope'"),
        ({"method": "wald", "parm": "sigma"}, ValueError, "unknown parameter"),  # old names by default
        ({"method": "wald", "parm": 17}, IndexError, "out of range"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        fitted("dyestuff").confint(**kwargs)


@pytest.mark.parametrize(
    ("level", "labels"),
    [
        (0.95, ["2.5 %", "97.5 %"]),
        (0.9, ["5 %", "95 %"]),
        (0.99, ["0.5 %", "99.5 %"]),
        (0.999, ["0.05 %", "99.95 %"]),
        (0.975, ["1.25 %", "98.75 %"]),
        (0.6827, ["15.9 %", "84.1 %"]),
    ],
)
def test_percent_labels_as_r(level, labels):
    """R's format.perc(c(a, 1 - a), 3), as printed by lme4 1.1-31 (checked in R)."""
    assert percent_labels(level) == labels
