"""The one-way random effects model Y_ij = mu + T_i + E_ij with its exact and approximate intervals.

For t groups of n observations (N = nt), from the ANOVA mean squares MS[T] (t - 1 df) and MS[E]
(N - t df), as taught with PROC GLM / PROC MIXED (e.g. the sires example):

* mu: ybar.. +- t(alpha/2, t - 1) sqrt(MS[T] / N), since Var(ybar..) = (s2 + n s2_T) / N;
* s2 = MS[E] with the chi-square interval (N - t) MS[E] / chi2(N - t);
* s2_T = (MS[T] - MS[E]) / n with Satterthwaite's df (n s2_T)^2 / (MS[T]^2/(t-1) + MS[E]^2/(N-t))
  and the interval df s2_T / chi2(df) (PROC MIXED's ``CL``);
* the intraclass correlation rho = s2_T / (s2 + s2_T), interval from F = MS[T]/MS[E]:
  ((F/F_hi - 1) / (F/F_hi + n - 1), (F/F_lo - 1) / (F/F_lo + n - 1)), F_hi and F_lo the upper and
  lower alpha/2 points of F(t - 1, N - t);
* the coefficient of variation sqrt(s2 + s2_T) / mu and each component's share of s2 + s2_T.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ...report.text import text_table
from .ftests import satterthwaite_ms_df

__all__ = ["OneWayRandom"]


def _chi_square_interval(estimate: float, df: float, alpha: float) -> tuple[float, float]:
    """The interval df * estimate / chi2(df) at the upper and lower alpha/2 points."""
    scaled = df * estimate
    chi2 = stats.chi2.ppf([1 - alpha / 2, alpha / 2], df)
    return float(scaled / chi2[0]), float(scaled / chi2[1])


@dataclass(frozen=True)
class OneWayRandom:
    """Estimates and intervals of the balanced one-way random model (see the module docstring)."""

    response: str
    group: str
    groups: int
    n_per_group: int
    ms_group: float
    ms_error: float
    mean: float
    alpha: float = 0.05

    @property
    def nobs(self) -> int:
        return self.groups * self.n_per_group

    @property
    def df_group(self) -> int:
        return self.groups - 1

    @property
    def df_error(self) -> int:
        return self.nobs - self.groups

    @property
    def mean_se(self) -> float:
        return float(np.sqrt(self.ms_group / self.nobs))

    @property
    def mean_interval(self) -> tuple[float, float]:
        half = stats.t.ppf(1 - self.alpha / 2, self.df_group) * self.mean_se
        return self.mean - half, self.mean + half

    @property
    def error_variance(self) -> float:
        return self.ms_error

    @property
    def error_interval(self) -> tuple[float, float]:
        return _chi_square_interval(self.ms_error, self.df_error, self.alpha)

    @property
    def group_variance(self) -> float:
        return (self.ms_group - self.ms_error) / self.n_per_group

    @property
    def group_df(self) -> float:
        """Satterthwaite's df of (MS[T] - MS[E]) / n."""
        return satterthwaite_ms_df(
            [1.0, -1.0], [self.ms_group, self.ms_error], [self.df_group, self.df_error]
        )

    @property
    def group_interval(self) -> tuple[float, float]:
        """PROC MIXED's CL interval; NaN when the estimate is not positive."""
        if not self.group_variance > 0:
            return np.nan, np.nan
        return _chi_square_interval(self.group_variance, self.group_df, self.alpha)

    @property
    def f_value(self) -> float:
        return self.ms_group / self.ms_error

    @property
    def icc(self) -> float:
        return self.group_variance / (self.error_variance + self.group_variance)

    @property
    def icc_interval(self) -> tuple[float, float]:
        n, f = self.n_per_group, self.f_value
        upper_point, lower_point = stats.f.ppf(
            [1 - self.alpha / 2, self.alpha / 2], self.df_group, self.df_error
        )
        ratio_low, ratio_high = f / upper_point, f / lower_point
        return float((ratio_low - 1) / (ratio_low + n - 1)), float((ratio_high - 1) / (ratio_high + n - 1))

    @property
    def cv(self) -> float:
        return float(np.sqrt(self.error_variance + self.group_variance) / abs(self.mean))

    @property
    def shares(self) -> pd.Series:
        total = self.error_variance + self.group_variance
        return pd.Series(
            [self.group_variance / total, self.error_variance / total],
            index=[f"Var({self.group})", "Var(Error)"],
        )

    @property
    def table(self) -> pd.DataFrame:
        """One row per quantity: Estimate, df, lower and upper limit, and how the interval is made."""
        level = f"{100 * (1 - self.alpha):g}%"
        rows = {
            "mean": (
                self.mean,
                self.df_group,
                *self.mean_interval,
                f"t on {self.df_group} df from MS[{self.group}]",
            ),
            "Var(Error)": (self.error_variance, self.df_error, *self.error_interval, "chi-square"),
            f"Var({self.group})": (self.group_variance, self.group_df, *self.group_interval, "Satterthwaite"),
            "intraclass correlation": (self.icc, np.nan, *self.icc_interval, "F"),
            "coefficient of variation": (self.cv, np.nan, np.nan, np.nan, ""),
        }
        for name, share in self.shares.items():
            rows[f"share of {name}"] = (share, np.nan, np.nan, np.nan, "")
        return pd.DataFrame.from_dict(
            rows, orient="index", columns=["Estimate", "df", f"{level} lower", f"{level} upper", "Interval"]
        )

    def __str__(self) -> str:

        table = self.table
        level = f"{100 * (1 - self.alpha):g}%"
        columns = {
            "Estimate": [f"{v:.6g}" for v in table["Estimate"]],
            "df": ["" if np.isnan(v) else f"{v:.4g}" for v in table["df"]],
            "Lower": [_format_one(v) for v in table[f"{level} lower"]],
            "Upper": [_format_one(v) for v in table[f"{level} upper"]],
            "Interval": list(table["Interval"]),
        }
        lines = [
            f"One-way random effects model: {self.response} = mu + {self.group} + Error",
            f"{self.groups} groups of {self.n_per_group} observations (N = {self.nobs}); {level} limits",
            "",
        ]
        lines += text_table(columns, list(table.index), left={"Interval"})
        if not self.group_variance > 0:
            lines += ["", f"The estimate of Var({self.group}) is not positive: no interval for it."]
        return "\n".join(lines)


def _format_one(value: float) -> str:
    return "" if np.isnan(value) else f"{value:.6g}"
