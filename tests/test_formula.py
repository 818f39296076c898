"""lme4 formula parsing, R column names and contrasts, and functions in formulas.

Reference numbers come from R 4 / lme4 1.1-31 (the code that produced them is quoted next to each).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm
from mixedmodels.design import Design, r_column_name
from mixedmodels.formula import RandomTerm, parse_formula


def terms(formula: str) -> list[tuple[str, str]]:
    """(lhs, group) of each random term."""
    return [(t.lhs, t.group) for t in parse_formula(formula).random]


# -- parse_formula


def test_correlated_slope():
    parsed = parse_formula("Reaction ~ Days + (Days | Subject)")
    assert parsed.response == "Reaction"
    assert parsed.fixed == "Days"
    assert parsed.random == (RandomTerm("Days", ("Subject",)),)
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
    assert [t.factor.name for t in model.frame.terms] == ["b:a", "a", "c"]


def test_several_terms_on_one_factor():
    formula = "distance ~ age + (1 | Subject) + (0 + age | Subject) + (1 | Sex)"
    assert terms(formula) == [("1", "Subject"), ("0 + age", "Subject"), ("1", "Sex")]


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
    assert parsed.fixed == fixed
    design, x = Design.build(parsed.fixed, mm.datasets.load("sleepstudy"))
    assert design.column_names == columns
    assert x.shape == (180, len(columns))


def test_offset_terms_leave_the_fixed_part():
    parsed = parse_formula("y ~ x + offset(log(w)) + offset(z) + (1 | g)")
    assert parsed.fixed == "x"
    assert parsed.offsets == ("log(w)", "z")


def test_powers_are_translated_where_r_reads_them_as_arithmetic():
    parsed = parse_formula("y^2 ~ I(x^2) + log((x + 1)^2) + (a + b)^2 + offset(z^2) + (I(x^2) | g)")
    assert parsed.response == "y**2"
    assert parsed.fixed == "I(x**2) + log((x + 1)**2) + (a + b)^2"  # (a + b)^2 stays formula crossing
    assert parsed.offsets == ("z**2",)
    assert parsed.random[0].lhs == "I(x**2)"


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
    design, x = Design.build("recipe * temperature", cake)
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
    design, x = Design.build("age * Sex", orthodont)
    assert design.column_names == ["(Intercept)", "age", "SexFemale", "age:SexFemale"]
    np.testing.assert_array_equal(x[:, 2], (orthodont["Sex"] == "Female").to_numpy(dtype=float))


def test_poly_matches_r():
    design, x = Design.build("poly(Days, 2)", mm.datasets.load("sleepstudy"))
    assert design.column_names == ["(Intercept)", "poly(Days, 2)1", "poly(Days, 2)2"]
    # poly(sleepstudy$Days, 2)[1:2, ]
    expected = [[-0.1167748416242285, 0.1230914909793356], [-0.0908248768188443, 0.0410304969931108]]
    np.testing.assert_allclose(x[:2, 1:], expected, rtol=1e-12)


def test_transforms_evaluate_like_r():
    data = mm.datasets.load("sleepstudy")
    design, x = Design.build("log(Days + 1) + sqrt(Days) + exp(Days / 10) + scale(Days)", data)
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
