"""The narrow view of a fitted model that the tests of its fixed effects read.

The t and F tests with their denominator df (:mod:`.ddf`), contrasts (:mod:`.contrasts`) and the ANOVA
tables of lmerTest (:mod:`.anova`) need only what :class:`InferenceView` lists: the estimates and
their covariance, the counts, the fixed-effects design, and the fit as a function of its variance
parameters (:class:`VarianceParameterView`, for Satterthwaite's df).  lmer, lme and gls fits all
provide it, so these tests serve every family; a family gives the df methods it supports in
``ddf_methods`` (containment needs lmer's cross-product blocks).  Kenward-Roger reads lmer's
cross-product blocks, or from gls and lme fits their marginal covariance group by group
(:class:`MarginalCovarianceView`), never a matrix over all rows.

Intervals and the parametric bootstrap (:mod:`.confint`, :mod:`.bootstrap`, :mod:`.parameters`) read
:class:`SimulationView`: the parameters on the scale of lme4's ``confint`` rows, simulation from the
fit and a refit to a new response, which lmer, lme and gls fits provide through their own assemble and
fit functions (so no module here imports a model class).  Likelihood profiles read a little more, the
fit's ``profile_view()`` (:class:`.profile_view.ProfileView`): the parameter vector of ``confint``, ML
refits and the deviance with a fixed effect held.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from ..data.frame import ModelFrame
    from ..engine.covariance import CovarianceStructure

__all__ = [
    "InferenceView",
    "MarginalBlocks",
    "MarginalCovarianceView",
    "SimulationView",
    "VarianceParameterView",
]


class VarianceParameterView(Protocol):
    """A fit as a function of its variance parameters ``varpar`` (sigma last); see :mod:`.varpar`."""

    estimate: np.ndarray  # varpar at the fit

    def deviance(self, varpar: np.ndarray) -> float:
        """-2 log-likelihood (restricted, for REML fits) at varpar, the fixed effects profiled out."""

    def vcov_beta(self, varpar: np.ndarray) -> np.ndarray:
        """The fixed effects' covariance at varpar."""

    @property
    def vcov(self) -> np.ndarray:
        """``vcov_beta`` at the estimate."""

    @property
    def covariance(self) -> np.ndarray:
        """Asymptotic covariance of varpar (2 x the inverse Hessian of the deviance)."""

    @property
    def vcov_jacobian(self) -> np.ndarray:
        """Derivatives of ``vcov_beta`` in each entry of varpar at the estimate, (n_varpar, p, p)."""


@dataclass(frozen=True)
class MarginalBlocks:
    """Independent groups of rows of one size n, stacked: their fixed-effects rows, their marginal
    covariance Sigma_g and its derivatives in the covariance parameters gamma (m of them)."""

    x: np.ndarray  # X_g, (groups, n, p)
    sigma: np.ndarray  # Sigma_g, (groups, n, n)
    first: np.ndarray  # d Sigma_g / d gamma_r, (m, groups, n, n)
    second: np.ndarray  # d^2 Sigma_g / d gamma_r d gamma_s, (m, m, groups, n, n)


class MarginalCovarianceView(Protocol):
    """Var(y) of a fit, block diagonal over groups of rows, as a function of its covariance parameters
    (for Kenward-Roger: :mod:`.kenward_roger`)."""

    n_params: int  # m, the number of covariance parameters gamma

    def blocks(self) -> Iterator[MarginalBlocks]:
        """All groups, a stack of groups of one size at a time."""


@runtime_checkable
class InferenceView(Protocol):
    """What the tests of fixed effects read from a fit."""

    ddf_methods: tuple[str, ...]  # the denominator-df methods (``ddf=``) the fit supports

    @property
    def fixef(self) -> pd.Series:
        """The fixed-effects estimates, named."""

    @property
    def vcov(self) -> pd.DataFrame:
        """The covariance of the estimates the tests use."""

    @property
    def sigma(self) -> float:
        """The residual standard deviation (an F table's Mean Sq is F sigma^2)."""

    @property
    def nobs(self) -> int: ...

    @property
    def n_fixed(self) -> int: ...

    @property
    def frame(self) -> ModelFrame:
        """The model frame: the fixed-effects design, its terms and kept columns, X and the data."""

    @property
    def reml(self) -> bool:
        """Whether the fit maximized the restricted likelihood (Kenward-Roger needs it)."""

    @property
    def varpar(self) -> VarianceParameterView:
        """The fit as a function of its variance parameters."""


class SimulationView(InferenceView, Protocol):
    """What intervals and the parametric bootstrap read from a fit (lmer, lme, gls, glmer)."""

    interval_methods: tuple[str, ...]  # the ``confint`` methods the fit supports

    @property
    def theta(self) -> np.ndarray:
        """The random-effects terms' relative covariance parameters (none for gls)."""

    @property
    def covariances(self) -> list[CovarianceStructure]:
        """The covariance structure of each random-effects term (theta's parameterization)."""

    @property
    def lambdas(self) -> list[np.ndarray]:
        """Each random-effects term's relative covariance factor at the fit."""

    @property
    def structure_parameters(self) -> pd.Series:
        """The residual structure's parameters on their reported scale (none for lmer)."""

    @property
    def fitted(self) -> pd.Series: ...

    def residual_errors(self, standard: np.ndarray) -> np.ndarray:
        """The residual errors of the fitted model from independent standard normal draws (frame order)."""

    def simulate(self, nsim: int = 1, seed=None) -> pd.DataFrame:
        """Responses simulated from the fitted model."""

    def refit_response(self, response: np.ndarray) -> SimulationView:
        """The model refitted to a new response (frame order) by the fit's assemble and fit."""
