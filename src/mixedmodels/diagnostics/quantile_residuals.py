"""Simulated scaled quantile residuals of a fitted model, as DHARMa's ``simulateResiduals``.

For each observation the residual is its place among ``nsim`` responses simulated from the fitted model
(new random effects each time: :meth:`simulate`): the share of simulations below it, so that under the
model the residuals are uniform on (0, 1) whatever the family.  For counts, ties with the simulations
are broken at random (the randomized probability integral transform, DHARMa's ``integerResponse``): the
residual is drawn uniformly between the shares below and at most the observation.  A pattern (a QQ plot
off the diagonal, a Kolmogorov-Smirnov test with a small p-value, as DHARMa's ``testUniformity``) shows
overdispersion, zero inflation or a wrong link or variance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import check_flag, check_integer, check_seed
from . import drawing, smoothers

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["ScaledResiduals", "simulate_residuals"]

TIE_TOLERANCE = 1e-9  # relative: a simulated value this close to the observation is a tie


@dataclass(frozen=True)
class ScaledResiduals:
    """Scaled quantile residuals (``residuals``, in the fit's row order), the simulated responses they
    came from (``simulations``, one column per simulation) and the fitted means (``predicted``,
    DHARMa's ``fittedPredictedResponse``)."""

    residuals: pd.Series
    simulations: pd.DataFrame
    predicted: pd.Series | None = None

    def test_uniformity(self) -> stats._stats_py.KstestResult:
        """Two-sided Kolmogorov-Smirnov test of the residuals against the uniform distribution (DHARMa's
        ``testUniformity``): ``statistic`` and ``pvalue``."""
        return stats.kstest(self.residuals.to_numpy(), "uniform")

    def qq(self, ax: Axes | None = None) -> Figure:
        """Uniform QQ plot of the residuals (DHARMa's ``plotQQunif``): sorted residuals against the
        expected uniform quantiles, with the diagonal and the KS test's p-value in the title."""
        values = np.sort(self.residuals.to_numpy())
        expected = (np.arange(1, len(values) + 1) - 0.5) / len(values)
        figure, (ax,) = drawing.panels(ax, 1, 1, (5.2, 4.6))
        ax.plot(expected, values, "o", color=drawing.POINTS, markersize=4, alpha=0.8, gid="scaled residuals")
        drawing.reference_line(ax, 0.0, 1.0, gid="diagonal")
        ax.set_xlabel("Expected (uniform quantiles)")
        ax.set_ylabel("Observed (scaled residuals)")
        ax.set_title(f"QQ plot of scaled residuals (KS test p = {self.test_uniformity().pvalue:.3g})")
        drawing.style(ax)
        return figure

    def versus_predicted(self, ax: Axes | None = None, smooth: bool = True) -> Figure:
        """The residuals against the rank-transformed predictions (DHARMa's ``plotResiduals``: the
        ranks of the fitted means over their largest, so that the points spread evenly), with dashed
        lines at 0.25, 0.5 and 0.75 and R's lowess smoother of the residuals, which should stay near
        0.5 (DHARMa draws quantile regressions at the three levels instead).  A trend shows a wrong
        mean structure; residuals crowding at 0 and 1 (or at 0.5) show over- (under-) dispersion."""
        smooth = check_flag("smooth", smooth)
        if self.predicted is None:
            raise ValueError("these scaled residuals have no predictions to plot against (predicted=None)")
        ranks = stats.rankdata(self.predicted.to_numpy(), method="average")
        x, y = ranks / ranks.max(), self.residuals.to_numpy()
        figure, (ax,) = drawing.panels(ax, 1, 1, (6.4, 4.4))
        for level in (0.25, 0.5, 0.75):
            ax.axhline(level, color=drawing.REFERENCE, linestyle="--", linewidth=1.0, gid="quartile line")
        ax.plot(x, y, "o", color=drawing.POINTS, markersize=4, alpha=0.75, gid="scaled residuals")
        if smooth:
            line_x, line_y = smoothers.lowess(x, y)
            ax.plot(line_x, line_y, color=drawing.SMOOTH, linewidth=1.8, label="lowess", gid="lowess")
            ax.legend(frameon=False, fontsize=8.5, loc="upper right")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("Model predictions (rank transformed)")
        ax.set_ylabel("Scaled residuals")
        ax.set_title("Scaled residuals vs predicted")
        drawing.style(ax)
        return figure


def simulate_residuals(model, nsim: int = 250, seed: int | None = None) -> ScaledResiduals:
    """Scaled quantile residuals of a fitted GLMM from ``nsim`` simulated responses (see the module
    docstring); the same ``seed`` gives the same residuals."""
    nsim = check_integer("nsim", nsim, minimum=2)
    seed = check_seed(seed)
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    simulation_seed, tie_seed = root.spawn(2)
    simulations = model.simulate(nsim, seed=simulation_seed)
    observed = model.problem.rows.y
    simulated = simulations.to_numpy()
    tol = TIE_TOLERANCE * np.maximum(1.0, np.abs(observed))[:, None]
    below = np.mean(simulated < observed[:, None] - tol, axis=1)
    at_most = np.mean(simulated <= observed[:, None] + tol, axis=1)
    if model.family.integer_response:
        values = np.random.default_rng(tie_seed).uniform(below, at_most)
    else:
        values = at_most
    residuals = pd.Series(values, index=simulations.index, name="scaled residuals")
    return ScaledResiduals(residuals, simulations, model.fitted)
