"""Parametric bootstrap (lme4's bootMer) and confint(method="boot").

lme4's replicates cannot be reproduced (R's random numbers), so the checks are: the cheap refit equals
a fit from scratch, the seed fixes the result whatever the number of processes, the percentile rule
equals lme4's confint.bootMer on fixed replicates (fixture bootstrap_percentile.json, made by
tools/reference_inference.R), and a statistical check on sleepstudy with a Monte-Carlo tolerance.
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
from scipy import stats
from test_inference import _table, fitted, reference

import mixedmodels as mm
from mixedmodels.inference.bootstrap import percentile_interval
from mixedmodels.inference.parameters import model_parameters

FIXTURES = Path(__file__).parent / "fixtures" / "inference"


@cache
def sleepstudy_replicates(nsim: int, seed: int, n_jobs: int) -> pd.DataFrame:
    return fitted("sleepstudy_slope").bootstrap(nsim, seed=seed, n_jobs=n_jobs, progress=False)


def test_refit_equals_fit_from_scratch():
    """Reusing Z'Z, X'Z, X'X with a new response column gives the fit lmer makes of that data."""
    data = models.sleepstudy_weights_offset()
    m = mm.lmer("Reaction ~ Days + (Days | Subject)", data, weights="w", offset="off")
    response = m.simulate(1, seed=3)["sim_1"].to_numpy()
    refit = m.refit_response(response)
    data["Reaction"] = response
    direct = mm.lmer("Reaction ~ Days + (Days | Subject)", data, weights="w", offset="off")
    for ours, scratch in zip(refit.cross.xyz, direct.cross.xyz):
        np.testing.assert_allclose(ours, scratch, rtol=1e-13, atol=1e-10)
    np.testing.assert_allclose(refit.cross.xy, direct.cross.xy, rtol=1e-13, atol=1e-10)
    assert refit.cross.diag is m.cross.diag  # shared, not recomputed
    # the two optima agree to the optimizer's precision
    assert refit.deviance == pytest.approx(direct.deviance, rel=1e-10)
    np.testing.assert_allclose(refit.theta, direct.theta, atol=1e-6)
    np.testing.assert_allclose(model_parameters(refit), model_parameters(direct), rtol=1e-5)
    np.testing.assert_allclose(refit.fitted, direct.fitted, rtol=1e-6)
    assert refit.objective(direct.theta) == pytest.approx(direct.deviance, rel=1e-12)  # moves refit's factor


def test_reproducible_with_a_seed():
    first = sleepstudy_replicates(12, 7, 1)
    again = fitted("sleepstudy_slope").bootstrap(12, seed=7, n_jobs=1, progress=False)
    pd.testing.assert_frame_equal(first, again)
    other = fitted("sleepstudy_slope").bootstrap(12, seed=8, n_jobs=1, progress=False)
    assert not np.allclose(first.to_numpy(), other.to_numpy())
    assert list(first.columns) == [".sig01", ".sig02", ".sig03", ".sigma", "(Intercept)", "Days"]
    assert first.notna().all().all()


def test_parallel_equals_serial():
    """Replicate i uses child i of SeedSequence(seed), so workers change nothing."""
    serial = sleepstudy_replicates(12, 7, 1)
    parallel = sleepstudy_replicates(12, 7, 2)
    pd.testing.assert_frame_equal(serial, parallel)


def test_user_statistic_and_failures():
    m = fitted("dyestuff")
    table = m.bootstrap(6, statistic=lambda fit: fit.fixef, seed=1, n_jobs=1, progress=False)
    assert list(table.columns) == ["(Intercept)"]
    scalar = m.bootstrap(6, statistic=lambda fit: fit.sigma, seed=1, n_jobs=2, progress=False)
    assert list(scalar.columns) == ["statistic"]
    np.testing.assert_array_equal(scalar["statistic"], m.bootstrap(6, seed=1, progress=False)[".sigma"])

    def fragile(fit):
        if fit.sigma > m.sigma:
            raise ValueError("too noisy")
        return {"sigma": fit.sigma}

    with pytest.warns(RuntimeWarning, match=r"some bootstrap refits failed \(\d/6\), e.g. ValueError"):
        failed = m.bootstrap(6, statistic=fragile, seed=1, n_jobs=1, progress=False)
    assert failed["sigma"].isna().any() and failed["sigma"].notna().any()
    assert failed.attrs["failed"] == failed["sigma"].isna().sum()


def test_progress_line(capsys):
    fitted("dyestuff").bootstrap(3, seed=1, n_jobs=1, progress=True)
    assert "bootstrap: 3/3 refits" in capsys.readouterr().err
    fitted("dyestuff").bootstrap(3, seed=1, n_jobs=1, progress=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(("kwargs", "match"), [({"nsim": 0}, "nsim"), ({"nsim": 3, "n_jobs": 0}, "n_jobs")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fitted("dyestuff").bootstrap(**kwargs)


def _percentile_cases():
    data = json.loads((FIXTURES / "bootstrap_percentile.json").read_text())
    for case, block in data["cases"].items():
        for level_key, result in block["limits"].items():
            yield pytest.param(
                block["t"], float(level_key.removeprefix("level_")), result, id=f"{case}-{level_key}"
            )


@pytest.mark.parametrize(("columns", "level", "expected"), list(_percentile_cases()))
def test_percentile_interval_as_lme4(columns, level, expected):
    """lme4's confint.bootMer (boot.ci type "perc", boot:::norm.inter) on the same replicates."""
    table = expected["value"]
    extreme = any("extreme order statistics" in message for message in expected["messages"])
    for j, column in enumerate(columns):
        values = np.array([np.nan if v is None else v for v in column])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ours = percentile_interval(values, level)
        assert any("extreme order statistics" in str(w.message) for w in caught) == extreme
        lme4 = [table["values"][name][j] for name in table["columns"]]
        np.testing.assert_allclose(ours, lme4, rtol=1e-13)


def test_confint_boot_is_percentiles_of_the_replicates():
    m = fitted("sleepstudy_slope")
    replicates = sleepstudy_replicates(40, 11, 2)
    table = m.confint("boot", nsim=40, seed=11, level=0.9, progress=False)
    assert list(table.columns) == ["5 %", "95 %"]
    assert list(table.index) == list(replicates.columns)
    for name in table.index:
        np.testing.assert_array_equal(table.loc[name], percentile_interval(replicates[name].to_numpy(), 0.9))
    new_names = m.confint("boot", nsim=40, seed=11, level=0.9, parm="beta_", old_names=False, progress=False)
    np.testing.assert_array_equal(new_names.to_numpy(), table.loc[["(Intercept)", "Days"]].to_numpy())


def test_sleepstudy_bootstrap_agrees_with_wald_and_profile():
    """A statistical check with a Monte-Carlo tolerance of 4 standard errors (N = 400 replicates).

    sleepstudy is balanced with the same design for every subject, so GLS equals OLS for the fixed
    effects whatever theta: the bootstrap distribution of beta-hat is normal with exactly the Wald
    covariance of the fit.  Then (a) the bootstrap mean is within 4 SE/sqrt(N) of beta-hat; (b) the
    bootstrap SD estimates the Wald SE with relative standard error 1/sqrt(2(N - 1)) = 0.035, so
    |SD/SE - 1| < 0.14; (c) a 2.5 % or 97.5 % percentile has standard error
    sqrt(p(1-p)/N)/phi(1.96) SE = 0.134 SE, so the percentile limits are within 0.54 SE of the Wald
    limits, and within 0.6 SE of lme4's profile limits (ML, which differ from Wald by < 0.06 SE here).
    For sigma, the bootstrap SD estimates the asymptotic SD from 2 H^-1 (the Satterthwaite machinery),
    which is itself accurate to O(1/df) = 1 % here: |SD/asymptotic - 1| < 0.14 + 0.02.
    """
    m = fitted("sleepstudy_slope")
    n = 400
    replicates = sleepstudy_replicates(n, 2024, 2)
    assert replicates.notna().all().all()
    se = np.sqrt(np.diag(m.vcov))
    beta = replicates[["(Intercept)", "Days"]]
    mc_relative = 4 / np.sqrt(2 * (n - 1))
    assert np.all(np.abs(beta.mean() - m.fixef) < 4 * se / np.sqrt(n))
    assert np.all(np.abs(beta.std() / se - 1) < mc_relative)

    quantile_se = np.sqrt(0.025 * 0.975 / n) / stats.norm.pdf(1.96)  # in units of the SD
    wald = m.confint("wald")
    profile = _table(reference("sleepstudy_slope")["confint_profile"]["confint"])  # lme4 1.1-31
    for k, name in enumerate(["(Intercept)", "Days"]):
        limits = percentile_interval(replicates[name].to_numpy(), 0.95)
        assert np.all(np.abs(limits - wald.loc[name]) < 4 * quantile_se * se[k])
        assert np.all(np.abs(limits - profile.loc[name]) < (4 * quantile_se + 0.06) * se[k])
    sigma_sd = np.sqrt(m.varpar.covariance[-1, -1])
    assert abs(replicates[".sigma"].std() / sigma_sd - 1) < mc_relative + 0.02
