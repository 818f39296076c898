"""Mapping a fit to transformed data back to the original data's units (issue 11, point 3).

The fits of a model to data and to the same data with rows shuffled, grouping labels renamed, the
response mapped by ``y -> a y + c`` or covariates rescaled are the same model.  The fixed-effects
design of the second is the first's times a matrix ``A`` (``X' = X A``: a covariate scaled by ``b``
scales its columns by ``b``, ``log(b x)`` adds ``log b`` times the intercept, ``poly(x, 2)`` does not
change), found by least squares on the aligned rows; likewise each column of a random term's Z is
scaled, ``Z' = Z diag(b)``.  Then ``A beta' = a beta + c e`` (``X e = 1``), ``sigma' = a sigma``,
theta's rows are ``b`` times the original's, the ML deviance moves by ``2 n log a`` and the REML
criterion by ``2 (n - p) log a + 2 log|det A|`` (log|X'V^-1 X| changes by the latter).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

RTOL = 1e-6


def assert_close(actual, expected, scale=None, what: str = "", rtol: float = RTOL) -> None:
    """Agreement to ``rtol`` relative to ``scale`` (by default ``|expected|``)."""
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    scale = np.abs(expected) if scale is None else scale
    assert np.all(np.isfinite(actual)), what
    assert np.all(np.abs(actual - expected) <= rtol * np.maximum(scale, 1e-300)), (what, actual, expected)


def renamed_groups(data: pd.DataFrame, groups) -> pd.DataFrame:
    """``data`` with each grouping column's labels renamed (in another sort order: R's level order
    changes)."""
    data = data.copy()
    for group in groups:
        data[group] = "level_" + data[group].astype(str).str[::-1]
    return data


def theta_scale(theta: np.ndarray) -> np.ndarray:
    """What theta's entries are compared relative to: the largest, at least 0.05 (a relative standard
    deviation is near zero often, and its error is in the units of the others)."""
    return np.full(len(theta), max(np.max(np.abs(theta), initial=0.0), 0.05))


def _row_labels(model) -> pd.Index:
    """The input's index of the rows a fit used, in its design's row order (gls and lme keep it in
    their prepared data, lmer in its frame's table)."""
    prepared = getattr(model, "data", None)
    return model.frame.data.index if prepared is None else prepared.index


def _aligned(original, transformed, matrix: np.ndarray) -> np.ndarray:
    """Rows of ``matrix`` (in the transformed fit's row order) in the original fit's row order."""
    position = pd.Series(np.arange(len(matrix)), index=_row_labels(transformed))
    return matrix[position.loc[_row_labels(original)].to_numpy()]


def _change_of_basis(before: np.ndarray, after: np.ndarray, what: str) -> np.ndarray:
    """The matrix ``M`` with ``after = before M`` (columns spanning the same space)."""
    change = np.linalg.lstsq(before, after, rcond=None)[0]
    residual = np.abs(after - before @ change).max(initial=0.0)
    assert residual <= 1e-8 * max(np.abs(after).max(initial=0.0), 1.0), f"{what} is not a linear change"
    return change


def design_change(original, transformed) -> np.ndarray:
    """``A`` with ``X_transformed = X_original A`` (rows aligned)."""
    return _change_of_basis(original.frame.x, _aligned(original, transformed, transformed.frame.x), "X")


def log_det_design_change(original, transformed) -> float:
    """``log|det A|``: what log|X'V^-1 X| (the REML criterion's last term) changes by, halved."""
    return float(np.linalg.slogdet(design_change(original, transformed))[1])


def _constant_coordinates(x: np.ndarray) -> np.ndarray:
    """``e`` with ``X e`` nearest the constant column 1."""
    return np.linalg.lstsq(x, np.ones(len(x)), rcond=None)[0]


def spans_intercept(model) -> bool:
    """Whether the constant column is in the span of the fixed-effects design (shifts are absorbed)."""
    x = model.frame.x
    return bool(np.abs(x @ _constant_coordinates(x) - 1).max(initial=0.0) < 1e-8)


def fixef_back(original, transformed, response_scale: float = 1.0, response_shift: float = 0.0) -> pd.Series:
    """The transformed fit's coefficients in the original fit's units and columns."""
    beta = design_change(original, transformed) @ transformed.fixef.to_numpy()
    if response_shift:
        beta = beta - response_shift * _constant_coordinates(original.frame.x)
    return pd.Series(beta / response_scale, index=original.fixef.index)


def theta_back(original, transformed) -> np.ndarray:
    """The transformed lmer fit's theta in the original fit's units: each row of a term's T times the
    scale of its column of Z (``Z' = Z diag(b)``)."""
    theta = transformed.theta.copy()
    start = 0
    terms = zip(original.frame.blocks, transformed.frame.blocks, transformed.covariances)
    for before, after, covariance in terms:
        after_z = _aligned(original, transformed, after.z)
        scales = [_change_of_basis(before.z[:, [k]], after_z[:, [k]], "Z")[0, 0] for k in range(after.ncols)]
        rows, _ = covariance.positions
        theta[start : start + covariance.n_params] *= np.asarray(scales)[rows]
        start += covariance.n_params
    return theta


def deviance_shift(original, transformed, response_scale: float) -> float:
    """What the transformed fit's ``deviance`` (-2 log-likelihood, restricted for REML: lme4's REML
    criterion) exceeds the original's by."""
    n, p = original.nobs, original.n_fixed
    if original.reml:
        return 2 * (n - p) * math.log(response_scale) + 2 * log_det_design_change(original, transformed)
    return 2 * n * math.log(response_scale)
