"""Parameterizations of a random-effects term's relative covariance factor.

The covariance of one level's random effects is ``sigma^2 T T'`` with ``T`` lower triangular (the
block of Lambda in Bates et al. 2015).  A parameterization maps a parameter vector to ``T`` and states
the lower bounds an optimizer must respect.  Besides lme4's unstructured factor there are the
structured covariances of glmmTMB (``diag``, ``cs``, ``ar1``, ``toep``), with glmmTMB's meaning:
``diag`` and ``cs`` and ``toep`` have one standard deviation per column, ``ar1`` one in all.

Structured forms are ``T = diag(s) chol(R)`` with relative standard deviations ``s >= 0`` (zero allowed,
for singular fits) and a correlation matrix ``R``.  Correlations are unbounded parameters ``x`` mapped
by ``x / sqrt(1 + x^2)`` into (-1, 1), so no upper bounds are needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np

__all__ = [
    "CovarianceStructure",
    "Unstructured",
    "Diagonal",
    "CompoundSymmetry",
    "AutoRegressive",
    "Toeplitz",
    "STRUCTURES",
    "ThetaLayout",
    "covariance_for",
]


def _to_correlation(x: np.ndarray) -> np.ndarray:
    return x / np.sqrt(1.0 + x * x)


class CovarianceStructure:
    """What the engine needs of a parameterization (``size`` columns, ``n_params`` parameters)."""

    size: int
    n_params: int
    lower_bounds: np.ndarray  # per parameter; -inf where unbounded
    initial: np.ndarray  # lme4's start, T = I
    is_scale: np.ndarray  # parameters on a standard deviation's scale (others are correlation-like)

    def from_diagonal(self, diagonal: np.ndarray) -> np.ndarray:
        """Parameters of (or nearest to) ``T = diag(diagonal)``, for starting values."""
        raise NotImplementedError

    def lambda_(self, theta: np.ndarray) -> np.ndarray:
        """``T`` for parameters ``theta``."""
        raise NotImplementedError

    def parameter_scale(self, row_scale: np.ndarray) -> np.ndarray:
        """Each parameter's natural unit when row ``a`` of ``T`` is naturally of order ``row_scale[a]``
        (``1 / rms(Z_a)``: dividing column ``a`` of Z by a number multiplies row ``a`` of T by it)."""
        raise NotImplementedError


class Unstructured(CovarianceStructure):
    """lme4's default: theta is the lower triangle of ``T`` column by column; diagonal entries >= 0."""

    def __init__(self, size: int):
        self.size = size
        cols, rows = np.triu_indices(size)  # upper triangle row-major == lower triangle column-major
        self._rows, self._cols = rows, cols
        self._flat = rows * size + cols  # positions in T flattened row-major

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

    @property
    def is_scale(self) -> np.ndarray:
        return np.ones(self.n_params, dtype=bool)

    def from_diagonal(self, diagonal: np.ndarray) -> np.ndarray:
        return np.where(self._rows == self._cols, np.asarray(diagonal)[self._rows], 0.0)

    def parameter_scale(self, row_scale: np.ndarray) -> np.ndarray:
        return np.asarray(row_scale, dtype=float)[self._rows]

    def lambda_(self, theta: np.ndarray) -> np.ndarray:
        lower = np.zeros(self.size * self.size)
        lower[self._flat] = theta
        return lower.reshape(self.size, self.size)


class _Structured(CovarianceStructure):
    """``T = diag(s) chol(R(x))``: ``n_sd`` standard deviations, then the correlation parameters."""

    n_sd: int
    n_corr: int

    def __init__(self, size: int):
        self.size = size

    @property
    def n_params(self) -> int:
        return self.n_sd + self.n_corr

    @property
    def lower_bounds(self) -> np.ndarray:
        return np.concatenate([np.zeros(self.n_sd), np.full(self.n_corr, -np.inf)])

    @property
    def initial(self) -> np.ndarray:
        return np.concatenate([np.ones(self.n_sd), np.zeros(self.n_corr)])

    @property
    def is_scale(self) -> np.ndarray:
        return np.arange(self.n_params) < self.n_sd

    def from_diagonal(self, diagonal: np.ndarray) -> np.ndarray:
        diagonal = np.asarray(diagonal, dtype=float)
        sds = diagonal if self.n_sd == self.size else np.full(self.n_sd, np.sqrt(np.mean(diagonal**2)))
        return np.concatenate([sds, np.zeros(self.n_corr)])

    def parameter_scale(self, row_scale: np.ndarray) -> np.ndarray:
        """Standard deviations in their columns' units (one common one: the geometric mean); the
        correlation parameters are unitless."""
        row_scale = np.asarray(row_scale, dtype=float)
        sds = row_scale if self.n_sd == self.size else np.full(self.n_sd, np.exp(np.mean(np.log(row_scale))))
        return np.concatenate([sds, np.ones(self.n_corr)])

    def correlation(self, x: np.ndarray) -> np.ndarray:
        """The correlation matrix R for correlation parameters ``x``."""
        raise NotImplementedError

    def correlation_factor(self, x: np.ndarray) -> np.ndarray:
        """Lower Cholesky factor of the correlation matrix (overridden where a closed form exists)."""
        return np.linalg.cholesky(self.correlation(x))

    def lambda_(self, theta: np.ndarray) -> np.ndarray:
        theta = np.asarray(theta, dtype=float)
        sds = np.broadcast_to(theta[: self.n_sd], (self.size,))
        return sds[:, None] * self.correlation_factor(theta[self.n_sd :])


class Diagonal(_Structured):
    """Independent effects with their own variances (glmmTMB's ``diag``)."""

    def __init__(self, size: int):
        super().__init__(size)
        self.n_sd, self.n_corr = size, 0

    def correlation_factor(self, x: np.ndarray) -> np.ndarray:
        return np.eye(self.size)


class CompoundSymmetry(_Structured):
    """One correlation between every pair, one variance per column (glmmTMB's ``cs``).

    The correlation must exceed -1/(size-1) for R to be positive definite; below that the factor
    does not exist and the objective is infinite there.
    """

    def __init__(self, size: int):
        super().__init__(size)
        self.n_sd, self.n_corr = size, 1 if size > 1 else 0

    def correlation(self, x: np.ndarray) -> np.ndarray:
        rho = _to_correlation(x[0]) if self.n_corr else 0.0
        return np.full((self.size, self.size), rho) + (1.0 - rho) * np.eye(self.size)

    def correlation_factor(self, x: np.ndarray) -> np.ndarray:
        try:
            return np.linalg.cholesky(self.correlation(x))
        except np.linalg.LinAlgError:
            return np.full((self.size, self.size), np.nan)


class AutoRegressive(_Structured):
    """Correlation rho^|i-j| between columns i and j, one common variance (glmmTMB's ``ar1``).

    Its Cholesky factor has the closed form L[i, 0] = rho^i, L[i, j] = rho^(i-j) sqrt(1 - rho^2).
    """

    def __init__(self, size: int):
        super().__init__(size)
        self.n_sd, self.n_corr = 1, 1 if size > 1 else 0

    def correlation(self, x: np.ndarray) -> np.ndarray:
        rho = _to_correlation(x[0]) if self.n_corr else 0.0
        lags = np.abs(np.subtract.outer(np.arange(self.size), np.arange(self.size)))
        return rho**lags

    def correlation_factor(self, x: np.ndarray) -> np.ndarray:
        rho = _to_correlation(x[0]) if self.n_corr else 0.0
        lags = np.subtract.outer(np.arange(self.size), np.arange(self.size))
        factor = np.where(lags >= 0, rho ** np.maximum(lags, 0), 0.0)
        factor[:, 1:] *= np.sqrt(1.0 - rho * rho)
        return factor


class Toeplitz(_Structured):
    """One correlation per lag, one variance per column (glmmTMB's ``toep``).

    The lag correlations are parameterized by partial autocorrelations in (-1, 1) and the
    Durbin-Levinson recursion, which gives a positive definite R for any parameter values.
    """

    def __init__(self, size: int):
        super().__init__(size)
        self.n_sd, self.n_corr = size, size - 1

    def correlation(self, x: np.ndarray) -> np.ndarray:
        partial = _to_correlation(np.asarray(x, dtype=float))
        r = np.ones(self.size)  # autocorrelations by lag
        phi = np.zeros(0)  # coefficients of the AR(k - 1) fit
        for k, p in enumerate(partial, start=1):
            # Durbin-Levinson: p = (r_k - phi . r_{k-1..1}) / (1 - phi . r_{1..k-1})
            r[k] = phi @ r[k - 1 : 0 : -1] + p * (1.0 - phi @ r[1:k])
            phi = np.append(phi - p * phi[::-1], p)
        autocorrelation = r
        lags = np.abs(np.subtract.outer(np.arange(self.size), np.arange(self.size)))
        return autocorrelation[lags]


STRUCTURES = {
    "us": Unstructured,
    "diag": Diagonal,
    "cs": CompoundSymmetry,
    "ar1": AutoRegressive,
    "toep": Toeplitz,
}


@cache
def covariance_for(structure: str, size: int) -> CovarianceStructure:
    """The parameterization named as in a formula (``us``, ``diag``, ``cs``, ``ar1``, ``toep``).

    Parameterizations hold no state, so one object per (structure, size) serves every model.
    """
    return STRUCTURES[structure](size)


class ThetaLayout:
    """The covariance parameters of several random-effects terms in one vector theta (lme4's order: term
    by term), with their bounds, lme4's start and the terms' relative factors; what the objectives of
    every family share."""

    def __init__(self, covariances: Sequence[CovarianceStructure]):
        self.covariances = list(covariances)
        sizes = [c.n_params for c in self.covariances]
        self.slices = [slice(a, b) for a, b in zip(np.cumsum([0] + sizes[:-1]), np.cumsum(sizes))]
        self._parts = list(zip(self.covariances, self.slices))

    @property
    def n_params(self) -> int:
        return sum(c.n_params for c in self.covariances)

    @property
    def lower_bounds(self) -> np.ndarray:
        return np.concatenate([c.lower_bounds for c in self.covariances])

    @property
    def initial(self) -> np.ndarray:
        """lme4's start: T = I."""
        return np.concatenate([c.initial for c in self.covariances])

    @property
    def is_scale(self) -> np.ndarray:
        """Which parameters are on a standard deviation's scale (the others correlation-like)."""
        return np.concatenate([c.is_scale for c in self.covariances])

    def lambdas(self, theta: np.ndarray) -> list[np.ndarray]:
        """Per-term relative covariance factors T_k (Lambda's blocks) for the whole parameter vector."""
        return [c.lambda_(theta[s]) for c, s in self._parts]
