"""How many BLAS/OpenMP threads the heavy linear algebra runs on: one, set through ``threadpoolctl``.

A fit makes hundreds of LAPACK and BLAS calls on blocks of a few to a few thousand rows.  OpenBLAS hands
the larger ones to its thread pool, whose threads wait for each other at every step; when another
process holds a core, each wait can last a scheduler time slice.  On 2 shared cores the InstEval fit
(dense blocks of order 1,142) took 1.0-3.9 s on one thread and 5-25 s on OpenBLAS's default two, in the
same minutes; Kenward-Roger's tables and a model with a dense block of order 2,500 collapsed alike
(benchmarks/README.md, "Fits on a busy machine", has the figures of ``bench_load.py``).  One thread
keeps a fit's time beside busy processes within a small factor of its idle time.

:func:`fit_threads` is the one place that decides the number; :func:`limited_threads` applies it to a
block (fits from the model frame on, refits, profiles, numerical derivatives, Kenward-Roger's algebra)
and restores the libraries' settings after it.  The frame is included because OpenBLAS's threads, once
woken by one threaded call there (a least-squares fit of 100,000 rows), spin for a while after it and
take a core from the fit that follows.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import scipy.linalg  # noqa: F401  (loads SciPy's OpenBLAS before the controller lists the libraries)
from threadpoolctl import ThreadpoolController

__all__ = ["fit_threads", "limited_threads"]


def fit_threads() -> int:
    """Threads for the BLAS, LAPACK and OpenMP calls of fits and inference (see the module docstring)."""
    return 1


@cache
def _controller() -> ThreadpoolController:
    """The thread-pool libraries loaded in this process, listed once: listing them takes milliseconds,
    setting their thread counts microseconds."""
    return ThreadpoolController()


@contextmanager
def limited_threads() -> Iterator[None]:
    """Run the block (or, as ``@limited_threads()``, each call of the function) with :func:`fit_threads`
    threads in every BLAS and OpenMP library that was loaded when this was first used."""
    with _controller().limit(limits=fit_threads()):
        yield
