"""Covariance parameter estimates with SAS PROC MIXED's COVTEST and CL limits, ``m.covparms()``.

References: sires_procmixed.json (tools/reference_inference.R: the asymptotic covariance from the
observed Hessian of -2 REML log-likelihood on the variance scale, computed densely in R and checked
against numDeriv; Satterthwaite chi-square limits) and the SAS output in seed 000_b255e0ec358448de.txt.
For models with several variance components and a correlated term, the standard errors are checked
against the same dense observed-Hessian formula evaluated here on the fitted variances, at rtol 1e-6
(covparms transforms the covariance of (theta, sigma) from VarianceParameters by the delta method).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from test_inference import fitted

import mixedmodels as mm

SIRES = json.loads((Path(__file__).parent / "fixtures" / "inference" / "sires_procmixed.json").read_text())
COLUMNS = ["Cov Parm", "Estimate", "Standard Error", "Z Value", "Pr > Z", "Alpha", "Lower", "Upper"]


def test_sires_against_proc_mixed_cl():
    expected = SIRES["covparms_cl"]["observed"]
    table = fitted("sires").covparms()
    assert list(table.columns) == COLUMNS
    assert list(table["Cov Parm"]) == expected["parameter"]
    np.testing.assert_allclose(table["Estimate"], expected["estimate"], rtol=1e-6)
    np.testing.assert_allclose(table["Standard Error"], expected["se"], rtol=1e-6)
    np.testing.assert_allclose(table["Lower"], expected["lower"], rtol=1e-6)
    np.testing.assert_allclose(table["Upper"], expected["upper"], rtol=1e-6)
    z = np.array(expected["estimate"]) / np.array(expected["se"])
    np.testing.assert_allclose(table["Z Value"], z, rtol=1e-6)
    np.testing.assert_allclose(table["Pr > Z"], stats.norm.sf(z), rtol=1e-6)
    np.testing.assert_allclose(table["Alpha"], 0.05, rtol=1e-12)


def test_sires_seed_numbers():
    """000_b255e0ec358448de.txt: sire 116.75 (29.9707, 7051.37), Residual 463.79 (305.11, 789.17)."""
    table = fitted("sires").covparms().set_index("Cov Parm")
    printed = {
        ("sire", "Estimate"): (116.75, 2),
        ("sire", "Lower"): (29.9707, 4),
        ("sire", "Upper"): (7051.37, 2),
        ("Residual", "Estimate"): (463.79, 2),
        ("Residual", "Lower"): (305.11, 2),
        ("Residual", "Upper"): (789.17, 2),
    }
    for (row, column), (value, decimals) in printed.items():
        assert table.loc[row, column] == pytest.approx(value, abs=0.5 * 10**-decimals), (row, column)


def _dense_z(codes: np.ndarray, column: np.ndarray, nlevels: int) -> np.ndarray:
    z = np.zeros((len(codes), nlevels))
    z[np.arange(len(codes)), codes] = column
    return z


def _dense_observed_se(model) -> np.ndarray:
    """SEs from 2 H^-1, H_ab = -tr(P V_a P V_b) + 2 y'P V_a P V_b P y, V_a = dV / d parameter a.

    The parameters follow the table: per term UN(i,j) by rows of the lower triangle, then Residual.
    """
    frame = model.frame
    derivatives = []
    for term in frame.blocks:
        z = [_dense_z(term.codes, term.z[:, i], term.nlevels) for i in range(term.ncols)]
        for i in range(term.ncols):
            for j in range(i + 1):
                derivatives.append(z[i] @ z[i].T if i == j else z[i] @ z[j].T + z[j] @ z[i].T)
    derivatives.append(np.eye(model.nobs))
    estimate = model.covparms()["Estimate"].to_numpy()
    v_inverse = np.linalg.inv(sum(e * d for e, d in zip(estimate, derivatives)))
    x = frame.x
    p = v_inverse - v_inverse @ x @ np.linalg.solve(x.T @ v_inverse @ x, x.T @ v_inverse)
    pv = [p @ d for d in derivatives]
    py = p @ frame.y
    hessian = np.array(
        [[-np.sum(a.T * b) + 2 * py @ a @ b @ frame.y for b in pv] for a in pv]
    )  # a @ b @ y = P V_a P V_b P y
    return np.sqrt(np.diag(2 * np.linalg.inv(hessian)))


@pytest.mark.parametrize("name", ["penicillin", "sleepstudy_slope", "pastes"])
def test_standard_errors_equal_the_dense_observed_information(name):
    model = fitted(name)
    np.testing.assert_allclose(model.covparms()["Standard Error"], _dense_observed_se(model), rtol=1e-6)


def test_correlated_term_rows_and_wald_limits_for_the_covariance():
    table = fitted("sleepstudy_slope").covparms(level=0.9)
    assert list(table.columns) == COLUMNS[:1] + ["Subject"] + COLUMNS[1:]
    assert list(table["Cov Parm"]) == ["UN(1,1)", "UN(2,1)", "UN(2,2)", "Residual"]
    assert list(table["Subject"]) == ["Subject", "Subject", "Subject", ""]
    varcorr = fitted("sleepstudy_slope").varcorr["vcov"].to_numpy()
    np.testing.assert_allclose(table["Estimate"], varcorr[[0, 2, 1, 3]], rtol=1e-12)
    covariance = table.iloc[1]
    half_width = stats.norm.ppf(0.95) * covariance["Standard Error"]
    assert covariance["Lower"] == pytest.approx(covariance["Estimate"] - half_width, rel=1e-12)
    assert covariance["Upper"] == pytest.approx(covariance["Estimate"] + half_width, rel=1e-12)
    assert covariance["Pr > Z"] == pytest.approx(2 * stats.norm.sf(abs(covariance["Z Value"])), rel=1e-12)
    np.testing.assert_allclose(table["Alpha"], 0.1, rtol=1e-12)


def test_zero_variance_has_no_standard_error():
    """Dyestuff2's batch variance is zero; the residual variance is then that of a normal sample, with
    REML estimate SS / (n - 1) and standard error sigma^2 sqrt(2 / (n - 1))."""
    data = mm.datasets.load("Dyestuff2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.ModelMessage)
        table = mm.lmer("Yield ~ 1 + (1 | Batch)", data).covparms().set_index("Cov Parm")
    assert table.loc["Batch", "Estimate"] == 0
    assert table.loc["Batch", ["Standard Error", "Z Value", "Pr > Z", "Lower", "Upper"]].isna().all()
    n = len(data)
    variance = data["Yield"].var(ddof=1)
    assert table.loc["Residual", "Estimate"] == pytest.approx(variance, rel=1e-6)
    assert table.loc["Residual", "Standard Error"] == pytest.approx(variance * np.sqrt(2 / (n - 1)), rel=1e-6)


def test_level_must_be_a_probability():
    with pytest.raises(ValueError, match="level must be between 0 and 1"):
        fitted("sires").covparms(level=95)
