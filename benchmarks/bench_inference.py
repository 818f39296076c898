"""Time mixedmodels' Satterthwaite and Kenward-Roger coefficient tables against lmerTest / pbkrtest.

Run from the repository root:

    /tmp/venv/bin/python benchmarks/bench_inference.py [--only NAME] [--skip-r] [--timeout S]
        [--blas-threads N]

As ``bench_lmer.py`` (whose helpers this script reuses): every measurement runs in a fresh process,
ours via ``bench_inference.py --worker CASE`` and R via ``Rscript`` with ``system.time`` inside R.  Each
process first makes an untimed warm-up (the sleepstudy fit and both tables), loads the case's data, fits
the model untimed when the case times a table for a fitted model, then times the case's calls (the median
is reported).  Our peak memory is the rise of the worker's peak resident set over its level just before
the timed calls.  Both tools print the df of the tables' first and last rows, so that one can check they
computed the same thing.  See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from bench_lmer import (
    R_READ_DATA,
    NotAvailable,
    Target,
    add_common_arguments,
    end_run,
    last_json,
    load_bundled,
    peak,
    print_columns,
    print_not_available,
    python_version_of,
    ratio,
    reset_peak_rss,
    run_r,
    run_subprocess,
    seconds,
    start_run,
    status_kb,
)

SCRIPT = Path(__file__).resolve()
INSTEVAL = "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept)"
PBKRTEST_INSTEVAL = "not run: pbkrtest forms n x n matrices (73,421 rows; needs > 10 GB)"


@dataclass(frozen=True)
class Case:
    formula: str
    data: Callable[[], pd.DataFrame]
    ddf: str  # "satterthwaite" or "kenward-roger"
    end_to_end: bool  # True: fit + table timed; False: the table for an already fitted model
    warmup: int  # untimed calls before the timed ones
    repeats: int  # timed calls; the median is reported
    r_not_run: str | None = None  # why R is not run on this case
    target: Target = Target()

    def describe(self) -> str:
        what = "lmer + coef table" if self.end_to_end else "coef table of a fitted model"
        return f"{self.ddf}, {what}"


CASES: dict[str, Case] = {
    "insteval_satterthwaite": Case(
        INSTEVAL,
        load_bundled("InstEval"),
        ddf="satterthwaite",
        end_to_end=False,
        warmup=0,
        repeats=1,
        target=Target(speedup=10, reference="R"),
    ),
    "insteval_satterthwaite_e2e": Case(
        INSTEVAL,
        load_bundled("InstEval"),
        ddf="satterthwaite",
        end_to_end=True,
        warmup=0,
        repeats=1,
        target=Target(speedup=10, reference="R"),
    ),
    "insteval_kenward_roger": Case(
        INSTEVAL,
        load_bundled("InstEval"),
        ddf="kenward-roger",
        end_to_end=False,
        warmup=0,
        repeats=1,
        r_not_run=PBKRTEST_INSTEVAL,
        target=Target(max_seconds=60, max_peak_mb=4096),
    ),
    "sleepstudy_kenward_roger": Case(
        "Reaction ~ Days + (Days | Subject)",
        load_bundled("sleepstudy"),
        ddf="kenward-roger",
        end_to_end=False,
        warmup=3,
        repeats=20,
    ),
    "machines_kenward_roger": Case(
        "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)",
        load_bundled("Machines"),
        ddf="kenward-roger",
        end_to_end=False,
        warmup=3,
        repeats=20,
    ),
}


# ---------------------------------------------------------------------------------------------------------
# Our worker
# ---------------------------------------------------------------------------------------------------------
def run_worker(case_name: str) -> dict:
    """Time one case in this (fresh) process; returns the JSON-able result."""
    import mixedmodels as mm

    warnings.simplefilter("ignore")
    warm = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))
    warm.coef_table("satterthwaite"), warm.coef_table("kenward-roger")  # load lazy parts, not timed
    case = CASES[case_name]
    data = case.data()

    def call(model=None) -> pd.DataFrame:
        if case.end_to_end:
            return mm.lmer(case.formula, data).coef_table(case.ddf)
        return model.coef_table(case.ddf)

    def fitted():
        return None if case.end_to_end else mm.lmer(case.formula, data)

    for _ in range(case.warmup):
        call(fitted())
    models = [fitted() for _ in range(case.repeats)]  # fresh models: the tables' pieces are cached per model
    peak_reset = reset_peak_rss()
    baseline_kb = status_kb("VmRSS")
    times = []
    for model in models:
        start = time.perf_counter()
        table = call(model)
        times.append(time.perf_counter() - start)
    peak_mb = (status_kb("VmHWM") - baseline_kb) / 1024 if peak_reset else None
    return {
        "seconds": statistics.median(times),
        "df": [float(table["df"].iloc[0]), float(table["df"].iloc[-1])],
        "peak_mb": peak_mb,
        "version": f"mixedmodels {python_version_of('ours')}",
    }


# ---------------------------------------------------------------------------------------------------------
# R (lmerTest 3.1-3, pbkrtest 0.5.2)
# ---------------------------------------------------------------------------------------------------------
R_SCRIPT = (
    r"""
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]; form <- as.formula(args[2]); ddf <- args[3]; end_to_end <- args[4] == "TRUE"
warmup <- as.integer(args[5]); repeats <- as.integer(args[6])
suppressPackageStartupMessages({library(lme4); library(lmerTest); library(pbkrtest)})
"""
    + R_READ_DATA
    + r"""
method <- if (ddf == "satterthwaite") "Satterthwaite" else "Kenward-Roger"
## load the packages' lazy parts, not timed
w <- lmerTest::lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
invisible(summary(w)); invisible(summary(w, ddf = "Kenward-Roger"))
## the table for a fitted model: for Satterthwaite lmerTest's as_lmerModLmerTest (the Hessian and
## Jacobian lmerTest::lmer computes after lme4's fit) and the summary; for Kenward-Roger the summary of
## an lmerTest fit (pbkrtest's vcovAdj and Lb_ddf per coefficient)
fit <- function() if (ddf == "satterthwaite") lme4::lmer(form, d, REML = TRUE) else
  lmerTest::lmer(form, d, REML = TRUE)
call <- function(m) {
  if (end_to_end) return(summary(lmerTest::lmer(form, d, REML = TRUE), ddf = method)$coefficients)
  if (ddf == "satterthwaite") m <- as_lmerModLmerTest(m)
  summary(m, ddf = method)$coefficients
}
for (i in seq_len(warmup)) invisible(call(if (end_to_end) NULL else fit()))
times <- numeric(repeats)
for (i in seq_len(repeats)) {
  m <- if (end_to_end) NULL else fit()
  times[i] <- system.time(tab <- call(m))[["elapsed"]]
}
cat(sprintf('{"seconds": %.6f, "df": [%.10g, %.10g], "version": "lmerTest %s, pbkrtest %s, lme4 %s, %s"}\n',
            median(times), tab[1, "df"], tab[nrow(tab), "df"], packageVersion("lmerTest"),
            packageVersion("pbkrtest"), packageVersion("lme4"), R.version.string))
"""
)


def bench_r(case_name: str, timeout: float) -> dict:
    case = CASES[case_name]
    if case.r_not_run:
        raise NotAvailable(case.r_not_run)
    arguments = [case.formula, case.ddf, str(case.end_to_end).upper(), str(case.warmup), str(case.repeats)]
    return run_r(R_SCRIPT, case.data(), arguments, timeout)


def bench_ours(case_name: str, timeout: float) -> dict:
    return last_json(run_subprocess([sys.executable, str(SCRIPT), "--worker", case_name], timeout))


# ---------------------------------------------------------------------------------------------------------
# Table
# ---------------------------------------------------------------------------------------------------------
def describe(result: dict | str) -> str:
    if isinstance(result, str):
        return f"n/a: {result}"
    df = ", ".join(f"{v:.6g}" for v in result["df"])
    return f"{result['seconds']:.4f} s, df (first, last row) {df} ({result['version']})"


def print_table(results: dict[str, dict[str, dict | str]]) -> None:
    header = ["case", "what is timed", "ours (s)", "R (s)", "R/ours", "ours peak (MB)", "target", "met"]
    rows = [
        [
            name,
            CASES[name].describe(),
            seconds(result["ours"]),
            seconds(result["R"]),
            ratio(result["R"], result["ours"]),
            peak(result["ours"]),
            CASES[name].target.describe(),
            CASES[name].target.check(result),
        ]
        for name, result in results.items()
    ]
    print_columns(header, rows, left={0, 1, 6, 7})
    print_not_available(results)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=list(CASES), help="run one case")
    add_common_arguments(parser, "R", metavar="CASE")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(args.worker)))
        return
    started = start_run(args.blas_threads)
    results: dict[str, dict[str, dict | str]] = {}
    for name in [args.only] if args.only else CASES:
        results[name] = {}
        for tool, bench in [("ours", bench_ours), ("R", bench_r)]:
            try:
                if tool == "R" and args.skip_r and not CASES[name].r_not_run:
                    raise NotAvailable("skipped (--skip-r)")
                results[name][tool] = bench(name, args.timeout)
            except NotAvailable as exc:
                results[name][tool] = str(exc)
            print(f"  {name:<27} {tool:<5} {describe(results[name][tool])}", file=sys.stderr, flush=True)
    print()
    print_table(results)
    end_run(started)


if __name__ == "__main__":
    main()
