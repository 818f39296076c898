"""Diagnostic plots of gls and lme fits (``m.plot``), rendered with Agg: the numbers drawn are nlme's
fitted values, residuals of each type (``resid(m, type = ...)``) and random effects, from the fixtures
of tools/reference_nlme.R."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from nlme_models import RTOL_VARIANCE, fit, reference, table
from test_plots import by_gid, check_qq_line, line, png

from mixedmodels.diagnostics import smoothers

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# gls and lme fits whose rows are sorted by group (nlme's own normalized residuals apply), and others
NAMES = ["gls_ovary_ar1", "gls_hetero_power_ar1", "lme_orthodont_ar1", "lme_bodyweight_exp"]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def nlme_fitted(name: str) -> np.ndarray:
    """nlme's fitted values (lme: at the innermost level)."""
    block = reference(name)["fitted"]
    if isinstance(block, dict):
        return table(block).iloc[:, -1].to_numpy(dtype=float)
    return np.asarray(block, dtype=float)


def nlme_residuals(name: str, kind: str) -> np.ndarray:
    key = "normalized_grouped" if kind == "normalized" else kind
    return np.asarray(reference(name)["residuals"][key], dtype=float)


def assert_nlme(ours, expected) -> None:
    np.testing.assert_allclose(ours, expected, rtol=RTOL_VARIANCE, atol=RTOL_VARIANCE * np.std(expected))


@pytest.mark.parametrize("name", NAMES)
def test_residual_table_is_nlmes(name):
    model = fit(name)
    frame = model.residual_diagnostics
    assert list(frame.columns) == ["fitted", "residual", "pearson", "normalized"]
    assert frame.index.equals(model.fitted.index)
    assert_nlme(frame["fitted"], nlme_fitted(name))
    for kind, column in (("response", "residual"), ("pearson", "pearson"), ("normalized", "normalized")):
        assert_nlme(frame[column], nlme_residuals(name, kind))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind", ["response", "pearson", "normalized"])
def test_residuals_vs_fitted_draws_nlmes_residuals(name, kind):
    model = fit(name)
    figure = model.plot.residuals(type=kind)
    png(figure)
    (ax,) = figure.axes
    x, y = line(ax, "residuals")
    assert_nlme(x, nlme_fitted(name))
    assert_nlme(y, nlme_residuals(name, kind))
    smooth = smoothers.lowess(x, y)
    np.testing.assert_array_equal(line(ax, "lowess")[1], smooth[1])
    labels = [text.get_text() for text in by_gid(ax, "point label")]
    normalized = model.residual_diagnostics["normalized"]
    assert labels == [str(i) for i in normalized.abs().sort_values(ascending=False).index[:3]]
    expected = {"response": "Residuals", "pearson": "Pearson residuals", "normalized": "Normalized residuals"}
    assert ax.get_ylabel() == expected[kind]


@pytest.mark.parametrize("name", NAMES)
def test_qq_and_scale_location_use_normalized_residuals(name):
    model = fit(name)
    normalized = nlme_residuals(name, "normalized")
    figure = model.plot.qq()
    png(figure)
    (ax,) = figure.axes
    x, y = line(ax, "normalized residuals")
    assert_nlme(y, np.sort(normalized))
    np.testing.assert_array_equal(x, smoothers.normal_scores(model.nobs))
    check_qq_line(ax, model.residual_diagnostics["normalized"].to_numpy())

    figure = model.plot.scale_location()
    png(figure)
    (ax,) = figure.axes
    x, y = line(ax, "root residuals")
    assert_nlme(x, nlme_fitted(name))
    assert_nlme(y**2, np.abs(normalized))
    np.testing.assert_array_equal(y, smoothers.scale_location(model.residual_diagnostics["normalized"]))

    pearson = model.plot.qq(type="pearson")
    assert_nlme(line(pearson.axes[0], "pearson residuals")[1], np.sort(nlme_residuals(name, "pearson")))


@pytest.mark.parametrize("name", ["lme_orthodont_ar1", "lme_oats_nested"])
def test_qq_ranef_draws_nlmes_random_effects(name):
    model = fit(name)
    figure = model.plot.qq_ranef()
    png(figure)
    expected = reference(name)["ranef"]
    panels = [(level, column) for level, effects in model.ranef.items() for column in effects.columns]
    assert [ax.get_title() for ax in figure.axes] == [f"{g}: {c}" for g, c in panels]
    for ax, (level, column) in zip(figure.axes, panels):
        values = table(expected[level])[column].to_numpy(dtype=float)
        assert_nlme(line(ax, "conditional modes")[1], np.sort(values))
        check_qq_line(ax, model.ranef[level][column].to_numpy())
    one = model.plot.qq_ranef(next(iter(model.ranef)))
    assert len(one.axes) == model.ranef[next(iter(model.ranef))].shape[1]


def test_save_all_and_errors(tmp_path):
    lme, gls = fit("lme_orthodont_ar1"), fit("gls_ovary_ar1")
    written = sorted(p.name for p in lme.plot.save_all(tmp_path / "lme"))
    assert written == ["qq.png", "qq_ranef.png", "residuals.png", "scale_location.png"]
    assert sorted(p.name for p in gls.plot.save_all(tmp_path / "gls")) == [
        "qq.png",
        "residuals.png",
        "scale_location.png",
    ]
    assert plt.get_fignums() == []
    with pytest.raises(ValueError, match="a gls fit has no random effects"):
        gls.plot.qq_ranef()
    with pytest.raises(ValueError, match="unknown group 'Mare'"):
        lme.plot.qq_ranef("Mare")
    with pytest.raises(ValueError, match="type must be one of 'response', 'pearson', 'normalized'"):
        gls.plot.residuals(type="standardized")
    with pytest.raises(TypeError, match="smooth"):
        gls.plot.scale_location(smooth="yes")


def test_lmer_fits_share_the_residual_plots():
    """The same code draws lmer's scale-location plot from its standardized residuals."""
    import reference_models

    m = reference_models.fit("sleepstudy", "Reaction ~ Days + (Days | Subject)")[1]
    figure = m.plot.scale_location()
    png(figure)
    x, y = line(figure.axes[0], "root residuals")
    table = m.residual_diagnostics
    np.testing.assert_array_equal(x, table["fitted"])
    np.testing.assert_array_equal(y, np.sqrt(table["standardized"].abs()))
    response = m.plot.residuals(type="response")
    np.testing.assert_array_equal(line(response.axes[0], "residuals")[1], table["residual"])
    with pytest.raises(ValueError, match="type must be one of 'response', 'pearson', 'standardized'"):
        m.plot.qq(type="normalized")
