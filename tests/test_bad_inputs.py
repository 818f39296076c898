"""Bad inputs give errors (or lme4's warnings) whose message names the problem."""

from __future__ import annotations

import os
import re
import subprocess
import sys
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
    ("expression-in-nesting", sleep(), "Reaction ~ Days + (1 | Subject/log(Days))", {}, FormulaError,
     r"grouping factor 'log\(Days\)' .* must be a column name"),
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


# -- the rest of the public API ---------------------------------------------------------------------------
class Fits:
    """Fitted models the cases call methods of (made once per module)."""

    def __init__(self):
        self.sleep = mm.datasets.load("sleepstudy")
        self.orthodont = mm.datasets.load("Orthodont")
        self.sires = mm.datasets.load("sires")
        self.reml = mm.lmer("Reaction ~ Days + (Days | Subject)", self.sleep)
        self.intercepts = mm.lmer(SLEEP, self.sleep)
        self.ml = self.intercepts.refit(reml=False)
        self.gls = mm.gls("distance ~ age", self.orthodont)
        self.lme = mm.lme("distance ~ age", self.orthodont, random="~ 1 | Subject")
        self.aov = mm.aov("bw ~ sire", self.sires, random=["sire"])


@pytest.fixture(scope="module")
def fits() -> Fits:
    return Fits()


def lmer_sleep(f: Fits, **kwargs):
    return mm.lmer(SLEEP, f.sleep, **kwargs)


# id, call of the fits, exception type, regex for the message (it names the argument or column)
CALLS = [
    # -- flags are booleans: a string's truth value is not read
    ("lmer-reml-string", lambda f: lmer_sleep(f, reml="no"),
     TypeError, r"^reml must be True or False, not 'no'$"),
    ("lmer-reml-int", lambda f: lmer_sleep(f, reml=1), TypeError, r"^reml must be True or False, not 1$"),
    ("refit-reml-string", lambda f: f.reml.refit(reml="ML"), TypeError, r"reml must be True, False or None"),
    ("predict-allow-new-levels", lambda f: f.reml.predict(allow_new_levels="no"), TypeError,
     r"allow_new_levels must be True or False"),
    ("confint-old-names", lambda f: f.reml.confint("wald", old_names="no"), TypeError, r"old_names must be"),
    ("contrast-joint", lambda f: f.reml.contrast([0, 1], joint="no"),
     TypeError, r"joint must be True or False"),
    ("ranova-reduce-terms", lambda f: f.reml.ranova(reduce_terms="no"), TypeError, r"reduce_terms must be"),
    ("anova-refit", lambda f: mm.anova(f.reml, f.intercepts, refit="no"), TypeError, r"refit must be"),
    ("bootstrap-progress", lambda f: f.reml.bootstrap(2, progress="yes"), TypeError,
     r"progress must be True, False or None"),
    ("corstruct-fixed", lambda f: mm.CorAR1(fixed="yes"), TypeError, r"fixed must be True or False"),
    # -- settings objects
    ("lmer-control-string", lambda f: lmer_sleep(f, control="fast"), TypeError,
     r"control must be an OptimizerControl, not str"),
    ("gls-control-dict", lambda f: mm.gls("distance ~ age", f.orthodont, control={}), TypeError,
     r"control must be an OptimizerControl, not dict"),
    ("control-negative-tolerance", lambda f: mm.OptimizerControl(ftol_rel=-1), ValueError,
     r"ftol_rel must be a non-negative finite number, not -1"),
    ("control-nan-tolerance", lambda f: mm.OptimizerControl(gradient_tol=np.nan), ValueError,
     r"gradient_tol must be a number, not NaN"),
    ("control-zero-evaluations", lambda f: mm.OptimizerControl(max_evaluations=0), ValueError,
     r"max_evaluations must be an integer >= 1, not 0"),
    # -- counts are integers >= 1
    ("simulate-negative-nsim", lambda f: f.reml.simulate(nsim=-1),
     ValueError, r"nsim must be an integer >= 1, not -1"),
    ("simulate-zero-nsim", lambda f: f.reml.simulate(nsim=0),
     ValueError, r"nsim must be an integer >= 1, not 0"),
    ("simulate-float-nsim", lambda f: f.reml.simulate(nsim=2.5),
     TypeError, r"nsim must be an integer, not 2.5"),
    ("simulate-bool-nsim", lambda f: f.reml.simulate(nsim=True),
     TypeError, r"nsim must be an integer, not True"),
    ("simulate-string-seed", lambda f: f.reml.simulate(seed="a"),
     TypeError, r"seed must be an integer, not 'a'"),
    ("simulate-negative-seed", lambda f: f.reml.simulate(seed=-1),
     ValueError, r"seed must be an integer >= 0"),
    ("bootstrap-string-nsim", lambda f: f.reml.bootstrap("many"), TypeError, r"nsim must be an integer"),
    ("bootstrap-zero-jobs", lambda f: f.reml.bootstrap(2, n_jobs=0),
     ValueError, r"n_jobs .* must be an integer >= 1"),
    ("bootstrap-statistic", lambda f: f.reml.bootstrap(2, statistic=3), TypeError,
     r"statistic must be a function of the refitted model, not 3"),
    ("bootstrap-statistic-value", lambda f: f.reml.bootstrap(2, statistic=lambda m: "a", n_jobs=1), TypeError,
     r"the statistic's value must be numeric, not 'a'"),
    ("confint-boot-float-nsim", lambda f: f.reml.confint("boot", nsim=2.5),
     TypeError, r"nsim must be an integer"),
    ("profile-maxpts", lambda f: f.intercepts.profile(maxpts=0),
     ValueError, r"maxpts must be an integer >= 1"),
    ("gls-max-iter", lambda f: mm.gls("distance ~ age", f.orthodont, max_iter=-1), ValueError,
     r"max_iter must be an integer >= 1, not -1"),
    ("corarma-order", lambda f: mm.CorARMA(p=1.5), TypeError, r"p must be an integer, not 1.5"),
    ("plot-label-extremes", lambda f: f.reml.plot.residuals(label_extremes=-1), ValueError,
     r"label_extremes must be an integer >= 0"),
    # -- levels and other numbers in a range
    ("confint-level-above-1", lambda f: f.reml.confint("wald", level=1.5), ValueError,
     r"level must be between 0 and 1, not 1.5"),
    ("confint-level-zero", lambda f: f.reml.confint("wald", level=0),
     ValueError, r"level must be between 0 and 1"),
    ("confint-level-nan", lambda f: f.reml.confint("wald", level=np.nan),
     ValueError, r"level must be a number, not NaN"),
    ("confint-level-string", lambda f: f.reml.confint("wald", level="95%"), TypeError,
     r"level must be a number, not '95%'"),
    ("contrast-level", lambda f: f.reml.contrast([0, 1], joint=False, level=2),
     ValueError, r"level must be between"),
    ("estimate-level", lambda f: f.reml.estimate([0, 1], level=-0.5), ValueError, r"level must be between"),
    ("covparms-level", lambda f: f.reml.covparms(level=None), TypeError, r"level must be a number, not None"),
    ("profile-alphamax", lambda f: f.intercepts.profile(alphamax=2),
     ValueError, r"alphamax must be between 0 and 1"),
    ("profile-delta", lambda f: f.intercepts.profile(delta=-1),
     ValueError, r"delta must be a positive finite number"),
    ("lme-intervals-level", lambda f: f.lme.intervals(level=2), ValueError, r"level must be between 0 and 1"),
    ("gls-intervals-level", lambda f: f.gls.intervals(level="a"), TypeError, r"level must be a number"),
    ("gls-tolerance", lambda f: mm.gls("distance ~ age", f.orthodont, tolerance=0), ValueError,
     r"tolerance must be a positive finite number"),
    ("aov-alpha", lambda f: mm.aov("bw ~ sire", f.sires, alpha="0.05"), TypeError, r"alpha must be a number"),
    ("aov-one-way-alpha", lambda f: f.aov.one_way(alpha=3),
     ValueError, r"alpha must be between 0 and 1, not 3"),
    ("plot-caterpillar-level", lambda f: f.reml.plot.caterpillar(level=95),
     ValueError, r"level must be between"),
    ("corar1-value", lambda f: mm.CorAR1(value="0.3"), TypeError, r"value must be a number, not '0.3'"),
    ("corar1-value-range", lambda f: mm.CorAR1(value=1),
     ValueError, r"value \(the AR\(1\) correlation\) must be"),
    ("corarma-value-length", lambda f: mm.CorARMA(value=[0.1, 0.2], p=1), ValueError,
     r"value must have p \+ q = 1 numbers"),
    ("corexp-value-nan", lambda f: mm.CorExp(value=np.nan), ValueError, r"value must be finite numbers"),
    ("varpower-value-inf", lambda f: mm.VarPower(value=np.inf), ValueError, r"value must be a finite number"),
    ("varconstpower-fixed", lambda f: mm.VarConstPower(fixed=0.5), TypeError, r"fixed must be a dict"),
    ("plot-dpi", lambda f: f.reml.plot.save_all("unused", dpi=2), ValueError, r"dpi must be at least 10"),
    # -- names and choices that do not exist
    ("confint-method", lambda f: f.reml.confint("bogus"),
     ValueError, r"method must be one of 'wald', 'profile'"),
    ("confint-parm-unknown", lambda f: f.reml.confint("wald", parm="sigma"), ValueError,
     r"unknown parameter 'sigma' in parm; the parameters are \.sig01"),
    ("confint-parm-position", lambda f: f.reml.confint("wald", parm=17), ValueError,
     r"parm position 17 is out of range: there are 6 parameters"),
    ("confint-parm-float", lambda f: f.reml.confint("wald", parm=1.5),
     TypeError, r"parm must be a parameter name"),
    ("confint-parm-empty", lambda f: f.reml.confint("wald", parm=[]), ValueError, r"parm is empty"),
    ("confint-parm-item", lambda f: f.reml.confint("wald", parm=[0, None]), TypeError,
     r"parm must hold parameter names or positions, not None"),
    ("coef-table-ddf", lambda f: f.reml.coef_table(ddf="bogus"),
     ValueError, r"ddf must be one of 'satterthwaite'"),
    ("anova-ddf", lambda f: f.reml.anova(ddf=None), ValueError, r"ddf must be one of .*, not None"),
    ("anova-type", lambda f: f.reml.anova(type=4), ValueError, r"type must be one of 1, 2, 3, not 4"),
    ("kenward-roger-on-ml", lambda f: f.ml.coef_table(ddf="kenward-roger"),
     ValueError, r"only available for REML"),
    ("aov-ss-type", lambda f: mm.aov("bw ~ sire", f.sires, ss_type=2),
     ValueError, r"ss_type must be one of 1, 3"),
    ("aov-anova-ss-type", lambda f: f.aov.anova(ss_type=[1]),
     ValueError, r"ss_type must be one of 1, 3, not \[1\]"),
    ("gls-weights-unknown-column", lambda f: mm.gls("distance ~ age", f.orthodont, weights="~ height"),
     ValueError, r"unknown column 'height' in weights \(VarFixed\('~ height'\)\); data has columns"),
    ("aov-negative", lambda f: f.aov.summary(negative="drop"), ValueError, r"negative must be one of 'keep'"),
    ("aov-random-not-names", lambda f: mm.aov("bw ~ sire", f.sires, random=3), TypeError,
     r"random must be a name or a list of names, not 3"),
    ("gls-method", lambda f: mm.gls("distance ~ age", f.orthodont, method="reml"), ValueError,
     r"method must be one of 'REML', 'ML', not 'reml'"),
    ("lme-random-missing", lambda f: mm.lme("distance ~ age", f.orthodont, random=None), TypeError,
     r"random must be a formula such as '~ age \| Subject', not NoneType"),
    ("lme-resid-type", lambda f: f.lme.resid(type="studentized"),
     ValueError, r"type must be one of 'response'"),
    ("lme-predict-level", lambda f: f.lme.predict(level=2),
     ValueError, r"level must be between 0 and 1 \(grouping"),
    ("lme-predict-level-type", lambda f: f.lme.predict(level="Subject"),
     TypeError, r"level must be an integer"),
    ("influence-group", lambda f: f.reml.influence(None),
     TypeError, r"group must be the name of a grouping factor"),
    ("varident-unknown-stratum",
     lambda f: mm.gls("distance ~ age", f.orthodont, weights=mm.VarIdent("~ 1 | Sex", value={"Other": 2})),
     ValueError, r"value names in VarIdent must be strata \['Male', 'Female'\]"),
    ("varfixed-factor-covariate", lambda f: mm.gls("distance ~ age", f.orthodont, weights="~ Sex"), TypeError,
     r"covariate 'Sex' must be numeric, but the column has type category"),
    ("dataset-name", lambda f: mm.datasets.load(3), TypeError, r"name must be a dataset name"),
    # -- predictions and new data
    ("predict-missing-column", lambda f: f.reml.predict(f.sleep.drop(columns="Days")), ValueError,
     r"unknown column 'Days' \(in the fixed effects\); newdata has columns \['Reaction', 'Subject'\]"),
    ("predict-missing-group", lambda f: f.reml.predict(f.sleep.drop(columns="Subject")), ValueError,
     r"unknown column 'Subject' \(in the grouping factor of \(Days \| Subject\)\); newdata has columns"),
    ("predict-string-column", lambda f: f.reml.predict(f.sleep.assign(Days="three")), TypeError,
     r"column 'Days' of newdata has type .*, but the model was fitted to numbers"),
    ("predict-re-form-type", lambda f: f.reml.predict(re_form=0),
     TypeError, r"re_form must be None, '~0' or a formula"),
    ("predict-re-form-no-terms", lambda f: f.reml.predict(re_form="~ Days"), mm.FormulaError,
     r"re_form '~ Days' has no random-effects terms"),
    ("gls-predict-missing-column", lambda f: f.gls.predict(f.orthodont.drop(columns="age")), ValueError,
     r"unknown column 'age' \(in the fixed effects\); newdata has columns"),
    ("lme-predict-missing-group", lambda f: f.lme.predict(f.orthodont.drop(columns="Subject")), ValueError,
     r"unknown column 'Subject' \(in the grouping factor of \(1 \| Subject\)\)"),
    # -- contrasts and estimates
    ("contrast-string", lambda f: f.reml.contrast("Days"),
     TypeError, r"contrasts must be numbers or a mapping"),
    ("contrast-string-coefficient", lambda f: f.reml.contrast({"Days": "one"}), TypeError,
     r"the coefficient of 'Days' must be numeric, not 'one'"),
    ("contrast-zero", lambda f: f.reml.contrast([0, 0]), ValueError, r"contrasts are all zero"),
    ("contrast-zero-row", lambda f: f.reml.contrast([[0, 1], [0, 0]], joint=False), ValueError,
     r"contrast row 1 is all zeros"),
    ("estimate-label", lambda f: f.reml.estimate([0, 1], label=3),
     TypeError, r"label must be a string or a list"),
    # -- model comparison
    ("anova-names-string", lambda f: mm.anova(f.reml, f.intercepts, names="ab"), TypeError,
     r"names must be a list of row names"),
    ("nlme-anova-lmer", lambda f: f.lme.anova(f.reml), TypeError,
     r"anova\(\)'s models must be gls or lme fits \(mm.anova compares lmer fits\), not LinearMixedModel"),
    # -- weights and offsets: Series by index, arrays by position
    ("weights-series-other-index",
     lambda f: lmer_sleep(f, weights=pd.Series(np.ones(180), index=range(1, 181))),
     ValueError, r"weights is a Series whose index lacks 1 of the data's row labels \(0\)"),
    ("weights-series-repeated-labels",
     lambda f: lmer_sleep(f, weights=pd.Series(np.ones(180), index=[0] * 180)),
     ValueError, r"weights is a Series whose index differs from the data's and has repeated labels"),
    ("offset-matrix", lambda f: lmer_sleep(f, offset=np.zeros((180, 1))), ValueError,
     r"offset must be a column name or one number per row, not an array of shape \(180, 1\)"),
    ("weights-scalar", lambda f: lmer_sleep(f, weights=2.0), ValueError,
     r"weights must be a column name or one number per row, not a single number"),
    # -- known covariances and files
    ("known-covariance-nan", lambda f: mm.gls_known_covariance("distance ~ age", f.orthodont, "Subject",
     np.full((4, 4), np.nan)), ValueError, r"covariance block of group 'M16' has infinite or NaN values"),
    ("known-covariance-groups", lambda f: mm.gls_known_covariance("distance ~ age", f.orthodont, ["Subject"],
     np.eye(4)), TypeError, r"groups must be a column name, not list"),
    ("plots-into-a-file", lambda f: f.reml.plot.save_all(__file__), ValueError,
     r"cannot write the plots into .*: it is a file, not a directory"),
]  # fmt: skip


@pytest.mark.parametrize("call, expected, pattern", [pytest.param(*case[1:], id=case[0]) for case in CALLS])
def test_bad_argument(fits, call, expected, pattern):
    with pytest.raises(expected, match=pattern) as excinfo:
        call(fits)
    assert excinfo.type is expected


def test_every_error_class_is_a_value_error():
    """The documented classes are ValueErrors: ``except ValueError`` catches every bad input."""
    assert issubclass(mm.FormulaError, ValueError)
    assert issubclass(mm.FitError, ValueError)
    assert {"FitError", "FormulaError", "ConvergenceWarning", "ModelMessage"} <= set(mm.__all__)


def test_weights_series_are_matched_by_index():
    """A Series is aligned to the data's rows by its index, as pandas aligns columns; arrays by position."""
    data = mm.datasets.load("sleepstudy")
    weights = np.linspace(0.5, 2.0, len(data))
    by_position = mm.lmer(SLEEP, data, weights=weights)
    shuffled = pd.Series(weights, index=data.index)[::-1]
    by_index = mm.lmer(SLEEP, data, weights=shuffled)
    np.testing.assert_allclose(by_index.fixef, by_position.fixef, rtol=1e-10)
    subset = data[data["Days"] > 0]  # a column of the whole table serves a subset of its rows
    on_subset = mm.lmer(SLEEP, subset, weights=pd.Series(weights, index=data.index))
    by_position = mm.lmer(SLEEP, subset, weights=weights[data["Days"] > 0])
    np.testing.assert_allclose(on_subset.fixef, by_position.fixef, rtol=1e-10)
    offset = pd.Series(data["Days"].to_numpy(float), index=data.index)[::-1]
    shifted = mm.lmer(SLEEP, data, offset=offset)
    assert shifted.fixef["Days"] == pytest.approx(mm.lmer(SLEEP, data).fixef["Days"] - 1.0)


# -- the command line: one line on stderr, exit code 2, no traceback
def bad_csv(directory) -> str:
    path = directory / "bad.csv"
    path.write_text('a,b\n1,2\n"3,4\n')
    return str(path)


def empty_csv(directory) -> str:
    path = directory / "empty.csv"
    path.write_text("")
    return str(path)


def directory_named_csv(directory) -> str:
    path = directory / "table.csv"
    path.mkdir()
    return str(path)


def good_csv(directory) -> str:
    path = directory / "good.csv"
    mm.datasets.load("sleepstudy").to_csv(path, index=False)
    return str(path)


CLI_CASES = [
    ("missing-file", lambda d: ["--data", str(d / "absent.csv")], r"no such file: '.*absent\.csv'$"),
    ("directory", lambda d: ["--data", str(d)], r"cannot read '.*': it is a directory"),
    ("directory-named-csv", lambda d: ["--data", directory_named_csv(d)], r"it is a directory, not a \.csv"),
    ("malformed-csv", lambda d: ["--data", bad_csv(d)], r"cannot read '.*bad\.csv': Error tokenizing data"),
    ("empty-csv", lambda d: ["--data", empty_csv(d)], r"cannot read '.*empty\.csv': No columns to parse"),
    ("unknown-dataset", lambda d: ["--data", "sleepstudies"], r"'sleepstudies' is neither a file nor a"),
    ("unknown-column", lambda d: ["--data", good_csv(d), "--weights", "w"], r"unknown column 'w' \(in the"),
    ("plots-into-a-file", lambda d: ["--data", good_csv(d), "--plots", good_csv(d)],
     r"cannot write the plots into .*: it is a file"),
]  # fmt: skip


@pytest.mark.parametrize("arguments, pattern", [pytest.param(*case[1:], id=case[0]) for case in CLI_CASES])
def test_cli_answers_bad_input_in_one_line(tmp_path, arguments, pattern):
    command = [sys.executable, "-m", "mixedmodels", "fit", SLEEP, *arguments(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "MPLBACKEND": "Agg"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mixedmodels: error: ")
    assert re.search(pattern, lines[0])
