"""The models of tools/reference_nlme.R as Python calls, and their data (shared by the nlme tests)."""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

import mixedmodels as mm

FIXTURES = Path(__file__).parent / "fixtures" / "nlme"


@cache
def reference(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def ovary() -> pd.DataFrame:
    d = mm.datasets.load("Ovary")
    d["sinT"] = np.sin(2 * np.pi * d["Time"])
    d["cosT"] = np.cos(2 * np.pi * d["Time"])
    return d


def simulated(name: str) -> pd.DataFrame:
    d = pd.read_csv(FIXTURES / f"{name}.csv")
    if name == "spatial":
        d["field"] = pd.Categorical(d["field"])
    else:
        d["unit"] = pd.Categorical(d["unit"])
        d["arm"] = pd.Categorical(d["arm"], categories=["ctl", "low", "high"])
    return d


DATA = {
    "Ovary": ovary,
    "Orthodont": lambda: mm.datasets.load("Orthodont"),
    "BodyWeight": lambda: mm.datasets.load("BodyWeight"),
    "Oats": lambda: mm.datasets.load("Oats"),
    "hetero": lambda: simulated("hetero"),
    "spatial": lambda: simulated("spatial"),
}

OVARY = "follicles ~ sinT + cosT"
ORTHODONT = "distance ~ age * Sex"
BODYWEIGHT = "weight ~ Time * Diet"
HETERO = "y ~ time * dose"
SPATIAL = "z ~ x + y"

# name -> (dataset, function, formula, keyword arguments)
MODELS = {
    "gls_ovary_ar1": ("Ovary", "gls", OVARY, dict(correlation=mm.CorAR1("~ 1 | Mare"))),
    "gls_ovary_ar1_ml": ("Ovary", "gls", OVARY, dict(correlation=mm.CorAR1("~ 1 | Mare"), method="ML")),
    "gls_ovary_ml": ("Ovary", "gls", OVARY, dict(method="ML")),
    "gls_ovary_arma11": ("Ovary", "gls", OVARY, dict(correlation=mm.CorARMA("~ 1 | Mare", p=1, q=1))),
    "gls_ovary_arma02": ("Ovary", "gls", OVARY, dict(correlation=mm.CorARMA("~ 1 | Mare", p=0, q=2))),
    "gls_ovary_car1": ("Ovary", "gls", OVARY, dict(correlation=mm.CorCAR1("~ Time | Mare"))),
    "gls_orthodont_compsymm": (
        "Orthodont",
        "gls",
        ORTHODONT,
        dict(correlation=mm.CorCompSymm("~ 1 | Subject")),
    ),
    "gls_orthodont_symm_ident": (
        "Orthodont",
        "gls",
        ORTHODONT,
        dict(correlation=mm.CorSymm("~ 1 | Subject"), weights=mm.VarIdent("~ 1 | age")),
    ),
    "gls_orthodont_symm_ident_ml": (
        "Orthodont",
        "gls",
        ORTHODONT,
        dict(correlation=mm.CorSymm("~ 1 | Subject"), weights=mm.VarIdent("~ 1 | age"), method="ML"),
    ),
    "gls_orthodont_ident_sex": ("Orthodont", "gls", ORTHODONT, dict(weights=mm.VarIdent("~ 1 | Sex"))),
    "gls_orthodont_fixed": ("Orthodont", "gls", ORTHODONT, dict(weights=mm.VarFixed("~ age"))),
    "gls_bodyweight_power_fitted": (
        "BodyWeight",
        "gls",
        BODYWEIGHT,
        dict(weights=mm.VarPower(), correlation=mm.CorCompSymm("~ 1 | Rat")),
    ),
    "gls_hetero_power_ar1": (
        "hetero",
        "gls",
        HETERO,
        dict(weights=mm.VarPower("~ time"), correlation=mm.CorAR1("~ 1 | unit")),
    ),
    "gls_hetero_exp_ar1": (
        "hetero",
        "gls",
        HETERO,
        dict(weights=mm.VarExp("~ time"), correlation=mm.CorAR1("~ 1 | unit")),
    ),
    "gls_hetero_constpower_ar1": (
        "hetero",
        "gls",
        HETERO,
        dict(weights=mm.VarConstPower("~ time"), correlation=mm.CorAR1("~ 1 | unit")),
    ),
    "gls_hetero_ident_ar1": (
        "hetero",
        "gls",
        HETERO,
        dict(weights=mm.VarIdent("~ 1 | arm"), correlation=mm.CorAR1("~ 1 | unit")),
    ),
    "gls_hetero_comb_ar1": (
        "hetero",
        "gls",
        HETERO,
        dict(
            weights=mm.VarComb(mm.VarIdent("~ 1 | arm"), mm.VarPower("~ time")),
            correlation=mm.CorAR1("~ 1 | unit"),
        ),
    ),
    "gls_hetero_power_strata_ar1": (
        "hetero",
        "gls",
        HETERO,
        dict(weights=mm.VarPower("~ time | arm"), correlation=mm.CorAR1("~ 1 | unit")),
    ),
    "gls_spatial_exp": ("spatial", "gls", SPATIAL, dict(correlation=mm.CorExp("~ x + y | field"))),
    "gls_spatial_exp_nugget": (
        "spatial",
        "gls",
        SPATIAL,
        dict(correlation=mm.CorExp("~ x + y | field", nugget=True)),
    ),
    "gls_spatial_gaus": ("spatial", "gls", SPATIAL, dict(correlation=mm.CorGaus("~ x + y | field"))),
    "gls_spatial_gaus_manhattan": (
        "spatial",
        "gls",
        SPATIAL,
        dict(correlation=mm.CorGaus("~ x + y | field", metric="manhattan")),
    ),
    "gls_spatial_lin_nugget": (
        "spatial",
        "gls",
        SPATIAL,
        dict(correlation=mm.CorLin("~ x + y | field", value=[3, 0.2], nugget=True)),
    ),
    "gls_spatial_ratio_nugget": (
        "spatial",
        "gls",
        SPATIAL,
        dict(correlation=mm.CorRatio("~ x + y | field", nugget=True)),
    ),
    "gls_spatial_spher_nugget": (
        "spatial",
        "gls",
        SPATIAL,
        dict(correlation=mm.CorSpher("~ x + y | field", nugget=True)),
    ),
    "lme_orthodont_slope": ("Orthodont", "lme", ORTHODONT, dict(random="~ age | Subject")),
    "lme_orthodont_slope_ml": ("Orthodont", "lme", ORTHODONT, dict(random="~ age | Subject", method="ML")),
    "lme_orthodont_intercept_ml": ("Orthodont", "lme", ORTHODONT, dict(random="(1 | Subject)", method="ML")),
    "lme_orthodont_ar1": (
        "Orthodont",
        "lme",
        ORTHODONT,
        dict(random="~ 1 | Subject", correlation=mm.CorAR1()),
    ),
    "lme_orthodont_ar1_ml": (
        "Orthodont",
        "lme",
        ORTHODONT,
        dict(random="~ 1 | Subject", correlation=mm.CorAR1(), method="ML"),
    ),
    "lme_orthodont_ident": (
        "Orthodont",
        "lme",
        ORTHODONT,
        dict(random="~ 1 | Subject", weights=mm.VarIdent("~ 1 | Sex")),
    ),
    "lme_orthodont_compsymm": (
        "Orthodont",
        "lme",
        ORTHODONT,
        dict(random="~ age - 1 | Subject", correlation=mm.CorCompSymm()),
    ),
    "lme_orthodont_symm": (
        "Orthodont",
        "lme",
        ORTHODONT,
        dict(random="~ 0 + age | Subject", correlation=mm.CorSymm()),
    ),
    "lme_orthodont_fixed": ("Orthodont", "lme", ORTHODONT, dict(random="~ 1 | Subject", weights="~ age")),
    "lme_ovary_ar1": ("Ovary", "lme", OVARY, dict(random="~ 1 | Mare", correlation=mm.CorAR1())),
    "lme_ovary_arma11": (
        "Ovary",
        "lme",
        OVARY,
        dict(random="(sinT || Mare)", correlation=mm.CorARMA(p=1, q=1)),
    ),
    "lme_ovary_car1": ("Ovary", "lme", OVARY, dict(random="~ 1 | Mare", correlation=mm.CorCAR1("~ Time"))),
    "lme_bodyweight_car1_power": (
        "BodyWeight",
        "lme",
        BODYWEIGHT,
        dict(random="~ Time | Rat", weights=mm.VarPower("~ Time"), correlation=mm.CorCAR1("~ Time")),
    ),
    "lme_bodyweight_power_fitted": (
        "BodyWeight",
        "lme",
        BODYWEIGHT,
        dict(random="~ Time | Rat", weights=mm.VarPower()),
    ),
    "lme_bodyweight_exp": (
        "BodyWeight",
        "lme",
        BODYWEIGHT,
        dict(random="~ Time | Rat", correlation=mm.CorExp("~ Time")),
    ),
    "lme_bodyweight_exp_nugget": (
        "BodyWeight",
        "lme",
        BODYWEIGHT,
        dict(random="~ Time | Rat", correlation=mm.CorExp("~ Time", nugget=True)),
    ),
    "lme_bodyweight_ratio": (
        "BodyWeight",
        "lme",
        BODYWEIGHT,
        dict(random="~ Time | Rat", correlation=mm.CorRatio("~ Time")),
    ),
    "lme_hetero_power_ar1": (
        "hetero",
        "lme",
        HETERO,
        dict(random="~ 1 | unit", weights=mm.VarPower("~ time"), correlation=mm.CorAR1()),
    ),
    "lme_hetero_exp_ar1": (
        "hetero",
        "lme",
        HETERO,
        dict(random="~ 1 | unit", weights=mm.VarExp("~ time"), correlation=mm.CorAR1()),
    ),
    "lme_hetero_ident_ar1": (
        "hetero",
        "lme",
        HETERO,
        dict(random="~ 1 | unit", weights=mm.VarIdent("~ 1 | arm"), correlation=mm.CorAR1()),
    ),
    "lme_hetero_comb_ar1": (
        "hetero",
        "lme",
        HETERO,
        dict(
            random="~ 1 | unit",
            weights=mm.VarComb(mm.VarIdent("~ 1 | arm"), mm.VarPower("~ time")),
            correlation=mm.CorAR1(),
        ),
    ),
    "lme_bodyweight_constpower": (
        "BodyWeight",
        "lme",
        BODYWEIGHT,
        dict(random="~ 1 | Rat", weights=mm.VarConstPower("~ Time")),
    ),
    "lme_spatial_exp": (
        "spatial",
        "lme",
        SPATIAL,
        dict(random="~ 1 | field", correlation=mm.CorExp("~ x + y")),
    ),
    "lme_spatial_gaus_nugget": (
        "spatial",
        "lme",
        SPATIAL,
        dict(random="~ 1 | field", correlation=mm.CorGaus("~ x + y", nugget=True)),
    ),
    "lme_spatial_lin": (
        "spatial",
        "lme",
        SPATIAL,
        dict(random="~ 1 | field", correlation=mm.CorLin("~ x + y", value=3)),
    ),
    "lme_spatial_ratio_nugget": (
        "spatial",
        "lme",
        SPATIAL,
        dict(random="~ 1 | field", correlation=mm.CorRatio("~ x + y", nugget=True)),
    ),
    "lme_spatial_spher": (
        "spatial",
        "lme",
        SPATIAL,
        dict(random="~ 1 | field", correlation=mm.CorSpher("~ x + y")),
    ),
    "lme_oats_nested": ("Oats", "lme", "yield ~ nitro", dict(random="~ 1 | Block/Variety")),
    "lme_oats_nested_ident": (
        "Oats",
        "lme",
        "yield ~ nitro",
        dict(random="~ 1 | Block/Variety", weights=mm.VarIdent("~ 1 | Variety")),
    ),
}


@cache
def data(name: str) -> pd.DataFrame:
    return DATA[MODELS[name][0]]()


@cache
def fit(name: str):
    dataset, function, formula, kwargs = MODELS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.ModelMessage)
        return getattr(mm, function)(formula, data(name), **kwargs)


# -- comparisons shared by the gls and lme tests ---------------------------------------------------------
RTOL_FIT = 1e-4  # coefficients, standard errors, logLik, AIC, BIC (issue 5)
RTOL_VARIANCE = 1e-3  # variance-function, correlation and random-effects parameters


def table(block: dict) -> pd.DataFrame:
    """A fixture table {rownames, columns, values} as a DataFrame."""
    return pd.DataFrame(block["values"], index=block["rownames"])[block["columns"]]


def interval_table(block: dict) -> pd.DataFrame:
    return pd.DataFrame(
        {"lower": block["lower"], "est.": block["est"], "upper": block["upper"]}, index=block["rownames"]
    )


def assert_close(ours, expected, rtol: float, scale=0.0) -> None:
    """Relative agreement; ``scale`` (a number or an array broadcast against the values) adds an absolute
    tolerance of rtol * scale for values near zero."""
    ours, expected = np.asarray(ours, dtype=float), np.asarray(expected, dtype=float)
    assert ours.shape == expected.shape, f"shapes differ: {ours.shape} and {expected.shape}"
    within = np.isclose(ours, expected, rtol=rtol, atol=rtol * np.asarray(scale), equal_nan=True)
    assert within.all(), (
        f"{np.count_nonzero(~within)} of {within.size} values not within rtol={rtol} (+ rtol * scale)\n"
        f"ours:     {ours[~within]}\nexpected: {expected[~within]}"
    )


def check_fit(model, ref: dict) -> None:
    """Coefficients, their covariance and standard errors, sigma, logLik, AIC, BIC and df."""
    assert list(model.fixef.index) == ref["coefficients"]["names"]
    assert_close(model.fixef, ref["coefficients"]["values"], RTOL_FIT)
    vcov = np.array(ref["vcov"]["values"])
    se = np.sqrt(np.diag(vcov))
    assert_close(np.sqrt(np.diag(model.vcov.to_numpy())), se, RTOL_FIT)
    assert_close(model.vcov, vcov, RTOL_VARIANCE, scale=np.outer(se, se))
    assert_close(model.loglik, ref["logLik"], RTOL_FIT)
    assert_close(model.aic, ref["AIC"], RTOL_FIT)
    assert_close(model.bic, ref["BIC"], RTOL_FIT)
    assert model.df_loglik == ref["df"]
    assert model.nobs == ref["nobs"]
    assert model.method == ref["method"]
    assert_close(model.sigma, ref["sigma"], RTOL_FIT)
    summary = table(ref["tTable"])
    ours = model.coef_table()
    assert_close(ours["Std. Error"], summary["Std.Error"], RTOL_FIT)
    assert_close(ours["t value"], summary["t-value"], RTOL_FIT, scale=1.0)
    assert_close(ours["Pr(>|t|)"], summary["p-value"], RTOL_VARIANCE, scale=1e-6)
    if "DF" in summary:
        np.testing.assert_array_equal(ours["df"], summary["DF"])


def check_structures(model, ref: dict) -> None:
    """The correlation and variance-function parameters on nlme's reported scale, with nlme's names."""
    for ours, key in ((model.correlation_parameters, "corStruct"), (model.varfunc_params, "varStruct")):
        block = ref[key]
        if block is None or not block["values"]:
            assert len(ours) == 0
            continue
        if block["names"]:
            assert list(ours.index) == block["names"]
        assert_close(ours, block["values"], RTOL_VARIANCE)


def check_intervals(model, ref: dict) -> None:
    """intervals() against nlme's intervals() computed with an accurate apVar (see tools/README.md)."""
    expected = ref["intervals_accurate"] or ref["intervals"]
    ours = model.intervals()
    for key, block in expected.items():
        if key == "reStruct":
            for level, tab in block.items():
                mine = ours["reStruct"][level]
                assert list(mine.index) == tab["rownames"]
                assert_close(mine, interval_table(tab), RTOL_VARIANCE)
            continue
        mine = ours[key]
        reference_table = interval_table(block)
        assert list(mine.index) == list(reference_table.index)
        if key in ("coef", "fixed"):
            width = (reference_table["upper"] - reference_table["lower"]).to_numpy()
            assert_close(mine, reference_table, RTOL_FIT, scale=width[:, None])
        else:
            assert_close(mine, reference_table, RTOL_VARIANCE)


def check_residuals(model, ref: dict) -> None:
    """Residuals of the three types, in the input's row order.

    Normalized residuals are compared with nlme's correlation factors applied to each group's rows
    (``normalized_grouped``); nlme's own ``resid(type = "normalized")`` applies them to the rows in
    the data's order, which is the same only when the data are sorted by group (then checked too).
    """
    expected = ref["residuals"]
    for kind, key in (("response", "response"), ("pearson", "pearson"), ("normalized", "normalized_grouped")):
        values = np.asarray(expected[key], dtype=float)
        assert_close(model.resid(kind), values, RTOL_VARIANCE, scale=np.std(values))
    if np.array_equal(model.data.order, np.arange(model.nobs)):
        values = np.asarray(expected["normalized"], dtype=float)
        assert_close(model.resid("normalized"), values, RTOL_VARIANCE, scale=np.std(values))
