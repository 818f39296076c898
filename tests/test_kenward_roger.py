"""Kenward-Roger against pbkrtest 0.5.2 and lmerTest 3.1-3 (fixtures of tools/reference_inference.R).

* ``vcov_kenward_roger`` is pbkrtest's ``vcovAdj``;
* ``coef_table.kenward_roger`` is lmerTest's summary with ddf = "Kenward-Roger" (standard errors from
  the adjusted covariance, df from pbkrtest's ``Lb_ddf``).

lmerTest's Kenward-Roger ``contest`` and ``anova`` tables (pbkrtest's ``KRmodcomp`` F tests) are
compared in test_anova.py.
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pytest
import reference_models as models
import scipy.linalg as la
from test_inference import MODELS, TABLES, _table, at_reference_theta, compared, fitted, reference

import mixedmodels as mm
from mixedmodels.inference.kenward_roger import _RandomEffectsAlgebra, kenward_roger_df, kenward_roger_f_test

RTOL = 1e-4


@pytest.mark.parametrize("name", TABLES)
def test_adjusted_vcov_at_lme4_theta(name):
    expected = np.array(reference(name)["vcov_kenward_roger"])
    ours = at_reference_theta(name).vcov_kenward_roger.to_numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-11 * np.abs(expected).max())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_adjusted_vcov_at_our_fit(name):
    """Limited by how closely the two optimizers agree on theta (up to 3e-6 relative here)."""
    expected = np.array(reference(name)["vcov_kenward_roger"])
    ours = fitted(name).vcov_kenward_roger.to_numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("name", TABLES)
def test_kenward_roger_coefficient_table(name):
    expected = _table(reference(name)["coef_table"]["kenward_roger"])
    ours = compared(name).coef_table("kenward-roger")
    assert list(ours.index) == list(expected.index)
    assert list(ours.columns) == list(expected.columns)
    np.testing.assert_allclose(ours["Estimate"], expected["Estimate"], rtol=1e-5, atol=1e-8)
    for column in ["Std. Error", "df", "t value"]:
        np.testing.assert_allclose(ours[column], expected[column], rtol=RTOL, err_msg=column)
    np.testing.assert_allclose(ours["Pr(>|t|)"], expected["Pr(>|t|)"], rtol=RTOL)


@pytest.mark.parametrize("name", TABLES)
def test_df_at_lme4_theta(name):
    expected = _table(reference(name)["coef_table"]["kenward_roger"])["df"].to_numpy()
    model = at_reference_theta(name)
    ours = [kenward_roger_df(model, row) for row in np.eye(model.n_fixed)]
    np.testing.assert_allclose(ours, expected, rtol=1e-8)


def test_dependent_rows_test_their_span():
    """pbkrtest replaces a rank-deficient L by a basis of its rows; the test depends on the span only."""
    model = fitted("machines")
    full = kenward_roger_f_test(model, [[0, 1, 0], [0, 0, 1]])
    redundant = kenward_roger_f_test(model, [[0, 1, 0], [0, 0, 1], [0, 2, -3]])
    rotated = kenward_roger_f_test(model, [[0, 1, 1], [0, 1, -1]])
    np.testing.assert_allclose(redundant, full, rtol=1e-10)
    np.testing.assert_allclose(rotated, full, rtol=1e-10)


def test_bad_inputs():
    model = fitted("machines")
    with pytest.raises(ValueError, match="3 columns"):
        kenward_roger_df(model, [1.0, 0.0])
    with pytest.raises(ValueError, match="3 columns"):
        kenward_roger_f_test(model, np.ones((2, 4)))
    with pytest.raises(ValueError, match="one contrast row"):
        kenward_roger_df(model, np.eye(3)[:2])
    with pytest.raises(ValueError, match="zero"):
        kenward_roger_f_test(model, np.zeros((1, 3)))
    data, ml = models.fit("Machines", MODELS["machines"][1], reml=False)
    with pytest.raises(ValueError, match="REML"):
        ml.coef_table("kenward-roger")


# ---------------------------------------------------------------------------------------------------------
# The Woodbury algebra against pbkrtest's dense N x N formulas, written out here for small data
# ---------------------------------------------------------------------------------------------------------
def dense_vcov_adjusted(model: mm.LinearMixedModel, weights: np.ndarray | None = None) -> np.ndarray:
    """pbkrtest's vcovAdj with Sigma and G_r as n x n matrices (residual covariance sigma^2 W^-1)."""
    x = model.frame.x
    n = len(x)
    s2 = model.sigma**2
    derivatives, sigma = [], s2 * np.diag(1 / weights if weights is not None else np.ones(n))
    for term, t in zip(model.frame.blocks, model.objective.lambdas(model.theta)):
        p = term.ncols
        z = np.zeros((n, term.nlevels * p))
        for a in range(p):
            z[np.arange(n), term.codes * p + a] = term.z[:, a]
        covariance = s2 * t @ t.T
        sigma += z @ np.kron(np.eye(term.nlevels), covariance) @ z.T
        for b in range(p):
            for a in range(b, p):
                indicator = np.zeros((p, p))
                indicator[a, b] = indicator[b, a] = 1.0
                derivatives.append(z @ np.kron(np.eye(term.nlevels), indicator) @ z.T)
    derivatives.append(np.diag(1 / weights) if weights is not None else np.eye(n))
    inverse = la.inv(sigma)
    phi = la.inv(x.T @ inverse @ x)
    h = [g @ inverse for g in derivatives]
    p_mats = [-(x.T @ inverse @ g @ inverse @ x) for g in derivatives]
    q_mats = [[x.T @ inverse @ gr @ inverse @ gs @ inverse @ x for gs in derivatives] for gr in derivatives]
    m = len(derivatives)
    information = np.array(
        [
            [
                np.sum(h[r].T * h[s])
                - 2 * np.sum(phi * q_mats[r][s])
                + np.sum((phi @ p_mats[r]) * (p_mats[s] @ phi))
                for s in range(m)
            ]
            for r in range(m)
        ]
    )
    w = 2 * la.inv(information)
    correction = sum(
        w[r, s] * (q_mats[r][s] - p_mats[r] @ phi @ p_mats[s]) for r in range(m) for s in range(m)
    )
    return phi + 2 * phi @ correction @ phi


@pytest.mark.parametrize(
    "source, formula",
    [
        ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
        ("sleepstudy", "Reaction ~ Days + (Days | Subject)"),
        ("sleepstudy", "Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)"),
        ("Pastes", "strength ~ 1 + (1 | batch/cask)"),
        ("Machines", "score ~ Machine + (Machine | Worker)"),
        (models.sleepstudy_nine_groups, "Reaction ~ Days + (Days | Subject) + (1 | g)"),
    ],
)
def test_woodbury_against_dense_formulas(source, formula):
    model = models.fit(source, formula)[1]
    np.testing.assert_allclose(
        model.vcov_kenward_roger.to_numpy(), dense_vcov_adjusted(model), rtol=1e-9, atol=1e-12
    )


def test_prior_weights_give_residual_covariance_sigma2_over_w():
    data = models.sleepstudy_weights()
    model = models.fit(models.sleepstudy_weights, "Reaction ~ Days + (Days | Subject)", weights="w")[1]
    expected = dense_vcov_adjusted(model, weights=data["w"].to_numpy(dtype=float))
    np.testing.assert_allclose(model.vcov_kenward_roger.to_numpy(), expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", ["pastes", "sleepstudy_slope"])
def test_solve_random_against_dense_matrix(name):
    """(Lambda'Z'Z Lambda + I)^-1 B from the blocked factor (scalar and 2 x 2 first-term blocks)."""
    model = fitted(name)
    algebra = _RandomEffectsAlgebra(model)
    relative = algebra.relative.toarray()
    dense = relative.T @ algebra.crossprod.toarray() @ relative + np.eye(algebra.q)
    rhs = np.random.default_rng(1).standard_normal((algebra.q, 5))
    expected = np.linalg.solve(dense, rhs)
    np.testing.assert_allclose(model.chol.solve_random(rhs), expected, rtol=1e-10, atol=1e-12)


def test_chunked_traces_equal_one_chunk(monkeypatch):
    """The pass over S's columns in many small chunks gives the same answer (one level per chunk here)."""
    from mixedmodels.inference import kenward_roger

    model = models.fit(models.sleepstudy_nine_groups, "Reaction ~ Days + (Days | Subject) + (1 | g)")[1]
    expected = dense_vcov_adjusted(model)
    monkeypatch.setattr(kenward_roger, "CHUNK_ENTRIES", 1)
    chunked = kenward_roger.KenwardRoger(model)
    np.testing.assert_allclose(chunked.adjusted_vcov, expected, rtol=1e-9, atol=1e-12)


def test_unidentified_variance_parameters_at_lme4_theta():
    """A repeated term: pbkrtest's information matrix is singular (its generalized inverse), and so is the
    Hessian of the deviance (lmerTest inverts it over the positive eigenvalues, with a warning)."""
    name = "sleepstudy_duplicate_term"
    ref = reference(name)
    fit = models.fit("sleepstudy", ref["formula"])[1]
    model = mm.LinearMixedModel(fit.problem, np.asarray(ref["fit"]["theta"], dtype=float))
    assert np.min(np.abs(np.linalg.eigvalsh(model.kenward_roger.information))) < 1e-10
    expected = np.array(ref["vcov_kenward_roger"])
    np.testing.assert_allclose(model.vcov_kenward_roger.to_numpy(), expected, rtol=1e-9)
    for ddf in ["kenward_roger", "satterthwaite"]:
        table = _table(ref["coef_table"][ddf])
        with (
            pytest.warns(mm.ConvergenceWarning, match="negative eigenvalue")
            if ddf == "satterthwaite"
            else nullcontext()
        ):
            ours = model.coef_table(ddf.replace("_", "-"))
        np.testing.assert_allclose(ours["df"], table["df"], rtol=RTOL)
        np.testing.assert_allclose(ours["Std. Error"], table["Std. Error"], rtol=1e-9)
