"""ANOVA tables, contrast tests, estimates and denominator-df methods.

Reference values: lmerTest 3.1-3 (tests/fixtures/inference/<model>.json, made by
tools/reference_inference.R: ``anova(m, type=)``, ``contest(m, L, joint=)``), SAS PROC MIXED's
ESTIMATE for the sires data (sires_procmixed.json and seed 000) and the seeds' printed numbers.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import reference_models as models
from test_engine import _dense_z
from test_inference import FIXTURES, TABLES, _table, compared, fitted, reference

import mixedmodels as mm
from mixedmodels.inference.containment import random_effects

RTOL = 1e-4


def _assert_f_table(ours: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(ours.columns) == ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]
    assert len(ours) == len(expected)
    np.testing.assert_array_equal(ours["NumDF"], expected["NumDF"])
    for column in ("Sum Sq", "Mean Sq", "DenDF", "F value", "Pr(>F)"):
        np.testing.assert_allclose(ours[column], expected[column], rtol=RTOL, err_msg=column)


# -- anova ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ddf", ["satterthwaite", "kenward_roger"])
@pytest.mark.parametrize("anova_type", [1, 2, 3])
@pytest.mark.parametrize("name", TABLES)
def test_anova_matches_lmertest(name, anova_type, ddf):
    expected = _table(reference(name)["anova"][f"type{anova_type}"][ddf]["value"])
    ours = compared(name).anova(type=anova_type, ddf=ddf)
    assert list(ours.index) == list(expected.index)  # R's term labels; empty for intercept-only models
    _assert_f_table(ours, expected)


def test_seed_orthodont_type3_anova():
    """003_26c4468a360c7369.txt: anova(ort4), Type III with Satterthwaite's method."""
    table = fitted("orthodont_intercept").anova()
    assert list(table.index) == ["age", "Sex", "age:Sex"]
    np.testing.assert_allclose(table["F value"], [108.3559, 0.4507, 6.3027], atol=5e-5)
    np.testing.assert_allclose(table["DenDF"], [79.00, 103.99, 79.00], atol=5e-3)
    assert list(table["NumDF"]) == [1, 1, 1]
    np.testing.assert_allclose(table["Sum Sq"], [208.266, 0.866, 12.114], atol=5e-4)
    np.testing.assert_allclose(table["Pr(>F)"].iloc[1:], [0.5035, 0.0141], atol=5e-5)
    np.testing.assert_allclose(table["Mean Sq"], table["F value"] * fitted("orthodont_intercept").sigma ** 2)


def test_anova_term_labels_follow_r():
    """R orders an interaction's variables by their first appearance in the formula (Sex:age)."""
    m = models.fit("Orthodont", "distance ~ Sex + age:Sex + (1 | Subject)")[1]
    assert list(m.anova().index) == ["Sex", "Sex:age"]
    assert m.anova().loc["Sex:age", "NumDF"] == 2


def test_rank_deficient_term_gets_an_empty_row():
    """As lmerTest: a term whose columns were all dropped is listed with missing values."""
    m = models.fit(models.sleepstudy_rankdef, "Reaction ~ Days + Days2 + (1 | Subject)")[1]
    table = m.anova(type=3)
    assert list(table.index) == ["Days", "Days2"]
    assert table.loc["Days2"].isna().all()
    assert table.loc["Days", "NumDF"] == 1


def test_anova_rejects_unknown_type_and_ddf():
    m = fitted("orthodont_intercept")
    with pytest.raises(ValueError, match="type"):
        m.anova(type=4)
    with pytest.raises(ValueError, match="ddf"):
        m.anova(ddf="lme4")


def test_kenward_roger_needs_a_reml_fit():
    m = fitted("orthodont_intercept").refit(reml=False)
    with pytest.raises(ValueError, match="REML"):
        m.anova(ddf="kenward-roger")


# -- contrasts -----------------------------------------------------------------------------------------------
CONTRASTS = [(name, contrast) for name in TABLES for contrast in reference(name)["contrasts"]]


@pytest.mark.parametrize("ddf", ["satterthwaite", "kenward_roger"])
@pytest.mark.parametrize(("name", "contrast"), CONTRASTS)
def test_contrast_f_test_matches_contest(name, contrast, ddf):
    block = reference(name)["contrasts"][contrast]
    ours = compared(name).contrast(np.array(block["L"], dtype=float), ddf=ddf)
    _assert_f_table(ours, _table(block["f_test"][ddf]["value"]))


@pytest.mark.parametrize(
    ("name", "contrast"), [c for c in CONTRASTS if len(reference(c[0])["contrasts"][c[1]]["L"]) == 1]
)
@pytest.mark.parametrize("ddf", ["satterthwaite", "kenward_roger"])
def test_contrast_t_test_matches_contest(name, contrast, ddf):
    block = reference(name)["contrasts"][contrast]
    m = compared(name)
    row = np.array(block["L"][0], dtype=float)
    by_name = dict(zip(m.fixef.index, row))
    expected = _table(block["t_test"][ddf]["value"])
    for given in (row, {k: v for k, v in by_name.items() if v != 0}, pd.Series(by_name)):
        ours = m.contrast(given, joint=False, ddf=ddf)
        assert list(ours.columns) == list(expected.columns)
        for column in expected.columns:
            np.testing.assert_allclose(ours[column], expected[column], rtol=RTOL, err_msg=column)


def test_contrast_rows_from_a_data_frame_keep_their_labels():
    m = fitted("orthodont_intercept")
    rows = pd.DataFrame({"SexFemale": [1.0, 0.0], "age:SexFemale": [11.0, 1.0]}, index=["age11", "slope"])
    table = m.contrast(rows, joint=False, level=0.9)
    assert list(table.index) == ["age11", "slope"]
    coef = m.coef_table()
    assert table.loc["slope", "Estimate"] == pytest.approx(coef.loc["age:SexFemale", "Estimate"])
    assert table.loc["slope", "df"] == pytest.approx(coef.loc["age:SexFemale", "df"])
    width = table.loc["slope", "upper"] - table.loc["slope", "Estimate"]
    from scipy import stats

    expected = stats.t.ppf(0.95, coef.loc["age:SexFemale", "df"]) * coef.loc["age:SexFemale", "Std. Error"]
    assert width == pytest.approx(expected)


def test_contrast_errors_name_the_problem():
    m = fitted("orthodont_intercept")
    with pytest.raises(ValueError, match="unknown fixed effects 'Sexx'"):
        m.contrast({"Sexx": 1})
    with pytest.raises(ValueError, match="4 columns"):
        m.contrast([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="4 columns"):
        m.contrast(np.ones((2, 5)))
    with pytest.raises(ValueError, match="missing or infinite"):
        m.contrast([1.0, np.nan, 0.0, 0.0])
    with pytest.raises(ValueError, match="ddf"):
        m.contrast([0, 1, 0, 0], ddf="kr")
    with pytest.raises(ValueError, match="level"):
        m.contrast([0, 1, 0, 0], joint=False, level=95)


# -- estimate (SAS ESTIMATE) ---------------------------------------------------------------------------------
def test_sires_estimate_matches_proc_mixed():
    """000_b255e0ec358448de.txt: estimate "mean" intercept 1 / cl -> 82.55, SE 5.9114, 4 df, (66.1373,
    98.9627); the containment df is PROC MIXED's default."""
    procmixed = json.loads((FIXTURES / "sires_procmixed.json").read_text())["estimate_mean"]
    m = fitted("sires")
    table = m.estimate({"(Intercept)": 1}, label="mean")
    assert list(table.columns) == [
        "Estimate", "Standard Error", "DF", "t Value", "Pr > |t|", "Alpha", "Lower", "Upper"
    ]  # fmt: skip
    row = table.loc["mean"]
    assert row["DF"] == procmixed["df"] == 4
    assert row["Alpha"] == 0.05
    for ours, key in (("Estimate", "estimate"), ("Standard Error", "se"), ("t Value", "t_value"),
                      ("Pr > |t|", "p_value"), ("Lower", "lower"), ("Upper", "upper")):  # fmt: skip
        assert row[ours] == pytest.approx(procmixed[key], rel=1e-6), ours
    assert (row["Estimate"], row["Standard Error"]) == (pytest.approx(82.55), pytest.approx(5.9114, abs=5e-5))
    assert (row["Lower"], row["Upper"]) == (
        pytest.approx(66.1373, abs=5e-5),
        pytest.approx(98.9627, abs=5e-5),
    )


def test_estimate_labels_rows_and_levels():
    m = fitted("orthodont_intercept")
    table = m.estimate(
        [{"SexFemale": 1}, {"age": 1}], label=["girls", "slope"], level=0.9, ddf="satterthwaite"
    )
    assert list(table.index) == ["girls", "slope"]
    assert (table["Alpha"] == 0.1).all()
    coef = m.coef_table()
    np.testing.assert_allclose(table["DF"], coef.loc[["SexFemale", "age"], "df"])
    with pytest.raises(ValueError, match="labels"):
        m.estimate([{"SexFemale": 1}, {"age": 1}], label="one")


# -- containment df (SAS DDFM=CONTAIN) -----------------------------------------------------------------------
def test_containment_df_split_plot_oats():
    """Oats split plot, varieties on whole plots (Block:Variety), nitrogen on sub-plots.  With nitro as a
    4-level factor these are the classical split-plot error df, whole-plot (6-1)(3-1) = 10 and sub-plot
    3 (6-1)(4-1) = 45 (Yates 1935; Venables & Ripley, MASS 4th ed. sec. 6.7, aov(Y ~ N*V + Error(B/V)),
    and R's aov here), which SAS's containment method reproduces for a balanced split plot."""
    data = mm.datasets.load("Oats")
    data["N"] = pd.Categorical(data["nitro"].astype(str))
    m = mm.lmer("yield ~ Variety * N + (1 | Block/Variety)", data)
    table = m.anova(ddf="containment")
    assert list(table["DenDF"]) == [10.0, 45.0, 45.0]
    assert m.containment_df.by_term["(Intercept)"] == 5.0  # Block
    # for a balanced design Satterthwaite's df are these exact df too
    np.testing.assert_allclose(m.anova()["DenDF"], [10.0, 45.0, 45.0], rtol=1e-5)


def test_containment_df_with_numeric_nitro_equals_balanced_satterthwaite():
    """The fixture's Oats model (nitro numeric: 1 + 2 df of X in the sub-plot stratum), where n - rank([X Z])
    = 72 - 21 = 51; lmerTest's type 1 Satterthwaite df of this balanced design are the same."""
    m = fitted("oats")
    assert m.containment_df.by_term == {
        "(Intercept)": 5.0,
        "Variety": 10.0,
        "nitro": 51.0,
        "Variety:nitro": 51.0,
    }
    satterthwaite = _table(reference("oats")["anova"]["type1"]["satterthwaite"]["value"])["DenDF"]
    np.testing.assert_allclose(m.anova(type=1, ddf="containment")["DenDF"], satterthwaite, rtol=1e-6)


def test_containment_df_of_other_designs():
    assert fitted("sires").containment_df.by_term == {"(Intercept)": 4.0}
    machines = fitted("machines").containment_df
    assert machines.by_term == {"(Intercept)": 5.0, "Machine": 10.0}  # Worker, then Worker:Machine
    slope = fitted("sleepstudy_slope").containment_df
    assert slope.contributions == {"Subject": 17, "Days:Subject": 17}
    assert slope.by_term == {"(Intercept)": 17.0, "Days": 17.0}
    ortho = fitted("orthodont_intercept")
    # Sex is not syntactically contained in Subject: the residual df, as SAS without SUBJECT=Subject(Sex)
    assert ortho.containment_df.by_term == {"(Intercept)": 25.0, "age": 79.0, "Sex": 79.0, "age:Sex": 79.0}
    assert list(ortho.coef_table("containment")["df"]) == [25.0, 79.0, 79.0, 79.0]


@pytest.mark.parametrize("name", ["oats", "sleepstudy_slope", "penicillin", "pastes", "machines", "cake"])
def test_rank_contributions_match_dense_ranks(name):
    """The ranks from the cross-product blocks equal numpy's rank of the dense [X Z_1 .. Z_i]."""
    m = fitted(name)
    blocks = []
    for effect in random_effects(m):
        block = m.frame.blocks[effect.term]
        z = _dense_z(block)
        columns = [level * block.ncols + c for level in range(block.nlevels) for c in effect.columns]
        blocks.append(z[:, columns])
    ranks = [np.linalg.matrix_rank(np.hstack([m.frame.x, *blocks[:i]])) for i in range(len(blocks) + 1)]
    assert list(m.containment_df.contributions.values()) == list(np.diff(ranks))
    assert m.containment_df.residual == m.nobs - ranks[-1]


def test_containment_f_and_t_use_the_term_df():
    m = fitted("oats")
    contrast = m.contrast({"nitro": 1, "VarietyVictory:nitro": 1}, ddf="containment", joint=False)
    assert contrast["df"].iloc[0] == 51.0  # the last term with a nonzero coefficient: Variety:nitro
    variety = m.contrast([{"VarietyMarvellous": 1}, {"VarietyVictory": 1}], ddf="containment")
    assert variety["DenDF"].iloc[0] == 10.0 and variety["NumDF"].iloc[0] == 2
    satterthwaite = m.contrast([{"VarietyMarvellous": 1}, {"VarietyVictory": 1}])
    assert variety["F value"].iloc[0] == pytest.approx(satterthwaite["F value"].iloc[0], rel=1e-12)


# -- residual and asymptotic ---------------------------------------------------------------------------------
def test_residual_and_asymptotic_anova():
    m = fitted("orthodont_intercept")
    satterthwaite = m.anova()
    residual = m.anova(ddf="residual")
    asymptotic = m.anova(ddf="asymptotic")
    assert (residual["DenDF"] == 104).all()
    assert np.isinf(asymptotic["DenDF"]).all()
    np.testing.assert_allclose(residual["F value"], satterthwaite["F value"], rtol=1e-12)
    from scipy import stats

    np.testing.assert_allclose(asymptotic["Pr(>F)"], stats.chi2.sf(asymptotic["F value"], 1))
    coef = m.coef_table("asymptotic")
    np.testing.assert_allclose(coef["Pr(>|t|)"], 2 * stats.norm.sf(np.abs(coef["t value"])))


def test_model_without_fixed_effects():
    m = models.fit("Dyestuff", "Yield ~ 0 + (1 | Batch)")[1]
    assert m.anova().empty and m.coef_table().empty
    assert "No fixed effect coefficients" in str(m.summary())
