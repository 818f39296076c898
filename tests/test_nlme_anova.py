"""``anova`` of one gls or lme fit (F tests of the fixed effects) against nlme 3.1-162's ``anova`` (fixtures
from tools/reference_nlme_anova.R), and nlme's denominator df of the terms for every lme model of
tools/reference_nlme.R."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from nlme_models import MODELS, fit, reference
from scipy import stats

import mixedmodels as mm

FIXTURES = Path(__file__).parent / "fixtures" / "nlme_anova"
ANOVA = sorted(path.stem for path in FIXTURES.glob("*.json"))
RTOL = 1e-6
FLAT_RTOL = 1e-4  # where the optimum is flat (the brief's rule)


def anova_reference(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def contrasts(model, block: dict) -> pd.DataFrame:
    """A fixture's L (columns named by coefficient) as coefficients by name, one row per hypothesis."""
    return pd.DataFrame(block["values"], columns=block["colnames"])


def anova_tables(name: str):
    model, ref = fit(name), anova_reference(name)
    for test in ref["anova"]:
        ours = model.anova(L=contrasts(model, test["L"])) if "L" in test else model.anova(type=test["type"])
        yield ours, test


@pytest.mark.parametrize("name", ANOVA)
def test_f_tests_match_nlme(name):
    """F to 1e-6; numDF and denDF exactly (gls: N - p, which nlme prints above the table).

    p-values are compared with the exact upper tail of F (nlme's lme tables give 1 - pf(F), which is 0
    below about 1e-16) to 1e-4 relative, the tolerance of a flat optimum: a p-value's relative error is
    |d log p / d log F| (10 to 100 for p < 1e-10) times that of F, and F agrees to ~1e-7, as far as the
    weakly determined variance parameters of the two fits do (the largest p error is 3e-5).  At nlme's
    own F our p-value is nlme's to 1e-10.
    """
    for ours, test in anova_tables(name):
        expected = test["table"]
        assert list(ours.columns) == ["numDF", "denDF", "F-value", "p-value"]
        if "L" not in test:
            assert list(ours.index) == expected["rownames"]
        values = expected["values"]
        assert ours["numDF"].tolist() == values["numDF"]
        assert ours["denDF"].tolist() == list(np.broadcast_to(test["denDF"], len(ours)))
        np.testing.assert_allclose(ours["F-value"], values["F-value"], rtol=RTOL, atol=0)
        np.testing.assert_allclose(ours["p-value"], test["p_upper"], rtol=FLAT_RTOL, atol=0)
        at_nlme_f = stats.f.sf(values["F-value"], values["numDF"], test["denDF"])
        np.testing.assert_allclose(at_nlme_f, test["p_upper"], rtol=1e-10, atol=0)


LME = sorted(name for name, spec in MODELS.items() if spec[1] == "lme")


@pytest.mark.parametrize("name", LME)
def test_terms_denominator_df_match_nlme(name):
    """nlme's ``fixDF$terms``: the inner-outer df of each term."""
    expected = reference(name)["fixDF"]["terms"]
    ours = fit(name).terms_df
    assert list(ours.index) == expected["names"]
    assert ours.tolist() == expected["values"]


def test_sequential_and_marginal_agree_on_the_last_term():
    """The last term is adjusted for all the others either way; marginal = Wald test of its coefficients."""
    model = fit("lme_bodyweight_ratio")
    sequential, marginal = model.anova(), model.anova(type="marginal")
    assert sequential.loc["Time:Diet", "F-value"] == pytest.approx(
        marginal.loc["Time:Diet", "F-value"], rel=1e-10
    )
    beta, cov = model.fixef.to_numpy()[4:], model.wald_vcov.to_numpy()[4:, 4:]
    assert marginal.loc["Time:Diet", "F-value"] == pytest.approx(
        beta @ np.linalg.solve(cov, beta) / 2, rel=1e-12
    )


def test_l_forms_agree():
    """L as a vector, a matrix, a mapping or a DataFrame by name; zero rows are dropped, as nlme."""
    model = fit("gls_orthodont_fixed")
    vector = model.anova(L=[0, 0, 1, 8])
    assert vector.index.tolist() == ["L"]
    pd.testing.assert_frame_equal(model.anova(L={"SexFemale": 1, "age:SexFemale": 8}), vector)
    pd.testing.assert_frame_equal(model.anova(L=[[0, 0, 1, 8], [0, 0, 0, 0]]), vector)
    same_hypothesis_twice = model.anova(L=[[0, 0, 1, 8], [0, 0, 2, 16]])
    assert same_hypothesis_twice.loc["L", "numDF"] == 1
    assert same_hypothesis_twice.loc["L", "F-value"] == pytest.approx(vector.loc["L", "F-value"], rel=1e-12)


def test_one_model_through_mm_anova_and_the_function():
    model = fit("lme_orthodont_slope")
    table = model.anova(type="marginal")
    pd.testing.assert_frame_equal(mm.anova(model), model.anova())
    pd.testing.assert_frame_equal(mm.nlme.anova(model, type="marginal"), table)


def test_several_models_still_give_the_likelihood_ratio_table():
    m0, m1 = fit("gls_ovary_ml"), fit("gls_ovary_ar1_ml")
    table = m0.anova(m1)
    assert "L.Ratio" in table.columns and len(table) == 2


def test_bad_arguments_are_named():
    model = fit("lme_orthodont_slope")
    with pytest.raises(ValueError, match="type must be one of 'sequential', 'marginal'"):
        model.anova(type="III")
    with pytest.raises(ValueError, match="either type= .* or L="):
        model.anova(type="marginal", L=[0, 1, 0, 0])
    with pytest.raises(ValueError, match="same denominator df; it involves age \\(79\\), SexFemale \\(25\\)"):
        model.anova(L=[[0, 1, 0, 0], [0, 0, 1, 0]])
    with pytest.raises(ValueError, match="contrasts must have 4 columns"):
        model.anova(L=[0, 1])
    with pytest.raises(ValueError, match="unknown fixed effects 'Sex'"):
        model.anova(L={"Sex": 1})
    with pytest.raises(ValueError, match="one model"):
        model.anova(fit("lme_orthodont_slope_ml"), type="marginal")
    with pytest.raises(TypeError, match="gls or lme fits"):
        mm.nlme.anova(object())
