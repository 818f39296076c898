"""predict, coef, refit and simulate: agreement with lme4 1.1-31 (tools/reference_predict.R) and behaviour."""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import reference_models as models

import mixedmodels as mm

FIXTURES = Path(__file__).parent / "fixtures" / "lme4_predict"
RTOL = 1e-6


# fixture name -> (data, formula); the same models as the lme4 fixtures of the same name
MODELS = {
    "sleepstudy_slope": ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    "sleepstudy_intercept": ("sleepstudy", "Reaction ~ Days + (1 | Subject)"),
    "sleepstudy_offset": (models.sleepstudy_offset, "Reaction ~ Days + (1 | Subject) + offset(off)"),
    "penicillin": ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
    "ort7": ("Orthodont", "distance ~ age * Sex + (age | Subject)"),
    "cake": ("cake", "angle ~ recipe * temperature + (1 | recipe:replicate)"),
}


def fitted(name: str):
    return models.fit(*MODELS[name])


@cache
def reference(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def close(actual, expected, rtol=RTOL):
    """Relative rtol, with an absolute floor of rtol x the largest expected value (for values near 0)."""
    expected = np.asarray(expected, dtype=float)
    atol = rtol * float(np.max(np.abs(expected))) if expected.size else 0.0
    np.testing.assert_allclose(np.asarray(actual, dtype=float), expected, rtol=rtol, atol=atol)


def fixture_names() -> list[str]:
    return sorted(p.stem for p in FIXTURES.glob("*.json"))


def prediction_cases():
    for name in fixture_names():
        for i, case in enumerate(reference(name)["predictions"]):
            where = "newdata" if case["newdata"] else "data"
            yield pytest.param(name, i, id=f"{name}-{i}-{where}-{case['re_form']}")


# -- agreement with lme4 ------------------------------------------------------------------------------------


def test_every_fixture_has_a_model():
    assert set(fixture_names()) <= set(MODELS)


@pytest.mark.parametrize("name", fixture_names())
def test_fixture_is_our_model(name):
    """The fit behind the predictions agrees with R's, so prediction differences are predict's own."""
    _, m = fitted(name)
    ref = reference(name)
    assert m.frame.formula.text == ref["formula"]
    assert list(m.fixef.index) == ref["fixef"]["names"]
    close(m.fixef, ref["fixef"]["values"])
    np.testing.assert_allclose(m.theta, ref["theta"], rtol=1e-5)


@pytest.mark.parametrize(("name", "i"), list(prediction_cases()))
def test_predictions_match_lme4(name, i):
    _, m = fitted(name)
    ref = reference(name)
    case = ref["predictions"][i]
    newdata = pd.DataFrame(ref["newdata"]) if case["newdata"] else None
    ours = m.predict(newdata, re_form=case["re_form"], allow_new_levels=case["allow_new_levels"])
    close(ours, case["values"])


@pytest.mark.parametrize("name", [n for n in fixture_names() if reference(n)["coef"]])
def test_coef_matches_lme4(name):
    _, m = fitted(name)
    for block in reference(name)["coef"]:
        table = m.coef[block["group"]]
        assert list(table.index.astype(str)) == block["levels"]
        assert list(table.columns) == block["columns"]
        close(table, block["values"])


def test_refit_by_ml_reproduces_lme4_ml_fit():
    """REML fit refitted by ML == lme4's lmer(..., REML = FALSE) (fixture of test_lme4_reference)."""
    ref = json.loads((FIXTURES.parent / "lme4" / "sleepstudy_slope_ml.json").read_text())
    _, m = fitted("sleepstudy_slope")
    ml = m.refit(reml=False)
    assert m.reml and not ml.reml
    assert list(ml.fixef.index) == ref["fixef"]["names"]
    close(ml.fixef, ref["fixef"]["values"])
    np.testing.assert_allclose(ml.theta, ref["theta"], rtol=1e-5)
    np.testing.assert_allclose(ml.loglik, ref["loglik"], rtol=1e-9)
    np.testing.assert_allclose(ml.sigma, ref["sigma"], rtol=1e-6)


# -- predict behaviour ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_predict_without_newdata_is_fitted(name):
    _, m = fitted(name)
    pd.testing.assert_series_equal(m.predict(), m.fitted, check_names=False)


@pytest.mark.parametrize("name", ["sleepstudy_slope", "sleepstudy_offset"])
def test_population_prediction_is_x_beta_plus_offset(name):
    data, m = fitted(name)
    beta = m.fixef
    expected = beta["(Intercept)"] + beta["Days"] * data["Days"] + data.get("off", 0.0)
    np.testing.assert_allclose(m.predict(re_form="~0"), expected, rtol=1e-12)
    newdata = data.iloc[::7]
    np.testing.assert_allclose(m.predict(newdata, re_form="~0"), expected.iloc[::7], rtol=1e-12)


def test_unseen_level_without_allow_new_levels_names_factor_and_level():
    _, m = fitted("sleepstudy_slope")
    newdata = pd.DataFrame({"Subject": ["308", "999"], "Days": [1.0, 2.0]})
    with pytest.raises(ValueError, match=r"(?s)Subject.*999"):
        m.predict(newdata)


@pytest.mark.parametrize(("column", "level"), [("recipe", "Z"), ("temperature", "999")])
def test_unseen_level_of_a_fixed_effect_factor_raises(column, level):
    _, m = fitted("cake")
    newdata = pd.DataFrame({"recipe": ["A", "B"], "replicate": ["1", "2"], "temperature": ["185", "195"]})
    newdata.loc[1, column] = level
    with pytest.raises(ValueError, match=rf"(?s){column}.*{level}"):
        m.predict(newdata, re_form="~0")


def test_unseen_level_of_an_excluded_term_is_ignored():
    """As lme4: only the random-effects terms in re_form are checked for new levels."""
    _, m = fitted("penicillin")
    newdata = pd.DataFrame({"plate": ["a", "new"], "sample": ["A", "F"]})
    ours = m.predict(newdata, re_form="~(1 | sample)")
    expected = m.fixef["(Intercept)"] + m.ranef["sample"].loc[["A", "F"], "(Intercept)"]
    np.testing.assert_allclose(ours, expected, rtol=1e-12)
    with pytest.raises(ValueError, match=r"(?s)plate.*new"):
        m.predict(newdata, re_form="~(1 | plate)")


def test_population_prediction_needs_no_grouping_columns_and_keeps_missing_rows():
    """As lme4: re_form "~0" needs only the fixed-effects columns; a missing predictor gives NaN."""
    _, m = fitted("sleepstudy_slope")
    beta = m.fixef
    ours = m.predict(pd.DataFrame({"Days": [0.0, 1.0]}), re_form="~0")
    np.testing.assert_allclose(ours, [beta.iloc[0], beta.sum()], rtol=1e-12)
    ours = m.predict(pd.DataFrame({"Subject": ["308", "308"], "Days": [0.0, np.nan]}))
    assert np.isfinite(ours.iloc[0]) and np.isnan(ours.iloc[1])


@pytest.mark.skipif(not hasattr(pd.errors, "Pandas4Warning"), reason="needs pandas >= 3")
def test_new_levels_do_not_use_deprecated_pandas_behaviour():
    _, m = fitted("sleepstudy_slope")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        m.predict(pd.DataFrame({"Subject": ["999"], "Days": [1.0]}), allow_new_levels=True)


def test_predictions_keep_newdata_index():
    _, m = fitted("sleepstudy_slope")
    newdata = pd.DataFrame(
        {"Subject": ["372", "999", "308"], "Days": [9.0, 0.0, 2.5]}, index=pd.Index([17, 3, -5], name="row")
    )
    for re_form in (None, "~0"):
        pred = m.predict(newdata, re_form=re_form, allow_new_levels=True)
        pd.testing.assert_index_equal(pred.index, newdata.index)
    pred = m.predict(newdata.set_axis(["c", "a", "b"]), allow_new_levels=True)
    assert list(pred.index) == ["c", "a", "b"]


def test_factor_given_as_subset_categorical_or_numbers_lines_up_with_fit_levels():
    """cake's ordered temperature: strings, a Categorical with fewer levels and numbers agree with R."""
    _, m = fitted("cake")
    ref = reference("cake")
    case = ref["predictions"][0]
    strings = pd.DataFrame(ref["newdata"])
    variants = {
        "categorical subset": strings.assign(temperature=pd.Categorical(strings.temperature, ordered=True)),
        "numbers": strings.assign(
            temperature=strings["temperature"].astype(int), replicate=strings["replicate"].astype(int)
        ),
    }
    for label, newdata in variants.items():
        ours = m.predict(newdata, allow_new_levels=True)
        np.testing.assert_allclose(ours, case["values"], rtol=RTOL, err_msg=label)


# -- simulate ------------------------------------------------------------------------------------------------


def test_simulate_shape_index_and_seed():
    data = mm.datasets.load("sleepstudy")
    data["Days"] = data["Days"].astype(float)
    data.loc[[2, 19, 76], "Reaction"] = np.nan  # rows dropped: the index is not 0..n-1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.ModelMessage)
        m = mm.lmer("Reaction ~ Days + (Days | Subject)", data)
    sims = m.simulate(nsim=3, seed=1)
    assert isinstance(sims, pd.DataFrame)
    assert sims.shape == (m.nobs, 3)
    pd.testing.assert_index_equal(sims.index, m.fitted.index)
    assert np.isfinite(sims.to_numpy()).all()
    pd.testing.assert_frame_equal(sims, m.simulate(nsim=3, seed=1))
    assert not np.allclose(sims, m.simulate(nsim=3, seed=2))
    assert not np.allclose(sims.iloc[:, 0], sims.iloc[:, 1])


def test_simulated_means_are_population_predictions():
    """Over nsim = 2000 draws each row's mean is X beta, within 4.5 standard errors from the model's variance.

    Var(y_i) = z_i' Sigma z_i + sigma^2 with Sigma the random-effects covariance of the fit.
    """
    _, m = fitted("sleepstudy_slope")
    nsim = 2000
    sims = m.simulate(nsim=nsim, seed=20240601)
    mean = m.predict(re_form="~0")
    vc = m.varcorr.set_index(["var1", "var2"], drop=False)
    v0, v1 = vc.loc[("(Intercept)", None), "vcov"], vc.loc[("Days", None), "vcov"]
    c01 = vc.loc[("(Intercept)", "Days"), "vcov"]
    days = m.frame.data["Days"].to_numpy()
    var = v0 + 2 * c01 * days + v1 * days**2 + m.sigma**2
    z = (sims.mean(axis=1) - mean) / np.sqrt(var / nsim)
    assert np.max(np.abs(z)) < 4.5
    # and the simulation spread is the model's: each row's variance within 15% (~4.7 standard errors)
    np.testing.assert_allclose(sims.var(axis=1, ddof=1), var, rtol=0.15)


def test_simulated_marginal_variance_of_random_intercept_model():
    """Var(y) = sigma_b^2 + sigma^2, and two days of one subject covary by sigma_b^2."""
    _, m = fitted("sleepstudy_intercept")
    sims = m.simulate(nsim=2000, seed=7)
    deviations = sims.sub(m.predict(re_form="~0"), axis=0)
    components = m.varcorr["vcov"]
    total = components.sum()
    assert np.var(deviations.to_numpy()) == pytest.approx(total, rel=0.10)
    subject = m.frame.data["Subject"].to_numpy()
    first = deviations[subject == "308"].to_numpy()
    within = np.mean([np.cov(first[a], first[b])[0, 1] for a in range(5) for b in range(a + 1, 5)])
    assert within == pytest.approx(components.iloc[0], rel=0.15)
