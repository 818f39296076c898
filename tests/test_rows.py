"""Spec and rows (issue 12, point 1): a fit from chunks of rows made from the model spec alone is the
in-memory fit, and the pickled spec alone materializes new data for predictions.

The chunks' cross-products add up to the in-memory blocks to rounding (1e-12), so the objective is the
same function of theta: at the in-memory optimum, the chunked model's criterion, fixed effects and sigma
agree to 1e-10 (to ~1e-14 on these models), and so does the criterion at its own optimum.  The estimates
at its own optimum agree to the precision to which a fit locates an optimum from function values that
carry rounding, the same as a fit of the rows in another order (tests/test_invariance.py): 1e-6 relative
(up to 5e-8 on these models).  Rounding differences of 1e-16 in the blocks take the optimizer along
another path, and the deviance is flat to ~1e-13 over 1e-8 in theta near the optimum.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.data.rows import TableRows, source_cross_products
from mixedmodels.models.lmm import assemble, fit

SLEEP_SLOPE = "Reaction ~ Days + (Days | Subject)"


def _sleep() -> pd.DataFrame:
    data = mm.datasets.load("sleepstudy")
    rng = np.random.default_rng(12)
    data["w"] = rng.uniform(0.5, 2.0, len(data))
    data["off"] = rng.normal(0.0, 5.0, len(data))
    data["shift"] = np.where(np.arange(len(data)) % 3 == 0, "early", "late")  # strings: a factor
    data["flag"] = np.arange(len(data)) % 4 == 0  # booleans: a factor with levels FALSE, TRUE
    return data


def _with_missing(data: pd.DataFrame) -> pd.DataFrame:
    data = data.copy()
    data.loc[[0, 50, 51, 120], "Reaction"] = np.nan
    data.loc[[7, 90], "Days"] = np.nan
    data.loc[[33], "Subject"] = np.nan
    data.loc[[140, 141], "w"] = np.nan
    return data


def _case(name: str):
    """(formula, data, keywords) of each model the chunked fits are tested on."""
    sleep = _sleep()
    return {
        "random slopes": (SLEEP_SLOPE, sleep, {}),
        "weights, offset column": (SLEEP_SLOPE, sleep, {"weights": "w", "offset": "off"}),
        "weights, offset as arrays": (
            "Reaction ~ Days + shift + (Days || Subject)",
            sleep,
            {"weights": sleep["w"].to_numpy(), "offset": sleep["off"].to_numpy()},
        ),
        "formula offset and transforms": (
            "scale(Reaction) ~ poly(Days, 2) + flag + offset(log(w)) + (1 | Subject)",
            sleep,
            {"offset": "off"},
        ),
        "missing rows": ("Reaction ~ Days + (Days | Subject)", _with_missing(sleep), {"weights": "w"}),
        "missing rows, weights Series": (
            "Reaction ~ Days + (1 | Subject)",
            _with_missing(sleep),
            {"weights": _with_missing(sleep)["w"].iloc[::-1]},  # matched to the rows by its index
        ),
        "crossed": ("diameter ~ 1 + (1 | plate) + (1 | sample)", mm.datasets.load("Penicillin"), {}),
        "nested": ("yield ~ nitro + Variety + (1 | Block/Variety)", mm.datasets.load("Oats"), {}),
        "correlated slopes of a factor": (
            "score ~ Machine + (Machine | Worker)",
            mm.datasets.load("Machines"),
            {},
        ),
    }[name]


CASES = [
    "random slopes",
    "weights, offset column",
    "weights, offset as arrays",
    "formula offset and transforms",
    "missing rows",
    "missing rows, weights Series",
    "crossed",
    "nested",
    "correlated slopes of a factor",
]
#: (case, chunk_rows): 13 and 64 leave an uneven last chunk on every data set here; one-row chunks (slow:
#: a chunk's fixed cost is pandas' and formulaic's) on a few
CHUNKINGS = [(name, k) for name in CASES for k in (13, 64)] + [
    (name, 1) for name in ("random slopes", "missing rows, weights Series", "crossed")
]


def _fit(formula, data, reml, **keywords):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.ModelMessage)
        return mm.lmer(formula, data, reml=reml, **keywords)


def _assert_close(actual, expected, rtol, what, scale=None):
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    scale = np.abs(expected) if scale is None else scale
    assert np.all(np.abs(actual - expected) <= rtol * scale), (what, actual, expected)


@pytest.mark.parametrize("name, chunk_rows", CHUNKINGS)
def test_chunks_add_up_to_the_in_memory_blocks(name, chunk_rows):
    formula, data, keywords = _case(name)
    frame = _fit(formula, data, True, **keywords).frame
    chunked = source_cross_products(TableRows.from_data(frame.spec, data, chunk_rows, **keywords))
    whole = frame.chunk().cross_products(chunked.units)  # the in-memory rows in the chunks' units
    assert chunked.nobs == whole.nobs == frame.nobs
    assert chunked.sum_log_weights == pytest.approx(whole.sum_log_weights, rel=1e-12, abs=1e-12)
    pairs = [(chunked.xy, whole.xy)] + list(zip(chunked.xyz, whole.xyz)) + list(zip(chunked.diag, whole.diag))
    pairs += [(chunked.off[key].toarray(), whole.off[key].toarray()) for key in whole.off]
    for got, expected in pairs:
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * np.max(np.abs(expected)))


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("name, chunk_rows", CHUNKINGS)
def test_fit_from_chunks_is_the_in_memory_fit(name, reml, chunk_rows):
    formula, data, keywords = _case(name)
    whole = _fit(formula, data, reml, **keywords)
    chunked = _fit(formula, data, reml, chunk_rows=chunk_rows, **keywords)
    assert chunked.nobs == whole.nobs and chunked.frame.n_missing == whole.frame.n_missing

    # its own optimum: the same criterion; the estimates to the precision of an optimum (module docstring)
    assert chunked.deviance == pytest.approx(whole.deviance, rel=1e-10)
    se = np.sqrt(np.diag(whole.vcov))
    _assert_close(chunked.fixef, whole.fixef, 1e-6, "fixef", np.abs(whole.fixef) + se)
    _assert_close(chunked.theta, whole.theta, 1e-6, "theta", max(np.max(np.abs(whole.theta)), 0.05))
    assert chunked.sigma == pytest.approx(whole.sigma, rel=1e-6)

    # the same objective: at the in-memory optimum, the same criterion, fixed effects and sigma
    objective = assemble(chunked.frame, reml, chunked.cross).objective
    assert objective(whole.theta) == pytest.approx(whole.deviance, rel=1e-10)
    beta = objective.chol.solve()[0]
    _assert_close(beta, whole.fixef, 1e-10, "fixef at the in-memory theta", np.abs(whole.fixef) + se)
    dof = whole.nobs - whole.n_fixed if reml else whole.nobs
    assert np.sqrt(objective.chol.pwrss() / dof) == pytest.approx(whole.sigma, rel=1e-10)


def test_chunks_drop_incomplete_rows_and_end_unevenly():
    formula, data, keywords = _case("missing rows")
    frame = _fit(formula, data, True, **keywords).frame
    chunks = list(TableRows.from_data(frame.spec, data, 13, **keywords).chunks())
    complete = frame.used_rows.complete
    expected = [int(complete[start : start + 13].sum()) for start in range(0, len(data), 13)]
    assert [len(c.response) for c in chunks] == [n for n in expected if n]
    assert len(data) % 13 != 0 and sum(expected) == frame.nobs
    np.testing.assert_array_equal(np.concatenate([c.response for c in chunks]), frame.response)
    np.testing.assert_array_equal(np.concatenate([c.x for c in chunks]), frame.x)
    for k, block in enumerate(frame.blocks):
        np.testing.assert_array_equal(np.concatenate([c.blocks[k].codes for c in chunks]), block.codes)


def test_a_chunk_without_complete_rows_is_left_out():
    data = _sleep()
    data.loc[:19, "Reaction"] = np.nan  # the first two chunks of 10 rows
    whole = _fit(SLEEP_SLOPE, data, True)
    frame = whole.frame
    chunks = list(TableRows.from_data(frame.spec, data, 10).chunks())
    assert len(chunks) == len(data) // 10 - 2
    chunked = _fit(SLEEP_SLOPE, data, True, chunk_rows=10)
    assert chunked.deviance == pytest.approx(whole.deviance, rel=1e-10)


def test_chunked_fit_refits_and_drops_groups_in_its_own_units():
    """Refits, the parametric bootstrap and influence diagnostics combine the fit's cross-products with
    new ones of the frame's rows: those are made in the chunks' units."""
    data = _sleep()
    whole = _fit(SLEEP_SLOPE, data, True, weights="w")
    chunked = _fit(SLEEP_SLOPE, data, True, weights="w", chunk_rows=20)
    assert chunked.frame.response_units is chunked.cross.units
    ml_whole, ml_chunked = whole.refit(reml=False), chunked.refit(reml=False)
    assert ml_chunked.deviance == pytest.approx(ml_whole.deviance, rel=1e-10)
    influence = chunked.influence("Subject")
    expected = whole.influence("Subject")
    np.testing.assert_allclose(influence.fixef, expected.fixef, rtol=1e-6)
    boot = chunked.bootstrap(3, seed=1, n_jobs=1, progress=False)
    np.testing.assert_allclose(boot, whole.bootstrap(3, seed=1, n_jobs=1, progress=False), rtol=1e-5)


@pytest.mark.parametrize("bad, error", [(0, ValueError), (2.5, TypeError), (True, TypeError)])
def test_chunk_rows_is_a_positive_integer(bad, error):
    with pytest.raises(error, match="chunk_rows"):
        mm.lmer(SLEEP_SLOPE, _sleep(), chunk_rows=bad)


def _prediction_from_spec(spec, model, newdata) -> np.ndarray:
    """X beta + Z b + offset of new data, with the model's estimates and nothing of it but ``spec``."""
    data, leveled = spec.new_data(newdata, tuple(term.term for term in spec.terms))
    eta = spec.fixed_matrix(leveled) @ model.fixef.to_numpy()
    for term in spec.terms:
        block = term.block(data, leveled)
        effects = model.ranef[term.group.name][term.design.column_names].to_numpy()
        known = block.codes >= 0
        contribution = np.einsum("np,np->n", block.z, effects[np.where(known, block.codes, 0)])
        eta += np.where(known, contribution, 0.0)
    for offset in spec.formula_offsets:
        eta += offset.values(leveled)
    return eta


def test_the_pickled_spec_alone_predicts_new_data():
    data = mm.datasets.load("Oats")
    data["w"] = np.linspace(1.0, 2.0, len(data))
    formula = "yield ~ poly(nitro, 2) + Variety + offset(log(w)) + (1 | Block/Variety)"
    model = _fit(formula, data, True)
    spec = pickle.loads(pickle.dumps(model.frame.spec))
    tenfold = _fit(formula, pd.concat([data] * 10, ignore_index=True), True).frame.spec
    assert len(pickle.dumps(tenfold)) == len(pickle.dumps(model.frame.spec))  # no rows in it

    newdata = data.iloc[[0, 5, 17, 40, 71]].copy()
    newdata["nitro"] = [0.1, 0.25, 0.5, 0.05, 0.6]  # poly() maps new values with the fit's basis
    newdata["w"] = [1.0, 1.5, 2.5, 3.0, 1.2]
    newdata["Block"] = newdata["Block"].astype(str)
    newdata.iloc[1, newdata.columns.get_loc("Block")] = "new block"  # a level the fit has not seen
    expected = model.predict(newdata, allow_new_levels=True)
    np.testing.assert_allclose(_prediction_from_spec(spec, model, newdata), expected, rtol=1e-12)


def test_the_pickled_spec_materializes_the_same_chunks():
    formula, data, keywords = _case("formula offset and transforms")
    spec = _fit(formula, data, True, **keywords).frame.spec
    before = source_cross_products(TableRows.from_data(spec, data, 25, **keywords))
    after = source_cross_products(TableRows.from_data(pickle.loads(pickle.dumps(spec)), data, 25, **keywords))
    np.testing.assert_array_equal(after.xy, before.xy)
    np.testing.assert_array_equal(after.units.shift, before.units.shift)
    assert after.units.scale == before.units.scale


def test_in_memory_cross_products_are_those_of_the_frame():
    """In memory, the frame's rows are one chunk, whose blocks are the fit's."""
    model = _fit(SLEEP_SLOPE, _sleep(), True, weights="w")
    direct = model.frame.chunk().cross_products(model.frame.response_units)
    np.testing.assert_array_equal(direct.xy, model.cross.xy)
    refit = fit(assemble(model.frame, True, model.frame.cross_products()))
    assert refit.deviance == model.deviance
