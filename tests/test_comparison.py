"""Likelihood-ratio comparison of models, ``mm.anova(m0, m1)``, against lme4 1.1-31's ``anova(m0, m1)``.

Fixtures ``anova_<name>.json`` from tools/reference_inference.R: the models fitted by REML with tight
optimizer settings, ``anova(m0, m1)`` with ``refit = TRUE`` (lme4 refits by ML with its default
bobyqa, starting from the REML theta) and ``refit = FALSE``, and ``tight_ml_fits``, the ML optima
with tight settings.  lme4's refits agree with the tight ML optima to 1e-12 here, so both references
are tight and the tables are compared at rtol 1e-6.
"""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import reference_models as models
from nlme_models import fit as fit_nlme

import mixedmodels as mm
from mixedmodels.inference.comparison import likelihood_ratio_tests

FIXTURES = Path(__file__).parent / "fixtures" / "inference"
COMPARISONS = ["anova_sleepstudy", "anova_orthodont", "anova_penicillin"]


@cache
def reference(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def fits(name: str, **kwargs) -> dict[str, mm.LinearMixedModel]:
    fixture = reference(name)
    return {key: models.fit(fixture["dataset"], f, **kwargs)[1] for key, f in fixture["formulas"].items()}


def expected_table(block: dict) -> pd.DataFrame:
    """A table the R script recorded (``recorded()``), with NA as NaN."""
    values = block["value"]
    return pd.DataFrame(values["values"], index=values["rownames"])[values["columns"]].astype(float)


def assert_same_table(ours: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(ours.index) == list(expected.index)
    assert list(ours.columns) == list(expected.columns)
    for column in expected.columns:
        # a likelihood-ratio statistic of two equal fits is 0 in R and roundoff (1e-12) here
        atol = 1e-9 if column in ("Chisq", "LRT") else 0
        np.testing.assert_allclose(ours[column], expected[column], rtol=1e-6, atol=atol, err_msg=column)


@pytest.mark.parametrize("name", COMPARISONS)
def test_refitted_by_ml(name):
    fixture = reference(name)
    with pytest.warns(mm.ModelMessage) as record:
        table = mm.anova(**fits(name))
    assert [str(w.message) for w in record] == fixture["refit_true"]["messages"]
    assert_same_table(table, expected_table(fixture["refit_true"]))
    tight = [fixture["tight_ml_fits"][key]["deviance"] for key in table.index]
    np.testing.assert_allclose(table["deviance"], tight, rtol=1e-6)
    assert table.attrs["models"] == fixture["formulas"]


@pytest.mark.parametrize("name", COMPARISONS)
def test_reml_criteria_as_fitted(name):
    fixture = reference(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = mm.anova(**fits(name), refit=False)
    assert fixture["refit_false"]["messages"] == []
    assert_same_table(table, expected_table(fixture["refit_false"]))


def test_ml_fits_are_not_refitted():
    fixture = reference("anova_sleepstudy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = mm.anova(**fits("anova_sleepstudy", reml=False))
    assert_same_table(table, expected_table(fixture["refit_true"]))


def test_rows_ordered_by_number_of_parameters_with_generic_or_given_names():
    m0, m1 = fits("anova_sleepstudy").values()
    with pytest.warns(mm.ModelMessage):
        generic = mm.anova(m1, m0)
        named = mm.anova(m1, m0, names=["slope", "intercept"])
        mixed = mm.anova(m1, m0=m0)
    assert list(generic.index) == ["MODEL2", "MODEL1"]
    assert list(named.index) == ["intercept", "slope"]
    assert list(mixed.index) == ["m0", "MODEL1"]
    np.testing.assert_array_equal(generic["npar"], [4, 6])


def test_mixed_reml_and_ml_fits_warn_without_refit():
    m0 = fits("anova_sleepstudy")["m0"]
    m1 = fits("anova_sleepstudy", reml=False)["m1"]
    with pytest.warns(UserWarning, match="some models fit with REML = TRUE, some not"):
        mm.anova(m0, m1, refit=False)


def test_models_of_other_data_are_refused():
    m0 = fits("anova_sleepstudy")["m0"]
    missing = models.fit(models.sleepstudy_missing_response, "Reaction ~ Days + (1 | Subject)")[1]
    logged = models.fit("sleepstudy", "log(Reaction) ~ Days + (1 | Subject)")[1]
    with pytest.raises(ValueError, match="not all fitted to the same size of dataset"):
        mm.anova(m0, missing)
    with pytest.raises(ValueError, match="same data: MODEL2 uses other rows or another response"):
        mm.anova(m0, logged)


def test_bad_arguments():
    m0, m1 = fits("anova_sleepstudy").values()
    with pytest.raises(ValueError, match="1 names given for 2 models"):
        mm.anova(m0, m1, names=["a"])
    with pytest.raises(ValueError, match="repeated: a"):
        mm.anova(m0, m1, names=["a", "a"])
    with pytest.raises(TypeError, match="not DataFrame"):
        mm.anova(m0, pd.DataFrame())
    with pytest.raises(TypeError, match="at least one"):
        mm.anova()


def test_one_computation_for_lme4_and_nlme_conventions():
    """lme4 orders the models by their number of parameters, nlme keeps the order given; the test of the
    two is the same."""
    small, large = fit_nlme("gls_ovary_ml"), fit_nlme("gls_ovary_ar1_ml")
    lme4 = likelihood_ratio_tests([large, small], ["large", "small"], "lme4")
    nlme = likelihood_ratio_tests([large, small], ["large", "small"], "nlme")
    assert lme4.names == ["small", "large"] and nlme.names == ["large", "small"]
    assert lme4.statistic[1] == nlme.statistic[1] > 0 and lme4.df[1] == nlme.df[1] == 1
    assert lme4.p_value[1] == nlme.p_value[1]
    table = mm.nlme.anova(large, small)
    np.testing.assert_array_equal(table["L.Ratio"], nlme.statistic)
    assert list(table["Test"]) == ["", "1 vs 2"]


def test_nlme_comparison_checks_rows_and_response_as_lme4():
    orthodont = mm.datasets.load("Orthodont")
    m = mm.gls("distance ~ age", orthodont)
    logged = mm.gls("log(distance) ~ age", orthodont)
    fewer = mm.gls("distance ~ age", orthodont.iloc[:-4])
    with pytest.raises(ValueError, match="same data: m2 uses other rows or another response than m1"):
        mm.nlme.anova(m, logged)
    with pytest.raises(ValueError, match=r"same size of dataset \(m1: 108, m2: 104 rows\)"):
        mm.nlme.anova(m, fewer)
    with pytest.raises(ValueError, match="1 names given for 2 models"):
        mm.nlme.anova(m, m, names=["a"])
