"""lmerTest-style printed summary of a fitted linear mixed model, with its tables as DataFrames.

The layout is lme4's ``summary`` with lmerTest's fixed-effects table (df and Pr(>|t|) columns, formatted
as R's ``printCoefmat``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .text import (
    SIGNIFICANCE_LEGEND,
    abbreviate,
    format_column,
    format_p_values,
    r_format,
    significance_stars,
    text_table,
)

if TYPE_CHECKING:
    from ..models.lmm import LinearMixedModel

__all__ = ["LmerSummary"]

_DDF_TITLES = {
    "satterthwaite": "Satterthwaite's method",
    "kenward-roger": "Kenward-Roger's method",
    "containment": "the containment method",
    "residual": "residual df",
    "asymptotic": "the normal distribution",
}


class LmerSummary:
    """The summary of an ``lmer`` fit; ``str()`` gives lme4's layout."""

    def __init__(self, model: LinearMixedModel, ddf: str = "satterthwaite"):
        from ..inference.ddf import check_ddf

        self.model = model
        self.ddf = check_ddf(ddf)

    @property
    def coefficients(self) -> pd.DataFrame:
        """Estimate, Std. Error, df, t value and Pr(>|t|) of the fixed effects (``coef_table``)."""
        return self.model.coef_table(self.ddf)

    def _fixed_effects_lines(self) -> list[str]:
        """R's ``printCoefmat`` (digits 4, significance stars) of the coefficient table: Estimate, Std.
        Error (and df) formatted as one matrix, then the t or z value and its p-value."""
        coef = self.coefficients
        if coef.empty:
            return ["No fixed effect coefficients"]
        lines = ["Fixed effects:"]
        statistic = "t value" if "t value" in coef else "z value"
        p_value = "Pr(>|t|)" if statistic == "t value" else "Pr(>|z|)"
        matrix_columns = [c for c in ("Estimate", "Std. Error", "df") if c in coef]
        joint = coef[matrix_columns].to_numpy()
        nonzero = np.abs(joint[np.isfinite(joint) & (joint != 0)])
        smallest = 1 + int(np.floor(np.log10(nonzero.min()))) if nonzero.size else 1
        rounded = np.round(joint, max(1, 4 - smallest))
        texts = r_format(rounded.ravel(), 4)
        width = max(len(t) for t in texts)  # R formats the columns as one matrix
        texts = [t.rjust(width) for t in texts]
        columns = {name: texts[j :: joint.shape[1]] for j, name in enumerate(matrix_columns)}
        columns[statistic] = r_format(np.round(coef[statistic].to_numpy(), 3), 4)
        columns[p_value] = format_p_values(coef[p_value].to_numpy(), 3)
        columns[""] = [significance_stars(p).ljust(3) for p in coef[p_value]]
        lines += text_table(columns, list(coef.index), left={""})
        if any(significance_stars(p) for p in coef[p_value]):
            lines += ["---", SIGNIFICANCE_LEGEND]
        return lines

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
            "Variance": format_column(variances),
            "Std.Dev.": format_column(sds),
        }
        if any(corrs):
            columns["Corr"] = corrs
        return text_table(columns, [""] * len(groups), left={"Groups", "Name", "Corr"})

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
        return ["", "Correlation of Fixed Effects:"] + text_table(columns, names[1:])

    def _header_lines(self) -> list[str]:
        """The title, formula and likelihood lines."""
        m = self.model
        method = "REML" if m.reml else "maximum likelihood"
        title = f"Linear mixed model fit by {method}. t-tests use {_DDF_TITLES[self.ddf]} [lmerModLmerTest]"
        lines = [title, f"Formula: {m.frame.formula.text}"]
        if m.frame.weights is not None:
            lines.append("Weights: prior weights given")
        lines.append("")
        if m.reml:
            lines.append(f"REML criterion at convergence: {m.reml_criterion:.1f}")
        else:
            lines += self._likelihood_lines()
        return lines

    def _likelihood_lines(self) -> list[str]:
        """AIC, BIC, logLik, -2 logLik (lme4's "deviance" column) and df.resid."""
        m = self.model
        stats = {
            "AIC": f"{m.aic:.1f}",
            "BIC": f"{m.bic:.1f}",
            "logLik": f"{m.loglik:.1f}",
            "deviance": f"{-2.0 * m.loglik:.1f}",
            "df.resid": str(m.nobs - m.df_loglik),
        }
        return text_table({k: [v] for k, v in stats.items()}, [""])

    def __str__(self) -> str:
        m = self.model
        lines = self._header_lines()
        quantiles = np.quantile(self.scaled_residuals, [0, 0.25, 0.5, 0.75, 1.0])
        labels = ["Min", "1Q", "Median", "3Q", "Max"]
        lines += ["", "Scaled residuals:"]
        lines += text_table({k: [f"{v:.4f}"] for k, v in zip(labels, quantiles)}, [""])
        lines += ["", "Random effects:"] + self._random_effects_lines()
        groups = ", ".join(f"{name}, {count}" for name, count in m.ngroups.items())
        lines.append(f"Number of obs: {m.nobs}, groups:  {groups}")
        if m.frame.n_missing:
            lines.append(f"({m.frame.n_missing} observations deleted due to missingness)")
        lines += [""] + self._fixed_effects_lines()
        lines += self._fixed_correlation_lines()
        if m.messages:
            lines.append("")
            lines += m.messages
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)
