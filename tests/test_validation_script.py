"""Smoke test of validation/calibration.py (the calibration study itself is not run in CI)."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd

SCRIPT = Path(__file__).resolve().parents[1] / "validation" / "calibration.py"


def load_script(monkeypatch):
    """The script as a module; its OpenBLAS setting stays inside the test."""
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    spec = importlib.util.spec_from_file_location("calibration", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "calibration", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_one_replicate_gives_a_row_and_a_summary(monkeypatch):
    calibration = load_script(monkeypatch)
    row = calibration.run_replicate("nested", 0, np.random.SeedSequence(1))
    assert row["failed"] == "" and row["profile_failed"] == ""
    assert 0 <= row["p_F_kenward-roger"] <= 1 and row["df_t_kenward-roger"] > 0
    assert row["cover_profile_sigma"] in (0.0, 1.0) and row["cover_wald_trtB"] in (0.0, 1.0)
    results = pd.DataFrame([row]).assign(seed=1)
    text = calibration.summary(results)
    assert text.startswith("## nested: `y ~ trt + (1 | block/plot)`")
    assert "| F | kenward-roger |" in text and "| trtB | 0.000 | profile |" in text
