"""Type I, II and III ANOVA tables of the fixed effects, with lmerTest's hypothesis matrices.

Each term of the fixed-effects formula gets a contrast matrix L (columns = fixed effects) and one F
test of ``L beta = 0``; the matrices are built as lmerTest 3.1-3's ``anova()`` builds them
(Kuznetsova et al. 2017, J. Stat. Softw. 82(13); R/anova_contrasts.R and R/contrast_utils.R):

* type 1 (sequential): rows of the Doolittle factor of X'X for the term's columns;
* type 2: terms that no other term contains are tested marginally (L = rows of the identity); a
  contained term is tested after the terms unrelated to it and before those that contain it
  (Doolittle rows after reordering the columns);
* type 3: SAS's construction.  With treatment contrasts, L expresses the indicator ("rank-deficient")
  coding of every term in the model's parameters, and each term's columns are orthogonalized against
  the terms that contain it, higher-order terms first; other contrast codings are mapped from the
  treatment-coded parameters.

Containment (SAS's "The Four Types of Estimable Functions"): F1 is contained in F2 when F2 has all of
F1's variables and more, and both involve the same numeric variables.  As R, a variable counts for a
term only where the term's coding applies contrasts to it (R's ``factors`` attribute equal to 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..data.design import Design, DesignTerm, coded_by_contrasts
from ..data.terms import independent_columns
from ..errors import check_choice

if TYPE_CHECKING:
    from ..data.frame import ModelFrame
    from .view import InferenceView

__all__ = ["FixedTerms", "anova_contrasts", "anova_table", "doolittle_rows"]

INTERCEPT = "(Intercept)"


def zapsmall(values: np.ndarray, digits: int = 7) -> np.ndarray:
    """R's ``zapsmall``: round to ``digits`` significant digits of the largest absolute value."""
    values = np.asarray(values, dtype=float)
    largest = np.max(np.abs(values)) if values.size else 0.0
    if largest > 0:
        digits = max(0, digits - int(np.ceil(np.log10(largest))))
    return np.round(values, digits)


def doolittle_rows(crossprod: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Transpose of the unit lower-triangular L of the Doolittle factorization ``X'X = L U``.

    Row i of the result is the type I hypothesis for column i: the column adjusted for the columns
    before it.  As lmerTest's ``doolittle``, a pivot below ``eps`` zeroes its column of L, and entries
    of L below ``eps`` are set to zero.
    """
    n = crossprod.shape[0]
    if n == 1:
        return np.ones((1, 1))
    lower = np.eye(n)
    upper = np.zeros((n, n))
    for i in range(n):
        upper[i] = crossprod[i] - lower[i, :i] @ upper[:i]
        below = crossprod[i + 1 :, i] - lower[i + 1 :, :i] @ upper[:i, i]
        lower[i + 1 :, i] = 0.0 if abs(upper[i, i]) < eps else below / upper[i, i]
    lower[np.abs(lower) < eps] = 0.0
    return lower.T


class FixedTerms:
    """The fixed-effects terms of a model, their columns in X and their containment structure."""

    def __init__(self, design: Design, kept_columns: np.ndarray):
        self.has_intercept = design.has_intercept
        position = {int(c): i for i, c in enumerate(kept_columns)}
        self.terms: list[DesignTerm] = list(design.terms)
        self.columns: dict[str, np.ndarray] = {}
        self.contrasted: dict[str, frozenset[str]] = {}  # the variables R codes with contrasts, per term
        earlier: list[frozenset[str]] = []
        for term in self.terms:
            variables = frozenset(term.variables)
            self.contrasted[term.label] = frozenset(
                v for v in term.variables if coded_by_contrasts(variables, v, earlier)
            )
            earlier.append(variables)
            self.columns[term.label] = np.array([position[c] for c in term.columns if c in position], int)
        self.labels = [t.label for t in self.terms]
        if self.has_intercept:
            intercept = design.column_names.index(INTERCEPT)
            self.columns[INTERCEPT] = np.array([position[intercept]] if intercept in position else [], int)

    def contained_in(self, label: str) -> list[str]:
        """Labels of the terms that contain term ``label`` (lmerTest's ``containment``)."""
        inner = next(t for t in self.terms if t.label == label)
        inner_coded = self.contrasted[label]
        result = []
        for outer in self.terms:
            outer_coded = self.contrasted[outer.label]
            if (
                inner_coded <= outer_coded
                and outer_coded - inner_coded
                and inner_coded & inner.numeric == outer_coded & outer.numeric
            ):
                result.append(outer.label)
        return result

    def column_terms(self, ncols: int) -> list[str]:
        """The term owning each column of X."""
        owner = [""] * ncols
        for label, columns in self.columns.items():
            for c in columns:
                owner[c] = label
        return owner


def _type1(terms: FixedTerms, x: np.ndarray) -> dict[str, np.ndarray]:
    rows = doolittle_rows(x.T @ x)
    return {label: rows[terms.columns[label]] for label in terms.labels}


def _type2(terms: FixedTerms, x: np.ndarray) -> dict[str, np.ndarray]:
    p = x.shape[1]
    result = {}
    for label in terms.labels:
        containing = terms.contained_in(label)
        if not containing:
            result[label] = np.eye(p)[terms.columns[label]]
            continue
        # columns reordered as [unrelated, term, terms containing it]; Doolittle rows of the term
        last = np.concatenate([terms.columns[t] for t in [label, *containing]])
        order = np.concatenate([np.setdiff1d(np.arange(p), last), last])
        reordered = doolittle_rows(x[:, order].T @ x[:, order])
        rows = reordered[len(order) - len(last) : len(order) - len(last) + len(terms.columns[label])]
        back = np.empty((rows.shape[0], p))
        back[:, order] = rows
        result[label] = back
    return result


def _treatment_design(frame: ModelFrame) -> tuple[Design, np.ndarray, pd.DataFrame, np.ndarray]:
    """The fixed-effects design remade with treatment contrasts for every factor: the design, its
    matrix reduced to full column rank, the data it was built on and the kept columns."""
    data = frame.data.copy()
    for column in data.columns:
        if isinstance(data[column].dtype, pd.CategoricalDtype) and data[column].cat.ordered:
            data[column] = data[column].cat.as_unordered()
    design, x = Design.build(frame.formula.fixed, data, functions=frame.functions)
    if not design.treatment_coded:
        raise ValueError(
            "type 3 tests need the factors' contrasts to be remade as treatment contrasts, which is not "
            "possible for contrasts written in the formula (C(x, ...)); use type 1 or 2"
        )
    kept = independent_columns(x)
    return design, x[:, kept], data, kept


def _type3(frame: ModelFrame, terms: FixedTerms) -> dict[str, np.ndarray]:
    """lmerTest's ``get_contrasts_type3`` / ``extract_contrasts_type3``."""
    if frame.fixed_design.treatment_coded:
        design, x, data, kept = frame.fixed_design, frame.x, frame.data, frame.kept_columns
        treatment_terms = terms
    else:
        design, x, data, kept = _treatment_design(frame)
        treatment_terms = FixedTerms(design, kept)
    names = [design.column_names[i] for i in kept]
    # the indicator coding of every term ("rank-deficient X"), intercept first
    full_names = [INTERCEPT] if treatment_terms.has_intercept else []
    full_blocks = [np.ones((len(data), 1))] if treatment_terms.has_intercept else []
    for term in treatment_terms.terms:
        full, block = Design.build_term(term, data, functions=frame.functions)
        full_names += full.column_names
        full_blocks.append(block)
    full_x = np.hstack(full_blocks)
    basic = zapsmall(np.linalg.lstsq(x, full_x, rcond=None)[0].T)  # (indicator columns) x p
    by_degree = sorted(treatment_terms.terms, key=lambda t: -len(t.variables))  # stable within a degree
    for term in by_degree:
        containing = treatment_terms.contained_in(term.label)
        if not containing:
            continue
        own = treatment_terms.columns[term.label]
        others = np.concatenate([treatment_terms.columns[t] for t in containing])
        if len(own) == 0:
            continue
        fitted = basic[:, others] @ np.linalg.lstsq(basic[:, others], basic[:, own], rcond=None)[0]
        basic[:, own] = zapsmall(basic[:, own] - fitted)
    rows_for = {name: i for i, name in enumerate(full_names)}
    square = basic[[rows_for[name] for name in names]]  # p x p, rows = treatment parameters
    result = {}
    for label in terms.labels:
        block = square[:, treatment_terms.columns[label]].T
        result[label] = block[np.abs(block).sum(axis=1) > 1e-8]
    if design is not frame.fixed_design:
        mapping = zapsmall(np.linalg.lstsq(x, frame.x, rcond=None)[0])
        result = {label: block @ mapping for label, block in result.items()}
    return result


def anova_contrasts(frame: ModelFrame, type: int = 3) -> dict[str, np.ndarray]:
    """Hypothesis matrix of each fixed-effect term of the model ``frame`` for a type 1, 2 or 3 ANOVA
    (lmerTest's)."""
    check_choice("type", type, (1, 2, 3))
    terms = FixedTerms(frame.fixed_design, frame.kept_columns)
    x = frame.x
    if type == 1 or x.shape[1] <= 1 or len(terms.labels) <= 1:
        return _type1(terms, x)
    if type == 2:
        return _type2(terms, x)
    return _type3(frame, terms)


def anova_table(model: InferenceView, type: int = 3, ddf: str = "satterthwaite") -> pd.DataFrame:
    """One F test per fixed-effect term: Sum Sq, Mean Sq, NumDF, DenDF, F value, Pr(>F).

    As lmerTest, Mean Sq = F sigma^2 and Sum Sq = Mean Sq NumDF; a term without estimable columns
    gets a row of NaN; a model with only an intercept gets an empty table.
    """
    from .ddf import f_table, f_test

    tests = {
        label: f_test(model, contrasts, ddf, term=label)
        for label, contrasts in anova_contrasts(model.frame, type).items()
    }
    return f_table(tests, model.sigma)
