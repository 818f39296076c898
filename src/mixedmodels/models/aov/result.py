"""``mm.aov``: the classical ANOVA of a designed experiment with fixed and random terms."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import stats

from ...errors import check_choice, check_probability
from ...report.text import format_column, text_table
from ..lmm import LinearMixedModel
from .components import (
    NEGATIVE_CHOICES,
    fit_reml,
    fixed_in_random_sources,
    moment_estimates,
    reml_estimates,
    variance_table,
)
from .design import AnovaDesign, build_design
from .ems import RESIDUALS, SourceTable, source_table
from .ftests import Denominator, mixed_tests
from .oneway import OneWayRandom

__all__ = ["AovReport", "AovResult", "aov"]


def aov(
    formula: str,
    data,
    random: str | Sequence[str] = (),
    ss_type: int = 3,
    factors: str | Sequence[str] = (),
    alpha: float = 0.05,
    functions: Mapping[str, Callable] | None = None,
) -> AovResult:
    """Analysis of variance of a designed experiment, with random terms as in PROC GLM's RANDOM / TEST.

    ``formula`` names every source of variation (``"y ~ A * B"``, nested ``"y ~ batch/cask"``);
    ``random`` lists the random terms (``["B", "A:B"]``; ``"A*B"`` and SAS's ``"cask(batch)"`` are
    accepted too).  Variables of random terms, and those in ``factors``, are classification variables
    even when the column is numeric.  ``ss_type`` (1 or 3) chooses the sums of squares behind the
    expected mean squares, the tests and the variance components; Type III is SAS PROC GLM's (and
    ``car::Anova(type = 3)`` with ``contr.sum``/``contr.poly``) and needs a design without empty cells.
    ``functions`` are your own functions the formula may call, beyond R's and NumPy's.

    >>> import mixedmodels as mm
    >>> res = mm.aov("bw ~ sire", mm.datasets.load("sires"), random=["sire"])
    >>> print(res.ems.loc["sire", "Expected Mean Square"])
    Var(Error) + 8 Var(sire)
    """
    alpha = check_probability("alpha", alpha)
    design = build_design(formula, data, random, factors, functions)
    result = AovResult(design, ss_type=ss_type, alpha=alpha)
    result.source_table()  # checks ss_type and, for Type III, the rank of the design
    return result


_ROMAN = {1: "I", 3: "III"}


def _coefficient_text(value: float) -> str:
    if abs(value - round(value)) < 1e-8 * max(1.0, abs(value)):
        return "" if round(value) == 1 else f"{round(value):d} "
    return f"{value:.4f}".rstrip("0").rstrip(".") + " "


def _format_p(values) -> list[str]:
    """R's format.pval with 4 digits: ``0.03087``, ``<2e-16``."""
    return ["" if not np.isfinite(p) else ("<2e-16" if p < 2.2e-16 else f"{p:.4g}") for p in values]


def _format_f(values) -> list[str]:
    return ["" if not np.isfinite(v) else f"{v:.4f}" for v in values]


class AovResult:
    """Sums of squares, expected mean squares, F tests and variance components of one design.

    Tables are DataFrames: :attr:`table` (or :meth:`anova` for another SS type), :attr:`ems`,
    :attr:`tests`, :meth:`variance_components`; :meth:`one_way` gives the one-way random model's
    intervals.  ``print(result)`` shows them all.
    """

    def __init__(self, design: AnovaDesign, ss_type: int = 3, alpha: float = 0.05):
        self.design = design
        self.ss_type = ss_type
        self.alpha = alpha
        self._source_tables: dict[int, SourceTable] = {}

    # -- the design ---------------------------------------------------------------------------------
    @property
    def formula(self) -> str:
        return self.design.formula

    @property
    def nobs(self) -> int:
        return self.design.nobs

    @property
    def random(self) -> list[str]:
        """The random terms, in model order."""
        return [t.label for t in self.design.random_terms]

    @property
    def balanced(self) -> bool:
        """Every classification term has its observed cells equally often, and no column is aliased."""
        return self.design.equal_cell_counts and self.source_table(1).rank == self.design.ncols

    # -- sums of squares and expected mean squares ---------------------------------------------------
    def source_table(self, ss_type: int | None = None) -> SourceTable:
        """Df, sums of squares and expected-mean-square coefficients (``ss_type`` defaults to the fit's)."""
        ss_type = check_choice("ss_type", self.ss_type if ss_type is None else ss_type, (1, 3))
        if ss_type not in self._source_tables:
            self._source_tables[ss_type] = source_table(self.design, ss_type)
        return self._source_tables[ss_type]

    def anova(self, ss_type: int | None = None) -> pd.DataFrame:
        """R's ANOVA table: Df, Sum Sq, Mean Sq, F value and Pr(>F), every F against MS(Residuals).

        These are the fixed-effects F tests of ``anova(lm)`` / ``car::Anova`` / PROC GLM's Type I and III
        tables; :attr:`tests` has the mixed-model tests.
        """
        table = self.source_table(ss_type)
        ms = table.mean_sq
        residual = table.index(RESIDUALS)
        with np.errstate(divide="ignore", invalid="ignore"):
            f = ms / ms[residual]
        f[residual] = np.nan
        p = stats.f.sf(f, table.df, table.df[residual])
        return pd.DataFrame(
            {"Df": table.df, "Sum Sq": table.sum_sq, "Mean Sq": ms, "F value": f, "Pr(>F)": p},
            index=table.sources,
        )

    @property
    def table(self) -> pd.DataFrame:
        """The ANOVA table for the result's ``ss_type``."""
        return self.anova()

    def expected_mean_squares(self, ss_type: int | None = None) -> pd.DataFrame:
        """Coefficient of each Var(component) in E[MS] per source, the Q(fixed terms) and SAS's text."""
        table = self.source_table(ss_type)
        frame = pd.DataFrame(
            table.coefficients, index=table.sources, columns=[f"Var({c})" for c in table.components]
        )
        frame["Q"] = [", ".join(f) for f in table.fixed]
        frame["Expected Mean Square"] = [self._ems_text(table, i) for i in range(len(table.sources))]
        return frame

    @staticmethod
    def _ems_text(table: SourceTable, row: int) -> str:
        """``Var(Error) + 3 Var(Machine:Worker) + Q(Machine)``: Error, random terms innermost first, Q."""
        parts = ["Var(Error)"]
        for j in reversed(range(len(table.components) - 1)):
            value = table.coefficients[row, j]
            if value != 0:
                parts.append(f"{_coefficient_text(value)}Var({table.components[j]})")
        if table.fixed[row]:
            parts.append(f"Q({','.join(table.fixed[row])})")
        return " + ".join(parts)

    @property
    def ems(self) -> pd.DataFrame:
        """The expected mean squares for the result's ``ss_type``."""
        return self.expected_mean_squares()

    @cached_property
    def _tests(self) -> tuple[pd.DataFrame, dict[str, Denominator | None]]:
        return mixed_tests(self.source_table())

    @property
    def tests(self) -> pd.DataFrame:
        """F test of every source with its denominator from the expected mean squares (PROC GLM's TEST)."""
        return self._tests[0]

    @property
    def denominators(self) -> dict[str, Denominator | None]:
        """Per source, the mean squares (and weights) of its test's denominator; None if there is none."""
        return self._tests[1]

    # -- variance components -------------------------------------------------------------------------
    @cached_property
    def _moments(self) -> pd.Series:
        return moment_estimates(self.source_table())

    @cached_property
    def reml_fit(self) -> LinearMixedModel:
        """The REML fit of the same model (``mm.lmer`` with ``(1 | term)`` for each random term)."""
        return fit_reml(self.design)

    def variance_components(self, negative: str = "keep") -> pd.DataFrame:
        """Method-of-moments (ANOVA) estimates of Var(random terms) and Var(Error).

        ``negative``: ``"keep"`` reports the ANOVA estimates as they are, ``"zero"`` sets negative ones to
        0, ``"reml"`` reports REML estimates (``mm.lmer`` with ``(1 | term)`` for each random term).  The
        column ``Negative`` flags negative ANOVA estimates; ``.attrs["note"]`` says why the methods differ.
        """
        check_choice("negative", negative, NEGATIVE_CHOICES)
        if not self.random:
            raise ValueError("the model has no random terms; name them in random=")
        reml = reml_estimates(self.design, self.reml_fit) if negative == "reml" else None
        fixed = fixed_in_random_sources(self.source_table())
        return variance_table(self._moments, negative, self.balanced, reml, fixed)

    # -- one-way random model --------------------------------------------------------------------------
    def one_way(self, alpha: float | None = None) -> OneWayRandom:
        """The one-way random model's estimates and intervals (balanced ``y ~ group`` with group random)."""
        terms = self.design.terms
        if len(terms) != 1 or not self.design.is_random(terms[0]):
            raise ValueError("one_way() needs a one-way random model: 'y ~ group' with random=['group']")
        if not self.balanced:
            raise ValueError(
                "one_way() needs equal group sizes: its intervals are exact only for balanced data"
            )
        table = self.source_table()
        group = terms[0].label
        ngroups = int(table.df[0]) + 1
        return OneWayRandom(
            response=self.design.response,
            group=group,
            groups=ngroups,
            n_per_group=self.nobs // ngroups,
            ms_group=float(table.mean_sq[0]),
            ms_error=float(table.mean_sq[1]),
            mean=self.design.response_mean,
            alpha=self.alpha if alpha is None else check_probability("alpha", alpha),
        )

    # -- printing -----------------------------------------------------------------------------------------
    def summary(self, negative: str = "keep") -> AovReport:
        """The printed report: ANOVA table, expected mean squares, tests, variance components (and the
        one-way model's intervals when it applies); ``negative`` as in :meth:`variance_components`."""
        return AovReport(self, check_choice("negative", negative, NEGATIVE_CHOICES))

    def __str__(self) -> str:
        return str(self.summary())

    def __repr__(self) -> str:
        random = ", ".join(self.random) or "none"
        return f"<AovResult {self.formula!r}, random: {random}, Type {_ROMAN[self.ss_type]}, {self.nobs} obs>"

    def to_dict(self, negative: str = "keep") -> dict:
        """All tables as plain Python types (for JSON)."""

        def records(frame: pd.DataFrame) -> list[dict]:
            out = frame.reset_index(names="Source").astype(object)
            return out.where(pd.notna(out), None).to_dict(orient="records")

        result = {
            "formula": self.formula,
            "random": self.random,
            "ss_type": self.ss_type,
            "nobs": self.nobs,
            "n_missing": self.design.n_missing,
            "balanced": self.balanced,
            "anova": records(self.table),
            "ems": records(self.ems),
            "tests": records(self.tests),
        }
        if self.random:
            components = self.variance_components(negative)
            result["variance_components"] = {
                "method": components.attrs["method"],
                "note": components.attrs["note"],
                "table": records(components),
            }
        if self._is_one_way:
            result["one_way"] = records(self.one_way().table)
        return result

    @property
    def _is_one_way(self) -> bool:
        terms = self.design.terms
        return len(terms) == 1 and self.design.is_random(terms[0]) and self.balanced


class AovReport:
    """The printed report of an :class:`AovResult`."""

    def __init__(self, result: AovResult, negative: str = "keep"):
        self.result = result
        self.negative = negative

    def _anova_lines(self) -> list[str]:
        r = self.result
        table = r.table
        columns = {
            "Df": [f"{d:g}" for d in table["Df"]],
            "Sum Sq": format_column(table["Sum Sq"], 7),
            "Mean Sq": format_column(table["Mean Sq"], 7),
            "F value": _format_f(table["F value"]),
            "Pr(>F)": _format_p(table["Pr(>F)"]),
        }
        lines = [
            f"Analysis of Variance Table (Type {_ROMAN[r.ss_type]} sums of squares)",
            "",
            f"Response: {r.design.response}",
        ]
        lines += text_table(columns, list(table.index))
        if r.random:
            lines.append(
                "(F values against MS(Residuals), as for fixed effects; the mixed-model tests follow.)"
            )
        return lines

    def _ems_lines(self) -> list[str]:
        r = self.result
        ems = r.ems
        lines = ["", f"Expected Mean Squares (Type {_ROMAN[r.ss_type]})"]
        lines += text_table(
            {"Expected Mean Square": list(ems["Expected Mean Square"])},
            list(ems.index),
            left={"Expected Mean Square"},
        )
        return lines

    def _test_lines(self) -> list[str]:
        tests = self.result.tests
        if tests.empty:
            return []
        columns = {
            "Df": [f"{d:g}" for d in tests["Df"]],
            "Mean Sq": format_column(tests["Mean Sq"], 7),
            "Error term": list(tests["Error term"]),
            "Den Df": [f"{d:.4g}" if np.isfinite(d) else "" for d in tests["Den Df"]],
            "Den Mean Sq": format_column(tests["Den Mean Sq"], 7),
            "F value": _format_f(tests["F value"]),
            "Pr(>F)": _format_p(tests["Pr(>F)"]),
        }
        lines = ["", "Tests with denominators from the expected mean squares"]
        lines += text_table(columns, list(tests.index), left={"Error term"})
        lines += [f"  {source}: {note}" for source, note in tests["Note"].items() if note]
        return lines

    def _component_lines(self) -> list[str]:
        r = self.result
        if not r.random:
            return []
        components = r.variance_components(self.negative)
        columns = {
            "Variance": format_column(components["Variance"], 6),
            "Std.Dev.": format_column(components["Std.Dev."], 6),
            "Share": [f"{v:.4f}" for v in components["Share"]],
        }
        if self.negative != "keep":
            columns["ANOVA estimate"] = format_column(components["ANOVA estimate"], 6)
        index = [f"{name}{' (negative)' if flag else ''}" for name, flag in components["Negative"].items()]
        lines = ["", f"Variance components ({components.attrs['method']} estimates)"]
        lines += text_table(columns, index)
        if components.attrs["note"]:
            lines.append(components.attrs["note"])
        if not r.balanced and self.negative != "reml":
            lines.append("Unbalanced design: ANOVA estimates depend on the type of sums of squares.")
        return lines

    def __str__(self) -> str:
        lines = self._anova_lines() + self._ems_lines() + self._test_lines() + self._component_lines()
        if self.result._is_one_way:
            lines += ["", str(self.result.one_way())]
        if self.result.design.n_missing:
            lines += ["", f"({self.result.design.n_missing} observations deleted due to missingness)"]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)
