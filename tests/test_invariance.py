"""Results do not depend on row order, group labels, the response's location and units, or a covariate's
units (issue 11, point 3).

Each case fits a model, then the same model to transformed data, and maps the second fit back to the
first's units: a response shifted by ``c`` moves the intercept by ``c``; a response scaled by ``a``
scales beta and sigma by ``a`` and adds ``2 n log a`` to the ML deviance (``2 (n - p) log a`` to the
REML criterion); a covariate scaled by ``a`` divides its coefficient, and the rows of theta of its
random slope, by ``a`` and adds ``2 log a`` to the REML criterion (log|X'V^-1 X| changes by it).

Estimates agree to 1e-6 relative (criteria to 1e-6 too), except on a flat optimum: a random slope
on Orthodont's 27 subjects with rows missing leaves the REML criterion so flat in one direction (the
Hessian's smallest eigenvalue is 0.04 in natural units) that double precision, whose rounding of the
criterion is ~1e-13, determines theta there to ~1e-6 only; that case is held to 1e-5.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

RTOL = 1e-6


@dataclass(frozen=True)
class Case:
    name: str
    formula: str
    covariate: str  # a covariate of the fixed part (and of a random slope where there is one)
    data: pd.DataFrame
    response: str
    groups: tuple[str, ...]
    rtol: float = 1e-6  # for the estimates (see the module docstring)


def _crossed() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    rows = [(s, i) for s in range(12) for i in range(9) if rng.random() > 0.15]
    subj, item = np.array(rows).T
    x = rng.normal(size=len(rows)) * 3 + 1
    u, v = rng.normal(size=12) * 1.5, rng.normal(size=9) * 0.8
    y = 5 + 0.7 * x + u[subj] + v[item] + rng.normal(size=len(rows))
    return pd.DataFrame({"y": y, "x": x, "subj": [f"s{k}" for k in subj], "item": [f"i{k}" for k in item]})


def _unbalanced_missing() -> pd.DataFrame:
    data = mm.datasets.load("Orthodont").copy()
    data["occasion"] = ((data["age"] - 8) // 2 + 1).astype(int)  # the AR(1) time: not the row order
    rng = np.random.default_rng(5)
    data = data.drop(index=data.index[rng.random(len(data)) < 0.2])
    data.loc[data.index[::9], "distance"] = np.nan
    data.loc[data.index[4::13], "age"] = np.nan
    return data


CASES = {
    "sleepstudy": Case(
        "sleepstudy",
        "Reaction ~ Days + (Days | Subject)",
        "Days",
        mm.datasets.load("sleepstudy"),
        "Reaction",
        ("Subject",),
    ),
    "crossed": Case("crossed", "y ~ x + (1 | subj) + (1 | item)", "x", _crossed(), "y", ("subj", "item")),
    "nested": Case(
        "nested", "yield ~ nitro + (1 | Block/Variety)", "nitro", mm.datasets.load("Oats"), "yield",
        ("Block", "Variety"),
    ),
    "unbalanced_missing": Case(
        "unbalanced_missing",
        "distance ~ age + Sex + (1 | Subject)",
        "age",
        _unbalanced_missing(),
        "distance",
        ("Subject",),
    ),
    "unbalanced_missing_slope": Case(
        "unbalanced_missing_slope",
        "distance ~ age + Sex + (age | Subject)",
        "age",
        _unbalanced_missing(),
        "distance",
        ("Subject",),
        rtol=1e-5,
    ),
}

TRANSFORMS = [
    "shuffle",
    "rename",
    "shift_1e7",
    "scale_1e-6",
    "scale_1e6",
    "covariate_1e-3",
    "covariate_1e3",
]


@dataclass(frozen=True)
class Mapping:
    """How a transformation changes the fit: response y -> a y + c, covariate x -> b x."""

    response_scale: float = 1.0
    response_shift: float = 0.0
    covariate_scale: float = 1.0


def _transform(case: Case, kind: str, sigma: float) -> tuple[pd.DataFrame, Mapping]:
    data = case.data.copy()
    if kind == "shuffle":
        return data.sample(frac=1.0, random_state=3), Mapping()
    if kind == "rename":
        for group in case.groups:
            data[group] = "level_" + data[group].astype(str).str[::-1]
        return data, Mapping()
    if kind == "shift_1e7":
        shift = 1e7 * sigma
        data[case.response] = data[case.response] + shift
        return data, Mapping(response_shift=shift)
    if kind.startswith("scale_"):
        factor = float(kind.split("_")[1])
        data[case.response] = data[case.response] * factor
        return data, Mapping(response_scale=factor)
    factor = float(kind.split("_")[1])
    data[case.covariate] = data[case.covariate] * factor
    return data, Mapping(covariate_scale=factor)


def _close(actual, expected, scale=None, what="", rtol=RTOL):
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    scale = np.abs(expected) if scale is None else scale
    assert np.all(np.isfinite(actual)), what
    assert np.all(np.abs(actual - expected) <= rtol * np.maximum(scale, 1e-300)), (what, actual, expected)


def _fixef_back(fixef: pd.Series, covariate: str, mapping: Mapping) -> pd.Series:
    """Coefficients of the transformed fit in the original units."""
    beta = fixef.copy()
    if "(Intercept)" in beta.index:
        beta["(Intercept)"] -= mapping.response_shift
    beta /= mapping.response_scale
    beta[[name for name in beta.index if name == covariate]] *= mapping.covariate_scale
    return beta


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
@pytest.mark.parametrize("kind", TRANSFORMS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_lmer_invariance(name, kind, reml):
    case = CASES[name]
    m = mm.lmer(case.formula, case.data, reml=reml)
    data, mapping = _transform(case, kind, m.sigma)
    t = mm.lmer(case.formula, data, reml=reml)
    a, b = mapping.response_scale, mapping.covariate_scale
    se = np.sqrt(np.diag(m.vcov))
    rtol = case.rtol
    _close(_fixef_back(t.fixef, case.covariate, mapping), m.fixef, np.abs(m.fixef) + se, "fixef", rtol)
    _close(t.sigma / a, m.sigma, what="sigma", rtol=rtol)
    theta = t.theta.copy()
    scale_rows = _theta_rows_of(t, case.covariate)
    theta[scale_rows] *= b
    _close(theta, m.theta, np.full(len(theta), max(np.max(np.abs(m.theta)), 0.05)), "theta", rtol)
    n, p = m.nobs, m.n_fixed
    if reml:
        shift = 2 * (n - p) * math.log(a) + 2 * math.log(b)
        _close(t.reml_criterion - shift, m.reml_criterion, what="REML criterion")
    else:
        _close(t.loglik + n * math.log(a), m.loglik, what="log-likelihood")
    assert t.is_singular == m.is_singular


def _theta_rows_of(model: mm.LinearMixedModel, covariate: str) -> np.ndarray:
    """Positions in theta of the entries in the covariate's row of each term's T."""
    positions = []
    start = 0
    for term, covariance in zip(model.frame.terms, model.covariances):
        rows, _ = covariance.positions
        positions.extend(start + np.flatnonzero(np.asarray(term.column_names)[rows] == covariate))
        start += covariance.n_params
    return np.array(positions, dtype=int)


NLME_CASES = {
    "lme_slope": ("lme", "distance ~ age + Sex", {"random": "~ age | Subject"}),
    "lme_nested": ("lme", "yield ~ nitro", {"random": "~ 1 | Block/Variety"}),
    "gls_compsymm": ("gls", "distance ~ age + Sex", {"correlation": "compsymm"}),
    "gls_ar1": ("gls", "distance ~ age + Sex", {"correlation": "ar1"}),
}


def _nlme_fit(kind: str, formula: str, options: dict, data: pd.DataFrame, method: str):
    options = dict(options)
    if "correlation" in options:
        options["correlation"] = {
            "compsymm": mm.CorCompSymm("~ 1 | Subject"),
            "ar1": mm.CorAR1("~ occasion | Subject"),
        }[options["correlation"]]
    fit = mm.lme if kind == "lme" else mm.gls
    return fit(formula, data, method=method, **options)


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("kind", TRANSFORMS)
@pytest.mark.parametrize("name", sorted(NLME_CASES))
def test_nlme_invariance(name, kind, method):
    family, formula, options = NLME_CASES[name]
    base = CASES["nested" if "nitro" in formula else "unbalanced_missing"]
    m = _nlme_fit(family, formula, options, base.data, method)
    data, mapping = _transform(base, kind, m.sigma)
    t = _nlme_fit(family, formula, options, data, method)
    a, b = mapping.response_scale, mapping.covariate_scale
    se = np.sqrt(np.diag(m.vcov))
    _close(_fixef_back(t.fixef, base.covariate, mapping), m.fixef, np.abs(m.fixef) + se, "fixef")
    _close(t.sigma / a, m.sigma, what="sigma")
    n, p = len(m.fitted), len(m.fixef)
    if method == "REML":
        shift = -(n - p) * math.log(a) - math.log(b)
    else:
        shift = -n * math.log(a)
    _close(t.loglik - shift, m.loglik, what="log-likelihood")
    if family == "lme":
        sd = t.varcorr["sdcor"].to_numpy(dtype=float) / a
        ref = m.varcorr["sdcor"].to_numpy(dtype=float)
        slope = (t.varcorr["var1"] == base.covariate).to_numpy() & t.varcorr["var2"].isna().to_numpy()
        sd[slope] *= b
        residual = (t.varcorr["grp"] if "grp" in t.varcorr else t.varcorr["group"]) == "Residual"
        correlation = t.varcorr["var2"].notna().to_numpy()
        sd[correlation] *= a  # correlations are unitless
        _close(sd[~residual.to_numpy()], ref[~residual.to_numpy()], np.full(len(ref), np.max(ref))[
            ~residual.to_numpy()], "random-effects SDs")
