"""glmer's printed summary of a fitted generalized linear mixed model: lme4's layout with z tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .lmer import LmerSummary

if TYPE_CHECKING:
    from ..models.glmm import GeneralizedLinearMixedModel

__all__ = ["GlmerSummary"]


class GlmerSummary(LmerSummary):
    """The summary of a ``glmer`` fit; ``str()`` gives lme4's layout."""

    def __init__(self, model: GeneralizedLinearMixedModel):
        self.model = model

    @property
    def coefficients(self) -> pd.DataFrame:
        """Estimate, Std. Error, z value and Pr(>|z|) of the fixed effects."""
        return self.model.coef_table()

    @property
    def scaled_residuals(self) -> np.ndarray:
        """Pearson residuals (over sigma for families with a dispersion), as lme4's 'Scaled residuals'."""
        return self.model.residuals("pearson").to_numpy() / self.model.sigma

    def _header_lines(self) -> list[str]:
        m = self.model
        quadrature = (
            "Laplace Approximation" if m.nagq == 1 else f"Adaptive Gauss-Hermite Quadrature, nAGQ = {m.nagq}"
        )
        lines = [
            f"Generalized linear mixed model fit by maximum likelihood ({quadrature}) ['glmerMod']",
            f" Family: {m.family.name}  ( {m.family.link.name} )",
            f"Formula: {m.problem.formula_text}",
        ]
        if m.frame.weights is not None:
            lines.append("Weights: prior weights given")
        return lines + [""] + self._likelihood_lines()
