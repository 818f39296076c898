"""glmmTMB's negative binomial GLMM (``family="nbinom2"``) against glmmTMB 1.1.5's fixture
(tests/fixtures/glmm/grouseticks_nb_glmmtmb.json, tools/reference_glmer.R), and its handling of bad input.

glmmTMB's nlminb stops where the gradient of -log L is still up to 5.5e-4, so its estimates are ~1e-5
(relative) from the optimum of its Laplace likelihood: the reported values are met to 1e-4 (the optimum is
flat).  The fixture's ``exact_optimum`` is that optimum, reached by Newton steps with glmmTMB's own gradient
and Hessian, with glmmTMB's sdreport there: the fit meets it to 1e-6 and the covariances to 1e-5 (they
come from central differences of the Laplace deviance).  At glmmTMB's reported estimates themselves, the
Laplace likelihood, the modes, the fitted values, residuals and predictions are glmmTMB's to 1e-8.

Fixtures: grouseticks (two scalar terms), simulated counts with an offset and a correlated random
intercept and slope (data/nb_slope_sim.csv), cbpp's incidence with an offset and prior weights.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.cli import main
from mixedmodels.engine.laplace import LaplaceObjective
from mixedmodels.engine.pirls import GlmRows, Pirls

FIXTURES = Path(__file__).parent / "fixtures" / "glmm"
FLAT = 1e-4
EXACT = 1e-6
COVARIANCE = 1e-5
ROUNDING = 1e-10
INNER = 1e-8  # TMB's inner optimization leaves its modes ~1e-10 relative from the exact ones


def _slope_data() -> pd.DataFrame:
    data = pd.read_csv(FIXTURES / "data" / "nb_slope_sim.csv")
    return data.assign(g=pd.Categorical(data["g"]))


def _cbpp_weighted() -> pd.DataFrame:
    data = mm.datasets.load("cbpp")
    return data.assign(w=1.0 + (np.arange(1, len(data) + 1) % 3))


# fixture -> (its data, glmer's weights)
MODELS = {
    "grouseticks_nb_glmmtmb": (lambda: mm.datasets.load("grouseticks"), None),
    "nb_slope_offset_glmmtmb": (_slope_data, None),
    "cbpp_nbinom2_weights_glmmtmb": (_cbpp_weighted, "w"),
}


@cache
def _fit(name: str = "grouseticks_nb_glmmtmb"):
    expected = json.loads((FIXTURES / f"{name}.json").read_text())
    load, weights = MODELS[name]
    data = load()
    return mm.glmer(expected["formula"], data, family="nbinom2", weights=weights), expected, data


def _theta(varcorr: list[dict]) -> np.ndarray:
    """lme4's theta (the lower Cholesky factor's columns, per term) from glmmTMB's SDs and correlations."""
    parts = []
    for term in varcorr:
        sd = np.asarray(term["sd"])
        factor = np.linalg.cholesky(np.asarray(term["corr"]) * np.outer(sd, sd))
        parts.append(factor.T[np.triu_indices(len(sd))])
    return np.concatenate(parts)


@cache
def _at_glmmtmb_estimates(name: str) -> mm.GeneralizedLinearMixedModel:
    """The nbinom2 model evaluated at glmmTMB's reported estimates (no fitting there)."""
    model, expected, _ = _fit(name)
    family = mm.families.NegativeBinomial2(theta=expected["nb_theta"])
    problem = replace(
        model.problem,
        family=family,
        objective=LaplaceObjective(
            Pirls(family, model.objective.pirls.chunks, model.n_fixed), model.covariances, "exact"
        ),
    )
    return mm.GeneralizedLinearMixedModel(
        problem, _theta(expected["varcorr"]), np.array(expected["fixef"]["values"]), 1
    )


def _close(actual, expected, rtol, atol=0.0):
    np.testing.assert_allclose(
        np.asarray(actual, dtype=float), np.asarray(expected, dtype=float), rtol=rtol, atol=atol
    )


def _check_varcorr(model, varcorr: list[dict], rtol: float) -> None:
    vc = model.varcorr
    for term in varcorr:
        rows = vc[vc["group"] == term["group"]]
        _close(rows[rows["var2"].isna()]["sdcor"], term["sd"], rtol=rtol)
        _close(
            rows[rows["var2"].notna()]["sdcor"],
            np.asarray(term["corr"])[np.triu_indices(len(term["sd"]), 1)],
            rtol=rtol,
        )


def _ranef_vector(model) -> np.ndarray:
    """The conditional modes level-major per term (glmmTMB's b)."""
    return np.concatenate([b.ravel() for b in model.term_effects])


def _condvar_diagonal(model) -> np.ndarray:
    return np.concatenate([np.diagonal(c, axis1=1, axis2=2).ravel() for c in model.ranef_condvar.values()])


def _sd_scale(expected) -> float:
    return max(max(term["sd"]) for term in expected["varcorr"])


@pytest.mark.parametrize("name", MODELS)
def test_likelihood_and_counts(name):
    model, expected, _ = _fit(name)
    assert isinstance(model, mm.NegativeBinomial2MixedModel)
    assert (model.family.name, model.family.link.name) == (expected["family"], expected["link"])
    assert model.loglik >= expected["loglik"]  # glmmTMB stops ~1e-8 short of the optimum
    _close(model.loglik, expected["loglik"], rtol=ROUNDING)
    _close(-2 * model.loglik, expected["minus2loglik"], rtol=ROUNDING)
    _close(model.aic, expected["aic"], rtol=ROUNDING)
    _close(model.bic, expected["bic"], rtol=ROUNDING)
    assert model.df_loglik == expected["df_loglik"]  # the dispersion counts
    assert model.df_resid == expected["df_resid"]
    assert model.nobs == expected["nobs"] and model.ngroups == expected["ngroups"]
    assert model.messages == []


@pytest.mark.parametrize("name", MODELS)
def test_fit_is_the_exact_optimum(name):
    """The joint optimum over (theta, beta, log nb_theta) and glmmTMB's sdreport there."""
    model, expected, _ = _fit(name)
    exact = expected["exact_optimum"]
    _close(model.loglik, exact["loglik"], rtol=ROUNDING)
    _close(model.fixef, exact["fixef"], rtol=EXACT)
    _check_varcorr(model, exact["varcorr"], rtol=EXACT)
    _close(model.nb_theta, exact["nb_theta"], rtol=EXACT)
    _close(_ranef_vector(model), exact["ranef"], rtol=EXACT, atol=EXACT * _sd_scale(exact))
    _close(model.std_errors, exact["se"], rtol=COVARIANCE)
    _close(model.vcov, exact["vcov"], rtol=COVARIANCE, atol=COVARIANCE * np.max(exact["se"]) ** 2)
    _close(_condvar_diagonal(model), exact["condvar"], rtol=COVARIANCE)


@pytest.mark.parametrize("name", MODELS)
def test_estimates_and_covariances_as_reported(name):
    model, expected, _ = _fit(name)
    assert list(model.fixef.index) == expected["fixef"]["names"]
    _close(model.fixef, expected["fixef"]["values"], rtol=FLAT)
    if expected["theta"] is not None:
        _close(model.theta, expected["theta"], rtol=FLAT)
    _check_varcorr(model, expected["varcorr"], rtol=FLAT)
    _close(model.nb_theta, expected["nb_theta"], rtol=FLAT)
    _close(model.std_errors, expected["se"], rtol=FLAT)
    _close(model.vcov, expected["vcov"], rtol=FLAT, atol=FLAT * np.max(expected["se"]) ** 2)
    scale = _sd_scale(expected)
    for block in expected["ranef"]:
        table = model.ranef[block["group"]]
        assert list(table.index) == block["levels"]
        _close(table[block["columns"]].to_numpy(), block["values"], rtol=FLAT, atol=FLAT * scale)
    for block in expected["condvar"]:
        diagonal = np.array([np.diagonal(np.array(level, dtype=float)) for level in block["values"]])
        _close(np.diagonal(model.ranef_condvar[block["group"]], axis1=1, axis2=2), diagonal, rtol=FLAT)


@pytest.mark.parametrize("name", MODELS)
def test_fitted_residuals_and_predictions_as_reported(name):
    model, expected, data = _fit(name)
    scale = _sd_scale(expected)
    mu = np.asarray(expected["fitted"]["values"])
    _close(model.fitted, mu, rtol=FLAT)
    _close(model.predict(), expected["predict_link"], rtol=FLAT, atol=FLAT * scale)
    _close(model.predict(type="response"), expected["predict_response"], rtol=FLAT)
    _close(model.residuals("pearson"), expected["residuals"]["pearson"], rtol=FLAT, atol=FLAT)
    # y - mu to 1e-4 of mu (a count of 30 has y - mu ~0.15)
    error = np.abs(model.residuals("response").to_numpy() - expected["residuals"]["response"])
    assert np.all(error <= FLAT * mu)
    _close(model.dispersion.ratio, expected["pearson_dispersion"], rtol=FLAT)
    newdata = pd.DataFrame(expected["newdata"])
    for kind in ("link", "response"):
        new = model.predict(newdata, type=kind, allow_new_levels=True)
        _close(new, expected[f"newdata_predict_{kind}"], rtol=FLAT, atol=FLAT * scale)
        fixed = model.predict(newdata, type=kind, re_form="~0")
        _close(fixed, expected[f"newdata_predict_{kind}_fixed"], rtol=FLAT, atol=FLAT * scale)


@pytest.mark.parametrize("name", MODELS)
def test_at_glmmtmb_estimates_everything_is_glmmtmbs(name):
    """At glmmTMB's own estimates: its Laplace likelihood (observed curvature), modes, fitted values,
    residuals and predictions, to the precision of glmmTMB's modes (TMB's inner Newton iteration)."""
    model = _at_glmmtmb_estimates(name)
    _, expected, _ = _fit(name)
    _close(model.loglik, expected["loglik"], rtol=INNER)
    for block in expected["ranef"]:
        table = model.ranef[block["group"]][block["columns"]]
        _close(table.to_numpy(), block["values"], rtol=INNER, atol=INNER)
    _close(model.fitted, expected["fitted"]["values"], rtol=INNER)
    _close(model.predict(), expected["predict_link"], rtol=INNER, atol=INNER)
    _close(model.predict(type="response"), expected["predict_response"], rtol=INNER)
    for kind, values in expected["residuals"].items():
        _close(model.residuals(kind), values, rtol=INNER, atol=INNER)
    newdata = pd.DataFrame(expected["newdata"])
    for kind in ("link", "response"):
        new = model.predict(newdata, type=kind, allow_new_levels=True)
        _close(new, expected[f"newdata_predict_{kind}"], rtol=INNER, atol=INNER)
    # glmmTMB's df.residual counts the dispersion; this model (dispersion given) does not
    pearson = model.residuals("pearson").to_numpy()
    _close(pearson @ pearson / expected["df_resid"], expected["pearson_dispersion"], rtol=INNER)


def test_fixed_dispersion_is_glmer_with_the_family():
    """``NegativeBinomial2(theta)``: glmmTMB's Laplace at a given dispersion; at the optimum's, the
    optimum's estimates (the profile's maximum)."""
    _, expected, data = _fit()
    exact = expected["exact_optimum"]
    family = mm.families.NegativeBinomial2(theta=exact["nb_theta"])
    model = mm.glmer(expected["formula"], data, family=family)
    assert type(model) is mm.GeneralizedLinearMixedModel and model.df_loglik == expected["df_loglik"] - 1
    _close(model.fixef, exact["fixef"], rtol=EXACT)
    _close(model.theta, exact["theta"], rtol=EXACT)
    _close(model.loglik, exact["loglik"], rtol=ROUNDING)


def test_summary_and_dict_as_glmmtmb():
    model, expected, _ = _fit()
    text = str(model.summary())
    assert text.startswith(" Family: nbinom2  ( log )\nFormula:          TICKS ~ YEAR")
    assert "\nDispersion parameter for nbinom2 family (): 3.29\n" in text
    assert "1791.8 1819.8 -888.9 1777.8 396" in " ".join(text.split())
    assert "Number of obs: 403, groups:  BROOD, 118; LOCATION, 63" in text
    assert "Conditional model:\n              Estimate Std. Error z value Pr(>|z|)" in text
    result = model.to_dict()
    assert result["family"] == "nbinom2" and result["nb_theta"] == model.nb_theta
    names = list(model.parameter_vcov.index)
    assert names == ["theta1", "theta2", *expected["fixef"]["names"], "log(nb_theta)"]


def test_refits_and_intervals():
    """Bootstrap refits estimate the dispersion again; Wald intervals from glmmTMB's vcov; no profiles."""
    model, expected, _ = _fit()
    refit = model.refit_response(model.simulate(1, seed=3)["sim_1"].to_numpy())
    assert isinstance(refit, mm.NegativeBinomial2MixedModel) and refit.nb_theta != model.nb_theta
    wald = model.confint(method="wald")
    _close(
        wald.loc["YEAR96"],
        model.fixef["YEAR96"] + np.array([-1, 1]) * 1.959964 * model.std_errors["YEAR96"],
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match="profiles of an nbinom2 fit are not available yet"):
        model.confint()


def test_command_line(capsys):
    _, expected, _ = _fit()
    assert main(["glmer", expected["formula"], "--family", "nbinom2", "--data", "grouseticks"]) == 0
    assert "Dispersion parameter for nbinom2 family (): 3.29" in capsys.readouterr().out


def test_observed_weights_are_the_curvature():
    """theta mu (theta + y) / (theta + mu)^2 is -d^2 log dnbinom / d eta^2 (log link), its expectation
    the expected weight theta mu / (theta + mu); PIRLS's working values are Newton's with it."""
    from scipy import stats

    family = mm.families.NegativeBinomial2(theta=2.5)
    y, eta, h = np.array([0.0, 3.0, 11.0]), np.array([-0.3, 0.8, 1.1]), 1e-4

    def loglik(e):
        return stats.nbinom.logpmf(y, 2.5, 2.5 / (2.5 + np.exp(e)))

    second = (loglik(eta + h) - 2 * loglik(eta) + loglik(eta - h)) / h**2
    mu = np.exp(eta)
    _close(family.observed_weights(y, mu), -second, rtol=1e-6)
    counts = np.arange(400.0)
    probabilities = stats.nbinom.pmf(counts, 2.5, 2.5 / (2.5 + mu[1]))
    expected_weight = probabilities @ family.observed_weights(counts, mu[1])
    _close(expected_weight, mu[1] ** 2 / family.variance(mu[1]), rtol=1e-10)
    rows = GlmRows(np.ones((3, 1)), y, np.full(3, 2.0), np.ones(3), np.full(3, 0.1), [])
    response, weights = rows.working(family, eta, mu)
    _close(weights, 2.0 * family.observed_weights(y, mu), rtol=1e-15)
    score = (y - mu) * mu / family.variance(mu)  # d log p / d eta
    _close(response, eta - 0.1 + score / family.observed_weights(y, mu), rtol=1e-14)


def test_bad_input():
    data = mm.datasets.load("grouseticks").copy()
    formula = "TICKS ~ YEAR + (1 | LOCATION)"
    with pytest.raises(ValueError, match="negative values not allowed for the 'negative binomial'"):
        mm.glmer(formula, data.assign(TICKS=data["TICKS"] - 1), family="nbinom2")
    with pytest.warns(UserWarning, match="non-integer counts in a negative binomial response"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mm.ConvergenceWarning)
            mm.glmer(formula, data.assign(TICKS=data["TICKS"] + 0.5), family="nbinom2")
    with pytest.raises(ValueError, match="nAGQ must be 1 and method None"):
        mm.glmer(formula, data, family="nbinom2", nAGQ=0)
    with pytest.raises(ValueError, match="nAGQ must be 1 and method None"):
        mm.glmer(formula, data, family="nbinom2", method="PQL")
    with pytest.raises(ValueError, match="link 'sqrt' is not available for the nbinom2 family"):
        mm.families.NegativeBinomial2(link="sqrt")
    with pytest.raises(ValueError, match="theta must be a positive number"):
        mm.families.NegativeBinomial2(theta=0.0)
