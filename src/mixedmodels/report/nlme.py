"""nlme-style printed summaries of gls and lme fits."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..models.nlme.arma import CorARMA
from .text import abbreviate, format_column, text_table

__all__ = ["NlmeSummary"]

_STRUCTURE_NAMES = {
    "CorAR1": "AR(1)",
    "CorCAR1": "Continuous AR(1)",
    "CorCompSymm": "Compound symmetry",
    "CorSymm": "General correlation",
    "CorExp": "Exponential spatial correlation",
    "CorGaus": "Gaussian spatial correlation",
    "CorLin": "Linear spatial correlation",
    "CorRatio": "Rational quadratic spatial correlation",
    "CorSpher": "Spherical spatial correlation",
    "VarFixed": "fixed weights",
    "VarIdent": "Different standard deviations per stratum",
    "VarPower": "Power of variance covariate",
    "VarExp": "Exponential of variance covariate",
    "VarConstPower": "Constant plus power of variance covariate",
    "VarComb": "Combination of variance functions",
}


def _structure_name(structure) -> str:
    """nlme's printed name of a correlation structure or variance function (``ARMA(p,q)``)."""
    if isinstance(structure, CorARMA):
        return f"ARMA({structure.p},{structure.q})"
    return _STRUCTURE_NAMES.get(type(structure).__name__, type(structure).__name__)


def _named_values(values: pd.Series) -> list[str]:
    cells = format_column(values.to_numpy(), digits=7)
    widths = [max(len(str(n)), len(c)) for n, c in zip(values.index, cells)]
    return [
        " ".join(str(n).rjust(w) for n, w in zip(values.index, widths)),
        " ".join(c.rjust(w) for c, w in zip(cells, widths)),
    ]


class NlmeSummary:
    """The summary of a gls or lme fit; ``str()`` gives nlme's layout, the tables are attributes."""

    def __init__(self, model):
        self.model = model

    @property
    def coefficients(self) -> pd.DataFrame:
        """nlme's tTable: Value, Std.Error, (DF,) t-value, p-value."""
        table = self.model.coef_table()
        out = pd.DataFrame({"Value": table["Estimate"], "Std.Error": table["Std. Error"]}, index=table.index)
        if self.model.kind == "lme":
            out["DF"] = table["df"].astype(int)
        out["t-value"] = table["t value"]
        out["p-value"] = table["Pr(>|t|)"]
        return out

    def _structures(self) -> list[str]:
        m = self.model
        lines = []
        for label, structure, values in (
            ("Correlation Structure", m.residual.corstruct, m.correlation_parameters),
            ("Variance function", m.residual.varfunc, m.varfunc_params),
        ):
            if structure is None:
                continue
            name = _structure_name(structure)
            lines += ["", f"{label}: {name}" if label.startswith("Corr") else f"{label}:"]
            if not label.startswith("Corr"):
                lines.append(f" Structure: {name}")
            form = getattr(structure, "form", None)
            if form is not None:
                lines.append(f" Formula: {form.text}")
            if len(values):
                lines.append(" Parameter estimates:")
                lines += _named_values(values)
        return lines

    def _random_effects(self) -> list[str]:
        m = self.model
        lines = ["", "Random effects:"]
        for level, cov in m.random_covariance.items():
            sd = np.sqrt(np.diag(cov.to_numpy()))
            corr = cov.to_numpy() / np.outer(sd, sd)
            lines.append(f" Level: {level}")
            columns = {"StdDev": format_column(sd, 7)}
            for j in range(len(sd) - 1):
                below = [f"{corr[i, j]:.3f}" if i > j else "" for i in range(len(sd))]
                columns[abbreviate(cov.index[j])] = below
            lines += text_table(columns, list(cov.index))
        lines.append(f" Residual StdDev: {m.sigma:.7g}")
        return lines

    def __str__(self) -> str:
        m = self.model
        title = "Generalized least squares" if m.kind == "gls" else "Linear mixed-effects model"
        lines = [f"{title} fit by {'REML' if m.reml else 'maximum likelihood'}"]
        lines.append(f"  Model: {m.frame.formula.text}")
        lines.append(f"  Data: {m.nobs} observations")
        criteria = (("AIC", m.aic), ("BIC", m.bic), ("logLik", m.loglik))
        lines += text_table({k: format_column([v], 7) for k, v in criteria}, [" "])
        if m.kind == "lme":
            lines += self._random_effects()
        lines += self._structures()
        coefficients = self.coefficients
        columns = {name: format_column(coefficients[name].to_numpy(), 7) for name in coefficients.columns}
        if "DF" in coefficients:
            columns["DF"] = [str(v) for v in coefficients["DF"]]
        columns["p-value"] = [f"{p:.4f}" for p in coefficients["p-value"]]
        lines += ["", "Coefficients:" if m.kind == "gls" else "Fixed effects:"]
        lines += text_table(columns, list(coefficients.index))
        if m.kind == "gls":
            lines += ["", f"Residual standard error: {m.sigma:.7g}"]
            lines.append(f"Degrees of freedom: {m.nobs} total; {m.nobs - m.n_fixed} residual")
        else:
            groups = ", ".join(f"{k} {v}" for k, v in m.ngroups.items())
            lines += ["", f"Number of Observations: {m.nobs}", f"Number of Groups: {groups}"]
        return "\n".join(lines)

    __repr__ = __str__
