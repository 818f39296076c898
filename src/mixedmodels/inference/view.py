"""The narrow view of a fitted model that the tests of its fixed effects read.

The t and F tests with their denominator df (:mod:`.ddf`), contrasts (:mod:`.contrasts`) and the ANOVA
tables of lmerTest (:mod:`.anova`) need only what :class:`InferenceView` lists: the estimates and
their covariance, the counts, the fixed-effects design, and the fit as a function of its variance
parameters (:class:`VarianceParameterView`, for Satterthwaite's df).  lmer, lme and gls fits all
provide it, so these tests serve every family; a family gives the df methods it supports in
``ddf_methods`` (Kenward-Roger and containment need lmer's cross-product blocks).

Likelihood profiles read a little more, the fit's ``profile_view()``
(:class:`.profile_view.ProfileView`): the parameter vector of ``confint``, ML refits and the deviance
with a fixed effect held.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from ..frame import ModelFrame

__all__ = ["InferenceView", "VarianceParameterView"]


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
    def varpar(self) -> VarianceParameterView:
        """The fit as a function of its variance parameters."""
