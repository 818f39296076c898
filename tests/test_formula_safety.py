"""A formula is data, not code: nothing in it runs but column look-ups, arithmetic and allowed functions.

Every attack below would create a file if its Python ran; each test checks that the entry point raises a
FormulaError naming the offending thing and that the file does not exist.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from formulaic import model_matrix

import mixedmodels as mm
from mixedmodels.cli import main
from mixedmodels.errors import FormulaError
from mixedmodels.formula.evaluation import evaluation_context, expression_names


@pytest.fixture
def sleep() -> pd.DataFrame:
    return mm.datasets.load("sleepstudy")


@pytest.fixture
def target(tmp_path) -> str:
    """A file the attacks try to create."""
    return str(tmp_path / "pwned")


# (expression that creates ``{target}`` if run, what the error must name)
ATTACKS = [
    ("I(__import__('pathlib').Path('{target}').touch())", "__import__"),
    ("I(open('{target}', 'w').close())", "open()"),
    ("I(open('{target}', 'w'))", "open()"),
    ("I(eval(\"open('{target}', 'w')\"))", "eval()"),
    ("I(exec(\"open('{target}', 'w')\"))", "exec()"),
    ("I(getattr(__builtins__, 'open')('{target}', 'w'))", "__builtins__"),
    ("I(Days.__class__.__base__.__subclasses__())", ".__class__"),
    ("I((lambda: open('{target}', 'w'))())", "lambda"),
    ("I([open('{target}', 'w') for _ in Days])", "ListComp"),
    ("I(np.save('{target}', Days))", ".save"),
    ("{{open('{target}', 'w')}}", "open()"),
]


def attack(expression: str, target: str) -> str:
    return expression.format(target=target)


def check_refused(run, message: str, target: str) -> None:
    with pytest.raises(FormulaError) as error:
        run()
    assert message in str(error.value)
    assert not __import__("os").path.exists(target), "the formula's code ran"


@pytest.mark.parametrize("expression, message", ATTACKS)
def test_lmer_refuses_code_in_every_part_of_a_formula(sleep, target, expression, message):
    code = attack(expression, target)
    for formula in (
        f"Reaction ~ Days + {code} + (1 | Subject)",  # fixed effects
        f"Reaction ~ Days + ({code} | Subject)",  # a random-effects term
        f"{code} ~ Days + (1 | Subject)",  # the response
        f"Reaction ~ Days + offset({code}) + (1 | Subject)",  # an offset
    ):
        check_refused(lambda formula=formula: mm.lmer(formula, sleep), message, target)


@pytest.mark.parametrize("expression, message", ATTACKS)
def test_aov_gls_and_lme_refuse_code(sleep, target, expression, message):
    code = attack(expression, target)
    check_refused(lambda: mm.aov(f"Reaction ~ Subject + {code}", sleep, random="Subject"), message, target)
    check_refused(lambda: mm.gls(f"Reaction ~ Days + {code}", sleep), message, target)
    check_refused(lambda: mm.lme(f"Reaction ~ {code}", sleep, random="~ 1 | Subject"), message, target)
    check_refused(lambda: mm.lme("Reaction ~ Days", sleep, random=f"~ {code} | Subject"), message, target)
    check_refused(
        lambda: mm.gls_known_covariance(f"Reaction ~ {code}", sleep, "Subject", np.eye(10)), message, target
    )


@pytest.mark.parametrize("expression, message", ATTACKS[:4])
def test_nlme_structures_refuse_code(sleep, target, expression, message):
    code = attack(expression, target)
    check_refused(lambda: mm.gls("Reaction ~ Days", sleep, weights=mm.VarPower(f"~ {code}")), message, target)
    check_refused(lambda: mm.gls("Reaction ~ Days", sleep, weights=f"~ {code}"), message, target)
    correlation = mm.CorExp(f"~ {code} | Subject")
    check_refused(lambda: mm.gls("Reaction ~ Days", sleep, correlation=correlation), message, target)


@pytest.mark.parametrize("expression, message", ATTACKS[:4])
def test_predict_refuses_code_in_re_form(sleep, target, expression, message):
    model = mm.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    re_form = f"~({attack(expression, target)} | Subject)"
    check_refused(lambda: model.predict(sleep.head(), re_form=re_form), message, target)


@pytest.mark.parametrize("command", ["fit", "aov"])
def test_the_command_line_refuses_code(target, capsys, command):
    formula = f"Reaction ~ Subject + I(open('{target}', 'w'))" + (
        " + (1 | Subject)" if command == "fit" else ""
    )
    assert main([command, formula, "--data", "sleepstudy"]) == 2
    assert "open()" in capsys.readouterr().err
    assert not __import__("os").path.exists(target)


def test_names_that_are_not_columns_are_not_looked_up_elsewhere(sleep, target):
    """A bare name is a column: ``open`` (a builtin) and ``np`` (a module) are unknown columns."""
    for name in ("open", "np", "eval"):
        with pytest.raises(ValueError, match=f"unknown column '{name}'"):
            mm.lmer(f"Reaction ~ Days + I({name}) + (1 | Subject)", sleep)
    with pytest.raises(ValueError, match=r"unknown column .*\(in the weights\)"):
        mm.lmer("Reaction ~ Days + (1 | Subject)", sleep, weights=f"I(open('{target}', 'w'))")
    assert not __import__("os").path.exists(target)


def test_the_evaluation_context_refuses_whatever_the_check_would_miss(target):
    """The second line: formulaic evaluates in a context where builtins and other transforms refuse."""
    context = evaluation_context()
    for name in ("open", "eval", "exec", "__import__", "getattr", "Q", "hashed"):
        with pytest.raises(FormulaError, match=f"{name} is not allowed"):
            context[name]("x")
    assert not hasattr(context["np"], "save") and context["np"].log is np.log
    data = pd.DataFrame({"x": [1.0, 2.0, 3.0]})
    with pytest.raises(Exception, match="open is not allowed"):  # formulaic wraps the FormulaError
        model_matrix(f"I(open('{target}', 'w'))", data, context=context)
    assert not __import__("os").path.exists(target)


@pytest.mark.parametrize(
    "expression, variables, functions",
    [
        ("log(x + 1)", {"x"}, {"log"}),
        ("np.log(x) + arctan(y)", {"x", "y"}, {"arctan"}),
        ("C(f, contr.sum)", {"f"}, {"C"}),
        ("poly(x, degree=2)", {"x"}, {"poly"}),
        ("I((x > 1) | (y < 2))", {"x", "y"}, {"I"}),
        ("C(f, levels=['b', 'a'])", {"f"}, {"C"}),
        ("log(`my x`)", {"my x"}, {"log"}),
    ],
)
def test_allowed_expressions(expression, variables, functions):
    assert expression_names(expression) == (frozenset(variables), frozenset(functions))


def test_allowed_functions_still_work(sleep):
    formula = (
        "Reaction ~ log(Days + 1) + exp(Days / 10) + sqrt(Days) + abs(Days - 4) + scale(Days) + "
        "np.log1p(Days) + arctan(Days) + as.numeric(Days) + offset(log(Days + 1)) + (1 | Subject)"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the columns are collinear: some are dropped, with a message
        model = mm.lmer(formula, sleep)
    assert model.frame.fixed_design.column_names[1:5] == [
        "log(Days + 1)",
        "exp(Days/10)",
        "sqrt(Days)",
        "abs(Days - 4)",
    ]
    assert "as.numeric(Days)" in model.frame.fixed_design.column_names


def logit(p):
    return np.log(p / (1 - p))


def test_own_functions_are_passed_explicitly(sleep):
    sleep = sleep.assign(p=(sleep["Days"] + 1) / 11.5)
    with pytest.raises(FormulaError, match=r"unknown function logit\(\).*functions="):
        mm.lmer("Reaction ~ logit(p) + (1 | Subject)", sleep)
    model = mm.lmer("Reaction ~ logit(p) + (logit(p) | Subject)", sleep, functions={"logit": logit})
    reference = mm.lmer("Reaction ~ I(np.log(p / (1 - p))) + (I(np.log(p / (1 - p))) | Subject)", sleep)
    np.testing.assert_allclose(model.fixef.to_numpy(), reference.fixef.to_numpy(), rtol=1e-10)
    assert list(model.fixef.index) == ["(Intercept)", "logit(p)"]
    np.testing.assert_allclose(model.predict(sleep.head()), reference.predict(sleep.head()), rtol=1e-10)
    assert model.anova().index.tolist() == ["logit(p)"]
    assert len(model.ranova()) == 2  # the refits of reduced formulas evaluate logit too

    anova = mm.aov("Reaction ~ Subject + logit(p)", sleep, random="Subject", functions={"logit": logit})
    assert "logit(p)" in anova.table.index
    gls = mm.gls("Reaction ~ logit(p)", sleep, weights=mm.VarPower("~ logit(p)"), functions={"logit": logit})
    assert list(gls.fixef.index) == ["(Intercept)", "logit(p)"]
    lme = mm.lme("Reaction ~ logit(p)", sleep, random="~ logit(p) | Subject", functions={"logit": logit})
    np.testing.assert_allclose(lme.fixef.to_numpy(), reference.fixef.to_numpy(), rtol=1e-5)


@pytest.mark.parametrize(
    "functions, error, message",
    [
        ({"logit": 3}, TypeError, "'logit' is not callable"),
        ({"__import__": logit}, ValueError, "'__import__' is not a name"),
        ({"my logit": logit}, ValueError, "'my logit' is not a name"),
        ([logit], TypeError, "functions must map names to functions"),
    ],
)
def test_functions_are_checked(sleep, functions, error, message):
    with pytest.raises(error, match=message):
        mm.lmer("Reaction ~ Days + (1 | Subject)", sleep, functions=functions)


@pytest.mark.parametrize(
    "expression",
    ["I(10**10**10)", "I((2**1024)**1024)", "I(1 << 10**9)", "I('a' * 10**9)", "I([0] * 10**9)"],
)
def test_computations_that_would_exhaust_the_machine_are_refused(expression):
    with pytest.raises(FormulaError, match="the computation .* is not allowed"):
        expression_names(expression)


@pytest.mark.parametrize("expression", ["I(x * 10**3)", "I(2**x)", "I(x**2000)", "I(2 ** -3)", "I(2**1024)"])
def test_powers_of_data_and_small_constants_are_allowed(expression):
    expression_names(expression)
