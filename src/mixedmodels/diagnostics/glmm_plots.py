"""Diagnostic plots of a glmer fit (``m.plot``): those of lme4's ``plot.merMod`` and DHARMa that apply
to a generalized linear mixed model.

- ``residuals``: Pearson (or deviance, response, working) residuals against the linear predictor, with
  R's lowess smoother (a trend: a wrong link or mean structure), and ``scale_location``;
- ``qq`` and ``scaled_residuals``: the simulated scaled quantile residuals (DHARMa's ``plotQQunif`` and
  ``plotResiduals``), uniform under the model whatever the family, where a normal QQ plot of
  deviance or Pearson residuals has no reference distribution (binary responses, small counts);
- ``qq_ranef``, ``caterpillar`` and ``residuals_by_group``: the random effects as for an lmer fit (lme4's
  ``qqmath(ranef(m))`` and ``dotplot(ranef(m, condVar = TRUE))``).
"""

from __future__ import annotations

import re
from functools import cache
from typing import TYPE_CHECKING

from .plots import RandomEffectsPlots

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .quantile_residuals import ScaledResiduals

__all__ = ["GlmmPlots"]

DEFAULT_NSIM = 250  # DHARMa's simulateResiduals default


class GlmmPlots(RandomEffectsPlots):
    """The plots of one fitted GLMM (see the module docstring).  The scaled-residual plots simulate
    ``nsim`` responses with ``seed`` unless ``scaled`` (``m.simulate_residuals(...)``) is given."""

    residual_types = ("deviance", "pearson", "response", "working")  # glmer's
    standard = "pearson"  # lme4's plot.merMod
    x_column, x_label = "linear_predictor", "Linear predictor (link scale)"

    def _scaled(self, scaled: ScaledResiduals | None, nsim: int, seed: int | None) -> ScaledResiduals:
        return self.model.simulate_residuals(nsim, seed) if scaled is None else scaled

    def qq(
        self,
        ax: Axes | None = None,
        scaled: ScaledResiduals | None = None,
        nsim: int = DEFAULT_NSIM,
        seed: int | None = None,
    ) -> Figure:
        """Uniform QQ plot of the simulated scaled quantile residuals with the KS test's p-value
        (:meth:`mixedmodels.diagnostics.quantile_residuals.ScaledResiduals.qq`)."""
        return self._scaled(scaled, nsim, seed).qq(ax)

    def scaled_residuals(
        self,
        ax: Axes | None = None,
        scaled: ScaledResiduals | None = None,
        nsim: int = DEFAULT_NSIM,
        seed: int | None = None,
        smooth: bool = True,
    ) -> Figure:
        """The simulated scaled quantile residuals against the rank-transformed fitted means
        (:meth:`mixedmodels.diagnostics.quantile_residuals.ScaledResiduals.versus_predicted`)."""
        return self._scaled(scaled, nsim, seed).versus_predicted(ax, smooth)

    def _standard_set(self) -> dict:
        """residuals, qq and scaled_residuals (one simulation, seed 0), qq_ranef, caterpillar and per
        grouping factor residuals_by_<group>."""
        scaled = cache(lambda: self.model.simulate_residuals(DEFAULT_NSIM, seed=0))
        figures = {
            "residuals": self.residuals,
            "qq": lambda: self.qq(scaled=scaled()),
            "scaled_residuals": lambda: self.scaled_residuals(scaled=scaled()),
            "qq_ranef": self.qq_ranef,
            "caterpillar": self.caterpillar,
        }
        for group in self.model.ranef:
            safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", group)
            figures[f"residuals_by_{safe}"] = lambda g=group: self.residuals_by_group(g)
        return figures
