"""The diagnostic plots: every plot rendered to PNG (Agg) for sleepstudy, Penicillin and Orthodont, and
what each figure holds (panels, points, labels) checked against the fit and
mixedmodels.diagnostics.influence."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from functools import cache, partial
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import reference_models as models
from scipy import stats

import mixedmodels as mm
from mixedmodels import cli
from mixedmodels.diagnostics import influence as diagnostics
from mixedmodels.diagnostics import smoothers

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SLEEPSTUDY = ("sleepstudy", "Reaction ~ Days + (Days | Subject)")
PENICILLIN = ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)")
ORTHODONT = ("Orthodont", "distance ~ age * Sex + (1 | Subject)")
ORTHODONT_SLOPE = ("Orthodont", "distance ~ age * Sex + (age | Subject)")
MODELS = {"sleepstudy": SLEEPSTUDY, "penicillin": PENICILLIN, "orthodont": ORTHODONT}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def model(name: str) -> mm.LinearMixedModel:
    return models.fit(*MODELS[name])[1]


def png(figure) -> bytes:
    """The figure rendered by Agg as PNG bytes (checks that drawing works, not just building)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=60)
    data = buffer.getvalue()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    return data


def by_gid(ax, gid: str):
    found = [a for a in ax.get_children() if a.get_gid() == gid]
    assert found, f"no artist {gid!r} in the panel"
    return found


def line(ax, gid: str):
    (artist,) = by_gid(ax, gid)
    return np.asarray(artist.get_xdata(), dtype=float), np.asarray(artist.get_ydata(), dtype=float)


def panel_titles(figure) -> list[str]:
    return [ax.get_title() for ax in figure.axes]


def check_qq_line(ax, values: np.ndarray) -> None:
    """The panel's QQ line is R's qqline of ``values``."""
    (qq_line,) = by_gid(ax, "qq line")
    intercept, slope = smoothers.qq_line(values)
    assert qq_line.get_slope() == pytest.approx(slope) and qq_line.get_xy1() == (0.0, intercept)


@cache
def profiled(name: str):
    """The model and its profile table, computed once per test session."""
    m = model(name)
    return m, m.profile()


# -- residuals --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(MODELS))
def test_residuals_vs_fitted(name):
    m = model(name)
    figure = m.plot.residuals()
    png(figure)
    (ax,) = figure.axes
    table = m.residual_diagnostics
    x, y = line(ax, "residuals")
    np.testing.assert_array_equal(x, table["fitted"])
    np.testing.assert_array_equal(y, table["pearson"])
    smooth_x, smooth_y = line(ax, "lowess")
    expected_x, expected_y = smoothers.lowess(table["fitted"].to_numpy(), table["pearson"].to_numpy())
    np.testing.assert_array_equal(smooth_x, expected_x)
    np.testing.assert_array_equal(smooth_y, expected_y)
    assert line(ax, "zero line")[1].tolist() == [0.0, 0.0]
    labels = [text.get_text() for text in by_gid(ax, "point label")]
    extremes = table["standardized"].abs().sort_values(ascending=False).index[:3]
    assert labels == [str(i) for i in extremes]
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == (
        "Fitted values",
        "Residuals",
        "Residuals vs fitted",
    )


def test_qq_points_are_the_sorted_standardized_residuals():
    for name in MODELS:
        m = model(name)
        figure = m.plot.qq()
        png(figure)
        (ax,) = figure.axes
        x, y = line(ax, "standardized residuals")
        standardized = m.residual_diagnostics["standardized"].to_numpy()
        np.testing.assert_array_equal(y, np.sort(standardized))
        np.testing.assert_array_equal(x, smoothers.normal_scores(m.nobs))
        check_qq_line(ax, standardized)
        assert ax.get_ylabel() == "Standardized residuals" and len(by_gid(ax, "point label")) == 3


@pytest.mark.parametrize(
    ("name", "group"), [("sleepstudy", "Subject"), ("penicillin", "sample"), ("orthodont", "Sex")]
)
def test_residuals_by_group(name, group):
    """One box per level (a grouping factor or any column of the data), medians of the residuals."""
    m = model(name)
    figure = m.plot.residuals_by_group(group)
    png(figure)
    (ax,) = figure.axes
    codes, levels = diagnostics.group_codes(m, group)
    medians = [artist.get_ydata()[0] for artist in by_gid(ax, "median")]
    pearson = m.residual_diagnostics["pearson"].to_numpy()
    np.testing.assert_allclose(medians, [np.median(pearson[codes == j]) for j in range(len(levels))])
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(v) for v in levels]
    assert ax.get_title() == f"Residuals by {group}" and ax.get_xlabel() == group


def test_residuals_by_group_defaults_to_the_largest_grouping_factor():
    (ax,) = model("penicillin").plot.residuals_by_group().axes
    assert ax.get_xlabel() == "plate" and len(by_gid(ax, "median")) == 24


# -- random effects -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "titles"),
    [
        ("sleepstudy", ["Subject: (Intercept)", "Subject: Days"]),
        ("penicillin", ["plate: (Intercept)", "sample: (Intercept)"]),
        ("orthodont", ["Subject: (Intercept)"]),
    ],
)
def test_qq_ranef_has_a_panel_per_random_effect(name, titles):
    m = model(name)
    figure = m.plot.qq_ranef()
    png(figure)
    assert panel_titles(figure) == titles
    for ax, title in zip(figure.axes, titles):
        group, column = title.split(": ")
        values = m.ranef[group][column].to_numpy()
        x, y = line(ax, "conditional modes")
        np.testing.assert_array_equal(y, np.sort(values))
        np.testing.assert_array_equal(x, smoothers.normal_scores(len(values)))
        check_qq_line(ax, values)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_caterpillar_intervals_come_from_the_conditional_variances(name):
    m = model(name)
    figure = m.plot.caterpillar()
    png(figure)
    panels = [(g, c) for g, table in m.ranef.items() for c in table.columns]
    assert panel_titles(figure) == [f"{g}: {c}" for g, c in panels]
    for ax, (group, column) in zip(figure.axes, panels):
        effects = m.ranef[group]
        order = np.argsort(effects.iloc[:, 0].to_numpy(), kind="stable")
        c = list(effects.columns).index(column)
        x, y = line(ax, "conditional modes")
        np.testing.assert_array_equal(x, effects[column].to_numpy()[order])
        np.testing.assert_array_equal(y, np.arange(len(effects)))
        (bars,) = by_gid(ax, "intervals")
        half = stats.norm.ppf(0.975) * np.sqrt(m.ranef_condvar[group][order, c, c])
        ends = np.array([[segment[0][0], segment[1][0]] for segment in bars.get_segments()])
        np.testing.assert_allclose(ends, np.column_stack([x - half, x + half]), rtol=1e-12)
        assert [t.get_text() for t in ax.get_yticklabels()] == [str(v) for v in effects.index[order]]


def test_caterpillar_level_is_checked_and_used():
    m = model("orthodont")
    with pytest.raises(ValueError, match="level must be between 0 and 1"):
        m.plot.caterpillar(level=95)
    (ax,) = m.plot.caterpillar(level=0.5).axes
    assert "50% interval" in ax.get_xlabel()


# -- shrinkage --------------------------------------------------------------------------------------------
def test_shrinkage_of_random_slopes():
    """sleepstudy: per-subject regressions (open) move to the BLUP-based coef (filled)."""
    data, m = models.fit(*SLEEPSTUDY)
    figure = m.plot.shrinkage()
    png(figure)
    (ax,) = figure.axes
    separate = np.column_stack(line(ax, "separate fits"))
    for row, (_, rows) in zip(separate, data.groupby("Subject")):
        slope, intercept = np.polyfit(rows["Days"], rows["Reaction"], 1)
        np.testing.assert_allclose(row, [intercept, slope], rtol=1e-10)
    np.testing.assert_allclose(np.column_stack(line(ax, "mixed model")), m.coef["Subject"], rtol=1e-12)
    np.testing.assert_allclose(np.ravel(line(ax, "population")), m.fixef, rtol=1e-12)
    contour = np.column_stack(line(ax, "contour")) - m.fixef.to_numpy()
    covariance = diagnostics.random_effects_covariance(m, "Subject").to_numpy()
    distances = np.einsum("ni,ij,nj->n", contour, np.linalg.inv(covariance), contour)
    np.testing.assert_allclose(distances, stats.chi2.ppf(0.95, 2), rtol=1e-10)
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("(Intercept)", "Days")
    assert len(ax.patches) + len(ax.texts) >= 18  # the arrows


@pytest.mark.parametrize(
    ("name", "group"), [("penicillin", "plate"), ("penicillin", "sample"), ("orthodont", "Subject")]
)
def test_shrinkage_of_random_intercepts(name, group):
    m = model(name)
    figure = m.plot.shrinkage(group)
    png(figure)
    (ax,) = figure.axes
    separate = diagnostics.separate_fits(m, group).iloc[:, 0]
    order = np.argsort(separate.to_numpy(), kind="stable")
    x, y = line(ax, "separate fits")
    np.testing.assert_array_equal(x, separate.to_numpy()[order])
    np.testing.assert_array_equal(y, np.arange(len(separate)))
    np.testing.assert_allclose(line(ax, "mixed model")[0], m.coef[group]["(Intercept)"].to_numpy()[order])
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(v) for v in separate.index[order]]
    assert ax.get_legend() is not None and ax.get_ylabel() == group


def test_shrinkage_columns_are_checked():
    with pytest.raises(ValueError, match="columns must be two of"):
        models.fit(*ORTHODONT_SLOPE)[1].plot.shrinkage(columns=["age", "Sex"])


# -- data and fitted lines ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "x"), [(SLEEPSTUDY, "Days"), (ORTHODONT, "age"), (ORTHODONT_SLOPE, "age")]
)
def test_fitted_lines_one_panel_per_group(source, x):
    data, m = models.fit(*source)
    figure = m.plot.fitted_lines()
    png(figure)
    levels = m.ranef["Subject"].index
    assert panel_titles(figure) == [str(v) for v in levels]
    assert figure.get_suptitle().startswith("Data and fitted lines by Subject")
    codes = m.frame.blocks[0].codes
    population = m.predict(re_form="~0").to_numpy()
    for j, ax in enumerate(figure.axes):
        rows = codes == j
        xs, ys = line(ax, "observed")
        np.testing.assert_array_equal(xs, data[x].to_numpy()[rows])
        np.testing.assert_array_equal(ys, m.frame.y[rows])
        order = np.argsort(xs, kind="stable")  # one observation per x in these data
        np.testing.assert_allclose(line(ax, "fitted")[1], m.fitted.to_numpy()[rows][order], rtol=1e-12)
        np.testing.assert_allclose(line(ax, "population")[1], population[rows][order], rtol=1e-12)


def test_fitted_lines_need_a_numeric_x_or_take_a_categorical_one():
    m = model("penicillin")
    with pytest.raises(ValueError, match="pass x="):
        m.plot.fitted_lines()
    figure = m.plot.fitted_lines(x="sample")
    png(figure)
    assert len(figure.axes) == 24
    assert [t.get_text() for t in figure.axes[-1].get_xticklabels()] == list("ABCDEF")
    with pytest.raises(ValueError, match="x must be a column"):
        m.plot.fitted_lines(x="nope")


# -- drawing into given Axes, errors, files ------------------------------------------------------------
@pytest.mark.parametrize(
    ("plot", "panels"),
    [
        ("residuals", 1),
        ("qq", 1),
        ("residuals_by_group", 1),
        ("qq_ranef", 2),
        ("caterpillar", 2),
        ("shrinkage", 1),
        ("fitted_lines", 18),
        ("profile", 6),
    ],
)
def test_plots_draw_on_given_axes(plot, panels):
    """sleepstudy: each plot draws into the Axes passed (one per panel) and refuses a wrong number."""
    m, table = profiled("sleepstudy")
    draw = getattr(m.plot, plot)
    if plot == "profile":
        draw = partial(draw, table)
    figure, axes = plt.subplots(1, panels)  # a single Axes, not a sequence, for one panel
    assert draw(ax=axes) is figure
    assert figure.axes == list(np.ravel(axes))
    assert all(ax.has_data() and ax.get_title() for ax in figure.axes)
    png(figure)
    with pytest.raises(ValueError, match=f"this plot has {panels} panel"):
        draw(ax=plt.subplots(1, panels + 1)[1])


def test_unknown_group_in_plots():
    m = model("penicillin")
    with pytest.raises(ValueError, match="'batch' is not a grouping factor"):
        m.plot.caterpillar("batch")
    with pytest.raises(ValueError, match="unknown group 'batch'"):
        m.plot.residuals_by_group("batch")


def test_save_all_writes_the_standard_set(tmp_path):
    written = model("penicillin").plot.save_all(tmp_path)
    names = sorted(p.name for p in written)
    assert names == sorted(
        [
            "residuals.png",
            "qq.png",
            "qq_ranef.png",
            "caterpillar.png",
            "residuals_by_plate.png",
            "shrinkage_plate.png",
            "residuals_by_sample.png",
            "shrinkage_sample.png",
        ]
    )  # no fitted_lines: nothing numeric to draw lines against
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in written)
    assert plt.get_fignums() == []


def test_cli_plots(tmp_path, capsys):
    assert (
        cli.main(["fit", "distance ~ age + (age | Subject)", "--data", "Orthodont", "--plots", str(tmp_path)])
        == 0
    )
    captured = capsys.readouterr()
    assert "wrote 7 plots" in captured.err and "Linear mixed model" in captured.out
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [
            "residuals.png",
            "qq.png",
            "qq_ranef.png",
            "caterpillar.png",
            "residuals_by_Subject.png",
            "shrinkage_Subject.png",
            "fitted_lines.png",
        ]
    )


def test_without_matplotlib_plots_say_how_to_install(monkeypatch):
    m = model("orthodont")
    for name in [n for n in sys.modules if n == "matplotlib" or n.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install 'mixedmodels\[plots\]'"):
        m.plot.residuals()


def test_cli_without_matplotlib_is_a_clean_error(monkeypatch, tmp_path, capsys):
    for name in [n for n in sys.modules if n == "matplotlib" or n.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    code = cli.main(["fit", "Yield ~ 1 + (1 | Batch)", "--data", "Dyestuff", "--plots", str(tmp_path)])
    assert code == 2 and "mixedmodels[plots]" in capsys.readouterr().err


def test_import_and_fit_do_not_load_matplotlib():
    code = (
        "import sys, mixedmodels as mm; "
        "m = mm.lmer('Yield ~ 1 + (1 | Batch)', mm.datasets.load('Dyestuff')); "
        "m.residual_diagnostics; m.influence('Batch'); "
        "print('matplotlib' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(mm.__file__).parents[1])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert result.stdout.strip() == "False"


def test_many_levels_keep_figures_readable():
    """200 groups: sizes are capped, levels are not named, fitted_lines draws the first max_panels."""
    rng = np.random.default_rng(3)
    group = np.repeat(np.arange(200), 5)
    x = np.tile(np.arange(5.0), 200)
    data = {
        "g": np.char.add("s", group.astype(str)),
        "x": x,
        "y": x + rng.normal(size=200)[group] + rng.normal(size=1000),
    }
    m = mm.lmer("y ~ x + (1 | g)", data)
    for figure in (m.plot.caterpillar(), m.plot.residuals_by_group(), m.plot.shrinkage()):
        png(figure)
        width, height = figure.get_size_inches()
        assert max(width, height) <= 12.0
        (ax,) = figure.axes
        assert [
            t.get_text()
            for t in ax.get_xticklabels() + ax.get_yticklabels()
            if t.get_text() in m.ranef["g"].index
        ] == []
    (ax,) = m.plot.residuals_by_group().axes
    assert ax.get_xlabel() == "g (200 levels)" and len(by_gid(ax, "median")) == 200
    figure = m.plot.fitted_lines(max_panels=9)
    assert len(figure.axes) == 9 and "first 9 of 200" in figure.get_suptitle()


@pytest.mark.parametrize("name", sorted(MODELS))
def test_profile_plot_draws_each_parameters_trace(name):
    """One panel per profiled parameter; the lines are the profile table's (value, zeta) points."""
    m, table = profiled(name)
    figure = m.plot.profile(table)
    png(figure)
    names = list(dict.fromkeys(table["parameter"]))
    assert [ax.get_title() for ax in figure.axes] == names
    for ax, parameter in zip(figure.axes, names):
        (trace,) = [line for line in ax.get_lines() if line.get_gid() == "profile trace"]
        rows = table[table["parameter"] == parameter].sort_values("value")
        np.testing.assert_allclose(trace.get_xdata(), rows["value"])
        np.testing.assert_allclose(trace.get_ydata(), rows["zeta"])
        levels = sorted(line.get_ydata()[0] for line in ax.get_lines() if line.get_gid() == "level")
        np.testing.assert_allclose(levels, [-1.959964, 1.959964], atol=1e-6)
