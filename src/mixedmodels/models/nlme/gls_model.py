"""The results of a gls fit (nlme's ``gls``): coefficients, ``vcov.gls``, intervals and predictions."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from ...data.frame import new_data
from ...engine.deviance import residual_dof
from ...errors import check_integer, check_probability
from .results import NlmeModel

__all__ = ["GLSModel"]


class GLSModel(NlmeModel):
    """A fitted gls model; see :func:`gls`."""

    kind = "gls"

    def _estimate(self) -> None:
        """The generalized least-squares solve at the parameters (nlme's ``gls`` estimates)."""
        fit = self.likelihood.fit(self._params)
        self._beta, self._sigma, self._criterion = fit.beta, fit.sigma, -2.0 * fit.loglik
        self._r_fixed = fit.r_fixed

    def _fitted_sorted_innermost(self) -> np.ndarray:
        return self.data.x @ self._beta

    def _fitted_values(self, level: int | None = None) -> np.ndarray:
        if level is not None and check_integer("level", level, minimum=0) != 0:
            raise ValueError("a gls model has no grouping levels; use level=None or 0")
        return self.frame.x @ self._beta

    @property
    def fitted(self) -> pd.Series:
        """Fitted values X beta, indexed like the rows used from the input."""
        return pd.Series(self._fitted_values(), index=self._index, name="fitted")

    @property
    def vcov(self) -> pd.DataFrame:
        """nlme's ``vcov.gls``: sigma^2 (R_X'R_X)^-1 (N - REML p)/(N - p)."""
        inverse = np.linalg.inv(self._r_fixed)
        n, p = self.nobs, self.n_fixed
        scale = residual_dof(n, p, self.reml) / (n - p)
        cov = self._sigma**2 * scale * inverse @ inverse.T
        names = self.frame.fixed_names
        return pd.DataFrame(cov, index=names, columns=names)

    def _loglik_sigma(self, natural):
        return self.likelihood.loglik_sigma(natural)

    def intervals(self, level: float = 0.95) -> dict[str, pd.DataFrame]:
        """nlme's ``intervals.gls``: {"coef", "corStruct", "varStruct", "sigma"} with lower, est., upper.

        Without variance parameters sigma's interval is the chi-square one, as nlme's.
        """
        level = check_probability("level", level)
        out = {"coef": self._coef_intervals(level, self.nobs - self.n_fixed)}
        if self.residual.n_params == 0:
            nr = residual_dof(self.nobs, self.n_fixed, self.reml)
            root = self._sigma * math.sqrt(nr)
            out["sigma"] = pd.DataFrame(
                {
                    "lower": [root / math.sqrt(stats.chi2.ppf(0.5 + level / 2, nr))],
                    "est.": [self._sigma],
                    "upper": [root / math.sqrt(stats.chi2.ppf(0.5 - level / 2, nr))],
                },
                index=["sigma"],
            )
            return out
        out.update(self._variance_intervals(level))
        return out

    def predict(self, newdata=None) -> pd.Series:
        """X beta for the fit's rows or for ``newdata`` (``predict.gls``)."""
        if newdata is None:
            return self.fitted.rename("predicted")
        data, leveled = new_data(self.frame, newdata)
        x = self.frame.fixed_matrix(leveled)
        return pd.Series(x @ self._beta, index=data.index, name="predicted")
