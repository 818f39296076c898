"""Datasets as the R reference scripts change them, and cached fits, shared by the fixture tests.

Each builder makes the data exactly as the fixture's ``data_changes`` describe (R rows are 1-based).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import cache

import numpy as np
import pandas as pd

import mixedmodels as mm


def sleepstudy_weights() -> pd.DataFrame:
    df = mm.datasets.load("sleepstudy")
    df["w"] = 1 + df["Days"] % 3
    return df


def sleepstudy_offset() -> pd.DataFrame:
    df = mm.datasets.load("sleepstudy")
    df["off"] = 2.5 * df["Days"]
    return df


def sleepstudy_weights_offset() -> pd.DataFrame:
    """sleepstudy with both new columns, w of sleepstudy_weights and off of sleepstudy_offset."""
    return sleepstudy_weights().assign(off=sleepstudy_offset()["off"])


def sleepstudy_missing_response() -> pd.DataFrame:
    df = mm.datasets.load("sleepstudy")
    df.loc[[2, 19, 76], "Reaction"] = np.nan  # R rows 3, 20, 77
    df["DaysF"] = pd.Categorical(df["Days"].astype(str), categories=[str(d) for d in range(10)])
    return df


def sleepstudy_missing() -> pd.DataFrame:
    df = sleepstudy_missing_response()
    df["Days"] = df["Days"].astype(float)
    df.loc[99, "Days"] = np.nan  # R row 100
    return df


def sleepstudy_rankdef() -> pd.DataFrame:
    df = mm.datasets.load("sleepstudy")
    df["Days2"] = 2 * df["Days"]
    return df


def sleepstudy_nine_groups() -> pd.DataFrame:
    """sleepstudy with g = factor(rep(1:9, length.out = 180)), a grouping with no variance (singular)."""
    df = mm.datasets.load("sleepstudy")
    df["g"] = pd.Categorical(
        (np.arange(len(df)) % 9 + 1).astype(str), categories=[str(i) for i in range(1, 10)]
    )
    return df


def orthodont_missing() -> pd.DataFrame:
    df = mm.datasets.load("Orthodont")
    df.loc[[4, 16, 39, 76, 89], "distance"] = np.nan  # R rows 5, 17, 40, 77, 90
    return df


def sires() -> pd.DataFrame:
    df = mm.datasets.load("sires")
    df["sire"] = pd.Categorical(df["sire"].astype(str))
    return df


Source = str | Callable[[], pd.DataFrame]


def load(source: Source) -> pd.DataFrame:
    """A bundled dataset by name, or the frame a builder makes."""
    return mm.datasets.load(source) if isinstance(source, str) else source()


@cache
def fit(source: Source, formula: str, **kwargs) -> tuple[pd.DataFrame, mm.LinearMixedModel]:
    """The data and the lmer fit, made once per test session."""
    data = load(source)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mm.ModelMessage)
        return data, mm.lmer(formula, data, **kwargs)
