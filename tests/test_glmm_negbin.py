"""The negative binomial GLMM with its theta estimated (lme4's glmer.nb) against lme4 1.1-31's fixture
(tests/fixtures/glmm/grouseticks_nb.json, tools/reference_glmer.R), and its handling of bad input.

lme4's final glmer.nb fit is a refit started at its previous optimum, so its PIRLS stops after about one
iteration there and its Laplace deviance is the exact one to 2e-7 relative; we evaluate the exact one.  The
optimum is flat: the agreement is ~1e-5 relative, so the estimates are checked to 1e-4 (nb_theta 1e-5)."""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

FIXTURE = Path(__file__).parent / "fixtures" / "glmm" / "grouseticks_nb.json"
FLAT = 1e-4
NEAR_ZERO = 5e-5  # absolute, for values near 0 on the link scale: 1e-4 of the random effects' SDs (~0.6)


@cache
def _fit():
    expected = json.loads(FIXTURE.read_text())
    data = mm.datasets.load("grouseticks")
    return mm.glmer_nb(expected["formula"], data), expected, data


def _close(actual, expected, rtol=FLAT, atol=0.0):
    np.testing.assert_allclose(
        np.asarray(actual, dtype=float), np.asarray(expected, dtype=float), rtol=rtol, atol=atol
    )


def test_theta_and_likelihood():
    model, expected, _ = _fit()
    assert isinstance(model, mm.NegativeBinomialMixedModel)
    _close(model.nb_theta, expected["nb_theta"], rtol=1e-5)
    # lme4's logLik is its PIRLS-stopping Laplace value, 2e-7 relative from the exact one
    _close(model.loglik, expected["loglik"], rtol=1e-6)
    _close(model.aic, expected["aic"], rtol=1e-6)
    _close(model.bic, expected["bic"], rtol=1e-6)
    assert model.df_loglik == expected["df_loglik"]  # theta_nb counts, as lme4's npar
    assert model.df_resid == expected["df_resid"]
    assert model.nobs == expected["nobs"] and model.ngroups == expected["ngroups"]
    assert mm.families.NegativeBinomial(expected["nb_theta"]).name == expected["family"]
    assert model.to_dict()["nb_theta"] == model.nb_theta


def test_estimates_standard_errors_and_random_effects():
    model, expected, _ = _fit()
    assert list(model.fixef.index) == expected["fixef"]["names"]
    _close(model.fixef, expected["fixef"]["values"])
    _close(model.theta, expected["theta"])
    _close(model.std_errors, expected["se"])
    _close(model.deviance, expected["deviance"])
    for block in expected["ranef"]:
        table = model.ranef[block["group"]]
        assert list(table.index) == block["levels"]
        _close(table[block["columns"]].to_numpy(), block["values"], atol=NEAR_ZERO)
    for block in expected["condvar"]:
        _close(model.ranef_condvar[block["group"]], block["values"])


def test_fitted_residuals_and_predictions():
    model, expected, data = _fit()
    _close(model.fitted, expected["fitted"]["values"])
    _close(model.predict(), expected["predict_link"], atol=NEAR_ZERO)
    _close(model.predict(type="response"), expected["predict_response"])
    # ten times looser, as test_glmm's; y - mu to 1e-4 of mu (a count of 30 has y - mu ~0.15 +- 0.003)
    mu = np.asarray(expected["fitted"]["values"])
    for kind, values in expected["residuals"].items():
        error = np.abs(model.residuals(kind).to_numpy() - values)
        scale = mu if kind == "response" else 1.0
        assert np.all(error <= 10 * FLAT * np.abs(values) + 10 * NEAR_ZERO * scale), kind
    newdata = pd.DataFrame(expected["newdata"])
    for kind in ("link", "response"):
        _close(model.predict(newdata, type=kind, allow_new_levels=True), expected[f"newdata_predict_{kind}"])
        _close(model.predict(newdata, type=kind, re_form="~0"), expected[f"newdata_predict_{kind}_fixed"])


def test_summary_names_the_family():
    model, _, _ = _fit()
    assert f"Family: {model.family.name}  ( log )" in str(model.summary())
    assert model.family.name.startswith("Negative Binomial(3.303")


def test_fixed_theta_is_glmer_with_the_family():
    """glmer(family=NegativeBinomial(theta)) at lme4's theta gives lme4's estimates (the exact Laplace)."""
    _, expected, data = _fit()
    family = mm.families.NegativeBinomial(theta=expected["nb_theta"])
    model = mm.glmer(expected["formula"], data, family=family, pirls_convergence="exact")
    assert type(model) is mm.GeneralizedLinearMixedModel
    _close(model.fixef, expected["fixef"]["values"])
    _close(model.theta, expected["theta"])


def test_family_formulas():
    """MASS's negative.binomial: variance, deviance residuals (0 at mu = y) and -2 log L (R's dnbinom)."""
    family = mm.families.NegativeBinomial(theta=2.0)
    y, mu = np.array([0.0, 1.0, 4.0]), np.array([0.5, 1.0, 3.0])
    _close(family.variance(mu), mu + mu**2 / 2, rtol=1e-15)
    _close(family.deviance_residuals(y, y + (y == 0), np.ones(3))[1:], 0.0, atol=1e-14)
    # R: -2 * sum(dnbinom(c(0, 1, 4), size = 2, mu = c(0.5, 1, 3), log = TRUE))
    _close(family.aic(y, np.ones(3), mu, np.ones(3), 0.0), 7.8582569466622, rtol=1e-10)
    assert family == mm.families.NegativeBinomial(theta=2.0) != mm.families.NegativeBinomial(theta=3.0)


def test_bad_input():
    data = mm.datasets.load("grouseticks").copy()
    formula = "TICKS ~ YEAR + (1 | LOCATION)"
    with pytest.raises(ValueError, match="negative values not allowed for the 'negative binomial'"):
        mm.glmer_nb(formula, data.assign(TICKS=data["TICKS"] - 1))
    with pytest.raises(ValueError, match="theta must be a positive number"):
        mm.families.NegativeBinomial(theta=-1.0)
    with pytest.raises(ValueError, match="link 'logit' is not available"):
        mm.glmer_nb(formula, data, link="logit")
    with pytest.warns(UserWarning, match="non-integer counts in a negative binomial response"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mm.ConvergenceWarning)
            family = mm.families.NegativeBinomial(2.0)
            mm.glmer(formula, data.assign(TICKS=data["TICKS"] + 0.5), family=family)
