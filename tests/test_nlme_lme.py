"""lme against nlme 3.1-162 (fixtures from tools/reference_nlme.R): random effects, fitted values at each
level, predictions, nlme's degrees of freedom, options and errors (the checks common to gls and lme are
in test_nlme_models.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nlme_models import (
    MODELS,
    RTOL_FIT,
    RTOL_VARIANCE,
    assert_close,
    data,
    fit,
    reference,
    table,
)

import mixedmodels as mm

LME = sorted(name for name, spec in MODELS.items() if spec[1] == "lme")


@pytest.mark.parametrize("name", LME)
def test_random_effects_covariance(name):
    model, ref = fit(name), reference(name)
    ours = model.random_covariance
    assert list(ours) == list(reversed(list(ref["reStruct"])))  # nlme stores the innermost level first
    for level, block in ref["reStruct"].items():
        expected = np.array(block["values"])
        assert list(ours[level].index) == block["rownames"]
        sd = np.sqrt(np.diag(expected))
        assert_close(ours[level], expected, RTOL_VARIANCE, scale=np.outer(sd, sd))


@pytest.mark.parametrize("name", LME)
def test_fitted_and_random_effects(name):
    model, ref = fit(name), reference(name)
    fitted = table(ref["fitted"])
    ours = model.fitted_levels()
    assert list(ours.columns) == list(fitted.columns)
    assert_close(ours, fitted, RTOL_FIT)
    for level, block in ref["ranef"].items():
        expected = table(block)
        mine = model.ranef[level]
        assert list(mine.index) == list(expected.index)
        assert list(mine.columns) == list(expected.columns)
        assert_close(mine, expected, RTOL_VARIANCE, scale=expected.std(ddof=0).to_numpy())
    ngroups = dict(zip(ref["ngroups"]["names"], ref["ngroups"]["values"]))
    assert model.ngroups == ngroups


@pytest.mark.parametrize("name", LME)
def test_nlme_degrees_of_freedom(name):
    model, ref = fit(name), reference(name)
    np.testing.assert_array_equal(model.fixed_df, ref["fixDF"]["X"]["values"])


@pytest.mark.parametrize("name", sorted(n for n in LME if "predict" in reference(n)))
def test_predict_new_data(name):
    model, ref = fit(name), reference(name)
    rows = np.array(ref["newdata_rows"]) - 1
    newdata = data(name).iloc[rows]
    expected = table(ref["predict"])
    assert_close(model.predict(newdata, level=0), expected["predict.fixed"], RTOL_FIT)
    for i, level in enumerate(model.levels, start=1):
        assert_close(model.predict(newdata, level=i), expected[f"predict.{level.name}"], RTOL_FIT)


def test_predict_unseen_group_is_nan():
    model = fit("lme_orthodont_slope")
    newdata = pd.DataFrame({"age": [8.0, 10.0], "Sex": ["Male", "Female"], "Subject": ["M01", "X99"]})
    predicted = model.predict(newdata)
    assert np.isfinite(predicted.iloc[0]) and np.isnan(predicted.iloc[1])
    assert np.all(np.isfinite(model.predict(newdata, level=0)))


def test_lme_without_structures_matches_lme4():
    lme4 = json.loads((Path(__file__).parent / "fixtures" / "lme4" / "ort7.json").read_text())
    model = fit("lme_orthodont_slope")
    assert_close(-2 * model.loglik, lme4["reml_criterion"], 1e-8)
    assert_close(model.fixef, lme4["fixef"]["values"], 1e-6)


def test_lme4_bars_and_nlme_formula_agree():
    d = mm.datasets.load("Orthodont")
    a = mm.lme("distance ~ age", d, random="~ age | Subject", correlation=mm.CorAR1())
    b = mm.lme("distance ~ age", d, random="(age | Subject)", correlation=mm.CorAR1("~ 1 | Subject"))
    assert_close(a.loglik, b.loglik, 1e-10)
    assert_close(a.correlation_parameters, b.correlation_parameters, 1e-6)


def test_varcorr_layout():
    model = fit("lme_oats_nested")
    vc = model.varcorr
    assert list(vc["group"]) == ["Block", "Variety", "Residual"]
    assert_close(vc["sdcor"].iloc[-1], model.sigma, 1e-12)


def test_correlation_groups_coarser_than_random_effects_warn():
    d = mm.datasets.load("Oats")
    with pytest.warns(UserWarning, match="smaller level of grouping"):
        mm.lme("yield ~ nitro", d, random="~ 1 | Block/Variety", correlation=mm.CorCompSymm("~ 1 | Block"))


def test_random_effects_crossed_with_correlation_groups_raise():
    d = mm.datasets.load("Orthodont")
    with pytest.raises(ValueError, match="incompatible"):
        mm.lme("distance ~ age", d, random="~ 1 | Subject", correlation=mm.CorCompSymm("~ 1 | age"))


def test_summary_prints_nlme_layout():
    text = str(fit("lme_bodyweight_car1_power").summary())
    assert text.startswith("Linear mixed-effects model fit by REML")
    assert "Correlation Structure: Continuous AR(1)" in text and "Power of variance covariate" in text
    assert "Number of Groups: Rat 16" in text
    assert "Correlation Structure: ARMA(1,1)" in str(fit("lme_ovary_arma11").summary())
    coefficients = fit("lme_bodyweight_car1_power").summary().coefficients
    assert list(coefficients.columns) == ["Value", "Std.Error", "DF", "t-value", "p-value"]
    assert "Residual standard error" in str(fit("gls_ovary_ar1").summary())


def test_crossed_random_effects_with_a_variance_function():
    penicillin = mm.datasets.load("Penicillin")
    plain = mm.lme("diameter ~ 1", penicillin, random="(1 | plate) + (1 | sample)")
    lme4 = json.loads((Path(__file__).parent / "fixtures" / "lme4" / "penicillin.json").read_text())
    assert_close(-2 * plain.loglik, lme4["reml_criterion"], 1e-8)
    weighted = mm.lme(
        "diameter ~ 1", penicillin, random="(1 | plate) + (1 | sample)", weights=mm.VarIdent("~ 1 | sample")
    )
    assert len(weighted.varfunc_params) == 5 and weighted.loglik > plain.loglik
    with pytest.raises(ValueError, match="crossed"):
        mm.lme("diameter ~ 1", penicillin, random="(1 | plate) + (1 | sample)", correlation=mm.CorCompSymm())
