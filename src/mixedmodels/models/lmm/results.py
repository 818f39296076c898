"""The results of a linear mixed model fit (lme4's ``merMod``): estimates and everything derived from them.

:class:`LinearMixedModel` holds no fitting logic; its refits go through :func:`.fitting.assemble` and
:func:`.fitting.fit`.  Quantities derived from the fit (random effects, their conditional variances, ...)
are computed on first use.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ...data.frame import ModelFrame, build_frame
from ...engine.cholesky import BlockedCholesky
from ...engine.covariance import CovarianceStructure
from ...engine.crossprod import CrossProducts, with_response
from ...engine.deviance import ProfiledObjective, objective_from_chol, residual_dof
from ...engine.fit import at_boundary
from ...engine.optimize import OptimizationResult, OptimizerControl
from ...engine.threads import limited_threads
from ...errors import FitError, check_flag
from ...formula.parse import RandomTerm
from .. import predictions
from ..base import FittedModel
from ..random_effects import RandomEffectsResults, per_level_records

if TYPE_CHECKING:
    from .fitting import LinearMixedProblem

__all__ = ["LinearMixedModel"]


class LinearMixedModel(RandomEffectsResults, FittedModel):
    """The results of a linear mixed model fitted at covariance parameters ``theta`` (see :func:`fit`).

    Refits of the same model (:meth:`refit`, :meth:`refit_response`, :meth:`refit_cross`,
    :meth:`update_random`) go through :func:`assemble` and :func:`fit`.
    """

    interval_methods = ("wald", "profile", "boot")  # confint's methods

    def __init__(
        self,
        problem: LinearMixedProblem,
        theta: np.ndarray,
        control: OptimizerControl | None = None,
        optimization: OptimizationResult | None = None,
    ):
        self.problem = problem
        self.control = control or OptimizerControl()
        self.optimization = optimization
        self._theta = np.asarray(theta, dtype=float)
        with limited_threads():
            if not self.objective.update(self._theta):
                raise FitError("the covariance parameters give a singular system")
            self._criterion = objective_from_chol(self.chol, self.reml)
            self._beta, self._spherical = self.chol.solve()
        self.messages = self._fit_messages()

    @property
    def frame(self) -> ModelFrame:
        return self.problem.frame

    @property
    def reml(self) -> bool:
        return self.problem.reml

    @property
    def cross(self) -> CrossProducts:
        return self.problem.cross

    @property
    def covariances(self) -> list[CovarianceStructure]:
        return self.problem.covariances

    @property
    def objective(self) -> ProfiledObjective:
        return self.problem.objective

    @property
    def theta_slices(self) -> list[slice]:
        """Each random-effects term's entries of theta."""
        return self.objective.slices

    @property
    def chol(self) -> BlockedCholesky:
        """The blocked Cholesky factor at the estimates (refactored there if a caller evaluated the
        shared objective elsewhere)."""
        if not np.array_equal(self.objective.theta, self._theta):
            with limited_threads():
                self.objective.update(self._theta)
        return self.objective.chol

    # -- refits ----------------------------------------------------------------------------------------------
    def _fitted(
        self,
        frame: ModelFrame,
        reml: bool,
        cross: CrossProducts | None = None,
        start: np.ndarray | None = None,
    ) -> LinearMixedModel:
        """``frame`` fitted through :func:`.fitting.assemble` and :func:`.fitting.fit` with this fit's
        control."""
        from .fitting import assemble, fit

        return fit(assemble(frame, reml, cross), self.control, start)

    def refit(self, reml: bool | None = None, start: np.ndarray | None = None) -> LinearMixedModel:
        """The same model refitted (by REML or ML), reusing the cross-products; ``start``: theta to
        start from."""
        reml = check_flag("reml", reml, allow_none=True)
        return self._fitted(self.frame, self.reml if reml is None else reml, self.cross, start)

    def refit_response(self, response: np.ndarray) -> LinearMixedModel:
        """The model refitted to a new response (one value per row of the fit), as lme4's ``refit``;
        only the response's columns of the cross-products are made again."""
        response = np.asarray(response, dtype=float)
        if response.shape != (self.nobs,):
            raise ValueError(f"the response has shape {response.shape}, the model has {self.nobs} rows")
        frame = replace(self.frame, y=response)
        cross = with_response(
            self.cross, frame.blocks, frame.x, frame.response, frame.weights, frame.response_units
        )
        return self._fitted(frame, self.reml, cross)

    def refit_cross(self, cross: CrossProducts) -> LinearMixedModel:
        """The model refitted on other cross-products of the same design (e.g. without some rows)."""
        return self._fitted(self.frame, self.reml, cross)

    def update_random(self, random: tuple[RandomTerm, ...]) -> LinearMixedModel:
        """The model with other random-effects terms, fitted to the same rows, weights and total offset
        (formula offsets included); messages about the rows were given by this fit."""
        frame = self.frame
        formula = replace(frame.formula, offsets=()).with_random(random)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reduced = build_frame(
                formula, frame.data, weights=frame.weights, offset=frame.offset, functions=frame.functions
            )
        return self._fitted(reduced, self.reml)

    # -- the estimates ---------------------------------------------------------------------------------------
    @property
    def theta(self) -> np.ndarray:
        """Covariance parameters in lme4's order (per term, lower triangle of T column by column)."""
        return self._theta.copy()

    @property
    def nobs(self) -> int:
        """Rows in the fit's cross-products (the frame's rows, unless refitted on part of them)."""
        return self.cross.nobs

    @property
    def sigma(self) -> float:
        """Residual standard deviation."""
        dof = residual_dof(self.nobs, self.n_fixed, self.reml)
        return float(np.sqrt(self.chol.pwrss() / dof))

    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance of the fixed-effects estimates."""
        names = self.frame.fixed_names
        cov = self.sigma**2 * self.chol.inverse_fixed_crossprod()
        return pd.DataFrame(cov, index=names, columns=names)

    @property
    def reml_criterion(self) -> float | None:
        """lme4's REMLcrit: -2 x the restricted log-likelihood (None for ML fits)."""
        return self._criterion if self.reml else None

    @property
    def n_variance_params(self) -> int:
        """Covariance parameters other than sigma: theta."""
        return len(self._theta)

    @property
    def is_singular(self) -> bool:
        """True at a boundary (singular) fit: a variance or a correlation's factor is (nearly) zero.

        As lme4's ``isSingular`` with ``tol = singular_tol``, but on theta in its natural units (see
        ``ProfiledObjective.parameter_scale``), so that the answer does not depend on a covariate's units.
        """
        return at_boundary(self.objective, self._theta, self.control.singular_tol)

    @property
    def lambdas(self) -> list[np.ndarray]:
        """Each term's relative covariance factor T_k (Lambda's blocks): Cov(b_k) = sigma^2 T_k T_k'."""
        return self.objective.lambdas(self._theta)

    # -- fitted values and prediction ------------------------------------------------------------------------
    @cached_property
    def fitted(self) -> pd.Series:
        """Fitted values X beta + Z b (+ offset), indexed like the rows used from the input."""
        terms = [(k, block.z, block.codes) for k, block in enumerate(self.frame.blocks)]
        values = predictions.linear_predictor(self, self.frame.x, terms, self.frame.offset)
        return pd.Series(values, index=self.frame.data.index, name="fitted")

    @cached_property
    def residuals(self) -> pd.Series:
        """Response residuals y - fitted."""
        return pd.Series(self.frame.y - self.fitted.to_numpy(), index=self.frame.data.index, name="residuals")

    def predict(self, newdata=None, re_form=None, allow_new_levels: bool = False, offset=None) -> pd.Series:
        """Predictions for the data used (``newdata=None``) or for new data.

        ``re_form=None`` includes all random effects, ``"~0"`` none (population level), and a formula
        such as ``"~(1 | Subject)"`` a subset.  Levels not seen in the fit get zero random effects when
        ``allow_new_levels`` is true and raise an error otherwise.  For new data the formula's
        ``offset(...)`` terms are evaluated on it, and so is an ``offset=`` column given to ``lmer`` (as
        R's ``predict.lm``; lme4 leaves it out); ``offset`` gives newdata's own offset instead, and is
        needed when ``lmer`` was given the offset as numbers.
        """
        return predictions.predict(self, newdata, re_form, allow_new_levels, offset)

    def simulate(self, nsim: int = 1, seed: int | None = None) -> pd.DataFrame:
        """Responses simulated from the fitted model, with new random effects (lme4's default)."""
        return predictions.simulate(self, nsim, seed)

    # -- inference --------------------------------------------------------------------------------
    @property
    def ddf_methods(self) -> tuple[str, ...]:
        """The denominator-df methods of :meth:`coef_table`, :meth:`anova` and :meth:`contrast`: all."""
        from ...inference.ddf import DDF_METHODS

        return DDF_METHODS

    @cached_property
    def varpar(self):
        """The fit as a function of (theta, sigma): derivatives for Satterthwaite's df (see
        :class:`mixedmodels.inference.view.InferenceView`, what inference reads from a fit)."""
        from ...inference.varpar import lmer_variance_parameters

        return lmer_variance_parameters(self)

    @property
    def variance_parameters(self):
        """Deprecated name of :attr:`varpar` (removed in the next release)."""
        warnings.warn("variance_parameters is deprecated; use varpar", DeprecationWarning, stacklevel=2)
        return self.varpar

    @cached_property
    def containment_df(self):
        """SAS PROC MIXED's containment df (DDFM=CONTAIN) of each fixed-effect term, and the residual df."""
        from ...inference.containment import containment_df

        return containment_df(self)

    @cached_property
    def kenward_roger(self):
        """pbkrtest's Kenward-Roger adjustment (REML fits): adjusted vcov, df and F tests."""
        from ...inference.kenward_roger import KenwardRoger

        return KenwardRoger(self)

    @property
    def vcov_kenward_roger(self) -> pd.DataFrame:
        """Kenward-Roger adjusted covariance of the fixed effects (pbkrtest's ``vcovAdj``; REML fits)."""
        names = self.frame.fixed_names
        return pd.DataFrame(self.kenward_roger.adjusted_vcov, index=names, columns=names)

    def coef_table(self, ddf: str = "satterthwaite") -> pd.DataFrame:
        """Estimate, Std. Error, df, t value and Pr(>|t|) of the fixed effects (lmerTest's summary).

        ``ddf``: ``"satterthwaite"`` (lmerTest's default), ``"kenward-roger"`` (REML fits; as
        lmerTest, the standard errors are then those of the adjusted covariance), ``"containment"``
        (SAS's default), ``"residual"`` (n - p) or ``"asymptotic"`` (normal reference distribution).
        """
        from ...inference.contrasts import coefficient_table

        return coefficient_table(self, ddf)

    def anova(self, type: int = 3, ddf: str = "satterthwaite") -> pd.DataFrame:
        """F tests of the fixed-effect terms, as lmerTest's ``anova(m, type=, ddf=)``.

        Rows are the formula's terms (R's labels, e.g. ``"age:Sex"``); columns Sum Sq, Mean Sq, NumDF,
        DenDF, F value, Pr(>F).  ``type`` 1 (sequential), 2 or 3 builds the hypotheses as lmerTest;
        ``ddf`` as in :meth:`coef_table`.
        """
        from ...inference.anova import anova_table

        return anova_table(self, type=type, ddf=ddf)

    def contrast(
        self, contrasts, ddf: str = "satterthwaite", joint: bool = True, level: float = 0.95
    ) -> pd.DataFrame:
        """Test linear combinations ``L beta`` of the fixed effects, as lmerTest's ``contest``.

        ``contrasts``: a vector or matrix with one column per fixed effect, a dict or Series from
        fixed-effect names to coefficients, a list of those, or a DataFrame with fixed-effect columns.
        ``joint=True`` gives one F test of ``L beta = 0`` (Sum Sq, Mean Sq, NumDF, DenDF, F value,
        Pr(>F)); ``joint=False`` a t test per row (Estimate, Std. Error, df, t value, lower and upper
        confidence limits at ``level``, Pr(>|t|)).
        """
        from ...inference.contrasts import contrast_table

        return contrast_table(self, contrasts, ddf=ddf, joint=joint, level=level)

    def estimate(self, contrasts, label=None, level: float = 0.95, ddf: str = "containment") -> pd.DataFrame:
        """Estimates of ``L beta`` with t tests and confidence limits, as SAS PROC MIXED's ESTIMATE / CL.

        ``contrasts`` as in :meth:`contrast` (one row per estimate), ``label`` a name or one per row.
        The default df is SAS's default, the containment method (the df of the last fixed-effect term
        with a nonzero coefficient); any ``ddf`` of :meth:`coef_table` can be chosen.
        """
        from ...inference.contrasts import estimate_table

        return estimate_table(self, contrasts, label=label, level=level, ddf=ddf)

    def ranova(self, reduce_terms: bool = True) -> pd.DataFrame:
        """Likelihood-ratio tests of the random-effects terms (lmerTest's ``ranova``).

        One row per reduced model: ``(1 | g)`` terms removed, ``(x | g)`` terms reduced by one effect
        at a time (to ``(1 | g)`` for a single effect; with ``reduce_terms=False`` removed whole),
        refitted by the model's method on the same rows.  See :mod:`mixedmodels.inference.ranova`.
        """
        from ...inference.ranova import ranova

        return ranova(self, reduce_terms)

    def covparms(self, level: float = 0.95) -> pd.DataFrame:
        """Variance parameters with standard errors, Z tests and confidence limits (SAS PROC MIXED's
        COVTEST and CL): Satterthwaite chi-square limits for variances, Wald limits for covariances.
        See :mod:`mixedmodels.inference.covparms`.
        """
        from ...inference.covparms import covariance_parameters

        return covariance_parameters(self, level)

    def profile_view(self):
        """The fit as likelihood profiles see it (:class:`mixedmodels.inference.profile_view.ProfileView`)."""
        from ...inference.profile_view import LmerProfileView

        return LmerProfileView(self)

    @cached_property
    def residual_diagnostics(self) -> pd.DataFrame:
        """Per row used: fitted, residual, pearson, standardized, leverage and cooks_distance.

        lme4's ``residuals(type = "pearson")``, ``rstudent``, ``hatvalues`` and ``cooks.distance``; see
        :mod:`mixedmodels.diagnostics.influence`.
        """
        from ...diagnostics.influence import residual_diagnostics

        return residual_diagnostics(self)

    def influence(self, group: str):
        """The model refitted without each level of ``group``: fixef, dfbeta, Cook's distance, sigma.

        As lme4's ``influence(m, groups = group)``; ``group`` is a grouping factor or a column of the
        model's data.  Returns a :class:`mixedmodels.diagnostics.GroupInfluence`.
        """
        from ...diagnostics.influence import group_influence

        return group_influence(self, group)

    @property
    def plot(self):
        """Diagnostic plots (``m.plot.residuals()``, ``m.plot.qq()``, ...); needs matplotlib."""
        from ...diagnostics.plots import ModelPlots

        return ModelPlots(self)

    # -- printing --------------------------------------------------------------------------------------------
    def summary(self, ddf: str = "satterthwaite"):
        """lmerTest-style summary (t tests with ``ddf`` as in :meth:`coef_table`); ``print()`` it."""
        from ...report.lmer import LmerSummary

        return LmerSummary(self, ddf)

    def to_dict(self) -> dict:
        """The result contract as plain Python types (for JSON)."""
        return super().to_dict() | {
            "n_missing": self.frame.n_missing,
            "ngroups": self.ngroups,
            "theta": self.theta.tolist(),
            "varcorr": self.varcorr.replace({np.nan: None}).to_dict(orient="records"),
            "reml_criterion": self.reml_criterion,
            "is_singular": self.is_singular,
            "ranef": per_level_records(self.ranef),
            "coef": per_level_records(self.coef),
            "ranef_condvar": {g: a.tolist() for g, a in self.ranef_condvar.items()},
            "fitted": self.fitted.tolist(),
            "residuals": self.residuals.tolist(),
            "messages": self.messages,
        }
