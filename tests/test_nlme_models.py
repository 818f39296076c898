"""gls and lme against nlme 3.1-162 (fixtures from tools/reference_nlme.R), for every model of
tests/nlme_models.py: fits, structures, intervals and residuals."""

from __future__ import annotations

import pytest
from nlme_models import MODELS, check_fit, check_intervals, check_residuals, check_structures, fit, reference

NAMES = sorted(MODELS)


@pytest.mark.parametrize("name", NAMES)
def test_fit(name):
    check_fit(fit(name), reference(name))


@pytest.mark.parametrize("name", NAMES)
def test_structures(name):
    check_structures(fit(name), reference(name))


@pytest.mark.parametrize("name", NAMES)
def test_intervals(name):
    check_intervals(fit(name), reference(name))


@pytest.mark.parametrize("name", NAMES)
def test_residuals(name):
    check_residuals(fit(name), reference(name))
