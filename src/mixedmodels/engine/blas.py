"""Single-threaded OpenBLAS while the engine makes many tiny LAPACK calls.

The factorization of a model with several random-effects terms makes thousands of LAPACK calls on
blocks of a few rows (``dpotrf``, ``dtrtrs``).  OpenBLAS may hand such calls to its thread pool, and
when the cores are busy (other processes, or bootstrap workers on every core) waking those threads
costs milliseconds per call: on two loaded cores the Penicillin fit took 50 times longer with the
default two OpenBLAS threads than with one.  :func:`single_threaded_blas` sets every OpenBLAS library
loaded in the process (NumPy's and SciPy's) to one thread for the duration of a block, as
``threadpoolctl`` does, and restores the previous setting afterwards.  Where the libraries cannot be
found (not Linux, another BLAS) it does nothing.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache

__all__ = ["single_threaded_blas"]

_PREFIXES = ("scipy_openblas", "openblas")
_SUFFIXES = ("64_", "")


@cache
def _openblas_controls() -> tuple[tuple[Callable[[], int], Callable[[int], None]], ...]:
    """(get, set) thread-count functions of the OpenBLAS libraries mapped into this process."""
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.rsplit("/", 1)[-1]})
    except OSError:
        return ()
    controls = []
    for path in paths:
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in _PREFIXES:
            for suffix in _SUFFIXES:
                getter = getattr(library, f"{prefix}_get_num_threads{suffix}", None)
                setter = getattr(library, f"{prefix}_set_num_threads{suffix}", None)
                if getter is not None and setter is not None:
                    getter.restype = ctypes.c_int
                    setter.argtypes = [ctypes.c_int]
                    controls.append((getter, setter))
                    break
            else:
                continue
            break
    return tuple(controls)


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the block with OpenBLAS on one thread (see the module docstring)."""
    controls = _openblas_controls()
    saved = [getter() for getter, _ in controls]
    for _, setter in controls:
        setter(1)
    try:
        yield
    finally:
        for (_, setter), threads in zip(controls, saved):
            setter(threads)
