"""Command line.

* ``mixedmodels fit FORMULA --data NAME_OR_PATH [--ml] [--json] [--weights COL] [--offset COL]
  [--plots DIR]``: an lme4 model;
* ``mixedmodels glmer FORMULA --family NAME --data NAME_OR_PATH [--link NAME] [--nagq N] [--weights COL]
  [--offset COL] [--json] [--plots DIR]``: a generalized linear mixed model (lme4's ``glmer``);
* ``mixedmodels aov FORMULA --data NAME_OR_PATH [--random TERM ...] [--factors COL ...] [--type 1|3]
  [--negative keep|zero|reml] [--alpha A] [--json]``: the classical ANOVA of a designed experiment
  (PROC GLM's RANDOM / TEST).

Bad input (a missing or unreadable file, an unknown column, a formula error, ...) is answered with one
line on stderr and exit code 2, as argparse answers bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import pandas as pd

from . import datasets
from .engine.families import FAMILIES, family_for
from .models.aov import aov
from .models.glmm import glmer
from .models.lmm import lmer

__all__ = ["main", "read_data"]


READERS = {".csv": pd.read_csv, ".txt": pd.read_csv, ".parquet": pd.read_parquet, ".pq": pd.read_parquet}


def read_data(source: str) -> pd.DataFrame:
    """A bundled dataset by name, or a CSV or Parquet file by path."""
    path = Path(source)
    reader = READERS.get(path.suffix.lower())
    if path.is_dir():
        raise ValueError(f"cannot read {source!r}: it is a directory, not a .csv or .parquet file")
    if path.exists():
        if reader is None:
            raise ValueError(f"cannot read {source!r}: use a .csv or .parquet file")
        try:
            return reader(path)
        except (ValueError, OSError) as exc:  # pandas' parser errors and UnicodeDecodeError are ValueErrors
            raise ValueError(f"cannot read {source!r}: {exc}") from exc
    if reader is not None:
        raise ValueError(f"no such file: {source!r}")
    try:
        return datasets.load(source)
    except KeyError:
        raise ValueError(
            f"{source!r} is neither a file nor a bundled dataset ({', '.join(datasets.list())})"
        ) from None


def _fit(args: argparse.Namespace) -> int:
    data = read_data(args.data)
    model = lmer(args.formula, data, reml=not args.ml, weights=args.weights, offset=args.offset)
    _print_result(model, args.json)
    _write_plots(model, args.plots)
    return 0


def _write_plots(model, directory: str | None) -> None:
    """The model's standard diagnostic plots as PNG files in ``directory`` (``--plots``), if given."""
    if not directory:
        return
    os.environ.setdefault("MPLBACKEND", "Agg")  # files only: no window system needed
    try:
        written = model.plot.save_all(directory)
    except OSError as exc:
        raise ValueError(f"cannot write the plots into {directory!r}: {exc.strerror or exc}") from exc
    print(f"wrote {len(written)} plots to {directory}", file=sys.stderr)


def _aov(args: argparse.Namespace) -> int:
    data = read_data(args.data)
    result = aov(
        args.formula, data, random=args.random, ss_type=args.type, factors=args.factors, alpha=args.alpha
    )
    _print_result(result, args.json, negative=args.negative)
    return 0


def _glmer(args: argparse.Namespace) -> int:
    family = family_for(args.family, args.link)
    data = read_data(args.data)
    model = glmer(args.formula, data, family=family, weights=args.weights, offset=args.offset, nAGQ=args.nagq)
    _print_result(model, args.json)
    _write_plots(model, args.plots)
    return 0


def _print_result(result, as_json: bool, **options) -> None:
    """The result's ``to_dict(**options)`` as JSON, or its ``summary(**options)``, on stdout."""
    if as_json:
        json.dump(result.to_dict(**options), sys.stdout, indent=1, default=float)
        sys.stdout.write("\n")
    else:
        print(result.summary(**options))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mixedmodels", description="Fit mixed-effects models.")
    commands = parser.add_subparsers(dest="command", required=True)
    fit = commands.add_parser("fit", help="fit a linear mixed model with an lme4 formula")
    fit.add_argument("formula", help='e.g. "Reaction ~ Days + (Days | Subject)"')
    fit.add_argument("--data", required=True, help="bundled dataset name or a CSV/Parquet path")
    fit.add_argument("--ml", action="store_true", help="maximum likelihood instead of REML")
    fit.add_argument("--json", action="store_true", help="print the whole result as JSON")
    fit.add_argument("--weights", help="column of prior weights")
    fit.add_argument("--offset", help="column of offsets")
    fit.add_argument("--plots", metavar="DIR", help="write the standard diagnostic plots as PNG files to DIR")
    fit.set_defaults(run=_fit)

    generalized = commands.add_parser("glmer", help="fit a generalized linear mixed model (lme4's glmer)")
    generalized.add_argument(
        "formula", help='e.g. "cbind(incidence, size - incidence) ~ period + (1 | herd)"'
    )
    generalized.add_argument("--family", required=True, help=f"response distribution: {', '.join(FAMILIES)}")
    generalized.add_argument(
        "--link", help="link function (default: the family's canonical link), e.g. probit or cloglog"
    )
    generalized.add_argument("--data", required=True, help="bundled dataset name or a CSV/Parquet path")
    generalized.add_argument(
        "--nagq",
        type=int,
        default=1,
        metavar="N",
        help="1: Laplace approximation (default); 0: fixed effects inside PIRLS, faster, slightly less "
        "exact; N > 1: adaptive Gauss-Hermite quadrature with N nodes (one scalar random-effects term)",
    )
    generalized.add_argument("--weights", help="column of prior weights (binomial: the number of trials)")
    generalized.add_argument("--offset", help="column of offsets")
    generalized.add_argument("--json", action="store_true", help="print the whole result as JSON")
    generalized.add_argument(
        "--plots", metavar="DIR", help="write the standard diagnostic plots as PNG files to DIR"
    )
    generalized.set_defaults(run=_glmer)

    anova = commands.add_parser(
        "aov", help="analysis of variance of a designed experiment, fixed and random terms"
    )
    anova.add_argument("formula", help='every source as a term, e.g. "score ~ Machine * Worker"')
    anova.add_argument("--data", required=True, help="bundled dataset name or a CSV/Parquet path")
    anova.add_argument(
        "--random", nargs="+", default=[], metavar="TERM", help="random terms, e.g. Worker Machine:Worker"
    )
    anova.add_argument(
        "--factors", nargs="+", default=[], metavar="COLUMN", help="numeric columns to treat as factors"
    )
    anova.add_argument("--type", type=int, choices=(1, 3), default=3, help="sums of squares (default: 3)")
    anova.add_argument(
        "--negative",
        choices=("keep", "zero", "reml"),
        default="keep",
        help="negative variance estimates: keep, set to zero, or report REML instead",
    )
    anova.add_argument("--alpha", type=float, default=0.05, help="1 - confidence level (default: 0.05)")
    anova.add_argument("--json", action="store_true", help="print the tables as JSON")
    anova.set_defaults(run=_aov)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, KeyError, TypeError, ImportError, OSError, ArithmeticError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)  # no quotes
        print(f"mixedmodels: error: {' '.join(str(message).split())}", file=sys.stderr)
        return 2
