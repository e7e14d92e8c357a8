"""SCORE2 / SCORE2-OP / SCORE2-Diabetes reproduce the published worked examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from carotidkit.io import CarotidkitError
from carotidkit.survival import esc_category, esc_risk, hba1c_pct_to_mmol_mol, score2, score2_diabetes, score2_table


def _person(age, sex, **kw):
    base = dict(age_years=age, sex=sex, smoking=1, sbp_mmhg=140, tc_mmol_l=6.3, hdl_mmol_l=1.4, diabetes=0)
    base.update(kw)
    return base


# SCORE2 supplement: 50-year-old current smoker, SBP 140, TC 6.3, HDL 1.4, no diabetes
SCORE2_EXAMPLE = {"low": (6.3, 4.3), "moderate": (8.1, 5.2), "high": (8.8, 7.1), "very high": (15.1, 14.1)}


@pytest.mark.parametrize("region", list(SCORE2_EXAMPLE))
def test_score2_worked_example(region):
    d = pd.DataFrame([_person(50, "male"), _person(50, "female")])
    got = (100 * score2(d, region)).round(1).tolist()
    assert got == list(SCORE2_EXAMPLE[region])


def test_score2_op_worked_example():
    # SCORE2-OP supplement Table 3: 75-year-old smoker, SBP 140, TC 5.5, HDL 1.3, low-risk region
    d = pd.DataFrame([_person(75, s, tc_mmol_l=5.5, hdl_mmol_l=1.3) for s in ("male", "female")])
    assert (100 * score2(d, "low")).round(0).tolist() == [19, 15]
    assert (100 * score2(d, "moderate")).round(0).tolist() == [24, 20]
    assert score2_table(d).score2_model.tolist() == ["SCORE2-OP"] * 2


# SCORE2-Diabetes graphical abstract: 60-year-old non-smoker, SBP 140, TC 5.5, HDL 1.3
DM_EXAMPLES = [
    (60, 50, 90, {"low": (8.4, 6.1), "moderate": (11.0, 7.6), "high": (12.5, 11.1), "very high": (20.3, 20.6)}),
    (50, 70, 60, {"low": (12.9, 9.8), "moderate": (17.2, 12.7), "high": (21.0, 20.4), "very high": (31.2, 34.0)}),
]


@pytest.mark.parametrize("dx_age,hba1c,egfr,expected", DM_EXAMPLES)
def test_score2_diabetes_worked_examples(dx_age, hba1c, egfr, expected):
    d = pd.DataFrame(
        [
            _person(
                60,
                s,
                smoking=0,
                tc_mmol_l=5.5,
                hdl_mmol_l=1.3,
                diabetes=1,
                hba1c_mmol_mol=hba1c,
                egfr_ml_min=egfr,
                age_at_diabetes_years=dx_age,
            )
            for s in ("male", "female")
        ]
    )
    for region, exp in expected.items():
        assert (100 * score2_diabetes(d, region)).round(1).tolist() == list(exp), region


def test_hba1c_master_equation_and_pct_input():
    assert hba1c_pct_to_mmol_mol(6.5) == pytest.approx(47.5, abs=0.1)
    assert hba1c_pct_to_mmol_mol(2.152) == pytest.approx(0.0)
    d = pd.DataFrame(
        [_person(60, "male", smoking=0, diabetes=1, hba1c_pct=6.5, egfr_ml_min=80, age_at_diabetes_years=55)]
    )
    d2 = d.drop(columns="hba1c_pct").assign(hba1c_mmol_mol=float(hba1c_pct_to_mmol_mol(6.5)))
    assert score2_diabetes(d).iloc[0] == pytest.approx(score2_diabetes(d2).iloc[0])


def test_out_of_range_ages_and_missing_inputs_are_flagged_never_silent():
    d = pd.DataFrame([_person(35, "male"), _person(55, "female", sbp_mmhg=np.nan), _person(55, "male")])
    t = score2_table(d)
    assert t.score2_flag.tolist() == ["age<40 extrapolated", "missing: sbp_mmhg", ""]
    assert np.isnan(t.score2_risk.iloc[1]) and np.isfinite(t.score2_risk.iloc[0])
    clamp = score2_table(d, below_range="clamp").score2_risk.iloc[0]
    at40 = score2(pd.DataFrame([_person(40, "male")])).iloc[0]
    assert clamp == pytest.approx(at40)
    assert np.isnan(score2_table(d, below_range="nan").score2_risk.iloc[0])


def test_esc_categories_use_age_specific_thresholds():
    cats = esc_category([0.03, 0.03, 0.03, 0.12, 0.12], [45, 55, 72, 55, 72]).astype(str).tolist()
    assert cats == ["high", "low-to-moderate", "low-to-moderate", "very high", "high"]


def test_esc_risk_uses_score2_diabetes_where_it_applies():
    d = pd.DataFrame([_person(60, "male", diabetes=1), _person(60, "male"), _person(72, "male", diabetes=1)])
    d["hba1c_mmol_mol"], d["egfr_ml_min"], d["age_at_diabetes_years"] = 50, 90, 55
    assert esc_risk(d).score2_model.tolist() == ["SCORE2-Diabetes", "SCORE2", "SCORE2-OP"]


def test_bad_inputs_give_one_line_errors():
    d = pd.DataFrame([_person(50, "M")])
    with pytest.raises(CarotidkitError, match="sex"):
        score2(d)
    with pytest.raises(CarotidkitError, match="region"):
        score2(pd.DataFrame([_person(50, "male")]), region="medium")
    with pytest.raises(CarotidkitError, match="hdl_mmol_l"):
        score2(pd.DataFrame([_person(50, "male")]).drop(columns="hdl_mmol_l"))
