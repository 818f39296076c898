"""Row sources: a model's rows as chunks of the engine's arrays.

A row source yields :class:`RowChunk`\\ s; the cross-products of all rows are the sum of the chunks'
(:mod:`mixedmodels.engine.crossprod`), so rows need not be in memory all at once.  In-memory data is
one chunk (the model frame); :class:`TableRows` cuts a table into chunks of k rows (or of whole groups
of rows, when rows that belong together must stay together) and makes each chunk's arrays from the model
spec alone, as a Parquet dataset read batch by batch or Dask partitions would be.

The response enters the cross-products in units that every chunk must share, a least-squares shift and
the residuals' root mean square (:class:`~mixedmodels.engine.crossprod.ResponseUnits`), which depend on
all rows: :func:`source_cross_products` reads the source twice, once for the units (from the chunks'
R factors) and once for the blocks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from ..engine.crossprod import (
    CrossProducts,
    ReBlock,
    ResponseUnits,
    cross_products,
    sum_cross_products,
)
from .spec import MixedModelSpec
from .tables import complete_mask, given_values, to_pandas

__all__ = ["RowChunk", "RowSource", "TableRows", "chunk_slices", "source_cross_products", "total_offset"]


@dataclass(frozen=True)
class RowChunk:
    """Rows as the engine sees them: the fixed-effects columns, the response less the offset, the prior
    weights and each random-effects term's codes and columns (in the spec's term order)."""

    x: np.ndarray
    response: np.ndarray
    weights: np.ndarray | None
    blocks: list[ReBlock]

    def holding(self, j: int, value: float) -> RowChunk:
        """The rows of the model with fixed effect ``j`` held at ``value``: X without column ``j``, the
        offset ``value x_j`` (a profile's refit)."""
        return RowChunk(
            np.delete(self.x, j, axis=1), self.response - value * self.x[:, j], self.weights, self.blocks
        )

    def cross_products(self, units: ResponseUnits) -> CrossProducts:
        """Blocks of [Z X y]'W[Z X y] of these rows, the response in ``units``."""
        xy = np.empty((len(self.response), self.x.shape[1] + 1), order="F")  # whole columns are read
        xy[:, :-1] = self.x
        xy[:, -1] = units.apply(self.x, self.response)
        return cross_products(self.blocks, xy, self.weights, units)


class RowSource(Protocol):
    """Anything that yields a model's rows as chunks, the same chunks each time it is asked."""

    def chunks(self) -> Iterator[RowChunk]: ...


def source_cross_products(source: RowSource) -> CrossProducts:
    """Blocks of [Z X y]'W[Z X y] over all of a source's rows: one pass for the response's units
    (:meth:`ResponseUnits.least_squares_chunks`), one for the sum of the chunks' blocks."""
    units = ResponseUnits.least_squares_chunks((c.x, c.response, c.weights) for c in source.chunks())
    return sum_cross_products(chunk.cross_products(units) for chunk in source.chunks())


def total_offset(given: np.ndarray | None, formula_offsets: list[np.ndarray]) -> np.ndarray | None:
    """The offset of rows: one given (as numbers or a column) plus the sum of the formula's ``offset()``
    terms (None without any)."""
    in_formula = None
    for values in formula_offsets:
        in_formula = values if in_formula is None else in_formula + values
    if in_formula is None:
        return given
    return in_formula if given is None else given + in_formula


def chunk_slices(nrows: int, chunk_rows: int, group_starts: np.ndarray | None = None) -> Iterator[slice]:
    """Consecutive slices of ``nrows`` rows, ``chunk_rows`` at a time; with ``group_starts`` (the first
    row of each group, groups contiguous), cut only where a group starts: as many whole groups as fit in
    ``chunk_rows`` rows, a group larger than that a chunk of its own."""
    if group_starts is None:
        yield from (slice(start, min(start + chunk_rows, nrows)) for start in range(0, nrows, chunk_rows))
        return
    cuts = np.append(group_starts[group_starts > 0], nrows)
    start = 0
    while start < nrows:
        fitting = np.searchsorted(cuts, start + chunk_rows, side="right") - 1
        stop = int(cuts[fitting]) if fitting >= 0 and cuts[fitting] > start else int(cuts[cuts > start][0])
        yield slice(start, stop)
        start = stop


@dataclass
class TableRows:
    """A table's rows in chunks of ``chunk_rows`` input rows (of whole groups with ``group_starts``, see
    :func:`chunk_slices`), each made from the spec alone: the rows incomplete in a variable the model
    uses dropped, the fit's factor levels and transforms applied."""

    spec: MixedModelSpec
    table: pd.DataFrame
    chunk_rows: int
    given: dict[str, np.ndarray]  # weights and offset given as numbers, one per input row
    group_starts: np.ndarray | None = None  # the table's first row of each group (rows sorted by group)

    @classmethod
    def from_data(
        cls,
        spec: MixedModelSpec,
        data,
        chunk_rows: int,
        weights: str | np.ndarray | None = None,
        offset: str | np.ndarray | None = None,
    ) -> TableRows:
        """The rows of ``data`` (any table :func:`to_pandas` takes) with ``weights`` and ``offset`` as the
        fit was given them (column names, which the spec knows, or numbers for the input's rows)."""
        table = to_pandas(data)
        return cls(spec, table, chunk_rows, given_values(weights, offset, table.index))

    def chunks(self) -> Iterator[RowChunk]:
        return (chunk for _, chunk in self.parts())

    def parts(self) -> Iterator[tuple[slice, RowChunk]]:
        """Each chunk with the slice of the table's rows it was made from (chunks without complete rows
        left out)."""
        variables = list(self.spec.variables)
        for part in chunk_slices(len(self.table), self.chunk_rows, self.group_starts):
            chunk = _spec_rows(
                self.spec, self.table.iloc[part], variables, {k: v[part] for k, v in self.given.items()}
            )
            if chunk is not None:
                yield part, chunk


def _spec_rows(
    spec: MixedModelSpec, table: pd.DataFrame, variables: list[str], given: Mapping[str, np.ndarray]
) -> RowChunk | None:
    """The engine's arrays of the complete rows of ``table`` (None when there are none), made from the
    spec; ``given``: weights and offset as numbers for these rows."""
    complete = complete_mask({v: table[v] for v in variables}, given, len(table))
    if not complete.any():
        return None
    if not complete.all():
        table = table[complete]
        given = {name: values[complete] for name, values in given.items()}
    leveled = spec.with_fit_levels(table)
    y = spec.response.values(leveled)
    weights = given.get("weights")
    if weights is None and spec.weights is not None:
        weights = spec.weights.values(leveled)
    offset = given.get("offset")
    if offset is None and spec.offset is not None:
        offset = spec.offset.values(leveled)
    offset = total_offset(offset, [o.values(leveled) for o in spec.formula_offsets])
    blocks = [term.block(table, leveled) for term in spec.terms]
    return RowChunk(spec.fixed_matrix(leveled), y if offset is None else y - offset, weights, blocks)
