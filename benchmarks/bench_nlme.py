"""Time mixedmodels' lme with a CorAR1 correlation against R's nlme.

Run from the repository root:

    /tmp/venv/bin/python benchmarks/bench_nlme.py [--groups G] [--size S] [--skip-r] [--blas-threads N]

The case is ``lme(y ~ x, random = ~ 1 | g, correlation = corAR1())`` by REML on simulated data
(``synthetic_ar1``: 10,000 groups of 20 rows by default).  As ``bench_lmer.py`` (whose helpers this
script reuses): each tool runs in a fresh process, after an untimed warm-up fit on a small data set;
one timed fit on data already in memory (R: ``system.time`` around the ``lme`` call only); R reads the
same data from a CSV with the factor levels rebuilt.  The table shows both times, their ratio, the
REML log-likelihoods (which must agree) and the target (ours <= nlme / 5).  See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from bench_lmer import (
    R_READ_DATA,
    SYNTHETIC_SEED,
    NotAvailable,
    add_common_arguments,
    end_run,
    last_json,
    python_version_of,
    run_r,
    run_subprocess,
    start_run,
)

SCRIPT = Path(__file__).resolve()
TARGET_SPEEDUP = 5.0


def synthetic_ar1(ngroups: int = 10_000, size: int = 20, seed: int = SYNTHETIC_SEED) -> pd.DataFrame:
    """y = 1 + 0.5 x + b[g] + e: x ~ N(0, 1), b ~ N(0, 1), and within each group e is a stationary
    AR(1) series with phi = 0.6 and variance 1; ``size`` consecutive rows per group."""
    rng = np.random.default_rng(seed)
    e = np.empty((ngroups, size))
    e[:, 0] = rng.standard_normal(ngroups)
    for t in range(1, size):
        e[:, t] = 0.6 * e[:, t - 1] + np.sqrt(1 - 0.36) * rng.standard_normal(ngroups)
    g = np.repeat(np.arange(ngroups), size)
    x = rng.standard_normal(ngroups * size)
    y = 1.0 + 0.5 * x + rng.standard_normal(ngroups)[g] + e.ravel()
    levels = [f"g{i:05d}" for i in range(ngroups)]
    return pd.DataFrame({"y": y, "x": x, "g": pd.Categorical.from_codes(g, categories=levels)})


def fit_ours(data: pd.DataFrame) -> float:
    import mixedmodels as mm

    return mm.lme("y ~ x", data, random="~ 1 | g", correlation=mm.CorAR1()).loglik


def run_worker(ngroups: int, size: int) -> dict:
    """Time our fit in this (fresh) process; returns the JSON-able result."""
    warnings.simplefilter("ignore")
    fit_ours(synthetic_ar1(50, size, seed=1))  # load the library and its lazy parts, not timed
    data = synthetic_ar1(ngroups, size)
    start = time.perf_counter()
    loglik = fit_ours(data)
    return {"seconds": time.perf_counter() - start, "loglik": loglik, "version": python_version_of("ours")}


R_SCRIPT = (
    r"""
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]
suppressPackageStartupMessages(library(nlme))
"""
    + R_READ_DATA
    + r"""
warm <- d[d$g %in% levels(d$g)[1:50], ]
warm$g <- droplevels(warm$g)
invisible(lme(y ~ x, warm, random = ~ 1 | g, correlation = corAR1()))  # not timed
seconds <- system.time(fit <- lme(y ~ x, d, random = ~ 1 | g, correlation = corAR1()))[["elapsed"]]
cat(sprintf('{"seconds": %.6f, "loglik": %.8f, "version": "nlme %s, %s"}\n', seconds,
            c(logLik(fit)), packageVersion("nlme"), R.version.string))
"""
)


def bench_nlme(ngroups: int, size: int, timeout: float) -> dict:
    return run_r(R_SCRIPT, synthetic_ar1(ngroups, size), [], timeout)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=10_000, help="number of groups (default 10000)")
    parser.add_argument("--size", type=int, default=20, help="rows per group (default 20)")
    add_common_arguments(parser, "nlme", timeout=3600.0, action="store_true")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(args.groups, args.size)))
        return
    started = start_run(args.blas_threads)
    results: dict[str, dict | str] = {}
    command = [
        sys.executable,
        str(SCRIPT),
        "--worker",
        "--groups",
        str(args.groups),
        "--size",
        str(args.size),
    ]
    for tool, run in (
        ("ours", lambda: last_json(run_subprocess(command, args.timeout))),
        ("nlme", lambda: bench_nlme(args.groups, args.size, args.timeout) if not args.skip_r else None),
    ):
        try:
            results[tool] = run() or "skipped (--skip-r)"
        except NotAvailable as exc:
            results[tool] = str(exc)
        print(f"  {tool:<5} {results[tool]}", file=sys.stderr, flush=True)
    ours, nlme = results["ours"], results["nlme"]
    case = f"synthetic_ar1 ({args.groups} groups x {args.size})"
    print()
    print("| case | ours (s) | nlme (s) | nlme/ours | logLik ours | logLik nlme | target | met |")
    print("|---|---:|---:|---:|---:|---:|---|---|")
    if isinstance(ours, dict) and isinstance(nlme, dict):
        ratio = nlme["seconds"] / ours["seconds"]
        met = "yes" if ratio >= TARGET_SPEEDUP else "**no**"
        figures = f"{ours['seconds']:.3f} | {nlme['seconds']:.2f} | {ratio:.3g}"
        logliks = f"{ours['loglik']:.4f} | {nlme['loglik']:.4f}"
        print(f"| {case} | {figures} | {logliks} | ours <= nlme/{TARGET_SPEEDUP:g} | {met} |")
    else:
        cells = [r if isinstance(r, str) else f"{r['seconds']:.3f}" for r in (ours, nlme)]
        print(f"| {case} | {cells[0]} | {cells[1]} | n/a | | | ours <= nlme/{TARGET_SPEEDUP:g} | unknown |")
    print()
    end_run(started)


if __name__ == "__main__":
    main()
