"""lme4 formula parsing, R column names and contrasts, and functions in formulas.

Reference numbers come from R 4 / lme4 1.1-31 (the code that produced them is quoted next to each).
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.data.design import Design, r_column_name
from mixedmodels.data.frame import complete_rows
from mixedmodels.errors import FormulaError
from mixedmodels.formula.parse import RandomTerm, Rhs, parse_formula, parse_one_sided


def terms(formula: str) -> list[tuple[str, str]]:
    """(lhs, group) of each random term."""
    return [(t.lhs.text, t.group) for t in parse_formula(formula).random]


# -- parse_formula


def test_correlated_slope():
    parsed = parse_formula("Reaction ~ Days + (Days | Subject)")
    assert parsed.response == "Reaction"
    assert parsed.fixed.text == "Days"
    assert parsed.random == (RandomTerm(Rhs.parse("Days", "Days"), ("Subject",)),)
    assert parsed.offsets == ()


@pytest.mark.parametrize(
    "formula, expected",
    [
        ("y ~ x + (x || g)", [("1", "g"), ("0 + x", "g")]),
        ("y ~ x + (1 + x || g)", [("1", "g"), ("0 + x", "g")]),
        ("y ~ x + (0 + x || g)", [("0 + x", "g")]),
        ("y ~ x + (x - 1 || g)", [("0 + x", "g")]),
        # R's term labels, as lme4 1.1-31's expandDoubleVert: cnms (Intercept), x, z, x:z
        ("y ~ x + (x * z || g)", [("1", "g"), ("0 + x", "g"), ("0 + z", "g"), ("0 + x:z", "g")]),
        ("y ~ (`my x` || g)", [("1", "g"), ("0 + `my x`", "g")]),
    ],
)
def test_double_bar_expands_into_uncorrelated_terms(formula, expected):
    assert terms(formula) == expected


@pytest.mark.parametrize(
    "formula, expected",
    [
        # as lme4 1.1-31's findbars: the innermost factor first
        ("y ~ 1 + (1 | a/b)", [("1", "b:a"), ("1", "a")]),
        ("y ~ 1 + (1 | a/b/c)", [("1", "c:b:a"), ("1", "b:a"), ("1", "a")]),
        ("y ~ 1 + (x | a/b)", [("x", "b:a"), ("x", "a")]),
        ("y ~ 1 + (1 | a:b)", [("1", "a:b")]),
        ("y ~ 1 + (1 | a:b/c)", [("1", "c:a:b"), ("1", "a:b")]),
        ("y ~ 1 + (1 | (a/b))", [("1", "b:a"), ("1", "a")]),
        # findbars(~ (x || a/b)): 1 | b:a, 1 | a, 0 + x | b:a, 0 + x | a
        ("y ~ 1 + (x || a/b)", [("1", "b:a"), ("1", "a"), ("0 + x", "b:a"), ("0 + x", "a")]),
    ],
)
def test_nested_and_interaction_grouping(formula, expected):
    assert terms(formula) == expected


def test_nested_factor_keeps_lme4s_variable_order():
    nested = parse_formula("y ~ 1 + (1 | a/b/c)").random
    assert [t.factors for t in nested] == [("c", "b", "a"), ("b", "a"), ("a",)]


def test_nested_terms_take_lme4s_place_among_tied_terms():
    """lme4 sorts terms by their number of levels only when it ever increases, keeping ties in findbars
    order; so (1 | a/b) + (1 | c) with 10 levels of a and c gives b:a, a, c.  R 4 / lme4 1.1-31:
    d <- expand.grid(a = factor(1:10), b = factor(1:3), r = 1:4)
    d$c <- factor(rep(1:10, length.out = 120)); d$y <- rnorm(120)
    names(getME(lmer(y ~ (1 | a/b) + (1 | c), d), "theta"))  # b:a.(Intercept) a.(Intercept) c.(Intercept)
    """
    a, b, _ = np.meshgrid(np.arange(10), np.arange(3), np.arange(4), indexing="ij")
    data = pd.DataFrame({"a": a.ravel(order="F").astype(str), "b": b.ravel(order="F").astype(str)})
    data["c"] = (np.arange(len(data)) % 10).astype(str)
    data["y"] = np.random.default_rng(1).standard_normal(len(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = mm.lmer("y ~ (1 | a/b) + (1 | c)", data)
    assert [t.group.name for t in model.frame.terms] == ["b:a", "a", "c"]


def test_several_terms_on_one_factor():
    formula = "distance ~ age + (1 | Subject) + (0 + age | Subject) + (1 | Sex)"
    assert terms(formula) == [("1", "Subject"), ("0 + age", "Subject"), ("1", "Sex")]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("~ (1 | g) + (0 + x | h)", [("1", "g"), ("0 + x", "h")]),
        ("(1 | g)", [("1", "g")]),
        ("~ 1 + x | g", [("1 + x", "g")]),  # R: a bar binds loosest (nlme's random=)
        ("~ x + (1 | g)", [("1", "g")]),  # lme4's findbars leaves other terms out
    ],
)
def test_one_sided_formula_gives_its_random_terms(text, expected):
    assert [(t.lhs.text, t.group) for t in parse_one_sided(text).random] == expected


def test_lme_random_argument_in_either_syntax():
    data = mm.datasets.load("Orthodont")
    nlme_syntax = mm.lme("distance ~ age", data, random="~ age | Subject")
    lme4_syntax = mm.lme("distance ~ age", data, random="(age | Subject)")
    assert nlme_syntax.frame.formula.text == "distance ~ age + (age | Subject)"
    assert nlme_syntax.frame.formula.random == lme4_syntax.frame.formula.random
    assert nlme_syntax.loglik == lme4_syntax.loglik
    with pytest.raises(FormulaError, match="may hold only random-effects terms"):
        mm.lme("distance ~ age", data, random="(1 | Subject) + Sex")


@pytest.mark.parametrize(
    "formula, fixed, columns",
    [
        ("Reaction ~ Days + (1 | Subject)", "Days", ["(Intercept)", "Days"]),
        ("Reaction ~ Days - 1 + (1 | Subject)", "Days - 1", ["Days"]),
        ("Reaction ~ 0 + Days + (1 | Subject)", "0 + Days", ["Days"]),
        ("Reaction ~ -1 + Days + (1 | Subject)", "1 - 1 + Days", ["Days"]),
        ("Reaction ~ (1 | Subject)", "1", ["(Intercept)"]),
        ("Reaction ~ 0 + (1 | Subject)", "0", []),
    ],
)
def test_intercept_in_the_fixed_part(formula, fixed, columns):
    parsed = parse_formula(formula)
    assert parsed.fixed.text == fixed
    design, x = Design.build(parsed.fixed, mm.datasets.load("sleepstudy"))
    assert design.column_names == columns
    assert x.shape == (180, len(columns))


def test_offset_terms_leave_the_fixed_part():
    parsed = parse_formula("y ~ x + offset(log(w)) + offset(z) + (1 | g)")
    assert parsed.fixed.text == "x"
    assert parsed.offsets == ("log(w)", "z")


def test_powers_are_translated_where_r_reads_them_as_arithmetic():
    parsed = parse_formula("y^2 ~ I(x^2) + log((x + 1)^2) + (a + b)^2 + offset(z^2) + (I(x^2) | g)")
    assert parsed.response == "y**2"
    assert parsed.fixed.text == "I(x**2) + log((x + 1)**2) + (a + b)^2"  # (a + b)^2 stays formula crossing
    assert parsed.offsets == ("z**2",)
    assert parsed.random[0].lhs.text == "I(x**2)"


def test_offset_power_is_arithmetic():
    # lmer(Reaction ~ Days + offset(Days^2) + (1|Subject), sleepstudy): R's ^, not Python's XOR
    m = mm.lmer("Reaction ~ Days + offset(Days^2) + (1 | Subject)", mm.datasets.load("sleepstudy"))
    np.testing.assert_allclose(m.fixef, [263.405105, 1.467286], rtol=1e-6)


# -- R column names and contrasts


@pytest.mark.parametrize(
    "formulaic, r",
    [
        ("Intercept", "(Intercept)"),
        ("Days", "Days"),
        ("Sex[T.Female]", "SexFemale"),
        ("age:Sex[T.Female]", "age:SexFemale"),
        ("C(temperature, contr.poly)[.L]", "temperature.L"),
        ("C(temperature, contr.poly)[^4]", "temperature^4"),
        ("recipe[T.B]:C(temperature, contr.poly)[.Q]", "recipeB:temperature.Q"),
        ("poly(Days, 2)[1]", "poly(Days, 2)1"),
        ("I(Days ** 2)", "I(Days^2)"),
        ("log((Days + 1) ** 2)", "log((Days + 1)^2)"),
        ("exp(Days / 10)", "exp(Days/10)"),
    ],
)
def test_r_column_name(formulaic, r):
    assert r_column_name(formulaic) == r


def test_ordered_factor_gets_polynomial_contrasts():
    cake = mm.datasets.load("cake")
    design, x = Design.build(Rhs.parse("recipe * temperature", "test"), cake)
    # colnames(model.matrix(~ recipe * temperature, cake))
    powers = [".L", ".Q", ".C", "^4", "^5"]
    expected = ["(Intercept)", "recipeB", "recipeC"] + [f"temperature{p}" for p in powers]
    expected += [f"recipe{r}:temperature{p}" for p in powers for r in "BC"]
    assert design.column_names == expected
    # contr.poly(6): orthonormal polynomials in the level index
    levels = cake["temperature"].cat.codes.to_numpy()
    np.testing.assert_allclose(x[:, 3], (2 * levels - 5) / np.sqrt(70))
    np.testing.assert_allclose((x[:, 3:8] ** 2).sum(axis=0), np.full(5, len(cake) / 6))


def test_treatment_contrasts_use_the_first_level_as_reference():
    orthodont = mm.datasets.load("Orthodont")
    design, x = Design.build(Rhs.parse("age * Sex", "test"), orthodont)
    assert design.column_names == ["(Intercept)", "age", "SexFemale", "age:SexFemale"]
    np.testing.assert_array_equal(x[:, 2], (orthodont["Sex"] == "Female").to_numpy(dtype=float))


def test_poly_matches_r():
    design, x = Design.build(Rhs.parse("poly(Days, 2)", "test"), mm.datasets.load("sleepstudy"))
    assert design.column_names == ["(Intercept)", "poly(Days, 2)1", "poly(Days, 2)2"]
    # poly(sleepstudy$Days, 2)[1:2, ]
    expected = [[-0.1167748416242285, 0.1230914909793356], [-0.0908248768188443, 0.0410304969931108]]
    np.testing.assert_allclose(x[:2, 1:], expected, rtol=1e-12)


def test_transforms_evaluate_like_r():
    data = mm.datasets.load("sleepstudy")
    rhs = Rhs.parse("log(Days + 1) + sqrt(Days) + exp(Days / 10) + scale(Days)", "test")
    design, x = Design.build(rhs, data)
    assert design.column_names == [
        "(Intercept)",
        "log(Days + 1)",
        "sqrt(Days)",
        "exp(Days/10)",
        "scale(Days)",
    ]
    days = data["Days"].to_numpy(dtype=float)
    np.testing.assert_allclose(x[:, 1], np.log(days + 1))
    np.testing.assert_allclose(x[:, 2], np.sqrt(days))
    np.testing.assert_allclose(x[:, 3], np.exp(days / 10))
    np.testing.assert_allclose(x[:, 4], (days - days.mean()) / days.std(ddof=1))  # R's scale(): n - 1


# R 4 / lme4 1.1-31, fixef(lmer(<formula>, sleepstudy))
FIXEF_WITH_FUNCTIONS = {
    "Reaction ~ poly(Days, 2) + (1 | Subject)": {
        "(Intercept)": 298.5078916666669,
        "poly(Days, 2)1": 403.3641678552184,
        "poly(Days, 2)2": 32.8557879762132,
    },
    "Reaction ~ I(Days^2) + log(Days + 1) + (1 | Subject)": {
        "(Intercept)": 254.143003042482064,
        "I(Days^2)": 0.786862040041798,
        "log(Days + 1)": 14.525106737418175,
    },
    "Reaction ~ scale(Days) + sqrt(Days) + (1 | Subject)": {
        "(Intercept)": 317.11349853768286,
        "scale(Days)": 38.28195933196597,
        "sqrt(Days)": -9.63721452608697,
    },
    "log(Reaction) ~ exp(Days/10) + (1 | Subject)": {
        "(Intercept)": 5.343017443666864,
        "exp(Days/10)": 0.207218538281087,
    },
    "Reaction ~ log((Days + 1)^2) + (1 | Subject)": {
        "(Intercept)": 238.05425430916875,
        "log((Days + 1)^2)": 20.011912765564777,
    },
}


@pytest.mark.parametrize("formula", sorted(FIXEF_WITH_FUNCTIONS))
def test_functions_in_formulas_fit_like_lme4(formula):
    expected = pd.Series(FIXEF_WITH_FUNCTIONS[formula])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of these warn in R
        m = mm.lmer(formula, mm.datasets.load("sleepstudy"))
    assert list(m.fixef.index) == list(expected.index)
    np.testing.assert_allclose(m.fixef, expected, rtol=1e-6)


def test_transform_in_a_random_term():
    m = mm.lmer("Reaction ~ Days + (0 + log(Days + 1) | Subject)", mm.datasets.load("sleepstudy"))
    assert m.frame.terms[0].column_names == ["log(Days + 1)"]


# -- R's model.matrix: names, order and coding of columns (tools/reference_formula.R)

FIXTURES = Path(__file__).parent / "fixtures" / "formula"
REFERENCE = json.loads((FIXTURES / "model_matrices.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("reference", REFERENCE["model_matrices"], ids=lambda r: f"{r['data']}: {r['rhs']}")
def test_model_matrix_matches_r(reference):
    """colnames(model.matrix(~ rhs, data)) and its values: R orders terms by degree, writes a term's
    variables in the order they first appear in the formula (``cses:sectorPublic`` in ``meanses * cses +
    sector * cses``), codes a factor by indicators when the term without it is not in the formula, and
    understands ``factor()``, ``as.factor()``, ``as.numeric()`` and non-ASCII names; ordered factors get
    polynomial contrasts (``factor()`` keeps them ordered), and with R's ``contr.sum`` the unordered ones
    sum-to-zero contrasts (numbered columns)."""
    if reference["data"] == "cake":
        data = mm.datasets.load("cake").rename(columns={"angle": "x"})
    else:
        data = pd.read_csv(FIXTURES / "data.csv", encoding="utf-8")
    parsed = parse_formula(f"x ~ {reference['rhs']}")
    table = complete_rows(parsed, data).table
    design, x = Design.build(parsed.fixed, table, sum_contrasts=reference["sum_contrasts"])
    assert design.column_names == reference["columns"]
    expected = np.array(reference["rows"], dtype=float)
    np.testing.assert_allclose(x[reference["rows_index"]], expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("reference", REFERENCE["double_bars"], ids=lambda r: r["formula"])
def test_double_bar_expands_as_lme4(reference):
    """lme4's expandDoubleVerts: one term per term label, a factor's columns kept together
    (``(0 + f || g)`` is ``(0 + f | g)``)."""
    expanded = " + ".join(t.formula_text for t in parse_formula(reference["formula"]).random)
    assert reference["expanded"] == f"y ~ ({expanded})"


def test_interaction_names_follow_r_in_a_fit():
    data = pd.read_csv(FIXTURES / "data.csv", encoding="utf-8")
    data["y"] = np.random.default_rng(3).standard_normal(len(data))
    model = mm.lmer("y ~ meanses * cses + sector * cses + (1 | g)", data)
    assert list(model.fixef.index) == [
        "(Intercept)",
        "meanses",
        "cses",
        "sectorPublic",
        "meanses:cses",
        "cses:sectorPublic",
    ]
    assert model.anova().index.tolist() == ["meanses", "cses", "sector", "meanses:cses", "cses:sector"]


def test_factor_functions_in_random_terms_and_grouping():
    """R / lme4 1.1-31: cnms of (0 + factor(cyl) | g) are factor(cyl)4, factor(cyl)6, factor(cyl)8."""
    data = pd.read_csv(FIXTURES / "data.csv", encoding="utf-8")
    data = pd.concat([data] * 3, ignore_index=True)
    data["y"] = np.random.default_rng(4).standard_normal(len(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = mm.lmer("y ~ x + (0 + factor(cyl) | g) + (1 | factor(cyl)) + (1 | as.factor(f))", data)
    names = {t.group.name: t.column_names for t in model.frame.terms}
    assert names == {
        "g": ["factor(cyl)4", "factor(cyl)6", "factor(cyl)8"],
        "factor(cyl)": ["(Intercept)"],
        "as.factor(f)": ["(Intercept)"],
    }
    assert list(model.ranef["factor(cyl)"].index) == ["4", "6", "8"]
    new = data.head(4).assign(cyl=[6, 6, 8, 4])
    by_hand = model.fixef["(Intercept)"] + model.fixef["x"] * new["x"]
    for t in model.frame.terms:
        if t.group.name == "factor(cyl)":
            by_hand += model.ranef["factor(cyl)"].loc[new["cyl"].astype(str), "(Intercept)"].to_numpy()
        elif t.group.name == "as.factor(f)":
            by_hand += model.ranef["as.factor(f)"].loc[new["f"], "(Intercept)"].to_numpy()
        else:
            effects = model.ranef["g"].loc[new["g"]]
            by_hand += [effects.iloc[i][f"factor(cyl){c}"] for i, c in enumerate(new["cyl"])]
    np.testing.assert_allclose(model.predict(new), by_hand, rtol=1e-10)


def test_non_ascii_names_need_no_backticks():
    data = mm.datasets.load("sleepstudy").rename(columns={"Days": "größe", "Subject": "время"})
    model = mm.lmer("Reaction ~ größe + (größe | время)", data)
    reference = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    assert list(model.fixef.index) == ["(Intercept)", "größe"]
    assert model.frame.terms[0].group.name == "время"
    np.testing.assert_allclose(model.fixef.to_numpy(), reference.fixef.to_numpy(), rtol=1e-10)


def test_unknown_covariance_structure_is_named():
    with pytest.raises(FormulaError, match=r"unknown covariance structure 'xyz' in 'xyz\(1 \| g\)'"):
        parse_formula("y ~ x + xyz(1 | g)")


@pytest.mark.parametrize(
    "term, problem",
    [
        ("ar1(Days | Subject)", "it has an intercept"),
        ("ar1(0 + Days | Subject)", "Days is numeric"),
        ("toep(factor(Days) | Subject)", "it has an intercept"),
        ("toep(0 + factor(Days) + Days | Subject)", "it has the terms factor(Days), Days"),
    ],
)
def test_ar1_and_toep_need_a_factors_levels(term, problem):
    with pytest.raises(FormulaError, match=rf"one factor's levels.*{re.escape(problem)}"):
        mm.lmer(f"Reaction ~ Days + {term}", mm.datasets.load("sleepstudy"))


def test_predict_matches_factor_levels_by_label_and_refuses_unseen_ones():
    data = pd.read_csv(FIXTURES / "data.csv", encoding="utf-8")
    data = pd.concat([data] * 3, ignore_index=True)
    data["y"] = np.random.default_rng(5).standard_normal(len(data)) + data["cyl"]
    model = mm.lmer("y ~ factor(cyl) * x + (1 | g)", data)
    new = data.iloc[[1, 4, 7]].assign(cyl=lambda d: d["cyl"].astype(float))  # 6.0 is level "6"
    np.testing.assert_allclose(model.predict(new), model.fitted.iloc[[1, 4, 7]], rtol=1e-12)
    with pytest.raises(ValueError, match=r"levels of factor\(cyl\) not seen in the fit: 5"):
        model.predict(new.assign(cyl=5))


# -- parse once


@pytest.fixture
def parsed_texts(monkeypatch):
    """Every text formulaic's parser reads (all its routes start at tokenizing), as a list the test
    clears; the caches of parsed formulas are emptied first."""
    from formulaic.parser import DefaultFormulaParser

    from mixedmodels.data.design import formula_names
    from mixedmodels.formula.parse import _parse_formula

    texts: list[str] = []
    tokenize = DefaultFormulaParser.get_tokens_from_formula

    def counting(self, formula, **kwargs):
        texts.append(formula)
        return tokenize(self, formula, **kwargs)

    monkeypatch.setattr(DefaultFormulaParser, "get_tokens_from_formula", counting)
    _parse_formula.cache_clear()
    formula_names.cache_clear()
    yield texts
    _parse_formula.cache_clear()
    formula_names.cache_clear()


def test_each_right_hand_side_is_parsed_once(parsed_texts):
    """Formula text becomes terms once: fitting parses each right-hand side (and the response) once, and
    what comes after (ranova's reduced models, anova, predict, summaries, aov's REML fit) parses nothing
    but a ``re_form`` given to it."""

    def parsed() -> list[str]:
        """The texts parsed since the last call."""
        texts = sorted(parsed_texts)
        parsed_texts.clear()
        return texts

    sleepstudy = mm.datasets.load("sleepstudy")
    model = mm.lmer("Reaction ~ Days + (1 + Days | Subject)", sleepstudy)
    assert parsed() == ["1 + Days", "Days", "Reaction"]
    model.ranova()
    model.anova()
    str(model.summary())
    assert parsed() == []
    model.predict(re_form="~ (1 | Subject)")
    assert parsed() == ["1"]
    model.predict(sleepstudy.head(), re_form="~ (1 | Subject)")
    assert parsed() == ["1"]
    mm.lme("distance ~ age", mm.datasets.load("Orthodont"), random="~ 1 + age | Subject")
    assert parsed() == ["1 + age", "age", "distance"]
    anova = mm.aov("score ~ Machine * Worker", mm.datasets.load("Machines"), random=["Worker"])
    assert parsed() == ["Machine * Worker", "score"]
    assert anova.reml_fit.frame.formula.text == "score ~ Machine + Machine:Worker + (1 | Worker)"
    assert parsed() == []
