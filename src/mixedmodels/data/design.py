"""Model matrices with R's contrasts and column names.

formulaic materializes the right-hand sides; this module makes the result look like R's
``model.matrix``: ordered factors get polynomial contrasts (``x.L``, ``x.Q``, ``x^4``), treatment
columns are named ``SexFemale`` rather than ``Sex[T.Female]``, the intercept is ``(Intercept)``.
Right-hand sides made only of an intercept and numeric columns skip formulaic, which matters for speed
on small models.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd
import scipy.sparse as sp
from formulaic import Formula, ModelSpec, model_matrix
from formulaic.errors import FormulaicError
from formulaic.materializers import PandasMaterializer
from formulaic.materializers.types import ScopedFactor, ScopedTerm
from formulaic.parser.types import Factor, Term
from formulaic.transforms.contrasts import TreatmentContrasts
from formulaic.utils.sentinels import UNSET
from interface_meta import override

from ..errors import FormulaError
from ..formula.evaluation import CODED, FUNCTIONS, check_calls, evaluation_context, expression_names
from ..formula.parse import Rhs, factor_names, factor_text, formulaic_failure, r_names

__all__ = ["Design", "DesignTerm", "coded_by_contrasts", "formula_names", "r_column_name"]
_INTERCEPT = Factor("1", eval_method=Factor.EvalMethod.LITERAL)


#: A factor we code with R's contrasts: ``C(x, contr.poly)``, ``C(factor(x), contr.sum)`` (``coded_`` for C).
_CODED_FACTOR = rf"(?:C|{CODED})\(((?:[^,()]|\([^()]*\))+), contr\.(poly|sum)\)"


def r_column_name(name: str) -> str:
    """formulaic's column name -> R's (``Sex[T.Female]`` -> ``SexFemale``, ``x[.L]`` -> ``x.L``)."""
    if name == "Intercept":
        return "(Intercept)"
    name = re.sub(rf"{_CODED_FACTOR}\[([^\]]*)\]", r"\1\3", name)
    name = re.sub(r"\[T\.([^\]]*)\]", r"\1", name)
    # a raw polynomial's powers, which formulaic counts from 0 and R from 1
    name = re.sub(r"^(poly\(.*raw\s*=\s*True\s*\))\[(\d+)\]$", lambda m: f"{m[1]}{int(m[2]) + 1}", name)
    name = re.sub(r"\[([^\]]*)\]", r"\1", name)
    # only arithmetic inside calls has these operators, which R's deparse writes unspaced: I(x^2), exp(x/10)
    return r_names(name.replace(" ** ", "^").replace(" / ", "/"))


def _r_variable_label(expr: str) -> str:
    """R's name of a formula variable: ``C(x, contr.poly)`` (our coding of ordered factors) -> ``x``."""
    wrapped = re.fullmatch(_CODED_FACTOR, expr)
    return wrapped.group(1) if wrapped else r_column_name(expr)


@dataclass(frozen=True)
class DesignTerm:
    """One term of a right-hand side as R's ``terms`` object describes it (the intercept excluded).

    ``label`` is R's term label (``"age:Sex"``), ``variables`` its variables in order, ``numeric`` those
    whose data class is numeric (not factors), ``columns`` its columns in the design matrix, and
    ``factors`` formulaic's factors of the term (to build it on its own, :meth:`Design.build_term`).
    """

    label: str
    variables: tuple[str, ...]
    numeric: frozenset[str]
    columns: tuple[int, ...]
    factors: tuple[Factor, ...]


def coded_by_contrasts(variables: frozenset[str], variable: str, earlier: Sequence[frozenset[str]]) -> bool:
    """R's rule for coding ``variable`` in a term of ``variables`` (``model.matrix``, ``terms``' factors
    attribute 1; Chambers & Hastie, *Statistical Models in S*, p. 38): by contrasts when the term without
    it is empty or part of an ``earlier`` term, else by indicators of all its levels."""
    rest = variables - {variable}
    return not rest or any(rest <= e for e in earlier)


def is_number_dtype(dtype) -> bool:
    """Numbers a model matrix takes as they are: numeric and not boolean (R treats logicals as factors)."""
    if isinstance(dtype, np.dtype):  # what the pandas tests below answer, in a fraction of their time
        return dtype.kind in "iufc"
    return pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)


@lru_cache(maxsize=512)
def formula_names(expr: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Variables and functions beyond :data:`~mixedmodels.evaluation.FUNCTIONS` used by one expression of
    the data that is not a right-hand side (a response ``log(y)``, an offset, an nlme covariate); a
    FormulaError when it holds anything a formula may not (see
    :func:`~mixedmodels.evaluation.expression_names`).  Right-hand sides have theirs as :attr:`Rhs.names`.
    """
    return Rhs.parse(expr, repr(expr)).names


class _RCoding(PandasMaterializer):
    """formulaic's materializer with R's coding of factors (``model.matrix``'s rule, Chambers & Hastie,
    *Statistical Models in S*, p. 38): in each term a factor is coded by contrasts when the term without
    it is empty or part of an earlier term, and by indicators of all its levels otherwise; without an
    intercept, the first factor of the formula gets indicators.  So ``a:b`` without ``a`` and ``b`` has
    indicator columns for both, as in R (rank deficient with an intercept; the fit drops columns as lme4
    does), where formulaic's own rule would pick a full-rank recoding under other names.
    """

    REGISTER_NAME = "mixedmodels_r"  # a model spec remembers its materializer by name

    @override  # formulaic's materializers are interface_meta interfaces, which check overrides
    def _get_scoped_terms(self, terms, ensure_full_rank: bool = True):
        terms = list(terms)
        indicators_first = not any(str(term) == "1" for term in terms)
        earlier: list[frozenset[str]] = []
        for term in terms:
            evaluated = [
                self.factor_cache[factor.expr]
                for factor in term.factors
                if self.factor_cache[factor.expr].values.__wrapped__ is not None
            ]
            if not evaluated:
                yield term, []
                continue
            scale = 1
            variables = frozenset(f.expr for f in evaluated if f.metadata.kind is not Factor.Kind.CONSTANT)
            scoped = []
            for factor in evaluated:
                if factor.metadata.kind is Factor.Kind.CONSTANT:
                    scale *= factor.values
                elif factor.metadata.spans_intercept:
                    contrasts = not indicators_first and coded_by_contrasts(variables, factor.expr, earlier)
                    indicators_first = False
                    scoped.append(ScopedFactor(factor, reduced=contrasts))
                else:
                    scoped.append(ScopedFactor(factor))
            earlier.append(variables)
            yield term, [ScopedTerm(scoped, scale=scale)]


def _factor_column(factor: str, data: pd.DataFrame) -> pd.Series | None:
    """The factor a formula variable is: a categorical column (``f``, ```my f```) or ``factor(column)``
    (``as.factor``); None for anything else."""
    call = re.fullmatch(r"(?:factor|as_factor)\((.+)\)", factor)
    name = (call.group(1) if call else factor).strip().strip("`")
    if name not in data.columns:
        return None
    column = data[name]
    if call:
        return FUNCTIONS["factor"](column)
    return column if isinstance(column.dtype, pd.CategoricalDtype) else None


def _with_contrasts(factor: Factor, data: pd.DataFrame, sum_contrasts: bool, coder: str) -> Factor:
    """A formula variable wrapped in ``C(factor, <contrast>)`` where R's default contrasts are not
    formulaic's: ``contr.poly`` for ordered factors, and with ``sum_contrasts`` ``contr.sum`` for the
    others; ``coder`` is the name ``C`` goes by."""
    text = factor_text(factor)
    column = _factor_column(text, data)
    if column is None or not (column.cat.ordered or sum_contrasts):
        return factor
    contrast = "contr.poly" if column.cat.ordered else "contr.sum"
    return Factor(f"{coder}({text}, {contrast})", eval_method=Factor.EvalMethod.PYTHON)


def _number_sum_contrasts(names: list[str], data: pd.DataFrame) -> list[str]:
    """``C(x, contr.sum)[S.b]`` -> ``x2``: R numbers sum-contrast columns by the level's position."""
    positions: dict[str, dict[str, int]] = {}

    def number(match: re.Match[str]) -> str:
        variable, contrast, level = match.groups()
        if contrast != "sum":
            return match.group(0)
        if variable not in positions:
            categories = _factor_column(variable, data).cat.categories
            positions[variable] = {str(c): i for i, c in enumerate(categories, start=1)}
        return f"{variable}{positions[variable][level]}"

    pattern = re.compile(rf"{_CODED_FACTOR}\[S\.([^\]]*)\]")
    return [pattern.sub(number, name) for name in names]


@dataclass
class Design:
    """A right-hand side, remembered so the same columns can be built for new data."""

    rhs: str  # the right-hand side's text, for messages
    column_names: list[str]
    spec: ModelSpec | None  # None for the fast path (intercept and numeric columns only)
    simple_columns: list[str] | None
    functions: Mapping[str, Callable] = field(default_factory=dict)  # the caller's formula functions

    @classmethod
    def build(
        cls,
        rhs: Rhs,
        data: pd.DataFrame,
        sum_contrasts: bool = False,
        sparse: bool = False,
        functions: Mapping[str, Callable] | None = None,
    ) -> tuple[Design, np.ndarray | sp.csc_matrix]:
        """Materialize ``rhs`` on ``data``; returns the design and its matrix (a sparse one with ``sparse``).

        Unordered factors get treatment contrasts, or with ``sum_contrasts`` sum-to-zero contrasts
        (R's ``options(contrasts = c("contr.sum", "contr.poly"))``, used for Type III sums of squares);
        ordered factors get polynomial contrasts either way.  ``functions`` are the caller's own functions
        the formula may call, beyond R's and NumPy's (see :mod:`mixedmodels.formula.evaluation`).
        """
        numeric = cls.from_numeric_columns(rhs, data, len(data))
        if numeric is not None:
            design, matrix = numeric
            return design, sp.csc_matrix(matrix) if sparse else matrix
        variables, called = rhs.names  # checked before anything is evaluated
        functions = dict(functions or {})
        return cls._materialize(
            rhs.text, variables, called, rhs.intercept, rhs.terms, data, functions, sparse, sum_contrasts
        )

    @classmethod
    def build_term(
        cls, term: DesignTerm, data: pd.DataFrame, functions: Mapping[str, Callable] | None = None
    ) -> tuple[Design, np.ndarray]:
        """One term of a design on its own, without an intercept (its factors coded by indicators where R
        would code them so in ``~ 0 + term``), from the factors already parsed."""
        variables, called = factor_names(term.factors)  # checked before anything is evaluated
        text = ":".join(factor_text(f) for f in term.factors)
        return cls._materialize(text, variables, called, False, (term.factors,), data, dict(functions or {}))

    @classmethod
    def build_numeric(
        cls, expr: str, data: pd.DataFrame, functions: Mapping[str, Callable] | None = None
    ) -> tuple[Design, np.ndarray]:
        """R's ``as.numeric(expr)`` of one expression of the data (a logical gives 0 and 1): the design of
        that one factor, checked as every formula's expressions are
        (see :mod:`mixedmodels.formula.evaluation`)."""
        factor = Factor(f"as_numeric({expr})", eval_method=Factor.EvalMethod.PYTHON)
        variables, called = expression_names(expr)  # checked before anything is evaluated
        functions = dict(functions or {})
        design, matrix = cls._materialize(expr, variables, called, False, ((factor,),), data, functions)
        return design, matrix[:, 0]

    @classmethod
    def _materialize(
        cls,
        rhs: str,
        variables: Iterable[str],
        called: Iterable[str],
        intercept: bool,
        terms: tuple[tuple[Factor, ...], ...],
        data: pd.DataFrame,
        functions: dict[str, Callable],
        sparse: bool = False,
        sum_contrasts: bool = False,
    ) -> tuple[Design, np.ndarray | sp.csc_matrix]:
        """formulaic's model matrix of the terms of ``rhs`` (an intercept, then ``terms`` in R's order), once
        its ``variables`` are columns of ``data`` and its ``called`` functions are allowed."""
        check_calls(called, functions, repr(rhs))
        unknown = [name for name in variables if name not in data.columns]
        if unknown:
            raise FormulaError(
                f"unknown column {unknown[0]!r} in {rhs!r}; data has columns {list(data.columns)}"
            )
        coder = CODED if "C" in data.columns else "C"
        coded = [Term([_with_contrasts(factor, data, sum_contrasts, coder) for factor in t]) for t in terms]
        try:
            matrices = model_matrix(
                Formula([Term([_INTERCEPT])] * intercept + coded, _ordering="none"),
                data,
                context=evaluation_context(functions),
                materializer=_RCoding,
                na_action="ignore",
                output="sparse" if sparse else "numpy",  # a DataFrame costs a third more
            )
        except FormulaicError as exc:
            raise formulaic_failure(f"cannot evaluate {rhs!r}", exc) from exc
        numbered = _number_sum_contrasts(list(matrices.model_spec.column_names), data)
        names = [r_column_name(c) for c in numbered]
        design = cls(rhs, names, matrices.model_spec, None, functions)
        return design, sp.csc_matrix(matrices, dtype=float) if sparse else np.asarray(matrices, dtype=float)

    @classmethod
    def from_numeric_columns(
        cls, rhs: Rhs, columns: Mapping[str, pd.Series], nrows: int
    ) -> tuple[Design, np.ndarray] | None:
        """The design and matrix of ``rhs`` when it is only an intercept and numeric columns, else None.

        This is :meth:`build`'s fast path, without formulaic and without a table: ``columns`` maps names
        to columns of ``nrows`` rows (a DataFrame does).
        """
        names = rhs.simple_columns
        found = None if names is None else _number_columns(columns, names)
        if found is None:
            return None
        labels = (["(Intercept)"] if rhs.intercept else []) + list(names)
        design = cls(rhs.text, labels, None, (["1"] if rhs.intercept else []) + list(names))
        return design, _stack_columns(nrows, rhs.intercept, found)

    @property
    def has_intercept(self) -> bool:
        return "(Intercept)" in self.column_names

    @property
    def terms(self) -> list[DesignTerm]:
        """The terms other than the intercept, in R's order (by degree, then as written; :meth:`build`
        wrote the formula so)."""
        if self.spec is None:
            return [
                DesignTerm(name, (name,), frozenset([name]), (i,), (Factor(name, eval_method="lookup"),))
                for i, name in enumerate(self.simple_columns)
                if name != "1"
            ]
        result = []
        for term, columns in self.spec.term_indices.items():
            factors = [f for f in term.factors if f.eval_method is not Factor.EvalMethod.LITERAL]
            if not factors:
                continue
            variables = tuple(_r_variable_label(f.expr) for f in factors)
            numeric = frozenset(
                label
                for f, label in zip(factors, variables)
                if self.spec.encoder_state.get(f.expr, (None,))[0] is Factor.Kind.NUMERICAL
            )
            result.append(DesignTerm(":".join(variables), variables, numeric, tuple(columns), tuple(factors)))
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
        self._check_levels(data)
        try:
            matrices = self.spec.get_model_matrix(
                data, context=evaluation_context(self.functions), na_action="ignore"
            )
        except FormulaicError as exc:
            raise formulaic_failure(f"cannot evaluate {self.rhs!r}", exc) from exc
        return np.asarray(matrices, dtype=float)

    def _check_levels(self, data: pd.DataFrame) -> None:
        """Refuse levels of a ``factor(x)`` the fit has not seen (formulaic would code them as the
        reference level); those of factor columns are checked when new data are matched to the fit."""
        for expr, (kind, state) in self.spec.encoder_state.items():
            wrapped = re.fullmatch(_CODED_FACTOR, expr)
            inner = wrapped.group(1) if wrapped else expr
            if kind is not Factor.Kind.CATEGORICAL or not re.fullmatch(r"(?:factor|as_factor)\(.+\)", inner):
                continue
            column = _factor_column(inner, data)
            values = pd.Series([] if column is None else column.dropna().unique(), dtype=object)
            unseen = sorted(set(values.astype(str)) - set(map(str, state["categories"])))
            if unseen:
                shown = ", ".join(unseen[:10])
                raise ValueError(f"newdata has levels of {r_names(inner)} not seen in the fit: {shown}")


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
