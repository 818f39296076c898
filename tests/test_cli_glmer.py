"""``mixedmodels glmer``: the command line of glmer, against the lme4 fixtures of tests/fixtures/glmm."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mixedmodels as mm
from mixedmodels.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "glmm"
CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def glmer_json(capsys, *arguments: str) -> dict:
    assert main(["glmer", *arguments, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def assert_matches_fixture(result: dict, name: str) -> None:
    expected = fixture(name)
    assert result["loglik"] == pytest.approx(expected["loglik"], rel=1e-5)
    fixef = [result["fixef"][term] for term in expected["fixef"]["names"]]
    np.testing.assert_allclose(fixef, expected["fixef"]["values"], rtol=1e-4)


def test_glmer_prints_lme4s_summary(capsys):
    assert main(["glmer", CBPP, "--family", "binomial", "--data", "cbpp"]) == 0
    out = capsys.readouterr().out
    assert "Family: binomial  ( logit )" in out
    assert " 194.1 204.2  -92.0    184.1       51" in out


@pytest.mark.parametrize(
    "name, options",
    [
        ("cbpp_binomial", []),
        ("cbpp_probit", ["--link", "probit"]),
        ("cbpp_binomial_nagq0", ["--nagq", "0"]),
        ("cbpp_binomial_nagq25", ["--nagq", "25"]),
    ],
)
def test_glmer_json_matches_lme4(capsys, name, options):
    result = glmer_json(capsys, CBPP, "--family", "binomial", "--data", "cbpp", *options)
    assert result["nAGQ"] == (int(options[1]) if options[:1] == ["--nagq"] else 1)
    assert_matches_fixture(result, name)


def test_glmer_fits_a_negative_binomial_model(capsys):
    formula = "TICKS ~ YEAR + scale(HEIGHT) + (1 | BROOD) + (1 | LOCATION)"
    result = glmer_json(capsys, formula, "--family", "negative_binomial", "--data", "grouseticks")
    assert_matches_fixture(result, "grouseticks_nb")


def test_glmer_reads_a_file_with_weights_and_offset(tmp_path, capsys):
    data = mm.datasets.load("cbpp")
    data = data.assign(
        prop=data["incidence"] / data["size"],
        w=1.0 + (np.arange(1, len(data) + 1) % 3),
        log_size=np.log(data["size"]),
    )
    path = tmp_path / "cbpp.parquet"  # keeps period a factor
    data.to_parquet(path, index=False)
    proportion = glmer_json(
        capsys, "prop ~ period + (1 | herd)", "--family", "binomial", "--data", str(path), "--weights", "size"
    )
    assert_matches_fixture(proportion, "cbpp_proportion")
    counts = glmer_json(
        capsys, "incidence ~ period + (1 | herd)", "--family", "poisson", "--data", str(path),
        "--weights", "w", "--offset", "log_size",
    )  # fmt: skip
    assert counts["family"] == "poisson"
    assert_matches_fixture(counts, "cbpp_poisson_offset_weights")


@pytest.mark.parametrize(
    "arguments, pattern",
    [
        (["--family", "binomal"], "unknown family 'binomal'"),
        (["--family", "poisson", "--link", "logit"], "link 'logit' is not available for the poisson family"),
        (["--family", "binomial", "--nagq", "-1"], "nAGQ must be"),
        (["--family", "binomial", "--weights", "trials"], "unknown column 'trials'"),
        (["--family", "binomial", "--data", "no-such-dataset"], "'no-such-dataset' is neither a file"),
    ],
)
def test_glmer_answers_bad_input_in_one_line(capsys, arguments, pattern):
    data = [] if "--data" in arguments else ["--data", "cbpp"]
    assert main(["glmer", CBPP, *data, *arguments]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("mixedmodels: error: ")
    assert pattern in lines[0]


def test_glmer_needs_a_family(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["glmer", CBPP, "--data", "cbpp"])
    assert exit_info.value.code == 2
    assert "--family" in capsys.readouterr().err


def test_module_entry_point_runs_glmer():
    command = [sys.executable, "-m", "mixedmodels", "glmer", CBPP, "--family", "binomial", "--data", "cbpp"]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "herd   (Intercept)" in result.stdout
