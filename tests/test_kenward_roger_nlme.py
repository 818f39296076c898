"""Kenward-Roger for gls and lme fits (models/nlme/marginal.py and inference/kenward_roger.py).

* with variance functions and correlation structures: against tools/reference_kr_nlme.R, an
  independent dense implementation in R (fixtures in tests/fixtures/kr_nlme/), at nlme's estimates (the
  arithmetic after the fit) and at our own fit (also the two optimizers' agreement);
* without them lme is lmer: against pbkrtest's fixtures of the lmer fits (test_kenward_roger.py).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nlme_models import DATA, MODELS
from test_inference import _table, reference

import mixedmodels as mm
from mixedmodels.models.nlme.marginal import NlmeMarginalCovariance

FIXTURES = Path(__file__).parent / "fixtures" / "kr_nlme"
NAMES = sorted(path.stem for path in FIXTURES.glob("*.json"))


@cache
def kr_reference(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@cache
def fit(name: str):
    dataset, function, formula, kwargs = MODELS[name]
    return getattr(mm, function)(formula, DATA[dataset](), **kwargs)


@cache
def at_nlme_estimates(name: str):
    """The model at nlme's estimates: theta from nlme's G / sigma^2, the structures' unconstrained
    parameters as nlme's (the same scale)."""
    ref = kr_reference(name)
    fitted = fit(name)
    parts = []
    if ref.get("random_covariance"):
        relative = np.array(ref["random_covariance"]) / ref["sigma"] ** 2
        parts.append(np.linalg.cholesky(relative).T[np.triu_indices(len(relative))])
    unconstrained = ref["unconstrained"]
    parts += [np.array(unconstrained[key]) for key in ("corStruct", "varStruct") if unconstrained[key]]
    return type(fitted)(fitted.problem, np.concatenate(parts), fitted.control)


def test_every_fixture_is_tested():
    assert set(NAMES) <= set(MODELS) and len(NAMES) == 8


@pytest.mark.parametrize("name", NAMES)
def test_at_nlme_estimates(name):
    """Only the arithmetic after the fit: the residual structure's derivatives (finite differences on
    both sides, ~1e-9) bound the agreement."""
    ref = kr_reference(name)
    model = at_nlme_estimates(name)
    np.testing.assert_allclose(model.vcov.to_numpy(), ref["vcov"], rtol=1e-8)
    np.testing.assert_allclose(model.vcov_kenward_roger.to_numpy(), ref["vcov_adjusted"], rtol=1e-6)
    table = model.coef_table(ddf="kenward-roger")
    expected = _table(ref["coef_table"])
    assert list(table.index) == list(expected.index) and list(table.columns) == list(expected.columns)
    np.testing.assert_allclose(table.to_numpy(), expected.to_numpy(), rtol=1e-6)
    for test in ref["contrasts"]:
        ours = model.contrast(test["L"], ddf="kenward-roger")
        np.testing.assert_allclose(
            ours[["NumDF", "DenDF", "F value", "Pr(>F)"]].to_numpy()[0],
            [test["ndf"], test["ddf"], test["F"], test["p_value"]],
            rtol=1e-6,
        )
    anova = model.anova(ddf="kenward-roger")
    assert list(anova.index) == ref["anova"]["terms"]
    tests = ref["anova"]["tests"]
    for column, key in [("NumDF", "ndf"), ("DenDF", "ddf"), ("F value", "F"), ("Pr(>F)", "p_value")]:
        np.testing.assert_allclose(anova[column], [t[key] for t in tests], rtol=1e-6, err_msg=column)
    sigma2 = model.sigma**2
    np.testing.assert_allclose(anova["Mean Sq"], [t["F_unscaled"] * sigma2 for t in tests], rtol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_at_our_fit(name):
    """Our optimum agrees with nlme's to about 5e-7 in sigma; the adjusted covariance and df follow
    to a few 1e-6."""
    ref = kr_reference(name)
    model = fit(name)
    np.testing.assert_allclose(model.vcov_kenward_roger.to_numpy(), ref["vcov_adjusted"], rtol=2e-5)
    table = model.coef_table(ddf="kenward-roger")
    np.testing.assert_allclose(table["df"], _table(ref["coef_table"])["df"], rtol=1e-5)


# -- lme without structures is lmer: pbkrtest's fixtures ----------------------------------------------------
LMER_EQUIVALENTS = {
    "sleepstudy_slope": ("sleepstudy", "Reaction ~ Days", "~ Days | Subject"),
    "orthodont_intercept": ("Orthodont", "distance ~ age * Sex", "~ 1 | Subject"),
    "orthodont_slope": ("Orthodont", "distance ~ age * Sex", "~ age | Subject"),
    "oats": ("Oats", "yield ~ Variety * nitro", "~ 1 | Block/Variety"),
    "pastes": ("Pastes", "strength ~ 1", "~ 1 | batch/cask"),
}


@pytest.mark.parametrize("name", sorted(LMER_EQUIVALENTS))
def test_lme_equals_pbkrtest_for_lmer(name):
    """The tolerances of test_kenward_roger.py's comparisons at our lmer fit."""
    dataset, fixed, random = LMER_EQUIVALENTS[name]
    model = mm.lme(fixed, mm.datasets.load(dataset), random=random)
    ref = reference(name)
    expected = np.array(ref["vcov_kenward_roger"])
    ours = model.vcov_kenward_roger.to_numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    table = model.coef_table(ddf="kenward-roger")
    expected_table = _table(ref["coef_table"]["kenward_roger"])
    for column in ["Std. Error", "df", "t value", "Pr(>|t|)"]:
        np.testing.assert_allclose(table[column], expected_table[column], rtol=1e-4, err_msg=column)


def test_lme_anova_equals_lmer_anova():
    """lmerTest's Kenward-Roger anova of the lmer fit, from the lme fit of the same model."""
    data = mm.datasets.load("Orthodont")
    lmer = mm.lmer("distance ~ age * Sex + (age | Subject)", data)
    lme = mm.lme("distance ~ age * Sex", data, random="~ age | Subject")
    pd.testing.assert_frame_equal(lme.anova(ddf="kenward-roger"), lmer.anova(ddf="kenward-roger"), rtol=1e-5)


# -- the pieces ---------------------------------------------------------------------------------------------
def test_ar1_derivatives_are_the_analytic_ones():
    """d^k Phi^|i-j| / d Phi^k from the whitening's finite differences and the chain rule (Phi reported,
    nlme's unconstrained log((1 + Phi)/(1 - Phi)) differenced)."""
    model = fit("lme_orthodont_ar1")
    value, first, second = NlmeMarginalCovariance(model)._residual
    phi = model.correlation_parameters["Phi"]
    lag = np.abs(np.subtract.outer(np.arange(4), np.arange(4)))
    np.testing.assert_allclose(value[:16], (phi**lag).ravel(), atol=1e-14)
    np.testing.assert_allclose(first[:16, 0], (lag * phi ** np.maximum(lag - 1, 0)).ravel(), atol=1e-11)
    expected = lag * (lag - 1) * phi ** np.maximum(lag - 2, 0)
    np.testing.assert_allclose(second[:16, 0, 0], expected.ravel(), atol=1e-8)


def test_groups_are_the_outermost_level_of_nested_factors():
    model = mm.lme("yield ~ nitro", mm.datasets.load("Oats"), random="~ 1 | Block/Variety")
    order, layout = NlmeMarginalCovariance(model)._groups
    assert len(layout.starts) == 6 and set(layout.lengths) == {12}


def test_gls_without_correlation_has_one_row_per_group():
    model = fit("gls_orthodont_ident_sex")
    _, layout = NlmeMarginalCovariance(model)._groups
    assert layout.max_size == 1 and len(layout.starts) == model.nobs


def test_ml_fits_are_refused_as_lmer_s():
    model = fit("lme_orthodont_ar1_ml")
    with pytest.raises(ValueError, match="only available for REML fits"):
        model.coef_table(ddf="kenward-roger")
    with pytest.raises(ValueError, match="only available for REML fits"):
        fit("gls_ovary_ar1_ml").anova(ddf="kenward-roger")


def test_one_group_of_all_rows_is_refused_when_too_large(monkeypatch):
    from mixedmodels.models.nlme import marginal

    monkeypatch.setattr(marginal, "LARGEST_GROUP", 10)
    fitted = fit("gls_ovary_ar1")
    model = type(fitted)(fitted.problem, fitted._params, fitted.control)  # nothing cached
    with pytest.raises(ValueError, match="rows form one group"):
        model.coef_table(ddf="kenward-roger")
