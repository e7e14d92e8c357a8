"""Issue 23: the realistic video simulator, the handcrafted baseline and VD reported like the paper."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from carotidkit.synth import anatomy as A
from carotidkit.synth import cine
from carotidkit.synth.dataset import ACQUISITION, acquisition_draw
from carotidkit.vd import agreement as ag
from carotidkit.vd.baseline import FEATURES, cross_fit_baseline, loop_features

# Shrout & Fleiss (1979), Psychol Bull 86:420, Table 2: 6 targets rated by 4 judges, and their
# published ICC(1,1) = .17, ICC(2,1) = .29, ICC(3,1) = .71 (Table 4)
SHROUT_FLEISS = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])


def test_icc_reproduces_shrout_and_fleiss_published_example():
    r = ag.icc(SHROUT_FLEISS)
    assert round(r["icc1"], 2) == 0.17
    assert round(r["icc_a1"], 2) == 0.29
    assert round(r["icc_c1"], 2) == 0.71
    with pytest.raises(ValueError, match="at least 2 targets"):
        ag.icc(np.array([[1.0, np.nan], [2.0, 3.0]]))


def test_bland_altman_and_within_fold_standardisation():
    ba = ag.bland_altman([1.0, 2.0, 3.0, 4.0], [0.5, 2.5, 2.0, 3.0])
    d = np.array([0.5, -0.5, 1.0, 1.0])
    assert ba["bias"] == pytest.approx(d.mean())
    assert ba["loa_high"] - ba["loa_low"] == pytest.approx(2 * 1.96 * d.std(ddof=1))
    # two folds on different scales: after standardising within fold both have mean 0, SD 1
    v = pd.Series([1.0, 2.0, 3.0, 10.0, 30.0, 50.0])
    f = pd.Series([0, 0, 0, 1, 1, 1])
    z = ag.within_fold_z(v, f)
    assert np.allclose(z.groupby(f).mean(), 0) and np.allclose(z.groupby(f).std(ddof=0), 1)
    assert np.allclose(z[:3].to_numpy(), z[3:].to_numpy())  # same ranks -> same scores


def test_left_right_agreement_is_high_for_one_signal_and_absent_for_noise():
    rng = np.random.default_rng(0)
    n = 200
    s = rng.normal(size=n)
    rows = lambda noise: pd.DataFrame(  # noqa: E731
        {
            "subject_id": np.repeat(np.arange(n), 2),
            "side": ["left", "right"] * n,
            "fold": np.repeat(np.arange(n) % 2, 2),
            "side_z": np.repeat(s, 2) + noise * rng.normal(size=2 * n),
        }
    )
    _, good = ag.left_right(rows(0.3), n_boot=50)
    _, bad = ag.left_right(rows(50.0), n_boot=50)
    g, b = good.set_index("metric").estimate, bad.set_index("metric").estimate
    assert g["icc_a1_left_right"] > 0.85 and abs(b["icc_a1_left_right"]) < 0.2
    assert good.n.iloc[0] == n
    lo, hi = good.set_index("metric").loc["icc_a1_left_right", ["ci_low", "ci_high"]]
    assert lo < g["icc_a1_left_right"] < hi


def _loop(r0_mm=3.2, dist=0.08, seed=0, **acq):
    anat = A.Anatomy(depth_mm=40, width_mm=40, center_mm=18, lumen_radius_mm=r0_mm)
    clip = cine.render_clip(anat, np.random.default_rng(seed), size=64, distension=dist, seconds=1.4, **acq)
    return clip


def test_loop_features_measure_the_simulated_lumen_and_its_distension():
    for r0, dist in [(2.8, 0.05), (3.4, 0.10)]:
        clip = _loop(r0, dist)
        f = loop_features(clip.frames, clip.pixel_spacing_mm)
        assert f["lumen_mm"] == pytest.approx(2 * r0, rel=0.15), (r0, f)
        assert f["distension"] == pytest.approx(dist, abs=0.035), (dist, f)
    assert set(FEATURES) <= set(f)
    with pytest.raises(ValueError, match="at least 2 frames"):
        loop_features(np.zeros((1, 8, 8)))


def test_acquisition_variation_is_drawn_within_its_documented_ranges_and_off_at_zero():
    assert acquisition_draw(np.random.default_rng(0), 0.0, 128, 35) == {}
    draws = [acquisition_draw(np.random.default_rng(i), 1.0, 128, 35) for i in range(200)]
    dr = np.array([d["dynamic_range_db"] for d in draws])
    fov = np.array([d["fov_mm"] for d in draws])
    assert 42 <= dr.min() and dr.max() <= 62 and dr.std() > 3
    assert 17 <= fov.min() and fov.max() <= 24
    assert set(draws[0]) - {"probe_tilt"} <= set(ACQUISITION) | {"tgc_compensation"}
    assert draws[0]["tgc_db"].shape == (128,) and draws[0]["motion_mm"].shape == (35, 2)
    # the operator's gain brightens the loop (it is applied after the display reference)
    dark, bright = _loop(display_gain_db=-6.0), _loop(display_gain_db=6.0)
    assert np.median(bright.frames) > np.median(dark.frames) + 10


def test_local_damage_leaves_perivascular_brightness_alone_and_changes_only_texture_structure():
    rng = np.random.default_rng(1)
    vd = rng.normal(size=300)
    glob = [A.random_anatomy(np.random.default_rng(i), vd=v, vd_pattern="global") for i, v in enumerate(vd)]
    loc = [A.random_anatomy(np.random.default_rng(i), vd=v, vd_pattern="local") for i, v in enumerate(vd)]
    assert stats.spearmanr(vd, [a.peri_echo for a in glob])[0] > 0.6
    assert abs(stats.spearmanr(vd, [a.peri_echo for a in loc])[0]) < 0.15
    assert stats.spearmanr(vd, [a.peri_far_laminar for a in loc])[0] == pytest.approx(1.0)
    assert stats.spearmanr(vd, [a.peri_far_echo_db for a in loc])[0] > 0.99
    assert all(a.peri_far_laminar is None and a.peri_far_echo_db == 0 for a in glob)
    assert A.damage_texture(2.0, 0.0) == A.damage_texture(-2.0, 0.0) == 0.5  # no information at 0
    w = [A.damage_texture(v) for v in (-2, 0, 2)]
    assert w[0] < 0.06 and w[1] == 0.5 and w[2] > 0.94
    # in the image: the far-wall band's grey-level spread is the same, its structure is not
    z, x = np.linspace(10, 30, 240), np.linspace(5, 45, 480)
    spread, along, across = [], [], []
    for lam in (0.0, 1.0):
        amps, ratios = [], []
        for seed in range(6):
            amp, lab, _ = A.echo_map(A.Anatomy(center_mm=20, peri_far_laminar=lam), z, x, np.random.default_rng(seed))
            la = np.log(amp)
            band = (lab == A.LABELS["perivascular"]) & (z[:, None] > 20)
            amps.append(la[band].std())
            rows, cols = np.where(band)
            r0, r1, c0, c1 = rows.min() + 2, rows.max() - 8, 20, 460
            blk = la[r0:r1, c0:c1] - la[r0:r1, c0:c1].mean()
            lag = 24  # 2 mm along the wall; across it 0.5 mm (6 rows)
            h = (blk[:, lag:] * blk[:, :-lag]).mean() / blk.var()
            v = (blk[6:, :] * blk[:-6, :]).mean() / blk.var()
            ratios.append((h, v))
        spread.append(np.mean(amps))
        along.append(np.mean([r[0] for r in ratios]))
        across.append(np.mean([r[1] for r in ratios]))
    assert spread[1] == pytest.approx(spread[0], rel=0.15)
    assert along[1] > along[0] + 0.2  # striations: correlated far along the wall
    assert across[1] < across[0] + 0.1


def test_baseline_is_cross_fitted_on_the_given_folds():
    rng = np.random.default_rng(0)
    n = 120
    feats = pd.DataFrame({"subject_id": np.repeat(np.arange(n), 2), "clip_id": np.arange(2 * n)})
    y = rng.integers(0, 2, n)
    for k, c in enumerate(FEATURES):
        feats[c] = np.repeat(y * (k == 0) * 2.0, 2) + rng.normal(size=2 * n)
    folds = pd.DataFrame({"subject_id": np.arange(n), "fold": np.arange(n) % 3, "label": y})
    bl = cross_fit_baseline(feats, folds)
    assert len(bl) == n and bl.subject_id.is_unique
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(bl.merge(folds).label, bl.baseline_logit) > 0.8
    # held-out: changing one fold's labels does not move that fold's own predictions
    folds2 = folds.assign(label=np.where(folds.fold == 0, 1 - folds.label, folds.label))
    bl2 = cross_fit_baseline(feats, folds2)
    f0 = bl.fold == 0
    assert np.allclose(bl[f0].baseline_logit, bl2[bl2.fold == 0].baseline_logit)


def test_evaluate_adds_accuracy_and_a_paired_delta_auc():
    from sklearn.metrics import accuracy_score, roc_auc_score

    from carotidkit.vd.stage import evaluate

    rng = np.random.default_rng(0)
    n = 300
    y = rng.integers(0, 2, n)
    vd = pd.DataFrame({"subject_id": np.arange(n), "label": y, "vd_logit": 1.5 * y - 0.75 + rng.normal(size=n)})
    base = pd.DataFrame({"subject_id": np.arange(n), "baseline_logit": 0.3 * y + rng.normal(size=n)})
    m = evaluate(vd, n_boot=200, baseline=base).set_index("metric")
    assert m.estimate["accuracy"] == pytest.approx(accuracy_score(y, vd.vd_logit > 0))
    assert m.estimate["auc_baseline"] == pytest.approx(roc_auc_score(y, base.baseline_logit))
    assert m.estimate["delta_auc"] == pytest.approx(m.estimate["auc"] - m.estimate["auc_baseline"])
    assert m.ci_low["delta_auc"] > 0  # the network is clearly ahead here
    with pytest.raises(ValueError, match="have no baseline"):
        evaluate(vd, n_boot=0, baseline=base.iloc[:10])
