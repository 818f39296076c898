"""Residual and influence diagnostics against lme4 1.1-31 and R's stats (tools/reference_diagnostics.R)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import reference_models as models
from test_engine import _dense_z
from test_predict import close  # relative, with a floor relative to the largest value

import mixedmodels as mm
from mixedmodels.diagnostics import influence as diagnostics

FIXTURES = Path(__file__).parent / "fixtures" / "diagnostics"

MODELS = {
    "sleepstudy_slope": ("sleepstudy", "Reaction ~ Days + (Days | Subject)", {}),
    "sleepstudy_weights": (models.sleepstudy_weights, "Reaction ~ Days + (Days | Subject)", {"weights": "w"}),
    "penicillin": ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", {}),
    "orthodont_intercept": ("Orthodont", "distance ~ age * Sex + (1 | Subject)", {}),
    "orthodont_slope": ("Orthodont", "distance ~ age * Sex + (age | Subject)", {}),
    "orthodont_missing": (models.orthodont_missing, "distance ~ age * Sex + (1 | Subject)", {}),
    "pastes": ("Pastes", "strength ~ 1 + (1 | batch/cask)", {}),
    "machines": ("Machines", "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)", {}),
}
NAMES = sorted(MODELS)


def fitted(name: str) -> mm.LinearMixedModel:
    source, formula, kwargs = MODELS[name]
    return models.fit(source, formula, **kwargs)[1]


@cache
def reference(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def test_every_fixture_has_a_model():
    assert sorted(p.stem for p in FIXTURES.glob("*.json") if p.stem != "lowess") == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_residuals_leverage_and_cooks_distance(name):
    """Pearson residuals, hatvalues, rstudent and cooks.distance(m) of lme4, row by row."""
    ref = reference(name)
    table = fitted(name).residual_diagnostics
    assert list(table.index + 1) == ref["rows_used"]
    assert list(table.columns) == [
        "fitted",
        "residual",
        "pearson",
        "standardized",
        "leverage",
        "cooks_distance",
    ]
    close(table["fitted"], ref["fitted"])
    close(table["residual"], ref["residuals"])
    close(table["pearson"], ref["pearson"])
    close(table["leverage"], ref["hatvalues"])
    close(table["standardized"], ref["rstudent"])
    close(table["cooks_distance"], ref["cooks_distance"])


def _sleepstudy_days_factor():
    data = mm.datasets.load("sleepstudy")
    data["DaysF"] = data["Days"].astype(str)
    return data


DENSE_CASES = {
    "penicillin": MODELS["penicillin"][:2],
    "machines": MODELS["machines"][:2],
    "orthodont_slope": MODELS["orthodont_slope"][:2],
    "slopes_and_crossed_factor": (
        _sleepstudy_days_factor,
        "Reaction ~ Days + (Days | Subject) + (1 | DaysF)",
    ),
    "factor_slope": ("Machines", "score ~ Machine + (0 + Machine | Worker)"),
}


def _dense_hat(m: mm.LinearMixedModel) -> np.ndarray:
    """H = W^1/2 [Z Lambda, X] (A)^-1 [Z Lambda, X]' W^1/2 built densely (small models only)."""
    frame = m.frame
    zl = np.column_stack(
        [_dense_z(block) @ np.kron(np.eye(block.nlevels), lam)
         for block, lam in zip(frame.blocks, m.chol.lambdas)]
    )  # fmt: skip
    sqrt_w = np.ones(m.nobs) if frame.weights is None else np.sqrt(frame.weights)
    weighted = np.column_stack([zl, frame.x]) * sqrt_w[:, None]
    penalty = np.diag(np.r_[np.ones(zl.shape[1]), np.zeros(frame.x.shape[1])])
    return weighted @ np.linalg.solve(weighted.T @ weighted + penalty, weighted.T)


@pytest.mark.parametrize("name", sorted(DENSE_CASES))
def test_leverage_is_the_diagonal_of_the_dense_hat_matrix(name):
    m = models.fit(*DENSE_CASES[name])[1]
    hat = _dense_hat(m)
    np.testing.assert_allclose(diagnostics.leverage(m), np.diag(hat), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(hat @ m.frame.y, m.fitted, rtol=1e-9)  # H is the fitted values' map


def test_leverage_in_small_blocks_of_rows_and_levels(monkeypatch):
    """The blocking of rows and levels (for memory on large data) does not change the result."""
    m = models.fit(*DENSE_CASES["slopes_and_crossed_factor"])[1]
    expected = diagnostics.leverage(m)
    monkeypatch.setattr(diagnostics, "_BLOCK_ENTRIES", 50)
    np.testing.assert_allclose(diagnostics.leverage(m), expected, rtol=1e-13)


def test_weighted_hat_matrix_maps_weighted_responses():
    m = fitted("sleepstudy_weights")
    hat = _dense_hat(m)
    sqrt_w = np.sqrt(m.frame.weights)
    np.testing.assert_allclose(diagnostics.leverage(m), np.diag(hat), rtol=1e-10)
    np.testing.assert_allclose(hat @ (m.frame.y * sqrt_w) / sqrt_w, m.fitted, rtol=1e-9)


def _influence_cases():
    return [
        (name, group)
        for name in NAMES
        for group in json.loads((FIXTURES / f"{name}.json").read_text())["influence"]
    ]


@pytest.mark.parametrize(("name", "group"), _influence_cases())
def test_group_influence(name, group):
    """Fits without each level: fixed effects and sigma to 1e-6, theta, dfbeta and Cook's distance to 1e-5.

    dfbeta = fixef[-j] - fixef is a difference of nearly equal numbers, so its relative agreement (and
    that of Cook's distance, a quadratic form in it) is that of the fits (1e-9) divided by its size.
    """
    ref = reference(name)["influence"][group]
    full_fixef = reference(name)["fit"]["fixef"]
    result = fitted(name).influence(group)
    assert [str(v) for v in result.fixef.index] == ref["levels"]
    close(result.fixef, ref["fixef"])
    close(result.sigma, ref["sigma"])
    close(result.theta, ref["theta"], rtol=1e-5)
    close(result.dfbeta, np.subtract(ref["fixef"], [full_fixef[c] for c in result.dfbeta.columns]), rtol=1e-5)
    close(result.cooks_distance, ref["cooks_distance"], rtol=1e-5)
    close(result.cooks_distance, ref["lme4"]["cooks_distance"], rtol=1e-5)
    assert result.converged.all()


def test_influence_of_a_data_column_matches_refitting_on_the_subset():
    """Dropping rows by subtracting their cross-products equals fitting the smaller data from scratch."""
    data, m = models.fit("sleepstudy", "Reaction ~ Days + (Days | Subject)")
    result = m.influence("Days")
    assert list(result.fixef.index) == [str(d) for d in range(10)]
    for day in (0, 4, 9):
        subset = mm.lmer("Reaction ~ Days + (Days | Subject)", data[data["Days"] != day])
        np.testing.assert_allclose(result.fixef.loc[str(day)], subset.fixef, rtol=1e-7)
        np.testing.assert_allclose(result.sigma.loc[str(day)], subset.sigma, rtol=1e-7)


def test_influence_of_a_level_that_identifies_a_fixed_effect_is_nan():
    """Without one Sex the SexFemale columns cannot be estimated: NaN, not a meaningless fit."""
    result = fitted("orthodont_intercept").influence("Sex")
    assert result.fixef.isna().all().all()
    assert result.cooks_distance.isna().all()
    assert not result.converged.any()


def test_model_without_fixed_effects():
    m = mm.lmer("Yield ~ 0 + (1 | Batch)", mm.datasets.load("Dyestuff"))
    table = m.residual_diagnostics
    np.testing.assert_allclose(table["leverage"], np.diag(_dense_hat(m)), rtol=1e-10)
    assert table["cooks_distance"].isna().all()
    with pytest.raises(ValueError, match="the model has none"):
        m.influence("Batch")


def test_unknown_group_is_an_error():
    m = fitted("sleepstudy_slope")
    with pytest.raises(ValueError, match="unknown group 'Subjekt'"):
        m.influence("Subjekt")
    with pytest.raises(ValueError, match="'Days' is not a grouping factor"):
        diagnostics.separate_fits(m, "Days")


@pytest.mark.parametrize("name", NAMES)
def test_separate_fits(name):
    """The shrinkage plot's no-pooling estimates: per-level least squares of the partial residual."""
    for group, ref in reference(name)["separate_fits"].items():
        ours = diagnostics.separate_fits(fitted(name), group)
        assert list(ours.columns) == ref["columns"]
        assert [str(v) for v in ours.index] == ref["levels"]
        close(ours, ref["values"])


def test_separate_fits_of_sleepstudy_are_per_subject_regressions():
    """With X = Z the no-pooling fits are lmList(Reaction ~ Days | Subject)."""
    data, m = models.fit("sleepstudy", "Reaction ~ Days + (Days | Subject)")
    ours = diagnostics.separate_fits(m, "Subject")
    for subject, rows in data.groupby("Subject"):
        slope, intercept = np.polyfit(rows["Days"], rows["Reaction"], 1)
        np.testing.assert_allclose(ours.loc[str(subject)], [intercept, slope], rtol=1e-10)


def test_random_effects_covariance():
    m = fitted("orthodont_slope")
    cov = diagnostics.random_effects_covariance(m, "Subject")
    variances = m.varcorr["vcov"]  # rows: var (Intercept), var age, cov, residual
    assert cov.loc["(Intercept)", "(Intercept)"] == pytest.approx(variances[0], rel=1e-12)
    assert cov.loc["age", "age"] == pytest.approx(variances[1], rel=1e-12)
    assert (
        cov.loc["age", "(Intercept)"]
        == cov.loc["(Intercept)", "age"]
        == pytest.approx(variances[2], rel=1e-12)
    )
    uncorrelated = mm.lmer("Reaction ~ Days + (Days || Subject)", mm.datasets.load("sleepstudy"))
    assert diagnostics.random_effects_covariance(uncorrelated, "Subject").loc["Days", "(Intercept)"] == 0.0


# -- the numbers behind the plots ----------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_normal_scores_and_qq_line(name):
    """qqnorm's x and qqline's intercept and slope, on R's own values (exact up to rounding)."""
    qq = reference(name)["qq_standardized"]
    values = np.array(qq["values"])
    np.testing.assert_allclose(diagnostics.normal_scores(len(values)), np.sort(qq["x"]), rtol=1e-13)
    np.testing.assert_allclose(diagnostics.qq_line(values), qq["line"], rtol=1e-12)
    for columns in reference(name)["qq_ranef"].values():
        for block in columns.values():
            np.testing.assert_allclose(
                diagnostics.qq_line(np.array(block["values"])), block["line"], rtol=1e-12
            )
            np.testing.assert_allclose(
                diagnostics.normal_scores(len(block["x"])), np.sort(block["x"]), rtol=1e-13
            )


def test_normal_scores_use_r_ppoints():
    """ppoints: (i - 3/8) / (n + 1/4) up to n = 10, (i - 1/2) / n beyond."""
    from scipy import stats

    np.testing.assert_allclose(diagnostics.normal_scores(5), stats.norm.ppf((np.arange(1, 6) - 0.375) / 5.25))
    np.testing.assert_allclose(diagnostics.normal_scores(11), stats.norm.ppf((np.arange(1, 12) - 0.5) / 11))


@pytest.mark.parametrize("name", NAMES)
def test_lowess_of_the_residual_plot(name):
    """lowess(fitted, pearson residuals) of the fit against R's on lme4's numbers."""
    ref = reference(name)
    table = fitted(name).residual_diagnostics
    x, y = diagnostics.lowess(table["fitted"].to_numpy(), table["pearson"].to_numpy())
    close(x, ref["lowess"]["x"])
    close(y, ref["lowess"]["y"], rtol=1e-5)


LOWESS = json.loads((FIXTURES / "lowess.json").read_text())


@pytest.mark.parametrize("case", sorted(k for k in LOWESS if k != "versions"))
def test_lowess_reproduces_r(case):
    """Same inputs as R's lowess (ties, other spans and iterations, delta = 0): equal to rounding."""
    block = LOWESS[case]
    args = block["args"] if isinstance(block["args"], dict) else {}
    names = {"f": "f", "iter": "iterations", "delta": "delta"}
    x, y = diagnostics.lowess(
        np.array(block["x_in"]), np.array(block["y_in"]), **{names[k]: v for k, v in args.items()}
    )
    np.testing.assert_array_equal(x, block["x"])
    np.testing.assert_allclose(y, block["y"], rtol=1e-12, atol=1e-12 * np.max(np.abs(block["y"])))


def test_lowess_of_two_points_and_of_one():
    x, y = diagnostics.lowess(np.array([2.0, 1.0]), np.array([5.0, 3.0]))
    np.testing.assert_array_equal(x, [1.0, 2.0])
    np.testing.assert_allclose(y, [3.0, 5.0])
    assert diagnostics.lowess(np.array([1.0]), np.array([4.0]))[1].tolist() == [4.0]


def test_residual_diagnostics_are_cached_and_of_their_own_estimates():
    """Results at another theta share the fit's objective; each reads the factor at its own estimates."""
    m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    first = m.residual_diagnostics
    assert m.residual_diagnostics is first
    other = mm.LinearMixedModel(m.problem, m.theta * 1.1)
    assert not np.allclose(other.residual_diagnostics["leverage"], first["leverage"])
    sigma = m.sigma
    m.objective(m.theta * 0.9)  # moves the shared factor
    assert m.sigma == sigma and np.allclose(mm.LinearMixedModel(m.problem, m.theta).sigma, sigma)
    assert isinstance(first, pd.DataFrame)
