"""The numerical engine on its own: chunked cross-products, product plans, the blocked factor."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import mixedmodels as mm
from mixedmodels.engine.cholesky import BlockedCholesky, ProductPlan, batched_cholesky, weighted_inverse
from mixedmodels.engine.crossprod import ReBlock, cross_products, sum_cross_products
from mixedmodels.models.lmm import assemble, fit


def _crossed_design(seed: int = 1, n: int = 400):
    rng = np.random.default_rng(seed)
    g1 = rng.integers(0, 30, n)
    g2 = rng.integers(0, 7, n)
    x = rng.normal(size=n)
    z1 = np.column_stack([np.ones(n), x])
    z2 = np.ones((n, 1))
    xy = np.column_stack([np.ones(n), x, 1 + x + rng.normal(size=n)])
    terms = [ReBlock(g1, z1, 30), ReBlock(g2, z2, 7)]
    return terms, xy, rng.uniform(0.5, 2.0, n)


def _dense_z(term: ReBlock) -> np.ndarray:
    """The term's n x (nlevels * p) block of Z, level-major."""
    dense = np.zeros((len(term.codes), term.nlevels * term.ncols))
    for a in range(term.ncols):
        dense[np.arange(len(term.codes)), term.codes * term.ncols + a] = term.z[:, a]
    return dense


def _rows(terms, xy, weights, rows):
    chunk = [ReBlock(t.codes[rows], t.z[rows], t.nlevels) for t in terms]
    return cross_products(chunk, xy[rows], weights[rows])


def test_chunks_add_up_to_the_whole():
    terms, xy, weights = _crossed_design()
    whole = cross_products(terms, xy, weights)
    parts = sum_cross_products(_rows(terms, xy, weights, rows) for rows in np.array_split(np.arange(400), 7))
    assert parts.nobs == whole.nobs
    assert parts.sum_log_weights == pytest.approx(whole.sum_log_weights)
    for a, b in zip(parts.diag, whole.diag):
        np.testing.assert_allclose(a, b)
    for key in whole.off:
        np.testing.assert_allclose(parts.off[key].toarray(), whole.off[key].toarray())
    for a, b in zip(parts.xyz, whole.xyz):
        np.testing.assert_allclose(a, b)
    np.testing.assert_allclose(parts.xy, whole.xy)


def test_blocks_match_dense_products():
    terms, xy, weights = _crossed_design()
    cp = cross_products(terms, xy, weights)
    z = [_dense_z(t) for t in terms]
    w = np.diag(weights)
    np.testing.assert_allclose(cp.off[1, 0].toarray(), z[1].T @ w @ z[0], atol=1e-12)
    np.testing.assert_allclose(cp.xyz[0], xy.T @ w @ z[0], atol=1e-12)
    blocks = (z[0].T @ w @ z[0]).reshape(30, 2, 30, 2)[np.arange(30), :, np.arange(30), :]
    np.testing.assert_allclose(cp.diag[0], blocks, atol=1e-12)


def test_profiled_deviance_equals_the_dense_formula():
    """-2 log L from the blocked factor against the marginal density, V = Z Lambda Lambda' Z' + I."""
    terms, xy, weights = _crossed_design(n=150)
    cp = cross_products(terms, xy, None)
    factor = BlockedCholesky(cp, 2)
    t1, t2 = np.array([[0.8, 0.0], [0.3, 0.5]]), np.array([[1.2]])
    assert factor.update([t1, t2])
    z = [_dense_z(t) for t in terms]
    lam = sp.block_diag([sp.kron(sp.eye(30), t1), sp.kron(sp.eye(7), t2)]).toarray()
    zl = np.hstack(z) @ lam
    x, y = xy[:, :2], xy[:, 2]
    v = zl @ zl.T + np.eye(len(y))
    vinv = np.linalg.inv(v)
    beta = np.linalg.solve(x.T @ vinv @ x, x.T @ vinv @ y)
    resid = y - x @ beta
    n = len(y)
    sigma2 = resid @ vinv @ resid / n
    ml = np.linalg.slogdet(v)[1] + n * np.log(2 * np.pi * sigma2) + n
    from mixedmodels.engine.deviance import objective_from_chol

    assert objective_from_chol(factor, reml=False) == pytest.approx(ml, rel=1e-10)
    np.testing.assert_allclose(factor.solve()[0], beta, rtol=1e-9)


@pytest.mark.parametrize("p", [1, 2, 3])
def test_weighted_inverse_matches_numpy(p):
    """The closed forms (p = 1, 2) and the batched Cholesky (p > 2) give S = T'AT + I, log|S| and
    T S^{-1} T'."""
    rng = np.random.default_rng(p)
    a = rng.normal(size=(10, p, p))
    blocks = a @ a.transpose(0, 2, 1) + np.eye(p)
    t = np.tril(rng.normal(size=(p, p)))
    scaled, logdet, middle = weighted_inverse(blocks.reshape(10, p * p), t)
    expected = t.T @ blocks @ t + np.eye(p)
    np.testing.assert_allclose(scaled.reshape(10, p, p), expected, rtol=1e-12)
    assert logdet == pytest.approx(np.linalg.slogdet(expected)[1].sum(), rel=1e-12)
    np.testing.assert_allclose(
        middle.reshape(10, p, p), t @ np.linalg.inv(expected) @ t.T, rtol=1e-10, atol=1e-12
    )
    indefinite = np.zeros((10, p, p))
    indefinite[:, 0, 0] = -4.0  # S = diag(-3, 1, ...)
    assert weighted_inverse(indefinite.reshape(10, p * p), np.eye(p)) is None
    assert batched_cholesky(-blocks) is None


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("lower", [False, True])
def test_product_plan_equals_sparse_product(lower, p):
    """Both ways of listing the pairs: all pairs of a level, and (one column per level, A M A') the
    pairs on or below the diagonal only."""
    rng = np.random.default_rng(3)
    a = sp.random(12, 20, density=0.3, random_state=1, format="csr")
    b = a if lower else sp.random(9, 20, density=0.3, random_state=2, format="csr")
    middle = rng.normal(size=(20 // p, p, p))
    plan = ProductPlan.build(a, b, p, lower)
    blockdiag = sp.block_diag(list(middle)).toarray()
    expected = a.toarray() @ blockdiag @ b.toarray().T
    got = plan.apply(middle)
    if lower:
        np.testing.assert_allclose(np.tril(got), np.tril(expected), atol=1e-12)
    else:
        np.testing.assert_allclose(got, expected, atol=1e-12)


def test_fit_from_chunked_cross_products_is_the_same_fit():
    df = mm.datasets.load("sleepstudy")
    whole = mm.lmer("Reaction ~ Days + (Days | Subject)", df)
    frame = whole.frame
    terms = frame.blocks
    xy = np.column_stack([frame.x, frame.y])
    chunks = []
    for rows in np.array_split(np.arange(frame.nobs), 5):
        part = [ReBlock(t.codes[rows], t.z[rows], t.nlevels) for t in terms]
        chunks.append(cross_products(part, xy[rows]))
    problem = assemble(frame, cross=sum_cross_products(chunks))
    # the same objective to rounding, hence the same optimum to the optimizer's tolerance
    assert problem.objective(whole.theta) == pytest.approx(whole.reml_criterion, rel=1e-12)
    chunked = fit(problem)
    assert chunked.reml_criterion == pytest.approx(whole.reml_criterion, rel=1e-12)
    np.testing.assert_allclose(chunked.fixef, whole.fixef, rtol=1e-6)


def test_optimizer_stopped_by_roundoff_returns_the_best_point(monkeypatch):
    """NLopt raises RoundoffLimited when rounding stalls it; the best point seen is the answer."""
    import nlopt

    from mixedmodels.engine.optimize import OptimizerControl, minimize_bobyqa

    def stalls(self, x0):
        self._objective(np.array([0.5, 0.5]), None)  # the best the optimizer saw
        self._objective(np.array([2.0, 2.0]), None)
        raise nlopt.RoundoffLimited()

    original = nlopt.opt.set_min_objective

    def remember(self, f):
        self._objective = f
        return original(self, f)

    monkeypatch.setattr(nlopt.opt, "set_min_objective", remember)
    monkeypatch.setattr(nlopt.opt, "optimize", stalls)
    result = minimize_bobyqa(
        lambda x: float(np.sum((x - 0.4) ** 2)),
        np.ones(2),
        np.zeros(2),
        OptimizerControl(check_convergence=False, newton_steps=0, restarts=0),
    )
    assert result.return_code == "roundoff limited"
    np.testing.assert_allclose(result.x, [0.5, 0.5])


def test_newton_steps_finish_what_a_loose_bobyqa_started():
    """BOBYQA stopped early on a smooth function; the Newton steps reach the minimum to many digits."""
    from mixedmodels.engine.optimize import OptimizerControl, minimize_bobyqa

    def smooth(x):
        return float(np.exp(x[0] - 1.0) - x[0] + (x[1] - 2.0) ** 2 + 0.5 * (x[0] - 1.0) * (x[1] - 2.0) ** 2)

    loose = OptimizerControl(ftol_rel=1e-3, xtol_abs=1e-3, newton_steps=0)
    polished = OptimizerControl(ftol_rel=1e-3, xtol_abs=1e-3)
    rough = minimize_bobyqa(smooth, np.array([0.3, 0.5]), np.zeros(2), loose)
    fine = minimize_bobyqa(smooth, np.array([0.3, 0.5]), np.zeros(2), polished)
    assert np.max(np.abs(rough.x - [1.0, 2.0])) > 1e-7
    np.testing.assert_allclose(fine.x, [1.0, 2.0], atol=1e-9)
    assert fine.fun <= rough.fun


def test_newton_steps_hold_parameters_that_reach_their_bound():
    """The bound-constrained minimum (0, 1) of a smooth function: the projected step lands on it."""
    from mixedmodels.engine.optimize import OptimizerControl, _projected_newton_step, minimize_bobyqa

    def smooth(x):
        return float((x[0] + 0.5) ** 2 + (x[1] - 1.0) ** 2 + 0.5 * x[0] * x[1])

    hessian = np.array([[2.0, 0.5], [0.5, 2.0]])
    x = np.array([0.01, 0.9])
    gradient = np.array([2 * (x[0] + 0.5) + 0.5 * x[1], 2 * (x[1] - 1.0) + 0.5 * x[0]])
    np.testing.assert_allclose(x + _projected_newton_step(gradient, hessian, x, np.zeros(2)), [0.0, 1.0])
    result = minimize_bobyqa(smooth, np.array([0.3, 0.5]), np.zeros(2), OptimizerControl(ftol_rel=1e-3))
    np.testing.assert_allclose(result.x, [0.0, 1.0], atol=1e-9)
