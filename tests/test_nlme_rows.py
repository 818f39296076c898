"""Spec and rows for gls and lme (issue 12, point 1): a fit from chunks of whole residual groups, each
made from the model spec alone with the variance function and correlation structure bound to its rows,
is the in-memory fit, and the pickled spec alone materializes new data for predictions.

Each evaluation sums the chunks' whitened cross-products (lme) or stacks their R factors (gls), which
equal the in-memory ones to rounding, so the objective is the same function of the parameters: at the
same parameters the chunked criterion agrees with the in-memory one to 1e-12 (to ~1e-15 on these
models).  The estimates at its own optimum agree to the precision to which a fit locates an optimum from
function values that carry rounding, the same as a fit of the rows in another order
(tests/test_invariance.py): 1e-6 relative (up to ~1e-7 on these models), and the log-likelihood there
to 1e-10.  Rounding differences of 1e-16 in the blocks take the optimizer along another path, and the
criterion is flat to ~1e-13 over 1e-8 in the parameters near the optimum.
"""

from __future__ import annotations

import pickle
import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest
from nlme_models import DATA, MODELS, ovary

import mixedmodels as mm
from mixedmodels.models.nlme.data import prepare
from mixedmodels.models.nlme.fitting import assemble


def _with_missing(data: pd.DataFrame) -> pd.DataFrame:
    data = data.copy()
    data.loc[[0, 13, 14, 50], "distance"] = np.nan
    data.loc[[7, 90], "age"] = np.nan
    data.loc[[33], "Subject"] = np.nan
    data.loc[[61], "Sex"] = np.nan
    return data


@cache
def _data(name: str) -> pd.DataFrame:
    if name == "Ovary":
        return ovary()
    if name == "Orthodont, missing rows":
        return _with_missing(mm.datasets.load("Orthodont"))
    return mm.datasets.load(name)


#: name -> (data set, formula, random (None: gls), keywords)
CASES = {
    "gls varIdent, corAR1": (
        "Orthodont",
        "distance ~ age * Sex",
        None,
        lambda: dict(weights=mm.VarIdent("~ 1 | Sex"), correlation=mm.CorAR1("~ 1 | Subject")),
    ),
    "gls varPower, corCompSymm": (
        "Orthodont",
        "distance ~ age",
        None,
        lambda: dict(weights=mm.VarPower("~ age"), correlation=mm.CorCompSymm("~ 1 | Subject")),
    ),
    "gls varPower of the fitted values, corAR1": (
        "Ovary",
        "follicles ~ sinT + cosT",
        None,
        lambda: dict(weights=mm.VarPower(), correlation=mm.CorAR1("~ 1 | Mare")),
    ),
    "gls missing rows": (
        "Orthodont, missing rows",
        "distance ~ age + Sex",
        None,
        lambda: dict(weights=mm.VarIdent("~ 1 | Sex"), correlation=mm.CorAR1("~ age | Subject")),
    ),
    "lme varIdent, corAR1": (
        "Orthodont",
        "distance ~ age",
        "~ 1 | Subject",
        lambda: dict(weights=mm.VarIdent("~ 1 | Sex"), correlation=mm.CorAR1()),
    ),
    "lme varIdent, corCompSymm within the groups": (
        "Oats",
        "yield ~ nitro",
        "~ 1 | Block",
        lambda: dict(weights=mm.VarIdent("~ 1 | Variety"), correlation=mm.CorCompSymm("~ 1 | Block/Variety")),
    ),
    "lme varPower, no correlation": (
        "Orthodont",
        "distance ~ age",
        "~ age | Subject",
        lambda: dict(weights=mm.VarPower("~ age")),
    ),
    "lme missing rows": (
        "Orthodont, missing rows",
        "distance ~ age",
        "~ 1 | Subject",
        lambda: dict(weights=mm.VarPower("~ age"), correlation=mm.CorAR1("~ age | Subject")),
    ),
}
#: a group or two per chunk (groups of 4 rows in Orthodont, 4 in Oats' plots, ~28 in Ovary: a group
#: larger than k makes a chunk of its own), several groups per chunk, and one chunk of all rows
CHUNKINGS = [(name, k) for name in CASES for k in (5, 30, 10_000)]


def _call(name: str, **extra):
    dataset, formula, random, keywords = CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.ModelMessage)
        if random is None:
            return mm.gls(formula, _data(dataset), **keywords(), **extra)
        return mm.lme(formula, _data(dataset), random=random, **keywords(), **extra)


@cache
def _in_memory(name: str, method: str):
    return _call(name, method=method)


def _problems(name: str, chunk_rows: int, reml: bool):
    """The in-memory problem and the chunked one, of the same prepared data."""
    dataset, formula, random, keywords = CASES[name]
    structures = keywords()
    prepared = prepare(
        formula, _data(dataset), random, structures.get("weights"), structures.get("correlation")
    )
    chunks = prepared.table_chunks(_data(dataset), chunk_rows)
    return assemble(prepared, reml), assemble(prepared, reml, chunks)


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("name, chunk_rows", CHUNKINGS)
def test_the_chunked_objective_is_the_in_memory_one(name, chunk_rows, reml):
    whole, chunked = _problems(name, chunk_rows, reml)
    fitted = _in_memory(name, "REML" if reml else "ML")
    if whole.residual.uses_fitted:
        covariate = fitted._fitted_sorted_innermost()
        whole.likelihood.fitted_covariate = chunked.likelihood.fitted_covariate = covariate
    rng = np.random.default_rng(3)
    optimum = fitted._params
    for params in (optimum, optimum + rng.normal(0.0, 0.05, len(optimum))):
        expected = whole.likelihood.deviance(params)
        assert chunked.likelihood.deviance(params) == pytest.approx(expected, rel=1e-12)
        assert chunked.unitless_deviance(params) == pytest.approx(whole.unitless_deviance(params), rel=1e-12)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_structure_binds_to_chunks(name):
    """Each variance function and correlation structure of the R fixtures, bound to chunks of a group or
    two: the same objective at random parameters."""
    dataset, function, formula, keywords = MODELS[name]
    data = DATA[dataset]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = prepare(
            formula, data, keywords.get("random"), keywords.get("weights"), keywords.get("correlation")
        )
    whole = assemble(prepared)
    chunked = assemble(prepared, True, prepared.table_chunks(data, 7))
    assert len(chunked.likelihood.chunks) > 1
    if whole.residual.uses_fitted:
        x, y = prepared.x, prepared.y
        covariate = x @ np.linalg.lstsq(x, y, rcond=None)[0]
        whole.likelihood.fitted_covariate = chunked.likelihood.fitted_covariate = covariate
    rng = np.random.default_rng(5)
    start = whole.likelihood.start(whole.residual.initial)[0] if whole.mixed else whole.residual.initial
    for params in (start, start + rng.normal(0.0, 0.1, len(start))):
        expected = whole.likelihood.deviance(params)
        assert np.isfinite(expected)
        assert chunked.likelihood.deviance(params) == pytest.approx(expected, rel=1e-12)


def test_chunks_are_whole_residual_groups_in_nlme_order():
    dataset, formula, random, keywords = CASES["lme varIdent, corCompSymm within the groups"]
    structures = keywords()
    prepared = prepare(formula, _data(dataset), random, structures["weights"], structures["correlation"])
    layout = prepared.corstruct.layout
    for chunk_rows, expected in ((1, [4] * 18), (10, [8] * 9), (13, [12] * 6), (100, [72])):
        chunks = prepared.table_chunks(_data(dataset), chunk_rows)
        assert [len(c.arrays.response) for c in chunks] == expected
        assert all(c.rows.start in layout.starts for c in chunks)
        np.testing.assert_array_equal(np.concatenate([c.arrays.x for c in chunks]), prepared.x)
        np.testing.assert_array_equal(np.concatenate([c.arrays.response for c in chunks]), prepared.y)
        codes = prepared.frame.blocks[0].codes[prepared.order]
        np.testing.assert_array_equal(np.concatenate([c.arrays.blocks[0].codes for c in chunks]), codes)


def _assert_close(actual, expected, rtol, what, scale):
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    assert np.all(np.abs(actual - expected) <= rtol * scale), (what, actual, expected)


@pytest.mark.parametrize("name, chunk_rows", CHUNKINGS)
def test_fit_from_chunks_is_the_in_memory_fit(name, chunk_rows):
    whole = _in_memory(name, "REML")
    chunked = _call(name, chunk_rows=chunk_rows)
    assert chunked.nobs == whole.nobs and chunked.frame.n_missing == whole.frame.n_missing
    # the same criterion at its own optimum, the estimates to the precision of an optimum (docstring)
    assert chunked.loglik == pytest.approx(whole.loglik, rel=1e-10)
    se = np.sqrt(np.diag(whole.vcov))
    _assert_close(chunked.fixef, whole.fixef, 1e-6, "fixef", np.abs(whole.fixef) + se)
    _assert_close(chunked._params, whole._params, 1e-6, "parameters", np.maximum(np.abs(whole._params), 1.0))
    assert chunked.sigma == pytest.approx(whole.sigma, rel=1e-6)


def _prediction_from_spec(spec, model, newdata) -> np.ndarray:
    """X beta + z'b of new data (one grouping level), with the model's estimates and nothing of it but
    ``spec``."""
    data, leveled = spec.new_data(newdata, tuple(term.term for term in spec.terms))
    eta = spec.fixed_matrix(leveled) @ model.fixef.to_numpy()
    for term in spec.terms:
        effects = model.ranef[term.group.name].reindex(term.group.labels_for(data))
        eta += np.einsum(
            "np,np->n", term.design.matrix(leveled), effects[term.design.column_names].to_numpy()
        )
    return eta


@pytest.mark.parametrize("name", ["gls missing rows", "lme missing rows"])
def test_the_pickled_spec_alone_predicts_new_data(name):
    model = _call(name, chunk_rows=9)
    spec = pickle.loads(pickle.dumps(model.frame.spec))
    newdata = mm.datasets.load("Orthodont").iloc[[0, 5, 17, 40, 71, 100]].copy()
    newdata["age"] = [8.5, 9.0, 11.5, 13.0, 14.5, 10.0]
    newdata["Subject"] = newdata["Subject"].astype(str)
    expected = model.predict(newdata)
    np.testing.assert_allclose(_prediction_from_spec(spec, model, newdata), expected, rtol=1e-12)
    np.testing.assert_allclose(expected, _in_memory(name, "REML").predict(newdata), rtol=1e-6)


@pytest.mark.parametrize("bad, error", [(0, ValueError), (2.5, TypeError), (True, TypeError)])
@pytest.mark.parametrize("name", ["gls varIdent, corAR1", "lme varIdent, corAR1"])
def test_chunk_rows_is_a_positive_integer(name, bad, error):
    with pytest.raises(error, match="chunk_rows"):
        _call(name, chunk_rows=bad)
