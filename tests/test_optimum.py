"""The optimizer reaches the optimum: on every reference model, from the default start, the REML criterion
or ML deviance is at or below the reference package's (lme4, glmmTMB) within 1e-7 relative (issue 11,
point 2), and a fit at the optimum gives no convergence warning."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import reference_models as models
import test_inference
import test_lme4_reference
import test_structured

import mixedmodels as mm

FIXTURES = Path(__file__).parent / "fixtures"
RTOL = 1e-7


def _criterion(model: mm.LinearMixedModel) -> float:
    return model.reml_criterion if model.reml else model.deviance


def _fit_quietly(fit):
    """A new fit (not the test session's cached one) and the convergence warnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", mm.ConvergenceWarning)
        warnings.simplefilter("ignore", mm.ModelMessage)
        model = fit()
    return model, [str(w.message) for w in caught if issubclass(w.category, mm.ConvergenceWarning)]


def _lmer(source, formula, **kwargs):
    return lambda: mm.lmer(formula, models.load(source), **kwargs)


@pytest.mark.parametrize("name", sorted(test_lme4_reference.MODELS))
def test_lme4_models(name):
    source, formula, kwargs = test_lme4_reference.MODELS[name]
    model, problems = _fit_quietly(_lmer(source, formula, **kwargs))
    reference = test_lme4_reference.reference(name)
    expected = reference["reml_criterion"] if model.reml else reference["deviance"]
    assert _criterion(model) <= expected + RTOL * abs(expected)
    assert not problems


@pytest.mark.parametrize("name", sorted({**test_inference.MODELS, **test_inference.AT_LME4_THETA}))
def test_inference_models(name):
    model, problems = _fit_quietly(_lmer(*{**test_inference.MODELS, **test_inference.AT_LME4_THETA}[name]))
    expected = test_inference.reference(name)["fit"]["reml_criterion"]
    assert _criterion(model) <= expected + RTOL * abs(expected)
    assert not problems


@pytest.mark.parametrize("path", sorted((FIXTURES / "structured").glob("*.json")), ids=lambda p: p.stem)
def test_structured_models(path):
    reference = json.loads(path.read_text())
    model, problems = _fit_quietly(lambda: test_structured._fit(reference))
    expected = -2 * reference["loglik"]  # glmmTMB's (restricted) log-likelihood
    ours = -2 * model.loglik
    assert ours <= expected + RTOL * abs(expected)
    assert not problems


def test_three_factor_design():
    reference = json.loads((FIXTURES / "aov" / "three_factor.json").read_text())
    data = models.pd.DataFrame(reference["data"])
    model, problems = _fit_quietly(lambda: mm.lmer(reference["reml"]["formula"], data))
    expected = reference["reml"]["reml_criterion"]
    assert model.reml_criterion <= expected + RTOL * abs(expected)
    assert not problems
