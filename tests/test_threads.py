"""The heavy linear algebra of fits and inference runs inside the thread limit of engine/threads.py.

Each test sets the BLAS libraries to 2 threads, spies on the engine's hot spots (the factor update of
lmer's objective, Kenward-Roger's solves, the nlme likelihoods), runs a public call and checks that the
spies saw exactly the policy's number of threads, and that the libraries are back at 2 afterwards.
"""

from __future__ import annotations

import warnings

import pytest
from threadpoolctl import ThreadpoolController

import mixedmodels as mm
from mixedmodels.engine.cholesky import BlockedCholesky
from mixedmodels.engine.threads import fit_threads
from mixedmodels.inference.kenward_roger import _RandomEffectsAlgebra
from mixedmodels.models.nlme.likelihood import GLSLikelihood, LMELikelihood

OUTSIDE = 2  # the libraries' thread count set around each call

blas = ThreadpoolController().select(user_api="blas")


def blas_threads() -> set[int]:
    return {library["num_threads"] for library in blas.info()}


@pytest.fixture
def seen(monkeypatch) -> list[set[int]]:
    """The BLAS thread counts at each call of the spied methods, with the libraries at 2 threads."""
    counts: list[set[int]] = []
    for owner, name in [
        (BlockedCholesky, "update"),
        (_RandomEffectsAlgebra, "solve"),
        (GLSLikelihood, "deviance"),
        (LMELikelihood, "deviance"),
    ]:
        method = getattr(owner, name)

        def spy(*args, _method=method, **kwargs):
            counts.append(blas_threads())
            return _method(*args, **kwargs)

        monkeypatch.setattr(owner, name, spy)
    with blas.limit(limits=OUTSIDE):
        yield counts
        assert blas_threads() == {OUTSIDE}


@pytest.fixture(scope="module")
def sleepstudy():
    return mm.datasets.load("sleepstudy")


@pytest.fixture(scope="module")
def fitted(sleepstudy):
    return mm.lmer("Reaction ~ Days + (Days | Subject)", sleepstudy)


def test_the_policy_is_one_thread():
    assert fit_threads() == 1


def test_the_controller_finds_blas():
    assert blas.info(), "threadpoolctl finds no BLAS library: the thread limit would do nothing"


CALLS = {
    "lmer": lambda m: mm.lmer("Reaction ~ Days + (Days | Subject)", m.frame.data),
    "refit": lambda m: m.refit(reml=False),
    "satterthwaite": lambda m: m.refit().coef_table("satterthwaite"),
    "kenward_roger": lambda m: m.refit().coef_table("kenward-roger"),
    "profile": lambda m: m.confint(method="profile", parm="beta_"),
    "bootstrap": lambda m: m.bootstrap(3, seed=1, n_jobs=1, progress=False),
    "ranova": lambda m: m.ranova(),
}


@pytest.mark.parametrize("call", list(CALLS))
def test_lmer_and_inference_run_inside_the_limit(call, fitted, seen):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        CALLS[call](fitted)
    assert seen and all(counts == {fit_threads()} for counts in seen)


def test_nlme_fits_run_inside_the_limit(seen):
    data = mm.datasets.load("Orthodont")
    mm.gls("distance ~ age", data, correlation=mm.CorAR1("~ 1 | Subject"))
    model = mm.lme("distance ~ age", data, random="~ 1 | Subject", correlation=mm.CorAR1())
    assert not model.apvar.empty
    assert seen and all(counts == {fit_threads()} for counts in seen)
