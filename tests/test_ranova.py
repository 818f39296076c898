"""Likelihood-ratio tests of random-effects terms, ``m.ranova()``, against lmerTest 3.1-3's ``ranova``.

Fixtures from tools/reference_inference.R: key ``ranova`` of each model fixture (the models of
test_inference.py) and ranova_cases.json (double-bar and slope-only terms, a term with three effects,
an ML fit, ``reduce.terms = FALSE``, weights with an offset).  The full and reduced models are fitted
with tight optimizer settings in R, so the tables are compared at rtol 1e-6.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import reference_models as models
from test_comparison import assert_same_table, expected_table
from test_inference import TABLES, compared, reference

from mixedmodels.formula.parse import parse_formula
from mixedmodels.inference.ranova import reduced_random_terms

CASES = json.loads((Path(__file__).parent / "fixtures" / "inference" / "ranova_cases.json").read_text())


@pytest.mark.parametrize("name", TABLES)
def test_ranova_of_the_reference_models(name):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = compared(name).ranova()
    # lmerTest's only messages are lme4's notes on singular reduced fits (sleepstudy_singular_term)
    assert all("singular" in message for message in reference(name)["ranova"]["messages"])
    assert_same_table(table, expected_table(reference(name)["ranova"]))


@pytest.mark.parametrize("name", sorted(CASES))
def test_ranova_cases(name):
    case = CASES[name]
    assert case["data_changes"] == "new columns w = 1 + (Days %% 3) and off = 2.5 * Days"
    model = models.fit(
        models.sleepstudy_weights_offset, case["formula"], reml=case["reml"], weights=case["weights"]
    )[1]
    np.testing.assert_allclose(model.theta, case["fit"]["theta"], rtol=1e-5)
    table = model.ranova(reduce_terms=case["reduce_terms"])
    assert case["ranova"]["messages"] == []
    assert_same_table(table, expected_table(case["ranova"]))


def test_only_terms_no_other_term_contains_are_reduced():
    """R: drop.scope(~ a * b) is "a:b"; the reduced term keeps a, b and the intercept."""
    (label, terms), *rest = reduced_random_terms(parse_formula("y ~ 1 + (a * b | g)").random)
    assert rest == []
    assert label == "a:b in (a * b | g)"
    assert [(t.lhs.text, t.group) for t in terms] == [("1 + a + b", "g")]
    (label, terms), *_ = reduced_random_terms(parse_formula("y ~ 1 + (0 + a + b | g)").random)
    assert label == "a in (0 + a + b | g)"
    assert [(t.lhs.text, t.group) for t in terms] == [("0 + b", "g")]
