"""glmer's printed summary of a fitted generalized linear mixed model: lme4's layout with z tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .lmer import LmerSummary

if TYPE_CHECKING:
    from ..models.glmm import GeneralizedLinearMixedModel

__all__ = ["GlmerSummary", "GlmmTMBSummary"]


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


class GlmmTMBSummary(GlmerSummary):
    """The summary of a fit as glmmTMB's (an nbinom2 fit): the family, the likelihood table, the random
    effects, the dispersion parameter and the conditional model's z tests."""

    def __str__(self) -> str:
        m = self.model
        lines = [
            f" Family: {m.family.name}  ( {m.family.link.name} )",
            f"Formula:          {m.problem.formula_text}",
        ]
        if m.frame.weights is not None:
            lines.append("Weights: prior weights given")
        lines += [""] + self._likelihood_lines() + ["", "Random effects:", "", "Conditional model:"]
        lines += self._random_effects_lines()
        groups = "; ".join(f"{name}, {count}" for name, count in m.ngroups.items())
        lines.append(f"Number of obs: {m.nobs}, groups:  {groups}")
        if m.frame.n_missing:
            lines.append(f"({m.frame.n_missing} observations deleted due to missingness)")
        lines += ["", f"Dispersion parameter for {m.family.name} family (): {m.nb_theta:.3g}", ""]
        lines += ["Conditional model:"] + self._fixed_effects_lines()[1:]
        if m.messages:
            lines += [""] + m.messages
        return "\n".join(lines)
