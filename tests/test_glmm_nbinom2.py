"""glmmTMB's negative binomial GLMM (``family="nbinom2"``) against glmmTMB 1.1.5's fixture
(tests/fixtures/glmm/grouseticks_nb_glmmtmb.json, tools/reference_glmer.R), and its handling of bad input.

glmmTMB's nlminb stops where the gradient of -log L is still up to 5.5e-4, so its estimates are ~1e-5
(relative) from the optimum of its Laplace likelihood: the reported values are met to 1e-4 (the optimum is
flat).  The fixture's ``exact_optimum`` is that optimum, reached by Newton steps with glmmTMB's own gradient
and Hessian, with glmmTMB's sdreport there: the fit meets it to 1e-6 and the covariances to 1e-5 (they
come from central differences of the Laplace deviance).  At glmmTMB's reported estimates themselves, the
Laplace likelihood, the modes, the fitted values, residuals and predictions are glmmTMB's to rounding.
"""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.cli import main
from mixedmodels.engine.pirls import GlmRows

FIXTURE = Path(__file__).parent / "fixtures" / "glmm" / "grouseticks_nb_glmmtmb.json"
FLAT = 1e-4
EXACT = 1e-6
COVARIANCE = 1e-5
ROUNDING = 1e-10


@cache
def _fit():
    expected = json.loads(FIXTURE.read_text())
    data = mm.datasets.load("grouseticks")
    return mm.glmer(expected["formula"], data, family="nbinom2"), expected, data


@cache
def _at_glmmtmb_estimates() -> mm.GeneralizedLinearMixedModel:
    """The nbinom2 model evaluated at glmmTMB's reported estimates (no fitting there)."""
    _, expected, data = _fit()
    family = mm.families.NegativeBinomial2(theta=expected["nb_theta"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.ConvergenceWarning)
        problem = mm.glmer(expected["formula"], data, family=family).problem
    return mm.GeneralizedLinearMixedModel(
        problem, np.array(expected["theta"]), np.array(expected["fixef"]["values"]), 1
    )


def _close(actual, expected, rtol, atol=0.0):
    np.testing.assert_allclose(
        np.asarray(actual, dtype=float), np.asarray(expected, dtype=float), rtol=rtol, atol=atol
    )


def _ranef_vector(model) -> np.ndarray:
    return np.concatenate([model.ranef[g].to_numpy().ravel() for g in ("BROOD", "LOCATION")])


def test_likelihood_and_counts():
    model, expected, _ = _fit()
    assert isinstance(model, mm.NegativeBinomial2MixedModel)
    assert (model.family.name, model.family.link.name) == (expected["family"], expected["link"])
    # the optimum is flat: glmmTMB's -2 log L is 1.5e-8 above the optimum's, ours
    _close(model.loglik, expected["loglik"], rtol=ROUNDING)
    _close(-2 * model.loglik, expected["minus2loglik"], rtol=ROUNDING)
    _close(model.aic, expected["aic"], rtol=ROUNDING)
    _close(model.bic, expected["bic"], rtol=ROUNDING)
    assert model.loglik >= expected["loglik"]
    assert model.df_loglik == expected["df_loglik"]  # the dispersion counts
    assert model.df_resid == expected["df_resid"]
    assert model.nobs == expected["nobs"] and model.ngroups == expected["ngroups"]


def test_fit_is_the_exact_optimum():
    """The joint optimum over (theta, beta, log nb_theta) and glmmTMB's sdreport there."""
    model, expected, _ = _fit()
    exact = expected["exact_optimum"]
    _close(model.loglik, exact["loglik"], rtol=ROUNDING)
    _close(model.fixef, exact["fixef"], rtol=EXACT)
    _close(model.theta, exact["theta"], rtol=EXACT)
    _close(model.nb_theta, exact["nb_theta"], rtol=EXACT)
    _close(_ranef_vector(model), exact["ranef"], rtol=EXACT, atol=EXACT * 0.6)  # 1e-6 of the SDs
    _close(model.std_errors, exact["se"], rtol=COVARIANCE)
    _close(model.vcov, exact["vcov"], rtol=COVARIANCE)
    condvar = np.concatenate([model.ranef_condvar[g].ravel() for g in ("BROOD", "LOCATION")])
    _close(condvar, exact["condvar"], rtol=COVARIANCE)


def test_estimates_and_covariances_as_reported():
    model, expected, _ = _fit()
    assert list(model.fixef.index) == expected["fixef"]["names"]
    _close(model.fixef, expected["fixef"]["values"], rtol=FLAT)
    _close(model.theta, expected["theta"], rtol=FLAT)
    _close(model.nb_theta, expected["nb_theta"], rtol=FLAT)
    _close(model.std_errors, expected["se"], rtol=FLAT)
    _close(model.vcov, expected["vcov"], rtol=FLAT, atol=FLAT * np.max(expected["se"]) ** 2)
    assert list(model.varcorr["sdcor"]) == list(model.theta)
    for block in expected["ranef"]:
        table = model.ranef[block["group"]]
        assert list(table.index) == block["levels"]
        _close(table[block["columns"]].to_numpy(), block["values"], rtol=FLAT, atol=FLAT * 0.6)
    for block in expected["condvar"]:
        _close(model.ranef_condvar[block["group"]], block["values"], rtol=FLAT)


def test_fitted_residuals_and_predictions_as_reported():
    model, expected, data = _fit()
    mu = np.asarray(expected["fitted"]["values"])
    _close(model.fitted, mu, rtol=FLAT)
    _close(model.predict(), expected["predict_link"], rtol=FLAT, atol=FLAT * 0.6)
    _close(model.predict(type="response"), expected["predict_response"], rtol=FLAT)
    _close(model.residuals("pearson"), expected["residuals"]["pearson"], rtol=FLAT, atol=FLAT)
    # y - mu to 1e-4 of mu (a count of 30 has y - mu ~0.15)
    error = np.abs(model.residuals("response").to_numpy() - expected["residuals"]["response"])
    assert np.all(error <= FLAT * mu)
    _close(model.dispersion.ratio, expected["pearson_dispersion"], rtol=FLAT)
    newdata = pd.DataFrame(expected["newdata"])
    for kind in ("link", "response"):
        _close(
            model.predict(newdata, type=kind, allow_new_levels=True),
            expected[f"newdata_predict_{kind}"],
            rtol=FLAT,
        )
        _close(
            model.predict(newdata, type=kind, re_form="~0"),
            expected[f"newdata_predict_{kind}_fixed"],
            rtol=FLAT,
        )


def test_at_glmmtmb_estimates_everything_is_glmmtmbs():
    """At glmmTMB's own estimates: its Laplace likelihood (observed curvature), modes, fitted values,
    residuals and predictions to rounding."""
    model = _at_glmmtmb_estimates()
    _, expected, _ = _fit()
    _close(model.loglik, expected["loglik"], rtol=1e-13)
    for block in expected["ranef"]:
        _close(model.ranef[block["group"]].to_numpy(), block["values"], rtol=ROUNDING, atol=ROUNDING)
    _close(model.fitted, expected["fitted"]["values"], rtol=ROUNDING)
    _close(model.predict(), expected["predict_link"], rtol=ROUNDING, atol=ROUNDING)
    _close(model.predict(type="response"), expected["predict_response"], rtol=ROUNDING)
    for kind, values in expected["residuals"].items():
        _close(model.residuals(kind), values, rtol=ROUNDING, atol=ROUNDING)
    newdata = pd.DataFrame(expected["newdata"])
    for kind in ("link", "response"):
        new = model.predict(newdata, type=kind, allow_new_levels=True)
        _close(new, expected[f"newdata_predict_{kind}"], rtol=ROUNDING)
    # glmmTMB's df.residual counts the dispersion; this model (dispersion given) does not
    pearson = model.residuals("pearson").to_numpy()
    _close(pearson @ pearson / expected["df_resid"], expected["pearson_dispersion"], rtol=ROUNDING)


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
