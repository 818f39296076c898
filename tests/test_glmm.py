"""glmer against lme4 1.1-31 on the fixtures of tools/reference_glmer.R (tests/fixtures/glmm),
MixedModels.jl's pinned deviances, and glmer's handling of bad input."""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

FIXTURES = Path(__file__).parent / "fixtures" / "glmm"
RTOL = 1e-5


def _data(name: str) -> pd.DataFrame:
    if name == "gamma_sim":
        data = pd.read_csv(FIXTURES / "data" / "gamma_sim.csv")
        return data.assign(g=pd.Categorical(data["g"]))
    return mm.datasets.load(name).copy()


def _cbpp_proportion():
    data = _data("cbpp")
    return data.assign(prop=data["incidence"] / data["size"]), {"weights": "size"}


def _cbpp_weighted():
    data = _data("cbpp")
    return data.assign(w=1.0 + (np.arange(1, len(data) + 1) % 3)), {"weights": "w"}


def _grouseticks_centred():
    data = _data("grouseticks")
    return data.assign(cHEIGHT=data["HEIGHT"] - data["HEIGHT"].mean()), {}


# fixture -> (data and glmer's keyword arguments, whether the optimum is flat: lme4's optimizers disagree by
# up to 3.6e-6 in the deviance (Contraception, whose age^2 is in the hundreds) or the intercept of VerbAgg is
# nearly collinear with Anger; then our Laplace deviance must be no higher than at lme4's estimates, the
# fixed effects within 1e-3 of their standard errors, theta within 1e-4 and the rest within 1e-3)
MODELS = {
    "cbpp_binomial": (lambda: (_data("cbpp"), {}), False),
    "cbpp_binomial_nagq0": (lambda: (_data("cbpp"), {}), False),
    "cbpp_binomial_nagq25": (lambda: (_data("cbpp"), {}), False),
    "cbpp_probit": (lambda: (_data("cbpp"), {}), False),
    "cbpp_proportion": (_cbpp_proportion, False),
    "cbpp_poisson_offset_weights": (_cbpp_weighted, False),
    "grouseticks_poisson": (lambda: (_data("grouseticks"), {}), False),
    "grouseticks_poisson_nagq0": (_grouseticks_centred, False),
    "verbagg_binomial": (lambda: (_data("VerbAgg"), {}), True),
    "contraception_district": (lambda: (_data("Contraception"), {}), True),
    "contraception_urbdist": (lambda: (_data("Contraception"), {}), True),
    "contraception_slope": (lambda: (_data("Contraception"), {}), True),
    "contraception_cloglog": (lambda: (_data("Contraception"), {}), True),
    "gamma_log": (lambda: (_data("gamma_sim"), {}), False),
}

FAMILIES = {"binomial": mm.families.Binomial, "poisson": mm.families.Poisson, "Gamma": mm.families.Gamma}


def _fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@cache
def _fit(name: str):
    expected = _fixture(name)
    data, kwargs = MODELS[name][0]()
    family = FAMILIES[expected["family"]](expected["link"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lme4 warns on Contraception too ("very large eigenvalue")
        model = mm.glmer(expected["formula"], data, family=family, nAGQ=expected["nAGQ"], **kwargs)
    return model, expected, data


def _close(actual, expected, rtol=RTOL, atol=0.0):
    np.testing.assert_allclose(
        np.asarray(actual, dtype=float), np.asarray(expected, dtype=float), rtol=rtol, atol=atol
    )


@pytest.mark.parametrize("name", sorted(MODELS))
def test_estimates_and_likelihood(name):
    model, expected, _ = _fit(name)
    flat = MODELS[name][1]
    se = np.asarray(expected["se"])
    if flat:
        # lme4's estimates are no better than ours: our objective there is not below our optimum
        at_lme4 = model.objective.laplace(np.concatenate([expected["theta"], expected["fixef"]["values"]]))
        assert -2 * model.loglik <= at_lme4 + 1e-9
        assert np.all(np.abs(model.fixef.to_numpy() - expected["fixef"]["values"]) <= 1e-3 * se)
        _close(model.theta, expected["theta"], rtol=1e-4)
    else:
        _close(model.fixef, expected["fixef"]["values"], atol=1e-7)
        _close(model.theta, expected["theta"], atol=1e-7)
    assert list(model.fixef.index) == expected["fixef"]["names"]
    _close(model.loglik, expected["loglik"], rtol=1e-8)
    _close(model.aic, expected["aic"], rtol=1e-8)
    _close(model.bic, expected["bic"], rtol=1e-8)
    _close(model.deviance, expected["deviance"], rtol=1e-4 if flat else RTOL)
    _close(model.sigma, expected["sigma"], rtol=RTOL)
    assert model.df_resid == expected["df_resid"]
    assert model.nobs == expected["nobs"]
    assert model.ngroups == expected["ngroups"]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_standard_errors(name):
    """lme4's vcov: from the finite-difference Hessian of the Laplace deviance (nAGQ = 1), whose rounding
    (step 1e-4) limits the agreement to ~1e-4; from R_X (nAGQ = 0)."""
    model, expected, _ = _fit(name)
    rtol = RTOL if expected["nAGQ"] == 0 else 1e-4
    flat = MODELS[name][1]
    _close(np.sqrt(np.diag(model.vcov.to_numpy())), expected["se"], rtol=rtol * (10 if flat else 1))
    se = np.asarray(expected["se"])
    scaled = (model.vcov.to_numpy() - np.asarray(expected["vcov"])) / np.outer(
        se, se
    )  # on the correlation scale
    assert np.max(np.abs(scaled)) <= 2 * rtol * (
        10 if flat else 1
    )  # a variance: twice its SE's relative error


@pytest.mark.parametrize("name", sorted(MODELS))
def test_random_effects_fitted_and_residuals(name):
    model, expected, _ = _fit(name)
    flat = MODELS[name][1]
    rtol, atol = (1e-3, 1e-5) if flat else (RTOL, 1e-6)
    for block in expected["ranef"]:
        table = model.ranef[block["group"]]
        assert list(table.index) == block["levels"]
        _close(table[block["columns"]].to_numpy(), block["values"], rtol=rtol, atol=atol)
    for block in expected["condvar"]:
        _close(model.ranef_condvar[block["group"]], block["values"], rtol=rtol * 10, atol=atol)
    _close(model.fitted, expected["fitted"]["values"], rtol=rtol, atol=atol)
    _close(model.predict(), expected["predict_link"], rtol=rtol, atol=atol)
    _close(model.predict(type="response"), expected["predict_response"], rtol=rtol, atol=atol)
    for kind, values in expected["residuals"].items():
        _close(model.residuals(kind), values, rtol=rtol * 10, atol=atol * 10)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_predictions_for_new_data(name):
    model, expected, data = _fit(name)
    flat = MODELS[name][1]
    rtol, atol = (1e-3, 1e-5) if flat else (RTOL, 1e-6)
    newdata = pd.DataFrame(expected["newdata"])
    for column in newdata:
        if isinstance(data[column].dtype, pd.CategoricalDtype):
            newdata[column] = newdata[column].astype(str)
    for kind in ("link", "response"):
        _close(
            model.predict(newdata, type=kind, allow_new_levels=True),
            expected[f"newdata_predict_{kind}"],
            rtol=rtol,
            atol=atol,
        )
        _close(
            model.predict(newdata, type=kind, re_form="~0"),
            expected[f"newdata_predict_{kind}_fixed"],
            rtol=rtol,
        )


# MixedModels.jl's tests pin these deviances (sum of deviance residuals + |u|^2 + log|L|^2) of the same models
JULIA_DEVIANCES = {
    "cbpp_binomial": (100.0959, 1e-4),
    "verbagg_binomial": (8151.40, 1e-2),
    "contraception_urbdist": (2361.546, 1e-3),
    "grouseticks_poisson_nagq0": (851.4046, 1e-4),
}


@pytest.mark.parametrize("name", sorted(JULIA_DEVIANCES))
def test_mixedmodels_jl_pinned_deviances(name):
    """The exact Laplace approximation (PIRLS converged), as MixedModels.jl evaluates it."""
    expected = _fixture(name)
    data, kwargs = MODELS[name][0]()
    family = FAMILIES[expected["family"]](expected["link"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = mm.glmer(
            expected["formula"],
            data,
            family=family,
            nAGQ=expected["nAGQ"],
            pirls_convergence="exact",
            **kwargs,
        )
    value, tol = JULIA_DEVIANCES[name]
    assert abs(model.laplace_deviance - value) <= tol


def test_lme4_laplace_deviance_column():
    """lme4's devcomp: drsum + ussq + ldL2 is the Laplace deviance relative to the saturated model."""
    model, expected, _ = _fit("cbpp_binomial")
    _close(model.laplace_deviance, expected["jl_deviance"], rtol=1e-7)


def test_response_forms_agree():
    """cbind, a proportion with weights, 0/1 rows and a factor give the same fit (R's conventions)."""
    cbpp = _data("cbpp")
    formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    reference = mm.glmer(formula, cbpp, family="binomial", nAGQ=0)
    rows = cbpp.loc[cbpp.index.repeat(cbpp["size"])].copy()
    within = rows.groupby(level=0).cumcount()
    rows["y"] = (within < rows["incidence"]).astype(int)
    rows["yes"] = rows["y"].astype(bool)
    rows["answer"] = pd.Categorical(
        np.where(rows["y"] == 1, "sick", "healthy"), categories=["healthy", "sick"]
    )
    for response in ("y", "yes", "answer"):
        binary = mm.glmer(f"{response} ~ period + (1 | herd)", rows, family="binomial", nAGQ=0)
        _close(binary.fixef, reference.fixef, rtol=1e-5)
        _close(binary.theta, reference.theta, rtol=1e-5)


def test_summary_and_to_dict():
    model, _, _ = _fit("cbpp_binomial")
    text = str(model.summary())
    assert "Laplace Approximation" in text and "z value" in text and "Pr(>|z|)" in text
    assert "Family: binomial  ( logit )" in text
    record = json.loads(json.dumps(model.to_dict()))
    assert record["family"] == "binomial" and record["nAGQ"] == 1
    assert record["formula"] == "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    table = model.coef_table()
    assert list(table.columns) == ["Estimate", "Std. Error", "z value", "Pr(>|z|)"]


@pytest.mark.parametrize(
    ("formula", "family", "change", "message"),
    [
        ("incidence ~ period + (1 | herd)", "binomial", None, "0 <= y <= 1"),
        (
            "cbind(incidence, size - incidence - 20) ~ period + (1 | herd)",
            "binomial",
            None,
            "negative counts",
        ),
        ("neg ~ period + (1 | herd)", "poisson", "neg", "negative values"),
        ("incidence ~ period + (1 | herd)", "quasi", None, "unknown family"),
        ("cbind(incidence, size) ~ period + (1 | herd)", "poisson", None, "needs the binomial family"),
    ],
)
def test_bad_input(formula, family, change, message):
    cbpp = _data("cbpp")
    if change:
        cbpp[change] = -cbpp["incidence"]
    with pytest.raises(ValueError, match=message):
        mm.glmer(formula, cbpp, family=family)


def test_bad_link_and_nagq():
    cbpp = _data("cbpp")
    formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    with pytest.raises(ValueError, match="link 'log' is not available for the Gamma family|link 'sqrt'"):
        mm.families.Binomial(link="sqrt")
    with pytest.raises(ValueError, match="nAGQ must be"):
        mm.glmer(formula, cbpp, family="binomial", nAGQ=101)
    with pytest.raises(ValueError, match="nAGQ must be"):
        mm.glmer(formula, cbpp, family="binomial", nAGQ=-1)


def test_poisson_non_integer_counts_warn():
    cbpp = _data("cbpp").assign(rate=lambda d: d["incidence"] + 0.5)
    with pytest.warns(UserWarning, match="non-integer counts"):
        mm.glmer("rate ~ period + (1 | herd)", cbpp, family="poisson", nAGQ=0)


def test_complete_separation_is_named():
    data = pd.DataFrame(
        {"x": np.r_[np.zeros(50), np.ones(50)], "g": pd.Categorical(np.tile(np.arange(10), 10))}
    )
    data["y"] = data["x"]
    with pytest.raises(mm.FitError, match="complete separation"):
        mm.glmer("y ~ x + (1 | g)", data, family="binomial")


def test_inverse_gaussian_and_gaussian_families_fit():
    data = _data("gamma_sim")
    for family in (mm.families.InverseGaussian(link="log"), mm.families.Gaussian(link="log")):
        model = mm.glmer("y ~ x + (1 | g)", data, family=family)
        assert np.isfinite(model.loglik) and model.sigma > 0 and model.df_loglik == 4


@pytest.mark.parametrize("name", ["grouseticks_poisson", "cbpp_binomial_nagq0"])
def test_rows_read_in_chunks_give_the_same_fit(name):
    """PIRLS reading the rows 37 at a time (the cross-products of the chunks add up) fits the same model."""
    model, expected, data = _fit(name)
    _, kwargs = MODELS[name][0]()
    family = FAMILIES[expected["family"]](expected["link"])
    chunked = mm.glmer(
        expected["formula"], data, family=family, nAGQ=expected["nAGQ"], chunk_rows=37, **kwargs
    )
    assert len(chunked.objective.pirls.chunks) > 1
    _close(chunked.fixef, model.fixef, rtol=1e-6)
    _close(chunked.theta, model.theta, rtol=1e-6)
    _close(chunked.loglik, model.loglik, rtol=1e-9)
    _close(chunked.fitted, model.fitted, rtol=1e-6)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_pearson_dispersion(name):
    """The dispersion check: sum of squared Pearson residuals / df.resid, as computed in R."""
    model, expected, _ = _fit(name)
    dispersion = model.dispersion
    _close(dispersion.ratio, expected["pearson_dispersion"], rtol=1e-3 if MODELS[name][1] else RTOL)
    assert dispersion.df == expected["df_resid"]
    assert 0.0 <= dispersion.p_value <= 1.0
