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
