"""Time the InstEval and sleepstudy fits on an idle machine and beside CPU-bound processes.

Run from the repository root:

    /tmp/venv/bin/python benchmarks/bench_load.py [--busy N] [--insteval-repeats R] [--sleepstudy-repeats R]

In one process, both fits (the models of ``bench_lmer.py``) are timed in two thread modes: ours (the
thread policy of ``mixedmodels.engine.threads``) and the BLAS libraries' default threads (the policy
switched off, which is how InstEval ran before: OpenBLAS's default is one thread per CPU).  First with
nothing started by the script ("idle"), then with N (default 2) busy processes beside the fits: Python
processes spinning in a loop, started and stopped by the script, each ending by itself after
``--busy-seconds`` at most.  Within each phase the timed calls alternate between the modes, so that both
see the same conditions; the table shows the medians, busy / idle, and the target (ours <= 2 x idle).
Warm-up: one untimed fit of each model in each mode.  See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from bench_lmer import CASES, end_run, print_columns, start_run

MODES = ["ours", "default threads"]
TARGET_RATIO = 2.0
SPIN = "import sys, time\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end: pass"


@contextmanager
def thread_mode(mode: str) -> Iterator[None]:
    """Run the block with our thread policy, or with it switched off ("default threads")."""
    from mixedmodels.engine import threads

    policy = threads.fit_threads
    if mode == "default threads":
        threads.fit_threads = lambda: None  # threadpoolctl's "no limit": the libraries keep their counts
    try:
        yield
    finally:
        threads.fit_threads = policy


@contextmanager
def busy_processes(count: int, seconds: float) -> Iterator[None]:
    """``count`` CPU-bound processes for the duration of the block (each stops by itself after
    ``seconds``)."""
    processes = [subprocess.Popen([sys.executable, "-c", SPIN, str(seconds)]) for _ in range(count)]
    try:
        time.sleep(1.0)  # let them reach their loops
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait()


def fit_call(case_name: str) -> Callable[[], object]:
    import mixedmodels as mm

    case = CASES[case_name]
    data = case.data()
    return lambda: mm.lmer(case.formula, data, reml=True)


def time_phase(fits: dict[str, Callable[[], object]], repeats: dict[str, int]) -> dict[tuple, float]:
    """Median seconds per (case, mode), the modes alternating call by call."""
    times: dict[tuple[str, str], list[float]] = {(c, m): [] for c in fits for m in MODES}
    for case_name, fit in fits.items():
        for _ in range(repeats[case_name]):
            for mode in MODES:
                with thread_mode(mode):
                    start = time.perf_counter()
                    fit()
                    times[case_name, mode].append(time.perf_counter() - start)
        medians = {mode: statistics.median(times[case_name, mode]) for mode in MODES}
        print(f"  {case_name}: " + ", ".join(f"{m} {s:.4g} s" for m, s in medians.items()), file=sys.stderr)
    return {key: statistics.median(values) for key, values in times.items()}


def library_threads() -> str:
    from threadpoolctl import threadpool_info

    return ", ".join(f"{i['prefix']} {i['version']}: {i['num_threads']}" for i in threadpool_info())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--busy", type=int, default=2, help="busy processes in the busy phase (default 2)")
    parser.add_argument(
        "--busy-seconds", type=float, default=900.0, help="longest life of a busy process (default 900)"
    )
    parser.add_argument("--insteval-repeats", type=int, default=3, help="timed calls per mode and phase")
    parser.add_argument("--sleepstudy-repeats", type=int, default=50, help="timed calls per mode and phase")
    args = parser.parse_args(argv)
    started = start_run(None)
    repeats = {"insteval": args.insteval_repeats, "sleepstudy": args.sleepstudy_repeats}
    fits = {name: fit_call(name) for name in repeats}
    print("BLAS/OpenMP libraries and their default threads:", library_threads())
    for fit in fits.values():
        for mode in MODES:
            with thread_mode(mode):
                fit()
    print("idle phase", file=sys.stderr)
    idle = time_phase(fits, repeats)
    print(f"busy phase ({args.busy} busy processes)", file=sys.stderr)
    with busy_processes(args.busy, args.busy_seconds):
        busy = time_phase(fits, repeats)
    print()
    header = ["case", "threads", "idle (s)", f"busy: {args.busy} (s)", "busy/idle", "target", "met"]
    rows = []
    for case_name in fits:
        for mode in MODES:
            ratio = busy[case_name, mode] / idle[case_name, mode]
            target, met = (f"<= {TARGET_RATIO:g}", "yes" if ratio <= TARGET_RATIO else "no")
            rows.append(
                [
                    case_name,
                    mode,
                    f"{idle[case_name, mode]:.4g}",
                    f"{busy[case_name, mode]:.4g}",
                    f"{ratio:.2f}",
                    *((target, met) if mode == "ours" else ("", "")),
                ]
            )
    print_columns(header, rows, left={0, 1, 5, 6})
    end_run(started)


if __name__ == "__main__":
    main()
