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
