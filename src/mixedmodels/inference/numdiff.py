"""Numerical derivatives by central differences with one Richardson extrapolation (error O(h^4)).

Used where lmerTest uses numDeriv (Hessian of the deviance in the variance parameters, Jacobian of the
fixed effects' covariance); one extrapolation step gives about 1e-9 relative accuracy for these smooth
functions, far below the 1e-4 at which degrees of freedom are reported.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["jacobian", "hessian"]


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


def hessian(fun: Callable[[np.ndarray], float], x: np.ndarray, relative: float = 1e-3) -> np.ndarray:
    """Second derivatives of a scalar function, symmetric."""
    x = np.asarray(x, dtype=float)

    def gradient(point: np.ndarray) -> np.ndarray:
        return jacobian(lambda z: np.asarray(fun(z)), point, relative)

    result = jacobian(gradient, x, relative)
    return (result + result.T) / 2
