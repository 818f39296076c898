"""Property-based tests on generated data and lme4 formulas (issue 11, point 9).

Hypothesis generates small data sets (20-200 rows; one or two grouping factors of 2-15 levels, crossed or
nested; up to two numeric covariates, one of them positive, sometimes a factor covariate, missing values
and prior weights) and formulas from lme4's grammar over their columns, fitted by REML or ML.  The runs
are derandomized (a fixed seed) with a fixed example budget, so CI sees the same examples every time;
``MIXEDMODELS_FUZZ_EXAMPLES=5000`` runs more of them.

1. Every fit returns finite estimates or raises a documented error (ValueError, of which FormulaError is
   one, TypeError or KeyError; not numpy's LinAlgError, which is a ValueError from deep inside).  The
   warnings allowed are lme4's: ConvergenceWarning, ModelMessage and the note on predictor scales.
2. A fit to transformed data (rows shuffled, grouping labels renamed, the response shifted by up to 1e7
   residual SDs or scaled by 1e-6...1e6, a covariate scaled by 1e-3...1e3), mapped back to the original
   units (tests/invariance.py), agrees with the fit to the data to 1e-6 relative in what the data
   determine:

   * the REML criterion or ML deviance, always (unless the relative standard deviations exceed 1e4:
     the residual variance is then below the random effects' rounding error and the likelihood may have
     no maximum, which property 1 covers);
   * beta, sigma and the free covariance parameters (theta in its natural units, ``theta /
     parameter_scale``, to 1e-6 of the largest or of 0.05) where both fits put the same parameters on
     their bounds (within lme4's singular tolerance; their values there are not compared) and the free
     ones are determined to better than 1e-7 in both.  The optimizer's last steps are Newton steps from
     finite differences of step ``h``, so the free parameters are determined to the error of those:
     ``eps / (h lambda)``, with ``eps`` the deviance's rounding noise near the optimum (measured) and
     ``lambda`` the smallest eigenvalue of its Hessian over them, and the change of the Newton step
     when ``h`` doubles (the truncation error, large near a bound).  A flat optimum (small lambda) or a
     noisy deviance (an uncentered random slope, say) fails this; a boundary that one fit reaches and
     the other stops short of means the criterion is flat there.

   The degenerate designs of property 1 (a covariate constant within groups or overall, a constant
   response) are left out of property 2: their optima are not determined.

What larger runs found is pinned at the end of this file on seeded data: as xfails while it fails (the
one failure the fixed examples would hit is left out of the generators until its test passes), as
regression tests once fixed.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from invariance import (
    assert_close,
    deviance_shift,
    fixef_back,
    renamed_groups,
    spans_intercept,
    theta_back,
    theta_scale,
)

import mixedmodels as mm
from mixedmodels.engine.optimize import DERIVATIVE_STEP, finite_differences

# the errors the README promises for bad input: ValueError (FormulaError is one), TypeError, KeyError
DOCUMENTED_ERRORS = (ValueError, TypeError, KeyError)
SCALE_WARNING = "Some predictor variables are on very different scales"  # lme4's, a UserWarning
DETERMINED = 1e-7  # the largest parameter error (natural units) at which parameters are compared
NO_OPTIMUM = 1e4  # relative standard deviations (natural units) beyond which no optimum is determined
EXAMPLES = int(os.environ.get("MIXEDMODELS_FUZZ_EXAMPLES", "0"))


def _fuzz(examples: int) -> settings:
    return settings(
        max_examples=EXAMPLES or examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def _lme4_warning(warning: warnings.WarningMessage) -> bool:
    category = warning.category
    scale_note = category is UserWarning and str(warning.message).startswith(SCALE_WARNING)
    return issubclass(category, (mm.ConvergenceWarning, mm.ModelMessage)) or scale_note


def _fitted(fit, *args, **kwargs):
    """``fit(*args, **kwargs)``, which may warn only as lme4 does (whether it returns or raises)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return fit(*args, **kwargs)
        finally:
            unexpected = [f"{w.category.__name__}: {w.message}" for w in caught if not _lme4_warning(w)]
            assert not unexpected, (args[0], unexpected)


def _error_allowed(error: Exception) -> bool:
    """A documented error with a message."""
    documented = isinstance(error, DOCUMENTED_ERRORS) and not isinstance(error, np.linalg.LinAlgError)
    return documented and bool(str(error))


@dataclass(frozen=True)
class Generated:
    """A generated data set and an lmer formula over its columns."""

    data: pd.DataFrame
    formula: str
    reml: bool
    weights: str | None
    covariates: tuple[str, ...]  # numeric columns the formula uses
    groups: tuple[str, ...]  # grouping columns the formula uses

    def fit(self, data: pd.DataFrame | None = None) -> mm.LinearMixedModel:
        """lmer on ``data`` (default: the generated data)."""
        data = self.data if data is None else data
        return _fitted(mm.lmer, self.formula, data, reml=self.reml, weights=self.weights)


def _labels(codes: np.ndarray, prefix: str, kind: str):
    """Grouping labels of ``codes`` as strings, integers or a categorical."""
    if kind == "int":
        return codes * 7 + 3
    labels = np.array([f"{prefix}{code:02d}" for code in codes])
    return pd.Categorical(labels) if kind == "category" else labels


@dataclass(frozen=True)
class Columns:
    """What a generated data set holds besides y and g."""

    covariates: tuple[str, ...]  # "x", and "z" (positive)
    factor: bool  # "f"
    second_group: str | None  # None, "crossed" or "nested" (h within g)
    x_kind: str  # "normal", "integer", "per group" (constant within groups) or "constant"


@st.composite
def data_sets(draw, degenerate: bool = True) -> tuple[pd.DataFrame, Columns]:
    """A data frame with response y, grouping factor g (and h), covariates x (and z), a factor f and
    weights w.  With ``degenerate``, now and then x is constant within groups or overall, or y is
    constant: designs that raise errors or whose optima are not determined."""
    n = draw(st.integers(20, 200))
    levels = draw(st.integers(2, 15)), draw(st.integers(2, 15))
    columns = Columns(
        draw(st.sampled_from([(), ("x",), ("x", "z")])),
        draw(st.booleans()),
        draw(st.sampled_from([None, "crossed", "nested"])),
        draw(st.sampled_from(["normal", "normal", "integer"] + ["per group", "constant"] * degenerate)),
    )
    label_kind = draw(st.sampled_from(["str", "int", "category"]))
    sd = {name: draw(st.sampled_from([0.0, 0.3, 1.0, 3.0])) for name in ("g", "h", "slope")}
    x_scale = draw(st.sampled_from([0.1, 1.0, 10.0]))
    constant = degenerate and draw(st.integers(0, 19)) == 13
    missing = draw(st.sampled_from([0.0, 0.0, 0.05, 0.2, 0.6]))
    weighted = draw(st.booleans())
    n_factor_levels = draw(st.integers(2, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))

    g = rng.integers(0, levels[0], n)
    data = {"g": _labels(g, "g", label_kind)}
    mean = rng.normal() * 5 + rng.normal(size=levels[0])[g] * sd["g"]
    if "x" in columns.covariates:
        shape = {
            "normal": rng.normal(size=n),
            "integer": np.round(rng.normal(size=n) * 2),
            "per group": rng.normal(size=levels[0])[g],
            "constant": np.ones(n),
        }[columns.x_kind]
        data["x"] = x = (shape + rng.normal() * 2) * x_scale
        mean = mean + rng.normal() * x + rng.normal(size=levels[0])[g] * sd["slope"] * x
    if "z" in columns.covariates:
        data["z"] = np.exp(rng.normal(size=n) + 1)
        mean = mean + rng.normal() * np.log(data["z"])
    if columns.second_group:
        h = rng.integers(0, levels[1], n)
        cell = g * levels[1] + h if columns.second_group == "nested" else h
        mean = mean + rng.normal(size=levels[0] * levels[1])[cell] * sd["h"]
        data["h"] = _labels(h, "h", label_kind)
    if columns.factor:
        f = rng.integers(0, n_factor_levels, n)
        data["f"] = np.array(["a", "b", "c", "d"])[f]
        mean = mean + rng.normal(size=4)[f]
    data["y"] = np.full(n, 2.5) if constant else mean + rng.normal(size=n)
    frame = pd.DataFrame(data)
    for column in ("y", *columns.covariates):
        frame.loc[rng.random(n) < missing / 2, column] = np.nan
    if weighted:
        frame["w"] = rng.uniform(0.5, 2.0, n)
    return frame, columns


@st.composite
def models(draw, degenerate: bool = True) -> Generated:
    """A generated data set with an lme4 formula over its columns, REML or ML, weighted or not."""
    data, columns = draw(data_sets(degenerate))
    has_x = "x" in columns.covariates
    fixed = ["1"]
    if has_x:
        fixed += ["x", "I(x^2)", "poly(x, 2)"]
    if columns.factor:
        fixed += ["0 + f"] + (["x + f", "x * f"] if has_x else [])
    if "z" in columns.covariates:
        fixed += ["log(z)", "x + log(z)"]
    random = ["(1 | g)"]
    if has_x:
        random += ["(x | g)", "(x || g)", "(0 + x | g)"]
    if columns.second_group:
        random += ["(1 | g/h)", "(1 | g) + (1 | h)"] + (["(x | g) + (1 | h)"] if has_x else [])
    fixed_part, random_part = draw(st.sampled_from(fixed)), draw(st.sampled_from(random))
    formula = f"y ~ {fixed_part} + {random_part}"
    covariates = tuple(name for name in columns.covariates if re.search(rf"\b{name}\b", formula))
    groups = tuple(name for name in ("g", "h") if name in random_part)
    weights = "w" if "w" in data else None
    return Generated(data, formula, draw(st.booleans()), weights, covariates, groups)


def _not_finite(values: dict[str, object]) -> list[str]:
    return [name for name, value in values.items() if not np.all(np.isfinite(np.asarray(value, dtype=float)))]


@_fuzz(300)
@given(models())
def test_lmer_fits_or_raises_a_documented_error(generated: Generated):
    """Every fit gives finite estimates or one of the documented errors, with a message."""
    try:
        model = generated.fit()
    except Exception as error:
        assert _error_allowed(error), (generated.formula, error)
        event(re.sub(r"\d+", "N", f"error: {error}")[:70])
        return
    event("singular" if model.is_singular else "fitted")
    estimates = {"fixef": model.fixef, "theta": model.theta, "sigma": model.sigma, "loglik": model.loglik}
    assert not _not_finite(estimates), generated.formula


@dataclass(frozen=True)
class Transform:
    """A change of the data that leaves the model the same: ``kind`` is "shuffle" (``amount``: the seed),
    "rename" (the grouping labels), "shift" (the response by ``amount`` residual SDs), "scale" (the
    response by ``amount``) or "covariate" (``covariate`` scaled by ``amount``)."""

    kind: str
    amount: float = 0.0
    covariate: str | None = None

    def apply(self, generated: Generated, sigma: float) -> tuple[pd.DataFrame, float, float]:
        """The transformed data, and the response's scale ``a`` and shift ``c`` (``y -> a y + c``)."""
        data = generated.data.copy()
        if self.kind == "shuffle":
            return data.sample(frac=1.0, random_state=int(self.amount)), 1.0, 0.0
        if self.kind == "rename":
            return renamed_groups(data, generated.groups), 1.0, 0.0
        if self.kind == "shift":
            data["y"] += self.amount * sigma
            return data, 1.0, self.amount * sigma
        if self.kind == "scale":
            data["y"] *= self.amount
            return data, self.amount, 0.0
        data[self.covariate] *= self.amount
        return data, 1.0, 0.0


def _powers_of_ten(low: float, high: float):
    return st.floats(low, high).map(lambda exponent: 10.0**exponent)


@st.composite
def transforms(draw, generated: Generated) -> Transform:
    """A transformation of point 3: rows shuffled, grouping labels renamed, the response shifted by up to
    1e7 residual SDs or scaled by 1e-6...1e6, a covariate (where the formula has one) by 1e-3...1e3."""
    kinds = ["shuffle", "rename", "shift", "scale"] + ["covariate"] * 2 * bool(generated.covariates)
    kind = draw(st.sampled_from(kinds))
    if kind == "shuffle":
        return Transform(kind, draw(st.integers(0, 2**31 - 1)))
    if kind == "shift":
        return Transform(kind, draw(st.sampled_from([-1.0, 1.0])) * draw(_powers_of_ten(0.0, 7.0)))
    if kind == "scale":
        return Transform(kind, draw(_powers_of_ten(-6.0, 6.0)))
    if kind == "covariate":
        return Transform(kind, draw(_powers_of_ten(-3.0, 3.0)), draw(st.sampled_from(generated.covariates)))
    return Transform(kind)


def _determination(model: mm.LinearMixedModel) -> tuple[np.ndarray, float]:
    """Which covariance parameters are on their bounds, and to within what the others are determined.

    In natural units a parameter within lme4's singular tolerance of its bound is on it.  The free ones
    are found from finite differences of step ``h`` (as the optimizer's Newton steps are), so they are
    determined to the error of those: the rounding part ``eps / (h lambda)``, with ``eps`` the spread
    about a parabola of the deviance at 13 points 1e-6 apart on a line through the optimum and
    ``lambda`` the Hessian's smallest eigenvalue (gradients are off by ``eps / h``, and a gradient
    error ``e`` moves the optimum by ``e / lambda``), and the truncation part, the change of the Newton
    step when ``h`` doubles.  Infinite where the Hessian is not positive definite.
    """
    objective = model.objective
    scale = objective.parameter_scale
    natural = model.theta / scale
    lower = objective.lower_bounds
    bound = np.isfinite(lower) & (natural - lower < model.control.singular_tol)
    free = ~bound
    if not free.any():
        return bound, 0.0

    def deviance(values: np.ndarray) -> float:
        point = natural.copy()
        point[free] = values
        return objective.unitless(point * scale)

    gradient, hessian = finite_differences(deviance, natural[free], DERIVATIVE_STEP)
    coarse, _ = finite_differences(deviance, natural[free], 2 * DERIVATIVE_STEP, with_hessian=False)
    direction = np.random.default_rng(0).normal(size=int(free.sum()))
    direction *= 1e-6 / np.linalg.norm(direction)
    steps = np.arange(-6, 7)
    line = np.array([deviance(natural[free] + step * direction) for step in steps])
    finite = np.all(np.isfinite(hessian)) and np.all(np.isfinite(line)) and np.all(np.isfinite(coarse))
    smallest = np.linalg.eigvalsh(hessian).min() if finite else 0.0
    if smallest <= 0:
        return bound, np.inf
    noise = np.std(line - np.polyval(np.polyfit(steps, line, 2), steps))
    truncation = np.max(np.abs(np.linalg.solve(hessian, gradient - coarse)))
    return bound, max(noise / (DERIVATIVE_STEP * smallest), truncation)


@_fuzz(250)
@given(st.data())
def test_lmer_invariance_on_generated_data(data):
    """Fits to shuffled, relabelled, shifted and rescaled data agree in what the data determine."""
    generated = data.draw(models(degenerate=False), label="model")
    try:
        original = generated.fit()
    except Exception as error:
        assert _error_allowed(error), (generated.formula, error)
        event("error")
        return
    if np.max(np.abs(original.theta / original.objective.parameter_scale), initial=0.0) > NO_OPTIMUM:
        event("no optimum")
        return
    transform = data.draw(transforms(generated), label="transform")
    if transform.kind == "shift" and not spans_intercept(original):
        event("no intercept to shift")
        return
    changed, a, c = transform.apply(generated, original.sigma)
    refit = generated.fit(changed)
    case = f"{generated.formula} (reml={generated.reml}) under {transform}"
    criterion = refit.deviance - deviance_shift(original, refit, a)
    assert_close(criterion, original.deviance, what=f"criterion of {case}")

    bound, error = _determination(original)
    refit_bound, refit_error = _determination(refit)
    if not np.array_equal(bound, refit_bound) or max(error, refit_error) > DETERMINED:
        event("criterion compared")
        return
    event("criterion and parameters compared")
    se = np.sqrt(np.diag(original.vcov))
    beta = fixef_back(original, refit, a, c)
    assert_close(beta, original.fixef, np.abs(original.fixef) + se, f"fixef of {case}")
    assert_close(refit.sigma / a, original.sigma, what=f"sigma of {case}")
    scale = original.objective.parameter_scale
    theta, refit_theta = original.theta / scale, theta_back(original, refit) / scale
    free = ~bound
    assert_close(refit_theta[free], theta[free], theta_scale(theta)[free], f"theta of {case}")
    assert refit.is_singular == original.is_singular, case


@st.composite
def nlme_models(draw) -> tuple:
    """lme with one random-effects formula, or gls with a correlation structure or variance function."""
    data, columns = draw(data_sets())
    fixed = "y ~ x" if "x" in columns.covariates else "y ~ 1"
    method = draw(st.sampled_from(["REML", "ML"]))
    if draw(st.sampled_from(["lme", "gls"])) == "lme":
        slope = ["~ x | g", "(x || g)", "~ 0 + x | g"] if "x" in columns.covariates else []
        random = ["~ 1 | g"] + slope
        random += ["~ 1 | g/h"] if columns.second_group == "nested" else []
        return mm.lme, (fixed, data), {"random": draw(st.sampled_from(random)), "method": method}
    structure = draw(st.sampled_from(["compsymm", "ar1", "varident"]))
    options = {
        "compsymm": {"correlation": mm.CorCompSymm("~ 1 | g")},
        "ar1": {"correlation": mm.CorAR1("~ 1 | g")},
        "varident": {"weights": mm.VarIdent("~ 1 | g")},
    }[structure]
    return mm.gls, (fixed, data), {**options, "method": method}


@_fuzz(60)
@given(nlme_models())
def test_lme_and_gls_fit_or_raise_a_documented_error(generated):
    """nlme's lme and gls, too, give finite estimates or a documented error."""
    fit, args, options = generated
    try:
        model = _fitted(fit, *args, **options)
    except Exception as error:
        assert _error_allowed(error), (fit.__name__, args[0], options, error)
        event(re.sub(r"\d+", "N", f"{fit.__name__} error: {error}")[:70])
        return
    event(f"{fit.__name__} fitted")
    estimates = {"fixef": model.fixef, "sigma": model.sigma, "loglik": model.loglik}
    assert not _not_finite(estimates), (fit.__name__, args[0], options)


# -- what larger runs found, on seeded data ---------------------------------------------------------------


def _caught(fit, *args, **kwargs) -> tuple[object, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = fit(*args, **kwargs)
    return model, caught


@pytest.mark.parametrize("reml", [True, False], ids=["REML", "ML"])
def test_response_fitted_exactly_by_random_effects_is_reported(reml):
    """y constant within groups: the likelihood grows without bound as sigma -> 0.  lme4 warns (a large
    eigenvalue, or a gradient of 0.8); the fit returned theta ~ 1e7, sigma ~ 5e-8 without a word."""
    codes = np.repeat(np.arange(4), 6)
    data = pd.DataFrame({"g": [f"g{k}" for k in codes], "y": np.array([1.0, 3.0, 2.0, 5.0])[codes]})
    try:
        _, caught = _caught(mm.lmer, "y ~ 1 + (1 | g)", data, reml=reml)
    except ValueError:
        return
    assert any(issubclass(w.category, mm.ConvergenceWarning) for w in caught)


def test_nearly_exact_crossed_fit_warns_only_as_lme4_does():
    """y fitted by h up to 1e-8: the finite differences at theta ~ 1.5e7 overflowed (numpy's
    RuntimeWarning from engine/optimize.py) and no ConvergenceWarning followed."""
    g = np.array([int(c) for c in "11111010111111000101"])
    h = np.array([int(c) for c in "00111101111101111000"])
    noise = 1e-8 * np.random.default_rng(29).normal(size=20)
    data = pd.DataFrame({"g": g.astype(str), "h": h.astype(str), "y": np.array([0.18, -2.29])[h] + noise})
    _, caught = _caught(mm.lmer, "y ~ 1 + (1 | g) + (1 | h)", data, reml=False)
    categories = {w.category for w in caught}
    assert RuntimeWarning not in categories and mm.ConvergenceWarning in categories


def _tiny_residual(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 6, 20)
    y = 3 + rng.normal(size=6)[codes] * 3 + rng.normal(size=20) * 1e-5
    return pd.DataFrame({"g": [f"g{k}" for k in codes], "y": y})


@pytest.mark.parametrize(("seed", "reml", "better"), [(8, True, 2.0e5), (12, False, 4.0e5)])
def test_tiny_residual_reaches_the_optimum(seed, reml, better):
    """Residual SD 1e-5 of the groups': BOBYQA stopped "roundoff limited" at theta ~ 3.5e4, 24-50 deviance
    units above the objective at theta = ``better`` (near lme4's optimum), and nothing warned; the check
    that would have restarted it differenced with a step lost in the rounding at such a theta."""
    model, caught = _caught(mm.lmer, "y ~ 1 + (1 | g)", _tiny_residual(seed), reml=reml)
    warned = any(issubclass(w.category, mm.ConvergenceWarning) for w in caught)
    assert warned or model.deviance <= model.objective(np.array([better])) + 1e-6


def _three_groups(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 3, 60)
    x = rng.normal(size=60) * 10 + 25
    y = 5 + rng.normal(size=3)[codes] * 3 + (1 + rng.normal(size=3)[codes]) * x * 0.5 + rng.normal(size=60)
    return pd.DataFrame({"g": [f"g{k}" for k in codes], "x": x, "y": y})


@pytest.mark.parametrize(
    ("seed", "reml", "lme4_theta"),
    [(36, False, [6.036748, -0.7515341, 0.4484122]), (134, True, [2.540706, -0.6759392, 0.3742567])],
)
def test_random_slope_of_uncentered_covariate_reaches_the_optimum(seed, reml, lme4_theta):
    """Three groups, x ~ 25 +- 10: from the moment start the fit ended on the boundary (theta_1 = 0),
    9-55 deviance units above lme4's optimum, flagged only as singular; lme4's start (T = I) reaches
    it.  At the optimum the check said "degenerate Hessian" (the differences' step, 1e-4 in natural
    units, was lost in the objective's rounding for parameters of 10-20 there); lme4 says nothing."""
    model, caught = _caught(mm.lmer, "y ~ 1 + (x | g)", _three_groups(seed), reml=reml)
    assert model.deviance <= model.objective(np.array(lme4_theta)) + 1e-6
    assert not [w for w in caught if issubclass(w.category, mm.ConvergenceWarning)]


def test_nested_fit_is_invariant_to_response_units():
    """A well-determined optimum (smallest Hessian eigenvalue 0.3 in natural units, deviance noise
    5e-14) where y and 1000 y agreed in the criterion but in theta only to 5e-5, the Newton steps
    stopping at a gradient of ~1e-4, before the optimizer's rework (found by the fuzzing)."""
    data = pd.read_csv(Path(__file__).parent / "fixtures" / "fuzz" / "nested_response_scale.csv")
    original = _fitted(mm.lmer, "y ~ 1 + (1 | g/h)", data)
    scaled = _fitted(mm.lmer, "y ~ 1 + (1 | g/h)", data.assign(y=data["y"] * 1000))
    assert_close(scaled.theta, original.theta, theta_scale(original.theta), "theta")


def test_poly_of_too_few_distinct_values_is_an_error():
    """R: "'degree' must be less than number of unique points".  formulaic's poly divided by zero
    (numpy RuntimeWarnings) and the error was about NaN columns of the model matrix."""
    codes = np.arange(30) % 3
    data = pd.DataFrame({"g": [f"g{k}" for k in codes], "x": np.arange(30) % 2, "y": np.sin(np.arange(30))})
    with pytest.raises(ValueError, match="unique"):
        _fitted(mm.lmer, "y ~ poly(x, 2) + (1 | g)", data)


@pytest.mark.parametrize(("formula", "reml"), [("y ~ x + f + (x | g)", True), ("y ~ 1 + (x | g)", False)])
def test_random_slope_of_constant_covariate_fits_or_raises_a_documented_error(formula, reml):
    """x constant: the columns of (x | g) are collinear, the deviance's Hessian is singular and the
    Newton step's solve raised numpy's LinAlgError ("Singular matrix")."""
    rng = np.random.default_rng(25)
    codes = rng.integers(0, 3, 20)
    factor = np.array(["a", "b"])[rng.integers(0, 2, 20)]
    y = 1 + rng.normal(size=3)[codes] + rng.normal(size=20) * 0.5
    data = pd.DataFrame({"g": [f"g{k}" for k in codes], "x": np.full(20, -0.011336), "f": factor, "y": y})
    try:
        model = _fitted(mm.lmer, formula, data, reml=reml)
    except Exception as error:
        assert _error_allowed(error), error
        return
    assert not _not_finite({"fixef": model.fixef, "theta": model.theta, "loglik": model.loglik})


def test_gls_variance_of_single_observation_strata_is_reported():
    """VarIdent with three one-row strata (ML): a stratum's variance goes to 0 (ratio 5e-20) and the
    likelihood grows without bound; numpy's RuntimeWarnings (log of 0) escaped from nlme/models.py and
    no ConvergenceWarning or error followed.  nlme stops with "false convergence (8)"; we raise."""
    codes = np.repeat(np.arange(9), [2, 2, 4, 2, 2, 1, 1, 1, 5])
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"g": [f"g{k}" for k in codes], "x": rng.normal(size=20), "y": rng.normal(size=20)})
    try:
        _, caught = _caught(mm.gls, "y ~ x", data, weights=mm.VarIdent("~ 1 | g"), method="ML")
    except ValueError:
        return
    categories = {w.category for w in caught}
    assert RuntimeWarning not in categories and mm.ConvergenceWarning in categories
