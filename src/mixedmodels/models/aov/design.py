"""The designed experiment behind an ANOVA: terms, their coded columns and their cross-products.

A formula such as ``score ~ Machine * Worker`` (PROC GLM's MODEL statement) names every source of
variation; ``random=`` (the RANDOM statement) says which terms are random.  The fixed-effects design of
the project (:class:`~mixedmodels.design.Design`, formulaic with R's coding) gives the coded columns X,
here with sum-to-zero contrasts so that Type III sums of squares are SAS's.  Each term also gets its
*cell* columns F: the indicators of its observed level combinations times its numeric variables, which
is the term's block of SAS's non-full-rank parameterization (Z_u for a random term).

X and F are sparse (a random factor with many levels adds many columns, each with few non-zeros), and
all the sums of squares and expected mean squares need is ``X'X``, ``X'y``, ``y'y``, ``X'F_k`` and
``tr(F_k'F_k)``: p x p and p x (cells) blocks.  Nothing of size N x N, and no dense N x p matrix, is formed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ...data.design import Design, DesignTerm
from ...data.tables import check_finite, complete_rows
from ...data.terms import grouping_factor
from ...errors import FormulaError, check_names
from ...formula.parse import Rhs, parse_formula

__all__ = ["AnovaDesign", "build_design"]


@dataclass
class AnovaDesign:
    """A model formula materialized for the ANOVA, reduced to cross-products.

    y is centred at its mean (``response_mean``), which leaves every corrected sum of squares unchanged
    and keeps them accurate.  ``x_cells[k]`` is X'F_k and ``cells_trace[k]`` tr(F_k'F_k) for the cell
    columns F_k of ``terms[k]`` (the intercept is not a source and has no entry).
    """

    formula: str
    response: str
    data: pd.DataFrame  # the rows used, random-term variables as categories
    terms: list[DesignTerm]  # the sources of variation: R's labels, variables, coded columns in X
    random_labels: frozenset[str]  # the random ones
    column_names: list[str]
    gram: np.ndarray  # X'X
    xty: np.ndarray  # X'y
    yty: float  # y'y: the corrected total sum of squares
    x_cells: list[np.ndarray]
    cells_trace: np.ndarray
    cell_counts: list[np.ndarray | None]  # observations per cell of each classification term
    nobs: int
    response_mean: float
    n_missing: int
    functions: dict[str, Callable]  # the caller's own functions the formula may call

    @property
    def ncols(self) -> int:
        return len(self.column_names)

    @property
    def equal_cell_counts(self) -> bool:
        """Every classification term has its observed level combinations equally often."""
        return all(np.ptp(counts) == 0 for counts in self.cell_counts if counts is not None)

    def is_random(self, term: DesignTerm) -> bool:
        return term.label in self.random_labels

    @property
    def random_terms(self) -> list[DesignTerm]:
        return [t for t in self.terms if self.is_random(t)]

    @property
    def fixed_terms(self) -> list[DesignTerm]:
        return [t for t in self.terms if not self.is_random(t)]


def _term_variables(name: str) -> frozenset[str]:
    """Variables of a term written ``a:b``, ``a*b`` or SAS's nested ``b(a)``."""
    nested = re.fullmatch(r"\s*([^()]+?)\s*\((.+)\)\s*", name)
    text = f"{nested.group(1)}:{nested.group(2)}" if nested else name
    return frozenset(part.strip().strip("`") for part in re.split(r"[:*\s]+", text.strip()) if part.strip())


def _match_random(random: Sequence[str], labels: dict[frozenset[str], str]) -> set[str]:
    chosen = set()
    for name in random:
        if not isinstance(name, str):
            raise TypeError(f"random terms must be strings such as 'sire' or 'Machine:Worker', got {name!r}")
        label = labels.get(_term_variables(name))
        if label is None:
            known = ", ".join(labels.values()) or "none"
            raise FormulaError(f"random term {name!r} is not a term of the formula (its terms: {known})")
        chosen.add(label)
    return chosen


def _as_factor(column: pd.Series) -> pd.Series:
    """R's ``factor()``: categories kept, other values become categories in sorted order."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column
    return pd.Series(pd.Categorical(column), index=column.index, name=column.name)


def _is_factor(frame: pd.DataFrame, variable: str) -> bool:
    return variable in frame.columns and isinstance(frame[variable].dtype, pd.CategoricalDtype)


def _cell_columns(
    frame: pd.DataFrame, term: DesignTerm, functions: Mapping[str, Callable]
) -> tuple[sp.csr_matrix, bool]:
    """F for a term: indicators of the observed combinations of its factors times its numeric part;
    and whether the term is made of factors only."""
    factors = tuple(v for v in term.variables if _is_factor(frame, v))
    numeric = tuple(f for v, f in zip(term.variables, term.factors) if v not in factors)
    n = len(frame)
    if factors:
        grouping = grouping_factor(frame, factors, term.label)
        codes, nlevels = grouping.codes, grouping.nlevels
    else:
        codes, nlevels = np.zeros(n, dtype=np.int64), 1
    if numeric:  # the term's numeric variables, multiplied
        z = Design.build(Rhs.of_terms(False, (numeric,)), frame, functions=functions)[1]
    else:
        z = np.ones((n, 1))
    k = z.shape[1]
    columns = (codes[:, None] * k + np.arange(k)).ravel()
    cells = sp.csr_matrix((z.ravel(), (np.repeat(np.arange(n), k), columns)), shape=(n, nlevels * k))
    return cells, not numeric


def build_design(
    formula: str,
    data,
    random: str | Sequence[str] = (),
    factors: str | Sequence[str] = (),
    functions: Mapping[str, Callable] | None = None,
) -> AnovaDesign:
    """Materialize ``formula`` (every source as a term) with ``random`` terms and ``factors`` columns.

    Variables of random terms and those listed in ``factors`` are classification variables (PROC
    GLM's CLASS): numeric columns among them become factors with sorted levels, as R's ``factor()``.
    ``functions`` are the caller's own functions the formula may call.
    """
    random = check_names("random", random)
    factors = check_names("factors", factors)
    parsed = parse_formula(formula)
    if parsed.random:
        raise FormulaError(
            f"{formula!r} has (expr | group) terms; write every source as a term of the formula and "
            "name the random ones in random=, e.g. aov('y ~ A * B', data, random=['B', 'A:B'])"
        )
    if parsed.offsets:
        raise FormulaError(f"an analysis of variance has no offset; remove offset() from {formula!r}")
    if not parsed.fixed.intercept:
        raise FormulaError(f"{formula!r} has no intercept; sums of squares here are corrected for the mean")
    if not parsed.fixed.terms:
        raise FormulaError(f"{formula!r} has no terms besides the intercept")
    variables = [tuple(factor.strip("`") for factor in term) for term in parsed.fixed.labels]
    labels = [":".join(v) for v in variables]
    random_labels = _match_random(random, {frozenset(v): label for v, label in zip(variables, labels)})

    rows = complete_rows(parsed, data, functions=functions)
    frame = rows.table
    classification = set(factors)
    for term_variables, label in zip(variables, labels):
        if label in random_labels:
            classification.update(term_variables)
    if parsed.response in factors:
        raise ValueError(
            f"factors: {parsed.response!r} is the response of {formula!r}, not a classification variable"
        )
    unknown = sorted(set(factors) - set(frame.columns))
    if unknown:
        raise ValueError(f"factors {unknown} are not variables of {formula!r}")
    for name in sorted(classification):
        if name not in frame.columns:
            raise FormulaError(f"random terms must be made of columns; {name!r} is not a column")
        frame[name] = _as_factor(frame[name])

    _, y = rows.response(parsed)
    design, x = Design.build(parsed.fixed, frame, sum_contrasts=True, sparse=True, functions=rows.functions)
    check_finite(x, "model matrix", design.column_names)
    if design.spec is None:  # intercept and numeric columns: one column per term
        slices = [slice(i, i + 1) for i in range(x.shape[1])]
    else:
        slices = list(design.spec.term_slices.values())
    slices = slices[1:]  # the intercept comes first
    if len(slices) != len(labels):
        raise FormulaError(f"cannot match the columns of {formula!r} to its terms")

    terms = [
        DesignTerm(
            label, v, frozenset(x for x in v if not _is_factor(frame, x)), tuple(range(s.start, s.stop)), f
        )
        for label, v, f, s in zip(labels, variables, parsed.fixed.terms, slices)
    ]
    cells = [_cell_columns(frame, term, rows.functions) for term in terms]
    mean = float(np.mean(y))
    centred = y - mean
    xt = x.T.tocsr()
    return AnovaDesign(
        formula=formula,
        response=parsed.response,
        data=frame,
        terms=terms,
        random_labels=frozenset(random_labels),
        column_names=design.column_names,
        gram=(xt @ x).toarray(),
        xty=xt @ centred,
        yty=float(centred @ centred),
        x_cells=[(xt @ f).toarray() for f, _ in cells],
        cells_trace=np.array([f.multiply(f).sum() for f, _ in cells]),
        cell_counts=[np.diff(f.tocsc().indptr) if pure else None for f, pure in cells],
        nobs=len(y),
        response_mean=mean,
        n_missing=rows.n_missing,
        functions=rows.functions,
    )
