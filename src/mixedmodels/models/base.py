"""The results base of every fitted model family: log-likelihood, deviance, AIC, BIC, nobs and the number
of parameters, from the few members each family defines.

lme4's ``logLik``, ``deviance``, ``AIC`` and ``BIC`` of an lmer fit and nlme's of an lme or gls fit are the
same formulas of the maximized log-likelihood (the restricted one for REML fits) and its df, the number of
parameters: fixed effects, covariance parameters and sigma.  The families differ in one convention only:
BIC's number of observations, ``nobs`` in lme4 and ``N - p`` for REML fits in nlme (its ``logLik.lme``
and ``logLik.gls``), which a family sets by :attr:`FittedModel.bic_nobs`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from ..data.frame import ModelFrame

__all__ = ["FittedModel"]


class FittedModel:
    """What a fitted model of any family reports about its likelihood, and the shared part of ``to_dict``.

    A family defines ``reml`` (fitted by REML), ``nobs``, ``frame`` (its model frame: the formula, the
    fixed-effects matrix and names), ``_beta`` (the fixed effects), ``_criterion`` (-2 x the maximized
    log-likelihood, restricted for REML fits: lme4's REML criterion or ML deviance), ``n_variance_params``
    (covariance parameters other than sigma), ``sigma`` and ``vcov``.
    """

    reml: bool
    nobs: int
    frame: ModelFrame
    n_variance_params: int
    sigma: float
    vcov: pd.DataFrame
    _beta: np.ndarray
    _criterion: float
    interval_methods: tuple[str, ...]  # confint's methods
    has_residual_variance: bool = True  # a free sigma (lme4's useSc): not for a binomial or Poisson GLMM

    @property
    def method(self) -> str:
        """``"REML"`` or ``"ML"``."""
        return "REML" if self.reml else "ML"

    @property
    def n_fixed(self) -> int:
        return self.frame.x.shape[1]

    @property
    def fixef(self) -> pd.Series:
        return pd.Series(self._beta, index=self.frame.fixed_names, name="Estimate")

    @property
    def structure_parameters(self) -> pd.Series:
        """The residual structure's parameters on their reported scale (nlme's correlation structure and
        variance function; none for lmer), as they stand in intervals between the random effects' and
        sigma."""
        return pd.Series(dtype=float)

    def residual_errors(self, standard: np.ndarray) -> np.ndarray:
        """Residual errors of the fitted model from independent standard normal draws, one per row in the
        frame's order (what :meth:`simulate` adds): ``sigma e / sqrt(prior weight)``."""
        weights = self.frame.weights
        return self.sigma * standard if weights is None else self.sigma / np.sqrt(weights) * standard

    @property
    def loglik(self) -> float:
        """The maximized log-likelihood (restricted for REML fits), as ``logLik()``."""
        return -0.5 * self._criterion

    @property
    def deviance(self) -> float:
        """-2 x :attr:`loglik`: lme4's ``deviance()`` of an ML fit, its REML criterion for a REML fit."""
        return self._criterion

    @property
    def df_loglik(self) -> int:
        """The df of ``logLik()``, the number of parameters: fixed effects, covariance parameters, sigma."""
        return self.n_fixed + self.n_variance_params + 1

    @property
    def bic_nobs(self) -> int:
        """The number of observations in BIC's penalty: ``nobs`` (lme4's convention)."""
        return self.nobs

    @property
    def aic(self) -> float:
        return -2.0 * self.loglik + 2.0 * self.df_loglik

    @property
    def bic(self) -> float:
        return -2.0 * self.loglik + math.log(self.bic_nobs) * self.df_loglik

    # -- intervals and the parametric bootstrap (every family, through the inference views) ----------
    def confint(
        self,
        method: str = "profile",
        level: float = 0.95,
        parm: str | int | Sequence[str | int] | None = None,
        old_names: bool = True,
        nsim: int = 500,
        seed: int | None = None,
        n_jobs: int = 2,
        progress: bool | None = None,
    ) -> pd.DataFrame:
        """Confidence intervals for the variance parameters and fixed effects (lme4's ``confint``).

        Rows: per random-effects term its standard deviations and correlations (lower triangle, column
        by column), then the residual structure's parameters of gls and lme fits on nlme's scale
        (``corStruct.Phi``, ``varStruct.power``, ...), then sigma, then the fixed effects; named
        ``.sig01``, ..., ``.sigma`` or, with ``old_names=False``, ``sd_(Intercept)|Subject``,
        ``cor_Days.(Intercept)|Subject``, ``sigma``.  A fit offers the methods of its
        ``interval_methods``.
        ``method``: ``"profile"`` (likelihood profile of the ML deviance, as lme4: a REML fit is refitted
        by ML; each parameter is held at a value and the others maximized), ``"wald"`` (fixed
        effects only; NaN for the variance parameters, as lme4) or ``"boot"`` (percentile intervals of
        a parametric bootstrap with ``nsim``, ``seed``, ``n_jobs``, ``progress``; see
        :meth:`bootstrap`).  ``parm`` selects rows by name, ``"theta_"``, ``"beta_"`` or position.
        """
        from ..inference.confint import confint

        return confint(self, method, level, parm, old_names, nsim, seed, n_jobs, progress)

    def profile(
        self,
        parm=None,
        old_names: bool = True,
        alphamax: float = 0.01,
        maxpts: int = 100,
        delta: float | None = None,
    ) -> pd.DataFrame:
        """Likelihood profiles as lme4's ``profile``: one row per point of each parameter's trace.

        Columns ``parameter``, ``value`` (of that parameter), ``zeta`` (signed square root of the
        increase in ML deviance when the parameter is held at ``value`` and all others re-optimized)
        and every parameter's value at that point.  REML fits are profiled on the ML deviance, as in
        lme4.  ``parm`` as in :meth:`confint`; ``alphamax``, ``maxpts`` and ``delta`` are lme4's.
        """
        from ..inference.profile import profile_frame

        return profile_frame(self, parm, old_names, alphamax, maxpts, delta)

    def bootstrap(
        self,
        nsim: int,
        statistic=None,
        seed: int | None = None,
        n_jobs: int = 2,
        progress: bool | None = None,
    ) -> pd.DataFrame:
        """Parametric bootstrap (lme4's ``bootMer``): simulate responses from the fit, refit, collect.

        Returns one row per replicate of ``statistic(refitted_model)`` (a number, array, dict or
        Series; default: the parameters in :meth:`confint`'s rows).  The same ``seed`` gives the same
        result whatever ``n_jobs`` (worker processes).  ``progress``: None shows a line on stderr once
        the run has taken 2 seconds, True always, False never.  Failed refits give NaN rows.
        Outside Linux the workers are spawned: ``statistic`` must then be picklable (a module-level
        function, not a lambda) and a script must call this under ``if __name__ == "__main__":``.
        """
        from ..inference.bootstrap import bootstrap

        return bootstrap(self, nsim, statistic, seed, n_jobs, progress)

    def to_dict(self) -> dict:
        """The results every family reports, as plain Python types (for JSON); families add their own."""
        return {
            "formula": self.frame.formula.text,
            "reml": self.reml,
            "nobs": self.nobs,
            "fixef": self.fixef.to_dict(),
            "vcov": self.vcov.to_numpy().tolist(),
            "sigma": self.sigma,
            "loglik": self.loglik,
            "df_loglik": self.df_loglik,
            "aic": self.aic,
            "bic": self.bic,
            "deviance": self.deviance,
        }

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.frame.formula.text!r} fit by {self.method}, {self.nobs} obs>"
