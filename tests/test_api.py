"""User-facing behaviour: summary, command line, messages and warnings, the seeds' worked numbers."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest

import mixedmodels as mm
from mixedmodels.cli import main


@pytest.fixture(scope="module")
def sleep_fit():
    return mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"))


def test_summary_has_lme4_sections(sleep_fit):
    text = str(sleep_fit.summary())
    for piece in (
        "Linear mixed model fit by REML. t-tests use Satterthwaite's method [lmerModLmerTest]",
        "REML criterion at convergence: 1743.6",
        "Scaled residuals:",
        "Random effects:",
        "Subject  (Intercept)",
        "Residual",
        "Number of obs: 180, groups:  Subject, 18",
        "Fixed effects:",
        "Correlation of Fixed Effects:",
    ):
        assert piece in text
    assert "251.405" in text and "36.838" in text  # estimate and t value of the intercept


def _fixed_effects_lines(summary, count: int) -> list[str]:
    """The ``count`` lines after "Fixed effects:" of a printed summary."""
    lines = str(summary).splitlines()
    start = lines.index("Fixed effects:")
    return lines[start + 1 : start + 1 + count]


def test_summary_fixed_effects_table_is_lmertests(sleep_fit):
    """print(summary(m)) of lmerTest 3.1-3 (R 4.2), lines without R's trailing blanks."""
    assert _fixed_effects_lines(sleep_fit.summary(), 5) == [
        "            Estimate Std. Error      df t value Pr(>|t|)",
        "(Intercept)  251.405      6.825  17.000  36.838  < 2e-16 ***",
        "Days          10.467      1.546  17.000   6.771 3.26e-06 ***",
        "---",
        "Signif. codes:  0 \u2018***\u2019 0.001 \u2018**\u2019 0.01 \u2018*\u2019 0.05 \u2018.\u2019 0.1 "
        "\u2018 \u2019 1",
    ]
    coefficients = sleep_fit.summary().coefficients
    assert list(coefficients.columns) == ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]


def test_summary_of_orthodont_matches_lmertest_print():
    """print(summary(lmer(distance ~ age * Sex + (1 | Subject)))) of lmerTest 3.1-3: common decimals for
    Estimate, Std. Error and df, p-values as format.pval, significance stars."""
    m = mm.lmer("distance ~ age * Sex + (1 | Subject)", mm.datasets.load("Orthodont"))
    assert _fixed_effects_lines(m.summary(), 5) == [
        "              Estimate Std. Error       df t value Pr(>|t|)",
        "(Intercept)    16.3406     0.9813 103.9864  16.652  < 2e-16 ***",
        "age             0.7844     0.0775  79.0000  10.121 6.44e-16 ***",
        "SexFemale       1.0321     1.5374 103.9864   0.671   0.5035",
        "age:SexFemale  -0.3048     0.1214  79.0000  -2.511   0.0141 *",
    ]
    assert "t-tests use the containment method" in str(m.summary(ddf="containment"))


def test_summary_of_ml_fit_shows_information_criteria():
    m = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"), reml=False)
    text = str(m.summary())
    assert "maximum likelihood" in text
    assert "AIC" in text and "1763.9" in text and "df.resid" in text


def test_summary_counts_missing_rows():
    df = mm.datasets.load("sleepstudy")
    df.loc[[0, 5], "Reaction"] = np.nan
    m = mm.lmer("Reaction ~ Days + (1 | Subject)", df)
    assert m.nobs == 178 and m.frame.n_missing == 2
    assert "(2 observations deleted due to missingness)" in str(m.summary())


def test_singular_fit_is_flagged():
    m = mm.lmer("Yield ~ 1 + (1 | Batch)", mm.datasets.load("Dyestuff2"))
    assert m.is_singular
    assert any("singular" in message for message in m.messages)
    assert "boundary (singular) fit" in str(m.summary())


def test_unconverged_fit_warns():
    control = mm.OptimizerControl(max_evaluations=5)
    with pytest.warns(mm.ConvergenceWarning):
        mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"), control=control)


def test_converged_fit_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mm.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", mm.datasets.load("Penicillin"))


def test_refit_by_ml_equals_ml_fit(sleep_fit):
    ml = mm.lmer("Reaction ~ Days + (Days | Subject)", mm.datasets.load("sleepstudy"), reml=False)
    refit = sleep_fit.refit(reml=False)
    assert not refit.reml
    assert refit.loglik == pytest.approx(ml.loglik, rel=1e-10)
    np.testing.assert_allclose(refit.fixef, ml.fixef, rtol=1e-6)


RESULT_CONTRACT = [
    "fixef", "vcov", "theta", "sigma", "varcorr", "ranef", "ranef_condvar", "coef", "fitted", "residuals",
    "loglik", "aic", "bic", "deviance", "reml_criterion", "nobs", "ngroups", "is_singular", "reml",
]  # fmt: skip


def test_to_dict_is_json_serializable_and_holds_the_whole_contract(sleep_fit):
    result = json.loads(json.dumps(sleep_fit.to_dict()))
    assert set(RESULT_CONTRACT) <= set(result)
    assert result["fixef"]["Days"] == pytest.approx(10.467285959)
    assert result["ngroups"] == {"Subject": 18}
    expected = sleep_fit.coef["Subject"].loc["308", "Days"]
    assert result["coef"]["Subject"]["308"]["Days"] == pytest.approx(expected)


def test_cli_fit_prints_summary(capsys):
    assert main(["fit", "Reaction ~ Days + (Days | Subject)", "--data", "sleepstudy"]) == 0
    assert "REML criterion at convergence: 1743.6" in capsys.readouterr().out


def test_cli_json_and_ml(capsys):
    assert main(["fit", "Reaction ~ Days + (Days | Subject)", "--data", "sleepstudy", "--ml", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["reml"] is False
    assert result["loglik"] == pytest.approx(-875.9697, abs=1e-4)


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_cli_reads_files_and_reports_errors(tmp_path, capsys, suffix):
    path = tmp_path / f"sleep.{suffix}"
    data = mm.datasets.load("sleepstudy")
    data.to_csv(path, index=False) if suffix == "csv" else data.to_parquet(path, index=False)
    assert main(["fit", "Reaction ~ Days + (1 | Subject)", "--data", str(path)]) == 0
    assert "Subject, 18" in capsys.readouterr().out
    assert main(["fit", "Reaction ~ Dayz + (1 | Subject)", "--data", str(path)]) == 2
    assert "Dayz" in capsys.readouterr().err
    assert main(["fit", "y ~ (1 | g)", "--data", "no-such-dataset"]) == 2
    assert "no-such-dataset" in capsys.readouterr().err


def test_module_entry_point_runs():
    out = subprocess.run(
        [sys.executable, "-m", "mixedmodels", "fit", "Yield ~ 1 + (1 | Batch)", "--data", "Dyestuff"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Batch    (Intercept)" in out.stdout


def test_datasets_are_listed_and_loaded_with_r_levels():
    names = mm.datasets.list()
    for name in ("sleepstudy", "Dyestuff", "Dyestuff2", "Penicillin", "Pastes", "InstEval", "cake",
                 "Orthodont", "Machines", "Oats", "Rail", "BodyWeight", "Ovary", "sires", "cbpp",
                 "grouseticks", "VerbAgg", "Arabidopsis"):  # fmt: skip
        assert name in names
    orthodont = mm.datasets.load("Orthodont")
    assert list(orthodont["Sex"].cat.categories) == ["Male", "Female"]
    assert mm.datasets.load("cake")["temperature"].cat.ordered
    with pytest.raises(KeyError, match="unknown dataset"):
        mm.datasets.load("nope")


def test_orthodont_seed_numbers():
    """The seed's ort6/ort7 variances (003_26c4468a360c7369.txt) come from lme4's default, looser stopping
    rule: at the optimum (which R with tight settings and nlme::lme both find, see the fixtures) the
    numbers differ in the fourth digit for ort6 and the third for ort7.  Ours agree with the optimum to
    1e-5 (test_lme4_reference.py) and with the seed to the accuracy of its stopping rule."""
    data = mm.datasets.load("Orthodont")
    ort6 = mm.lmer("distance ~ age*Sex + (1 | Subject) + (0 + age | Subject)", data)
    ort7 = mm.lmer("distance ~ age*Sex + (age | Subject)", data)
    np.testing.assert_allclose(ort6.varcorr["vcov"], [2.416451, 0.007748, 1.864634], rtol=5e-4)
    np.testing.assert_allclose(ort7.varcorr["vcov"][[0, 1, 3]], [5.77441, 0.03245, 1.71661], rtol=3e-3)
    assert ort7.varcorr["sdcor"][2] == pytest.approx(-0.67, abs=0.005)
    np.testing.assert_allclose(ort7.fixef, [16.34063, 0.78437, 1.03210, -0.30483], rtol=1e-5)
