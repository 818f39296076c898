"""F tests of a mixed-model ANOVA with denominators chosen from the expected mean squares.

As PROC GLM's ``RANDOM / TEST``: under H0 a source's expected mean square loses its own part (Var(u)
for a random term u, every Q(.) for a fixed term).  The denominator is the combination of mean squares
of the random terms and Error whose own variance components are the ones left, with weights solved
from the expected-mean-square coefficients.  When that is a single mean square the test is exact (for
balanced data); otherwise the denominator is synthesized and gets Satterthwaite's (1946) degrees of
freedom, which are fractional.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .ems import ERROR, RESIDUALS, SourceTable

__all__ = ["Denominator", "denominator", "mixed_tests", "satterthwaite_ms_df"]

_TOL = 1e-9


def satterthwaite_ms_df(weights: np.ndarray, mean_sq: np.ndarray, df: np.ndarray) -> float:
    """Satterthwaite's df of sum_i w_i MS_i: (sum_i w_i MS_i)^2 / sum_i (w_i MS_i)^2 / df_i."""
    terms = np.asarray(weights, dtype=float) * np.asarray(mean_sq, dtype=float)
    return float(np.sum(terms) ** 2 / np.sum(terms**2 / np.asarray(df, dtype=float)))


@dataclass(frozen=True)
class Denominator:
    """sum_i weights[i] MS(sources[i]), its value and degrees of freedom."""

    sources: tuple[str, ...]
    weights: tuple[float, ...]
    mean_sq: float
    df: float

    @property
    def synthesized(self) -> bool:
        return len(self.sources) > 1

    @property
    def label(self) -> str:
        """``MS(A:B)`` or ``MS(A:B) + MS(A:C) - MS(A:B:C)`` or ``0.92 MS(A:B) + 0.08 MS(Residuals)``."""
        parts = []
        for i, (source, w) in enumerate(zip(self.sources, self.weights)):
            text = ("" if abs(abs(w) - 1) < 1e-8 else f"{abs(w):.4g} ") + f"MS({source})"
            if i == 0:
                parts.append(("-" if w < 0 else "") + text)
            else:
                parts.append(("- " if w < 0 else "+ ") + text)
        return " ".join(parts)


def denominator(table: SourceTable, source: str) -> Denominator | None:
    """The denominator for testing ``source``, or None when no combination has the right expectation."""
    random = table.components[:-1]
    own = {component: component for component in random} | {ERROR: RESIDUALS}
    target = table.coefficients[table.index(source)].copy()
    if source in random:
        target[table.components.index(source)] = 0.0
    scale = np.max(np.abs(target))
    needed = [c for c, value in zip(table.components, target) if abs(value) > _TOL * scale]
    rows = [table.index(own[c]) for c in needed]
    if any(table.fixed[r] or not table.df[r] > 0 for r in rows):
        return None
    columns = [table.components.index(c) for c in needed]
    try:
        weights = np.linalg.solve(table.coefficients[np.ix_(rows, columns)].T, target[columns])
    except np.linalg.LinAlgError:
        return None
    if np.max(np.abs(table.coefficients[rows].T @ weights - target)) > 1e-8 * scale:
        return None
    keep = np.abs(weights) > _TOL
    rows, weights = np.asarray(rows)[keep], weights[keep]
    mean_sq = table.mean_sq[rows]
    return Denominator(
        sources=tuple(table.sources[r] for r in rows),
        weights=tuple(float(w) for w in weights),
        mean_sq=float(weights @ mean_sq),
        df=satterthwaite_ms_df(weights, mean_sq, table.df[rows]),
    )


def mixed_tests(table: SourceTable) -> tuple[pd.DataFrame, dict[str, Denominator | None]]:
    """The F test of every source (Residuals excepted) and the denominators used."""
    random = set(table.components[:-1])
    records, denominators = [], {}
    for i, source in enumerate(table.sources[:-1]):
        den = denominator(table, source)
        denominators[source] = den
        notes = []
        others = [f for f in table.fixed[i] if f != source]
        if others:
            notes.append(f"assumes zero: {', '.join(others)}")
        f_value = p_value = np.nan
        if den is None:
            notes.append("no combination of mean squares has the expectation under H0")
        elif den.mean_sq <= 0:
            notes.append("the synthesized denominator is not positive")
        else:
            f_value = table.mean_sq[i] / den.mean_sq
            p_value = stats.f.sf(f_value, table.df[i], den.df)
        records.append(
            {
                "Effect": "random" if source in random else "fixed",
                "Df": table.df[i],
                "Mean Sq": table.mean_sq[i],
                "Error term": den.label if den else "",
                "Den Df": den.df if den else np.nan,
                "Den Mean Sq": den.mean_sq if den else np.nan,
                "F value": f_value,
                "Pr(>F)": p_value,
                "Note": "; ".join(notes),
            }
        )
    return pd.DataFrame.from_records(records, index=table.sources[:-1]), denominators
