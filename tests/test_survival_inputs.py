"""Degenerate input to the survival functions: one line naming the problem, or an explicit NaN
with its reason, never a plausible number."""

import numpy as np
import pandas as pd
import pytest

from carotidkit.io import CarotidkitError
from carotidkit.survival import calibration as cal
from carotidkit.survival import cox as coxm
from carotidkit.survival import curves
from carotidkit.survival.discrimination import bootstrap_c, c_index, time_dependent_auc


def _data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    t = rng.exponential(np.exp(-0.5 * x)) * 5
    c = rng.uniform(2, 12, n)
    return pd.DataFrame(
        {"t": np.minimum(t, c), "e": (t <= c).astype(int), "x": x, "comp": 0, "risk": 1 / (1 + np.exp(-x - 1))}
    )


def _calib(d, **kw):
    return cal.calibration(d.risk, d.t, d.e, 5.0, n_boot=0, **kw)


CALLS = {
    "c_index": lambda d: c_index(d, "t", "e", "x"),
    "bootstrap_c": lambda d: bootstrap_c(d, "t", "e", ["x"], n_boot=10),
    "td_auc": lambda d: time_dependent_auc(d, "t", "e", "x", [3.0]),
    "cox_table": lambda d: coxm.cox_table(d, "t", "e", ["x"]),
    "ph_test": lambda d: coxm.ph_test(d, "t", "e", ["x"]),
    "fine_gray": lambda d: coxm.fine_gray(d, "t", "e", "comp", ["x"]),
    "calibration": _calib,
    "cumulative_incidence": lambda d: curves.cumulative_incidence(d, "t", "e", "comp"),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_negative_times_are_refused_by_every_function(name):
    d = _data()
    d.loc[7, "t"] = -1.0
    with pytest.raises(CarotidkitError, match="row 7: negative time"):
        CALLS[name](d)


@pytest.mark.parametrize("name", list(CALLS))
def test_an_event_at_time_zero_is_refused(name):
    d = _data()
    d.loc[3, ["t", "e"]] = [0.0, 1]
    with pytest.raises(CarotidkitError, match="row 3: an event at time 0"):
        CALLS[name](d)


@pytest.mark.parametrize("name", [n for n in CALLS if n != "cumulative_incidence"])
def test_no_events_is_refused(name):
    d = _data().assign(e=0)
    with pytest.raises(CarotidkitError, match="0 events|no event"):
        CALLS[name](d)


@pytest.mark.parametrize("name", ["c_index", "td_auc", "cox_table", "ph_test", "fine_gray"])
def test_one_subject_is_refused(name):
    with pytest.raises(CarotidkitError, match="1 subject"):
        CALLS[name](_data().iloc[:1])


@pytest.mark.parametrize("name", ["c_index", "bootstrap_c", "td_auc", "ph_test"])
def test_nan_markers_are_refused_with_their_count(name):
    d = _data()
    d.loc[[2, 5, 9], "x"] = np.nan
    with pytest.raises(CarotidkitError, match="'x' has 3 missing values"):
        CALLS[name](d)


def test_nan_predicted_risk_is_refused():
    d = _data()
    d.loc[[1, 4], "risk"] = np.nan
    with pytest.raises(CarotidkitError, match="'risk' has 2 missing values"):
        _calib(d)


@pytest.mark.parametrize("name", ["c_index", "td_auc", "ph_test", "cox_table"])
def test_a_constant_marker_is_refused(name):
    with pytest.raises(CarotidkitError, match="constant"):
        CALLS[name](_data().assign(x=1.0))


def test_constant_predicted_risk_gives_nan_slope_and_curve_with_a_reason():
    s = _calib(_data().assign(risk=0.3))["summary"].set_index("metric")
    assert np.isnan(s.loc["calibration_slope", "estimate"]) and np.isnan(s.loc["ici", "estimate"])
    assert "constant" in s.loc["calibration_slope", "note"]
    assert np.isfinite(s.loc["o_e", "estimate"])  # O/E is still defined


def test_no_event_before_the_horizon_is_refused_by_calibration():
    d = _data()
    d.loc[d.t <= 5.0, "e"] = 0
    with pytest.raises(CarotidkitError, match="no event by the horizon"):
        _calib(d)


def test_ph_test_refuses_all_events_at_one_time():
    """R's cox.zph stops (singular); lifelines' approximate test returned p = 0.031."""
    d = _data()
    d["e"] = 0
    d.loc[:29, ["t", "e"]] = [4.0, 1]
    d.loc[30:, "t"] = np.linspace(0.5, 9, len(d) - 30)
    with pytest.raises(CarotidkitError, match="singular"):
        coxm.ph_test(d, "t", "e", ["x"])


def test_event_indicator_must_be_zero_or_one():
    d = _data()
    d.loc[11, "e"] = 2
    with pytest.raises(CarotidkitError, match="row 11: value 2"):
        c_index(d, "t", "e", "x")


def test_nri_refuses_unordered_text_labels_and_unknown_labels():
    d = _data(400)
    old = np.where(d.risk < 0.6, "low", "high")
    new = np.where(d.risk < 0.7, "low", "high")
    with pytest.raises(CarotidkitError, match="must be ordered"):
        cal.reclassification(d.risk, d.risk * 1.1, d.t, d.e, 5.0, None, old, new, n_boot=0)
    with pytest.raises(CarotidkitError, match="label 'medium' is not in the category order"):
        cal.reclassification(
            d.risk,
            d.risk * 1.1,
            d.t,
            d.e,
            5.0,
            None,
            old,
            np.where(new == "high", "medium", new),
            order=["low", "high"],
            n_boot=0,
        )


def test_a_group_without_events_has_zero_cumulative_incidence():
    d = _data().assign(e=0)
    assert curves.cif_at(d, "t", "e", "comp", [1.0, 5.0]).tolist() == [0.0, 0.0]
