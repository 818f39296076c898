"""What a formula may evaluate: a formula is data, not code.

formulaic evaluates each expression of a formula (``log(x)``, ``I(x**2)``, ``poly(x, 2)``) with Python's
``eval``.  So before anything is evaluated, :func:`expression_names` checks the syntax tree of every such
expression: it may hold names, numbers and strings, arithmetic, comparisons, lists and tuples, and calls
of named functions; attribute access only as ``np.<ufunc>`` and ``contr.<contrasts>``; no dunder names,
and no arithmetic of constants that would not finish (``10**10**10``).
The functions a formula may call are R's that the README lists (:data:`FUNCTIONS`), NumPy's ufuncs, and
those the caller passes as ``functions={"logit": logit}``.  As a second line, formulaic evaluates in
:func:`evaluation_context`, where every other Python builtin and formulaic transform is shadowed by a
stub that refuses to run, so a name the check missed reaches nothing.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from types import MappingProxyType, SimpleNamespace

import numpy as np
import pandas as pd
from formulaic.transforms import TRANSFORMS
from formulaic.utils.stateful_transforms import stateful_transform

from ..errors import FormulaError

__all__ = [
    "CODED",
    "FUNCTIONS",
    "check_calls",
    "check_functions",
    "evaluation_context",
    "expression_names",
]


def _factor(values) -> pd.Series:
    """R's ``factor(x)`` and ``as.factor(x)``: a categorical with R's level order and labels
    (categories kept, other values sorted; ``6``, not ``6.0``)."""
    from ..data.terms import grouping_factor  # data.terms imports this module through design

    series = values if isinstance(values, pd.Series) else pd.Series(values)
    group = grouping_factor({"x": series}, ("x",), "x")
    ordered = isinstance(series.dtype, pd.CategoricalDtype) and series.dtype.ordered  # R keeps it ordered
    return pd.Series(pd.Categorical.from_codes(group.codes, group.levels, ordered), index=series.index)


def _as_numeric(values) -> pd.Series:
    """R's ``as.numeric(x)``: numbers as they are, a factor's level codes 1, 2, ... (R's, not its labels)."""
    series = values if isinstance(values, pd.Series) else pd.Series(values)
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.array.codes
        return pd.Series(np.where(codes >= 0, codes + 1.0, np.nan), index=series.index)
    return series.astype(float)


@stateful_transform
def _poly(x, degree: int = 1, raw: bool = False, _state: dict | None = None) -> np.ndarray:
    """R's ``poly(x, degree)``: formulaic's, with R's check that orthogonal polynomials of that degree
    exist (degree + 1 distinct values), made on the data that fix the basis."""
    if not raw and not _state:
        values = np.asarray(x, dtype=float)
        if degree >= np.unique(values[np.isfinite(values)]).size:
            raise FormulaError(f"poly(..., {degree}): 'degree' must be less than number of unique points")
    return TRANSFORMS["poly"](x, degree=degree, raw=raw, _state=_state)


def _as_is(values):
    """R's ``I(x)``: the value as it is, except that a logical one is a factor of FALSE and TRUE, as R
    codes logical variables (``I(x > 6)`` gives the column ``I(x > 6)TRUE``)."""
    if np.asarray(values).dtype == bool:
        index = values.index if isinstance(values, pd.Series) else None
        return pd.Series(pd.Categorical(values, categories=[False, True]), index=index)
    return values


#: formulaic's ``C()`` under a name no data column shadows (an experiment's factor may be called ``C``).
CODED = "coded_"

#: NumPy's ufuncs, callable in a formula by name (``arctan(x)``) or as ``np.arctan(x)``.
UFUNCS = MappingProxyType(
    {name: getattr(np, name) for name in dir(np) if isinstance(getattr(np, name), np.ufunc)}
)

#: R's functions a formula may call, and the ufuncs; ``as_factor`` and ``as_numeric`` are R's ``as.factor``
#: and ``as.numeric`` under names Python can call (:func:`~mixedmodels.formula.parse_formula` translates).
FUNCTIONS = MappingProxyType(
    {
        **UFUNCS,
        **{name: TRANSFORMS[name] for name in ("C", "scale")},
        "I": _as_is,
        "poly": _poly,
        "factor": _factor,
        "as_factor": _factor,
        "as_numeric": _as_numeric,
        CODED: TRANSFORMS["C"],
    }
)

#: Attributes a formula may use, by the name they belong to: ``np.log``, ``contr.poly``.
_NAMESPACES = {
    "np": frozenset(UFUNCS),
    "contr": frozenset({"treatment", "sum", "poly", "helmert", "diff", "SAS", "custom"}),
}

_NODES = (
    ast.Expression,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.BinOp,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.Call,
    ast.keyword,
    ast.Tuple,
    ast.List,
    ast.Attribute,
    ast.operator,
    ast.unaryop,
    ast.boolop,
    ast.cmpop,
)

_WHAT = {
    ast.Subscript: "indexing",
    ast.Lambda: "lambda",
    ast.NamedExpr: "assignment (:=)",
    ast.Starred: "unpacking (*)",
    ast.JoinedStr: "f-strings",
    ast.IfExp: "if-else",
    ast.Dict: "dictionaries",
}

_HINT = (
    "a formula may use column names, arithmetic, R's functions (log, exp, sqrt, scale, poly, factor, ...), "
    "NumPy's ufuncs and functions passed as functions={...}"
)


def _is_dunder(name: str) -> bool:
    return name.startswith("__")


def _constant(node: ast.AST) -> bool:
    """Does the subtree hold constants only (no names)?"""
    return not any(isinstance(part, ast.Name) for part in ast.walk(node))


def _runaway(node: ast.BinOp) -> bool:
    """Arithmetic that could exhaust time or memory without data: sequences or strings repeated, and
    powers or shifts of constants beyond a plain number to at most the 1024th (``10**10**10``)."""
    operands = (node.left, node.right)
    if any(
        isinstance(o, (ast.List, ast.Tuple)) or isinstance(getattr(o, "value", None), str) for o in operands
    ):
        return True
    if not isinstance(node.op, (ast.Pow, ast.LShift)) or not all(map(_constant, operands)):
        return False
    try:
        exponent = ast.literal_eval(node.right)  # a number, possibly negative; not a computation
    except ValueError:
        return True
    return not (isinstance(node.left, ast.Constant) and abs(exponent) <= 1024)


@lru_cache(maxsize=1024)
def expression_names(expr: str) -> tuple[frozenset[str], frozenset[str]]:
    """(variables, called functions) of one expression of a formula, after checking that it is safe.

    Backticks quote column names that are not identifiers (```my x```).  Raises :class:`FormulaError`
    naming everything in the expression a formula may not use.
    """
    quoted: dict[str, str] = {}

    def alias(match: re.Match[str]) -> str:
        quoted[f"_quoted{len(quoted)}_"] = match.group(1)
        return f"_quoted{len(quoted) - 1}_"

    try:
        tree = ast.parse(re.sub(r"`([^`]*)`", alias, expr).strip(), mode="eval")
    except SyntaxError as exc:
        raise FormulaError(f"{expr!r} is not a valid expression: {exc.msg}") from exc
    problems: list[tuple[int, str]] = []  # (place in the expression, what is not allowed)
    called: dict[int, str] = {}  # id of a call's function node -> the function's name
    namespaces: set[int] = set()  # ids of the ``np`` of ``np.log``
    for node in ast.walk(tree):
        place = getattr(node, "end_col_offset", 0)
        if not isinstance(node, _NODES):
            problems.append((place, _WHAT.get(type(node), type(node).__name__)))
        elif isinstance(node, ast.Name) and _is_dunder(quoted.get(node.id, node.id)):
            problems.append((place, f"the name {quoted.get(node.id, node.id)}"))
        elif isinstance(node, ast.Constant) and not isinstance(
            node.value, (int, float, complex, str, type(None))
        ):
            problems.append((place, f"the constant {node.value!r}"))
        elif isinstance(node, ast.Attribute):
            base = node.value.id if isinstance(node.value, ast.Name) else None
            if base in _NAMESPACES and node.attr in _NAMESPACES[base]:
                namespaces.add(id(node.value))
            else:
                problems.append((place, f"attribute access .{node.attr}"))
        elif isinstance(node, ast.BinOp) and _runaway(node):
            problems.append((place, f"the computation {ast.unparse(node)}"))
        elif isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name):
                called[id(node.func)] = quoted.get(node.func.id, node.func.id)
            elif not isinstance(node.func, ast.Attribute):
                problems.append((place, f"calling {ast.unparse(node.func)}"))
            if any(keyword.arg is None for keyword in node.keywords):
                problems.append((place, "unpacking (**)"))
    if problems:  # name Python's builtins called too (alone, they may be the caller's own functions)
        problems += [
            (node.end_col_offset, f"Python's {called[id(node)]}()")
            for node in ast.walk(tree)
            if id(node) in called
            and called[id(node)] not in FUNCTIONS
            and hasattr(builtins, called[id(node)])
        ]
        listed = list(dict.fromkeys(what for _, what in sorted(problems, key=lambda p: p[0])))
        verb = "is" if len(listed) == 1 else "are"
        attributes = any(what.startswith("attribute") for what in listed)
        note = " (attributes only as np.<ufunc> and contr.<contrasts>)" if attributes else ""
        raise FormulaError(f"{', '.join(listed)} in {expr!r} {verb} not allowed in a formula; {_HINT}{note}")
    variables = {
        quoted.get(node.id, node.id)
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and id(node) not in called and id(node) not in namespaces
    }
    return frozenset(variables), frozenset(called.values())


def check_functions(functions: Mapping[str, Callable] | None) -> dict[str, Callable]:
    """The caller's own formula functions (``functions={"logit": logit}``), checked."""
    if functions is None:
        return {}
    if not isinstance(functions, Mapping):
        raise TypeError(
            f"functions must map names to functions, e.g. {{'logit': logit}}, not {type(functions).__name__}"
        )
    for name, function in functions.items():
        if not isinstance(name, str) or not name.isidentifier() or _is_dunder(name):
            raise ValueError(f"functions: {name!r} is not a name a formula can call")
        if not callable(function):
            raise TypeError(f"functions: {name!r} is not callable but {type(function).__name__}")
    return dict(functions)


def check_calls(called, functions: Mapping[str, Callable], where: str) -> None:
    """Raise :class:`FormulaError` for a called name that is neither in :data:`FUNCTIONS` nor in
    ``functions``; ``where`` says where the formula calls it."""
    unknown = sorted(set(called) - set(FUNCTIONS) - set(functions))
    if not unknown:
        return
    listed = ", ".join(f"{name}()" for name in unknown)
    if all(hasattr(builtins, name) for name in unknown):
        raise FormulaError(f"Python's {listed} in {where} is not allowed in a formula; {_HINT}")
    noun = "function" if len(unknown) == 1 else "functions"
    raise FormulaError(f"unknown {noun} {listed} in {where}; {_HINT}")


def _refusing(name: str) -> Callable:
    """A stand-in for a name a formula may not use: it raises instead of running anything."""

    def refused(*args, **kwargs):
        raise FormulaError(f"{name} is not allowed in a formula")

    return refused


#: Python's builtins and formulaic's transforms that formulas may not use, each shadowed by a refusal.
_REFUSED = {name: _refusing(name) for name in [*dir(builtins), "__builtins__", *TRANSFORMS]}


@lru_cache(maxsize=1)
def _default_context() -> Mapping[str, object]:
    context = {
        **_REFUSED,
        **FUNCTIONS,
        "np": SimpleNamespace(**UFUNCS),
        "contr": TRANSFORMS["contr"],
    }
    return MappingProxyType(context)


def evaluation_context(functions: Mapping[str, Callable] | None = None) -> Mapping[str, object]:
    """The names formulaic may resolve outside the data: the whitelist, ``functions`` and refusals."""
    context = _default_context()
    return MappingProxyType({**context, **functions}) if functions else context
