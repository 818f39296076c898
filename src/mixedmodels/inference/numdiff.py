"""Numerical derivatives by central differences with Richardson extrapolation.

Used where lmerTest uses numDeriv (Hessian of the deviance in the variance parameters, Jacobian of the
fixed effects' covariance).  Three step sizes and two extrapolation steps leave a truncation error of
order h^6, about 1e-9 relative for these smooth functions, far below the 1e-4 at which degrees of
freedom are reported.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..engine.threads import limited_threads

__all__ = ["derivatives"]


def _steps(x: np.ndarray, relative: float) -> np.ndarray:
    return relative * np.maximum(np.abs(x), 0.1)


def derivatives(
    fun: Callable[[np.ndarray], np.ndarray], x: np.ndarray, relative: float = 2e-2, levels: int = 3
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Value, first and second derivatives of an array-valued function, from one stencil.

    Returns ``fun(x)``, the Jacobian (shape ``fun(x).shape + (k,)``) and the Hessian of every output
    (shape ``fun(x).shape + (k, k)``).  The second derivatives use the 3-point rule on the diagonal and
    the 4-point rule ``(f(++) - f(+-) - f(-+) + f(--)) / (4 h_i h_j)`` off it, at ``levels`` steps
    h, h/2, h/4, ... combined by Richardson extrapolation (as numDeriv); that is 1 + 2 levels k^2
    evaluations, and the first derivatives come from the same points.  Evaluating several quantities
    in one call costs no more than one of them.  The default steps (2% of each coordinate, at least
    0.002) are larger than numDeriv's because the profiled quantities computed from cross-products
    carry roundoff of about 1e-13 relative, which smaller steps amplify.  The evaluations (of a fit's
    objective, as a rule) run on the fits' BLAS threads.
    """
    x = np.asarray(x, dtype=float)
    k = len(x)
    if k == 0:  # a function of no parameters: its value, and derivatives with no columns
        center = np.asarray(fun(x), dtype=float)
        return center, np.zeros(center.shape + (0,)), np.zeros(center.shape + (0, 0))
    steps = _steps(x, relative)
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

    with limited_threads():
        center = np.asarray(fun(x), dtype=float)
        table = [estimates(0.5**level) for level in range(levels)]
    for order in range(1, levels):
        factor = 4.0**order
        table = [
            tuple((factor * fine - coarse) / (factor - 1) for fine, coarse in zip(table[i + 1], table[i]))
            for i in range(len(table) - 1)
        ]
    gradient, second = table[0]
    return center, gradient, second
