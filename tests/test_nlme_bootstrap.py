"""Simulation, parametric bootstrap and bootstrap intervals of gls and lme fits (the lmer code through the
fits' shared view): an lme fit without structures simulates and bootstraps what the equivalent lmer fit
does from the same seed; gls responses have the moments of the fitted variance function and correlation;
each correlation structure's coloring is undone by its whitening."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from nlme_models import data, fit

import mixedmodels as mm
from mixedmodels.inference.parameters import model_parameters, parameter_names

SLEEPSTUDY = "Reaction ~ Days"


def sleepstudy_pair(reml: bool = True):
    d = mm.datasets.load("sleepstudy")
    lmer = mm.lmer(f"{SLEEPSTUDY} + (Days | Subject)", d, reml=reml)
    lme = mm.lme(SLEEPSTUDY, d, random="~ Days | Subject", method="REML" if reml else "ML")
    return lmer, lme


# -- an lme fit without structures is the lmer fit ------------------------------------------------------
@pytest.mark.parametrize("reml", [True, False])
def test_lme_simulates_what_lmer_does(reml):
    """The same draws in the same order: residuals (rows in the frame's order), then each term's
    random effects; the responses differ only by the two fits' estimates (agreeing to ~1e-7)."""
    lmer, lme = sleepstudy_pair(reml)
    ours, theirs = lme.simulate(4, seed=11), lmer.simulate(4, seed=11)
    assert ours.index.equals(theirs.index) and list(ours.columns) == list(theirs.columns)
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=1e-7)


def test_lme_bootstrap_intervals_are_lmers():
    lmer, lme = sleepstudy_pair()
    assert parameter_names(lme) == parameter_names(lmer)
    assert parameter_names(lme, old_names=False) == parameter_names(lmer, old_names=False)
    np.testing.assert_allclose(model_parameters(lme), model_parameters(lmer), rtol=1e-5)
    ours = lme.confint(method="boot", nsim=40, seed=5, n_jobs=1)
    theirs = lmer.confint(method="boot", nsim=40, seed=5, n_jobs=1)
    assert ours.index.equals(theirs.index) and ours.columns.equals(theirs.columns)
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=1e-5, atol=1e-6)
    wald = lme.confint(method="wald")
    np.testing.assert_allclose(wald.to_numpy(), lmer.confint(method="wald").to_numpy(), rtol=1e-6)


# -- gls with corAR1 and varPower: the simulated responses' moments ------------------------------------
def test_gls_simulation_has_the_models_moments():
    """Mean X beta and, within each unit, covariance sigma^2 W^-1/2 R W^-1/2 with R_ij = Phi^|i - j| and
    W^-1/2 = diag(time^power), computed here from the reported parameters; tolerances 5 Monte Carlo
    standard errors of each mean and covariance."""
    model = fit("gls_hetero_power_ar1")
    frame = data("gls_hetero_power_ar1").loc[model.fitted.index]
    nsim = 4000
    draws = model.simulate(nsim, seed=2024).to_numpy()
    phi = model.correlation_parameters["Phi"]
    power = model.varfunc_params["power"]
    sd = model.sigma * np.abs(frame["time"].to_numpy()) ** power

    mean = model.frame.x @ model.fixef.to_numpy()
    assert np.all(np.abs(draws.mean(axis=1) - mean) < 5 * sd / np.sqrt(nsim))

    checked = 0
    for _, rows in frame.groupby("unit", observed=True).indices.items():
        position = np.arange(len(rows))  # corAR1("~ 1 | unit"): positions in the unit (times sorted)
        target = np.outer(sd[rows], sd[rows]) * phi ** np.abs(position[:, None] - position[None, :])
        empirical = np.cov(draws[rows])
        error = np.sqrt((np.outer(np.diag(target), np.diag(target)) + target**2) / nsim)
        assert np.all(np.abs(empirical - target) < 5 * error)
        checked += 1
    assert checked == 20
    # the moments are not those of independent rows
    first, second = draws[0], draws[1]
    assert np.corrcoef(first, second)[0, 1] == pytest.approx(phi, abs=0.06)


STRUCTURED = [
    "gls_ovary_ar1",
    "gls_ovary_car1",
    "gls_ovary_arma11",
    "gls_orthodont_compsymm",
    "gls_orthodont_symm_ident",
    "gls_spatial_exp_nugget",
    "lme_orthodont_ar1",
    "gls_hetero_comb_ar1",
]


@pytest.mark.parametrize("name", STRUCTURED)
def test_coloring_is_undone_by_whitening(name):
    """For each group, F_g S_g is orthogonal (S_g S_g' = C_g when F_g C_g F_g' = I): the coloring of
    the unit vectors at each position, whitened again, gives orthonormal columns per group."""
    model = fit(name)
    corstruct = model.residual.corstruct
    params = model.residual.split(model._structure_params())[0]
    layout = corstruct.layout
    size = layout.max_size
    product = np.empty((model.nobs, size))
    for k in range(size):
        unit = (layout.position == k).astype(float)
        product[:, k] = corstruct.whiten(params, corstruct.color(params, unit))[0]
    for start, length in zip(layout.starts, layout.lengths):
        block = product[start : start + length, :length]
        np.testing.assert_allclose(block @ block.T, np.eye(length), atol=1e-10)


def test_residual_errors_have_the_fits_variance_weights():
    """Without a correlation structure the errors are sigma e / weight, row by row."""
    model = fit("gls_orthodont_ident_sex")
    standard = np.linspace(-2, 2, model.nobs)
    expected = model.sigma * standard / model.variance_weights.to_numpy()
    np.testing.assert_allclose(model.residual_errors(standard), expected, rtol=1e-12)


# -- the bootstrap of gls and lme with structures -------------------------------------------------------
@pytest.mark.parametrize("name", ["gls_ovary_ar1", "lme_orthodont_ar1", "gls_bodyweight_power_fitted"])
def test_bootstrap_intervals_of_structured_fits(name):
    model = fit(name)
    names = parameter_names(model)
    assert names[-model.n_fixed :] == list(model.frame.fixed_names)
    structure = list(model.structure_parameters.index)
    assert structure and set(structure) <= set(names)
    assert names.index(".sigma") == len(names) - model.n_fixed - 1
    replicates = model.bootstrap(12, seed=3, n_jobs=1)
    assert list(replicates.columns) == names and replicates.notna().all().all()
    table = model.confint(method="boot", level=0.5, nsim=12, seed=3, n_jobs=1)
    assert list(table.index) == names
    assert np.all(table.iloc[:, 0] <= table.iloc[:, 1])


def test_refit_to_the_fits_own_response_is_the_fit():
    model = fit("gls_hetero_power_ar1")
    refit = model.refit_response(model.frame.y)
    np.testing.assert_allclose(model_parameters(refit), model_parameters(model), rtol=1e-6)
    with pytest.raises(ValueError, match="the model has 160 rows"):
        model.refit_response(np.zeros(3))


def test_refit_keeps_the_outer_iteration_settings():
    d = mm.datasets.load("BodyWeight")
    model = mm.gls("weight ~ Time * Diet", d, weights=mm.VarPower(), max_iter=7, tolerance=1e-5)
    refit = model.refit_response(model.simulate(1, seed=1).iloc[:, 0].to_numpy())
    assert (refit.max_iter, refit.tolerance) == (7, 1e-5)


# -- seeds and checks --------------------------------------------------------------------------------------
def test_same_seed_same_draws_whatever_the_processes():
    model = fit("gls_ovary_ar1")
    pd.testing.assert_frame_equal(model.simulate(3, seed=9), model.simulate(3, seed=9))
    assert not model.simulate(1, seed=9).equals(model.simulate(1, seed=10))
    serial = model.bootstrap(6, seed=4, n_jobs=1)
    pd.testing.assert_frame_equal(serial, model.bootstrap(6, seed=4, n_jobs=2))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda m: m.simulate(0), ValueError, "nsim"),
        (lambda m: m.simulate(2.0), TypeError, "nsim"),
        (lambda m: m.simulate(1, seed=-1), ValueError, "seed"),
        (lambda m: m.simulate(1, seed="x"), TypeError, "seed"),
        (lambda m: m.bootstrap(0), ValueError, "nsim"),
        (lambda m: m.bootstrap(3, n_jobs=0), ValueError, "n_jobs"),
        (lambda m: m.confint(method="boot", nsim=-2), ValueError, "nsim"),
        (lambda m: m.confint(method="nope"), ValueError, "method must be one of 'profile', 'wald', 'boot'"),
        (lambda m: m.confint(method="boot", level=1.5), ValueError, "level"),
        (lambda m: m.confint(method="wald", parm="nope"), ValueError, "unknown parameter"),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call(fit("gls_ovary_ar1"))
