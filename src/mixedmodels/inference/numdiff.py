"""Numerical derivatives by central differences with one Richardson extrapolation (error O(h^4)).

Used where lmerTest uses numDeriv (Hessian of the deviance in the variance parameters, Jacobian of the
fixed effects' covariance); one extrapolation step gives about 1e-9 relative accuracy for these smooth
functions, far below the 1e-4 at which degrees of freedom are reported.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["jacobian", "hessian", "derivatives"]


def _steps(x: np.ndarray, relative: float) -> np.ndarray:
    return relative * np.maximum(np.abs(x), 0.1)


def jacobian(fun: Callable[[np.ndarray], np.ndarray], x: np.ndarray, relative: float = 1e-3) -> np.ndarray:
    """d fun / d x as an array of shape fun(x).shape + (len(x),)."""
    x = np.asarray(x, dtype=float)
    steps = _steps(x, relative)

    def central(direction: np.ndarray, step: float) -> np.ndarray:
        return (np.asarray(fun(x + step * direction)) - np.asarray(fun(x - step * direction))) / (2 * step)

    columns = []
    for direction, h in zip(np.eye(len(x)), steps):
        columns.append((4 * central(direction, h / 2) - central(direction, h)) / 3)
    return np.stack(columns, axis=-1)


def derivatives(
    fun: Callable[[np.ndarray], np.ndarray], x: np.ndarray, relative: float = 2e-2, levels: int = 3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Value, first and second derivatives of an array-valued function, from one stencil.

    Returns ``fun(x)``, the Jacobian (shape ``fun(x).shape + (k,)``) and the Hessian of every output
    (shape ``fun(x).shape + (k, k)``).  The second derivatives use the 3-point rule on the diagonal and
    the 4-point rule ``(f(++) - f(+-) - f(-+) + f(--)) / (4 h_i h_j)`` off it, at steps h and h/2
    combined by Richardson; that is 1 + 4 k^2 evaluations, and the first derivatives come from the
    same points.  Evaluating several quantities in one call costs no more than one of them.
    """
    x = np.asarray(x, dtype=float)
    k = len(x)
    steps = _steps(x, relative)
    center = np.asarray(fun(x), dtype=float)
    unit = np.eye(k)

    def at(step: np.ndarray) -> np.ndarray:
        return np.asarray(fun(x + step), dtype=float)

    def estimates(scale: float) -> tuple[np.ndarray, np.ndarray]:
        h = steps * scale * unit  # row i: the step along coordinate i
        plus = [at(h[i]) for i in range(k)]
        minus = [at(-h[i]) for i in range(k)]
        gradient = np.stack([(plus[i] - minus[i]) / (2 * h[i, i]) for i in range(k)], axis=-1)
        second = np.zeros(center.shape + (k, k))
        for i in range(k):
            second[..., i, i] = (plus[i] - 2 * center + minus[i]) / h[i, i] ** 2
            for j in range(i):
                mixed = at(h[i] + h[j]) - at(h[i] - h[j]) - at(h[j] - h[i]) + at(-h[i] - h[j])
                second[..., i, j] = second[..., j, i] = mixed / (4 * h[i, i] * h[j, j])
        return gradient, second

    table = [estimates(0.5**level) for level in range(levels)]
    for order in range(1, levels):
        factor = 4.0**order
        table = [
            tuple((factor * fine - coarse) / (factor - 1) for fine, coarse in zip(table[i + 1], table[i]))
            for i in range(len(table) - 1)
        ]
    gradient, second = table[0]
    return center, gradient, second


def hessian(fun: Callable[[np.ndarray], float], x: np.ndarray, relative: float = 1e-3) -> np.ndarray:
    """Second derivatives of a scalar function, symmetric."""
    return derivatives(fun, x, relative)[2]
