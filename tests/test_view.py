"""Inference on the narrow view (mixedmodels.inference.view): lmerTest's tests for lme and gls fits.

An lme fit without residual structures is an lmer fit, so its Satterthwaite df, t tests and type
I-III F tests must be lmerTest's (tests/fixtures/inference, tools/reference_inference.R) and, fitted by
ML, our lmer's; a gls fit without structures has Satterthwaite df n - p (REML) exactly.  With
correlation structures and variance functions there is no reference: the df must be finite and
positive, not depend on a covariate's units, and not on the numerical derivatives' step.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import reference_models as models
from nlme_models import DATA, MODELS
from nlme_models import fit as nlme_fit
from test_anova import _assert_f_table
from test_inference import _table, reference

import mixedmodels as mm
from mixedmodels.inference.satterthwaite import satterthwaite_df
from mixedmodels.inference.varpar import VarianceParameters
from mixedmodels.inference.view import InferenceView

# lmerTest fixture -> the same model as an lme call (fixed, random)
AS_LME = {
    "orthodont_intercept": ("distance ~ age * Sex", "~ 1 | Subject"),
    "orthodont_slope": ("distance ~ age * Sex", "~ age | Subject"),
    "sleepstudy_slope": ("Reaction ~ Days", "~ Days | Subject"),
    "oats": ("yield ~ Variety * nitro", "~ 1 | Block/Variety"),
    "machines": ("score ~ Machine", "(1 | Worker) + (1 | Worker:Machine)"),
}


def _lme(name: str, method: str = "REML") -> mm.LMEModel:
    fixed, random = AS_LME[name]
    data = mm.datasets.load(reference(name)["dataset"])
    return mm.lme(fixed, data, random=random, method=method)


@pytest.mark.parametrize("name", sorted(AS_LME))
def test_lme_satterthwaite_table_is_lmertest(name):
    expected = _table(reference(name)["coef_table"]["satterthwaite"])
    ours = _lme(name).coef_table(ddf="satterthwaite")
    assert list(ours.index) == list(expected.index)
    np.testing.assert_allclose(ours["Estimate"], expected["Estimate"], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(ours["Std. Error"], expected["Std. Error"], rtol=1e-5)
    for column in ("df", "t value", "Pr(>|t|)"):
        np.testing.assert_allclose(ours[column], expected[column], rtol=1e-4, err_msg=column)


@pytest.mark.parametrize("anova_type", [1, 2, 3])
@pytest.mark.parametrize("name", sorted(AS_LME))
def test_lme_satterthwaite_anova_is_lmertest(name, anova_type):
    expected = _table(reference(name)["anova"][f"type{anova_type}"]["satterthwaite"]["value"])
    ours = _lme(name).anova(type=anova_type, ddf="satterthwaite")
    assert list(ours.index) == list(expected.index)
    _assert_f_table(ours, expected)


@pytest.mark.parametrize("name", ["orthodont_intercept", "sleepstudy_slope", "oats"])
def test_lme_by_ml_gives_the_df_of_lmer_by_ml(name):
    """lme's variance parameters are (theta, sigma) as lmer's; ML fits agree on every test."""
    lmer = models.fit(reference(name)["dataset"], reference(name)["formula"], reml=False)[1]
    lme = _lme(name, method="ML")
    ours, theirs = lme.coef_table(ddf="satterthwaite"), lmer.coef_table()
    for column in ("Std. Error", "df", "Pr(>|t|)"):
        np.testing.assert_allclose(ours[column], theirs[column], rtol=1e-4, err_msg=column)
    _assert_f_table(lme.anova(ddf="satterthwaite"), lmer.anova())
    contrast = np.zeros(lme.n_fixed)
    contrast[-2:] = 1.0
    np.testing.assert_allclose(
        lme.contrast(contrast, joint=False).to_numpy(),
        lmer.contrast(contrast, joint=False).to_numpy(),
        rtol=1e-4,
    )


@pytest.mark.parametrize("method, dof", [("REML", lambda n, p: n - p), ("ML", lambda n, p: n)])
def test_gls_without_structures_has_residual_df(method, dof):
    """The only variance parameter is sigma: df = 2 sigma^4 / (sigma^4 2 / dof) = dof, exactly."""
    m = mm.gls("distance ~ age * Sex", mm.datasets.load("Orthodont"), method=method)
    expected = dof(m.nobs, m.n_fixed)
    np.testing.assert_allclose(m.coef_table(ddf="satterthwaite")["df"], expected, rtol=1e-10)
    np.testing.assert_allclose(m.anova(ddf="satterthwaite")["DenDF"], expected, rtol=1e-10)
    if method == "REML":
        np.testing.assert_allclose(
            m.coef_table(ddf="satterthwaite").to_numpy(), m.coef_table(ddf="residual").to_numpy(), rtol=1e-9
        )


STRUCTURED = [
    "gls_ovary_ar1",
    "gls_hetero_power_ar1",
    "gls_orthodont_ident_sex",
    "lme_ovary_ar1",
    "lme_orthodont_ident",
]


@pytest.mark.parametrize("name", STRUCTURED)
def test_structured_fits_df_are_finite_and_do_not_depend_on_the_step(name):
    m = nlme_fit(name)
    table = m.coef_table(ddf="satterthwaite")
    assert np.all(np.isfinite(table["df"])) and np.all(table["df"] > 0)
    assert np.all(table["df"] <= m.nobs)
    varpar = m.varpar
    other = VarianceParameters(varpar.terms, varpar.estimate, varpar.n_fixed, varpar.dof, relative=1e-2)
    for row in np.eye(m.n_fixed):
        np.testing.assert_allclose(satterthwaite_df(other, row), satterthwaite_df(varpar, row), rtol=1e-6)


@pytest.mark.parametrize(
    "name, column", [("gls_ovary_ar1", "cosT"), ("gls_hetero_power_ar1", "dose"), ("lme_ovary_ar1", "sinT")]
)
def test_structured_fits_df_do_not_depend_on_units(name, column):
    dataset, function, formula, kwargs = MODELS[name]
    data = DATA[dataset]()
    data[column] = 1000.0 * data[column]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "predictor variables on very different scales"
        scaled = getattr(mm, function)(formula, data, **kwargs)
    m = nlme_fit(name)
    np.testing.assert_allclose(
        scaled.coef_table(ddf="satterthwaite")["df"], m.coef_table(ddf="satterthwaite")["df"], rtol=1e-6
    )
    np.testing.assert_allclose(
        scaled.anova(ddf="satterthwaite")["DenDF"], m.anova(ddf="satterthwaite")["DenDF"], rtol=1e-6
    )


def test_lme_and_gls_refuse_what_the_view_cannot_give():
    m = nlme_fit("lme_orthodont_ar1")
    with pytest.raises(ValueError, match="not available for LMEModel fits.*'satterthwaite'"):
        m.coef_table(ddf="containment")
    with pytest.raises(ValueError, match="type"):
        m.anova(type="sequential", ddf="satterthwaite")
    with pytest.raises(ValueError, match=r"contrast\(L, ddf"):
        m.anova(L=[0, 1, 0, 0], ddf="satterthwaite")
    with pytest.raises(ValueError, match="one fit"):
        m.anova(nlme_fit("lme_orthodont_ar1_ml"), ddf="satterthwaite")
    with pytest.raises(ValueError, match="ddf"):
        m.contrast([0, 1, 0, 0], ddf="bogus")


def test_every_family_provides_the_view():
    fits = [models.fit("sleepstudy", "Reaction ~ Days + (Days | Subject)")[1], nlme_fit("gls_ovary_ar1")]
    fits.append(nlme_fit("lme_ovary_ar1"))
    assert all(isinstance(m, InferenceView) for m in fits)


def test_nlme_tables_stay_nlme_s_by_default():
    m = nlme_fit("lme_orthodont_ar1")
    assert list(m.coef_table().columns) == ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]
    np.testing.assert_array_equal(m.coef_table()["df"], m.fixed_df)
    assert list(m.anova().columns) == ["numDF", "denDF", "F-value", "p-value"]


def test_singular_lme_gives_lmertest_df():
    """At a zero variance lme's theta is on its bound, as lmer's: the df are lmerTest's (who warns)."""
    expected = _table(reference("dyestuff2_singular")["coef_table"]["satterthwaite"])
    m = mm.lme("Yield ~ 1", mm.datasets.load("Dyestuff2"), random="~ 1 | Batch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = m.coef_table(ddf="satterthwaite")
    np.testing.assert_allclose(ours["df"], expected["df"], rtol=1e-4)
