"""Satterthwaite degrees of freedom and t tests against lmerTest 3.1-3 (tools/reference_inference.R)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import reference_models as models

import mixedmodels as mm

FIXTURES = Path(__file__).parent / "fixtures" / "inference"


MODELS = {
    "orthodont_intercept": ("Orthodont", "distance ~ age * Sex + (1 | Subject)"),
    "orthodont_slope": ("Orthodont", "distance ~ age * Sex + (age | Subject)"),
    "orthodont_missing": (models.orthodont_missing, "distance ~ age * Sex + (1 | Subject)"),
    "sleepstudy_slope": ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
    "penicillin": ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
    "machines": ("Machines", "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)"),
    "cake": ("cake", "angle ~ recipe * temperature + (1 | recipe:replicate)"),
    "pastes": ("Pastes", "strength ~ 1 + (1 | batch/cask)"),
    "oats": ("Oats", "yield ~ Variety * nitro + (1 | Block/Variety)"),
    "dyestuff": ("Dyestuff", "Yield ~ 1 + (1 | Batch)"),
    "sires": (models.sires, "bw ~ 1 + (1 | sire)"),
    "sleepstudy_missing_intercept": (models.sleepstudy_missing_response, "Reaction ~ Days + (1 | Subject)"),
    "sleepstudy_missing_factor": (models.sleepstudy_missing_response, "Reaction ~ DaysF + (1 | Subject)"),
    "dyestuff2_singular": ("Dyestuff2", "Yield ~ 1 + (1 | Batch)"),
    "sleepstudy_singular_term": (models.sleepstudy_nine_groups, "Reaction ~ Days + (1 | Subject) + (1 | g)"),
}
# A 3 x 3 unstructured term: lme4's optimizer and ours agree on theta to 3e-5 only, which moves
# Satterthwaite's p-values by 1e-4, so lmerTest's tables of this model are compared at lme4's theta.
AT_LME4_THETA = {"machines_us": ("Machines", "score ~ Machine + (0 + Machine | Worker)")}
TABLES = sorted(MODELS) + sorted(AT_LME4_THETA)  # the models whose lmerTest tables are compared


def fitted(name: str) -> mm.LinearMixedModel:
    return models.fit(*{**MODELS, **AT_LME4_THETA}[name])[1]


@cache
def reference(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@cache
def at_reference_theta(name: str) -> mm.LinearMixedModel:
    """The model with lme4's theta, so that only the arithmetic after the fit is compared."""
    fit = fitted(name)
    return mm.LinearMixedModel(fit.problem, np.asarray(reference(name)["fit"]["theta"], dtype=float))


def compared(name: str) -> mm.LinearMixedModel:
    """The model whose tables are compared with lmerTest's: our fit, or for AT_LME4_THETA lme4's."""
    return at_reference_theta(name) if name in AT_LME4_THETA else fitted(name)


def _table(block: dict) -> pd.DataFrame:
    return pd.DataFrame(block["values"], index=block["rownames"])[block["columns"]]


@pytest.mark.parametrize("name", TABLES)
def test_satterthwaite_coefficient_table(name):
    expected = _table(reference(name)["coef_table"]["satterthwaite"])
    ours = compared(name).coef_table("satterthwaite")
    assert list(ours.index) == list(expected.index)
    np.testing.assert_allclose(ours["Estimate"], expected["Estimate"], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(ours["Std. Error"], expected["Std. Error"], rtol=1e-5)
    np.testing.assert_allclose(ours["df"], expected["df"], rtol=1e-4)
    np.testing.assert_allclose(ours["t value"], expected["t value"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ours["Pr(>|t|)"], expected["Pr(>|t|)"], rtol=1e-4)


def test_residual_and_asymptotic_tables():
    m = fitted("sleepstudy_slope")
    assert (m.coef_table("residual")["df"] == 178).all()
    assert np.isinf(m.coef_table("asymptotic")["df"]).all()
    with pytest.raises(ValueError, match="ddf"):
        m.coef_table("bogus")


def test_stencil_derivatives_of_a_known_function():
    from mixedmodels.inference.numdiff import derivatives

    def fun(x):
        return np.array([np.exp(x[0]) * np.sin(x[1]), x[0] ** 2 * x[1] ** 3 + x[2]])

    x = np.array([0.3, -1.2, 2.0])
    value, gradient, second = derivatives(fun, x)
    e, s, c = np.exp(x[0]), np.sin(x[1]), np.cos(x[1])
    np.testing.assert_allclose(value, fun(x))
    expected_gradient = [[e * s, e * c, 0], [2 * x[0] * x[1] ** 3, 3 * x[0] ** 2 * x[1] ** 2, 1]]
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-9, atol=1e-11)
    expected_second = [
        [[e * s, e * c, 0], [e * c, -e * s, 0], [0, 0, 0]],
        [
            [2 * x[1] ** 3, 6 * x[0] * x[1] ** 2, 0],
            [6 * x[0] * x[1] ** 2, 6 * x[0] ** 2 * x[1], 0],
            [0, 0, 0],
        ],
    ]
    np.testing.assert_allclose(second, expected_second, rtol=1e-8, atol=1e-9)
