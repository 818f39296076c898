"""glmer(method="PQL") against MASS::glmmPQL (tests/fixtures/glmm/*_pql.json).

The same iteration from the same glm start gives glmmPQL's numbers to ~1e-7 (nlme's and our ML
optimizers agree that far); its stopping rule leaves them ~1e-3 from the fixed point."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest

import mixedmodels as mm

FIXTURES = Path(__file__).parent / "fixtures" / "glmm"
RTOL = 1e-5

MODELS = {
    "cbpp_pql": ("cbpp", "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
    "contraception_pql": ("Contraception", "use ~ 1 + age + I(age^2) + urban + livch + (1 | district)"),
}


@cache
def _fit(name: str):
    dataset, formula = MODELS[name]
    expected = json.loads((FIXTURES / f"{name}.json").read_text())
    return mm.glmer(formula, mm.datasets.load(dataset), family="binomial", method="PQL"), expected


def _close(actual, expected, rtol=RTOL, atol=0.0):
    np.testing.assert_allclose(np.asarray(actual, float), np.asarray(expected, float), rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_estimates_and_variance_components(name):
    model, expected = _fit(name)
    assert list(model.fixef.index) == expected["fixef"]["names"]
    _close(model.fixef, expected["fixef"]["values"])
    _close(model.std_errors, expected["se"])
    _close(model.vcov, expected["vcov"], atol=RTOL * np.max(np.abs(expected["vcov"])))
    varcorr = expected["varcorr"]
    _close(model.varcorr["sdcor"], [varcorr["group_sd"], varcorr["residual_sd"]])
    _close(model.varcorr["vcov"], [varcorr["group_variance"], varcorr["residual_variance"]])
    _close(model.sigma, varcorr["residual_sd"])
    assert model.converged and np.isnan(model.loglik)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_random_effects_working_values_and_predictions(name):
    model, expected = _fit(name)
    block = expected["ranef"][0]
    table = model.ranef[block["group"]]
    assert list(table.index) == block["levels"]
    _close(table[block["columns"]], block["values"], atol=1e-6)
    _close(model.working_weights, expected["working_weights"])
    _close(model.working_response, expected["working_response"], atol=1e-6)
    _close(model.predict(), expected["predict_link"], atol=1e-6)
    _close(model.predict(type="response"), expected["predict_response"])
    _close(model.predict(re_form="~0"), expected["predict_link_fixed"], atol=1e-6)
    _close(model.predict(type="response", re_form="~0"), expected["predict_response_fixed"])
    _close(model.fitted, expected["predict_response"])


def test_method_is_checked():
    with pytest.raises(ValueError, match="method"):
        mm.glmer(MODELS["cbpp_pql"][1], mm.datasets.load("cbpp"), family="binomial", method="REML")


# -- glmmPQL's summary table: nlme's denominator df and t tests -------------------------------------------
@pytest.mark.parametrize("name", sorted(MODELS))
def test_coef_table_is_glmmpqls_summary(name):
    """Value, Std.Error, DF, t-value and p-value of ``summary(glmmPQL(...))$tTable``."""
    model, expected = _fit(name)
    table = model.coef_table()
    assert list(table.columns) == ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]
    assert list(table.index) == expected["coef_table"]["rownames"]
    values = expected["coef_table"]["values"]
    np.testing.assert_array_equal(table["df"], values["DF"])
    for ours, theirs in zip(
        ["Estimate", "Std. Error", "t value", "Pr(>|t|)"], ["Value", "Std.Error", "t-value", "p-value"]
    ):
        _close(table[ours], values[theirs])


def _cbpp_with_herd_covariate():
    data = mm.datasets.load("cbpp")
    data["big"] = (data["herd"].cat.codes + 1) % 2  # a herd-level covariate: as.integer(herd) %% 2 in R
    data["sub"] = (np.arange(1, len(data) + 1) % 2).astype(str)  # seq_len(nrow) %% 2: crossed with herd
    return data


@pytest.mark.parametrize(
    "random, df",
    [
        ("(1 | herd)", [38, 38, 38, 38, 13]),  # glmmPQL(random = ~ 1 | herd)
        ("(1 | herd/sub)", [24, 24, 24, 24, 13]),  # glmmPQL(random = ~ 1 | herd/sub)
    ],
)
def test_between_group_covariates_get_nlmes_outer_df(random, df):
    """A herd-level covariate is estimated in the herd stratum (15 herds - intercept - itself = 13),
    period within herds; the df are those of MASS::glmmPQL's summary (nlme 3.1-162) for the same model."""
    formula = f"cbind(incidence, size - incidence) ~ period + big + {random}"
    model = mm.glmer(formula, _cbpp_with_herd_covariate(), family="binomial", method="PQL")
    np.testing.assert_array_equal(model.coef_table()["df"], df)


def test_crossed_grouping_factors_have_no_nlme_df():
    formula = "cbind(incidence, size - incidence) ~ period + (1 | herd) + (1 | sub)"
    model = mm.glmer(formula, _cbpp_with_herd_covariate(), family="binomial", method="PQL")
    with pytest.raises(ValueError, match="nested grouping factors.*'herd' is not nested in 'sub'"):
        model.coef_table()


# -- the offset of new data -------------------------------------------------------------------------------
def _poisson_pql(**offset):
    data = mm.datasets.load("cbpp")
    data["exposure"] = np.log(data["size"])
    formula = "incidence ~ period + (1 | herd)" + ("" if offset else " + offset(exposure)")
    return mm.glmer(formula, data, family="poisson", method="PQL", **offset), data


def test_an_offset_argument_is_evaluated_on_new_data_as_a_formula_offset():
    in_formula, data = _poisson_pql()
    as_column, _ = _poisson_pql(offset="exposure")
    newdata = data.iloc[[0, 5, 40]]
    expected = in_formula.predict(newdata, type="response")
    _close(as_column.predict(newdata, type="response"), expected, rtol=1e-10)
    _close(
        as_column.predict(newdata, offset=newdata["exposure"] + 1.0),
        expected.transform(np.log) + 1.0,
        rtol=1e-10,
    )
    with pytest.raises(ValueError, match="newdata has no column 'exposure'"):
        as_column.predict(newdata.drop(columns="exposure"))
    with pytest.raises(ValueError, match="without an offset= argument"):
        in_formula.predict(newdata, offset=np.zeros(3))


def test_an_offset_given_as_numbers_must_be_given_for_new_data():
    in_formula, data = _poisson_pql()
    as_numbers, _ = _poisson_pql(offset=data["exposure"].to_numpy())
    newdata = data.iloc[[0, 5, 40]]
    _close(as_numbers.predict(), in_formula.predict(), rtol=1e-10)
    with pytest.raises(
        ValueError, match=r"pass the offset of newdata's rows as predict\(newdata, offset=...\)"
    ):
        as_numbers.predict(newdata)
    _close(as_numbers.predict(newdata, offset=newdata["exposure"]), in_formula.predict(newdata), rtol=1e-10)
    with pytest.raises(ValueError, match="one number per row of newdata"):
        as_numbers.predict(newdata, offset=np.zeros(2))
    with pytest.raises(ValueError, match="give newdata too"):
        as_numbers.predict(offset=np.zeros(56))
