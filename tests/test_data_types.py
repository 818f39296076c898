"""Tables and column types: pandas, polars and pyarrow input, grouping factors of every type with R's
level order, missing rows, and the input's index on fitted values.

Reference numbers and level orders come from R 4 / lme4 1.1-31.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

polars = pytest.importorskip("polars")
pyarrow = pytest.importorskip("pyarrow")

SLOPE = "Reaction ~ Days + (Days | Subject)"
PERMUTED = 1e-5  # tolerance when the grouping levels come in another order (as in test_lme4_reference)


def sleepstudy() -> pd.DataFrame:
    return mm.datasets.load("sleepstudy")


def fit(formula: str, data, **kwargs) -> mm.LinearMixedModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.ModelMessage)
        return mm.lmer(formula, data, **kwargs)


def same_fit(a: mm.LinearMixedModel, b: mm.LinearMixedModel, rtol: float = 0.0) -> None:
    """Identical estimates (``rtol=0``), or equal to the optimizer's accuracy when the levels are permuted."""
    np.testing.assert_allclose(a.fixef, b.fixef, rtol=rtol)
    np.testing.assert_allclose(a.theta, b.theta, rtol=rtol, atol=rtol * max(1.0, np.abs(b.theta).max()))
    assert list(a.fixef.index) == list(b.fixef.index)


# -- table libraries


@pytest.mark.parametrize(
    "convert",
    [polars.from_pandas, pyarrow.Table.from_pandas, lambda d: d.to_dict(orient="list")],
    ids=["polars", "pyarrow", "dict"],
)
@pytest.mark.parametrize("subject", ["categorical", "string"])
def test_tables_from_other_libraries_give_identical_fits(convert, subject):
    data = sleepstudy()
    if subject == "string":
        data["Subject"] = data["Subject"].astype(str)
    reference = fit(SLOPE, data)
    model = fit(SLOPE, convert(data))
    same_fit(model, reference)
    # lme4: theta of Reaction ~ Days + (Days | Subject)
    np.testing.assert_allclose(model.theta, [0.966733, 0.015169, 0.230910], rtol=1e-4)
    assert list(model.ranef["Subject"].index) == list(reference.ranef["Subject"].index)


def test_polars_nulls_are_missing_rows():
    data = sleepstudy()
    data.loc[[2, 19], "Reaction"] = np.nan
    table = polars.from_pandas(data).with_columns(polars.col("Reaction").fill_nan(None))
    assert table["Reaction"].null_count() == 2
    model = fit(SLOPE, table)
    assert model.frame.n_missing == 2
    same_fit(model, fit(SLOPE, data))


# -- grouping factors: R's level order


def recode_subjects(mapping: dict) -> pd.DataFrame:
    data = sleepstudy()
    data["Subject"] = data["Subject"].astype(str).map(lambda s: mapping.get(s, s))
    return data


def test_string_levels_sort_as_strings():
    data = recode_subjects({"308": "s2", "309": "s10", "310": "s100"})
    data["Subject"] = data["Subject"].where(~data["Subject"].str.isdigit(), "s" + data["Subject"])
    model = fit(SLOPE, data)
    levels = list(model.ranef["Subject"].index)
    assert levels[:3] == ["s10", "s100", "s2"]
    assert levels == sorted(levels)
    same_fit(model, fit(SLOPE, sleepstudy()), rtol=PERMUTED)


def test_integer_levels_sort_numerically():
    # d$Subject <- as.integer(as.character(sleepstudy$Subject)), with 308, 309, 310 -> 2, 10, 100
    data = recode_subjects({"308": "2", "309": "10", "310": "100"})
    data["Subject"] = data["Subject"].astype(int)
    model = fit(SLOPE, data)
    expected = "2 10 100 330 331 332 333 334 335 337 349 350 351 352 369 370 371 372".split()
    assert list(model.ranef["Subject"].index) == expected
    same_fit(model, fit(SLOPE, sleepstudy()), rtol=PERMUTED)


def test_float_levels_are_labelled_as_r_prints_them():
    data = recode_subjects({"308": "2", "309": "10", "310": "100"})
    data["Subject"] = data["Subject"].astype(float)
    data.loc[0, "Subject"] = np.nan  # integer ids with a missing value come as floats
    model = fit(SLOPE, data)
    assert list(model.ranef["Subject"].index[:4]) == ["2", "10", "100", "330"]
    assert model.frame.n_missing == 1


def test_categorical_levels_keep_the_category_order_and_drop_unused_ones():
    data = sleepstudy()
    categories = list(data["Subject"].cat.categories[::-1]) + ["unused"]
    data["Subject"] = data["Subject"].astype(str).astype(pd.CategoricalDtype(categories))
    model = fit(SLOPE, data)
    assert list(model.ranef["Subject"].index) == categories[:-1]
    assert model.ngroups == {"Subject": 18}
    same_fit(model, fit(SLOPE, sleepstudy()), rtol=PERMUTED)


def test_boolean_grouping_factor():
    # s$late <- s$Days >= 5; lmer(Reaction ~ Days + (1 | Subject) + (1 | late), s)
    data = sleepstudy()
    data["late"] = data["Days"] >= 5
    formula = "Reaction ~ Days + (1 | Subject) + (1 | late)"
    model = fit(formula, data)
    assert list(model.ranef["late"].index) == ["FALSE", "TRUE"]
    np.testing.assert_allclose(model.theta, [1.19788136164883, 0.0], atol=1e-4)
    np.testing.assert_allclose(model.fixef, [251.405104848484, 10.467285959596], rtol=1e-6)
    as_strings = data.assign(late=np.where(data["late"], "TRUE", "FALSE"))
    same_fit(model, fit(formula, as_strings))


def test_boolean_grouping_factor_in_new_data():
    data = sleepstudy()
    data["late"] = data["Days"] >= 5
    model = fit("Reaction ~ Days + (1 | late)", data)
    np.testing.assert_allclose(model.predict(data), model.fitted)


def test_boolean_predictor_in_new_data():
    data = sleepstudy()
    data["late"] = data["Days"] >= 5
    model = fit("Reaction ~ late + (1 | Subject)", data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_allclose(model.predict(data), model.fitted)


def interaction_data(a: pd.Series | list) -> pd.DataFrame:
    n = 30
    rows = np.arange(n) % 6
    return pd.DataFrame(
        {
            "y": np.sin(np.arange(1, n + 1)) + 0.1 * np.arange(1, n + 1),
            "a": pd.Series(a).iloc[rows].reset_index(drop=True),
            "b": np.array([10, 2, 2, 10, 2, 2])[rows],
        }
    )


def test_interaction_levels_follow_r():
    # lmer(y ~ 1 + (1 | a:b), d): first factor slowest, integers sorted numerically, unused "a:10" dropped
    strings = ["b", "a", "b", "b", "a", "b"]
    model = fit("y ~ 1 + (1 | a:b)", interaction_data(strings))
    assert list(model.ranef["a:b"].index) == ["a:2", "b:2", "b:10"]
    ordered = pd.Categorical(strings, categories=["b", "a"])
    model = fit("y ~ 1 + (1 | a:b)", interaction_data(ordered))
    assert list(model.ranef["a:b"].index) == ["b:2", "b:10", "a:2"]
    assert model.ngroups == {"a:b": 3}


def test_nested_levels_follow_r():
    model = fit("strength ~ 1 + (1 | batch/cask)", mm.datasets.load("Pastes"))
    # head(rownames(ranef(m)[["cask:batch"]]))
    assert list(model.ranef["cask:batch"].index[:4]) == ["a:A", "a:B", "a:C", "a:D"]
    assert model.ngroups == {"cask:batch": 30, "batch": 10}


# -- missing rows and the input's index


@pytest.mark.parametrize(
    "index",
    [pd.RangeIndex(1000, 1180), pd.Index([f"row{i}" for i in range(180)]), pd.Index(np.arange(180)[::-1])],
    ids=["shifted-range", "strings", "reversed"],
)
def test_missing_rows_are_dropped_and_the_index_is_kept(index):
    data = sleepstudy()
    data["Days"] = data["Days"].astype(float)
    data.loc[[2, 19, 76], "Reaction"] = np.nan
    data.loc[99, "Days"] = np.nan
    data["Subject"] = data["Subject"].astype(str).astype(object)
    data.loc[150, "Subject"] = None
    data.index = index
    model = fit(SLOPE, data)
    assert model.frame.n_missing == 5
    assert model.nobs == 175
    kept = data.dropna().index
    assert model.fitted.index.equals(kept)
    assert model.residuals.index.equals(kept)
    np.testing.assert_allclose(model.fitted + model.residuals, data.loc[kept, "Reaction"])
    default = fit(SLOPE, data.reset_index(drop=True))
    np.testing.assert_allclose(model.fitted.to_numpy(), default.fitted.to_numpy())
    same_fit(model, default)


@pytest.mark.parametrize("missing", [False, True], ids=["complete", "missing-rows"])
def test_model_data_is_a_copy_of_the_rows_used(missing):
    """The model's table is made on first use, yet holds the input as it was at the fit, and writing
    into it leaves the input alone; a duplicated index is kept as it is."""
    data = sleepstudy()
    data.index = np.repeat(np.arange(90), 2)
    if missing:
        data.loc[data.index[:4], "Reaction"] = np.nan
    model = fit(SLOPE, data)
    expected = data.dropna()[["Reaction", "Days", "Subject"]].copy()
    data.loc[data.index[10], "Reaction"] = -1.0
    data["Days"] = 0
    pd.testing.assert_frame_equal(model.frame.data, expected)
    model.frame.data.loc[model.frame.data.index[20], "Days"] = 99
    assert data["Days"].eq(0).all()


def test_missing_values_only_in_unused_columns_do_not_drop_rows():
    data = sleepstudy()
    data["unused"] = np.nan
    model = fit(SLOPE, data)
    assert model.frame.n_missing == 0
    assert model.nobs == 180
