"""After the glmer fit: likelihood-ratio tests and Wald intervals against lme4 1.1-31 (fixture of
tools/reference_glmer_anova.R), simulation, refits, the parametric bootstrap and the simulated scaled
quantile residuals (DHARMa's)."""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "glmm" / "anova.json").read_text())
CBPP = "cbind(incidence, size - incidence) ~ {} + (1 | herd)"


@cache
def _cbpp(fixed: str = "period"):
    return mm.glmer(CBPP.format(fixed), mm.datasets.load("cbpp"), family="binomial")


@cache
def _grouseticks(formula: str):
    return mm.glmer(formula, mm.datasets.load("grouseticks"), family="poisson")


def _assert_table(actual: pd.DataFrame, expected: dict, rtol: float) -> None:
    assert list(actual.index) == expected["rownames"]
    assert list(actual.columns) == expected["columns"]
    for column in expected["columns"]:
        wanted = np.array([np.nan if v is None else v for v in expected["values"][column]], dtype=float)
        np.testing.assert_allclose(actual[column].to_numpy(dtype=float), wanted, rtol=rtol, err_msg=column)


@pytest.mark.parametrize(
    "name, models",
    [
        ("cbpp_period", lambda: (_cbpp("1"), _cbpp("period"))),
        (
            "grouseticks_location",
            lambda: (
                _grouseticks("TICKS ~ YEAR + (1 | BROOD)"),
                _grouseticks("TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION)"),
            ),
        ),
    ],
)
def test_anova_of_glmer_fits_matches_lme4(name, models):
    m0, m1 = models()
    table = mm.anova(m1, m0, names=["m1", "m0"])  # ordered by npar, as lme4
    _assert_table(table, FIXTURE[name]["anova"], rtol=1e-6)
    assert mm.anova(m0=m0, m1=m1).index.tolist() == ["m0", "m1"]


def test_anova_refuses_a_pql_fit():
    pql = mm.glmer(CBPP.format("period"), mm.datasets.load("cbpp"), family="binomial", method="PQL")
    with pytest.raises(TypeError, match="lmer or glmer"):
        mm.anova(_cbpp(), pql)


def test_wald_intervals_match_lme4():
    """Fixed effects only; NaN for the variance parameter; no sigma row for a binomial (lme4)."""
    _assert_table(_cbpp().confint(method="wald"), FIXTURE["cbpp_wald"], rtol=1e-4)


# -- simulation -----------------------------------------------------------------------------------------
def test_simulate_is_deterministic_by_seed():
    model = _cbpp()
    first, again, other = (model.simulate(3, seed=s) for s in (7, 7, 8))
    pd.testing.assert_frame_equal(first, again)
    assert not first.equals(other)
    assert list(first.columns) == ["sim_1", "sim_2", "sim_3"]
    trials = mm.datasets.load("cbpp")["size"].to_numpy()[:, None]
    counts = first.to_numpy() * trials
    np.testing.assert_allclose(counts, np.rint(counts), atol=1e-9)  # proportions of the trials


def test_simulated_binomial_moments():
    """Per row, the mean and variance of the simulated proportions are those of the model: with
    b ~ N(0, theta^2), E p = E logistic(eta + b) and Var y = E[p (1 - p)] / n + Var p (Gauss-Hermite)."""
    model, nsim = _cbpp(), 4000
    sims = model.simulate(nsim, seed=11).to_numpy()
    trials = mm.datasets.load("cbpp")["size"].to_numpy()
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    weights = weights / weights.sum()
    eta = model.predict(re_form="~0").to_numpy()
    p = 1 / (1 + np.exp(-(eta[:, None] + model.theta[0] * nodes[None, :])))
    mean = p @ weights
    variance = (p * (1 - p)) @ weights / trials + (p * p) @ weights - mean**2
    z = (sims.mean(axis=1) - mean) / np.sqrt(variance / nsim)
    assert np.max(np.abs(z)) < 4.5
    np.testing.assert_allclose(sims.var(axis=1, ddof=1), variance, rtol=0.15)


@pytest.mark.parametrize(
    "family, moments",
    [
        (mm.families.Poisson(), lambda mu, w, s: (mu, mu)),
        (mm.families.NegativeBinomial(theta=2.0), lambda mu, w, s: (mu, mu + mu**2 / 2.0)),
        (mm.families.Gamma(link="log"), lambda mu, w, s: (mu, s**2 * mu**2 / w)),
        (mm.families.InverseGaussian(), lambda mu, w, s: (mu, s**2 * mu**3 / w)),
        (mm.families.Gaussian(), lambda mu, w, s: (mu, s**2 / w)),
        (mm.families.Binomial(), lambda mu, w, s: (mu, mu * (1 - mu) / w)),
    ],
)
def test_family_draws_have_the_family_moments(family, moments):
    rng = np.random.default_rng(5)
    n, scale = 200_000, 0.7
    mu, weights = np.full(n, 0.3 if isinstance(family, mm.families.Binomial) else 2.5), np.full(n, 4.0)
    draws = family.sample(mu, weights, scale, rng)
    mean, variance = moments(mu[0], weights[0], scale)
    assert abs(draws.mean() - mean) < 5 * np.sqrt(variance / n)
    np.testing.assert_allclose(draws.var(), variance, rtol=0.03)


SIMULATED = json.loads((Path(__file__).parent / "fixtures" / "glmm" / "simulate_moments.json").read_text())
SIMULATED_FAMILIES = {
    "gamma_log": mm.families.Gamma(link="log"),
    "inverse_gaussian_log": mm.families.InverseGaussian(link="log"),
}


def _moments(draws: np.ndarray) -> dict[str, np.ndarray]:
    """Per row (draws in columns): mean, variance and fourth central moment, as the R script."""
    centred = draws - draws.mean(axis=1, keepdims=True)
    return {
        "mean": draws.mean(axis=1),
        "var": np.sum(centred**2, axis=1) / (draws.shape[1] - 1),
        "m4": np.mean(centred**4, axis=1),
    }


def _differences_in_standard_errors(ours: dict, theirs: dict, n: int) -> np.ndarray:
    """|ours - theirs| of the means and the variances over the standard error of the difference of two
    independent Monte-Carlo estimates from ``n`` draws each (var / n for a mean, (m4 - var^2) / n for a
    variance)."""
    out = []
    for key, spread in (("mean", lambda m: m["var"]), ("var", lambda m: m["m4"] - m["var"] ** 2)):
        se = np.sqrt((spread(ours) + spread(theirs)) / n)
        out.append(np.abs(ours[key] - theirs[key]) / se)
    return np.concatenate(out)


@pytest.mark.parametrize("name", sorted(SIMULATED_FAMILIES))
def test_gamma_and_inverse_gaussian_simulations_have_the_fitted_distribution(name):
    """simulate() against R's draws (tools/reference_glmer_simulate.R, nsim = 4000) from the same
    model at lme4's estimates: per row, the means and variances of the draws with new random effects
    (lme4's default) and at the conditional modes (use.u = TRUE: the family's draws at the fitted means)
    agree within 5 standard errors of the Monte-Carlo difference.  R's reference is lme4's simulate()
    with the fitted model's distribution (shape w / sigma^2; inverse Gaussian dispersion sigma^2 / w);
    lme4 1.1-31's own Gamma (shape sigma w, its GitHub #782) and inverse Gaussian (shape w / sigma)
    draws have another variance, which these checks tell apart."""
    from mixedmodels.models.glmm.results import GeneralizedLinearMixedModel

    expected = SIMULATED[name]
    nsim, rows = SIMULATED["nsim"], np.array(SIMULATED["rows"]) - 1
    data = pd.read_csv(Path(__file__).parent / "fixtures" / "glmm" / "data" / "gamma_sim.csv")
    fit = mm.glmer(SIMULATED["formula"], data, family=SIMULATED_FAMILIES[name])
    model = GeneralizedLinearMixedModel(
        fit.problem, np.array(expected["theta"]), np.array(expected["beta"]), 1
    )
    np.testing.assert_allclose(model.sigma, expected["sigma"], rtol=1e-6)
    np.testing.assert_allclose(model.fitted.to_numpy()[rows], expected["fitted"], rtol=1e-6)

    marginal = _moments(model.simulate(nsim, seed=11).to_numpy()[rows])
    rng = np.random.default_rng(12)
    mu, weights = np.repeat(model.fitted.to_numpy()[rows], nsim), np.ones(len(rows) * nsim)
    conditional = _moments(model.family.sample(mu, weights, model.sigma, rng).reshape(len(rows), nsim))
    for ours, key in ((marginal, "new_random_effects"), (conditional, "conditional")):
        theirs = {k: np.array(v) for k, v in expected[key]["model"].items()}
        assert np.all(_differences_in_standard_errors(ours, theirs, nsim) < 5), key
    shipped = {k: np.array(v) for k, v in expected["conditional"]["lme4"].items()}
    assert np.all(_differences_in_standard_errors(conditional, shipped, nsim)[len(rows) :] > 5)


def test_binomial_simulation_needs_integer_trials():
    with pytest.raises(ValueError, match="non-integer prior weights"):
        mm.families.Binomial().sample(np.full(3, 0.5), np.full(3, 2.5), 1.0, np.random.default_rng(0))


# -- refits and the bootstrap ---------------------------------------------------------------------------
def test_refit_to_its_own_response_gives_the_fit():
    model = _cbpp()
    again = model.refit_response(model.problem.rows.y)
    np.testing.assert_allclose(again.fixef, model.fixef, rtol=1e-6)
    np.testing.assert_allclose(again.theta, model.theta, rtol=1e-6)
    np.testing.assert_allclose(again.loglik, model.loglik, rtol=1e-9)
    with pytest.raises(ValueError, match="shape"):
        model.refit_response(np.zeros(3))
    with pytest.raises(ValueError):
        model.refit_response(np.full(model.nobs, 2.0))  # proportions above 1


def test_bootstrap_and_boot_intervals():
    model = _cbpp()
    replicates = model.bootstrap(6, seed=3, n_jobs=1)
    assert list(replicates.columns) == [".sig01", "(Intercept)", "period2", "period3", "period4"]
    assert replicates.attrs["failed"] == 0 and np.all(np.isfinite(replicates.to_numpy()))
    pd.testing.assert_frame_equal(replicates, model.bootstrap(6, seed=3, n_jobs=2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # extreme order statistics of 19 replicates
        limits = model.confint(method="boot", nsim=19, seed=1, n_jobs=1)
    assert list(limits.columns) == ["2.5 %", "97.5 %"]
    assert np.all(limits["2.5 %"] < limits["97.5 %"])


def test_negative_binomial_refit_estimates_theta_again():
    model = mm.glmer_nb("TICKS ~ YEAR + (1 | LOCATION)", mm.datasets.load("grouseticks"))
    again = model.refit_response(model.problem.rows.y)
    np.testing.assert_allclose(again.nb_theta, model.nb_theta, rtol=1e-4)
    np.testing.assert_allclose(again.loglik, model.loglik, rtol=1e-7)


# -- simulated scaled quantile residuals ----------------------------------------------------------------
def test_scaled_residuals_are_uniform_under_the_model_and_reproducible():
    model = _cbpp()
    simulated = model.refit_response(model.simulate(1, seed=21)["sim_1"].to_numpy())
    residuals = simulated.simulate_residuals(nsim=250, seed=4)
    values = residuals.residuals.to_numpy()
    assert np.all((values >= 0) & (values <= 1))
    assert residuals.test_uniformity().pvalue > 0.01
    pd.testing.assert_series_equal(residuals.residuals, simulated.simulate_residuals(250, seed=4).residuals)
    assert residuals.simulations.shape == (model.nobs, 250)


def test_scaled_residuals_of_counts_and_their_qq_plot():
    import matplotlib

    matplotlib.use("Agg")
    model = _grouseticks("TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION)")
    residuals = model.simulate_residuals(nsim=100, seed=1)
    assert residuals.test_uniformity().pvalue > 0.01  # the fitted model describes the ticks
    figure = residuals.qq()
    (ax,) = figure.axes
    assert "KS test p" in ax.get_title()
    assert len(ax.lines[0].get_xdata()) == model.nobs


def test_scaled_residuals_detect_overdispersion():
    """Counts simulated with extra variance and fitted by a Poisson GLMM: the KS test rejects."""
    rng = np.random.default_rng(2)
    group = np.repeat(np.arange(20), 15)
    mu = np.exp(1.0 + rng.normal(0, 0.3, 20)[group])
    data = pd.DataFrame({"y": rng.negative_binomial(1.0, 1.0 / (1.0 + mu)), "g": group.astype(str)})
    model = mm.glmer("y ~ 1 + (1 | g)", data, family="poisson")
    assert model.dispersion.p_value < 1e-6
    assert model.simulate_residuals(nsim=200, seed=3).test_uniformity().pvalue < 1e-3


def test_gamma_fit_has_a_sigma_row_and_continuous_residuals():
    data = pd.read_csv(Path(__file__).parent / "fixtures" / "glmm" / "data" / "gamma_sim.csv")
    model = mm.glmer("y ~ x + (1 | g)", data, family=mm.families.Gamma(link="log"))
    assert model.confint(method="wald").index.tolist() == [".sig01", ".sigma", "(Intercept)", "x"]
    assert np.all(model.simulate(2, seed=1).to_numpy() > 0)
    residuals = model.simulate_residuals(nsim=200, seed=2)
    assert residuals.test_uniformity().pvalue > 0.01
    # no ties with continuous simulations: each residual is a multiple of 1 / nsim
    np.testing.assert_allclose(residuals.residuals * 200, np.rint(residuals.residuals * 200), atol=1e-9)
