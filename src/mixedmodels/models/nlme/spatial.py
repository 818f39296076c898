"""Spatial correlation structures of the residuals within groups, as nlme's ``corSpatial`` classes.

``CorExp``, ``CorGaus``, ``CorLin``, ``CorRatio`` and ``CorSpher``: the correlation of two rows of a
group is ``(1 - nugget) f(d / range)`` of their distance ``d``, with range = e^u (+ the smallest
distance for ``CorLin`` and ``CorSpher``) and nugget = e^v/(1 + e^v) on nlme's unconstrained scale
(nlme 3.1-162).  One ``size x size`` matrix per group, batched over groups of the same size (see
:mod:`.corstruct`).
"""

from __future__ import annotations

import warnings

import numpy as np

from ...errors import check_choice, check_flag, check_numbers
from .corstruct import CorStruct, check_dense

__all__ = ["CorExp", "CorGaus", "CorLin", "CorRatio", "CorSpher"]

_METRICS = ("euclidean", "maximum", "manhattan")


class _Spatial(CorStruct):
    """Spatial correlation (1 - nugget) f(d / range) of the distance d between two rows of a group.

    The distance is between the covariate vectors (``form="~ x + y | g"``) in the ``metric``
    (``"euclidean"``, ``"maximum"`` or ``"manhattan"``); without a covariate, between the positions.
    """

    shifted = False  # range = e^u + smallest distance (corLin, corSpher)

    def __init__(
        self,
        form: str = "~ 1",
        value=None,
        nugget: bool = False,
        metric: str = "euclidean",
        fixed: bool = False,
    ):
        check_choice("metric", metric, _METRICS)
        value = None if value is None else np.atleast_1d(check_numbers("value", value, finite=True))
        super().__init__(form, value, fixed)
        self.nugget = check_flag("nugget", nugget)
        self.metric = metric

    @staticmethod
    def _shape(ratio: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _setup(self, data):
        if self.form.covariate is None:
            coords = (self.layout.position + 1.0)[:, None]
        else:
            coords = self.form.covariate_matrix(data)
        self._distances = {}
        smallest = np.inf
        for bucket in self.layout.buckets:
            if bucket.size == 1:
                continue
            check_dense(self, len(bucket.groups), bucket.size)
            x = coords[bucket.rows]
            diff = np.abs(x[:, :, None, :] - x[:, None, :, :])
            if self.metric == "euclidean":
                dist = np.sqrt(np.sum(diff**2, axis=-1))
            elif self.metric == "maximum":
                dist = np.max(diff, axis=-1)
            else:
                dist = np.sum(diff, axis=-1)
            off = ~np.eye(bucket.size, dtype=bool)
            if np.any(dist[:, off] == 0):
                raise ValueError(f'cannot have zero distances in "corSpatial" ({type(self).__name__})')
            smallest = min(smallest, float(dist[:, off].min()))
            self._distances[bucket.size] = dist
        if not np.isfinite(smallest):
            raise ValueError(f"{type(self).__name__} needs a group with at least two rows")
        self._min_distance = smallest
        value = self.value
        if value is None:
            value = np.array([smallest * (1.1 if self.shifted else 0.9)] + ([0.1] if self.nugget else []))
        else:
            value = np.array(value, dtype=float)
            if len(value) == 1 and self.nugget:
                value = np.append(value, 0.1)
            if value.shape != (1 + self.nugget,):
                expected = "range and nugget" if self.nugget else "the range"
                raise ValueError(f"value must hold {expected} of {type(self).__name__}, not {value.tolist()}")
            if value[0] <= 0:
                raise ValueError("'range' must be > 0 in the initial value")
            if self.shifted and value[0] <= smallest:
                warnings.warn(
                    "initial value for 'range' less than minimum distance. Setting it to 1.1 * min(distance)",
                    UserWarning,
                    stacklevel=4,
                )
                value[0] = 1.1 * smallest
            if self.nugget and not 0 < value[1] < 1:
                raise ValueError("initial value of nugget ratio must be between 0 and 1")
        start = [np.log(value[0] - (smallest if self.shifted else 0.0))]
        if self.nugget:
            start.append(np.log(value[1] / (1 - value[1])))
        self._start = np.array(start)

    def _reported_names(self):
        return ("range", "nugget") if self.nugget else ("range",)

    def _range(self, u):
        return float(np.exp(u[0]) + (self._min_distance if self.shifted else 0.0))

    def _reported(self, u):
        values = [self._range(u)]
        if self.nugget:
            values.append(float(1.0 / (1.0 + np.exp(-u[1]))))
        return np.array(values)

    def _pattern(self, bucket):
        return self._distances[bucket.size]

    def _correlation(self, u, bucket, which, natural):
        scale = 1.0 / (1.0 + np.exp(u[1])) if self.nugget else 1.0  # 1 - nugget
        corr = scale * self._shape(self._distances[bucket.size][which] / self._range(u))
        index = np.arange(bucket.size)
        corr[:, index, index] = 1.0
        return corr


class CorExp(_Spatial):
    """Exponential spatial correlation: f(r) = exp(-r) (nlme's ``corExp``)."""

    @staticmethod
    def _shape(ratio):
        return np.exp(-ratio)


class CorGaus(_Spatial):
    """Gaussian spatial correlation: f(r) = exp(-r^2) (nlme's ``corGaus``)."""

    @staticmethod
    def _shape(ratio):
        return np.exp(-(ratio**2))


class CorLin(_Spatial):
    """Linear spatial correlation: f(r) = 1 - r for r < 1, else 0 (nlme's ``corLin``)."""

    shifted = True

    @staticmethod
    def _shape(ratio):
        return np.where(ratio < 1, 1.0 - ratio, 0.0)


class CorRatio(_Spatial):
    """Rational quadratic spatial correlation: f(r) = 1 / (1 + r^2) (nlme's ``corRatio``)."""

    @staticmethod
    def _shape(ratio):
        return 1.0 / (1.0 + ratio**2)


class CorSpher(_Spatial):
    """Spherical spatial correlation: f(r) = 1 - 1.5 r + 0.5 r^3 for r < 1, else 0 (``corSpher``)."""

    shifted = True

    @staticmethod
    def _shape(ratio):
        return np.where(ratio < 1, 1.0 - 1.5 * ratio + 0.5 * ratio**3, 0.0)
