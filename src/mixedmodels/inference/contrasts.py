"""Tests and estimates of user-given linear combinations of the fixed effects.

``contrast_table`` follows lmerTest's ``contest`` (joint F test, or one t test per row with confidence
limits); ``estimate_table`` follows SAS PROC MIXED's ESTIMATE statement with the CL option.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from ..errors import check_flag, check_numbers, check_probability
from .ddf import f_table, f_test, t_test

if TYPE_CHECKING:
    from .view import InferenceView

__all__ = [
    "coefficient_table",
    "contrast_matrix",
    "contrast_table",
    "estimate_table",
    "T_TEST_COLUMNS",
    "ESTIMATE_COLUMNS",
]

T_TEST_COLUMNS = ["Estimate", "Std. Error", "df", "t value", "lower", "upper", "Pr(>|t|)"]
ESTIMATE_COLUMNS = ["Estimate", "Standard Error", "DF", "t Value", "Pr > |t|", "Alpha", "Lower", "Upper"]


def _named_row(weights: Mapping, names: list[str]) -> np.ndarray:
    unknown = [str(k) for k in weights if k not in names]
    if unknown:
        raise ValueError(f"unknown fixed effects {', '.join(map(repr, unknown))}; the model has {names}")
    return np.array([check_numbers(f"the coefficient of {name!r}", weights.get(name, 0.0)) for name in names])


def contrast_matrix(model: InferenceView, contrasts) -> tuple[np.ndarray, list]:
    """Contrasts as a matrix with one column per fixed effect, and labels for its rows.

    Accepts a vector or matrix with p columns, a mapping or Series from fixed-effect names to
    coefficients (one row; names left out get 0), a list of such mappings, or a DataFrame whose
    columns are fixed-effect names (rows labelled by its index).
    """
    names = list(model.fixef.index)
    p = len(names)
    if isinstance(contrasts, pd.DataFrame):
        rows = [_named_row(row.to_dict(), names) for _, row in contrasts.iterrows()]
        matrix, labels = np.array(rows).reshape(len(rows), p), list(contrasts.index)
    elif isinstance(contrasts, (Mapping, pd.Series)):
        matrix, labels = _named_row(dict(contrasts), names)[None, :], [0]
    elif isinstance(contrasts, Sequence) and contrasts and isinstance(contrasts[0], (Mapping, pd.Series)):
        rows = [_named_row(dict(row), names) for row in contrasts]
        matrix, labels = np.array(rows), list(range(len(rows)))
    else:
        if contrasts is None or isinstance(contrasts, (str, bytes)):
            raise TypeError(
                f"contrasts must be numbers or a mapping of fixed effects to them, not {contrasts!r}"
            )
        matrix = check_numbers("contrasts", contrasts)
        if matrix.ndim == 1:
            matrix = matrix[None, :]
        if matrix.ndim != 2 or matrix.shape[1] != p:
            raise ValueError(
                f"contrasts must have {p} columns, one per fixed effect {names}; "
                f"got shape {np.shape(contrasts)}"
            )
        labels = list(range(matrix.shape[0]))
    if not np.all(np.isfinite(matrix)):
        raise ValueError("contrasts have missing or infinite values")
    if matrix.size and not matrix.any():
        raise ValueError("contrasts are all zero: there is nothing to test")
    return matrix, labels


def _t_rows(model: InferenceView, matrix: np.ndarray, ddf: str, level: float) -> pd.DataFrame:
    """Estimate, standard error, df, t, confidence limits and p-value of each row."""
    level = check_probability("level", level)
    zero = np.flatnonzero(~matrix.any(axis=1))
    if zero.size:
        raise ValueError(f"contrast row {zero[0]} is all zeros: it estimates nothing")
    beta = model.fixef.to_numpy()
    rows = []
    for contrast in matrix:
        estimate = float(contrast @ beta)
        se, df = t_test(model, contrast, ddf)
        half_width = stats.t.ppf(0.5 + level / 2, df) * se
        t_value = estimate / se
        rows.append(
            [
                estimate,
                se,
                df,
                t_value,
                estimate - half_width,
                estimate + half_width,
                2 * stats.t.sf(abs(t_value), df),
            ]
        )
    return pd.DataFrame(rows, columns=T_TEST_COLUMNS)


def contrast_table(
    model: InferenceView, contrasts, ddf: str = "satterthwaite", joint: bool = True, level: float = 0.95
) -> pd.DataFrame:
    """lmerTest's ``contest``: one joint F test (``joint=True``) or a t test per row."""
    matrix, labels = contrast_matrix(model, contrasts)
    if check_flag("joint", joint):
        return f_table({"joint": f_test(model, matrix, ddf)}, model.sigma)
    table = _t_rows(model, matrix, ddf, level)
    table.index = labels
    return table


def coefficient_table(model: InferenceView, ddf: str = "satterthwaite") -> pd.DataFrame:
    """lmerTest's summary table: Estimate, Std. Error, df, t value and Pr(>|t|) of each fixed effect."""
    table = contrast_table(model, np.eye(model.n_fixed), ddf=ddf, joint=False)
    table.index = model.fixef.index
    return table[["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]]


def estimate_table(
    model: InferenceView,
    contrasts,
    label: str | Sequence[str] | None = None,
    level: float = 0.95,
    ddf: str = "containment",
) -> pd.DataFrame:
    """SAS's ESTIMATE with CL: Estimate, Standard Error, DF, t Value, Pr > |t|, Alpha, Lower, Upper."""
    matrix, labels = contrast_matrix(model, contrasts)
    if label is not None:
        if not isinstance(label, (str, Sequence, np.ndarray, pd.Index)):
            raise TypeError(f"label must be a string or a list of strings, not {label!r}")
        labels = [label] if isinstance(label, str) else list(label)
        if len(labels) != matrix.shape[0]:
            raise ValueError(f"{len(labels)} labels given for {matrix.shape[0]} estimates")
    t_rows = _t_rows(model, matrix, ddf, level)
    table = pd.DataFrame(
        {
            "Estimate": t_rows["Estimate"].to_numpy(),
            "Standard Error": t_rows["Std. Error"].to_numpy(),
            "DF": t_rows["df"].to_numpy(),
            "t Value": t_rows["t value"].to_numpy(),
            "Pr > |t|": t_rows["Pr(>|t|)"].to_numpy(),
            "Alpha": round(1 - level, 12),
            "Lower": t_rows["lower"].to_numpy(),
            "Upper": t_rows["upper"].to_numpy(),
        },
        index=pd.Index(labels, name="Label"),
    )
    return table[ESTIMATE_COLUMNS]
