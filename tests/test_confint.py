"""Wald and profile confidence intervals and likelihood profiles against lme4 1.1-31.

Fixtures: tests/fixtures/inference/<model>.json (tools/reference_inference.R): ``confint_names`` (old
and new parameter names), ``confint_wald``, and for the models profiled there ``confint_profile``
(lme4's ``profile()`` traces and ``confint()`` of them).
"""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import reference_models as models
from scipy import stats
from test_inference import AT_LME4_THETA, MODELS, fitted, reference

import mixedmodels as mm
from mixedmodels.inference.confint import percent_labels
from mixedmodels.inference.parameters import model_parameters, sdcor_to_theta
from mixedmodels.inference.profile import LikelihoodProfile

# the inference models (among them dyestuff2_singular, Batch sd = 0 at the optimum, whose profile
# starts at a bound) and machines_us, a 3 x 3 unstructured term, whose correlations lme4's splines place
# poorly
CONFINT_MODELS = {**MODELS, **AT_LME4_THETA}
PROFILED = sorted(name for name in CONFINT_MODELS if reference(name)["confint_profile"])
AS_LME4 = [name for name in PROFILED if name != "machines_us"]  # traces and limits as lme4's


def _table(block: dict) -> pd.DataFrame:
    values = {k: [np.nan if v is None else v for v in col] for k, col in block["values"].items()}
    return pd.DataFrame(values, index=block["rownames"])[block["columns"]]


@cache
def profile_of(name: str) -> pd.DataFrame:
    return fitted(name).profile()


def test_every_profile_fixture_is_tested():
    """The issue names sleepstudy and Penicillin; every model lme4 profiled is checked."""
    assert {"sleepstudy_slope", "penicillin", "dyestuff2_singular", "machines_us"} <= set(PROFILED)
    assert len(PROFILED) == 10


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


@pytest.mark.parametrize("name", AS_LME4)
def test_profile_intervals(name):
    """Limits by root-finding on the exact profile agree with lme4's spline interpolation to 1e-3."""
    expected = _table(reference(name)["confint_profile"]["confint"])
    ours = fitted(name).confint("profile")
    assert ours.index.equals(expected.index)
    assert list(ours.columns) == list(expected.columns)
    at_bound = expected.to_numpy() == 0  # a standard deviation whose profile reaches 0 first
    assert np.array_equal(ours.to_numpy() == 0, at_bound)
    np.testing.assert_allclose(ours.to_numpy(), expected.to_numpy(), rtol=1e-3)


def _outward(values: np.ndarray, zetas: np.ndarray) -> list[np.ndarray]:
    """Positions of a trace's points on each side of the estimate, from the estimate outward."""
    center = values[np.argmin(np.abs(zetas))]
    below = np.flatnonzero(values < center)
    above = np.flatnonzero(values > center)
    return [below[np.argsort(-values[below])], above[np.argsort(values[above])]]


@pytest.mark.parametrize("name", PROFILED)
def test_profile_traces(name):
    """Our traces step like lme4's, point for point: same values, zeta and other parameters.

    From the estimate outward, each point must match lme4's (value to 1e-4, zeta to 1e-4, other
    parameters to 1e-3 of their scale: the largest value on the trace or the interval's width) until
    one differs; from there on (the next steps depend on the zetas) each of lme4's points is checked
    by our profile at lme4's value, which must reach a deviance no higher than the one at lme4's
    parameters: lme4's inner optimizer stopped short there, or its parameters are no covariance (a
    correlation of +-1 through a pivoted Cholesky factor).  A zeta may differ only beyond |zeta| = 3.
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
        lme4_zeta, lme4_focal = np.array(expected["zeta"]), np.array(expected["focal"])
        lme4_params = np.column_stack([expected["params"][n] for n in names]).astype(float)
        ours_values, ours_zeta = trace["value"].to_numpy(), trace["zeta"].to_numpy()
        ours_params = trace[names].to_numpy()
        scale = np.maximum(np.max(np.abs(lme4_params), axis=0), widths)  # widths: sd near 0 all along
        checked = 0
        for theirs_side, ours_side in zip(_outward(lme4_focal, lme4_zeta), _outward(ours_values, ours_zeta)):
            diverged = False
            for k, i in enumerate(theirs_side):
                if not diverged:
                    assert k < len(ours_side), (parameter, lme4_focal[i])
                    j = ours_side[k]
                    np.testing.assert_allclose(ours_values[j], lme4_focal[i], rtol=1e-4, atol=1e-6)
                    same_zeta = abs(ours_zeta[j] - lme4_zeta[i]) <= 1e-4
                    same_params = np.all(np.abs(ours_params[j] - lme4_params[i]) <= 1e-3 * scale)
                    if same_zeta and same_params:
                        continue
                    diverged, start = True, ours_params[j]
                at_lme4 = profile.deviance(index, lme4_params[i]) - profile.base
                ours_there = profile.point(index, lme4_focal[i], start=start)
                at_ours = profile.deviance(index, ours_there[1:]) - profile.base
                np.testing.assert_allclose(at_ours, ours_there[0] ** 2, rtol=1e-8, atol=1e-9)
                assert at_ours <= at_lme4 + 1e-9, (parameter, lme4_focal[i])
                if abs(ours_there[0] - lme4_zeta[i]) > 1e-4:
                    assert abs(lme4_zeta[i]) > 3, (parameter, lme4_focal[i])
                    if np.isfinite(at_lme4):  # else lme4's parameters are no covariance
                        np.testing.assert_allclose(at_lme4, lme4_zeta[i] ** 2, rtol=1e-6)
                        assert abs(ours_there[0]) < abs(lme4_zeta[i])
                start = ours_there[1:]
                checked += 1
            if not diverged:
                assert len(ours_side) == len(theirs_side), parameter
        assert checked <= 4, parameter  # only a few points far out differ


def test_correlation_limits_of_a_three_column_term():
    """(0 + Machine | Worker): ours are the exact crossings, lme4's spline limits are not.

    Standard deviations, sigma and fixed effects agree with lme4's limits to 1e-3; for the
    correlations, zeta at our limits is -+1.96 to 1e-6, while lme4's spline interpolation of its
    coarse trace puts them up to 0.02 away (where zeta is 1.58 to 1.99); its traces agree with our
    profile point for point (test_profile_traces).
    """
    m = fitted("machines_us")
    names = list(reference("machines_us")["confint_names"]["old"])
    expected = _table(reference("machines_us")["confint_profile"]["confint"])
    profile = LikelihoodProfile(m)
    traces = profile_of("machines_us")  # the limits from these traces are m.confint()'s (cheaper)
    ours = pd.DataFrame(
        [
            profile.limits(i, 0.95, traces.loc[traces["parameter"] == n, ["zeta"] + names].to_numpy())
            for i, n in enumerate(names)
        ],
        index=names,
        columns=expected.columns,
    )
    correlations = [".sig02", ".sig03", ".sig05"]
    others = [n for n in names if n not in correlations]
    np.testing.assert_allclose(ours.loc[others], expected.loc[others], rtol=1e-3)
    for parameter in correlations:
        zetas = [profile.point(names.index(parameter), value)[0] for value in ours.loc[parameter]]
        np.testing.assert_allclose(zetas, stats.norm.ppf([0.025, 0.975]), atol=1e-6)
    np.testing.assert_allclose(ours.loc[correlations], expected.loc[correlations], atol=0.02)


STRUCTURED_NAMES = {
    "diag": ["sd_MachineA|Worker", "sd_MachineB|Worker", "sd_MachineC|Worker"],
    "cs": ["sd_MachineA|Worker", "sd_MachineB|Worker", "sd_MachineC|Worker", "cor|Worker"],
    "ar1": ["sd|Worker", "cor|Worker"],
    "toep": [
        "sd_MachineA|Worker",
        "sd_MachineB|Worker",
        "sd_MachineC|Worker",
        "pcor_lag1|Worker",
        "pcor_lag2|Worker",
    ],
}


@pytest.mark.parametrize("structure", sorted(STRUCTURED_NAMES))
def test_structured_terms(structure):
    """Rows for a structured term's own parameters: its sds, and correlations as in varcorr."""
    m = models.fit("Machines", f"score ~ Machine + {structure}(0 + Machine | Worker)")[1]
    table = m.confint("wald", old_names=False)
    fixed = ["(Intercept)", "MachineB", "MachineC"]
    assert list(table.index) == STRUCTURED_NAMES[structure] + ["sigma"] + fixed
    assert len(m.confint("wald")) == len(m.theta) + 1 + 3
    values = pd.Series(model_parameters(m), index=table.index)
    np.testing.assert_allclose(sdcor_to_theta(m, values.to_numpy()[:-3]), m.theta, rtol=1e-12, atol=1e-14)
    varcorr = m.varcorr.set_index(["group", "var1", "var2"], drop=True)["sdcor"]
    for column in ["MachineA", "MachineB", "MachineC"]:
        sd = values.get(f"sd_{column}|Worker", values.get("sd|Worker"))
        assert varcorr[("Worker", column, np.nan)] == pytest.approx(sd, rel=1e-12)
    if "cor|Worker" in values:  # cs: every pair; ar1: neighbours
        assert varcorr[("Worker", "MachineA", "MachineB")] == pytest.approx(values["cor|Worker"], rel=1e-12)


def test_structured_term_profile_limits():
    """ar1: the profile limits of its sd and correlation are where zeta crosses -+1.96."""
    m = models.fit("Machines", "score ~ Machine + ar1(0 + Machine | Worker)")[1]
    table = m.confint(parm=["sd|Worker", "cor|Worker"], old_names=False)
    assert table.notna().all().all()
    profile = LikelihoodProfile(m)
    for index, limits in enumerate(table.to_numpy()):
        zetas = [profile.point(index, value)[0] for value in limits]
        np.testing.assert_allclose(zetas, stats.norm.ppf([0.025, 0.975]), atol=1e-6)


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
    data = models.sleepstudy_weights_offset()
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
    m = fitted("dyestuff2_singular")
    assert m.is_singular
    trace = profile_of("dyestuff2_singular").query("parameter == '.sig01'")
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
        ({"method": "wald", "parm": 17}, ValueError, "parm position 17 is out of range"),
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


# -- hard profiles (tools/reference_simulated.R: replicates of validation/calibration.py's slopes design) --
def _hard_profile(replicate: int) -> tuple[mm.LinearMixedModel, dict]:
    folder = Path(__file__).parent / "fixtures" / "simulated"
    data = pd.read_csv(folder / f"slopes_{replicate}.csv")
    return mm.lmer("y ~ t + (t | g)", data), json.loads((folder / f"slopes_{replicate}.json").read_text())


def test_profile_repairs_an_inner_local_minimum():
    """Replicate 116: at a correlation of -0.83 the inner optimization from its neighbour's parameters
    stopped above the deviance with the slope SD at 0, which every correlation allows; the profile was
    not monotone and both limits were NaN.  lme4 gives -0.903, from the same local minimum.  With the
    point optimized again from its outer neighbour, |zeta| stays below 1.96 down to -1."""
    m, expected = _hard_profile(116)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = m.confint("profile", old_names=False)
    lme4 = _table(expected["confint"])
    others = [name for name in lme4.index if name != "cor_t.(Intercept)|g"]
    np.testing.assert_allclose(ours.loc[others], lme4.loc[others], rtol=2e-4, atol=1e-7)  # lme4's splines
    assert ours.loc["cor_t.(Intercept)|g"].tolist() == [-1.0, 1.0]
    profile = LikelihoodProfile(m)
    at_zero_slope = profile.point(2, 0.0)[1:]  # the slope SD held at 0, the others optimized
    for correlation in (-0.83, -0.95, -1.0):
        at_zero_slope[1] = correlation
        assert np.sqrt(profile.deviance(1, at_zero_slope) - profile.base) < 1.44


def test_profile_starts_again_from_a_lower_deviance():
    """A fit short of its optimum (here: the ML results at theta moved by 5%; on simulated data our ML
    fits and lme4's stopped 0.0023 short, e.g. replicate 955 before the rotated-factor starts, and lme4's
    profile stopped with "profiling detected new, lower deviance").  The profile refits by ML from the
    first lower point it finds, warns, and profiles there: its limits are those of the optimum's profile."""
    m, expected = _hard_profile(955)
    ml = m.refit(reml=False)
    assert ml.deviance == pytest.approx(expected["ml_deviance"], rel=1e-9)  # lme4's tight ML optimum
    short = mm.LinearMixedModel(ml.problem, ml.theta * 1.05)
    profile = LikelihoodProfile(short)
    with pytest.warns(mm.ConvergenceWarning, match="profiling found a deviance .* below the fit's"):
        limits = profile.limits_table(list(range(6)))
    assert profile.base == pytest.approx(ml.deviance, rel=1e-7)  # a flat optimum
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the optimum's own profile finds nothing lower
        at_optimum = LikelihoodProfile(ml).limits_table(list(range(6)))
    np.testing.assert_allclose(limits, at_optimum, rtol=1e-5)  # bases 3e-6 apart on a flat optimum


def test_non_monotone_side_gives_only_its_limit_nan():
    """A side of the trace that stays non-monotone gives NaN (lme4's confint.thpr) with a warning; the
    other side's limit is kept."""
    m = fitted("penicillin")
    profile = LikelihoodProfile(m)
    trace = profile.trace(3)  # (Intercept)
    expected = profile.limits(3, trace=trace)
    below = np.flatnonzero(trace[:, 4] < profile.optimum[3])
    broken = trace.copy()
    broken[below[1], 0] = broken[below[0], 0] - 0.5  # zeta falls outward below the estimate
    with pytest.warns(RuntimeWarning, match="non-monotonic profile for \\(Intercept\\) below its estimate"):
        limits = profile.limits(3, trace=broken)
    assert np.isnan(limits[0]) and limits[1] == expected[1]


def test_profile_never_divides_by_a_zero_sigma():
    """The inner optimizer may try sigma = 0; that point is invalid (infinite deviance), not a warning."""
    profile = LikelihoodProfile(fitted("sleepstudy_slope"))
    profile.point(0, profile.optimum[0] * 1.1)  # sets up the held-sd objective
    held = profile._held_variance[0]
    free = held.pack(profile.ml.theta, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert held.deviance(free, profile.optimum[0]) == np.inf
