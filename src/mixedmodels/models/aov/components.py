"""Method-of-moments (ANOVA) estimates of the variance components, and what to do when one is negative.

The ANOVA method equates the mean squares of the random sources and Error to their expectations and
solves for the variances: ``C s2 = MS`` with C the expected-mean-square coefficients of those sources
(square: each random term and Error has its own source).  For balanced designs these are the classical
estimators (e.g. (MS[T] - MS[E]) / n), unbiased, and equal to REML's whenever they are all positive
(Searle, Casella & McCulloch 1992, sec. 6.8).  A negative estimate means a mean square came out
smaller than the combination that estimates its expectation without that component; a variance cannot
be negative, so the user chooses: keep it, set it to zero, or fit REML (``mm.lmer``), which keeps the
variances non-negative and re-estimates the others.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ...data.frame import build_frame
from ...errors import ModelMessage
from ...formula.parse import ParsedFormula, RandomTerm, Rhs
from ..lmm import LinearMixedModel, assemble, fit
from .design import AnovaDesign
from .ems import ERROR, RESIDUALS, SourceTable

__all__ = [
    "NEGATIVE_CHOICES",
    "fixed_in_random_sources",
    "moment_estimates",
    "fit_reml",
    "reml_estimates",
    "reml_formula",
    "variance_table",
]

NEGATIVE_CHOICES = ("keep", "zero", "reml")


def moment_estimates(table: SourceTable) -> pd.Series:
    """ANOVA estimates of Var(random terms) and Var(Error), from ``table``'s expected mean squares."""
    own = [table.index(c) for c in table.components[:-1]] + [table.index(RESIDUALS)]
    empty = [table.sources[i] for i in own if not table.df[i] > 0]
    if empty:
        raise ValueError(f"sources {empty} have no degrees of freedom; their variances are not estimable")
    try:
        values = np.linalg.solve(table.coefficients[own], table.mean_sq[own])
    except np.linalg.LinAlgError:
        raise ValueError("the expected-mean-square equations of the random sources are singular") from None
    return pd.Series(values, index=table.components)


def reml_formula(design: AnovaDesign) -> ParsedFormula:
    """The same model as lme4's terms: the fixed terms, and ``(1 | term)`` for each random term."""
    text = " + ".join(t.label for t in design.fixed_terms) or "1"
    fixed = Rhs(text, True, tuple(t.factors for t in design.fixed_terms))
    random = tuple(RandomTerm(Rhs.of_terms(True, ()), t.variables) for t in design.random_terms)
    return ParsedFormula(design.formula, design.response, fixed, (), ()).with_random(random)


def fit_reml(design: AnovaDesign) -> LinearMixedModel:
    """The ``lmer`` REML fit of the same model (``(1 | term)`` for each random term)."""
    if not design.random_terms:
        raise ValueError("the model has no random terms; name them in random=")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ModelMessage)
        return fit(assemble(build_frame(reml_formula(design), design.data, functions=design.functions)))


def reml_estimates(design: AnovaDesign, model: LinearMixedModel) -> pd.Series:
    """The variances of ``model`` (:func:`fit_reml`), indexed as the ANOVA estimates."""
    varcorr = model.varcorr
    variances = dict(zip(varcorr["group"], varcorr["vcov"]))
    return pd.Series(
        [variances[t.label] for t in design.random_terms] + [variances["Residual"]],
        index=[t.label for t in design.random_terms] + [ERROR],
    )


def fixed_in_random_sources(table: SourceTable) -> dict[str, tuple[str, ...]]:
    """Random sources whose expected mean square contains Q(fixed terms) (possible with Type I)."""
    return {c: table.fixed[table.index(c)] for c in table.components[:-1] if table.fixed[table.index(c)]}


def _explanation(
    moments: pd.Series, negative: str, balanced: bool, fixed_in_random: dict[str, tuple[str, ...]]
) -> str:
    below = [name for name, value in moments.items() if value < 0]
    lines = []
    for source, fixed in fixed_in_random.items():
        lines.append(
            f"E[MS({source})] contains Q({','.join(fixed)}): the ANOVA estimates take those fixed effects "
            "as zero (put the fixed terms first in the formula, or use Type III)."
        )
    if below:
        names = ", ".join(f"Var({name})" for name in below)
        lines.append(
            f"The ANOVA estimate of {names} is negative: its mean square is smaller than the combination "
            "that estimates its expectation without that component. A variance cannot be negative."
        )
    if negative == "keep" and below:
        lines.append("negative='zero' reports 0 instead; negative='reml' reports REML estimates.")
    if negative == "zero" and below:
        lines.append("Negative estimates are set to 0; the other estimates are left as they are.")
    if negative == "reml":
        if below:
            lines.append(
                "REML keeps every variance >= 0: the negative component goes to the boundary 0 and the "
                "others are re-estimated, so they differ from the ANOVA estimates."
            )
        if not balanced:
            lines.append(
                "The design is unbalanced: ANOVA estimates depend on the type of sums of squares, while "
                "REML weights the data by the fitted covariance, so the two differ."
            )
        if balanced and not below:
            lines.append("Balanced design with positive ANOVA estimates: REML gives the same values.")
    return " ".join(lines)


def variance_table(
    moments: pd.Series,
    negative: str,
    balanced: bool,
    reml: pd.Series | None = None,
    fixed_in_random: dict[str, tuple[str, ...]] | None = None,
) -> pd.DataFrame:
    """Reported variances (as ``negative`` says), their SDs and shares, and the ANOVA estimates.

    ``.attrs`` holds ``method`` and a ``note`` explaining negative estimates and differences from REML.
    """
    if negative == "reml":
        reported, method = reml, "REML"
    elif negative == "zero":
        reported, method = moments.clip(lower=0.0), "ANOVA, negative set to 0"
    else:
        reported, method = moments, "ANOVA"
    with np.errstate(invalid="ignore"):
        sd = np.sqrt(reported.where(reported >= 0))
    table = pd.DataFrame(
        {
            "Variance": reported,
            "Std.Dev.": sd,
            "Share": reported / reported.sum(),
            "ANOVA estimate": moments,
            "Negative": moments < 0,
        }
    )
    table.attrs["method"] = method
    table.attrs["note"] = _explanation(moments, negative, balanced, fixed_in_random or {})
    return table
