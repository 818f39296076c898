"""The diagnostic plots of glmer fits (m.plot): residuals against the linear predictor, the simulated
scaled quantile residuals (DHARMa's QQ and residuals-vs-predicted plots) and the random effects, each
rendered by Agg and checked for what it draws (points, reference lines, labels) against the fit."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_plots import by_gid, check_qq_line, line, panel_titles, png

import mixedmodels as mm
from mixedmodels import cli
from mixedmodels.diagnostics import influence as diagnostics
from mixedmodels.diagnostics import smoothers
from mixedmodels.diagnostics.quantile_residuals import ScaledResiduals

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
GROUSETICKS = "TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION)"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@cache
def model(name: str):
    if name == "cbpp":
        return mm.glmer(CBPP, mm.datasets.load("cbpp"), family="binomial")
    if name == "grouseticks":
        return mm.glmer(GROUSETICKS, mm.datasets.load("grouseticks"), family="poisson")
    data = pd.read_csv(Path(__file__).parent / "fixtures" / "glmm" / "data" / "gamma_sim.csv")
    return mm.glmer("y ~ x + (1 | g)", data, family=mm.families.Gamma(link="log"))


MODELS = ["cbpp", "grouseticks", "gamma"]


def test_residual_table_holds_the_fits_numbers():
    m = model("cbpp")
    table = m.residual_diagnostics
    assert list(table.columns) == ["linear_predictor", "fitted", "deviance", "pearson", "residual", "working"]
    np.testing.assert_array_equal(table["linear_predictor"], m.predict())
    np.testing.assert_array_equal(table["fitted"], m.fitted)
    np.testing.assert_array_equal(table["residual"], m.residuals("response"))
    for type in ("deviance", "pearson", "working"):
        np.testing.assert_array_equal(table[type], m.residuals(type))


@pytest.mark.parametrize("name", MODELS)
def test_residuals_against_the_linear_predictor(name):
    """lme4's plot.merMod: Pearson residuals (by default) against the link-scale predictor, lowess."""
    m = model(name)
    figure = m.plot.residuals()
    png(figure)
    (ax,) = figure.axes
    eta, pearson = m.predict().to_numpy(), m.residuals("pearson").to_numpy()
    x, y = line(ax, "residuals")
    np.testing.assert_array_equal(x, eta)
    np.testing.assert_array_equal(y, pearson)
    expected = smoothers.lowess(eta, pearson)
    np.testing.assert_array_equal(np.stack(line(ax, "lowess")), np.stack(expected))
    labels = [text.get_text() for text in by_gid(ax, "point label")]
    assert labels == [str(i) for i in np.abs(m.residuals("pearson")).sort_values(ascending=False).index[:3]]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Linear predictor (link scale)", "Pearson residuals")


def test_residual_types_of_a_glmer_fit():
    m = model("grouseticks")
    (ax,) = m.plot.residuals(type="deviance", smooth=False).axes
    np.testing.assert_array_equal(line(ax, "residuals")[1], m.residuals("deviance"))
    assert ax.get_ylabel() == "Deviance residuals" and not [a for a in ax.lines if a.get_gid() == "lowess"]
    (ax,) = m.plot.scale_location().axes
    np.testing.assert_array_equal(line(ax, "root residuals")[1], np.sqrt(np.abs(m.residuals("pearson"))))
    assert ax.get_xlabel() == "Linear predictor (link scale)"
    with pytest.raises(ValueError, match="type"):
        m.plot.residuals(type="standardized")  # an lmer type


@pytest.mark.parametrize("name", MODELS)
def test_qq_plot_of_the_scaled_residuals(name):
    """DHARMa's plotQQunif: the sorted scaled residuals against uniform quantiles, the diagonal."""
    m = model(name)
    scaled = m.simulate_residuals(nsim=100, seed=5)
    figure = m.plot.qq(nsim=100, seed=5)
    png(figure)
    (ax,) = figure.axes
    x, y = line(ax, "scaled residuals")
    np.testing.assert_array_equal(y, np.sort(scaled.residuals))
    np.testing.assert_allclose(x, (np.arange(m.nobs) + 0.5) / m.nobs)
    (diagonal,) = by_gid(ax, "diagonal")
    assert diagonal.get_slope() == 1.0 and diagonal.get_xy1() == (0.0, 0.0)
    assert f"KS test p = {scaled.test_uniformity().pvalue:.3g}" in ax.get_title()


@pytest.mark.parametrize("name", MODELS)
def test_scaled_residuals_against_the_ranked_predictions(name):
    """DHARMa's plotResiduals: residuals against rank(fitted) / n, lines at the quartiles, a smoother."""
    m = model(name)
    scaled = m.simulate_residuals(nsim=100, seed=6)
    figure = m.plot.scaled_residuals(scaled=scaled)
    png(figure)
    (ax,) = figure.axes
    ranks = stats.rankdata(m.fitted.to_numpy())
    ranks = ranks / ranks.max()  # DHARMa: rank(pred) / max(rank(pred)), ties averaged
    x, y = line(ax, "scaled residuals")
    np.testing.assert_array_equal(x, ranks)
    np.testing.assert_array_equal(y, scaled.residuals)
    np.testing.assert_array_equal(np.stack(line(ax, "lowess")), np.stack(smoothers.lowess(ranks, y)))
    assert sorted(a.get_ydata()[0] for a in by_gid(ax, "quartile line")) == [0.25, 0.5, 0.75]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Model predictions (rank transformed)", "Scaled residuals")
    # the same simulation when seeded
    (again,) = m.plot.scaled_residuals(nsim=100, seed=6).axes
    np.testing.assert_array_equal(line(again, "scaled residuals")[1], y)


def test_scaled_residuals_without_predictions_cannot_be_plotted():
    scaled = model("cbpp").simulate_residuals(nsim=20, seed=1)
    bare = ScaledResiduals(scaled.residuals, scaled.simulations)
    with pytest.raises(ValueError, match="no predictions"):
        bare.versus_predicted()


def test_qq_plots_and_caterpillar_of_the_random_effects():
    """qqmath(ranef(m)) and dotplot(ranef(m, condVar = TRUE)): one panel per grouping factor."""
    m = model("grouseticks")
    figure = m.plot.qq_ranef()
    png(figure)
    titles = ["BROOD: (Intercept)", "LOCATION: (Intercept)"]
    assert panel_titles(figure) == titles
    for ax, group in zip(figure.axes, ["BROOD", "LOCATION"]):
        values = m.ranef[group]["(Intercept)"].to_numpy()
        x, y = line(ax, "conditional modes")
        np.testing.assert_array_equal(y, np.sort(values))
        np.testing.assert_array_equal(x, smoothers.normal_scores(len(values)))
        check_qq_line(ax, values)
    figure = m.plot.caterpillar()
    png(figure)
    assert panel_titles(figure) == titles
    for ax, group in zip(figure.axes, ["BROOD", "LOCATION"]):
        values = m.ranef[group]["(Intercept)"].to_numpy()
        order = np.argsort(values, kind="stable")
        x, _ = line(ax, "conditional modes")
        np.testing.assert_array_equal(x, values[order])
        (bars,) = by_gid(ax, "intervals")
        half = stats.norm.ppf(0.975) * np.sqrt(m.ranef_condvar[group][order, 0, 0])
        ends = np.array([[segment[0][0], segment[1][0]] for segment in bars.get_segments()])
        np.testing.assert_allclose(ends, np.column_stack([x - half, x + half]), rtol=1e-12)


def test_residuals_by_group():
    m = model("cbpp")
    figure = m.plot.residuals_by_group()
    png(figure)
    (ax,) = figure.axes
    codes, levels = diagnostics.group_codes(m, "herd")
    pearson = m.residuals("pearson").to_numpy()
    medians = [artist.get_ydata()[0] for artist in by_gid(ax, "median")]
    np.testing.assert_allclose(medians, [np.median(pearson[codes == j]) for j in range(len(levels))])
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("herd", "Pearson residuals")


@pytest.mark.parametrize(
    "plot, panels",
    [("residuals", 1), ("qq", 1), ("scaled_residuals", 1), ("qq_ranef", 2), ("caterpillar", 2)],
)
def test_plots_draw_on_given_axes(plot, panels):
    figure, axes = plt.subplots(1, panels)
    assert getattr(model("grouseticks").plot, plot)(ax=axes) is figure
    assert all(ax.has_data() for ax in figure.axes)


STANDARD_SET = ["residuals", "qq", "scaled_residuals", "qq_ranef", "caterpillar", "residuals_by_herd"]


def test_save_all_writes_the_standard_set(tmp_path):
    written = model("cbpp").plot.save_all(tmp_path)
    assert sorted(p.name for p in written) == sorted(f"{name}.png" for name in STANDARD_SET)
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in written)
    assert plt.get_fignums() == []


def test_cli_glmer_plots(tmp_path, capsys):
    arguments = ["glmer", CBPP, "--family", "binomial", "--data", "cbpp", "--plots", str(tmp_path)]
    assert cli.main(arguments) == 0
    captured = capsys.readouterr()
    assert (
        f"wrote {len(STANDARD_SET)} plots" in captured.err
        and "Generalized linear mixed model" in captured.out
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{name}.png" for name in STANDARD_SET)
