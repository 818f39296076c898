"""Extreme values: a fit either gives finite numbers or an error naming what cannot be represented
(issue 11, point 4); never NaN, never an abort in the optimizer library."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedmodels as mm

FORMULA = "Reaction ~ Days + (Days | Subject)"


def _sleepstudy(**changes) -> pd.DataFrame:
    data = mm.datasets.load("sleepstudy").copy()
    for column, change in changes.items():
        data[column] = change(data)
    return data


REFUSED = {
    "response x 1e300": (
        lambda: _sleepstudy(Reaction=lambda d: d.Reaction * 1e300),
        {},
        "response 'Reaction'",
    ),
    "response x 1e-300": (lambda: _sleepstudy(Reaction=lambda d: d.Reaction * 1e-300), {}, "underflow"),
    "response near 1e150": (
        lambda: _sleepstudy(Reaction=lambda d: 1e150 + d.Reaction * 1e140),
        {},
        "overflow",
    ),
    "constant response": (lambda: _sleepstudy(Reaction=lambda d: 5.0), {}, "constant"),
    "response fitted exactly": (lambda: _sleepstudy(Reaction=lambda d: 3 + 2 * d.Days), {}, "fitted exactly"),
    "predictor x 1e300": (lambda: _sleepstudy(Days=lambda d: d.Days * 1e300), {}, "column 'Days'"),
    "predictor x 1e-300": (lambda: _sleepstudy(Days=lambda d: d.Days * 1e-300), {}, "column 'Days'"),
    "weights underflow": (lambda: _sleepstudy(w=lambda d: 1e-320), {"weights": "w"}, "weights"),
    "one weight underflows": (
        lambda: _sleepstudy(w=lambda d: np.where(d.index == 0, 1e-320, 1.0)),
        {"weights": "w"},
        "weights under",
    ),
    "weights overflow": (lambda: _sleepstudy(w=lambda d: 1e300), {"weights": "w"}, "weights"),
    "offset 1e300": (lambda: _sleepstudy(off=lambda d: 1e300), {"offset": "off"}, "offset"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_unrepresentable_values_are_named(case):
    data, kwargs, message = REFUSED[case]
    with pytest.raises(ValueError, match=message):
        mm.lmer(FORMULA, data(), **kwargs)


@pytest.mark.parametrize("factor", [1e-150, 1e-100, 1e100, 1e140])
def test_representable_extremes_fit_to_the_same_model(factor):
    base = mm.lmer(FORMULA, _sleepstudy())
    scaled = mm.lmer(FORMULA, _sleepstudy(Reaction=lambda d: d.Reaction * factor))
    for value in (scaled.fixef, scaled.theta, scaled.sigma, scaled.loglik, scaled.vcov.to_numpy()):
        assert np.all(np.isfinite(value))
    np.testing.assert_allclose(scaled.fixef / factor, base.fixef, rtol=1e-6)
    np.testing.assert_allclose(scaled.theta, base.theta, rtol=1e-6, atol=1e-7)
    assert scaled.sigma / factor == pytest.approx(base.sigma, rel=1e-6)
