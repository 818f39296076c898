"""gls and lme fits as the narrow view inference reads (:class:`mixedmodels.inference.view.InferenceView`).

With it they take lmer's tests of the fixed effects (lmerTest's t and F tests with Satterthwaite's,
Kenward-Roger's, residual or asymptotic df), which nlme does not give.  Their variance parameters
are the optimizer's (lme: lme4's theta of each random-effects term; then the correlation structure's
and the variance function's unconstrained parameters) and sigma; the deviance's terms in them come
from the likelihood (``sigma_free_terms``), so Satterthwaite's derivatives are those of the lmer fit
(:mod:`mixedmodels.inference.varpar`).  Kenward-Roger reads the marginal covariance group by group
(:mod:`.marginal`), in SAS's and pbkrtest's covariance parameters.

They are also the view that intervals and the parametric bootstrap read
(:class:`mixedmodels.inference.view.SimulationView`): responses are simulated with the variance
function and the correlation structure, group by group (:meth:`residual_errors`), and each refit
goes through :func:`.fitting.assemble` and :func:`.fitting.fit`.

They also take lmer's likelihood profiles (:mod:`mixedmodels.inference.profile`), through
:class:`NlmeProfileView`: profile intervals of the random effects' sd/cor (lme4's names), the
correlation structure's and variance function's parameters (on nlme's scale), sigma and the fixed
effects, which nlme does not give (its ``intervals`` are Wald intervals on a transformed scale).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ...errors import FitError
from ...inference.ddf import VIEW_DDF_METHODS
from ...inference.kenward_roger import KenwardRoger
from ...inference.profile_view import ProfileView
from ...inference.varpar import VarianceParameters
from .. import predictions
from .corstruct import CorARMA, CorSymm
from .likelihood import LMELikelihood

if TYPE_CHECKING:
    from .results import NlmeModel

__all__ = ["NlmeInferenceView", "NlmeProfileView"]


class NlmeInferenceView:
    """The members of gls and lme fits that only inference reads, and ``contrast``."""

    ddf_methods = VIEW_DDF_METHODS
    interval_methods = ("profile", "wald", "boot")
    max_iter: int = 50  # the fit's outer iterations (fitted-value weights), set by .fitting.fit
    tolerance: float = 1e-6

    @cached_property
    def kenward_roger(self) -> KenwardRoger:
        """The Kenward-Roger adjustment (REML fits): adjusted vcov, df and F tests, as pbkrtest's with the
        second-derivative term of the residual structure's parameters (SAS's DDFM=KR)."""
        from .marginal import NlmeMarginalCovariance

        return KenwardRoger(self, NlmeMarginalCovariance(self))

    @property
    def vcov_kenward_roger(self) -> pd.DataFrame:
        """Kenward-Roger adjusted covariance of the fixed effects (REML fits)."""
        names = self.frame.fixed_names
        return pd.DataFrame(self.kenward_roger.adjusted_vcov, index=names, columns=names)

    def random_terms(self) -> list:
        """The random-effects terms (in the sorted row order) and their covariances G_k: none for gls."""
        return []

    @cached_property
    def varpar(self) -> VarianceParameters:
        """The fit as a function of its variance parameters (the optimizer's, then sigma)."""
        likelihood = self.likelihood
        estimate = np.append(self._params, self._sigma)
        return VarianceParameters(likelihood.sigma_free_terms, estimate, self.n_fixed, likelihood.nr)

    def contrast(
        self, contrasts, ddf: str = "satterthwaite", joint: bool = True, level: float = 0.95
    ) -> pd.DataFrame:
        """Tests of linear combinations ``L beta`` of the fixed effects, as lmer's
        :meth:`mixedmodels.LinearMixedModel.contrast` (lmerTest's ``contest``); ``ddf``
        ``"satterthwaite"``, ``"kenward-roger"``, ``"residual"`` or ``"asymptotic"``."""
        from ...inference.contrasts import contrast_table

        return contrast_table(self, contrasts, ddf=ddf, joint=joint, level=level)

    # -- simulation, the parametric bootstrap and intervals ------------------------------------------------
    @property
    def structure_parameters(self) -> pd.Series:
        """The correlation structure's and the variance function's parameters on nlme's reported scale,
        named as in :attr:`apvar` (``corStruct.Phi``, ``varStruct.power``)."""
        parts = {"corStruct": self.correlation_parameters, "varStruct": self.varfunc_params}
        values = [series.add_prefix(f"{name}.") for name, series in parts.items() if len(series)]
        return pd.concat(values) if values else pd.Series(dtype=float)

    def residual_errors(self, standard: np.ndarray) -> np.ndarray:
        """Residual errors from independent standard normal draws (one per row, in the frame's order):
        ``sigma V_g^(1/2) S_g e_g`` per group of the correlation structure (``S_g S_g' = C_g``, the
        variance function's ``V_g``), so Var = sigma^2 V_g^(1/2) C_g V_g^(1/2); without structures
        ``sigma e``, as lmer's."""
        data = self.data
        sorted_errors = self.residual.color(
            self._structure_params(), np.asarray(standard)[data.order], self.likelihood.fitted_covariate
        )
        return self._sigma * data.unsort(sorted_errors)

    def simulate(self, nsim: int = 1, seed: int | None = None) -> pd.DataFrame:
        """Responses simulated from the fitted model (one column per simulation, rows as ``fitted``):
        X beta, new random effects (lme), and residual errors with the variance function and the
        correlation structure.  As lmer's :meth:`mixedmodels.LinearMixedModel.simulate`, from whose
        random draws an lme fit without structures gets the same responses for the same ``seed``."""
        return predictions.simulate(self, nsim, seed)

    def refit_response(self, response: np.ndarray):
        """The model refitted to a new response (one value per row, in the order of ``fitted``) by the
        fit's method, through :func:`.fitting.assemble` and :func:`.fitting.fit` with its settings."""
        from .fitting import assemble, fit

        response = np.asarray(response, dtype=float)
        if response.shape != (self.nobs,):
            raise ValueError(f"the response has shape {response.shape}, the model has {self.nobs} rows")
        data = replace(self.data, frame=replace(self.frame, y=response))
        return fit(assemble(data, self.reml), self.control, self.max_iter, self.tolerance)

    def bootstrap(
        self,
        nsim: int,
        statistic=None,
        seed: int | None = None,
        n_jobs: int = 2,
        progress: bool | None = None,
    ) -> pd.DataFrame:
        """Parametric bootstrap as lmer's :meth:`mixedmodels.LinearMixedModel.bootstrap`: simulate
        responses from the fit (:meth:`simulate`), refit each by the fit's method, collect
        ``statistic(refit)`` (default: the rows of :meth:`confint`)."""
        from ...inference.bootstrap import bootstrap

        return bootstrap(self, nsim, statistic, seed, n_jobs, progress)

    def profile_view(self) -> NlmeProfileView:
        """The fit as likelihood profiles see it (:class:`NlmeProfileView`)."""
        return NlmeProfileView(self)

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
        """Confidence intervals in the layout of lmer's :meth:`mixedmodels.LinearMixedModel.confint`.

        Rows: the random effects' standard deviations and correlations (lme: lme4's ``.sig01``, ...
        or, with ``old_names=False``, ``sd_(Intercept)|Subject``, ...), the correlation structure's and
        the variance function's parameters on nlme's scale (``corStruct.Phi``, ``varStruct.power``,
        ...), sigma, then the fixed effects.  ``method``: ``"profile"`` (likelihood profile of the ML
        deviance, as lme4's: a REML fit is refitted by ML; each parameter is held at a value and the
        others maximized, a fixed effect through a refit with an offset), ``"boot"`` (percentile
        intervals of a parametric bootstrap with ``nsim``, ``seed``, ``n_jobs``, ``progress``) or
        ``"wald"`` (fixed effects only, NaN for the variance parameters, as lme4).  nlme's own
        approximate intervals are :meth:`intervals`.
        """
        from ...inference.confint import confint

        return confint(self, method, level, parm, old_names, nsim, seed, n_jobs, progress)

    def profile(
        self, parm=None, old_names: bool = True, alphamax: float = 0.01, maxpts: int = 100, delta=None
    ) -> pd.DataFrame:
        """Likelihood profiles as lmer's :meth:`mixedmodels.LinearMixedModel.profile` (lme4's
        ``profile``), of the parameters :meth:`confint` lists."""
        from ...inference.profile import profile_frame

        return profile_frame(self, parm, old_names, alphamax, maxpts, delta)


class NlmeProfileView(ProfileView):
    """A gls or lme fit as likelihood profiles see it: phi is the optimizer's vector (lme4's theta, then
    the residual structure's unconstrained parameters); a fixed effect is held by a refit with an
    offset (:func:`.fitting.assemble`'s ``held``).

    A structure whose reported parameters are not each a function of one unconstrained parameter
    (``CorSymm``, ``CorARMA`` with more than one) and variance functions of the fitted values (whose
    covariate a refit would change) are not profiled: a clear error says so.
    """

    def __init__(self, fit: NlmeModel):
        residual = fit.residual
        if residual.uses_fitted:
            raise ValueError(
                "profiles need a variance function of a covariate: refits with a fixed effect held would "
                "change the fitted values a variance function of the fitted values uses"
            )
        corstruct = residual.corstruct
        if isinstance(corstruct, (CorSymm, CorARMA)) and corstruct.n_params > 1:
            raise ValueError(
                f"{type(corstruct).__name__}'s parameters are not profiled: each is a function of all "
                "its unconstrained parameters; use intervals() for nlme's approximate intervals"
            )
        self.fit = fit
        self.phi = fit._params.copy()
        likelihood = fit.likelihood
        mixed = fit.problem.mixed
        self.phi_lower = likelihood.lower_bounds if mixed else np.full(len(self.phi), -np.inf)
        self.covariances = likelihood.covariances if mixed else []
        self.theta_slices = likelihood.theta_slices if mixed else []
        if len(fit.structure_parameters) != residual.n_params:
            raise ValueError("the variance function has fixed parameters among free ones: not profiled")

    def structure_reported(self, values: np.ndarray) -> np.ndarray:
        residual = self.fit.residual
        cor, var = residual.split(values)
        parts = [residual.corstruct.coefficients(cor)] if residual.sizes[0] else []
        parts += [residual.varfunc.coefficients(var)] if residual.sizes[1] else []
        return np.concatenate([part.to_numpy() for part in parts])

    def refit(self, reml: bool | None = None, start: np.ndarray | None = None) -> NlmeProfileView:
        from .fitting import assemble, fit

        fit_ = self.fit
        refitted = fit(assemble(fit_.data, fit_.reml if reml is None else reml), fit_.control, start=start)
        return NlmeProfileView(refitted)

    def fixed_effect_held(self, j: int) -> NlmeFixedEffectHeld:
        return NlmeFixedEffectHeld(self.fit, j, self.phi_lower)

    def fixed_effects_at(self, phi: np.ndarray) -> np.ndarray:
        return _estimates(self.fit.likelihood, phi)[1]


class NlmeFixedEffectHeld:
    """The ML deviance of a gls or lme fit over phi with fixed effect ``j`` held at a value: the problem
    :func:`.fitting.assemble` makes with that offset."""

    def __init__(self, fit: NlmeModel, j: int, lower_bounds: np.ndarray):
        self.fit, self.j, self.lower_bounds = fit, j, lower_bounds
        self.likelihood = None

    def hold(self, value: float) -> None:
        from .fitting import assemble

        self.likelihood = assemble(self.fit.data, reml=False, held=(self.j, value)).likelihood

    def __call__(self, phi: np.ndarray) -> float:
        return self.likelihood.deviance(phi)

    def estimates(self, phi: np.ndarray) -> tuple[float, np.ndarray] | None:
        return _estimates(self.likelihood, phi)


def _estimates(likelihood, phi: np.ndarray) -> tuple[float, np.ndarray] | None:
    """(sigma, fixed effects) of a gls or lme likelihood at phi; None where phi gives no valid model."""
    if isinstance(likelihood, LMELikelihood):
        result = likelihood.chol_at(phi)
        if result is None:
            return None
        chol = result[0]
        beta = chol.solve()[0] if likelihood.nfixed else np.zeros(0)
        return math.sqrt(chol.pwrss() / likelihood.nr), beta
    try:
        estimates = likelihood.fit(phi)
    except FitError:
        return None
    return estimates.sigma, estimates.beta
