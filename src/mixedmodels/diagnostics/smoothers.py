"""The numbers behind the plots' reference curves and transformed axes: normal scores and R's ``qqline``,
the scale-location transform and R's ``lowess`` smoother (Cleveland 1979)."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

__all__ = ["lowess", "normal_scores", "qq_line", "scale_location"]


# -- normal quantile plots ----------------------------------------------------------------------------
def normal_scores(n: int) -> np.ndarray:
    """R's ``qnorm(ppoints(n))``: the x positions of a normal QQ plot of ``n`` sorted values."""
    a = 3.0 / 8.0 if n <= 10 else 0.5
    return stats.norm.ppf((np.arange(1, n + 1) - a) / (n + 1 - 2 * a))


def scale_location(residuals: np.ndarray) -> np.ndarray:
    """sqrt(|residuals|), the y of a scale-location plot (R's ``plot.lm`` panel 3)."""
    return np.sqrt(np.abs(np.asarray(residuals, dtype=float)))


def qq_line(values: np.ndarray) -> tuple[float, float]:
    """Intercept and slope of R's ``qqline``: the line through the quartiles (type 7) of ``values``."""
    q1, q3 = np.quantile(np.asarray(values, dtype=float), [0.25, 0.75])
    x1, x3 = stats.norm.ppf([0.25, 0.75])
    slope = (q3 - q1) / (x3 - x1)
    return float(q1 - slope * x1), float(slope)


# -- smoother -----------------------------------------------------------------------------------------
def lowess(
    x: np.ndarray, y: np.ndarray, f: float = 2.0 / 3.0, iterations: int = 3, delta: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Robust locally weighted linear regression (Cleveland 1979), as R's ``lowess``.

    Returns x sorted and the smoothed y there.  Each fit uses the ``f n`` nearest points with tricube
    weights, times bisquare robustness weights from the previous pass's residuals (``iterations``
    passes); points within ``delta`` (default 1% of the range of x) of the last fitted point are
    linearly interpolated instead of fitted.
    """
    order = np.argsort(np.asarray(x, dtype=float), kind="stable")
    x = np.asarray(x, dtype=float)[order]
    y = np.asarray(y, dtype=float)[order]
    n = len(x)
    if n < 2:
        return x, y.copy()
    if delta is None:
        delta = 0.01 * (x[-1] - x[0])
    span = max(2, min(n, int(f * n + 1e-7)))
    robustness = None
    for iteration in range(iterations + 1):
        smooth = _lowess_pass(x, y, span, delta, robustness)
        residuals = np.abs(y - smooth)
        if iteration == iterations:
            break
        middle = n // 2
        ordered = np.partition(residuals, [n - middle - 1, middle])
        cmad = 3.0 * (ordered[middle] + ordered[n - middle - 1]) if n % 2 == 0 else 6.0 * ordered[middle]
        if cmad < 1e-7 * residuals.mean():
            break
        with np.errstate(divide="ignore", invalid="ignore"):  # cmad = 0: every weight is 1
            bisquare = (1.0 - (residuals / cmad) ** 2) ** 2
        robustness = np.where(
            residuals <= 0.001 * cmad, 1.0, np.where(residuals <= 0.999 * cmad, bisquare, 0.0)
        )
    return x, smooth


def _lowess_pass(x, y, span, delta, robustness) -> np.ndarray:
    """One pass of lowess over sorted x: local fits at every point not skipped by ``delta``."""
    n = len(x)
    smooth = np.empty(n)
    left, right = 0, span - 1
    last = -1
    i = 0
    while True:
        while right < n - 1 and x[i] - x[left] > x[right + 1] - x[i]:
            left += 1
            right += 1
        value = _local_fit(x, y, i, left, right, robustness)
        smooth[i] = y[i] if value is None else value
        if last < i - 1:
            alpha = (x[last + 1 : i] - x[last]) / (x[i] - x[last])
            smooth[last + 1 : i] = alpha * smooth[i] + (1.0 - alpha) * smooth[last]
        last = i
        ties = int(np.searchsorted(x, x[last], side="right"))
        smooth[last + 1 : ties] = smooth[last]
        last = ties - 1
        if last >= n - 1:
            return smooth
        beyond = int(np.searchsorted(x, x[last] + delta, side="right"))
        i = max(last + 1, beyond - 1)


def _local_fit(x, y, i, left, right, robustness) -> float | None:
    """Weighted linear fit at x[i] over the window from ``left`` (ties beyond ``right`` included)."""
    center = x[i]
    radius = max(center - x[left], x[right] - center)
    end = min(len(x), int(np.searchsorted(x, center + radius, side="right")) + 1)
    window = x[left:end]
    distance = np.abs(window - center)
    outside = (distance > 0.999 * radius) & (window > center)
    if outside.any():
        end = left + int(np.argmax(outside))
        window, distance = window[: end - left], distance[: end - left]
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = np.where(
            distance <= 0.999 * radius,
            np.where(distance <= 0.001 * radius, 1.0, (1.0 - (distance / radius) ** 3) ** 3),
            0.0,
        )
    if robustness is not None:
        weights = weights * robustness[left:end]
    total = weights.sum()
    if total <= 0.0:
        return None
    weights = weights / total
    if radius > 0.0:
        mean = np.dot(weights, window)
        spread = np.dot(weights, (window - mean) ** 2)
        if math.sqrt(spread) > 0.001 * (x[-1] - x[0]):
            weights = weights * ((center - mean) / spread * (window - mean) + 1.0)
    return float(np.dot(weights, y[left:end]))
