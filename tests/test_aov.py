"""Classical ANOVA of designed experiments (mm.aov) against R: anova(lm), car::Anova(type = 3),
aov() with Error() strata, and PROC GLM's RANDOM / TEST computed by hand (tools/reference_aov.R)."""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.cli import main
from mixedmodels.models.aov.ftests import satterthwaite_ms_df

FIXTURES = Path(__file__).parent / "fixtures" / "aov"
RTOL = 1e-6


def _oats_nitro_factor() -> pd.DataFrame:
    data = mm.datasets.load("Oats")
    data["nitroF"] = data["nitro"]  # numeric; factors=["nitroF"] makes it a factor, as R's factor(nitro)
    return data


def _machines_unbalanced() -> pd.DataFrame:
    rows = np.array([2, 3, 6, 8, 9, 12, 19, 20, 27, 33]) - 1  # R's 1-based rows
    return mm.datasets.load("Machines").drop(index=rows)


def _three_factor() -> pd.DataFrame:
    return pd.DataFrame(reference("three_factor")["data"])


#: fixture name -> (data, factors); the formula and the random terms are read from the fixture.
DESIGNS = {
    "sires": (lambda: mm.datasets.load("sires"), []),  # numeric sire: random terms are factors
    "dyestuff": (lambda: mm.datasets.load("Dyestuff"), []),
    "dyestuff2": (lambda: mm.datasets.load("Dyestuff2"), []),
    "rail": (lambda: mm.datasets.load("Rail"), []),
    "pastes": (lambda: mm.datasets.load("Pastes"), []),
    "machines": (lambda: mm.datasets.load("Machines"), []),
    "oats": (_oats_nitro_factor, ["nitroF"]),
    "oats_covariate": (lambda: mm.datasets.load("Oats"), []),
    "machines_unbalanced": (_machines_unbalanced, []),
    "three_factor": (_three_factor, []),
}
NAMES = sorted(DESIGNS)
BALANCED = [n for n in NAMES if n != "machines_unbalanced"]


@cache
def reference(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@cache
def result(name: str, ss_type: int = 3) -> mm.AovResult:
    make, factors = DESIGNS[name]
    ref = reference(name)
    return mm.aov(ref["formula"], make(), random=ref["random"], ss_type=ss_type, factors=factors)


def _table(block: dict) -> pd.DataFrame:
    return pd.DataFrame(block["values"], index=block["rownames"])[block["columns"]]


def close(actual, expected, rtol=RTOL, atol=0.0):
    np.testing.assert_allclose(np.asarray(actual, float), np.asarray(expected, float), rtol=rtol, atol=atol)


def test_every_fixture_has_a_design():
    assert sorted(p.stem for p in FIXTURES.glob("*.json")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_type1_table_matches_anova_lm(name):
    expected = _table(reference(name)["anova_type1"])
    ours = result(name).anova(1)
    assert list(ours.index) == list(expected.index)
    close(ours["Df"], expected["Df"])
    close(ours["Sum Sq"], expected["Sum Sq"])
    close(ours["Mean Sq"], expected["Mean Sq"])
    close(ours["F value"][:-1], expected["F value"][:-1])
    close(ours["Pr(>F)"][:-1], expected["Pr(>F)"][:-1], atol=1e-300)


@pytest.mark.parametrize("name", NAMES)
def test_type3_table_matches_car_anova(name):
    expected = _table(reference(name)["anova_type3"]).drop(index="(Intercept)")
    ours = result(name).table
    assert list(ours.index) == list(expected.index)
    close(ours["Df"], expected["Df"])
    close(ours["Sum Sq"], expected["Sum Sq"])
    close(ours["F value"][:-1], expected["F value"][:-1])
    close(ours["Pr(>F)"][:-1], expected["Pr(>F)"][:-1], atol=1e-300)


@pytest.mark.parametrize("ss_type", [1, 3])
@pytest.mark.parametrize("name", NAMES)
def test_expected_mean_squares(name, ss_type):
    expected = reference(name)["ems"][f"type{ss_type}"]
    table = result(name).source_table(ss_type)
    assert table.sources == expected["sources"]
    assert table.components == expected["components"]
    close(table.df, expected["df"])
    close(table.sum_sq, expected["sum_sq"])
    close(table.coefficients, expected["coefficients"], atol=1e-9)
    assert table.fixed == [tuple(q) for q in expected["q_terms"]]
    ems = result(name).expected_mean_squares(ss_type)
    assert list(ems.columns[:-2]) == [f"Var({c})" for c in expected["components"]]


@pytest.mark.parametrize("ss_type", [1, 3])
@pytest.mark.parametrize("name", NAMES)
def test_mixed_model_f_tests(name, ss_type):
    res = result(name, ss_type)
    tests = res.tests
    expected = reference(name)["tests"][f"type{ss_type}"]
    assert list(tests.index) == [row["source"] for row in expected]
    for row in expected:
        source = row["source"]
        weights = dict(zip(row["error_sources"], row["error_weights"]))
        den = res.denominators[source]
        ours = dict(zip(den.sources, den.weights))
        for key in set(weights) | set(ours):
            close(ours.get(key, 0.0), weights.get(key, 0.0), atol=1e-9)
        close(tests.loc[source, "Den Mean Sq"], row["den_mean_sq"])
        close(tests.loc[source, "Den Df"], row["den_df"])
        close(tests.loc[source, "F value"], row["f_value"])
        close(tests.loc[source, "Pr(>F)"], row["p_value"])


@pytest.mark.parametrize("name", [n for n in BALANCED if reference(n)["strata"]])
def test_tests_match_aov_error_strata(name):
    """Balanced designs: each fixed term's F test is its Error() stratum's, each stratum's residual MS is
    the mean square of the random term that defines the stratum (aov's sums of squares are sequential)."""
    res = result(name, 1)
    tests, table = res.tests, res.table
    by_variables = {frozenset(s.split(":")): s for s in table.index}
    for stratum in reference(name)["strata"]:
        expected = _table(stratum["table"])
        label = stratum["stratum"].removeprefix("Error: ")
        own = "Residuals" if label == "Within" else by_variables[frozenset(label.split(":"))]
        close(table.loc[own, "Mean Sq"], expected.loc["Residuals", "Mean Sq"])
        for source in expected.index.drop("Residuals"):
            close(tests.loc[source, "F value"], expected.loc[source, "F value"])
            close(tests.loc[source, "Pr(>F)"], expected.loc[source, "Pr(>F)"])
            assert tests.loc[source, "Error term"] == ("MS(Residuals)" if label == "Within" else f"MS({own})")


def test_synthesized_denominators_in_balanced_three_factor_design():
    tests = result("three_factor").tests
    assert tests.loc["A", "Error term"] == "MS(A:B) + MS(A:C) - MS(A:B:C)"
    assert tests.loc["B", "Error term"] == "MS(A:B) + MS(B:C) - MS(A:B:C)"
    assert tests.loc["C", "Error term"] == "MS(A:C) + MS(B:C) - MS(A:B:C)"
    assert tests.loc["A:B", "Error term"] == "MS(A:B:C)"
    df = tests.loc["A", "Den Df"]
    assert df != round(df)  # Satterthwaite's fractional df
    ms = result("three_factor").table["Mean Sq"]
    by_hand = satterthwaite_ms_df([1, 1, -1], ms[["A:B", "A:C", "A:B:C"]], [6, 4, 12])
    close(df, by_hand)


def test_unbalanced_design_type1_differs_from_type3():
    res1, res3 = result("machines_unbalanced", 1), result("machines_unbalanced", 3)
    assert not res3.balanced
    ss1, ss3 = res1.table["Sum Sq"], res3.table["Sum Sq"]
    assert abs(ss1["Machine"] / ss3["Machine"] - 1) > 1e-3
    assert abs(ss1["Machine:Worker"] / ss3["Machine:Worker"] - 1) < 1e-12  # last term: the same
    # Type III: Machine's denominator mixes MS(Machine:Worker) and MS(Residuals)
    assert res3.denominators["Machine"].sources == ("Machine:Worker", "Residuals")
    assert res3.tests.loc["Machine", "Error term"].startswith("0.9226 MS(Machine:Worker) + 0.07")
    assert "Var(Error) + 2.137 Var(Machine:Worker) + Q(Machine)" in res3.ems["Expected Mean Square"].tolist()


@pytest.mark.parametrize("ss_type", [1, 3])
@pytest.mark.parametrize("name", NAMES)
def test_method_of_moments(name, ss_type):
    expected = reference(name)["moments"][f"type{ss_type}"]
    components = result(name, ss_type).variance_components()
    assert list(components.index) == expected["component"]
    close(components["Variance"], expected["estimate"])
    close(components["ANOVA estimate"], expected["estimate"])


def _reml(name: str) -> pd.Series:
    ref = reference(name)["reml"]
    values = dict(zip(ref["component"], ref["variance"]))
    values["Error"] = values.pop("Residual")
    return pd.Series(values)


@pytest.mark.parametrize("name", [n for n in BALANCED if n != "dyestuff2"])
def test_moments_equal_reml_on_balanced_designs_with_positive_estimates(name):
    components = result(name).variance_components()
    assert result(name).balanced and not components["Negative"].any()
    close(components["Variance"], _reml(name)[components.index])


@pytest.mark.parametrize("name", NAMES)
def test_reml_choice_reports_lmer_estimates(name):
    """``negative="reml"`` is an lmer fit: its REML criterion is lme4's and its variance parameters are
    compared as tests/test_lme4_reference.py compares them (theta = sd / sigma to 1e-5 absolute, sigma to
    1e-5)."""
    res = result(name)
    components = res.variance_components("reml")
    assert components.attrs["method"] == "REML"
    close(res.reml_fit.reml_criterion, reference(name)["reml"]["reml_criterion"], rtol=1e-7)
    expected = _reml(name)[components.index]
    ours = components["Variance"]
    close(np.sqrt(ours["Error"]), np.sqrt(expected["Error"]), rtol=1e-5)
    theta, theta_ref = np.sqrt(ours / ours["Error"]), np.sqrt(expected / expected["Error"])
    close(theta, theta_ref, rtol=0, atol=1e-5 * max(1.0, theta_ref.max()))


def test_negative_estimate_is_flagged_and_handled():
    res = result("dyestuff2")
    keep = res.variance_components()
    close(keep.loc["Batch", "Variance"], reference("dyestuff2")["moments"]["type3"]["estimate"][0])
    assert keep.loc["Batch", "Variance"] < 0 and keep.loc["Batch", "Negative"]
    assert not keep.loc["Error", "Negative"]
    assert "negative" in keep.attrs["note"]
    zero = res.variance_components("zero")
    assert zero.loc["Batch", "Variance"] == 0 and zero.loc["Batch", "Negative"]
    assert zero.loc["Error", "Variance"] == keep.loc["Error", "Variance"]
    reml = res.variance_components("reml")
    assert reml.loc["Batch", "Variance"] == 0  # on the boundary, as lme4's singular fit
    close(reml.loc["Error", "Variance"], _reml("dyestuff2")["Error"], rtol=1e-5)
    assert "boundary" in reml.attrs["note"]
    assert "Batch (negative)" in str(res)
    with pytest.raises(ValueError, match="negative must be one of"):
        res.variance_components("drop")


def test_reml_note_explains_unbalanced_difference():
    note = result("machines_unbalanced").variance_components("reml").attrs["note"]
    assert "unbalanced" in note


ONE_WAY = ["dyestuff", "dyestuff2", "rail", "sires"]


@pytest.mark.parametrize("name", ONE_WAY)
def test_one_way_random_model(name):
    expected = reference(name)["one_way"]
    one = result(name).one_way()
    assert (one.groups, one.n_per_group, one.nobs) == (
        expected["groups"],
        expected["n_per_group"],
        expected["nobs"],
    )
    close(one.mean, expected["mean"]["estimate"])
    close(one.mean_se, expected["mean"]["se"])
    close(one.mean_interval, [expected["mean"]["lower"], expected["mean"]["upper"]])
    close(one.error_variance, expected["error_variance"]["estimate"])
    close(one.error_interval, [expected["error_variance"]["lower"], expected["error_variance"]["upper"]])
    close(one.group_variance, expected["group_variance"]["estimate"])
    close(one.group_df, expected["group_variance"]["df"])
    if one.group_variance > 0:
        close(one.group_interval, [expected["group_variance"]["lower"], expected["group_variance"]["upper"]])
    else:
        assert np.isnan(one.group_interval).all()
    close(one.icc, expected["icc"]["estimate"])
    close(one.f_value, expected["icc"]["f_value"])
    close(one.icc_interval, [expected["icc"]["lower"], expected["icc"]["upper"]])
    close(one.cv, expected["cv"])
    close(one.shares, [expected["share"]["group"], expected["share"]["error"]])
    assert len(one.table) == 7


def test_sires_seed_printed_digits():
    """Seed 000 (PROC GLM / PROC MIXED output for the sires), to the digits it prints."""
    res = mm.aov("bw ~ sire", mm.datasets.load("sires"), random=["sire"])
    table, tests, one = res.table, res.tests, res.one_way()

    def printed(value, shown, decimals):
        assert round(float(value), decimals) == shown

    printed(table.loc["sire", "Sum Sq"], 5591.15, 2)
    printed(table.loc["Residuals", "Sum Sq"], 16232.75, 2)
    printed(table.loc["sire", "Mean Sq"], 1397.7875, 4)
    printed(table.loc["Residuals", "Mean Sq"], 463.79286, 5)
    printed(tests.loc["sire", "F value"], 3.01, 2)
    printed(tests.loc["sire", "Pr(>F)"], 0.0309, 4)
    assert tests.loc["sire", "Error term"] == "MS(Residuals)"
    assert res.ems.loc["sire", "Expected Mean Square"] == "Var(Error) + 8 Var(sire)"
    assert res.ems.loc["Residuals", "Expected Mean Square"] == "Var(Error)"
    printed(one.mean, 82.55, 2)
    printed(one.mean_interval[0], 66.1373, 4)
    printed(one.mean_interval[1], 98.9627, 4)
    printed(one.error_variance, 463.79, 2)
    printed(one.error_interval[0], 305.11, 2)
    printed(one.error_interval[1], 789.17, 2)
    printed(one.group_variance, 116.75, 2)
    printed(one.group_df, 1.76, 2)
    printed(one.group_interval[0], 29.97, 2)
    printed(one.group_interval[1], 7051.37, 2)
    printed(one.icc, 0.20, 2)
    printed(one.icc_interval[0], -0.01, 2)
    printed(one.icc_interval[1], 0.75, 2)
    printed(one.cv, 0.29, 2)
    text = str(res)
    for piece in (
        "5591.150",
        "16232.750",
        "1397.7875",
        "Var(Error) + 8 Var(sire)",
        "66.1373",
        "98.9627",
        "7051.37",
    ):
        assert piece in text


def test_report_sections_and_synthesized_denominator_text():
    text = str(result("three_factor").summary())
    for piece in (
        "Analysis of Variance Table (Type III sums of squares)",
        "Expected Mean Squares (Type III)",
        "Var(Error) + 2 Var(A:B:C) + 8 Var(A:C) + 6 Var(A:B) + Q(A)",
        "MS(A:B) + MS(A:C) - MS(A:B:C)",
        "Variance components (ANOVA estimates)",
    ):
        assert piece in text
    assert "assumes zero: Variety:nitroF" in str(result("oats").summary())


def test_random_terms_written_in_other_orders_and_sas_nesting():
    data = mm.datasets.load("Pastes")
    a = mm.aov("strength ~ batch/cask", data, random=["batch", "cask(batch)"])
    b = mm.aov("strength ~ batch/cask", data, random=["batch", "cask:batch"])
    assert a.random == b.random == ["batch", "batch:cask"]
    machines = mm.aov(
        "score ~ Machine * Worker", mm.datasets.load("Machines"), random=["Worker", "Worker*Machine"]
    )
    assert machines.random == ["Worker", "Machine:Worker"]


def test_fixed_model_has_no_random_components():
    res = mm.aov("score ~ Machine * Worker", mm.datasets.load("Machines"))
    close(res.tests["F value"], res.table["F value"][:-1])
    assert res.ems.loc["Machine", "Expected Mean Square"] == "Var(Error) + Q(Machine,Machine:Worker)"
    with pytest.raises(ValueError, match="no random terms"):
        res.variance_components()


def test_bad_input_messages():
    machines = mm.datasets.load("Machines")
    with pytest.raises(mm.FormulaError, match="not a term of the formula"):
        mm.aov("score ~ Machine", machines, random=["Worker"])
    with pytest.raises(mm.FormulaError, match="random="):
        mm.aov("score ~ Machine + (1 | Worker)", machines)
    with pytest.raises(mm.FormulaError, match="no intercept"):
        mm.aov("score ~ 0 + Machine", machines)
    with pytest.raises(ValueError, match="ss_type must be one of 1, 3, not"):
        mm.aov("score ~ Machine", machines, ss_type=2)
    with pytest.raises(ValueError, match="not variables"):
        mm.aov("score ~ Machine", machines, factors=["nitro"])
    with pytest.raises(ValueError, match="'score' is the response"):
        mm.aov("score ~ Machine", machines, factors=["score"])
    empty_cell = machines[~((machines["Worker"] == "1") & (machines["Machine"] == "A"))]
    with pytest.raises(ValueError, match="aliased"):
        mm.aov("score ~ Machine * Worker", empty_cell, random=["Worker", "Machine:Worker"])
    res = mm.aov("score ~ Machine * Worker", empty_cell, random=["Worker", "Machine:Worker"], ss_type=1)
    assert res.table.loc["Machine:Worker", "Df"] == 9 and not res.balanced
    with pytest.raises(ValueError, match="one-way random model"):
        result("machines").one_way()
    unbalanced = mm.datasets.load("Dyestuff").iloc[1:]
    with pytest.raises(ValueError, match="equal group sizes"):
        mm.aov("Yield ~ Batch", unbalanced, random="Batch").one_way()


def test_extreme_values_are_the_shared_checks():
    """aov's sparse model matrix gets the model frame's finiteness and magnitude checks."""
    orthodont = mm.datasets.load("Orthodont")
    infinite = orthodont.assign(age=np.where(orthodont["age"] == 8, np.inf, orthodont["age"]))
    with pytest.raises(
        ValueError, match=r"model matrix has infinite or NaN values in column 'age' \(27 of 108"
    ):
        mm.aov("distance ~ Sex + age", infinite)
    huge = orthodont.assign(age=orthodont["age"] * 1e150)
    with pytest.raises(
        ValueError, match=r"model matrix has values over 1e\+150 in magnitude.* in column 'age'"
    ):
        mm.aov("distance ~ Sex + age", huge)
    with pytest.raises(ValueError, match=r"response 'distance' has infinite or NaN values \(1 of 108"):
        mm.aov(
            "distance ~ Sex",
            orthodont.assign(distance=orthodont["distance"].where(orthodont.index > 0, np.inf)),
        )


def test_cli_aov(capsys):
    assert main(["aov", "bw ~ sire", "--random", "sire", "--data", "sires"]) == 0
    out = capsys.readouterr().out
    assert "Var(Error) + 8 Var(sire)" in out and "0.03087" in out and "29.9707" in out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.ModelMessage)
        assert (
            main(
                [
                    "aov",
                    "Yield ~ Batch",
                    "--random",
                    "Batch",
                    "--data",
                    "Dyestuff2",
                    "--negative",
                    "reml",
                    "--json",
                ]
            )
            == 0
        )
    payload = json.loads(capsys.readouterr().out)
    assert payload["variance_components"]["method"] == "REML"
    batch = payload["variance_components"]["table"][0]
    assert batch["Source"] == "Batch" and batch["Negative"] is True and batch["Variance"] == 0
    assert payload["one_way"][0]["Source"] == "mean"
    assert main(["aov", "score ~ Machine", "--random", "Worker", "--data", "Machines"]) == 2
    assert "not a term of the formula" in capsys.readouterr().err


def test_type1_random_source_with_fixed_effects_is_noted():
    res = mm.aov(
        "score ~ Worker * Machine", _machines_unbalanced(), random=["Worker", "Worker:Machine"], ss_type=1
    )
    assert res.ems.loc["Worker", "Q"] == "Machine"
    assert res.tests.loc["Worker", "Note"] == "assumes zero: Machine"
    assert "E[MS(Worker)] contains Q(Machine)" in res.variance_components().attrs["note"]


def test_missing_values_are_dropped_and_counted():
    data = mm.datasets.load("Machines")
    data.loc[[0, 5], "score"] = np.nan
    res = mm.aov("score ~ Machine * Worker", data, random=["Worker", "Machine:Worker"])
    assert res.nobs == 52 and res.design.n_missing == 2 and not res.balanced
    assert "(2 observations deleted due to missingness)" in str(res)
    complete = mm.aov("score ~ Machine * Worker", data.dropna(), random=["Worker", "Machine:Worker"])
    close(res.table["Sum Sq"], complete.table["Sum Sq"], rtol=1e-12)
