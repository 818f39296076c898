"""Classic mixed-model datasets bundled with the package (lme4, nlme and textbook examples).

Factor columns come back as pandas Categoricals with R's level order (and R's ``ordered`` flag),
because treatment and polynomial contrasts depend on that order.  See ``data/SOURCES.md``.
"""

from __future__ import annotations

import json
from functools import cache, lru_cache
from importlib import resources

import pandas as pd

from ..errors import check_instance

__all__ = ["load", "list"]

_builtin_list = list


@lru_cache(maxsize=1)
def _metadata() -> dict:
    text = resources.files(__name__).joinpath("data/factor_levels.json").read_text(encoding="utf-8")
    return {name.removesuffix(".csv"): meta for name, meta in json.loads(text).items()}


def list() -> _builtin_list[str]:  # noqa: A001 - mirrors R's data() listing
    """Names of the bundled datasets, sorted case-insensitively."""
    return sorted(_metadata(), key=str.lower)


@cache
def _read(name: str) -> pd.DataFrame:
    meta = _metadata()[name]
    factors: dict = meta.get("factors", {})
    with resources.files(__name__).joinpath(f"data/{name}.csv").open("rb") as handle:
        frame = pd.read_csv(
            handle, dtype={col: str for col in factors}, na_values=[""], keep_default_na=False
        )
    for col, info in factors.items():
        frame[col] = pd.Categorical(frame[col], categories=info["levels"], ordered=info["ordered"])
    return frame


def load(name: str) -> pd.DataFrame:
    """Return a fresh copy of the bundled dataset ``name`` (e.g. ``"sleepstudy"``)."""
    check_instance("name", name, str, "a dataset name such as 'sleepstudy'")
    known = _metadata()
    if name not in known:
        lowered = {key.lower(): key for key in known}
        if name.lower() not in lowered:
            raise KeyError(f"unknown dataset {name!r}; available: {', '.join(list())}")
        name = lowered[name.lower()]
    return _read(name).copy()
