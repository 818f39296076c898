"""lme4-style printed summary of a fitted linear mixed model, with its tables as DataFrames."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from .lmm import LinearMixedModel

__all__ = ["LmerSummary", "abbreviate"]


def abbreviate(name: str, width: int = 6) -> str:
    """Short column labels for the correlation table (R's ``abbreviate``, simplified)."""
    if name == "(Intercept)":
        return "(Intr)"
    if len(name) <= width:
        return name
    head, tail = name[0], name[1:]
    for vowel_free in (tail.replace(c, "") for c in "aeiou"):
        tail = vowel_free
        if len(head + tail) <= width:
            break
    return (head + tail)[:width]


def _format_column(values, digits: int = 4) -> list[str]:
    """R's ``format(x, digits=)``: common decimals so that each value shows ``digits`` significant digits."""
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values) & (values != 0)]
    if finite.size == 0:
        return [f"{v:g}" if np.isfinite(v) else "" for v in values]
    magnitudes = np.floor(np.log10(np.abs(finite))).astype(int)
    if magnitudes.max() >= 15 or magnitudes.min() <= -5:
        return [f"{v:.{digits - 1}e}" if np.isfinite(v) else "" for v in values]
    decimals = int(min(max(digits - 1 - magnitudes.min(), 0), 15))
    return [f"{v:.{decimals}f}" if np.isfinite(v) else "" for v in values]


def _text_table(columns: dict[str, list[str]], index: list[str], left: set[str] = frozenset()) -> list[str]:
    """Rows of a right-aligned (or left-aligned, for ``left`` columns) plain-text table."""
    index_width = max((len(i) for i in index), default=0)
    widths = {name: max([len(name)] + [len(v) for v in col]) for name, col in columns.items()}
    header = " " * index_width + "".join(
        " " + (name.ljust(widths[name]) if name in left else name.rjust(widths[name])) for name in columns
    )
    lines = [header.rstrip()]
    for r, label in enumerate(index):
        cells = "".join(
            " " + (col[r].ljust(widths[name]) if name in left else col[r].rjust(widths[name]))
            for name, col in columns.items()
        )
        lines.append((label.ljust(index_width) + cells).rstrip())
    return lines


class LmerSummary:
    """The summary of an ``lmer`` fit; ``str()`` gives lme4's layout."""

    def __init__(self, model: LinearMixedModel):
        self.model = model

    @property
    def coefficients(self) -> pd.DataFrame:
        """Estimate, Std. Error and t value of the fixed effects."""
        fixef = self.model.fixef
        se = np.sqrt(np.diag(self.model.vcov.to_numpy()))
        return pd.DataFrame(
            {"Estimate": fixef.to_numpy(), "Std. Error": se, "t value": fixef.to_numpy() / se},
            index=fixef.index,
        )

    @property
    def scaled_residuals(self) -> np.ndarray:
        """Pearson residuals over sigma (lme4's 'Scaled residuals')."""
        m = self.model
        resid = m.residuals.to_numpy()
        if m.frame.weights is not None:
            resid = resid * np.sqrt(m.frame.weights)
        return resid / m.sigma

    def _random_effects_lines(self) -> list[str]:
        vc = self.model.varcorr
        groups, names, variances, sds, corrs = [], [], [], [], []
        for group, block in vc.groupby("group", sort=False):
            variances_block = block[block["var2"].isna()]
            corr_block = block[block["var2"].notna()]
            term_names = list(variances_block["var1"].fillna(""))
            for i, (_, row) in enumerate(variances_block.iterrows()):
                groups.append(group if i == 0 else "")
                names.append(row["var1"] if isinstance(row["var1"], str) else "")
                variances.append(row["vcov"])
                sds.append(row["sdcor"])
                row_corrs = []
                for j in range(i):
                    match = corr_block[
                        (corr_block["var1"] == term_names[j]) & (corr_block["var2"] == term_names[i])
                    ]
                    row_corrs.append(f"{match['sdcor'].iloc[0]:.2f}" if len(match) else "")
                corrs.append(" ".join(c.rjust(5) for c in row_corrs))
        columns = {
            "Groups": groups,
            "Name": names,
            "Variance": _format_column(variances),
            "Std.Dev.": _format_column(sds),
        }
        if any(corrs):
            columns["Corr"] = corrs
        return _text_table(columns, [""] * len(groups), left={"Groups", "Name", "Corr"})

    def _fixed_correlation_lines(self) -> list[str]:
        vcov = self.model.vcov.to_numpy()
        names = list(self.model.fixef.index)
        if len(names) < 2:
            return []
        sd = np.sqrt(np.diag(vcov))
        corr = vcov / np.outer(sd, sd)
        columns = {
            abbreviate(names[j]): [f"{corr[i, j]:.3f}" if i > j else "" for i in range(1, len(names))]
            for j in range(len(names) - 1)
        }
        return ["", "Correlation of Fixed Effects:"] + _text_table(columns, names[1:])

    def __str__(self) -> str:
        m = self.model
        method = "REML" if m.reml else "maximum likelihood"
        lines = [f"Linear mixed model fit by {method}", f"Formula: {m.frame.formula.text}"]
        if m.frame.weights is not None:
            lines.append("Weights: prior weights given")
        lines.append("")
        if m.reml:
            lines.append(f"REML criterion at convergence: {m.reml_criterion:.1f}")
        else:
            stats = {
                "AIC": f"{m.aic:.1f}",
                "BIC": f"{m.bic:.1f}",
                "logLik": f"{m.loglik:.1f}",
                "deviance": f"{m.deviance:.1f}",
                "df.resid": str(m.nobs - m.df_loglik),
            }
            lines += _text_table({k: [v] for k, v in stats.items()}, [""])
        quantiles = np.quantile(self.scaled_residuals, [0, 0.25, 0.5, 0.75, 1.0])
        labels = ["Min", "1Q", "Median", "3Q", "Max"]
        lines += ["", "Scaled residuals:"]
        lines += _text_table({k: [f"{v:.4f}"] for k, v in zip(labels, quantiles)}, [""])
        lines += ["", "Random effects:"] + self._random_effects_lines()
        groups = ", ".join(f"{name}, {count}" for name, count in m.ngroups.items())
        lines.append(f"Number of obs: {m.nobs}, groups:  {groups}")
        if m.frame.n_missing:
            lines.append(f"({m.frame.n_missing} observations deleted due to missingness)")
        coef = self.coefficients
        lines += ["", "Fixed effects:"]
        lines += _text_table(
            {
                "Estimate": _format_column(coef["Estimate"], 5),
                "Std. Error": _format_column(coef["Std. Error"], 4),
                "t value": [f"{v:.3f}" for v in coef["t value"]],
            },
            list(coef.index),
        )
        lines += self._fixed_correlation_lines()
        if m.messages:
            lines.append("")
            lines += m.messages
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)
