"""Model matrices with R's contrasts and column names.

formulaic materializes the right-hand sides; this module makes the result look like R's
``model.matrix``: ordered factors get polynomial contrasts (``x.L``, ``x.Q``, ``x^4``), treatment
columns are named ``SexFemale`` rather than ``Sex[T.Female]``, the intercept is ``(Intercept)``.
Right-hand sides made only of an intercept and numeric columns skip formulaic, which matters for speed
on small models.
"""

from __future__ import annotations

import ast
import builtins
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import scipy.sparse as sp
from formulaic import Formula, ModelSpec, model_matrix
from formulaic.errors import FormulaicError
from formulaic.parser.types import Factor
from formulaic.transforms import TRANSFORMS
from formulaic.transforms.contrasts import TreatmentContrasts
from formulaic.utils.sentinels import UNSET

from .formula import FormulaError, formulaic_failure, formulaic_terms

__all__ = ["Design", "DesignTerm", "EVALUATION_CONTEXT", "KNOWN_NAMES", "formula_names", "r_column_name"]

#: Functions a formula may call, beyond formulaic's own (I, C, poly, scale, center, ...).
EVALUATION_CONTEXT = {
    "np": np,
    "log": np.log,
    "log10": np.log10,
    "log2": np.log2,
    "log1p": np.log1p,
    "exp": np.exp,
    "expm1": np.expm1,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
}

#: formulaic's ``C()`` under a name no data column shadows (an experiment's factor may be called ``C``).
CODED = "coded_"
EVALUATION_CONTEXT[CODED] = TRANSFORMS["C"]

#: Names a formula can use without a column of that name (functions, ``np``, ``contr``, ...).
KNOWN_NAMES = frozenset(EVALUATION_CONTEXT) | frozenset(TRANSFORMS)

_SIMPLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def r_column_name(name: str) -> str:
    """formulaic's column name -> R's (``Sex[T.Female]`` -> ``SexFemale``, ``x[.L]`` -> ``x.L``)."""
    if name == "Intercept":
        return "(Intercept)"
    name = re.sub(rf"(?:C|{CODED})\(([^,()]+), contr\.poly\)\[([^\]]*)\]", r"\1\2", name)
    name = re.sub(r"\[T\.([^\]]*)\]", r"\1", name)
    name = re.sub(r"\[([^\]]*)\]", r"\1", name)
    # only arithmetic inside calls has these operators, which R's deparse writes unspaced: I(x^2), exp(x/10)
    return name.replace(" ** ", "^").replace(" / ", "/")


def _r_variable_label(expr: str) -> str:
    """R's name of a formula variable: ``C(x, contr.poly)`` (our wrapping of ordered factors) -> ``x``."""
    wrapped = re.fullmatch(r"C\(([^,()]+), contr\.poly\)", expr)
    return wrapped.group(1) if wrapped else r_column_name(expr)


@dataclass(frozen=True)
class DesignTerm:
    """One term of a right-hand side as R's ``terms`` object describes it (the intercept excluded).

    ``label`` is R's term label (``"age:Sex"``), ``variables`` its variables in order, ``numeric`` those
    whose data class is numeric (not factors), ``columns`` its columns in the design matrix, and
    ``expression`` the formulaic text of the term (to build it again, e.g. as ``0 + expression``).
    """

    label: str
    variables: tuple[str, ...]
    numeric: frozenset[str]
    columns: tuple[int, ...]
    expression: str


def _expression_names(expr: str) -> tuple[set[str], set[str]]:
    """(variables, called functions) of a Python expression; backticks quote names with spaces."""
    quoted: dict[str, str] = {}

    def alias(match: re.Match[str]) -> str:
        quoted[f"_quoted{len(quoted)}_"] = match.group(1)
        return f"_quoted{len(quoted) - 1}_"

    try:
        tree = ast.parse(re.sub(r"`([^`]*)`", alias, expr).strip(), mode="eval")
    except SyntaxError as exc:
        raise FormulaError(f"{expr!r} is not a valid expression: {exc.msg}") from exc
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    variables: set[str] = set()
    functions: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (functions if id(node) in called else variables).add(quoted.get(node.id, node.id))
    return variables, functions


def is_number_dtype(dtype) -> bool:
    """Numbers a model matrix takes as they are: numeric and not boolean (R treats logicals as factors)."""
    if isinstance(dtype, np.dtype):  # what the pandas tests below answer, in a fraction of their time
        return dtype.kind in "iufc"
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


@lru_cache(maxsize=512)
def formula_names(rhs: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Variables and unknown functions used by a right-hand side (or an expression such as ``log(y)``).

    Variables exclude the names formulas know (``np``, ``contr``); functions are only those that are
    neither transforms, nor in :data:`EVALUATION_CONTEXT`, nor Python builtins.
    """
    terms = formulaic_terms(rhs, repr(rhs))
    variables: dict[str, None] = {}
    functions: dict[str, None] = {}
    for factor in (factor for term in terms for factor in term.factors):
        if factor.eval_method is Factor.EvalMethod.LOOKUP:
            variables[factor.expr] = None
        elif factor.eval_method is Factor.EvalMethod.PYTHON:
            names, calls = _expression_names(factor.expr)
            variables.update(dict.fromkeys(sorted(names - KNOWN_NAMES)))
            functions.update(dict.fromkeys(sorted(calls - KNOWN_NAMES - set(dir(builtins)))))
    return tuple(variables), tuple(functions)


def _with_contrasts(rhs: str, contrasts: dict[str, str], coder: str = "C") -> str:
    """Wrap bare names of factors in ``C(name, <contrast>)`` (``contr.poly`` for ordered factors, as R's
    default contrasts do; ``contr.sum`` for sum-to-zero coding); ``coder`` is the name ``C`` goes by."""
    if not contrasts:
        return rhs

    def wrap(match: re.Match[str]) -> str:
        name = match.group(0)
        before = rhs[: match.start()].rstrip()
        if (
            name in contrasts
            and not before.endswith("C(")
            and not rhs[match.end() :].lstrip().startswith("(")
        ):
            return f"{coder}({name}, {contrasts[name]})"
        return name

    return re.sub(r"(?<![\w.])[A-Za-z_][\w]*(?![\w.])", wrap, rhs)


def _number_sum_contrasts(names: list[str], data: pd.DataFrame) -> list[str]:
    """``C(x, contr.sum)[S.b]`` -> ``x2``: R numbers sum-contrast columns by the level's position."""
    positions: dict[str, dict[str, int]] = {}

    def number(match: re.Match[str]) -> str:
        variable, level = match.group(1), match.group(2)
        if variable not in positions:
            categories = data[variable].cat.categories
            positions[variable] = {str(c): i for i, c in enumerate(categories, start=1)}
        return f"{variable}{positions[variable][level]}"

    pattern = re.compile(rf"(?:C|{CODED})\(([^,()]+), contr\.sum\)\[S\.([^\]]*)\]")
    return [pattern.sub(number, name) for name in names]


@dataclass
class Design:
    """A right-hand side, remembered so the same columns can be built for new data."""

    rhs: str
    column_names: list[str]
    spec: ModelSpec | None  # None for the fast path (intercept and numeric columns only)
    simple_columns: list[str] | None

    @classmethod
    def build(
        cls, rhs: str, data: pd.DataFrame, sum_contrasts: bool = False, sparse: bool = False
    ) -> tuple[Design, np.ndarray | sp.csc_matrix]:
        """Materialize ``rhs`` on ``data``; returns the design and its matrix (a sparse one with ``sparse``).

        Unordered factors get treatment contrasts, or with ``sum_contrasts`` sum-to-zero contrasts
        (R's ``options(contrasts = c("contr.sum", "contr.poly"))``, used for Type III sums of squares);
        ordered factors get polynomial contrasts either way.
        """
        numeric = cls.from_numeric_columns(rhs, data, len(data))
        if numeric is not None:
            design, matrix = numeric
            return design, sp.csc_matrix(matrix) if sparse else matrix
        contrasts = {}
        for name in formula_names(rhs)[0]:
            if name in data.columns and isinstance(data[name].dtype, pd.CategoricalDtype):
                if data[name].cat.ordered:
                    contrasts[name] = "contr.poly"
                elif sum_contrasts:
                    contrasts[name] = "contr.sum"
        try:
            matrices = model_matrix(
                _with_contrasts(rhs, contrasts, CODED if "C" in data.columns else "C"),
                data,
                context=EVALUATION_CONTEXT,
                na_action="ignore",
                output="sparse" if sparse else "numpy",  # a DataFrame costs a third more
            )
        except FormulaicError as exc:
            raise formulaic_failure(f"cannot evaluate {rhs!r}", exc) from exc
        numbered = _number_sum_contrasts(list(matrices.model_spec.column_names), data)
        names = [r_column_name(c) for c in numbered]
        design = cls(rhs, names, matrices.model_spec, None)
        return design, sp.csc_matrix(matrices, dtype=float) if sparse else np.asarray(matrices, dtype=float)

    @classmethod
    def from_numeric_columns(
        cls, rhs: str, columns: Mapping[str, pd.Series], nrows: int
    ) -> tuple[Design, np.ndarray] | None:
        """The design and matrix of ``rhs`` when it is only an intercept and numeric columns, else None.

        This is :meth:`build`'s fast path, without formulaic and without a table: ``columns`` maps names
        to columns of ``nrows`` rows (a DataFrame does).
        """
        simple = _simple_terms(rhs)
        found = None if simple is None else _number_columns(columns, simple[1])
        if found is None:
            return None
        intercept, names = simple
        labels = (["(Intercept)"] if intercept else []) + list(names)
        design = cls(rhs, labels, None, (["1"] if intercept else []) + list(names))
        return design, _stack_columns(nrows, intercept, found)

    @property
    def has_intercept(self) -> bool:
        return "(Intercept)" in self.column_names

    @property
    def terms(self) -> list[DesignTerm]:
        """The terms other than the intercept, in R's order (by degree, then as written)."""
        if self.spec is None:
            return [
                DesignTerm(name, (name,), frozenset([name]), (i,), name)
                for i, name in enumerate(self.simple_columns)
                if name != "1"
            ]
        # R orders a term's variables by their first appearance in the formula as written
        appearance: dict[str, int] = {}
        for term in Formula(self.rhs, _ordering="none"):
            for factor in term.factors:
                appearance.setdefault(_r_variable_label(factor.expr), len(appearance))
        result = []
        for term, columns in self.spec.term_indices.items():
            factors = [f for f in term.factors if f.eval_method is not Factor.EvalMethod.LITERAL]
            if not factors:
                continue
            factors.sort(key=lambda f: appearance.get(_r_variable_label(f.expr), len(appearance)))
            variables = tuple(_r_variable_label(f.expr) for f in factors)
            numeric = frozenset(
                label
                for f, label in zip(factors, variables)
                if self.spec.encoder_state.get(f.expr, (None,))[0] is Factor.Kind.NUMERICAL
            )
            result.append(DesignTerm(":".join(variables), variables, numeric, tuple(columns), str(term)))
        return result

    @property
    def treatment_coded(self) -> bool:
        """True when every factor is coded by R's default ``contr.treatment`` (or by indicators)."""
        if self.spec is None:
            return True
        return all(
            isinstance(state.contrasts, TreatmentContrasts) and state.contrasts.base is UNSET
            for state in self.spec.factor_contrasts.values()
        )

    def matrix(self, data: pd.DataFrame) -> np.ndarray:
        """The design's columns for (new) data, with the levels and transforms learned at fit time."""
        if self.spec is None:
            names = [c for c in self.simple_columns if c != "1"]
            return _stack_columns(len(data), "1" in self.simple_columns, [data[c] for c in names])
        try:
            matrices = self.spec.get_model_matrix(data, context=EVALUATION_CONTEXT, na_action="ignore")
        except FormulaicError as exc:
            raise formulaic_failure(f"cannot evaluate {self.rhs!r}", exc) from exc
        return np.asarray(matrices, dtype=float)


@lru_cache(maxsize=512)
def _simple_terms(rhs: str) -> tuple[bool, tuple[str, ...]] | None:
    """``(has_intercept, column names)`` when ``rhs`` is only an intercept and names, else None."""
    intercept = True
    columns: list[str] = []
    for raw in re.split(r"(?=[+-])", rhs.replace(" ", "")):
        if not raw:
            continue
        sign, term = (raw[0], raw[1:]) if raw[0] in "+-" else ("+", raw)
        if term in ("0", "1"):
            intercept = (term == "1") == (sign == "+")
            continue
        if sign != "+" or not _SIMPLE_NAME.match(term) or term in columns:
            return None
        columns.append(term)
    return intercept, tuple(columns)


def _number_columns(data: Mapping[str, pd.Series], names: tuple[str, ...]) -> list[pd.Series] | None:
    """The columns ``names`` of ``data`` when all are there and numeric (the fast path), else None."""
    columns = []
    for name in names:
        if name not in data:
            return None
        column = data[name]
        if not is_number_dtype(column.dtype):
            return None
        columns.append(column)
    return columns


def _stack_columns(nrows: int, intercept: bool, columns: list[pd.Series]) -> np.ndarray:
    """The model matrix of an intercept (first, when there is one) and numeric columns."""
    matrix = np.empty((nrows, intercept + len(columns)))
    if intercept:
        matrix[:, 0] = 1.0
    for j, column in enumerate(columns, start=intercept):
        matrix[:, j] = column.to_numpy(dtype=float)
    return matrix
