"""Time mixedmodels' glmer against lme4's glmer and mixedlm's glmer.

Run from the repository root:

    /tmp/venv/bin/python benchmarks/bench_glmm.py [--only NAME] [--skip-r] [--timeout S] [--blas-threads N]

As ``bench_lmer.py`` (whose helpers this script reuses): every measurement runs in a fresh subprocess
(Python tools via ``bench_glmm.py --worker TOOL CASE``, lme4 via ``Rscript``, timed with ``system.time``
around the ``glmer`` call only); each process first makes one untimed warm-up fit (cbpp as proportions
with the number of trials as weights), then the case's untimed warm-up calls, then the timed calls, and
the median is reported.  Our peak memory is the rise of ``VmHWM`` over the resident set just before the
timed fits.  Every fit is the Laplace approximation (nAGQ = 1); the table shows the -2 log-likelihood
each tool reached, so one can check that they fitted the same model to the same optimum.  See
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from bench_lmer import (
    R_READ_DATA,
    SYNTHETIC_SEED,
    NotAvailable,
    Target,
    add_common_arguments,
    load_bundled,
    measure_tools,
    peak,
    print_columns,
    print_not_available,
    run_cases,
    run_r,
    run_worker_process,
    time_fit,
    timing_header,
    timing_row,
)

SCRIPT = Path(__file__).resolve()
#: the seed of the project's benchmark data generator; its workload G1 is ``binary_100k`` below
GENERATOR_SEED = 20240601
GENERATOR_G1 = 4  # G1's index in the generator's list of workloads, the second half of its seed


# ---------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------
def binary_100k() -> pd.DataFrame:
    """The project's workload G1: 100,000 rows, g uniform on 1,000 levels, x1 ~ N(0, 1), b ~ N(0, 1) per
    level, y ~ Bernoulli(logistic(-0.5 + 0.8 x1 + b[g]))."""
    n, ngroups = 100_000, 1_000
    rng = np.random.default_rng([GENERATOR_SEED, GENERATOR_G1])
    g = rng.integers(0, ngroups, size=n)
    x1 = rng.standard_normal(n)
    b = rng.standard_normal(ngroups)
    eta = -0.5 + 0.8 * x1 + b[g]
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(float)
    return pd.DataFrame({"y": y, "x1": x1, "g": categorical(g, ngroups, "g")})


def crossed_1m(
    n: int = 1_000_000, nu: int = 10_000, nv: int = 1_000, seed: int = SYNTHETIC_SEED
) -> pd.DataFrame:
    """1,000,000 rows, u uniform on 10,000 levels and v on 1,000 (crossed), x1 ~ N(0, 1),
    bu ~ N(0, 1) and bv ~ N(0, 0.5^2) per level, y ~ Bernoulli(logistic(-0.5 + 0.8 x1 + bu[u] + bv[v]))."""
    rng = np.random.default_rng(seed)
    u = rng.integers(0, nu, size=n)
    v = rng.integers(0, nv, size=n)
    x1 = rng.standard_normal(n)
    bu = rng.standard_normal(nu)
    bv = 0.5 * rng.standard_normal(nv)
    eta = -0.5 + 0.8 * x1 + bu[u] + bv[v]
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(float)
    return pd.DataFrame({"y": y, "x1": x1, "u": categorical(u, nu, "u"), "v": categorical(v, nv, "v")})


def categorical(codes: np.ndarray, nlevels: int, prefix: str) -> pd.Categorical:
    width = len(str(nlevels - 1))
    return pd.Categorical.from_codes(codes, categories=[f"{prefix}{i:0{width}d}" for i in range(nlevels)])


def contraception() -> pd.DataFrame:
    """Contraception with ``age2 = age^2``: mixedlm's formula parser has no ``I()``."""
    data = load_bundled("Contraception")()
    return data.assign(age2=data["age"] ** 2)


def cbpp_proportions() -> pd.DataFrame:
    """cbpp with the proportion ``prop = incidence / size``: mixedlm's formula parser has no ``cbind()``."""
    data = load_bundled("cbpp")()
    return data.assign(prop=data["incidence"] / data["size"])


# ---------------------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    formula: str
    family: str  # "binomial" or "poisson", the same name in R and here
    data: Callable[[], pd.DataFrame]
    warmup: int  # untimed calls before the timed ones
    repeats: int  # timed calls; the median is reported
    target: Target
    weights: str | None = None


WARMUP = Case("prop ~ period + (1 | herd)", "binomial", cbpp_proportions, 0, 1, Target(), weights="size")
CASES: dict[str, Case] = {
    "binary_100k": Case("y ~ x1 + (1 | g)", "binomial", binary_100k, 1, 3, Target(max_seconds=0.15)),
    "verbagg": Case(
        "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)",
        "binomial",
        load_bundled("VerbAgg"),
        1,
        3,
        Target(max_seconds=0.3),
    ),
    "grouseticks": Case(
        "TICKS ~ 1 + YEAR + cHEIGHT + (1 | INDEX) + (1 | BROOD) + (1 | LOCATION)",
        "poisson",
        load_bundled("grouseticks"),
        1,
        5,
        Target(max_seconds=0.8),
    ),
    "contraception": Case(
        "use ~ 1 + age + age2 + urban + livch + (1 | urban:district)",
        "binomial",
        contraception,
        2,
        10,
        Target(max_seconds=0.1),
    ),
    "crossed_1m": Case(
        "y ~ x1 + (1 | u) + (1 | v)", "binomial", crossed_1m, 0, 1, Target(max_seconds=10, max_peak_mb=2048)
    ),
}


# ---------------------------------------------------------------------------------------------------------
# One function per Python tool: returns a call that fits the model and gives its -2 log-likelihood
# ---------------------------------------------------------------------------------------------------------
def fit_ours(case: Case, data: pd.DataFrame) -> Callable[[], float]:
    import mixedmodels as mm

    return lambda: -2.0 * mm.glmer(case.formula, data, family=case.family, weights=case.weights).loglik


def fit_mixedlm(case: Case, data: pd.DataFrame) -> Callable[[], float]:
    import mixedlm
    from mixedlm import families

    family = {"binomial": families.Binomial, "poisson": families.Poisson}[case.family]()
    weights = None if case.weights is None else data[case.weights].to_numpy(dtype=float)
    return lambda: (
        -2.0 * float(mixedlm.glmer(case.formula, data, family=family, weights=weights).logLik().value)
    )


def run_worker(tool: str, case_name: str) -> dict:
    """Time ``tool`` on one case in this (fresh) process; returns the JSON-able result."""
    warnings.simplefilter("ignore")
    make_fit = {"ours": fit_ours, "mixedlm": fit_mixedlm}[tool]
    make_fit(WARMUP, WARMUP.data())()  # load the library and its lazy parts, not timed
    case = CASES[case_name]
    return time_fit(tool, make_fit(case, case.data()), case.warmup, case.repeats)


# ---------------------------------------------------------------------------------------------------------
# Drivers (main process): each returns the result dict or raises NotAvailable
# ---------------------------------------------------------------------------------------------------------
R_SCRIPT = (
    r"""
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]; form <- as.formula(args[2]); fam <- get(args[3], mode = "function")
warmup <- as.integer(args[4]); repeats <- as.integer(args[5])
suppressPackageStartupMessages(library(lme4))
"""
    + R_READ_DATA
    + r"""
cb <- transform(cbpp, prop = incidence / size)
invisible(glmer(prop ~ period + (1 | herd), cb, binomial, weights = size))  # lme4's lazy parts, not timed
for (i in seq_len(warmup)) invisible(glmer(form, d, fam))
times <- numeric(repeats)
for (i in seq_len(repeats)) times[i] <- system.time(fit <- glmer(form, d, fam))[["elapsed"]]
cat(sprintf('{"seconds": %.6f, "objective": %.6f, "version": "lme4 %s, %s"}\n', median(times),
            -2 * as.numeric(logLik(fit)), packageVersion("lme4"), R.version.string))
"""
)


def bench_lme4(case_name: str, timeout: float) -> dict:
    case = CASES[case_name]
    arguments = [case.formula, case.family, str(case.warmup), str(case.repeats)]
    return run_r(R_SCRIPT, case.data(), arguments, timeout)


REFERENCES = ["lme4", "mixedlm"]


def run_tool(tool: str, case_name: str, skip_r: bool, timeout: float) -> dict:
    if tool != "lme4":
        return run_worker_process(SCRIPT, tool, case_name, timeout)
    if skip_r:
        raise NotAvailable("skipped (--skip-r)")
    return bench_lme4(case_name, timeout)


def measure(case_name: str, skip_r: bool, timeout: float) -> dict[str, dict | str]:
    """Results by tool for one case: a result dict, or why there is none."""
    tools = ["ours", *REFERENCES]
    return measure_tools(case_name, tools, lambda tool: run_tool(tool, case_name, skip_r, timeout), describe)


def describe(result: dict | str) -> str:
    if isinstance(result, str):
        return f"n/a: {result}"
    return f"{result['seconds']:.4f} s, -2 logLik {result['objective']:.4f} ({result['version']})"


def minus_two_loglik(result: dict | str) -> str:
    return "n/a" if isinstance(result, str) else f"{result['objective']:.3f}"


def print_table(all_results: dict[str, dict[str, dict | str]]) -> None:
    header = [
        *timing_header(REFERENCES),
        "ours peak (MB)",
        *(f"-2 logLik {tool}" for tool in ["ours", *REFERENCES]),
        "target",
        "met",
    ]
    rows = []
    for case_name, results in all_results.items():
        row = timing_row(case_name, results, REFERENCES)
        row += [peak(results["ours"]), *(minus_two_loglik(results[tool]) for tool in ["ours", *REFERENCES])]
        target = CASES[case_name].target
        rows.append([*row, target.describe(), target.check(results)])
    print_columns(header, rows, left={0, len(header) - 2, len(header) - 1})
    print_not_available(all_results)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=list(CASES), help="run one case")
    add_common_arguments(parser, "lme4", nargs=2, metavar=("TOOL", "CASE"))
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(*args.worker)))
        return
    run_cases(list(CASES), args, measure, print_table)


if __name__ == "__main__":
    main()
