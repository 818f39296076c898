"""Correlation structures of the residuals within groups, as nlme's ``corStruct`` classes.

Each structure gives, for parameters on nlme's unconstrained scale, the correlation matrix ``C_g`` of
every group and applies the "whitening" factor ``F_g`` (``F_g C_g F_g' = I``) to the group's rows; the
log-likelihood then gains ``sum_g log|F_g| = -1/2 sum_g log|C_g|`` (Pinheiro & Bates 2000, section 5.1).
``F_g`` is the inverse of the lower Cholesky factor of ``C_g``, except for compound symmetry, where nlme
uses a Helmert-type factor (it matters for normalized residuals only).  AR(1) and CAR(1) with times
increasing within groups, and compound symmetry, are applied in closed form, in O(rows); the other
structures build one ``size x size`` matrix per group, batched over groups of the same size.

Parameterizations (unconstrained -> reported), as nlme 3.1-162:

* ``CorAR1``: Phi = (e^u - 1)/(e^u + 1);  ``CorCAR1``: Phi = e^u/(1 + e^u);
* ``CorCompSymm``: Rho = (e^u + m)/(e^u + 1) with m = -1/(largest group size - 1);
* ``CorARMA(p, q)``: in :mod:`.arma`;
* ``CorSymm``: the spherical parameterization of the correlation matrix (angles pi e^u/(1 + e^u));
* the spatial structures are in :mod:`.spatial`.

Binding a structure to the rows learns from all of them what every part of them shares (the largest
group, whether times are consecutive, the largest lag, the number of positions, the smallest distance,
the starting values); :meth:`CorStruct.for_rows` then binds the learned structure to a chunk of whole
groups of those rows, making only the rows' own values (times, positions, distances).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from ...errors import FormulaError, check_flag, check_numbers, check_real
from ...formula.nlme import StructureForm, parse_form
from .groups import Bucket, GroupLayout

__all__ = [
    "CorStruct",
    "CorCompSymm",
    "CorAR1",
    "CorCAR1",
    "CorSymm",
    "TimedCorStruct",
    "check_dense",
]


_DENSE_LIMIT_BYTES = 2e9


def check_dense(structure: CorStruct, nmatrices: int, size: int) -> None:
    """Refuse per-group matrices that would not fit in memory (a structure without groups makes one
    group of all rows), with a message saying what to do."""
    if nmatrices * size * size * 8 > _DENSE_LIMIT_BYTES:
        raise ValueError(
            f"{type(structure).__name__} needs {nmatrices} dense {size} x {size} correlation matrices, too "
            "large; give it a grouping factor (form='~ covariate | group')"
        )


def _logit_inverse_pm(u: np.ndarray) -> np.ndarray:
    """(e^u - 1)/(e^u + 1), computed without overflow (nlme's ``safe_phi``)."""
    return np.tanh(np.asarray(u, dtype=float) / 2.0)


class CorStruct:
    """Base class: a correlation structure within the groups of ``form`` (``"~ covariate | group"``).

    ``value`` gives starting values on the reported scale and ``fixed=True`` keeps them fixed.
    Structures are specifications: fitting binds a copy to the data, so one object can serve many fits.
    """

    names_reported: tuple[str, ...] = ()

    def __init__(self, form: str = "~ 1", value=None, fixed: bool = False):
        self.form: StructureForm = parse_form(form, type(self).__name__)
        if self.form.uses_fitted:
            raise FormulaError(f"{type(self).__name__}: fitted values cannot be a correlation covariate")
        self.value = value
        self.fixed = check_flag("fixed", fixed)
        self.layout: GroupLayout | None = None
        self._start = np.zeros(0)

    def __repr__(self) -> str:
        value = "" if self.value is None else f", value={self.value!r}"
        return f"{type(self).__name__}({self.form.text!r}{value}{', fixed=True' if self.fixed else ''})"

    # -- binding to the data -------------------------------------------------------------------------
    def bind(
        self, data: pd.DataFrame, layout: GroupLayout, functions: Mapping[str, Callable] | None = None
    ) -> CorStruct:
        """A copy set up for ``data`` (rows sorted so that the groups of ``layout`` are contiguous); the
        form's covariate may call the fit's own ``functions``."""
        bound = copy.copy(self)
        bound.form = self.form.with_functions(functions)
        bound.layout = layout
        bound._setup(data)
        return bound

    def for_rows(self, data: pd.DataFrame, layout: GroupLayout) -> CorStruct:
        """This bound structure on some whole groups of the rows it was bound to (a chunk, ``data``, its
        groups ``layout``): what it learned from all rows kept, the rows' own values made from ``data``."""
        part = copy.copy(self)
        part.layout = layout
        part._pattern_cache = None
        part._bind_rows(data)
        return part

    def _setup(self, data: pd.DataFrame) -> None:
        """Learn from all rows ``data`` what the parameters mean, and bind the rows (:meth:`_bind_rows`)."""
        raise NotImplementedError

    def _bind_rows(self, data: pd.DataFrame) -> None:
        """The rows' own values, from ``data`` (all rows, or a chunk of whole groups of them)."""
        raise NotImplementedError

    def _times(self, data: pd.DataFrame) -> np.ndarray:
        """The one-dimensional covariate per row (positions 1, 2, ... within groups without one)."""
        if self.form.covariate is None:
            return self.layout.position + 1.0
        covariate = self.form.covariate_matrix(data)
        if covariate.shape[1] != 1:
            raise FormulaError(
                f"{type(self).__name__} needs one covariate, {self.form.text!r} has {covariate.shape[1]}"
            )
        values = covariate[:, 0]
        for bucket in self.layout.buckets:
            ordered = np.sort(values[bucket.rows], axis=1)
            if np.any(ordered[:, 1:] == ordered[:, :-1]):
                raise ValueError(
                    f"covariate must have unique values within groups for {type(self).__name__} objects"
                )
        return values

    # -- parameters ----------------------------------------------------------------------------------
    @property
    def n_params(self) -> int:
        return 0 if self.fixed else len(self._start)

    @property
    def initial(self) -> np.ndarray:
        return np.zeros(0) if self.fixed else self._start.copy()

    def _full(self, params: np.ndarray) -> np.ndarray:
        return self._start if self.fixed else np.asarray(params, dtype=float)

    def coefficients(self, params: np.ndarray) -> pd.Series:
        """The parameters on nlme's reported scale (``coef(cs, unconstrained = FALSE)``)."""
        return pd.Series(self._reported(self._full(params)), index=list(self._reported_names()), dtype=float)

    def _reported(self, u: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _reported_names(self) -> tuple[str, ...]:
        return self.names_reported

    def natural(self, params: np.ndarray) -> np.ndarray:
        """The parameters on which nlme's approximate covariance (apVar) is computed."""
        return np.asarray(params, dtype=float)

    def reported_from_natural(self, natural: np.ndarray) -> pd.Series:
        """Reported values of natural-scale parameters (for intervals: each bound separately)."""
        return self.coefficients(natural)

    # -- whitening and its inverse -------------------------------------------------------------------
    def _lower_factors(self, u: np.ndarray, natural: bool):
        """Per bucket of groups of two or more rows: (bucket, lower Cholesky factors of the distinct
        correlation patterns, the pattern of each group); None when some C_g is not positive definite."""
        factors = []
        for bucket, (representatives, pattern) in zip(self.layout.buckets, self._patterns()):
            if bucket.size == 1:
                continue
            try:
                lower = np.linalg.cholesky(self._correlation(u, bucket, representatives, natural))
            except np.linalg.LinAlgError:
                return None
            if not np.all(np.diagonal(lower, axis1=1, axis2=2) > 0):
                return None
            factors.append((bucket, lower, pattern))
        return factors

    def whiten(self, params: np.ndarray, matrix: np.ndarray, natural: bool = False):
        """``F_g @ rows_g`` for every group and ``sum_g log|F_g|``; None when some C_g is not PD.

        Groups whose correlation depends on the same covariate pattern (e.g. the same times, as in
        balanced longitudinal data) share one factor, which is computed once.  ``natural`` says the
        parameters are on the apVar scale (see :meth:`natural`).
        """
        factors = self._lower_factors(self._full(params), natural)
        if factors is None:
            return None
        vector = np.ndim(matrix) == 1
        matrix = np.asarray(matrix, dtype=float)[:, None] if vector else np.asarray(matrix, dtype=float)
        out = matrix.copy()
        logdet = 0.0
        for bucket, lower, pattern in factors:
            inverse = np.linalg.inv(lower)
            block = matrix[bucket.rows]
            out[bucket.rows] = inverse[0] @ block if len(inverse) == 1 else inverse[pattern] @ block
            logdet -= float(np.log(np.diagonal(lower, axis1=1, axis2=2)).sum(axis=1)[pattern].sum())
        return (out[:, 0] if vector else out), logdet

    def color(self, params: np.ndarray, values: np.ndarray) -> np.ndarray:
        """``S_g @ values_g`` for every group, with ``S_g S_g' = C_g``: independent standard normal
        ``values`` (sorted rows) become normal rows with correlation ``C_g`` within each group (what
        :meth:`whiten` undoes).  Here ``S_g`` is the lower Cholesky factor."""
        factors = self._lower_factors(self._full(params), natural=False)
        if factors is None:
            raise ValueError(f"the parameters of {type(self).__name__} give no valid correlation matrix")
        values = np.asarray(values, dtype=float)
        out = values.copy()
        for bucket, lower, pattern in factors:
            out[bucket.rows] = np.einsum("gij,gj->gi", lower[pattern], values[bucket.rows])
        return out

    def _patterns(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per bucket: one representative group (index in the bucket) per distinct covariate pattern,
        and the pattern of each group."""
        if getattr(self, "_pattern_cache", None) is None:
            cache = []
            for bucket in self.layout.buckets:
                if bucket.size == 1:
                    cache.append((np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)))
                    continue
                values = self._pattern(bucket).reshape(len(bucket.groups), -1)
                _, first, inverse = np.unique(values, axis=0, return_index=True, return_inverse=True)
                check_dense(self, len(first), bucket.size)
                cache.append((first, inverse.ravel()))
            self._pattern_cache = cache
        return self._pattern_cache

    def _pattern(self, bucket: Bucket) -> np.ndarray:
        """What the correlation matrix of each group of the bucket depends on, one row per group."""
        raise NotImplementedError

    def _correlation(self, u: np.ndarray, bucket: Bucket, which: np.ndarray, natural: bool) -> np.ndarray:
        """Correlation matrices (len(which), size, size) of the groups ``which`` of one bucket."""
        raise NotImplementedError


def _markov_whiten(matrix: np.ndarray, rho, starts: np.ndarray):
    """Inverse Cholesky factor of a Markov correlation, rows in group order (groups contiguous).

    ``rho`` (a number, or one value per row r >= 1) is the correlation of row r with row r - 1: row r
    becomes (x_r - rho x_(r-1)) / sqrt(1 - rho^2), except the first rows of groups (``starts``),
    which stay as they are.
    """
    if np.any(np.abs(rho) >= 1):
        return None
    scale = 1.0 / np.sqrt(1.0 - rho * rho)
    out = np.empty_like(matrix, dtype=float)
    if np.ndim(rho) and matrix.ndim == 2:
        rho, scale = rho[:, None], scale[:, None]
    out[1:] = (matrix[1:] - rho * matrix[:-1]) * scale
    out[starts] = matrix[starts]
    linked = len(matrix) - len(starts)
    logdet = linked * float(np.log(scale)) if np.ndim(scale) == 0 else float(np.log(scale).sum())
    return out, logdet


class TimedCorStruct(CorStruct):
    """A structure whose correlations depend on the differences of the rows' times ``_time``."""

    _time: np.ndarray

    def _pattern(self, bucket):
        t = self._time[bucket.rows]
        return t - t[:, :1]


class _TimeSeries(TimedCorStruct):
    """Shared by AR(1) and CAR(1): corr = Phi^|t_i - t_j|; closed form when t increases within groups."""

    def _setup_times(self, times: np.ndarray) -> None:
        self._time = times
        self._linked = self.layout.position[1:] > 0  # row r + 1 continues row r's group
        self._gap = np.where(self._linked, np.diff(times), 0.0)
        self._increasing = bool(np.all(self._gap[self._linked] > 0))
        self._unit_gaps = bool(np.all(self._gap[self._linked] == 1))

    def _phi(self, u: np.ndarray) -> float:
        raise NotImplementedError

    def whiten(self, params, matrix, natural=False):
        u = self._full(params)
        if self._increasing:
            phi = self._phi(u)
            rho = phi if self._unit_gaps else np.where(self._linked, np.power(phi, self._gap), 0.0)
            return _markov_whiten(np.asarray(matrix, dtype=float), rho, self.layout.starts)
        return super().whiten(params, matrix, natural)

    def color(self, params, values):
        """The Markov recursion that :func:`_markov_whiten` undoes, run over the rows' positions within
        their groups (each step vectorized over the groups): x_r = rho x_(r-1) + sqrt(1 - rho^2) e_r."""
        if not self._increasing:
            return super().color(params, values)
        phi = self._phi(self._full(params))
        rho = np.concatenate([[0.0], np.where(self._linked, np.power(phi, self._gap), 0.0)])
        values = np.asarray(values, dtype=float)
        out = values * np.sqrt(1.0 - rho * rho)
        position = self.layout.position
        by_position = np.argsort(position, kind="stable")
        bounds = np.cumsum(np.bincount(position))
        for start, stop in zip(bounds[:-1], bounds[1:]):  # the rows at positions 1, 2, ...
            rows = by_position[start:stop]
            out[rows] += rho[rows] * out[rows - 1]
        return out

    def _correlation(self, u, bucket, which, natural):
        t = self._time[bucket.rows[which]]
        return np.power(self._phi(u), np.abs(t[:, :, None] - t[:, None, :]))


class CorAR1(_TimeSeries):
    """Autoregressive of order 1 within groups: corr(e_i, e_j) = Phi^|t_i - t_j| (nlme's ``corAR1``).

    Without a covariate the times are the positions 1, 2, ... of the rows within each group.  As in
    nlme, integer times that are not consecutive make it an ARMA(1, 0) (parameter named ``Phi1``).
    """

    def __init__(self, form: str = "~ 1", value: float = 0.0, fixed: bool = False):
        value = check_real("value", value)
        if abs(value) >= 1:
            raise ValueError(f"value (the AR(1) correlation) must be between -1 and 1, not {value!r}")
        super().__init__(form, value, fixed)

    def _setup(self, data):
        self._consecutive = True
        if self.form.covariate is not None:
            has = self.layout.position > 0
            self._consecutive = bool(np.all(np.diff(self._times(data))[has[1:]] == 1))
        self._bind_rows(data)
        self._start = np.array([np.log((1 + self.value) / (1 - self.value))])

    def _bind_rows(self, data):
        times = self._times(data)
        self._setup_times(times if self._consecutive else np.trunc(times))  # corARMA's as.integer() times

    def _reported_names(self):
        return ("Phi",) if self._consecutive else ("Phi1",)

    def _phi(self, u):
        return float(_logit_inverse_pm(u[0]))

    def _reported(self, u):
        return np.array([self._phi(u)])


class CorCAR1(_TimeSeries):
    """Continuous-time AR(1): corr(e_i, e_j) = Phi^|t_i - t_j| for real times t (nlme's ``corCAR1``)."""

    names_reported = ("Phi",)

    def __init__(self, form: str = "~ 1", value: float = 0.2, fixed: bool = False):
        value = check_real("value", value)
        if not 0 < value < 1:
            raise ValueError(f"value (the CAR(1) correlation) must be between 0 and 1, not {value!r}")
        super().__init__(form, value, fixed)

    def _setup(self, data):
        self._bind_rows(data)
        self._start = np.array([np.log(self.value / (1 - self.value))])

    def _bind_rows(self, data):
        self._setup_times(self._times(data))

    def _phi(self, u):
        return float(1.0 / (1.0 + np.exp(-u[0])))

    def _reported(self, u):
        return np.array([self._phi(u)])


class CorCompSymm(CorStruct):
    """Compound symmetry: the same correlation Rho between any two rows of a group (``corCompSymm``)."""

    names_reported = ("Rho",)

    def __init__(self, form: str = "~ 1", value: float = 0.0, fixed: bool = False):
        value = check_real("value", value)
        if abs(value) >= 1:
            raise ValueError(f"value (the common correlation) must be between -1 and 1, not {value!r}")
        super().__init__(form, value, fixed)

    def _setup(self, data):
        largest = self.layout.max_size
        if largest < 2:
            raise ValueError("CorCompSymm needs a group with at least two rows")
        self._inf = -1.0 / (largest - 1)
        if self.value <= self._inf:
            raise ValueError(f'initial value in "corCompSymm" must be greater than {self._inf}')
        self._start = np.array([np.log((self.value - self._inf) / (1 - self.value))])
        self._bind_rows(data)

    def _bind_rows(self, data):
        layout = self.layout
        self._position = layout.position
        self._size = np.repeat(layout.lengths, layout.lengths)
        self._start_row = np.repeat(layout.starts, layout.lengths)

    def _rho(self, u):
        e = np.exp(u[0])
        return float((e + self._inf) / (e + 1))

    def _reported(self, u):
        return np.array([self._rho(u)])

    def whiten(self, params, matrix, natural=False):
        """nlme's factor: first row of a group sum / sqrt(n (1 + (n-1) rho)); row i > 0
        (i x_i - sum_{j<i} x_j) / sqrt((1 - rho) i (i + 1))."""
        rho = self._rho(self._full(params))
        size, position = self._size, self._position
        if rho >= 1 or np.any(1 + (size - 1) * rho <= 0):
            return None
        values = np.asarray(matrix, dtype=float)
        shaped = values if values.ndim == 2 else values[:, None]
        cumulative = np.cumsum(shaped, axis=0)
        before_group = np.where(
            (self._start_row > 0)[:, None], cumulative[np.maximum(self._start_row - 1, 0)], 0.0
        )
        preceding = cumulative - shaped - before_group  # sum of the group's earlier rows
        total = cumulative[self._start_row + size - 1] - before_group
        i = position[:, None].astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            rest = (i * shaped - preceding) / np.sqrt((1 - rho) * i * (i + 1))
        first = total / np.sqrt(size[:, None] * (1 + (size[:, None] - 1) * rho))
        out = np.where(position[:, None] == 0, first, rest)
        lengths = self.layout.lengths
        logdet = -0.5 * float(np.sum(np.log(1 + (lengths - 1) * rho) + (lengths - 1) * np.log(1 - rho)))
        return (out if values.ndim == 2 else out[:, 0]), logdet

    def color(self, params, values):
        """The symmetric square root of each group's C_g = (1 - rho) I + rho J applied to ``values``:
        sqrt(1 - rho) e + (sqrt(1 + (n - 1) rho) - sqrt(1 - rho)) (the mean of e) 1."""
        rho = self._rho(self._full(params))
        size = self._size
        if rho >= 1 or np.any(1 + (size - 1) * rho <= 0):
            raise ValueError("the parameters of CorCompSymm give no valid correlation matrix")
        values = np.asarray(values, dtype=float)
        layout = self.layout
        means = np.repeat(np.add.reduceat(values, layout.starts) / layout.lengths, layout.lengths)
        root = np.sqrt(1.0 - rho)
        return root * values + (np.sqrt(1.0 + (size - 1) * rho) - root) * means


# -- general correlation --------------------------------------------------------------------------------
def _spherical_correlations(u: np.ndarray, size: int) -> np.ndarray:
    """nlme's symm_fullCorr: correlations (1,2), (1,3), ..., (2,3), ... from spherical parameters."""
    upper = np.zeros((size, size))
    k = 0
    for i in range(size):
        running = 1.0
        for j in range(i):
            angle = np.pi / (1.0 + np.exp(-u[k]))
            upper[j, i] = running * np.cos(angle)
            running *= np.sin(angle)
            k += 1
        upper[i, i] = running
    corr = upper.T @ upper
    rows, cols = np.triu_indices(size, 1)
    return corr[rows, cols]


def _spherical_parameters(correlations: np.ndarray, size: int) -> np.ndarray:
    """Inverse of :func:`_spherical_correlations` (nlme's Initialize.corSymm)."""
    matrix = np.eye(size)
    rows, cols = np.triu_indices(size, 1)
    matrix[rows, cols] = matrix[cols, rows] = correlations
    if np.any(np.linalg.eigvalsh(matrix) <= 0):
        raise ValueError(
            'initial values for "corSymm" do not define a positive-definite correlation structure'
        )
    upper = np.linalg.cholesky(matrix).T
    params = []
    for i in range(1, size):
        column = upper[: i + 1, i]
        norms = np.sqrt(np.cumsum(column[::-1] ** 2)[::-1])[:i]
        angle = np.arccos(column[:i] / norms)
        params.extend(np.log(angle / (np.pi - angle)))
    return np.array(params)


class CorSymm(CorStruct):
    """General (unstructured) correlation between the positions 1..K of a group (nlme's ``corSymm``).

    The covariate, if given, must take the values 1..K (consecutive integers); without one the rows'
    positions within the group are used.  Intervals use the natural parameterization (Fisher's z of
    each correlation), as nlme does by default.
    """

    def __init__(self, form: str = "~ 1", value=None, fixed: bool = False):
        super().__init__(form, None if value is None else check_numbers("value", value, finite=True), fixed)

    def _setup(self, data):
        self._bind_rows(data)
        unique = np.unique(self._index)
        if unique[0] != 0 or len(unique) != unique[-1] + 1:
            raise ValueError(
                'unique values of the covariate for "corSymm" objects must be consecutive integers from 1'
            )
        self._size = int(unique[-1] + 1)
        npar = self._size * (self._size - 1) // 2
        if self.value is None:
            self._start = np.zeros(npar)
        else:
            if self.value.shape != (npar,):
                raise ValueError(
                    f"value must be {npar} correlations ({self._size} positions), not {self.value.tolist()}"
                )
            self._start = _spherical_parameters(self.value, self._size)

    def _bind_rows(self, data):
        times = self._times(data)
        if np.any(times != np.round(times)):
            raise ValueError('covariate of "corSymm" must be integers 1, 2, ..., K')
        self._index = times.astype(np.int64) - 1

    def _reported_names(self):
        rows, cols = np.triu_indices(self._size, 1)
        return tuple(f"cor({a + 1},{b + 1})" for a, b in zip(rows, cols))

    def _reported(self, u):
        return _spherical_correlations(u, self._size)

    def natural(self, params):
        r = self._reported(self._full(params))
        return np.log((1 + r) / (1 - r))

    def reported_from_natural(self, natural):
        return pd.Series(_logit_inverse_pm(natural), index=list(self._reported_names()), dtype=float)

    def _pattern(self, bucket):
        return self._index[bucket.rows]

    def _correlation(self, u, bucket, which, natural):
        r = _logit_inverse_pm(u) if natural else self._reported(u)
        full = np.eye(self._size)
        rows, cols = np.triu_indices(self._size, 1)
        full[rows, cols] = full[cols, rows] = r
        index = self._index[bucket.rows[which]]
        return full[index[:, :, None], index[:, None, :]]
