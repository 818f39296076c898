"""Drawing helpers shared by the plots of every model family: colours, figures and panels, reference
lines, QQ panels and point labels.  matplotlib is imported only when something is drawn."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import check_integer
from .smoothers import normal_scores, qq_line

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["given_axes", "label_points", "panels", "pyplot", "qq_panel", "reference_line", "style"]

POINTS = "#2b5d8a"  # observations and estimates
SMOOTH = "#c44e52"  # smoothers and fitted lines
REFERENCE = "0.45"  # reference lines: zero, QQ line, population estimate
LIGHT = "#9fbfdc"  # box fill, no-pooling estimates
MAX_INCHES = 12.0  # figures grow with the number of levels up to this size
MAX_LABELS = 60  # levels are named on an axis only up to this many


def pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "plots need matplotlib: pip install 'mixedmodels[plots]' (or pip install matplotlib)"
        ) from exc
    return plt


def style(ax: Axes) -> None:
    """Light grid behind the data, no top and right frame lines."""
    ax.grid(True, color="0.88", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=8.5)


def given_axes(ax, count: int) -> tuple[Figure, list[Axes]]:
    """The Axes passed in ``ax`` (one, or a sequence), checked to be ``count``, and their figure."""
    pyplot()
    from matplotlib.axes import Axes

    several = isinstance(ax, (Sequence, np.ndarray)) and not isinstance(ax, str)
    axes = list(np.ravel(ax)) if several else [ax]
    wrong = next((a for a in axes if not isinstance(a, Axes)), None)
    if wrong is not None:
        raise TypeError(f"ax must be a matplotlib Axes or a list of them, not {type(wrong).__name__}")
    if len(axes) != count:
        raise ValueError(f"this plot has {count} panel(s), but {len(axes)} Axes were passed")
    return axes[0].figure, axes


def panels(
    ax, count: int, ncols: int, panel_size: tuple[float, float], **subplots
) -> tuple[Figure, list[Axes]]:
    """``count`` Axes: those passed in ``ax`` (checked), or a new figure with a grid of them."""
    if ax is not None:
        return given_axes(ax, count)
    plt = pyplot()
    ncols = max(1, min(ncols, count))
    nrows = math.ceil(count / ncols)
    figure, grid = plt.subplots(
        nrows,
        ncols,
        figsize=(panel_size[0] * ncols, panel_size[1] * nrows),
        squeeze=False,
        layout="constrained",
        **subplots,
    )
    axes = list(grid.ravel())
    for extra in axes[count:]:
        figure.delaxes(extra)
    return figure, axes[:count]


def reference_line(ax: Axes, intercept: float, slope: float, gid: str) -> None:
    ax.axline((0.0, intercept), slope=slope, color=REFERENCE, linestyle="--", linewidth=1.0, gid=gid)


def qq_panel(ax: Axes, values: np.ndarray, gid: str) -> tuple[np.ndarray, np.ndarray]:
    """Normal QQ plot of ``values`` with R's qqline; returns the normal scores and the sorting order."""
    order = np.argsort(values, kind="stable")
    scores = normal_scores(len(values))
    ax.plot(
        scores,
        values[order],
        "o",
        color=POINTS,
        markersize=4,
        alpha=0.8,
        gid=gid,
    )
    reference_line(ax, *qq_line(values), gid="qq line")
    ax.set_xlabel("Standard normal quantiles")
    style(ax)
    return scores, order


def label_points(ax: Axes, x, y, labels, size, count: int) -> None:
    """Write the labels of the ``count`` points with the largest ``|size|`` next to them."""
    count = check_integer("label_extremes", count, minimum=0)
    for i in np.argsort(-np.abs(np.asarray(size)), kind="stable")[:count]:
        ax.annotate(
            str(labels[i]),
            (x[i], y[i]),
            xytext=(4, 2),
            textcoords="offset points",
            fontsize=7.5,
            color="0.25",
            gid="point label",
        )
