"""Our optimum against lme4's on the calibration study's data sets (validation/calibration.py).

Every data set of the chosen designs is fitted by REML and by ML with ``mm.lmer`` and with lme4 1.1-31
(``validation/optimum_lme4.R``, the lower of BOBYQA's and NLopt's optima at tight tolerances; needs
``Rscript`` with lme4).  The difference of the criteria, ours minus lme4's, is positive where we stop
above lme4's optimum.  Not run in CI.  Run from the repository root::

    python validation/optimum.py --nsim 1000 [--seed 20240611] [--designs slopes]
    python validation/optimum.py --nsim 1000 --reuse-lme4    # lme4's criteria from the last run's CSV

The differences go to ``validation/results/optimum.csv.gz``, the summary to standard output.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # set before NumPy is imported

import argparse  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import calibration  # noqa: E402

import mixedmodels as mm  # noqa: E402

HERE = Path(__file__).resolve().parent
SAME = 1e-4  # criteria within this are the same optimum (the tolerance of the calibration README)


def data_sets(designs: list[str], nsim: int, seed: int) -> pd.DataFrame:
    """The calibration study's data sets, stacked, with columns design and replicate first."""
    frames = []
    for design_seed, name in zip(
        np.random.SeedSequence(seed).spawn(len(calibration.DESIGNS)), calibration.DESIGNS
    ):
        if name in designs:
            for replicate, child in enumerate(design_seed.spawn(nsim)):
                data = calibration.DESIGNS[name].simulate(np.random.default_rng(child))
                frames.append(data.assign(design=name, replicate=replicate))
    stacked = pd.concat(frames, ignore_index=True)
    return stacked[["design", "replicate", *[c for c in stacked.columns if c not in ("design", "replicate")]]]


def ours(stacked: pd.DataFrame) -> pd.DataFrame:
    """Our REML criterion and ML deviance per data set, and whether each fit warned."""
    rows = []
    for (name, replicate), data in stacked.groupby(["design", "replicate"], sort=False):
        formula = calibration.DESIGNS[name].formula
        row = {"design": name, "replicate": replicate}
        for reml, column in ((True, "reml"), (False, "ml")):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", mm.ConvergenceWarning)
                model = mm.lmer(formula, data.drop(columns=["design", "replicate"]), reml=reml)
            row[column] = model.reml_criterion if reml else model.deviance
            row[f"{column}_warned"] = int(any(issubclass(w.category, mm.ConvergenceWarning) for w in caught))
        rows.append(row)
    return pd.DataFrame(rows)


def lme4(stacked: pd.DataFrame) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as folder:
        inputs, outputs = Path(folder) / "data.csv", Path(folder) / "lme4.csv"
        stacked.to_csv(inputs, index=False)
        subprocess.run(["Rscript", str(HERE / "optimum_lme4.R"), str(inputs), str(outputs)], check=True)
        return pd.read_csv(outputs)


def summary(frame: pd.DataFrame) -> str:
    """Per design and criterion: data sets with ours above lme4's, the same, and below."""
    lines = [
        "| design | criterion | ours above (> 1e-4) | same | ours below (< -1e-4) | largest above |",
        "|---|---|---|---|---|---|",
    ]
    for name, part in frame.groupby("design", sort=False):
        for column in ("reml", "ml"):
            difference = part[column] - part[f"{column}_lme4"]
            above = difference > SAME
            worst = part.loc[difference.idxmax(), "replicate"] if above.any() else None
            largest = f"{difference.max():.2g} (replicate {worst})" if above.any() else ""
            lines.append(
                f"| {name} | {column.upper()} | {int(above.sum())} | {int((difference.abs() <= SAME).sum())} "
                f"| {int((difference < -SAME).sum())} | {largest} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nsim", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument(
        "--designs", nargs="+", choices=list(calibration.DESIGNS), default=list(calibration.DESIGNS)
    )
    parser.add_argument(
        "--reuse-lme4",
        action="store_true",
        help="take lme4's criteria from the saved CSV (same seed and nsim)",
    )
    args = parser.parse_args(argv)
    stacked = data_sets(args.designs, args.nsim, args.seed)
    csv = HERE / "results" / "optimum.csv.gz"
    if args.reuse_lme4:
        theirs = pd.read_csv(csv)[["design", "replicate", "reml_lme4", "ml_lme4"]]
    else:
        theirs = lme4(stacked)
    frame = ours(stacked).merge(theirs, on=["design", "replicate"])
    csv.parent.mkdir(exist_ok=True)
    frame.to_csv(csv, index=False, float_format="%.10g")
    print(summary(frame))


if __name__ == "__main__":
    main()
