"""Time mixedmodels' lmer against lme4, mixedlm and statsmodels' MixedLM.

Run from the repository root:

    /tmp/venv/bin/python benchmarks/bench_lmer.py [--only NAME] [--skip-r] [--timeout S] [--blas-threads N]

Every measurement runs in a fresh subprocess: Python tools via ``bench_lmer.py --worker TOOL CASE``
(which prints one JSON line), lme4 via ``Rscript`` (timing with ``system.time`` inside R, around the
``lmer`` call only).  Each worker first fits sleepstudy once to load the library and its lazy parts
(not timed), then makes the case's untimed warm-up calls, then the timed calls; the median is reported.
Our peak memory is the rise of the worker's peak resident set (``VmHWM``, the figure ``ru_maxrss``
reports) over its resident set just before the timed fits; the peak is reset through
``/proc/self/clear_refs`` at that point, after loading the data and the warm-up calls.  See
benchmarks/README.md.
A reference that is not installed, cannot express a model, fails or times out prints "n/a" and the
reason is listed under the table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

SCRIPT = Path(__file__).resolve()
SYNTHETIC_SEED = 20261121
THREAD_VARIABLES = ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"]


# ---------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------
def load_bundled(name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import mixedmodels as mm

        return mm.datasets.load(name)

    return load


def synthetic(n: int = 1_000_000, ngroups: int = 10_000, seed: int = SYNTHETIC_SEED) -> pd.DataFrame:
    """y = 2 + 0.5 x1 - 0.3 x2 + b0[g] + b1[g] x1 + e: x1, x2, e ~ N(0, 1) independent; (b0, b1)
    bivariate normal with sds 1 and 0.5 and correlation 0.3; n / ngroups rows per level of g, in
    random row order."""
    rng = np.random.default_rng(seed)
    sd = np.array([1.0, 0.5])
    cov = np.outer(sd, sd) * np.array([[1.0, 0.3], [0.3, 1.0]])
    b = rng.multivariate_normal(np.zeros(2), cov, size=ngroups)
    g = rng.permutation(np.repeat(np.arange(ngroups), n // ngroups))
    x1 = rng.standard_normal(n)
    x2 = rng.standard_normal(n)
    y = 2.0 + 0.5 * x1 - 0.3 * x2 + b[g, 0] + b[g, 1] * x1 + rng.standard_normal(n)
    levels = [f"g{i:05d}" for i in range(ngroups)]
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2, "g": pd.Categorical.from_codes(g, categories=levels)})


# ---------------------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    speedup: float | None = None  # ours <= reference / speedup
    reference: str = "lme4"  # the tool ``speedup`` compares with
    beat_mixedlm: bool = False  # ours < mixedlm
    max_peak_mb: float | None = None
    max_seconds: float | None = None

    def describe(self) -> str:
        parts = [
            f"<= {self.reference}/{self.speedup:g}" if self.speedup else "",
            "< mixedlm" if self.beat_mixedlm else "",
            f"peak <= {self.max_peak_mb:g} MB" if self.max_peak_mb else "",
            f"<= {self.max_seconds:g} s" if self.max_seconds else "",
        ]
        return ", ".join(p for p in parts if p)

    def check(self, results: dict[str, dict | str]) -> str:
        """ "met", what was missed, "unknown (figure missing)", or "n/a" when there is no target."""
        ours = results["ours"]
        checks = []  # (needed figures present, passed, what was missed)
        if self.speedup:
            reference = results[self.reference]
            present = isinstance(ours, dict) and isinstance(reference, dict)
            speedup = reference["seconds"] / ours["seconds"] if present else 0.0
            checks.append(
                (present, speedup >= self.speedup, f"{self.reference}/ours {speedup:.3g} < {self.speedup:g}")
            )
        if self.beat_mixedlm:
            mixedlm = results["mixedlm"]
            present = isinstance(ours, dict) and isinstance(mixedlm, dict)
            checks.append((present, present and ours["seconds"] < mixedlm["seconds"], "slower than mixedlm"))
        if self.max_peak_mb:
            present = isinstance(ours, dict) and ours["peak_mb"] is not None
            checks.append((present, present and ours["peak_mb"] <= self.max_peak_mb, "peak"))
        if self.max_seconds:
            present = isinstance(ours, dict)
            checks.append((present, present and ours["seconds"] <= self.max_seconds, "time"))
        if not checks:
            return "n/a"
        missed = [what for present, passed, what in checks if present and not passed]
        if missed:
            return "missed: " + "; ".join(missed)
        return "met" if all(present for present, _, _ in checks) else "unknown (figure missing)"


@dataclass(frozen=True)
class Case:
    formula: str
    data: Callable[[], pd.DataFrame]
    warmup: int  # untimed calls before the timed ones
    repeats: int  # timed calls; the median is reported
    # statsmodels MixedLM: (fixed-effects formula, grouping column, re_formula), or why not expressible
    statsmodels: tuple[str, str, str] | str
    target: Target


CASES: dict[str, Case] = {
    "insteval": Case(
        "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept)",
        load_bundled("InstEval"),
        warmup=0,
        repeats=1,
        statsmodels="crossed random effects (3 grouping factors)",
        target=Target(speedup=20, beat_mixedlm=True),
    ),
    "sleepstudy": Case(
        "Reaction ~ Days + (Days | Subject)",
        load_bundled("sleepstudy"),
        warmup=3,
        repeats=50,
        statsmodels=("Reaction ~ Days", "Subject", "~Days"),
        target=Target(speedup=5),
    ),
    "synthetic_1m": Case(
        "y ~ 1 + x1 + x2 + (1 + x1 | g)",
        synthetic,
        warmup=0,
        repeats=1,
        statsmodels=("y ~ 1 + x1 + x2", "g", "~1 + x1"),
        target=Target(speedup=20, beat_mixedlm=True, max_peak_mb=1024),
    ),
}
CLI_CASE = "cli_demo"
CLI_COMMAND = ["-m", "mixedmodels", "fit", "Reaction ~ Days + (Days | Subject)", "--data", "sleepstudy"]
CLI_TARGET = Target(max_seconds=2.0)
CLI_REPEATS = 5  # after one untimed run


class NotAvailable(Exception):
    """A reference that is missing, cannot express the model, fails or times out."""


# ---------------------------------------------------------------------------------------------------------
# One function per Python tool: returns a call that fits the model and gives its REML criterion
# ---------------------------------------------------------------------------------------------------------
def fit_ours(formula: str, data: pd.DataFrame) -> Callable[[], float]:
    import mixedmodels as mm

    return lambda: mm.lmer(formula, data, reml=True).reml_criterion


def fit_mixedlm(formula: str, data: pd.DataFrame) -> Callable[[], float]:
    import mixedlm

    return lambda: float(mixedlm.lmer(formula, data, REML=True).deviance)


def fit_statsmodels(spec: tuple[str, str, str], data: pd.DataFrame) -> Callable[[], float]:
    import statsmodels.formula.api as smf

    fixed, group, re_formula = spec

    def fit() -> float:
        model = smf.mixedlm(fixed, data, groups=data[group], re_formula=re_formula)
        return -2.0 * float(model.fit(reml=True).llf)

    return fit


def python_version_of(tool: str) -> str:
    from importlib.metadata import version

    return version({"ours": "mixedmodels"}.get(tool, tool))


def make_fit(tool: str, case: Case, data: pd.DataFrame) -> Callable[[], float]:
    if tool == "statsmodels":
        return fit_statsmodels(case.statsmodels, data)  # bench_python has checked it is a spec
    return {"ours": fit_ours, "mixedlm": fit_mixedlm}[tool](case.formula, data)


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux >= 4.0)
        return True
    except OSError:
        return False


def run_worker(tool: str, case_name: str) -> dict:
    """Time ``tool`` on one case in this (fresh) process; returns the JSON-able result."""
    warnings.simplefilter("ignore")
    warm = CASES["sleepstudy"]
    make_fit(tool, warm, warm.data())()  # load the library and its lazy parts, not timed
    case = CASES[case_name]
    return time_fit(tool, make_fit(tool, case, case.data()), case.warmup, repeats=case.repeats)


def time_fit(tool: str, fit: Callable[[], float], warmup: int, repeats: int) -> dict:
    """``warmup`` untimed calls of ``fit``, then the median time of ``repeats`` calls, the last call's
    objective, our peak memory over the resident set before the timed calls and the tool's version."""
    for _ in range(warmup):
        fit()
    peak_reset = reset_peak_rss()
    baseline_kb = status_kb("VmRSS")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        objective = fit()
        times.append(time.perf_counter() - start)
    peak_mb = (status_kb("VmHWM") - baseline_kb) / 1024 if peak_reset else None
    return {
        "seconds": statistics.median(times),
        "objective": objective,
        "peak_mb": peak_mb,
        "version": python_version_of(tool),
    }


# ---------------------------------------------------------------------------------------------------------
# Drivers (main process): each returns the result dict or raises NotAvailable
# ---------------------------------------------------------------------------------------------------------
def run_subprocess(cmd: list[str], timeout: float) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise NotAvailable(f"timed out after {timeout:.0f} s") from None
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or [f"exit code {proc.returncode}"]
        raise NotAvailable(lines[-1][:200])
    return proc.stdout


def last_json(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


def bench_python(tool: str, case_name: str, timeout: float) -> dict:
    case = CASES[case_name]
    if tool == "statsmodels" and isinstance(case.statsmodels, str):
        raise NotAvailable(f"cannot express the model: {case.statsmodels}")
    return run_worker_process(SCRIPT, tool, case_name, timeout)


def run_worker_process(script: Path, tool: str, case_name: str, timeout: float) -> dict:
    """The result of ``script --worker TOOL CASE`` in a fresh process (a reference must be installed)."""
    if tool != "ours":
        try:
            python_version_of(tool)
        except ImportError:
            raise NotAvailable(f"{tool} not installed") from None
    return last_json(run_subprocess([sys.executable, str(script), "--worker", tool, case_name], timeout))


#: R code that reads the data written by write_for_r from the directory ``dir`` into ``d``
R_READ_DATA = r"""
level_files <- list.files(dir, pattern = "\\.levels$")
factors <- sub("\\.levels$", "", level_files)
d <- read.csv(file.path(dir, "data.csv"), na.strings = "",
              colClasses = setNames(rep("character", length(factors)), factors))
for (i in seq_along(factors))
  d[[factors[i]]] <- factor(d[[factors[i]]], levels = readLines(file.path(dir, level_files[i])))
"""

R_SCRIPT = (
    r"""
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]; form <- as.formula(args[2]); warmup <- as.integer(args[3]); repeats <- as.integer(args[4])
suppressPackageStartupMessages(library(lme4))
"""
    + R_READ_DATA
    + r"""
invisible(lmer(Reaction ~ Days + (Days | Subject), sleepstudy))  # load lme4's lazy parts, not timed
for (i in seq_len(warmup)) invisible(lmer(form, d, REML = TRUE))
times <- numeric(repeats)
for (i in seq_len(repeats)) times[i] <- system.time(fit <- lmer(form, d, REML = TRUE))[["elapsed"]]
cat(sprintf('{"seconds": %.6f, "objective": %.6f, "version": "lme4 %s, %s"}\n', median(times),
            REMLcrit(fit), packageVersion("lme4"), R.version.string))
"""
)


def write_for_r(data: pd.DataFrame, directory: Path) -> None:
    """data.csv plus one <column>.levels file per factor, so R rebuilds the same factor levels."""
    directory.mkdir(parents=True, exist_ok=True)
    for col in data.columns:
        if isinstance(data[col].dtype, pd.CategoricalDtype):
            levels = [str(level) for level in data[col].cat.categories]
            (directory / f"{col}.levels").write_text("\n".join(levels) + "\n")
    data.to_csv(directory / "data.csv", index=False, float_format="%.17g")


def run_r(script_text: str, data: pd.DataFrame, arguments: list[str], timeout: float) -> dict:
    """Run an R script as ``Rscript script <data directory> *arguments``; its last line's JSON."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        raise NotAvailable("Rscript not found")
    with tempfile.TemporaryDirectory(prefix="bench_") as tmp:
        write_for_r(data, Path(tmp) / "data")
        script = Path(tmp) / "bench.R"
        script.write_text(script_text)
        cmd = [rscript, str(script), str(Path(tmp) / "data"), *arguments]
        return last_json(run_subprocess(cmd, timeout))


def bench_lme4(case_name: str, timeout: float) -> dict:
    case = CASES[case_name]
    return run_r(R_SCRIPT, case.data(), [case.formula, str(case.warmup), str(case.repeats)], timeout)


def bench_cli(timeout: float) -> dict:
    cmd = [sys.executable, *CLI_COMMAND]
    times = []
    for _ in range(CLI_REPEATS + 1):
        start = time.perf_counter()
        run_subprocess(cmd, timeout)
        times.append(time.perf_counter() - start)
    return {
        "seconds": statistics.median(times[1:]),
        "objective": None,
        "peak_mb": None,
        "version": python_version_of("ours"),
    }


# ---------------------------------------------------------------------------------------------------------
# Table
# ---------------------------------------------------------------------------------------------------------
REFERENCES = ["lme4", "mixedlm", "statsmodels"]
NO_REFERENCE = "no reference for this case"


def run_tool(tool: str, case_name: str, skip_r: bool, timeout: float) -> dict:
    if case_name == CLI_CASE:
        if tool != "ours":
            raise NotAvailable(NO_REFERENCE)
        return bench_cli(timeout)
    if tool == "lme4":
        if skip_r:
            raise NotAvailable("skipped (--skip-r)")
        return bench_lme4(case_name, timeout)
    return bench_python(tool, case_name, timeout)


def measure(case_name: str, skip_r: bool, timeout: float) -> dict[str, dict | str]:
    """Results by tool for one case: a result dict, or why there is none."""
    tools = ["ours", *REFERENCES]
    return measure_tools(case_name, tools, lambda tool: run_tool(tool, case_name, skip_r, timeout), describe)


def measure_tools(
    case_name: str, tools: list[str], run: Callable[[str], dict], describe: Callable[[dict | str], str]
) -> dict[str, dict | str]:
    """``run(tool)`` for each tool, or why there is no result; a progress line per tool on stderr."""
    results: dict[str, dict | str] = {}
    for tool in tools:
        try:
            results[tool] = run(tool)
        except NotAvailable as exc:
            results[tool] = str(exc)
        print(f"  {case_name:<13} {tool:<12} {describe(results[tool])}", file=sys.stderr, flush=True)
    return results


def describe(result: dict | str) -> str:
    if isinstance(result, str):
        return f"n/a: {result}"
    objective = "" if result["objective"] is None else f", REML criterion {result['objective']:.4f}"
    return f"{result['seconds']:.4f} s{objective} ({result['version']})"


def seconds(result: dict | str) -> str:
    return "n/a" if isinstance(result, str) else f"{result['seconds']:.4g}"


def ratio(reference: dict | str, ours: dict | str) -> str:
    if isinstance(reference, str) or isinstance(ours, str):
        return "n/a"
    return f"{reference['seconds'] / ours['seconds']:.3g}"


def peak(result: dict | str) -> str:
    return "n/a" if isinstance(result, str) or result["peak_mb"] is None else f"{result['peak_mb']:.1f}"


def timing_header(references: list[str]) -> list[str]:
    """The columns case, our seconds, and each reference's seconds and ratio to ours."""
    header = ["case", "ours (s)"]
    for tool in references:
        header += [f"{tool} (s)", f"{tool}/ours"]
    return header


def timing_row(case_name: str, results: dict[str, dict | str], references: list[str]) -> list[str]:
    """One case's values for :func:`timing_header`'s columns."""
    ours = results["ours"]
    row = [case_name, seconds(ours)]
    for tool in references:
        row += [seconds(results[tool]), ratio(results[tool], ours)]
    return row


def print_table(all_results: dict[str, dict[str, dict | str]]) -> None:
    header = [*timing_header(REFERENCES), "ours peak (MB)", "target (ours)", "target met"]
    rows = []
    for case_name, results in all_results.items():
        ours = results["ours"]
        row = timing_row(case_name, results, REFERENCES)
        target = CLI_TARGET if case_name == CLI_CASE else CASES[case_name].target
        rows.append([*row, peak(ours), target.describe(), target.check(results)])
    print_columns(header, rows, left={0, len(header) - 2, len(header) - 1})
    print_not_available(all_results)


def print_columns(header: list[str], rows: list[list[str]], left: set[int]) -> None:
    """Print the rows under the header in aligned columns: those in ``left`` left-aligned, others right."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths], *rows]:
        cells = [str(c).ljust(w) if i in left else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths))]
        print("  ".join(cells).rstrip())


def print_not_available(all_results: dict[str, dict[str, dict | str]]) -> None:
    """Print why figures are missing, per case and tool (not for cases without a reference)."""
    notes = [
        f"{case_name} {tool}: {result}"
        for case_name, results in all_results.items()
        for tool, result in results.items()
        if isinstance(result, str) and result != NO_REFERENCE
    ]
    print("\n".join(["", "Not available:", *notes]) if notes else "")


def engine_state() -> str:
    """The git commit of the repository, and whether src/ has uncommitted changes."""

    def git(*arguments: str) -> str:
        command = ["git", "-C", str(SCRIPT.parent.parent), *arguments]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "src")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no git)"
    return head + (" + uncommitted changes in src/" if dirty else "")


def start_run(blas_threads: int | None) -> tuple[float, float]:
    """Set the thread variables (if asked), print them and the engine's commit; (start time, load)."""
    if blas_threads:
        os.environ.update({name: str(blas_threads) for name in THREAD_VARIABLES})
    print("threads:", ", ".join(f"{name}={os.environ.get(name, 'unset')}" for name in THREAD_VARIABLES))
    print("mixedmodels at git", engine_state())
    return time.perf_counter(), os.getloadavg()[0]


def end_run(started: tuple[float, float]) -> None:
    """Print the engine's commit again, the wall time and the load average at start and end."""
    start, load_before = started
    print("mixedmodels at git", engine_state(), "at the end")
    print(
        f"Total wall time: {time.perf_counter() - start:.0f} s; 1-minute load average at start "
        f"{load_before:.2f}, at end {os.getloadavg()[0]:.2f} (on {os.cpu_count()} CPUs)"
    )


def add_common_arguments(
    parser: argparse.ArgumentParser, r_package: str, timeout: float = 1800.0, **worker
) -> None:
    """The benchmark scripts' options --skip-r, --timeout, --blas-threads and the hidden --worker
    (``worker``: its add_argument keywords)."""
    parser.add_argument("--skip-r", action="store_true", help=f"do not run {r_package}")
    parser.add_argument(
        "--timeout", type=float, default=timeout, help=f"per tool and case, seconds (default {timeout:g})"
    )
    parser.add_argument(
        "--blas-threads",
        type=int,
        help="set OPENBLAS/OMP/MKL/RAYON_NUM_THREADS for every tool (default: the libraries' defaults)",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS, **worker)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [*CASES, CLI_CASE]
    parser.add_argument("--only", choices=names, help="run one case")
    add_common_arguments(parser, "lme4", nargs=2, metavar=("TOOL", "CASE"))
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(*args.worker)))
        return
    run_cases(names, args, measure, print_table)


def run_cases(
    names: list[str],
    args: argparse.Namespace,
    measure: Callable[[str, bool, float], dict[str, dict | str]],
    print_table: Callable[[dict[str, dict[str, dict | str]]], None],
) -> None:
    """Measure every case (or ``--only`` one) and print the table between the run's first and last lines."""
    started = start_run(args.blas_threads)
    all_results = {
        name: measure(name, args.skip_r, args.timeout) for name in ([args.only] if args.only else names)
    }
    print()
    print_table(all_results)
    end_run(started)


if __name__ == "__main__":
    main()
