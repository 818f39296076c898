"""Parameterizations of a random-effects term's relative covariance factor.

The covariance of one level's random effects is ``sigma^2 T T'`` with ``T`` lower triangular (the
block of Lambda in Bates et al. 2015).  A parameterization maps an unconstrained-as-possible parameter
vector to ``T`` and states the bounds an optimizer must respect.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Unstructured"]


class Unstructured:
    """lme4's default: theta is the lower triangle of ``T`` column by column; diagonal entries >= 0."""

    def __init__(self, size: int):
        self.size = size
        cols, rows = np.triu_indices(size)  # upper triangle row-major == lower triangle column-major
        self._rows, self._cols = rows, cols

    @property
    def positions(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column in ``T`` of each parameter (the lower triangle, column by column)."""
        return self._rows, self._cols

    @property
    def n_params(self) -> int:
        return len(self._rows)

    @property
    def lower_bounds(self) -> np.ndarray:
        return np.where(self._rows == self._cols, 0.0, -np.inf)

    @property
    def initial(self) -> np.ndarray:
        return (self._rows == self._cols).astype(float)

    def from_diagonal(self, diagonal: np.ndarray) -> np.ndarray:
        """Parameters of the diagonal ``T = diag(diagonal)``."""
        return np.where(self._rows == self._cols, np.asarray(diagonal)[self._rows], 0.0)

    def factor(self, theta: np.ndarray) -> np.ndarray:
        """``T`` for parameters ``theta``."""
        lower = np.zeros((self.size, self.size))
        lower[self._rows, self._cols] = theta
        return lower
