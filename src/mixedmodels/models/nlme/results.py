"""What gls and lme fits share: the results of nlme's linear models, reported with nlme's conventions.

The fits (:mod:`.fitting`) maximize nlme's (restricted) log-likelihood; the results are reported on
nlme's scales with nlme's conventions (Pinheiro & Bates 2000, ch. 5):

* log-likelihood, AIC and BIC as ``logLik.gls``/``logLik.lme``: for REML the number of observations in
  BIC is N - p, and the number of parameters is p + the structures' parameters + 1 (sigma);
* ``vcov``: gls as ``vcov.gls`` (sigma^2 (X'V^-1 X)^-1 scaled by (N - REML p)/(N - p)); lme as
  ``vcov.lme``; the coefficient tables as ``summary`` (lme: nlme's inner-outer degrees of freedom and,
  for ML fits, standard errors scaled by sqrt(N / (N - p)));
* ``intervals``: nlme's approximate intervals: t intervals for the coefficients, and for the variance
  parameters normal intervals on the scale of nlme's ``apVar`` (log SDs, Fisher's z of correlations,
  the structures' unconstrained parameters, log sigma) mapped back.
"""

from __future__ import annotations

import math
import warnings
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from ...engine.deviance import residual_dof
from ...engine.optimize import OptimizationResult, OptimizerControl
from ...errors import FitError, check_choice
from ...inference.numdiff import derivatives
from ..base import FittedModel
from .view import NlmeInferenceView

if TYPE_CHECKING:
    from ...data.frame import ModelFrame
    from .data import PreparedData
    from .fitting import NlmeProblem
    from .likelihood import GLSLikelihood, LMELikelihood, ResidualModel

__all__ = ["NlmeModel"]


class NlmeModel(NlmeInferenceView, FittedModel):
    """What gls and lme fits share: the residual structure, likelihood summaries, intervals, residuals
    (and, from :class:`.view.NlmeInferenceView`, what inference reads).  Results only: the fit at
    ``params`` is made by :func:`.fitting.fit`."""

    kind = ""

    def __init__(
        self,
        problem: NlmeProblem,
        params: np.ndarray,
        control: OptimizerControl,
        optimization: OptimizationResult | None = None,
        iterations: int = 0,
    ):
        self.problem = problem
        self.control = control
        self.optimization = optimization
        self.iterations = iterations  # nlme's outer iterations for variance functions of the fitted values
        self._params = np.asarray(params, dtype=float)
        self._estimate()

    def _estimate(self) -> None:
        """Set ``_beta``, ``_sigma`` and ``_criterion`` at ``_params`` (each model's own solve)."""
        raise NotImplementedError

    @property
    def data(self) -> PreparedData:
        return self.problem.data

    @property
    def frame(self) -> ModelFrame:
        return self.problem.data.frame

    @property
    def reml(self) -> bool:
        return self.problem.reml

    @property
    def residual(self) -> ResidualModel:
        """The residual structure: the variance function and the correlation structure."""
        return self.problem.residual

    @property
    def likelihood(self) -> GLSLikelihood | LMELikelihood:
        return self.problem.likelihood

    # -- basic results ---------------------------------------------------------------------------------
    @property
    def nobs(self) -> int:
        return self.data.nobs

    @property
    def sigma(self) -> float:
        """Residual standard deviation (of a row with variance weight 1)."""
        return self._sigma

    @property
    def n_variance_params(self) -> int:
        return self.residual.n_params

    @property
    def bic_nobs(self) -> int:
        """nlme's number of observations in BIC: N - p for REML fits."""
        return residual_dof(self.nobs, self.n_fixed, self.reml)

    def _structure_params(self) -> np.ndarray:
        return self._params[-self.residual.n_params :] if self.residual.n_params else np.zeros(0)

    @property
    def correlation_parameters(self) -> pd.Series:
        """The correlation structure's parameters on nlme's reported scale (Phi, Rho, range, ...)."""
        if self.residual.corstruct is None:
            return pd.Series(dtype=float)
        return self.residual.corstruct.coefficients(self.residual.split(self._structure_params())[0])

    @property
    def varfunc_params(self) -> pd.Series:
        """The variance function's parameters on nlme's reported scale (ratios, power, expon, const)."""
        if self.residual.varfunc is None:
            return pd.Series(dtype=float)
        return self.residual.varfunc.coefficients(self.residual.split(self._structure_params())[1])

    @property
    def variance_parameters(self) -> pd.Series:
        """Deprecated name of :attr:`varfunc_params` (removed in the next release)."""
        warnings.warn(
            "variance_parameters is deprecated; use varfunc_params", DeprecationWarning, stacklevel=2
        )
        return self.varfunc_params

    @cached_property
    def variance_weights(self) -> pd.Series:
        """nlme's ``varWeights``: 1 / (relative SD) of each row."""
        log_w = self.residual.log_weights(self._structure_params(), self.likelihood.fitted_covariate)
        weights = np.ones(self.nobs) if log_w is None else np.exp(log_w)
        return self._series(weights, "weights")

    def _series(self, sorted_values: np.ndarray, name: str) -> pd.Series:
        return pd.Series(
            self.data.unsort(np.asarray(sorted_values, dtype=float)), index=self._index, name=name
        )

    @property
    def _index(self) -> pd.Index:
        """The input's index of the rows used."""
        return self.data.index

    # -- residuals ---------------------------------------------------------------------------------------
    def resid(self, type: str = "response", level: int | None = None) -> pd.Series:  # noqa: A002 - nlme's name
        """Residuals of ``type`` ``"response"`` (y - fitted), ``"pearson"`` (divided by their estimated SD
        sigma / weight) or ``"normalized"`` (pearson residuals multiplied by the correlation structure's
        whitening factor in each group: independent with variance 1 under the model).  lme: at
        ``level`` (0 = fixed effects only, default the innermost level)."""
        check_choice("type", type, ("response", "pearson", "normalized"))
        response = self.frame.y - self._fitted_values(level)
        if type == "response":
            return pd.Series(response, index=self._index, name="residuals")
        pearson = response * self.variance_weights.to_numpy() / self._sigma
        if type == "normalized" and self.residual.corstruct is not None:
            cor_params = self.residual.split(self._structure_params())[0]
            sorted_pearson = pearson[self.data.order]
            whitened, _ = self.residual.corstruct.whiten(cor_params, sorted_pearson)
            return self._series(whitened, "residuals")
        return pd.Series(pearson, index=self._index, name="residuals")

    @property
    def residuals(self) -> pd.Series:
        """Response residuals y - fitted (innermost level for lme)."""
        return self.resid("response")

    @cached_property
    def residual_diagnostics(self) -> pd.DataFrame:
        """Per row used: ``fitted`` and the residuals of :meth:`resid`'s types, ``residual`` (response),
        ``pearson`` and ``normalized`` (innermost level for lme): the numbers of :attr:`plot`."""
        columns = {"fitted": self.fitted, "residual": self.resid("response")}
        columns |= {type: self.resid(type) for type in ("pearson", "normalized")}
        return pd.DataFrame(columns)

    @property
    def plot(self):
        """Diagnostic plots (``m.plot.residuals(type=...)``, ``m.plot.qq()``, ``m.plot.scale_location()``,
        lme's ``m.plot.qq_ranef()``); needs matplotlib.  See
        :class:`mixedmodels.diagnostics.plots.NlmePlots`."""
        from ...diagnostics.plots import NlmePlots

        return NlmePlots(self)

    # -- approximate covariance of the variance parameters (nlme's apVar) -------------------------------
    @cached_property
    def _natural_estimate(self) -> np.ndarray:
        return np.concatenate(
            [self._natural_random(), self.residual.natural(self._structure_params()), [math.log(self._sigma)]]
        )

    def _natural_random(self) -> np.ndarray:
        return np.zeros(0)

    @cached_property
    def apvar(self) -> pd.DataFrame:
        """Approximate covariance of the variance parameters on nlme's apVar scale: the inverse of minus
        the Hessian of the log-likelihood in (log SDs and Fisher's z of the random effects, the
        structures' natural parameters, log sigma), with the fixed effects profiled out."""
        estimate = self._natural_estimate
        h = derivatives(self._loglik_sigma, estimate, relative=1e-3, levels=2)[2]
        if not np.all(np.linalg.eigvalsh(h) < 0):
            raise FitError("Non-positive definite approximate variance-covariance")
        names = self._natural_names()
        return pd.DataFrame(np.linalg.inv(-h), index=names, columns=names)

    def _natural_names(self) -> list[str]:
        names = []
        if self.residual.corstruct is not None:
            names += [f"corStruct.{n}" for n in self.correlation_parameters.index]
        if self.residual.varfunc is not None:
            names += [f"varStruct.{n}" for n in self.varfunc_params.index]
        return self._random_natural_names() + names + ["log(sigma)"]

    def _random_natural_names(self) -> list[str]:
        return []

    def _variance_intervals(self, level: float) -> dict[str, pd.DataFrame]:
        """Intervals of the variance parameters: normal on the apVar scale, mapped back."""
        z = stats.norm.ppf(0.5 + level / 2)
        estimate = self._natural_estimate
        half = z * np.sqrt(np.diag(self.apvar.to_numpy()))
        bounds = {"lower": estimate - half, "est.": estimate, "upper": estimate + half}
        out: dict[str, pd.DataFrame] = {}
        nrandom = len(self._natural_random())
        out.update(self._random_intervals({k: v[:nrandom] for k, v in bounds.items()}))
        cor_n = self.residual.sizes[0]
        sections = [
            ("corStruct", self.residual.corstruct, slice(nrandom, nrandom + cor_n)),
            ("varStruct", self.residual.varfunc, slice(nrandom + cor_n, len(estimate) - 1)),
        ]
        for name, structure, part in sections:
            if structure is None or part.stop == part.start:
                continue
            columns = {k: structure.reported_from_natural(v[part]) for k, v in bounds.items()}
            out[name] = pd.DataFrame(columns)
        out["sigma"] = pd.DataFrame({k: [math.exp(v[-1])] for k, v in bounds.items()}, index=["sigma"])
        return out

    def _random_intervals(self, bounds) -> dict[str, object]:
        return {}

    def _coef_intervals(self, level: float, df) -> pd.DataFrame:
        se = np.sqrt(np.diag(self.vcov.to_numpy()))
        half = stats.t.ppf(0.5 + level / 2, df) * se
        return pd.DataFrame(
            {"lower": self._beta - half, "est.": self._beta, "upper": self._beta + half},
            index=self.frame.fixed_names,
        )

    # -- tests -------------------------------------------------------------------------------------------
    @property
    def wald_vcov(self) -> pd.DataFrame:
        """The covariance of the fixed effects nlme's t and F tests use (``vcov``; see lme's)."""
        return self.vcov

    @cached_property
    def _nlme_df(self) -> tuple[np.ndarray, dict[str, float]]:
        """Denominator df of the fixed effects and of the terms (gls: N - p for all)."""
        from .fixdf import term_columns

        residual = float(self.nobs - self.n_fixed)
        return np.full(self.n_fixed, residual), dict.fromkeys(term_columns(self.frame), residual)

    @property
    def fixed_df(self) -> pd.Series:
        """Denominator degrees of freedom of each fixed effect's t test (lme: nlme's ``getFixDF``)."""
        return pd.Series(self._nlme_df[0], index=self.frame.fixed_names, name="df")

    @property
    def terms_df(self) -> pd.Series:
        """Denominator degrees of freedom of each fixed-effects term's F test (lme: ``fixDF$terms``)."""
        return pd.Series(self._nlme_df[1], name="df")

    def coef_table(self, ddf: str | None = None) -> pd.DataFrame:
        """Estimate, Std. Error, df, t value and Pr(>|t|) as nlme's ``summary`` (gls: N - p df; lme:
        nlme's inner-outer df, and for ML fits standard errors scaled by sqrt(N / (N - p))).

        With ``ddf`` (``"satterthwaite"``, ``"kenward-roger"``, ``"residual"`` or ``"asymptotic"``),
        lmer's table with those df and ``vcov``'s standard errors instead (Kenward-Roger: those of the
        adjusted covariance; :meth:`mixedmodels.LinearMixedModel.coef_table`).
        """
        if ddf is not None:
            from ...inference.contrasts import coefficient_table

            return coefficient_table(self, ddf)
        from .fixdf import t_table

        se = np.sqrt(np.diag(self.wald_vcov.to_numpy()))
        return t_table(self.frame.fixed_names, self._beta, se, self.fixed_df.to_numpy())

    def anova(
        self,
        *others: NlmeModel,
        type: str | int | None = None,  # noqa: A002 - nlme's name
        L=None,
        ddf: str | None = None,
    ) -> pd.DataFrame:
        """nlme's ``anova``: alone, F tests of the fixed-effects terms (``type`` "sequential", the
        default, or "marginal") or of ``L beta = 0``; with other fits, the likelihood-ratio comparison
        (``anova(m1, m2, ...)``).  See :func:`mixedmodels.models.nlme.anova`.

        With ``ddf`` (``"satterthwaite"``, ``"kenward-roger"``, ``"residual"`` or ``"asymptotic"``),
        lmer's F tests of the terms of this fit instead: ``type`` 1, 2 or 3 (default 3) with lmerTest's
        hypotheses and columns (:meth:`mixedmodels.LinearMixedModel.anova`).
        """
        if ddf is not None:
            if others or L is not None:
                raise ValueError(
                    "ddf= is for the F tests of the terms of one fit; test L beta = 0 with "
                    "contrast(L, ddf=...) and compare fits without ddf="
                )
            from ...inference.anova import anova_table

            return anova_table(self, type=3 if type is None else type, ddf=ddf)
        from .anova import anova

        return anova(self, *others, type=type, L=L)

    def summary(self):
        """nlme-style summary; ``print()`` it (tables: ``.coefficients``)."""
        from ...report.nlme import NlmeSummary

        return NlmeSummary(self)

    def to_dict(self) -> dict:
        """The results as plain Python types (for JSON)."""
        return super().to_dict() | {
            "model": self.kind,
            "method": self.method,
            "correlation_parameters": self.correlation_parameters.to_dict(),
            "varfunc_params": self.varfunc_params.to_dict(),
        }
