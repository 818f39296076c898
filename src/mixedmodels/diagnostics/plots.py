"""Diagnostic plots of a fitted model: ``m.plot.residuals()``, ``m.plot.qq()``, ...

lmer fits get :class:`ModelPlots`; gls and lme fits :class:`NlmePlots` (the residual plots of
:class:`ResidualPlots` with nlme's residual types, and QQ plots of lme's random effects).

Each method draws one standard picture and returns its matplotlib Figure.  Pass ``ax`` (an Axes, or a
sequence of Axes with one per panel for the multi-panel plots) to draw into an existing figure.  The
numbers drawn come from :mod:`.influence`, :mod:`.smoothers` and the fit, so they can be checked or
used without pictures; the drawing helpers shared by every plot are in :mod:`.drawing`.  matplotlib
is imported only when a plot is made (``pip install mixedmodels[plots]``).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import check_choice, check_flag, check_instance, check_integer, check_probability, check_real
from . import drawing, smoothers
from . import influence as diagnostics

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..models.lmm import LinearMixedModel
    from ..models.nlme.results import NlmeModel

__all__ = ["ModelPlots", "NlmePlots", "RandomEffectsPlots", "ResidualPlots"]


class ResidualPlots:
    """The residual plots every fit has (``m.plot`` of a gls fit): residuals against fitted values, their
    normal QQ plot and the scale-location plot.

    The numbers come from the fit's ``residual_diagnostics`` table, whose ``fitted`` column and residual
    columns (``residual_types``; ``"response"`` is its column ``residual``) a family defines;
    ``standard`` is the type with unit variance under the model that the QQ and scale-location plots
    show by default.
    """

    residual_types: tuple[str, ...] = ("response", "pearson", "normalized")  # nlme's types
    standard = "normalized"
    x_column, x_label = "fitted", "Fitted values"  # what the residuals are plotted against

    def __init__(self, model: LinearMixedModel | NlmeModel):
        self.model = model

    def _residual_values(self, type: str | None) -> tuple[str, np.ndarray]:
        """The residuals of ``type`` (default :attr:`standard`), checked, with the type."""
        type = self.standard if type is None else check_choice("type", type, self.residual_types)
        column = "residual" if type == "response" else type
        return type, self.model.residual_diagnostics[column].to_numpy()

    def _residual_label(self, type: str) -> str:
        return "Residuals" if type == "response" else f"{type.capitalize()} residuals"

    # -- residuals --------------------------------------------------------------------------------------
    def residuals(
        self,
        ax: Axes | None = None,
        smooth: bool = True,
        label_extremes: int = 3,
        type: str = "pearson",  # nlme's name
    ) -> Figure:
        """Residuals of ``type`` against fitted values, with a zero line and R's lowess smoother.

        The ``label_extremes`` rows with the largest :attr:`standard` residuals are labelled by their index.
        """
        smooth = check_flag("smooth", smooth)
        type, values = self._residual_values(type)
        table = self.model.residual_diagnostics
        figure, (ax,) = drawing.panels(ax, 1, 1, (6.4, 4.4))
        fitted = table[self.x_column].to_numpy()
        ax.axhline(0.0, color=drawing.REFERENCE, linestyle="--", linewidth=1.0, gid="zero line")
        ax.plot(fitted, values, "o", color=drawing.POINTS, markersize=4, alpha=0.75, gid="residuals")
        if smooth:
            x, y = smoothers.lowess(fitted, values)
            ax.plot(x, y, color=drawing.SMOOTH, linewidth=1.8, label="lowess", gid="lowess")
            ax.legend(frameon=False, fontsize=8.5, loc="upper right")
        drawing.label_points(ax, fitted, values, table.index, self._residual_values(None)[1], label_extremes)
        ax.set_xlabel(self.x_label)
        ax.set_ylabel(self._residual_label(type))
        ax.set_title("Residuals vs fitted")
        drawing.style(ax)
        return figure

    def qq(self, ax: Axes | None = None, label_extremes: int = 3, type: str | None = None) -> Figure:
        """Normal QQ plot of the residuals of ``type`` (default :attr:`standard`) with R's qqline
        (through the quartiles)."""
        type, values = self._residual_values(type)
        table = self.model.residual_diagnostics
        figure, (ax,) = drawing.panels(ax, 1, 1, (5.2, 4.6))
        scores, order = drawing.qq_panel(ax, values, gid=f"{type} residuals")
        ordered = values[order]
        drawing.label_points(ax, scores, ordered, table.index[order], ordered, label_extremes)
        ax.set_ylabel(self._residual_label(type))
        ax.set_title("Normal Q-Q plot of residuals")
        return figure

    def scale_location(self, ax: Axes | None = None, smooth: bool = True, type: str | None = None) -> Figure:
        """sqrt(|residuals|) of ``type`` (default :attr:`standard`) against fitted values, with R's lowess
        smoother: a trend shows a variance that changes with the mean
        (:func:`mixedmodels.diagnostics.smoothers.scale_location` gives the numbers)."""
        smooth = check_flag("smooth", smooth)
        type, values = self._residual_values(type)
        fitted = self.model.residual_diagnostics[self.x_column].to_numpy()
        root = smoothers.scale_location(values)
        figure, (ax,) = drawing.panels(ax, 1, 1, (6.4, 4.4))
        ax.plot(fitted, root, "o", color=drawing.POINTS, markersize=4, alpha=0.75, gid="root residuals")
        if smooth:
            x, y = smoothers.lowess(fitted, root)
            ax.plot(x, y, color=drawing.SMOOTH, linewidth=1.8, label="lowess", gid="lowess")
            ax.legend(frameon=False, fontsize=8.5, loc="upper right")
        ax.set_xlabel(self.x_label)
        ax.set_ylabel(f"sqrt(|{self._residual_label(type)}|)")
        ax.set_title("Scale-location")
        drawing.style(ax)
        return figure

    # -- all of them ----------------------------------------------------------------------------------------
    def _standard_set(self) -> dict:
        """File name -> drawing function of the plots :meth:`save_all` writes."""
        return {"residuals": self.residuals, "qq": self.qq, "scale_location": self.scale_location}

    def save_all(self, directory: str | Path, dpi: int = 150) -> list[Path]:
        """Write the standard set as PNG files into ``directory``; returns their paths."""
        plt = drawing.pyplot()
        if check_real("dpi", dpi, finite=True) < 10:
            raise ValueError(f"dpi must be at least 10 (too few pixels to draw the labels), not {dpi!r}")
        directory = Path(check_instance("directory", directory, (str, os.PathLike), "a path"))
        if directory.exists() and not directory.is_dir():
            raise ValueError(f"cannot write the plots into {str(directory)!r}: it is a file, not a directory")
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for name, draw in self._standard_set().items():
            figure = draw()
            path = directory / f"{name}.png"
            figure.savefig(path, dpi=dpi)
            plt.close(figure)
            written.append(path)
        return written


def _qq_ranef_figure(ranef: dict[str, pd.DataFrame], groups: list[str], ax) -> Figure:
    """Normal QQ plots of the conditional modes of ``groups``: one panel per random-effects column."""
    panels = [(g, column) for g in groups for column in ranef[g].columns]
    figure, axes = drawing.panels(ax, len(panels), 3, (4.0, 3.6))
    for axis, (g, column) in zip(axes, panels):
        drawing.qq_panel(axis, ranef[g][column].to_numpy(), gid="conditional modes")
        axis.set_ylabel("Conditional mode")
        axis.set_title(f"{g}: {column}", fontsize=10)
    if ax is None:
        figure.suptitle("Normal Q-Q plots of the random effects")
    return figure


class NlmePlots(ResidualPlots):
    """The plots of a gls or lme fit (``m.plot``): nlme's residual types (response, pearson,
    normalized: the default of the QQ and scale-location plots, independent under the model's
    correlation structure) and, for lme, QQ plots of the random effects."""

    def qq_ranef(self, group: str | None = None, ax=None) -> Figure:
        """Normal QQ plots of the random effects (BLUPs) of grouping level ``group`` (default every
        level): one panel per column."""
        if self.model.kind != "lme":
            raise ValueError("a gls fit has no random effects; qq_ranef is for lme fits")
        ranef = self.model.ranef
        if group is not None and group not in ranef:
            raise ValueError(f"unknown group {group!r}: the grouping levels are {', '.join(ranef)}")
        return _qq_ranef_figure(ranef, list(ranef) if group is None else [group], ax)

    def _standard_set(self) -> dict:
        figures = super()._standard_set()
        if self.model.kind == "lme":
            figures["qq_ranef"] = self.qq_ranef
        return figures


class RandomEffectsPlots(ResidualPlots):
    """The plots of the random effects that lmer and glmer fits share: residuals by group, normal QQ
    plots of the conditional modes and their caterpillar plot with conditional-variance intervals."""

    # -- helpers ----------------------------------------------------------------------------------------
    def _groups(self, group: str | None) -> list[str]:
        """The grouping factor ``group`` (checked), or all of them."""
        if group is None:
            return list(self.model.ranef)
        diagnostics._group_terms(self.model, group)  # raises for a name that is not a grouping factor
        return [group]

    def _default_group(self, group: str | None) -> str:
        """The given group, or the grouping factor with the most levels (lme4's first term)."""
        return self.model.frame.terms[0].group.name if group is None else group

    def residuals_by_group(self, group: str | None = None, ax: Axes | None = None) -> Figure:
        """Boxplots of the residuals for each level of ``group`` (a grouping factor or a data column).

        ``group`` defaults to the grouping factor with the most levels.
        """
        group = self._default_group(group)
        codes, levels = diagnostics.group_codes(self.model, group)
        pearson = self.model.residual_diagnostics["pearson"].to_numpy()
        figure, (ax,) = drawing.panels(
            ax, 1, 1, (min(drawing.MAX_INCHES, max(5.0, 0.28 * len(levels) + 1.6)), 4.4)
        )
        ax.axhline(0.0, color=drawing.REFERENCE, linestyle="--", linewidth=1.0, gid="zero line")
        boxes = ax.boxplot(
            [pearson[codes == j] for j in range(len(levels))],
            patch_artist=True,
            widths=0.6,
            boxprops={"facecolor": drawing.LIGHT, "edgecolor": drawing.POINTS, "linewidth": 0.9},
            medianprops={"color": drawing.POINTS, "linewidth": 1.6},
            whiskerprops={"color": drawing.POINTS, "linewidth": 0.9},
            capprops={"color": drawing.POINTS, "linewidth": 0.9},
            flierprops={
                "marker": "o",
                "markersize": 3,
                "markerfacecolor": drawing.POINTS,
                "markeredgecolor": "none",
            },
        )
        for median in boxes["medians"]:
            median.set_gid("median")
        if len(levels) <= drawing.MAX_LABELS:
            ax.set_xticks(np.arange(1, len(levels) + 1), [str(v) for v in levels])
            if len(levels) > 12:
                ax.tick_params(axis="x", labelrotation=90, labelsize=7.5)
        else:
            ax.set_xticks([])
        ax.set_xlabel(group if len(levels) <= drawing.MAX_LABELS else f"{group} ({len(levels)} levels)")
        ax.set_ylabel(self._residual_label("pearson"))
        ax.set_title(f"Residuals by {group}")
        drawing.style(ax)
        ax.grid(False, axis="x")
        return figure

    # -- random effects ---------------------------------------------------------------------------------
    def _ranef_panels(self, group: str | None) -> list[tuple[str, str]]:
        return [(g, column) for g in self._groups(group) for column in self.model.ranef[g].columns]

    def qq_ranef(self, group: str | None = None, ax=None) -> Figure:
        """Normal QQ plots of the conditional modes (BLUPs): one panel per random-effects column.

        ``group`` defaults to every grouping factor.
        """
        return _qq_ranef_figure(self.model.ranef, self._groups(group), ax)

    def caterpillar(self, group: str | None = None, ax=None, level: float = 0.95) -> Figure:
        """Conditional modes with ``level`` intervals from their conditional variances, sorted.

        One panel per random-effects column of ``group`` (default: of every grouping factor); within a
        grouping factor the levels are sorted by its first column, so the rows of its panels line up (as
        lme4's ``dotplot(ranef(m, condVar = TRUE))``).
        """
        level = check_probability("level", level)
        groups = self._groups(group)
        panels = self._ranef_panels(group)
        if ax is None:
            plt = drawing.pyplot()
            widest = max(len(self.model.ranef[g].columns) for g in groups)
            heights = [
                min(drawing.MAX_INCHES, max(1.6, 0.16 * len(self.model.ranef[g]) + 0.9)) for g in groups
            ]
            figure = plt.figure(figsize=(3.8 * widest + 0.6, sum(heights)), layout="constrained")
            grid = figure.add_gridspec(len(groups), widest, height_ratios=heights)
            axes = [
                figure.add_subplot(grid[r, c])
                for r, g in enumerate(groups)
                for c in range(len(self.model.ranef[g].columns))
            ]
        else:
            figure, axes = drawing.given_axes(ax, len(panels))
        z = stats.norm.ppf(0.5 + level / 2)
        for axis, (g, column) in zip(axes, panels):
            effects = self.model.ranef[g]
            c = list(effects.columns).index(column)
            order = np.argsort(effects.iloc[:, 0].to_numpy(), kind="stable")
            values = effects[column].to_numpy()[order]
            half = z * np.sqrt(self.model.ranef_condvar[g][order, c, c])
            positions = np.arange(len(values))
            axis.axvline(0.0, color=drawing.REFERENCE, linestyle="--", linewidth=1.0, gid="zero line")
            points, _, (bars,) = axis.errorbar(
                values,
                positions,
                xerr=half,
                fmt="o",
                color=drawing.POINTS,
                ecolor=drawing.LIGHT,
                elinewidth=2.0,
                markersize=3.5,
            )
            points.set_gid("conditional modes")
            bars.set_gid("intervals")
            labels = [str(v) for v in effects.index[order]]
            if len(labels) <= drawing.MAX_LABELS:
                axis.set_yticks(positions, labels, fontsize=7 if len(labels) > 30 else 8)
            else:
                axis.set_yticks([])
            axis.set_ylim(-0.7, len(values) - 0.3)
            axis.set_xlabel(f"Conditional mode ± {level:.0%} interval", fontsize=9)
            axis.set_title(f"{g}: {column}", fontsize=10)
            drawing.style(axis)
            axis.grid(False, axis="y")
        return figure


class ModelPlots(RandomEffectsPlots):
    """The plots of one fitted linear mixed model (``m.plot``)."""

    residual_types = ("response", "pearson", "standardized")  # lme4's
    standard = "standardized"

    def _residual_label(self, type: str) -> str:
        if type == "pearson" and self.model.frame.weights is None:
            return "Residuals"  # without prior weights lme4's Pearson residuals are the response's
        return super()._residual_label(type)

    def shrinkage(
        self, group: str | None = None, ax: Axes | None = None, columns: Sequence[str] | None = None
    ) -> Figure:
        """Per-level separate fits (no pooling) against the model's estimates (partial pooling).

        Each level's coefficients are drawn twice: from a least-squares fit to its own rows
        (:func:`mixedmodels.diagnostics.separate_fits`, open circles) and as ``coef`` from the mixed
        model (filled), joined by an arrow; the population estimate (the fixed effects) is marked.  With
        one random-effects column it is a dot chart; with two or more, ``columns`` (default the first
        two) are plotted against each other with the 95% contour of the estimated random-effects
        distribution around the population estimate.  ``group`` defaults to the grouping factor with
        the most levels.
        """
        group = self._default_group(group)
        separate = diagnostics.separate_fits(self.model, group)
        effects = self.model.ranef[group]
        pooled = self.model.coef[group][effects.columns]
        size = (
            (6.0, 5.2) if effects.shape[1] > 1 else (5.6, min(drawing.MAX_INCHES, 0.2 * len(effects) + 1.6))
        )
        figure, (ax,) = drawing.panels(ax, 1, 1, size)
        if effects.shape[1] == 1:
            self._shrinkage_dots(ax, group, separate.iloc[:, 0], pooled.iloc[:, 0])
        else:
            chosen = list(effects.columns[:2]) if columns is None else list(columns)
            if len(chosen) != 2 or not set(chosen) <= set(effects.columns):
                raise ValueError(f"columns must be two of {list(effects.columns)}, not {columns!r}")
            self._shrinkage_plane(ax, group, separate[chosen], pooled[chosen])
        ax.legend(frameon=False, fontsize=8, loc="best")
        drawing.style(ax)
        return figure

    def _shrinkage_dots(self, ax: Axes, group: str, separate: pd.Series, pooled: pd.Series) -> None:
        order = np.argsort(np.nan_to_num(separate.to_numpy(), nan=np.inf), kind="stable")
        positions = np.arange(len(order))
        population = diagnostics.coefficient_shift(self.model, [separate.name])[0]
        ax.axvline(
            population, color=drawing.REFERENCE, linestyle="--", linewidth=1.0, label="population estimate"
        )
        for y, (a, b) in zip(positions, zip(separate.to_numpy()[order], pooled.to_numpy()[order])):
            if np.isfinite(a):
                ax.annotate("", (b, y), (a, y), arrowprops={"arrowstyle": "->", "color": "0.6", "lw": 0.8})
        ax.plot(
            separate.to_numpy()[order], positions, "o", mfc="white", mec=drawing.POINTS, markersize=5,
            label="separate fits (no pooling)", gid="separate fits",
        )  # fmt: skip
        ax.plot(
            pooled.to_numpy()[order], positions, "o", color=drawing.POINTS, markersize=5,
            label="mixed model (partial pooling)", gid="mixed model",
        )  # fmt: skip
        if len(order) <= drawing.MAX_LABELS:
            ax.set_yticks(positions, [str(v) for v in separate.index[order]], fontsize=8)
        else:
            ax.set_yticks([])
        ax.set_xlabel(str(separate.name))
        ax.set_ylabel(group)
        ax.set_title(f"Shrinkage of {group} estimates: {separate.name}")

    def _shrinkage_plane(self, ax: Axes, group: str, separate: pd.DataFrame, pooled: pd.DataFrame) -> None:
        columns = list(separate.columns)
        center = diagnostics.coefficient_shift(self.model, columns)
        for (a, b), (c, d) in zip(separate.to_numpy(), pooled.to_numpy()):
            if np.isfinite(a) and np.isfinite(b):
                ax.annotate("", (c, d), (a, b), arrowprops={"arrowstyle": "->", "color": "0.6", "lw": 0.8})
        self._covariance_contour(ax, group, columns, center)
        ax.plot(
            separate.iloc[:, 0], separate.iloc[:, 1], "o", mfc="white", mec=drawing.POINTS, markersize=5,
            label="separate fits (no pooling)", gid="separate fits",
        )  # fmt: skip
        ax.plot(
            pooled.iloc[:, 0], pooled.iloc[:, 1], "o", color=drawing.POINTS, markersize=5,
            label="mixed model (partial pooling)", gid="mixed model",
        )  # fmt: skip
        ax.plot(
            *center, "P", color=drawing.SMOOTH, markersize=10, label="population estimate", gid="population"
        )
        ax.set_xlabel(columns[0])
        ax.set_ylabel(columns[1])
        ax.set_title(f"Shrinkage of per-{group} estimates")

    def _covariance_contour(self, ax: Axes, group: str, columns: list[str], center: np.ndarray) -> None:
        """95% contour of the estimated random-effects distribution N(center, Sigma) in two columns."""
        sigma = diagnostics.random_effects_covariance(self.model, group).loc[columns, columns].to_numpy()
        radius = math.sqrt(stats.chi2.ppf(0.95, 2))
        angles = np.linspace(0.0, 2.0 * np.pi, 200)
        values, vectors = np.linalg.eigh(sigma)
        circle = np.stack([np.cos(angles), np.sin(angles)])
        ellipse = center[:, None] + radius * vectors @ (np.sqrt(np.maximum(values, 0.0))[:, None] * circle)
        ax.plot(
            *ellipse, color=drawing.SMOOTH, lw=1.0, alpha=0.7, label="95% of random effects", gid="contour"
        )

    # -- data and fitted lines ----------------------------------------------------------------------------
    def _default_x(self, group: str) -> str:
        """The numeric variable of the group's random-effects terms, else of the fixed effects."""
        data = self.model.frame.data
        lhs = [t.term.lhs for t in self.model.frame.terms if t.group.name == group]
        for rhs in lhs + [self.model.frame.formula.fixed]:
            for name in rhs.names[0]:
                if name in data and pd.api.types.is_numeric_dtype(data[name].dtype):
                    return name
        raise ValueError(f"no numeric variable to plot {group!r} against: pass x=, a column of the data")

    def fitted_lines(
        self, group: str | None = None, x: str | None = None, ax=None, max_panels: int = 36
    ) -> Figure:
        """The data and the fitted values against ``x``, one panel per level of ``group``.

        Each panel shows the level's observations, the model's fitted values (a line through them in
        ``x`` order, averaged at equal ``x``) and the population line (fixed effects only, dashed).
        ``group`` defaults to the grouping factor with the most levels; ``x`` to the numeric variable of
        the group's random-effects terms (the slope's variable), else of the fixed effects; a
        categorical ``x`` is placed at its levels.  Only the first ``max_panels`` levels are drawn.
        """
        group = self._default_group(group)
        codes, levels = diagnostics.group_codes(self.model, group)
        x = self._default_x(group) if x is None else check_instance("x", x, str, "a column name")
        data = self.model.frame.data
        if x not in data.columns:
            raise ValueError(f"x must be a column the model uses ({list(data.columns)}), not {x!r}")
        column = data[x]
        categorical = not pd.api.types.is_numeric_dtype(column.dtype)
        if categorical:
            categories = column.astype("category")
            positions, tick_labels = categories.cat.codes.to_numpy(), list(categories.cat.categories)
        else:
            positions, tick_labels = column.to_numpy(dtype=float), None
        observed = self.model.frame.y
        fitted = self.model.fitted.to_numpy()
        population = self.model.predict(re_form="~0").to_numpy()
        shown = min(len(levels), check_integer("max_panels", max_panels))
        ncols = math.ceil(math.sqrt(shown))
        figure, axes = drawing.panels(ax, shown, ncols, (2.1, 1.9), sharex=True, sharey=True)
        for j, axis in enumerate(axes):
            rows = codes == j
            xs = positions[rows]
            axis.plot(xs, observed[rows], "o", color=drawing.POINTS, markersize=3, alpha=0.8, gid="observed")
            for values, style, gid in (
                (
                    population[rows],
                    {"color": drawing.REFERENCE, "linestyle": "--", "linewidth": 1.0},
                    "population",
                ),
                (fitted[rows], {"color": drawing.SMOOTH, "linewidth": 1.5}, "fitted"),
            ):
                line_x, line_y = _mean_by_x(xs, values)
                axis.plot(line_x, line_y, gid=gid, **style)
            axis.set_title(str(levels[j]), fontsize=8, pad=2)
            if tick_labels is not None:
                axis.set_xticks(np.arange(len(tick_labels)), [str(t) for t in tick_labels])
            drawing.style(axis)
            axis.tick_params(labelsize=7)
        if ax is None:
            for axis in axes[-ncols:]:  # bottom panel of each column of the grid
                axis.xaxis.set_tick_params(labelbottom=True)
            figure.supxlabel(x)
            figure.supylabel(self.model.frame.formula.response)
            more = f", first {shown} of {len(levels)}" if shown < len(levels) else ""
            figure.suptitle(f"Data and fitted lines by {group} (dashed: population{more})")
        return figure

    def profile(
        self, profile: pd.DataFrame | None = None, ax=None, level: float = 0.95, ncols: int = 3
    ) -> Figure:
        """Likelihood profiles (lme4's ``xyplot(profile(m))``): zeta against each parameter's value.

        One panel per parameter of ``profile`` (``m.profile()`` when not given), with dashed lines at
        zeta = 0 and +-z for ``level``: where the trace crosses them are the profile interval's limits
        (``m.confint(method="profile", level=level)``).  A straight trace means the Wald interval is
        good; a curved one, that the profile interval is the one to report.
        """
        level = check_probability("level", level)
        ncols = check_integer("ncols", ncols)
        table = self.model.profile() if profile is None else profile
        names = list(dict.fromkeys(table["parameter"]))
        figure, axes = drawing.panels(ax, len(names), ncols, (3.4, 3.0))
        z = float(stats.norm.ppf(0.5 + level / 2))
        for axis, name in zip(axes, names):
            rows = table[table["parameter"] == name].sort_values("value")
            axis.plot(
                rows["value"], rows["zeta"], "-", color=drawing.POINTS, linewidth=1.4, gid="profile trace"
            )
            axis.axhline(0.0, color=drawing.REFERENCE, linewidth=0.8, gid="zero")
            for limit in (-z, z):
                axis.axhline(limit, color=drawing.REFERENCE, linestyle="--", linewidth=0.8, gid="level")
            axis.set_title(name, fontsize=10)
            axis.set_xlabel("value")
            axis.set_ylabel("zeta")
            drawing.style(axis)
        if ax is None:
            figure.suptitle(f"Profile zeta; dashed lines at zeta = \u00b1{z:.2f} ({level:.0%} limits)")
        return figure

    # -- all of them ----------------------------------------------------------------------------------------
    def _standard_set(self) -> dict:
        """residuals, qq, qq_ranef, caterpillar, and per grouping factor residuals_by_<group> and
        shrinkage_<group>; fitted_lines when the first grouping factor has a numeric variable to plot
        against."""
        figures = {
            "residuals": self.residuals,
            "qq": self.qq,
            "qq_ranef": self.qq_ranef,
            "caterpillar": self.caterpillar,
        }
        for group in self.model.ranef:
            safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", group)
            figures[f"residuals_by_{safe}"] = lambda g=group: self.residuals_by_group(g)
            figures[f"shrinkage_{safe}"] = lambda g=group: self.shrinkage(g)
        try:
            self._default_x(self._default_group(None))
            figures["fitted_lines"] = self.fitted_lines
        except ValueError:
            pass  # nothing numeric to draw lines against
        return figures


def _mean_by_x(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct x and the mean of y at each."""
    distinct, codes = np.unique(x, return_inverse=True)
    return distinct, np.bincount(codes, weights=y) / np.bincount(codes)
