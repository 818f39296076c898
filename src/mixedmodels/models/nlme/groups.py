"""Rows arranged group by group: the block-diagonal layout of the residual covariance.

The model's rows are sorted so that each group (a block of the residual covariance) is a contiguous
run of rows.  Groups of the same size are handled together as one stacked array ``(groups, size, ...)``,
so the per-group linear algebra is a few batched NumPy calls whatever the number of groups.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["GroupLayout", "sort_order"]


def sort_order(keys: list[np.ndarray], nobs: int) -> np.ndarray:
    """Stable row order by the integer ``keys`` (first key slowest), as R's ``order()``."""
    if not keys:
        return np.arange(nobs)
    return np.lexsort(tuple(reversed(keys))) if len(keys) > 1 else np.argsort(keys[0], kind="stable")


@dataclass
class Bucket:
    """The groups of one size: ``rows[g]`` are the (sorted) row indices of group ``groups[g]``."""

    size: int
    groups: np.ndarray
    rows: np.ndarray  # (ngroups, size)


@dataclass
class GroupLayout:
    """Contiguous groups of rows (in the sorted order): their starts and lengths."""

    starts: np.ndarray
    lengths: np.ndarray
    buckets: list[Bucket] = field(init=False)

    def __post_init__(self):
        self.buckets = []
        for size in np.unique(self.lengths):
            groups = np.flatnonzero(self.lengths == size)
            rows = self.starts[groups][:, None] + np.arange(size)[None, :]
            self.buckets.append(Bucket(int(size), groups, rows))

    @classmethod
    def from_codes(cls, codes: np.ndarray) -> GroupLayout:
        """Groups of equal consecutive codes (the rows must already be sorted by group)."""
        n = len(codes)
        if n == 0:
            return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
        change = np.flatnonzero(np.diff(codes) != 0) + 1
        starts = np.concatenate([[0], change]).astype(np.int64)
        lengths = np.diff(np.concatenate([starts, [n]])).astype(np.int64)
        return cls(starts, lengths)

    @property
    def nobs(self) -> int:
        return int(self.lengths.sum())

    @property
    def max_size(self) -> int:
        return int(self.lengths.max()) if len(self.lengths) else 0

    @property
    def position(self) -> np.ndarray:
        """0-based position of each row within its group."""
        return np.arange(self.nobs) - np.repeat(self.starts, self.lengths)
