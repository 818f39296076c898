"""glibc's heap during a GLMM fit: the memory of freed row-length arrays kept for the next ones.

Each PIRLS iteration makes a dozen temporary arrays as long as the data (linear predictor, means,
working weights and response, their products).  glibc's ``malloc`` maps arrays above its mmap threshold
afresh and gives freed memory at the top of the heap back to the system once more than its trim
threshold is free, so the next iteration's arrays fault in new zeroed pages; for a large binary GLMM
that is half of an iteration's time (benchmarks/README.md, "GLMM").  :func:`kept_heap` raises both
thresholds for the duration of a fit, so the freed memory is reused, and afterwards hands what is free
back to the system (``malloc_trim``).  Setting a threshold ends glibc's own adjustment of them, which
raises the mmap threshold up to 32 MiB as large arrays are freed and keeps the trim threshold at twice
it; after a fit the thresholds stay where that adjustment ends (32 and 64 MiB), the state glibc
reaches by itself in a process that frees arrays of that size.  Elsewhere than on glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

__all__ = ["kept_heap"]

_M_TRIM_THRESHOLD = -1  # mallopt's parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest dynamic mmap threshold on 64-bit systems
_TRIM_THRESHOLD = 2 * _MMAP_THRESHOLD  # glibc's dynamic trim threshold at that mmap threshold
_FIT_TRIM_THRESHOLD = 1024 * 1024 * 1024

_depth = 0  # nested fits (glmer.nb fits glmer at each theta) change the settings once


@cache
def _libc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018 - both must exist
    except (OSError, AttributeError):
        return None
    return libc


@contextmanager
def kept_heap() -> Iterator[None]:
    """Run the block with freed memory kept in the heap (glibc only; see the module docstring)."""
    global _depth
    libc = _libc()
    if libc is None:
        yield
        return
    if _depth == 0:
        libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
        libc.mallopt(_M_TRIM_THRESHOLD, _FIT_TRIM_THRESHOLD)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
            libc.malloc_trim(0)
