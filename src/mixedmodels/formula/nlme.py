"""nlme's one-sided formulas ``~ covariate | groups`` for variance functions and correlation structures.

``~ age``, ``~ 1 | Subject``, ``~ Time | Rat``, ``~ x + y | field``, ``~ 1 | a/b`` (nested: the innermost
level is used), ``~ 1 | a*b`` (strata of a variance function: the interaction).  The covariate part is
an expression of the data (``log(x)``, ``fitted(.)`` for the fitted values); ``1`` means none.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..data.design import Design
from ..data.tables import check_finite, joined_labels, numeric_vector
from ..errors import FormulaError
from .parse import ParsedFormula, Rhs, _scan_top_level, parse_one_sided

__all__ = ["StructureForm", "parse_form", "with_random_argument"]

FITTED = "fitted(.)"


@dataclass(frozen=True)
class StructureForm:
    """A parsed ``~ covariate | groups`` formula."""

    text: str
    covariate: str | None  # right-hand side for the covariate(s); None for ``~ 1``
    groups: tuple[str, ...]  # grouping variables, outermost first
    group_separator: str  # "/" (nested) or "*" (strata: interaction)
    covariate_terms: Rhs | None = field(default=None, compare=False)  # the covariate parsed, but fitted(.)
    functions: Mapping[str, Callable] = field(default_factory=dict, compare=False)  # the caller's own

    def with_functions(self, functions: Mapping[str, Callable] | None) -> StructureForm:
        """The same form, whose covariate may call the caller's own ``functions`` (those of the fit)."""
        return replace(self, functions=dict(functions or {}))

    @property
    def uses_fitted(self) -> bool:
        return self.covariate is not None and self.covariate.replace(" ", "") in (FITTED, "fitted")

    @property
    def variables(self) -> list[str]:
        """Data columns the formula needs (the fitted values are not a column)."""
        names = list(self.groups)
        if self.covariate_terms is not None:
            names.extend(self.covariate_terms.names[0])
        return names

    def covariate_matrix(self, data: pd.DataFrame) -> np.ndarray:
        """The covariate columns (n, d) on ``data``, without an intercept."""
        if self.covariate is None or self.uses_fitted:
            raise ValueError(f"{self.text!r} has no data covariate")
        expression = self.covariate.strip()
        if expression in data.columns:
            matrix = numeric_vector(data, expression, "covariate")[:, None]
            check_finite(matrix, f"covariate {expression!r}")
            return matrix
        # each covariate as numbers, as nlme's getCovariate evaluates it (a logical one is 0 and 1); the
        # product of a term's variables for an interaction
        terms = self.covariate_terms.labels
        if not terms:
            raise FormulaError(f"the covariate of {self.text!r} has no columns")
        columns = [
            np.prod([Design.build_numeric(variable, data, self.functions)[1] for variable in term], axis=0)
            for term in terms
        ]
        matrix = np.column_stack(columns)
        check_finite(matrix, f"the covariate of {self.text!r}", [":".join(term) for term in terms])
        return matrix

    def group_labels(self, data: pd.DataFrame) -> np.ndarray:
        """One label per row for the groups ("1" for every row without groups)."""
        if not self.groups:
            return np.full(len(data), "1")
        return joined_labels(data, self.groups, self.group_separator).to_numpy(dtype=str)


def parse_form(text: str, what: str) -> StructureForm:
    """Parse ``~ covariate | groups`` (the ``~`` may be left out)."""
    if not isinstance(text, str):
        raise TypeError(
            f"the form of {what} must be a string such as '~ 1 | Subject', not {type(text).__name__}"
        )
    body = text.strip()
    if body.startswith("~"):
        body = body[1:]
    pieces = _scan_top_level(body, ("|",))
    if len(pieces) > 2:
        raise FormulaError(f"form {text!r} of {what} has more than one '|'")
    covariate = pieces[0][1].strip()
    if not covariate:
        raise FormulaError(f"form {text!r} of {what} has no covariate; write 1 for none, e.g. '~ 1 | g'")
    covariate = None if covariate == "1" else covariate
    groups: tuple[str, ...] = ()
    separator = "/"
    if len(pieces) == 2:
        grouping = pieces[1][1].strip()
        if "*" in grouping and "/" in grouping:
            raise FormulaError(f"form {text!r} of {what} mixes '/' and '*' in its groups")
        separator = "*" if "*" in grouping else "/"
        groups = tuple(g.strip().strip("`") for g in re.split(r"[/*]", grouping))
        if not all(groups):
            raise FormulaError(f"form {text!r} of {what} has an empty grouping variable")
    form = StructureForm(text.strip(), covariate, groups, separator)
    if covariate is None or form.uses_fitted:
        return form
    return replace(form, covariate_terms=Rhs.parse(covariate, f"the covariate of {form.text!r}"))


def with_random_argument(formula: ParsedFormula, random: str) -> ParsedFormula:
    """``formula`` with the random-effects terms of lme's ``random=``: nlme's ``"~ age | Subject"`` or
    lme4's bars ``"(age | Subject)"``; the formula's text is the two written together."""
    if not isinstance(random, str):
        raise TypeError(f"random must be a string such as '~ age | Subject', not {type(random).__name__}")
    terms = parse_one_sided(random)
    if not terms.random:
        ways = "'~ terms | group'" + ("" if random.strip().startswith("~") else " or '(terms | group)'")
        raise FormulaError(f"random {random!r} needs a grouping factor: {ways}")
    if terms.fixed.terms or not terms.fixed.intercept or terms.offsets:
        raise FormulaError(f"random {random!r} may hold only random-effects terms, '~ terms | group'")
    bars = random.strip()
    bars = f"({bars[1:].strip()})" if bars.startswith("~") else bars
    return replace(formula, text=f"{formula.text} + {bars}", random=formula.random + terms.random)
