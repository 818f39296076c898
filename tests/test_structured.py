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
from mixedmodels.errors import FormulaError
from mixedmodels.formula.parse import parse_formula

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


def test_the_parser_and_the_engine_know_the_same_structures():
    from mixedmodels.engine.covariance import STRUCTURES as ENGINE
    from mixedmodels.formula.parse import STRUCTURES as PARSER

    assert set(PARSER) == set(ENGINE)


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
    """Each structure's correlation matrix is the one it names, with its factor where one exists."""
    rng = np.random.default_rng(size)
    to_rho = lambda x: x / np.sqrt(1 + x * x)  # noqa: E731
    for x in rng.normal(size=4) * 2:
        cs = CompoundSymmetry(size)
        r = cs.correlation(np.array([x]))
        np.testing.assert_allclose(r[~np.eye(size, dtype=bool)], to_rho(x))
        factor = cs.correlation_factor(np.array([x]))
        positive_definite = to_rho(x) > -1 / (size - 1)
        assert np.all(np.isfinite(factor)) == positive_definite
        if positive_definite:
            np.testing.assert_allclose(factor @ factor.T, r, atol=1e-12)
    ar1 = AutoRegressive(size)
    factor = ar1.correlation_factor(np.array([1.0]))
    np.testing.assert_allclose(factor @ factor.T, ar1.correlation(np.array([1.0])), atol=1e-12)
    np.testing.assert_allclose(ar1.correlation(np.array([1.0]))[0], to_rho(1.0) ** np.arange(size))
    partial = rng.normal(size=size - 1) * 3
    toeplitz = Toeplitz(size).correlation(partial)
    p1 = to_rho(partial[0])
    assert toeplitz[0, 1] == pytest.approx(p1)
    if size > 2:  # Durbin-Levinson: r2 = p1^2 + p2 (1 - p1^2)
        assert toeplitz[0, 2] == pytest.approx(p1**2 + to_rho(partial[1]) * (1 - p1**2))
    assert np.linalg.eigvalsh(toeplitz).min() > 0


def test_a_structure_name_without_a_bar_stays_a_fixed_effects_call():
    """``cs(x)`` without a bar is formulaic's cubic spline (here without its df: an error), not x."""
    with pytest.raises(FormulaError, match=r"cs\(Days\)"):
        mm.lmer("Reaction ~ cs(Days) + (1 | Subject)", mm.datasets.load("sleepstudy"))
