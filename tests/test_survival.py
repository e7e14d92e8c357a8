"""Survival statistics agree with lifelines and scikit-survival on their bundled data sets, and
recover planted values on simulated data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from lifelines.datasets import load_rossi
from lifelines.utils import concordance_index

from carotidkit.survival import bootstrap_c, c_index, curves, time_dependent_auc
from carotidkit.survival import calibration as cal
from carotidkit.survival import cox as coxm


@pytest.fixture(scope="module")
def whas():
    from sksurv.datasets import load_whas500

    X, y = load_whas500()
    # censorings tied with an event moved just after it: there G(T-) (ours) equals G(T)
    # (scikit-survival's weight), so the two must agree exactly; ties are tested separately
    t = y["lenfol"].astype(float).copy()
    ev_times = set(t[y["fstat"]])
    tied = ~y["fstat"] & np.isin(t, list(ev_times))
    t[tied] += 0.5
    y = y.copy()
    y["lenfol"] = t
    return pd.DataFrame(
        {"t": t, "e": y["fstat"].astype(int), "age": X.age.to_numpy(float), "bmi": X.bmi.to_numpy(float)}
    ), y


def test_uno_weights_use_censoring_survival_just_before_the_event():
    """An event tied with a censoring: its Uno weight is 1/G(T-)^2, G(T-) = 1 before any censoring."""
    d = pd.DataFrame({"t": [1.0, 2.0, 2.0, 3.0, 4.0], "e": [0, 1, 0, 1, 0], "r": [5.0, 4.0, 3.0, 2.0, 1.0]})
    # G: censoring at 1 (5 at risk) -> 0.8; at t=2 the event leaves first, then 1 censoring of 3 -> 0.8 * 2/3
    w2, w3 = 1 / 0.8**2, 1 / (0.8 * 2 / 3) ** 2
    # pairs (event i, later j): i=t2 vs t3, t4 (and the tied censored t2) all concordant; i=t3 vs t4 concordant
    expect = (w2 * 3 + w3 * 1) / (w2 * 3 + w3 * 1)
    assert c_index(d, "t", "e", "r", "uno") == pytest.approx(expect)
    d.loc[2, "r"] = 4.5  # the tied censored subject now outranks the event: one discordant pair of weight w2
    assert c_index(d, "t", "e", "r", "uno") == pytest.approx((w2 * 2 + w3) / (w2 * 3 + w3))


@pytest.mark.parametrize("col", ["prio", "age", "fin"])
def test_harrell_matches_lifelines_on_rossi(col):
    d = load_rossi()
    assert c_index(d, "week", "arrest", col) == pytest.approx(concordance_index(d.week, -d[col], d.arrest), abs=1e-12)


@pytest.mark.parametrize("col", ["age", "bmi"])
def test_uno_and_td_auc_match_scikit_survival_on_whas500(whas, col):
    from sksurv.metrics import concordance_index_ipcw, cumulative_dynamic_auc

    d, y = whas
    assert c_index(d, "t", "e", col, "uno", tau=1500) == pytest.approx(
        concordance_index_ipcw(y, y, d[col].to_numpy(), tau=1500)[0], abs=1e-10
    )
    ours = time_dependent_auc(d, "t", "e", col, [365, 1000]).auc.to_numpy()
    theirs = cumulative_dynamic_auc(y, y, d[col].to_numpy(), [365, 1000])[0]
    np.testing.assert_allclose(ours, theirs, atol=1e-10)


def test_cox_table_matches_lifelines_on_rossi():
    d = load_rossi()
    tab, _ = coxm.cox_table(d, "week", "arrest", ["fin", "age", "prio"])
    ref = CoxPHFitter().fit(d[["week", "arrest", "fin", "age", "prio"]], "week", "arrest").summary
    np.testing.assert_allclose(tab.hr, ref["exp(coef)"], rtol=1e-8)
    np.testing.assert_allclose(tab.p, ref["p"], rtol=1e-6)


def test_bootstrap_point_estimate_and_paired_delta():
    d = load_rossi()
    b = bootstrap_c(d, "week", "arrest", ["prio", "age"], n_boot=300, reference="age")
    assert b.c_index.iloc[0] == pytest.approx(c_index(d, "week", "arrest", "prio"))
    row = b.iloc[0]
    assert row.ci_low < row.c_index < row.ci_high
    assert row.delta_c == pytest.approx(row.c_index - b.c_index.iloc[1])
    assert row.delta_ci_low > 0  # prio ranks re-arrest far better than age does (reversed)


def test_bootstrap_replicates_equal_resampled_c_index():
    """The matrix bootstrap equals computing C on an explicit resample with the same counts."""
    d = load_rossi().iloc[:150]
    rng = np.random.default_rng(0)
    w = rng.multinomial(len(d), np.full(len(d), 1 / len(d)))
    resampled = d.loc[d.index.repeat(w)]
    from carotidkit.survival import discrimination as D

    t, e, (r,) = D._arrays(d, "week", "arrest", ["prio"])
    ev, rw = D._pair_weights(t, e, np.inf, "harrell")
    num = den = 0.0
    for idx, comp, (conc,) in D._blocks(t, e, [r], ev, "harrell"):
        num += float(w[idx] @ conc @ w)
        den += float(w[idx] @ comp @ w)
    assert num / den == pytest.approx(c_index(resampled, "week", "arrest", "prio"), abs=1e-12)


def test_fine_gray_equals_cox_without_competing_events():
    d = coxm.simulate_fine_gray(600, seed=3, p=0.2)
    d["competing"] = 0
    fg, _ = coxm.fine_gray(d, "time", "event", "competing", ["x1", "x2"])
    cx, _ = coxm.cox_table(d, "time", "event", ["x1", "x2"])
    np.testing.assert_allclose(fg.shr, cx.hr, rtol=1e-6)


@pytest.mark.slow
def test_fine_gray_recovers_planted_subdistribution_hazard_ratios():
    d = coxm.simulate_fine_gray(1500, beta1=(0.5, -0.5), seed=11, p=0.25)
    fg, _ = coxm.fine_gray(d, "time", "event", "competing", ["x1", "x2"])
    assert (fg.ci_low < np.exp([0.5, -0.5])).all() and (np.exp([0.5, -0.5]) < fg.ci_high).all()
    cs, _ = coxm.cox_table(d, "time", "event", ["x1", "x2"])
    # the cause-specific HR of x2 is further from the SHR: competing events carry x2's effect
    assert abs(np.log(fg.shr.iloc[1]) + 0.5) < abs(np.log(cs.hr.iloc[1]) + 0.5)


def test_finegray_expansion_weights():
    d = pd.DataFrame({"t": [1.0, 2.0, 3.0, 4.0, 5.0], "e": [0, 1, 0, 1, 0], "c": [1, 0, 0, 0, 0], "x": [0, 1, 0, 1, 0]})
    long = coxm.finegray_expand(d, "t", "e", "c", ["x"])
    extra = long[long.id == 0].sort_values("start")
    # subject 0 (competing at t=1) stays in the risk set through the last event time (4)
    assert extra.stop.max() == 4.0 and (extra.weight <= 1).all()
    # censoring at t=3 (1 of 3 at risk: ids 2, 3, 4) leaves G = 2/3 after it
    assert extra.weight.iloc[-1] == pytest.approx(2 / 3)


def test_aalen_johansen_below_one_minus_km_with_competing_events():
    d = coxm.simulate_fine_gray(800, seed=2, p=0.3)
    ci = curves.cumulative_incidence(d, "time", "event", "competing")
    assert (ci.aalen_johansen <= ci.one_minus_km + 1e-9).all()
    assert ci.one_minus_km.iloc[-1] - ci.aalen_johansen.iloc[-1] > 0.05


def test_km_groups_and_trend():
    from carotidkit.synth.cohort import simulate_cohort

    c, t = simulate_cohort(3000, seed=4, vd_hr_per_sd=2.0)
    c = c.merge(t[["subject_id", "vd_true"]])
    c["q"] = curves.quantile_groups(c.vd_true, 4)
    km, risk = curves.km_table(c, "death_years", "death_event", "q")
    assert risk["0y"].tolist() == [750] * 4
    last = km.groupby("group").cum_incidence.last()
    assert last["Q4"] > last["Q1"]
    tests = curves.group_tests(c, "death_years", "death_event", "q")
    assert tests["trend_p"] < 1e-6 and tests["trend_hr_per_group"] > 1


def test_ipcw_observed_risk_equals_kaplan_meier():
    from lifelines import KaplanMeierFitter

    d = load_rossi()
    case, w = cal.ipcw_outcome(d, "week", "arrest", 40)
    km = KaplanMeierFitter().fit(d.week, d.arrest)
    assert np.sum(w * case) / np.sum(w) == pytest.approx(1 - km.survival_function_at_times(40).iloc[0], abs=1e-3)


def _survival_from_risk(p, horizon=10.0, seed=0):
    """Exponential event times whose risk by ``horizon`` is exactly ``p``; uniform censoring."""
    rng = np.random.default_rng(seed)
    rate = -np.log(1 - p) / horizon
    t_event = rng.exponential(1 / rate)
    t_cens = rng.uniform(5, 15, len(p))
    return np.minimum(t_event, t_cens), (t_event <= t_cens).astype(float)


def test_calibration_detects_miscalibration():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.02, 0.4, 4000)
    t, e = _survival_from_risk(p, seed=1)
    good = cal.calibration(p, t, e, 10.0, n_boot=20, n_boot_curve=5)["summary"].set_index("metric")
    bad = cal.calibration(np.clip(2 * p, 0, 0.99), t, e, 10.0, n_boot=20, n_boot_curve=5)["summary"].set_index("metric")
    g, b = good.estimate, bad.estimate
    assert abs(g.o_e - 1) < 0.08 and abs(g.calibration_slope - 1) < 0.2 and g.ici < 0.02
    assert abs(g.calibration_in_the_large) < 0.1 and b.calibration_in_the_large < -0.5
    assert b.o_e < 0.6 and b.ici > 0.05 and b.ipa < g.ipa
    assert good.loc["o_e", "ci_low"] < 1 < good.loc["o_e", "ci_high"] and bad.loc["o_e", "ci_high"] < 1
    assert (good.definition.str.len() > 10).all()


def test_reclassification_rewards_a_real_marker():
    rng = np.random.default_rng(1)
    x1, x2 = rng.standard_normal((2, 5000))
    p_true = 1 / (1 + np.exp(-(-2 + x1 + x2)))
    t, e = _survival_from_risk(p_true, seed=2)
    old = 1 / (1 + np.exp(-(-1.8 + 0.7 * x1)))
    new = p_true
    r = cal.reclassification(old, new, t, e, 10.0, n_boot=30).set_index("metric")
    assert r.loc["nri_continuous", "ci_low"] > 0 and r.loc["idi", "ci_low"] > 0
    assert r.loc["nri_continuous_km", "ci_low"] > 0
    case, w = cal.ipcw_outcome(pd.DataFrame({"t": t, "e": e}), "t", "e", 10.0)
    nb = cal.net_benefit({"old": old, "new": new}, case, w, thresholds=[0.2])
    nbv = nb.set_index("model").net_benefit
    assert nbv["new"] > nbv["old"]


def test_survival_stage_on_simulated_truth(tmp_path):
    """End to end on a simulated cohort with vd_true: tables present, VD's crude HR > 1."""
    from carotidkit import io
    from carotidkit.layout import RunLayout
    from carotidkit.survival.stage import run
    from carotidkit.synth.cohort import simulate_cohort

    c, t = simulate_cohort(1500, seed=5, vd_hr_per_sd=2.0)
    c = c.drop(columns=[k for k in c if k.startswith(("mi_", "cardiac_death_"))])  # death only: a quick run
    lay = RunLayout(tmp_path)
    io.write_parquet(lay.data.cohort, c)
    io.write_parquet(lay.data.cohort_truth, t)
    io.write_json(lay.data.manifest, {"synthetic": True, "paths": {"cohort": "cohort.parquet"}})
    res = run(run_dir=tmp_path, vd_source="truth", n_boot=100, progress=None)
    assert any(n.startswith("mi: no mi_event/mi_years columns") for n in res.notes)
    h = res.key_results.set_index("endpoint").loc["death"]
    assert h.hr_vd_per_sd_crude > 1.5 and h.c_vd > 0.6
    assert {"crude", "age + sex", "SCORE2-adjusted", "fully adjusted", "SCORE2 alone"} <= set(res.cox.model)
    assert lay.survival.key_results.exists() and lay.survival.cox.exists()
    assert "death" in res.headline and io.read_json(lay.survival.summary)["headline"] == res.headline
    assert set(res.ph.term) == {"vd_z", "score2_lp", "GLOBAL"} and res.ph.chi2.ge(0).all()
    assert {"nri_categorical_km", "nri_continuous_km"} <= set(res.reclassification.metric)
    assert {"calibration_in_the_large", "ici"} <= set(res.calibration.metric)
