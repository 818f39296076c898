"""gls and lme fits as the narrow view inference reads (:class:`mixedmodels.inference.view.InferenceView`).

With it they take lmer's tests of the fixed effects (lmerTest's t and F tests with Satterthwaite's,
residual or asymptotic df), which nlme does not give.  Their variance parameters are the optimizer's
(lme: lme4's theta of each random-effects term; then the correlation structure's and the variance
function's unconstrained parameters) and sigma; the deviance's terms in them come from the
likelihood (``sigma_free_terms``), so Satterthwaite's derivatives are those of the lmer fit
(:mod:`mixedmodels.inference.varpar`).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from ...inference.ddf import VIEW_DDF_METHODS
from ...inference.varpar import VarianceParameters

__all__ = ["NlmeInferenceView"]


class NlmeInferenceView:
    """The members of gls and lme fits that only inference reads, and ``contrast``."""

    ddf_methods = VIEW_DDF_METHODS

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
        ``"satterthwaite"``, ``"residual"`` or ``"asymptotic"``."""
        from ...inference.contrasts import contrast_table

        return contrast_table(self, contrasts, ddf=ddf, joint=joint, level=level)
