"""gls against nlme 3.1-162 (fixtures from tools/reference_nlme.R): fitted values, predictions,
likelihood-ratio tables, GLS with a known covariance, options and errors (the checks common to gls
and lme are in test_nlme_models.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from nlme_models import (
    MODELS,
    RTOL_FIT,
    assert_close,
    data,
    fit,
    reference,
    table,
)

import mixedmodels as mm

GLS = sorted(name for name, spec in MODELS.items() if spec[1] == "gls")


@pytest.mark.parametrize("name", GLS)
def test_fitted(name):
    assert_close(fit(name).fitted, reference(name)["fitted"], RTOL_FIT)


def test_predict_new_data():
    name = "gls_orthodont_ident_sex"
    model, ref = fit(name), reference(name)
    rows = np.array(ref["newdata_rows"]) - 1
    newdata = data(name).iloc[rows][["age", "Sex"]]
    assert_close(model.predict(newdata), ref["predict"], RTOL_FIT)


@pytest.mark.parametrize("comparison", ["ovary_ar1_ml", "hetero_reml", "orthodont_gls_lme", "orthodont_ml"])
def test_anova(comparison):
    ref = reference(f"anova_{comparison}")
    expected = table(ref["table"])
    ours = mm.nlme.anova(*[fit(name) for name in ref["models"]], names=ref["models"])
    np.testing.assert_array_equal(ours["df"], expected["df"])
    for column in ("AIC", "BIC", "logLik"):
        assert_close(ours[column], expected[column], RTOL_FIT)
    assert list(ours["Test"]) == list(expected["Test"])
    assert_close(
        ours["L.Ratio"].to_numpy()[1:], expected["L.Ratio"].to_numpy()[1:].astype(float), 1e-3, scale=1e-3
    )
    assert_close(ours["p-value"].to_numpy()[1:], expected["p-value"].to_numpy()[1:].astype(float), 1e-3)


def test_known_covariance():
    ref = reference("known_v")
    block = np.array(ref["block"])
    model = mm.gls_known_covariance("distance ~ age * Sex", mm.datasets.load("Orthodont"), "Subject", block)
    assert list(model.fixef.index) == ref["coefficients"]["names"]
    assert_close(model.fixef, ref["coefficients"]["values"], 1e-10)
    assert_close(model.vcov, np.array(ref["vcov"]["values"]), 1e-10)
    assert_close(model.loglik, ref["logLik"], 1e-12)
    # the same blocks as a dict and as a function of the group's rows
    orthodont = mm.datasets.load("Orthodont")
    blocks = {subject: block for subject in orthodont["Subject"].cat.categories}
    by_dict = mm.gls_known_covariance("distance ~ age * Sex", orthodont, "Subject", blocks)
    by_function = mm.gls_known_covariance(
        "distance ~ age * Sex", orthodont, "Subject", lambda rows: block[: len(rows), : len(rows)]
    )
    assert_close(by_dict.fixef, model.fixef, 1e-12)
    assert_close(by_function.vcov, model.vcov, 1e-12)
    table_ = model.coef_table()
    assert_close(table_["Std. Error"], np.sqrt(np.diag(np.array(ref["vcov"]["values"]))), 1e-10)


def test_varident_reference_stratum_is_first_in_sorted_data():
    # nlme sorts by the correlation groups before it orders the strata: Orthodont's first Subject level
    # is M16, a boy, so the reference stratum is Male and the ratio is reported for Female
    model = fit("gls_orthodont_ident_sex")
    assert list(model.varfunc_params.index) == ["Female"]


def test_no_structure_matches_least_squares():
    d = mm.datasets.load("Orthodont")
    model = mm.gls("distance ~ age * Sex", d)
    x = model.frame.x
    beta = np.linalg.lstsq(x, d["distance"].to_numpy(), rcond=None)[0]
    assert_close(model.fixef, beta, 1e-10)
    assert model.correlation_parameters.empty and model.varfunc_params.empty


def test_rows_with_missing_values_are_dropped():
    d = mm.datasets.load("Orthodont")
    d.loc[[3, 50], "distance"] = np.nan
    model = mm.gls("distance ~ age", d, correlation=mm.CorAR1("~ 1 | Subject"))
    assert model.nobs == 106
    assert len(model.resid("normalized")) == 106
    assert list(model.fitted.index[:4]) == [0, 1, 2, 4]


def test_structure_columns_share_the_model_frame_checks():
    """Columns of variance functions and correlation structures are the model's variables: rows missing
    them are dropped and counted, and a covariate must be finite, as the formula's variables."""
    d = mm.datasets.load("Orthodont")
    missing = d.assign(a=d["age"].where(d["age"] != 8))
    model = mm.gls("distance ~ age", missing, weights=mm.VarPower("~ a"))
    assert model.nobs == 81 and model.frame.n_missing == 27
    with pytest.raises(
        ValueError, match=r"column 'a' \(used in the weights \(VarPower\('~ a'\)\)\) has only"
    ):
        mm.gls("distance ~ age", d.assign(a=np.nan), weights=mm.VarPower("~ a"))
    infinite = d.assign(a=np.where(d["age"] == 8, np.inf, d["age"]))
    for structure in (dict(weights=mm.VarPower("~ a")), dict(correlation=mm.CorCAR1("~ a | Subject"))):
        with pytest.raises(ValueError, match=r"covariate 'a' has infinite or NaN values \(27 of 108 rows\)"):
            mm.gls("distance ~ age", infinite, **structure)
    with pytest.raises(ValueError, match=r"unknown column 'g' in grouping factor of the correlation"):
        mm.gls("distance ~ age", d, correlation=mm.CorAR1("~ 1 | g"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (lambda: dict(method="OLS"), "method must be"),
        (lambda: dict(weights=3), "weights must be a variance function"),
        (lambda: dict(correlation="ar1"), "correlation must be a correlation structure"),
        (lambda: dict(weights=mm.VarPower("~ nope")), "unknown column"),
        (lambda: dict(correlation=mm.CorAR1("~ 1 | Subject | Sex")), "more than one"),
        (lambda: dict(correlation=mm.CorSymm("~ age | Subject")), "consecutive integers"),
        (lambda: dict(correlation=mm.CorCAR1("~ I(age > 10) | Subject")), "unique values within groups"),
        (lambda: dict(correlation=mm.CorAR1(value=1.5)), "between -1 and 1"),
        (lambda: dict(weights=mm.VarIdent("~ 1 | Sex", fixed={"Other": 2})), "must be strata"),
    ],
)
def test_bad_input(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        mm.gls("distance ~ age", mm.datasets.load("Orthodont"), **kwargs())


def test_structures_are_reusable_specifications():
    d = mm.datasets.load("Orthodont")
    ar1 = mm.CorAR1("~ 1 | Subject")
    a = mm.gls("distance ~ age", d, correlation=ar1)
    b = mm.gls("distance ~ age", d.iloc[:60], correlation=ar1)
    assert a.nobs == 108 and b.nobs == 60
    assert ar1.layout is None
    assert isinstance(a.correlation_parameters, pd.Series)


def test_variance_function_options():
    d = mm.datasets.load("Orthodont")
    free = mm.gls("distance ~ age * Sex", d, weights=mm.VarIdent("~ 1 | Sex"))
    fixed = mm.gls("distance ~ age * Sex", d, weights=mm.VarIdent("~ 1 | Sex", fixed={"Female": 0.5}))
    assert fixed.varfunc_params.empty and fixed.df_loglik == free.df_loglik - 1
    assert fixed.loglik < free.loglik
    # naming all strata but one makes that one the reference
    flipped = mm.gls("distance ~ age * Sex", d, weights=mm.VarIdent("~ 1 | Sex", value={"Male": 1.0}))
    assert list(flipped.varfunc_params.index) == ["Male"]
    assert_close(flipped.varfunc_params["Male"], 1 / free.varfunc_params["Female"], 1e-4)
    assert_close(flipped.loglik, free.loglik, 1e-9)
    power = mm.gls("distance ~ age", d, weights=mm.VarPower("~ age", fixed=0.5))
    by_hand = mm.gls("distance ~ age", d, weights="~ age")  # VarFixed: variance proportional to age
    assert_close(power.loglik, by_hand.loglik, 1e-12)
    comb = mm.VarComb(mm.VarIdent("~ 1 | Sex"), mm.VarPower("~ age"))
    combined = mm.gls("distance ~ age * Sex", d, weights=comb)
    assert list(combined.varfunc_params.index) == ["A.Female", "B.power"]


def test_one_huge_group_without_closed_form_is_refused():
    n = 20_000
    d = pd.DataFrame({"y": np.sin(np.arange(n)), "x": np.arange(n) % 7, "t": np.arange(n, dtype=float)})
    with pytest.raises(ValueError, match="give it a grouping factor"):
        mm.gls("y ~ x", d, correlation=mm.CorExp("~ t"))
    # AR(1) over all rows is done in closed form, without an n x n matrix
    model = mm.gls("y ~ x", d, correlation=mm.CorAR1())
    assert abs(model.correlation_parameters["Phi"]) < 1


def test_results_keep_the_input_index():
    d = mm.datasets.load("Orthodont")
    d.index = [f"row{i}" for i in range(len(d))]
    d.loc["row3", "distance"] = np.nan
    model = mm.gls("distance ~ age", d, correlation=mm.CorAR1("~ 1 | Subject"))
    assert list(model.fitted.index[:4]) == ["row0", "row1", "row2", "row4"]
    assert list(model.resid("normalized").index) == list(model.fitted.index)
    lme = mm.lme("distance ~ age", d, random="~ 1 | Subject")
    assert list(lme.residuals.index[:4]) == ["row0", "row1", "row2", "row4"]
    known = mm.gls_known_covariance("distance ~ age", d, "Subject", np.eye(4))
    assert list(known.fitted.index[:4]) == ["row0", "row1", "row2", "row4"]
