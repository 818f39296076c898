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
