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

from ..errors import check_integer, check_seed
from . import drawing

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["ScaledResiduals", "simulate_residuals"]

TIE_TOLERANCE = 1e-9  # relative: a simulated value this close to the observation is a tie


@dataclass(frozen=True)
class ScaledResiduals:
    """Scaled quantile residuals (``residuals``, in the fit's row order) and the simulated responses they
    came from (``simulations``, one column per simulation)."""

    residuals: pd.Series
    simulations: pd.DataFrame

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
    return ScaledResiduals(residuals, simulations)
