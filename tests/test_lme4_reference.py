"""Agreement with lme4 1.1-31 on the reference fixtures written by tools/reference_lme4.R."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import reference_models as models

FIXTURES = Path(__file__).parent / "fixtures" / "lme4"
RTOL = 1e-5


# fixture name -> (data, formula, keyword arguments of lmer)
MODELS = {
    "sleepstudy_slope": ("sleepstudy", "Reaction ~ Days + (Days | Subject)", {}),
    "sleepstudy_uncorr": ("sleepstudy", "Reaction ~ Days + (Days || Subject)", {}),
    "sleepstudy_intercept": ("sleepstudy", "Reaction ~ Days + (1 | Subject)", {}),
    "sleepstudy_slope_ml": ("sleepstudy", "Reaction ~ Days + (Days | Subject)", {"reml": False}),
    "dyestuff": ("Dyestuff", "Yield ~ 1 + (1 | Batch)", {}),
    "dyestuff_ml": ("Dyestuff", "Yield ~ 1 + (1 | Batch)", {"reml": False}),
    "dyestuff2": ("Dyestuff2", "Yield ~ 1 + (1 | Batch)", {}),
    "penicillin": ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", {}),
    "penicillin_ml": ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", {"reml": False}),
    "pastes": ("Pastes", "strength ~ 1 + (1 | batch/cask)", {}),
    "pastes_ml": ("Pastes", "strength ~ 1 + (1 | batch/cask)", {"reml": False}),
    "cake": ("cake", "angle ~ recipe * temperature + (1 | recipe:replicate)", {}),
    "ort7": ("Orthodont", "distance ~ age * Sex + (age | Subject)", {}),
    "ort7_ml": ("Orthodont", "distance ~ age * Sex + (age | Subject)", {"reml": False}),
    "ort6": ("Orthodont", "distance ~ age * Sex + (1 | Subject) + (0 + age | Subject)", {}),
    "orthodont_ml_intercept": ("Orthodont", "distance ~ age * Sex + (1 | Subject)", {"reml": False}),
    "machines": ("Machines", "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)", {}),
    "machines_factor_slope": ("Machines", "score ~ Machine + (0 + Machine | Worker)", {}),
    "insteval": ("InstEval", "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept)", {}),
    "sleepstudy_weights": (models.sleepstudy_weights, "Reaction ~ Days + (Days | Subject)", {"weights": "w"}),
    "sleepstudy_offset": (models.sleepstudy_offset, "Reaction ~ Days + (1 | Subject) + offset(off)", {}),
    "sleepstudy_missing": (models.sleepstudy_missing, "Reaction ~ Days + (Days | Subject)", {}),
    "sleepstudy_rankdef": (models.sleepstudy_rankdef, "Reaction ~ Days + Days2 + (1 | Subject)", {}),
}


def fitted(name: str):
    source, formula, kwargs = MODELS[name]
    return models.fit(source, formula, **kwargs)


@cache
def reference(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def close(actual, expected, rtol=RTOL, atol=0.0):
    np.testing.assert_allclose(
        np.asarray(actual, dtype=float), np.asarray(expected, dtype=float), rtol=rtol, atol=atol
    )


def _scale(values) -> float:
    """Absolute tolerance for quantities that can be (near) zero: relative to the largest in the set."""
    return RTOL * float(np.max(np.abs(np.asarray(values, dtype=float)))) if np.size(values) else 0.0


NAMES = sorted(MODELS)


def test_every_fixture_has_a_model():
    assert sorted(p.stem for p in FIXTURES.glob("*.json")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_fixed_effects(name):
    _, m = fitted(name)
    ref = reference(name)
    assert list(m.fixef.index) == ref["fixef"]["names"]
    close(m.fixef, ref["fixef"]["values"], atol=_scale(ref["fixef"]["values"]))
    close(np.sqrt(np.diag(m.vcov)), ref["se"])
    close(m.vcov, ref["vcov"], atol=_scale(ref["vcov"]))


@pytest.mark.parametrize("name", NAMES)
def test_covariance_parameters(name):
    _, m = fitted(name)
    ref = reference(name)
    close(m.theta, ref["theta"], atol=1e-5 * max(1.0, np.max(np.abs(ref["theta"]))))
    close(m.sigma, ref["sigma"])
    vc = m.varcorr
    expected = pd.DataFrame(ref["varcorr"])
    assert list(vc["group"]) == list(expected["grp"])
    assert list(vc["var1"].fillna("")) == list(expected["var1"].fillna(""))
    assert list(vc["var2"].fillna("")) == list(expected["var2"].fillna(""))
    close(vc["vcov"], expected["vcov"], atol=_scale(expected["vcov"]))
    close(vc["sdcor"], expected["sdcor"], atol=1e-5)
    assert m.is_singular == ref["is_singular"]


@pytest.mark.parametrize("name", NAMES)
def test_likelihood_and_information_criteria(name):
    _, m = fitted(name)
    ref = reference(name)
    close(m.loglik, ref["loglik"], rtol=1e-7)
    close(m.aic, ref["aic"], rtol=1e-7)
    close(m.bic, ref["bic"], rtol=1e-7)
    close(m.deviance, ref["deviance"], rtol=1e-7)
    if ref["reml"]:
        close(m.reml_criterion, ref["reml_criterion"], rtol=1e-7)
    else:
        assert m.reml_criterion is None
    assert m.reml == ref["reml"]
    assert m.df_loglik == ref["df_loglik"]
    assert m.nobs == ref["nobs"]
    assert m.ngroups == ref["ngroups"]


@pytest.mark.parametrize("name", NAMES)
def test_random_effects_and_conditional_variances(name):
    _, m = fitted(name)
    ref = reference(name)
    for block in ref["ranef"]:
        table = m.ranef[block["group"]]
        assert list(table.index.astype(str)) == block["levels"]
        assert list(table.columns) == block["terms"]
        close(table, block["values"], atol=_scale(block["values"]))
    for block in ref["condvar"]:
        columns = list(m.ranef[block["group"]].columns)
        idx = [columns.index(t) for t in block["terms"]]
        ours = m.ranef_condvar[block["group"]][:, idx][:, :, idx]
        close(ours, block["values"], atol=_scale(block["values"]))


@pytest.mark.parametrize("name", NAMES)
def test_fitted_values_and_residuals(name):
    data, m = fitted(name)
    ref = reference(name)
    for key, ours in (("fitted", m.fitted), ("residuals", m.residuals)):
        rows = np.asarray(ref[key]["rows"]) - 1
        values = ours.loc[data.index[rows]]
        close(values, ref[key]["values"], atol=_scale(ref[key]["values"]))
