"""Structured random-effects covariances (us, diag, cs, ar1, toep) against glmmTMB 1.1.5.

Fixtures from tools/reference_structured.R.  glmmTMB maximizes the (restricted) likelihood over all
parameters with nlminb; we profile as lme4 does, so the optima agree to the accuracy of the flatter
of the two optimizers (the issue's 1e-4 for coefficients and SEs, 1e-3 for variance parameters).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import mixedmodels as mm
from mixedmodels.engine.covariance import AutoRegressive, CompoundSymmetry, Toeplitz
from mixedmodels.formula import FormulaError, parse_formula

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "structured").glob("*.json"))


def _fit(reference: dict) -> mm.LinearMixedModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.ModelMessage)
        return mm.lmer(reference["formula"], mm.datasets.load(reference["dataset"]), reml=reference["reml"])


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_structured_covariance_matches_glmmtmb(path):
    reference = json.loads(path.read_text())
    m = _fit(reference)
    assert m.loglik == pytest.approx(reference["loglik"], rel=1e-7)
    assert m.aic == pytest.approx(reference["aic"], rel=1e-7)
    assert m.bic == pytest.approx(reference["bic"], rel=1e-7)
    assert list(m.fixef.index) == reference["fixef"]["names"]
    np.testing.assert_allclose(m.fixef, reference["fixef"]["values"], rtol=1e-4)
    np.testing.assert_allclose(m.vcov, np.array(reference["vcov"]), rtol=1e-4)
    assert m.sigma == pytest.approx(reference["sigma"], rel=1e-4)
    (term,) = reference["terms"]
    names = term["names"]
    covariance = np.array(term["covariance"])
    ours = m.varcorr[m.varcorr["group"] == term["group"]]
    for a, name in enumerate(names):
        variance = ours[(ours["var1"] == name) & ours["var2"].isna()]["vcov"].item()
        assert variance == pytest.approx(covariance[a, a], rel=1e-3)
        for b in range(a + 1, len(names)):
            cov = ours[(ours["var1"] == name) & (ours["var2"] == names[b])]["vcov"].item()
            assert cov == pytest.approx(covariance[a, b], rel=1e-3, abs=1e-8 * covariance.max())


def test_structure_parameter_counts_follow_glmmtmb():
    """cs and toep have a variance per column, ar1 one in all."""
    data = mm.datasets.load("Machines")
    counts = {}
    for structure in ("us", "diag", "cs", "ar1", "toep"):
        m = mm.lmer(f"score ~ Machine + {structure}(0 + Machine | Worker)", data, reml=False)
        counts[structure] = len(m.theta)
    assert counts == {"us": 6, "diag": 3, "cs": 4, "ar1": 2, "toep": 5}


def test_us_is_lme4s_default_and_diag_is_the_double_bar():
    data = mm.datasets.load("sleepstudy")
    default = mm.lmer("Reaction ~ Days + (Days | Subject)", data)
    unstructured = mm.lmer("Reaction ~ Days + us(Days | Subject)", data)
    assert unstructured.reml_criterion == pytest.approx(default.reml_criterion, rel=1e-12)
    diagonal = mm.lmer("Reaction ~ Days + diag(Days | Subject)", data)
    double_bar = mm.lmer("Reaction ~ Days + (Days || Subject)", data)
    assert diagonal.reml_criterion == pytest.approx(double_bar.reml_criterion, rel=1e-10)
    np.testing.assert_allclose(diagonal.fixef, double_bar.fixef, rtol=1e-7)


def test_structure_is_parsed_per_term():
    parsed = parse_formula("y ~ x + ar1(0 + t | g) + (1 | h) + cs(1 + x | a/b)")
    assert [(t.structure, t.group) for t in parsed.random] == [
        ("ar1", "g"),
        ("us", "h"),
        ("cs", "b:a"),
        ("cs", "a"),
    ]
    with pytest.raises(FormulaError, match="single bar"):
        parse_formula("y ~ diag(x || g)")


@pytest.mark.parametrize("size", [2, 3, 5])
def test_correlation_factors(size):
    """Each structure's factor reproduces its correlation matrix; Toeplitz stays positive definite."""
    rng = np.random.default_rng(size)
    for structure in (CompoundSymmetry(size), AutoRegressive(size), Toeplitz(size)):
        x = rng.normal(size=structure.n_corr)
        r = structure.correlation(x)
        factor = structure.correlation_factor(x)
        if np.all(np.isfinite(factor)):
            np.testing.assert_allclose(factor @ factor.T, r, atol=1e-12)
        np.testing.assert_allclose(np.diag(r), 1.0)
    ar1 = AutoRegressive(size).correlation(np.array([1.0]))
    rho = 1 / np.sqrt(2)
    np.testing.assert_allclose(ar1[0], rho ** np.arange(size))
    toeplitz = Toeplitz(size).correlation(rng.normal(size=size - 1) * 3)
    assert np.linalg.eigvalsh(toeplitz).min() > 0
