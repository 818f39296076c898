"""Calibration of mixedmodels' tests and intervals on data simulated under the null hypothesis.

Three designs (see ``DESIGNS``), each simulated ``--nsim`` times with the tested fixed effects truly zero
and realistic variance components:

* ``nested``: a balanced randomized block design with subsampling, 8 blocks x 3 treatment plots x 4
  samples, ``y ~ trt + (1 | block/plot)``; the 3-level treatment (a between-plot factor) is tested by F
  and its contrast ``trtB`` by t.
* ``crossed``: 30 subjects x 18 items, items in 3 conditions of unequal size (5, 6, 7), each subject
  missing a share of its trials drawn from U(0.05, 0.35) (20% on average, completely at random),
  ``y ~ x + cond + (1 | subj) + (1 | item)``; the between-item condition is tested by F and the row-level
  covariate ``x`` by t.
* ``slopes``: 6 groups x 10 times, ``y ~ t + (t | g)``; the time trend ``t`` (which has a random slope)
  is tested by t and by the 1-df F.

Every data set is fitted by REML (``mm.lmer``'s default) and gives, through the public API only:

* p-values of the t test (``coef_table(ddf=...)`` for Satterthwaite and Kenward-Roger,
  ``contrast(..., joint=False)`` for containment, residual and asymptotic df) and of the F test
  (``anova(ddf=...)``, ``contrast(..., joint=True)``);
* whether the 95% intervals cover the true value: Wald (``confint("wald")``) and t intervals with
  Satterthwaite and Kenward-Roger df (estimate +- t quantile x the table's standard error) for the fixed
  effects, profile likelihood (``confint("profile")``) for every parameter.

Replicate ``i`` of a design draws from child ``i`` of that design's ``SeedSequence``, so the results depend
on ``--seed`` only, not on ``--jobs``.  A data set whose fit raises is counted as failed and left out of
every rate; a failed profile leaves out only that data set's profile intervals.  Singular (boundary)
fits are kept, since a user gets the same numbers from them, and counted; the summary also splits the
type-I errors by singular and non-singular fits.

Run from the repository root (not part of CI)::

    python validation/calibration.py --nsim 1000 [--seed 20240611] [--jobs 2] [--designs nested crossed]
    python validation/calibration.py --summary-only      # re-summarize the saved raw results

The raw results (one row per data set) go to ``validation/results/calibration.csv.gz`` (a gzipped CSV),
the summary tables (Markdown) to ``validation/results/summary.md`` and to standard output;
``validation/README.md`` discusses them.
"""

from __future__ import annotations

import os

# One OpenBLAS thread per worker: the fits make many tiny LAPACK calls, and the workers already fill the
# cores.  Set before NumPy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import multiprocessing  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

import mixedmodels as mm  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
ALPHA = 0.05
LEVEL = 0.95
DDF_METHODS = ("satterthwaite", "kenward-roger", "containment", "residual", "asymptotic")
TABLE_METHODS = (
    "satterthwaite",
    "kenward-roger",
)  # tested through coef_table and anova; the rest by contrast
T_INTERVALS = ("satterthwaite", "kenward-roger")


@dataclass(frozen=True)
class Design:
    """A simulation design: the data generator, the model and the true values of lme4's parameters."""

    name: str
    description: str
    formula: str
    simulate: Callable[[np.random.Generator], pd.DataFrame]
    truth: dict[str, float]  # confint rows (old_names=False) -> true value
    t_coef: str  # fixed effect tested by t (true value 0)
    f_term: str  # anova term tested by F (true coefficients 0)
    f_coefs: tuple[str, ...]  # that term's fixed effects, for contrast()
    exact: Callable[[pd.DataFrame], dict[str, float]] | None = None  # exact t and F tests, if any


# -- the data generators ----------------------------------------------------------------------------------
NESTED_SD = {"block": 1.0, "plot": 0.5, "sigma": 1.0}


def simulate_nested(rng: np.random.Generator, blocks: int = 8, samples: int = 4) -> pd.DataFrame:
    """Randomized blocks with subsampling: each block has one plot per treatment A, B, C, sampled 4 times."""
    treatments = np.array(["A", "B", "C"])
    block = np.repeat(np.arange(blocks), len(treatments) * samples)
    plot = np.tile(np.repeat(np.arange(len(treatments)), samples), blocks)
    block_effect = rng.normal(0.0, NESTED_SD["block"], blocks)[block]
    plot_effect = rng.normal(0.0, NESTED_SD["plot"], (blocks, len(treatments)))[block, plot]
    y = 10.0 + block_effect + plot_effect + rng.normal(0.0, NESTED_SD["sigma"], block.size)
    return pd.DataFrame(
        {
            "block": [f"b{b + 1}" for b in block],
            "plot": [f"p{p + 1}" for p in plot],
            "trt": treatments[plot],
            "y": y,
        }
    )


CROSSED_SD = {"subj": 0.8, "item": 0.4, "sigma": 1.0}
CROSSED_ITEMS_PER_CONDITION = (5, 6, 7)


def simulate_crossed(rng: np.random.Generator, subjects: int = 30) -> pd.DataFrame:
    """Subjects x items with items nested in conditions of unequal size and ~20% of the rows missing."""
    condition_of_item = np.repeat(["a", "b", "c"], CROSSED_ITEMS_PER_CONDITION)
    items = condition_of_item.size
    subj = np.repeat(np.arange(subjects), items)
    item = np.tile(np.arange(items), subjects)
    missing_share = rng.uniform(0.05, 0.35, subjects)[subj]  # unequal subject sizes, missing at random
    kept = rng.uniform(size=subj.size) >= missing_share
    subj, item = subj[kept], item[kept]
    x = rng.normal(size=subj.size)
    y = (
        5.0
        + rng.normal(0.0, CROSSED_SD["subj"], subjects)[subj]
        + rng.normal(0.0, CROSSED_SD["item"], items)[item]
        + rng.normal(0.0, CROSSED_SD["sigma"], subj.size)
    )
    return pd.DataFrame(
        {
            "subj": [f"s{s + 1:02d}" for s in subj],
            "item": [f"i{i + 1:02d}" for i in item],
            "cond": condition_of_item[item],
            "x": x,
            "y": y,
        }
    )


SLOPES_SD = {"intercept": 1.0, "slope": 0.25, "cor": 0.2, "sigma": 1.0}


def simulate_slopes(rng: np.random.Generator, groups: int = 6, times: int = 10) -> pd.DataFrame:
    """Few groups with correlated random intercepts and slopes in time; no mean trend."""
    sd = np.array([SLOPES_SD["intercept"], SLOPES_SD["slope"]])
    cor = np.array([[1.0, SLOPES_SD["cor"]], [SLOPES_SD["cor"], 1.0]])
    effects = rng.multivariate_normal(np.zeros(2), cor * np.outer(sd, sd), groups)
    g = np.repeat(np.arange(groups), times)
    t = np.tile(np.arange(times, dtype=float), groups)
    y = 10.0 + effects[g, 0] + effects[g, 1] * t + rng.normal(0.0, SLOPES_SD["sigma"], g.size)
    return pd.DataFrame({"g": [f"g{k + 1}" for k in g], "t": t, "y": y})


def exact_nested(data: pd.DataFrame) -> dict[str, float]:
    """The classical exact tests of the balanced design, on the plot means: F = MS(trt) / MS(block x trt)
    on (2, 14) df, and t = (mean B - mean A) / sqrt(2 MS(block x trt) / blocks) on 14 df."""
    means = data.groupby(["block", "trt"])["y"].mean().unstack().to_numpy()  # blocks x treatments
    blocks, treatments = means.shape
    grand, trt_means = means.mean(), means.mean(axis=0)
    interaction = means - means.mean(axis=1, keepdims=True) - trt_means + grand
    df = (blocks - 1) * (treatments - 1)
    ms_error = float((interaction**2).sum()) / df
    f_value = blocks * float(((trt_means - grand) ** 2).sum()) / (treatments - 1) / ms_error
    t_value = (trt_means[1] - trt_means[0]) / np.sqrt(2 * ms_error / blocks)
    return exact_row(t_value, f_value, treatments - 1, df)


def exact_slopes(data: pd.DataFrame) -> dict[str, float]:
    """The exact test of the balanced random-slope design: the one-sample t test of the groups' least-
    squares slopes (each is beta_t + b_g + error with the same variance), on groups - 1 df."""
    slopes = data.groupby("g")[["t", "y"]].apply(lambda d: np.polyfit(d["t"], d["y"], 1)[0]).to_numpy()
    t_value = slopes.mean() / (slopes.std(ddof=1) / np.sqrt(slopes.size))
    return exact_row(t_value, t_value**2, 1, slopes.size - 1)


def exact_row(t_value: float, f_value: float, num_df: int, den_df: int) -> dict[str, float]:
    """p-values and df of an exact t test and F test, named as the other methods' columns."""
    return {
        "p_t_exact": float(2 * stats.t.sf(abs(t_value), den_df)),
        "df_t_exact": float(den_df),
        "p_F_exact": float(stats.f.sf(f_value, num_df, den_df)),
        "df_F_exact": float(den_df),
    }


DESIGNS = {
    "nested": Design(
        "nested",
        "balanced nested: 8 blocks x 3 plots (trt A/B/C) x 4 samples, 96 rows",
        "y ~ trt + (1 | block/plot)",
        simulate_nested,
        {
            "sd_(Intercept)|plot:block": NESTED_SD["plot"],
            "sd_(Intercept)|block": NESTED_SD["block"],
            "sigma": NESTED_SD["sigma"],
            "(Intercept)": 10.0,
            "trtB": 0.0,
            "trtC": 0.0,
        },
        t_coef="trtB",
        f_term="trt",
        f_coefs=("trtB", "trtC"),
        exact=exact_nested,
    ),
    "crossed": Design(
        "crossed",
        "unbalanced crossed: 30 subjects x 18 items (conditions of 5/6/7 items), ~20% rows missing",
        "y ~ x + cond + (1 | subj) + (1 | item)",
        simulate_crossed,
        {
            "sd_(Intercept)|subj": CROSSED_SD["subj"],
            "sd_(Intercept)|item": CROSSED_SD["item"],
            "sigma": CROSSED_SD["sigma"],
            "(Intercept)": 5.0,
            "x": 0.0,
            "condb": 0.0,
            "condc": 0.0,
        },
        t_coef="x",
        f_term="cond",
        f_coefs=("condb", "condc"),
    ),
    "slopes": Design(
        "slopes",
        "random slopes, few groups: 6 groups x 10 times, 60 rows",
        "y ~ t + (t | g)",
        simulate_slopes,
        {
            "sd_(Intercept)|g": SLOPES_SD["intercept"],
            "cor_t.(Intercept)|g": SLOPES_SD["cor"],
            "sd_t|g": SLOPES_SD["slope"],
            "sigma": SLOPES_SD["sigma"],
            "(Intercept)": 10.0,
            "t": 0.0,
        },
        t_coef="t",
        f_term="t",
        f_coefs=("t",),
        exact=exact_slopes,
    ),
}


# -- one data set -----------------------------------------------------------------------------------------
def covered(limits: pd.DataFrame, truth: dict[str, float]) -> dict[str, float]:
    """1.0 where the interval holds the true value, 0.0 where not, NaN where it is missing."""
    lower, upper = limits.iloc[:, 0], limits.iloc[:, 1]
    out = {}
    for name in limits.index:
        if np.isnan(lower[name]) or np.isnan(upper[name]):
            out[name] = np.nan
        else:
            out[name] = float(lower[name] <= truth[name] <= upper[name])
    return out


def tests(model: mm.LinearMixedModel, design: Design) -> dict[str, float]:
    """p-values and denominator df of the design's t and F tests under every df method."""
    row: dict[str, float] = {}
    names = list(model.fixef.index)
    t_vector = np.array([[1.0 if n == design.t_coef else 0.0 for n in names]])
    f_matrix = np.array([[1.0 if n == c else 0.0 for n in names] for c in design.f_coefs])
    for ddf in DDF_METHODS:
        if ddf in TABLE_METHODS:
            t_row = model.coef_table(ddf=ddf).loc[design.t_coef]
            f_row = model.anova(ddf=ddf).loc[design.f_term]
        else:
            t_row = model.contrast(t_vector, ddf=ddf, joint=False).iloc[0]
            f_row = model.contrast(f_matrix, ddf=ddf, joint=True).iloc[0]
        row[f"p_t_{ddf}"] = float(t_row["Pr(>|t|)"])
        row[f"df_t_{ddf}"] = float(t_row["df"])
        row[f"p_F_{ddf}"] = float(f_row["Pr(>F)"])
        row[f"df_F_{ddf}"] = float(f_row["DenDF"])
    return row


def t_interval_coverage(model: mm.LinearMixedModel, ddf: str, truth: dict[str, float]) -> dict[str, float]:
    """Coverage of estimate +- t(df) x SE for each fixed effect, df and SE from ``coef_table(ddf)``."""
    table = model.coef_table(ddf=ddf)
    half = stats.t.ppf((1 + LEVEL) / 2, table["df"]) * table["Std. Error"]
    limits = pd.DataFrame({"lower": table["Estimate"] - half, "upper": table["Estimate"] + half})
    return covered(limits, truth)


LOWER_DEVIANCE = "profiling found a deviance"  # the start of the library's warning


def run_replicate(design_name: str, replicate: int, seed: np.random.SeedSequence) -> dict[str, object]:
    """Simulate one data set, fit it, and collect its tests and interval coverage (one CSV row)."""
    design = DESIGNS[design_name]
    rng = np.random.default_rng(seed)
    data = design.simulate(rng)
    row: dict[str, object] = {"design": design_name, "replicate": replicate, "nobs": len(data), "failed": ""}
    if design.exact is not None:
        row.update(design.exact(data))
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = mm.lmer(design.formula, data)
            row["singular"] = int(model.is_singular)
            row.update(tests(model, design))
            for name, hit in covered(model.confint("wald", old_names=False), design.truth).items():
                row[f"cover_wald_{name}"] = hit
            for ddf in T_INTERVALS:
                for name, hit in t_interval_coverage(model, ddf, design.truth).items():
                    row[f"cover_t-{ddf}_{name}"] = hit
        except Exception as exc:  # a failed fit is an outcome to count, not to stop on
            row["failed"] = f"{type(exc).__name__}: {exc}"
            row["seconds"] = time.perf_counter() - start
            return row
        before_profile = len(caught)
        row["profile_failed"] = ""
        try:
            profile = model.confint("profile", old_names=False)
        except Exception as exc:  # counted, the other results of the data set kept
            row["profile_failed"] = f"{type(exc).__name__}: {exc}"
        lower = [str(w.message) for w in caught[before_profile:] if str(w.message).startswith(LOWER_DEVIANCE)]
        if lower:  # the fit is not at the ML optimum, so the limits are not intervals around the estimates
            row["profile_failed"] = f"lower deviance: {lower[0]}"
        elif not row["profile_failed"]:
            for name, hit in covered(profile, design.truth).items():
                row[f"cover_profile_{name}"] = hit
    row["convergence_warning"] = int(any(issubclass(w.category, mm.ConvergenceWarning) for w in caught))
    row["other_warnings"] = "; ".join(
        sorted(
            {
                f"{w.category.__name__}: {w.message}"
                for w in caught
                if not issubclass(w.category, (mm.ConvergenceWarning, mm.ModelMessage))
                and not str(w.message).startswith(LOWER_DEVIANCE)
            }
        )
    )
    for name, value in variance_estimates(model).items():
        row[f"est_{name}"] = value
    row["seconds"] = time.perf_counter() - start
    return row


def variance_estimates(model: mm.LinearMixedModel) -> dict[str, float]:
    """Estimated standard deviations, correlations and sigma from ``varcorr``, named as confint's rows."""
    estimates = {}
    for row in model.varcorr.itertuples(index=False):
        if row.group == "Residual":
            estimates["sigma"] = float(row.sdcor)
        elif pd.isna(row.var2):
            estimates[f"sd_{row.var1}|{row.group}"] = float(row.sdcor)
        else:
            estimates[f"cor_{row.var2}.{row.var1}|{row.group}"] = float(row.sdcor)
    return estimates


# -- the whole run ----------------------------------------------------------------------------------------
def run(designs: list[str], nsim: int, seed: int, jobs: int) -> pd.DataFrame:
    """All replicates of the designs, in worker processes; rows in (design, replicate) order."""
    tasks = []
    for design_seed, name in zip(np.random.SeedSequence(seed).spawn(len(DESIGNS)), DESIGNS):
        if name in designs:
            tasks.extend((name, i, s) for i, s in enumerate(design_seed.spawn(nsim)))
    rows: list[dict[str, object]] = []
    start = time.perf_counter()
    context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
    with ProcessPoolExecutor(jobs, mp_context=context) as pool:
        futures = [pool.submit(run_replicate, *task) for task in tasks]
        for done, future in enumerate(as_completed(futures), 1):
            rows.append(future.result())
            if done % 20 == 0 or done == len(tasks):
                elapsed = time.perf_counter() - start
                print(
                    f"\r{done}/{len(tasks)} data sets, {elapsed:.0f} s, "
                    f"about {elapsed / done * (len(tasks) - done):.0f} s left ",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
    print(file=sys.stderr)
    order = {name: k for k, name in enumerate(DESIGNS)}
    frame = pd.DataFrame(rows).sort_values(
        ["design", "replicate"], key=lambda column: column.map(order) if column.name == "design" else column
    )
    frame.insert(0, "seed", seed)
    return frame.reset_index(drop=True)


# -- the summary ------------------------------------------------------------------------------------------
def rate(hits: pd.Series) -> tuple[float, float, int]:
    """Proportion of ones among the non-missing values, its Monte-Carlo SE sqrt(p(1-p)/n), and n."""
    hits = hits.dropna()
    n = len(hits)
    p = float(hits.mean()) if n else np.nan
    return p, float(np.sqrt(p * (1 - p) / n)) if n else np.nan, n


def z_score(p: float, nominal: float, n: int) -> float:
    """Distance of p from the nominal rate in Monte-Carlo SEs at the nominal rate."""
    return (p - nominal) / np.sqrt(nominal * (1 - nominal) / n) if n else np.nan


def type_one_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Rejection rates at 5% of every test and df method, with their MC SE; where the design has an exact
    test, also each method's rate minus the exact test's on the same data sets, with its paired MC SE."""
    has_exact = "p_t_exact" in frame and frame["p_t_exact"].notna().any()
    records = []
    for test in ("t", "F"):
        for ddf in DDF_METHODS + (("exact",) if has_exact else ()):
            column = f"p_{test}_{ddf}"
            p, se, n = rate(frame[column].dropna() < ALPHA)
            record = {
                "test": test,
                "ddf": ddf,
                "rejected": p,
                "MC SE": se,
                "z": z_score(p, ALPHA, n),
                "n": n,
                "median df": float(frame[f"df_{test}_{ddf}"].median()),
            }
            if has_exact and ddf != "exact":
                both = frame[[column, f"p_{test}_exact"]].dropna() < ALPHA
                difference = both[column].astype(float) - both[f"p_{test}_exact"].astype(float)
                record["minus exact"] = float(difference.mean())
                record["paired SE"] = float(difference.std(ddof=1) / np.sqrt(len(difference)))
            records.append(record)
    return pd.DataFrame(records)


def coverage_table(frame: pd.DataFrame, design: Design) -> pd.DataFrame:
    """Coverage of the 95% intervals per parameter and method, with MC SE."""
    records = []
    for name in design.truth:
        for method in ("wald", *(f"t-{d}" for d in T_INTERVALS), "profile"):
            column = f"cover_{method}_{name}"
            if column not in frame or frame[column].isna().all():
                continue
            p, se, n = rate(frame[column])
            records.append(
                {
                    "parameter": name,
                    "true": design.truth[name],
                    "interval": method,
                    "coverage": p,
                    "MC SE": se,
                    "z": z_score(p, LEVEL, n),
                    "n": n,
                }
            )
    return pd.DataFrame(records)


def singular_split(frame: pd.DataFrame) -> pd.DataFrame:
    """Satterthwaite, Kenward-Roger (and exact) rejection rates among singular and non-singular fits."""
    methods = TABLE_METHODS + (
        ("exact",) if "p_t_exact" in frame and frame["p_t_exact"].notna().any() else ()
    )
    records = []
    for singular, part in frame.groupby("singular"):
        for test in ("t", "F"):
            for ddf in methods:
                p, se, n = rate(part[f"p_{test}_{ddf}"].dropna() < ALPHA)
                records.append(
                    {
                        "singular": bool(singular),
                        "test": test,
                        "ddf": ddf,
                        "rejected": p,
                        "MC SE": se,
                        "n": n,
                        "median df": float(part[f"df_{test}_{ddf}"].median()),
                    }
                )
    return pd.DataFrame(records)


def markdown(table: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table, rates to 3 decimals."""

    def cell(value: object) -> str:
        if isinstance(value, (float, np.floating)) and np.isnan(value):
            return ""
        if isinstance(value, (float, np.floating)):
            return f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
        return str(value)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def summary(results: pd.DataFrame) -> str:
    """The Markdown summary of a run: counts, type-I errors, coverage, singular split per design."""
    parts = []
    for name, design in DESIGNS.items():
        frame = results[results["design"] == name]
        if frame.empty:
            continue
        fitted = frame[frame["failed"] == ""]
        profile_failed = (fitted["profile_failed"] != "").sum()
        parts += [
            f"## {name}: `{design.formula}`",
            "",
            f"{design.description}. Data sets {len(frame)}; failed fits {len(frame) - len(fitted)}; "
            f"singular fits {int(fitted['singular'].sum())}; convergence warnings "
            f"{int(fitted['convergence_warning'].sum())}; failed profiles {profile_failed} (left out of the "
            f"profile coverage); "
            f"median {fitted['seconds'].median():.2f} s per data set.",
            "",
            f"Type-I error at 5% (t: `{design.t_coef}` = 0; F: `{design.f_term}`, {len(design.f_coefs)} df); "
            "z = (rate - 0.05) / sqrt(0.05 x 0.95 / n):",
            "",
            markdown(type_one_table(fitted)),
            "",
            "Coverage of 95% intervals; z = (coverage - 0.95) / sqrt(0.95 x 0.05 / n):",
            "",
            markdown(coverage_table(fitted, design)),
            "",
        ]
        if fitted["singular"].any():
            parts += [
                "Type-I error by singular / non-singular fit:",
                "",
                markdown(singular_split(fitted)),
                "",
            ]
        failures = pd.concat([frame["failed"], fitted["profile_failed"]])
        failures = failures[failures != ""].str.replace(
            rf"^lower deviance: {LOWER_DEVIANCE} .*", "profile found a deviance below the fit's", regex=True
        )
        if len(failures):
            parts += ["Failures (fits, then profiles):", ""]
            parts += [f"- {count} x {text}" for text, count in failures.value_counts().items()]
            parts.append("")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nsim", type=int, default=1000, help="data sets per design (default 1000)")
    parser.add_argument("--seed", type=int, default=20240611, help="seed of the whole run")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--designs", nargs="+", choices=list(DESIGNS), default=list(DESIGNS))
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory of the CSV and summary")
    parser.add_argument(
        "--summary-only", action="store_true", help="summarize the existing CSV, no simulation"
    )
    args = parser.parse_args(argv)
    if args.nsim < 1 or args.jobs < 1:
        parser.error("--nsim and --jobs must be positive")
    csv = args.out / "calibration.csv.gz"
    if args.summary_only:
        text_columns = ["failed", "profile_failed", "other_warnings"]
        results = pd.read_csv(csv, dtype=dict.fromkeys(text_columns, str))
        results[text_columns] = results[text_columns].fillna("")
    else:
        start = time.perf_counter()
        results = run(args.designs, args.nsim, args.seed, args.jobs)
        print(f"{len(results)} data sets in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        args.out.mkdir(parents=True, exist_ok=True)
        results.to_csv(csv, index=False, float_format="%.6g")
    text = summary(results)
    (args.out / "summary.md").write_text(
        f"# Calibration results (nsim = {results.groupby('design').size().max()}, "
        f"seed = {results['seed'].iloc[0]})\n\n{text}"
    )
    print(text)


if __name__ == "__main__":
    main()
