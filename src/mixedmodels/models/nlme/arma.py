"""nlme's ``corARMA(p, q)``: autoregressive-moving average correlation of the residuals within groups.

The unconstrained parameters map to the ARMA coefficients through the partial-autocorrelation transform
of nlme's ``ARMA_unconstCoef`` (Pinheiro & Bates 2000, section 5.3.1), which keeps the process
stationary and invertible; the correlation at each lag is the ARMA autocorrelation function.
"""

from __future__ import annotations

import numpy as np

from ...errors import check_integer, check_numbers
from .corstruct import TimedCorStruct

__all__ = ["CorARMA"]


# -- ARMA -----------------------------------------------------------------------------------------------
def _arma_untransform(u: np.ndarray, sign: float) -> np.ndarray:
    """nlme's ARMA_untransPar: unconstrained -> (partial autocorrelations ->) coefficients."""
    pars = np.array(u, dtype=float)
    aux = np.zeros(len(pars))
    for i in range(len(pars)):
        e = np.exp(-pars[i])
        pars[i] = aux[i] = (1 - e) / (1 + e)
        if i:
            for j in range(i):
                pars[j] = aux[j] + sign * pars[i] * aux[i - j - 1]
            aux[:i] = pars[:i]
    return pars


def _arma_transform(c: np.ndarray, sign: float) -> np.ndarray:
    """nlme's ARMA_transPar: coefficients -> unconstrained."""
    pars = np.array(c, dtype=float)
    for n in range(len(pars) - 1, -1, -1):
        ps = pars[n] * pars[n]
        if ps >= 1:
            raise ValueError("All parameters must be less than 1 in absolute value")
        if n:
            d = 1 - ps
            for i in range((n - 1) // 2 + 1):
                j = n - i - 1
                if j > i:
                    aux = (pars[i] + sign * pars[j] * pars[n]) / d
                    pars[j] = (pars[j] + sign * pars[i] * pars[n]) / d
                    pars[i] = aux
                else:
                    pars[i] /= 1 - sign * pars[n]
        pars[n] = np.log((1 + pars[n]) / (1 - pars[n]))
    return pars


def _arma_autocorrelation(pars: np.ndarray, p: int, q: int, maxlag: int) -> np.ndarray:
    """Autocorrelations at lags 0..maxlag of an ARMA(p, q) with coefficients ``pars`` (phi..., theta...).

    A line-by-line port of nlme's ARMA_cross and ARMA_corr (including its indexing of the MA
    coefficients for lags p < i <= q, which only matters when q > p > 0).
    """
    m = max(p, q + 1)
    psi = np.zeros(m)
    psi[0] = 1.0
    for i in range(1, m):
        psi[i] = 0.0 if q < i else pars[p + i - 1]
        for j in range(min(p, i)):
            psi[i] += pars[j] * psi[i - j - 1]
    mlag = max(maxlag, q, p) + 1
    crr = np.zeros(mlag)
    if max(p, q) == 0:
        crr[0] = 1.0
        return crr[: maxlag + 1]
    big_p = p + 1
    crr[0] = 1.0
    for i in range(1, q + 1):
        crr[0] += pars[p + i - 1] * psi[i]
    if p:
        for i in range(1, min(p, q) + 1):
            for j in range(i, q + 1):
                crr[i] += pars[p - 1 + j] * psi[j - i]
        coef = np.eye(big_p)
        for i in range(big_p):
            for j in range(p):
                coef[i, abs(i - j - 1)] -= pars[j]
        crr[:big_p] = np.linalg.solve(coef, crr[:big_p])
    for i in range(big_p, q + 1):
        for j in range(p):
            crr[i] += pars[j] * crr[i - j - 1]
        for j in range(i, q + 1):
            crr[i] += pars[j - 1] * psi[j - i]
    for i in range(max(p, q) + 1, mlag):
        for j in range(p):
            crr[i] += pars[j] * crr[i - j - 1]
    crr[1:] /= crr[0]
    crr[0] = 1.0
    return crr[: maxlag + 1]


class CorARMA(TimedCorStruct):
    """Autoregressive moving average ARMA(p, q) within groups at integer times (nlme's ``corARMA``).

    ``value`` holds the p autoregressive then the q moving-average coefficients (default zeros).
    """

    def __init__(self, form: str = "~ 1", value=None, p: int = 0, q: int = 0, fixed: bool = False):
        p, q = check_integer("p", p, minimum=0), check_integer("q", q, minimum=0)
        if p + q == 0:
            raise ValueError("CorARMA needs p + q > 0 (use no correlation structure instead)")
        value = np.zeros(p + q) if value is None else check_numbers("value", value, finite=True)
        value = np.atleast_1d(value)
        if value.shape != (p + q,):
            raise ValueError(f"value must have p + q = {p + q} numbers, not shape {value.shape}")
        if np.max(np.abs(value)) >= 1:
            raise ValueError(f"value (the ARMA coefficients) must be between -1 and 1, not {value.tolist()}")
        super().__init__(form, value, fixed)
        self.p, self.q = int(p), int(q)

    def _setup(self, data):
        self._bind_rows(data)
        self._maxlag = 0
        for bucket in self.layout.buckets:
            t = self._time[bucket.rows]
            self._maxlag = max(self._maxlag, int(np.max(t.max(axis=1) - t.min(axis=1))))
        self._start = np.concatenate(
            [_arma_transform(self.value[: self.p], 1.0), _arma_transform(self.value[self.p :], -1.0)]
        )

    def _bind_rows(self, data):
        self._time = np.trunc(self._times(data)).astype(np.int64)

    def _coefficients(self, u):
        return np.concatenate([_arma_untransform(u[: self.p], -1.0), _arma_untransform(u[self.p :], 1.0)])

    def _reported_names(self):
        return tuple(f"Phi{i + 1}" for i in range(self.p)) + tuple(f"Theta{i + 1}" for i in range(self.q))

    def _reported(self, u):
        return self._coefficients(u)

    def _correlation(self, u, bucket, which, natural):
        crr = _arma_autocorrelation(self._coefficients(u), self.p, self.q, self._maxlag)
        t = self._time[bucket.rows[which]]
        return crr[np.abs(t[:, :, None] - t[:, None, :])]
