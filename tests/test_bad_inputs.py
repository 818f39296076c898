"""Bad inputs give errors (or lme4's warnings) whose message names the problem."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

FormulaError = mm.FormulaError
SLEEP = "Reaction ~ Days + (1 | Subject)"


def sleep(**columns) -> Callable[[], pd.DataFrame]:
    """A builder of sleepstudy with extra columns (values, or functions of the frame)."""

    def build() -> pd.DataFrame:
        data = mm.datasets.load("sleepstudy")
        for name, value in columns.items():
            data[name] = value(data) if callable(value) else value
        return data

    return build


def days_with(value) -> Callable[[pd.DataFrame], np.ndarray]:
    """Days as floats, with ``value`` on day 3."""
    return lambda d: np.where(d["Days"] == 3, value, d["Days"]).astype(float)


def tiny() -> pd.DataFrame:
    return pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0, 5.0, 7.0], "x": [0.0, 1.0] * 3, "g": list("aabbcc")})


# id, data builder, formula, keyword arguments of lmer, exception or warning type, regex for the message
CASES = [
    # -- columns the data does not have
    ("unknown-fixed-column", sleep(), "Reaction ~ Dayz + (1 | Subject)", {}, ValueError,
     r"unknown column 'Dayz' \(in the fixed effects\); data has columns \['Reaction', 'Days', 'Subject'\]"),
    ("unknown-random-column", sleep(), "Reaction ~ Days + (Dayz | Subject)", {}, ValueError,
     r"unknown column 'Dayz' \(in the random term \(Dayz \| Subject\)\)"),
    ("unknown-grouping-factor", sleep(), "Reaction ~ Days + (1 | Subj)", {}, ValueError,
     r"unknown column 'Subj' \(in the grouping factor of \(1 \| Subj\)\)"),
    ("unknown-response", sleep(), "log(Reactio) ~ Days + (1 | Subject)", {}, ValueError,
     r"unknown column 'Reactio' \(in the response\)"),
    ("unknown-nested-factor", sleep(), "Reaction ~ Days + (1 | Subject/Batch)", {}, ValueError,
     r"unknown column 'Batch' \(in the grouping factor of \(1 \| Batch:Subject\)\)"),
    ("unknown-weights-column", sleep(), SLEEP, {"weights": "w"}, ValueError,
     r"unknown column 'w' \(in the weights\)"),
    ("unknown-offset-column", sleep(), "Reaction ~ Days + offset(log(base)) + (1 | Subject)", {}, ValueError,
     r"unknown column 'base' \(in the offset\)"),
    ("unknown-function", sleep(), "Reaction ~ foo(Days) + (1 | Subject)", {}, FormulaError,
     r"unknown function foo\(\) in the fixed effects"),
    ("duplicated-column", lambda: pd.concat([sleep()(), sleep()()[["Days"]]], axis=1), SLEEP, {}, ValueError,
     r"more than one column named 'Days'"),
    # -- columns of the wrong type
    ("string-response", sleep(r=lambda d: d["Reaction"].astype(str)), "r ~ Days + (1 | Subject)", {},
     TypeError, r"response 'r' must be numeric"),
    ("categorical-response", sleep(r=lambda d: pd.Categorical(d["Reaction"].round())),
     "r ~ Days + (1 | Subject)", {}, TypeError,
     r"response 'r' must be numeric, but the column has type category"),
    ("boolean-response", sleep(r=lambda d: d["Reaction"] > 300), "r ~ Days + (1 | Subject)", {}, TypeError,
     r"response 'r' must be numeric, but the column has type bool"),
    ("datetime-predictor", sleep(t=lambda d: pd.Timestamp("2020-01-01") + pd.to_timedelta(d["Days"], "D")),
     "Reaction ~ t + (1 | Subject)", {}, TypeError,
     r"column 't' \(in the fixed effects\) has type datetime64"),
    ("function-of-a-factor", sleep(), "Reaction ~ log(Subject) + (1 | Subject)", {}, FormulaError,
     r"cannot evaluate 'log\(Subject\)'.*category"),
    ("string-weights", sleep(), SLEEP, {"weights": ["heavy"] * 180}, TypeError,
     r"weights must be numeric, not \[.heavy.,"),
    ("string-weights-column", sleep(w="heavy"), SLEEP, {"weights": "w"}, TypeError,
     r"weights 'w' must be numeric, but the column has type"),
    # -- missing and non-finite values
    ("all-missing-column", sleep(z=np.nan), "Reaction ~ Days + z + (1 | Subject)", {}, ValueError,
     r"column 'z' \(used in the fixed effects\) has only missing values"),
    ("infinite-predictor", sleep(z=days_with(np.inf)), "Reaction ~ z + (1 | Subject)", {}, ValueError,
     r"fixed-effects model matrix has infinite or NaN values in column 'z' \(18 of 180 rows\)"),
    ("infinite-random-slope", sleep(z=days_with(-np.inf)), "Reaction ~ Days + (z | Subject)", {}, ValueError,
     r"model matrix of \(z \| Subject\) has infinite or NaN values in column 'z'"),
    ("infinite-response", sleep(r=lambda d: np.where(d["Days"] == 3, np.inf, d["Reaction"])),
     "r ~ Days + (1 | Subject)", {}, ValueError,
     r"response 'r' has infinite or NaN values \(18 of 180 rows\)"),
    ("infinite-offset", sleep(o=days_with(np.inf)), "Reaction ~ Days + offset(o) + (1 | Subject)", {},
     ValueError, r"offset has infinite or NaN values"),
    # -- weights and offsets
    ("nan-only-weights", sleep(), SLEEP, {"weights": np.full(180, np.nan)}, ValueError,
     r"weights has only missing values"),
    ("nan-only-weights-column", sleep(w=np.nan), SLEEP, {"weights": "w"}, ValueError,
     r"column 'w' \(used in the weights\) has only missing values"),
    ("negative-weights", sleep(w=lambda d: 1.0 - 2.0 * (d["Days"] == 0)), SLEEP, {"weights": "w"}, ValueError,
     r"weights must not be negative \(18 are\)"),
    ("zero-weights", sleep(w=lambda d: (d["Days"] > 0).astype(float)), SLEEP, {"weights": "w"}, ValueError,
     r"weights must be positive: 18 are zero"),
    ("weights-wrong-length", sleep(), SLEEP, {"weights": np.ones(10)}, ValueError,
     r"weights has length 10, data has 180 rows"),
    ("offset-wrong-length", sleep(), SLEEP, {"offset": np.ones(179)}, ValueError,
     r"offset has length 179, data has 180 rows"),
    # -- grouping factors lme4 refuses
    ("one-level-grouping", sleep(g="a"), "Reaction ~ Days + (1 | g)", {}, ValueError,
     r"grouping factor 'g' must have more than 1 sampled level"),
    ("as-many-levels-as-rows", sleep(g=lambda d: np.arange(len(d))), "Reaction ~ Days + (1 | g)", {},
     ValueError,
     r"number of levels of grouping factor 'g' \(180\) must be less than the number of observations \(180\)"),
    ("more-random-effects-than-rows", tiny, "y ~ x + (x | g)", {}, ValueError,
     r"number of observations \(=6\) <= number of random effects \(=6\) for term \(x \| g\)"),
    # -- the data argument
    ("empty-data-frame", lambda: sleep()().iloc[:0], SLEEP, {}, ValueError,
     r"data has no rows"),
    ("no-columns", lambda: pd.DataFrame(index=range(5)), SLEEP, {}, ValueError,
     r"data has no columns"),
    ("data-is-a-list", lambda: [[1.0, 2.0], [3.0, 4.0]], SLEEP, {}, TypeError,
     r"data must be a pandas, polars or pyarrow table, got list"),
    ("ragged-dict", lambda: {"y": [1.0, 2.0, 3.0], "g": ["a", "b"]}, "y ~ 1 + (1 | g)", {}, ValueError,
     r"cannot make a table of the data: All arrays must be of the same length"),
    # -- formulas
    ("formula-not-a-string", sleep(), 42, {}, TypeError,
     r"formula must be a string .*, got int"),
    ("no-tilde", sleep(), "Reaction + Days + (1 | Subject)", {}, FormulaError,
     r"has no '~'"),
    ("two-tildes", sleep(), "Reaction ~ Days ~ (1 | Subject)", {}, FormulaError,
     r"has more than one '~'"),
    ("no-response", sleep(), "~ Days + (1 | Subject)", {}, FormulaError,
     r"has no response left of '~'"),
    ("unclosed-parenthesis", sleep(), "Reaction ~ Days + (1 | Subject", {}, FormulaError,
     r"unbalanced parentheses in 'Reaction ~ Days \+ \(1 \| Subject'"),
    ("unopened-parenthesis", sleep(), "Reaction ~ Days + 1 | Subject)", {}, FormulaError,
     r"unbalanced parentheses"),
    ("nothing-after-bar", sleep(), "Reaction ~ Days + (1 | )", {}, FormulaError,
     r"\(1 \| \) has no grouping factor after the bar"),
    ("nothing-before-bar", sleep(), "Reaction ~ Days + ( | Subject)", {}, FormulaError,
     r"has nothing left of the bar \(use 1 for an intercept\)"),
    ("two-bars", sleep(), "Reaction ~ Days + (1 | Subject | Days)", {}, FormulaError,
     r"must have the form \(expr \| group\)"),
    ("no-random-term", sleep(), "Reaction ~ Days", {}, FormulaError,
     r"no random-effects terms in 'Reaction ~ Days'"),
    ("bar-outside-parentheses", sleep(), "Reaction ~ Days + 1 | Subject", {}, FormulaError,
     r"random-effects term '1 \| Subject' must be enclosed in parentheses"),
    ("subtracted-random-term", sleep(), "Reaction ~ Days - (1 | Subject)", {}, FormulaError,
     r"cannot subtract a random-effects term"),
    ("uncorrelated-without-effects", sleep(), "Reaction ~ Days + (0 || Subject)", {}, FormulaError,
     r"\(0 \|\| Subject\) has no effects"),
    ("expression-as-grouping", sleep(), "Reaction ~ Days + (1 | log(Subject))", {}, FormulaError,
     r"grouping factor 'log\(Subject\)' in \(1 \| log\(Subject\)\) must be a column name"),
    ("expression-in-nesting", sleep(), "Reaction ~ Days + (1 | Subject/factor(Days))", {}, FormulaError,
     r"grouping factor 'factor\(Days\)' .* must be a column name"),
    ("dot-for-all-columns", sleep(), "Reaction ~ . + (1 | Subject)", {}, FormulaError,
     r"'\.' \(all other columns\) is not supported"),
    ("syntax-error", sleep(), "Reaction ~ Days + * + (1 | Subject)", {}, FormulaError,
     r"cannot parse 'Days \+ \*': Operator `\+\*` is incorrectly used\.$"),
    # -- lme4 only warns (or messages) about these
    ("predictors-on-different-scales", sleep(big=lambda d: d["Days"] * 1e5), "Reaction ~ big + (1 | Subject)",
     {}, UserWarning, r"^Some predictor variables are on very different scales: consider rescaling$"),
    ("tiny-predictor-scale", sleep(small=lambda d: d["Days"] * 1e-5), "Reaction ~ small + (1 | Subject)",
     {}, UserWarning, r"very different scales"),
    ("rank-deficient-fixed-effects", sleep(d2=lambda d: 2 * d["Days"]), "Reaction ~ Days + d2 + (1|Subject)",
     {}, mm.ModelMessage, r"^fixed-effect model matrix is rank deficient so dropping 1 column / coefficient"),
]  # fmt: skip


@pytest.mark.parametrize(
    "build, formula, kwargs, expected, pattern", [pytest.param(*case[1:], id=case[0]) for case in CASES]
)
def test_bad_input(build, formula, kwargs, expected, pattern):
    data = build()
    if issubclass(expected, Warning):
        with pytest.warns(expected, match=pattern) as record:
            model = mm.lmer(formula, data, **kwargs)
        assert np.all(np.isfinite(model.fixef))
        message = next(str(w.message) for w in record if issubclass(w.category, expected))
        assert message in model.messages  # shown by the summary, as lme4's "fit warnings"
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's, e.g. from log(0)
        with pytest.raises(expected, match=pattern) as excinfo:
            mm.lmer(formula, data, **kwargs)
    assert excinfo.type is expected
    assert "\x1b" not in str(excinfo.value)  # no terminal colour codes from formulaic


def test_there_are_enough_cases():
    assert len(CASES) >= 20
    assert len({case[0] for case in CASES}) == len(CASES)


def test_the_same_data_fits_without_the_problem():
    """The baseline the cases perturb is a valid model."""
    model = mm.lmer(SLEEP, mm.datasets.load("sleepstudy"))
    assert model.nobs == 180
