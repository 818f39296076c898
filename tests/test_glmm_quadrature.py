"""Adaptive Gauss-Hermite quadrature (glmer's nAGQ > 1); the fit against lme4's nAGQ = 25 is in
test_glmm.py's fixture tests (cbpp_binomial_nagq25)."""

from __future__ import annotations

import numpy as np
import pytest

import mixedmodels as mm
from mixedmodels.engine.quadrature import QuadratureObjective, gauss_hermite_rule

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def test_rule_is_lme4s():
    """lme4's GHrule(3): nodes -sqrt(3), 0, sqrt(3), weights 1/6, 2/3, 1/6; a rule of n nodes integrates
    the normal moments up to degree 2n - 1 exactly."""
    nodes, weights = gauss_hermite_rule(3)
    np.testing.assert_allclose(nodes, [-np.sqrt(3), 0, np.sqrt(3)], atol=1e-15)
    np.testing.assert_allclose(weights, [1 / 6, 2 / 3, 1 / 6], rtol=1e-14)
    nodes, weights = gauss_hermite_rule(25)
    assert np.all(nodes == -nodes[::-1])
    np.testing.assert_allclose([weights @ nodes**k for k in (0, 2, 4, 6)], [1, 1, 3, 15], rtol=1e-12)


def test_one_node_is_the_laplace_deviance():
    """With one node (z = 0) the quadrature deviance is the Laplace deviance relative to the saturated
    model, at every (theta, beta)."""
    model = mm.glmer(CBPP, mm.datasets.load("cbpp"), family="binomial")
    laplace = model.objective
    quadrature = QuadratureObjective(laplace.pirls, model.problem.covariances, 1, laplace.convergence)
    for shift in (0.0, 0.1):
        point = np.concatenate([model.theta + shift, model.fixef.to_numpy() - shift])
        fit = laplace.modes(point[:1], point[1:])
        np.testing.assert_allclose(quadrature.value(fit), laplace.value(fit, saturated=True), rtol=1e-13)


def test_more_nodes_converge():
    """The quadrature deviance settles as nodes are added (cbpp: 25 and 40 nodes agree to 1e-9)."""
    cbpp = mm.datasets.load("cbpp")
    loglik = [mm.glmer(CBPP, cbpp, family="binomial", nAGQ=n).loglik for n in (9, 25, 40)]
    assert abs(loglik[1] - loglik[2]) < 1e-7 < abs(loglik[0] - loglik[2]) + 1e-7
    assert "nAGQ = 25" in str(mm.glmer(CBPP, cbpp, family="binomial", nAGQ=25).summary())


@pytest.mark.parametrize(
    "formula", ["use ~ age + (urban | district)", "use ~ age + (1 | district) + (1 | urban:district)"]
)
def test_only_a_single_scalar_term(formula):
    with pytest.raises(ValueError, match="single scalar random-effects term"):
        mm.glmer(formula, mm.datasets.load("Contraception"), family="binomial", nAGQ=5)
