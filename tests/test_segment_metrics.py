"""Segmentation metrics and the pixel-wise vote (numpy only)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from carotidkit.segment import metrics


def _disk(shape, cy, cx, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2


def test_dice_iou_known_values():
    a = np.zeros((10, 10), bool)
    a[:, :5] = True
    b = np.zeros((10, 10), bool)
    b[:, 2:7] = True
    assert metrics.dice(a, b) == pytest.approx(2 * 30 / 100)
    assert metrics.iou(a, b) == pytest.approx(30 / 70)
    assert metrics.dice(a, a) == 1.0 and metrics.dice(a, ~a) == 0.0
    assert metrics.dice(np.zeros((3, 3)), np.zeros((3, 3))) == 1.0


def test_per_plaque_detection_counts_components():
    t = _disk((64, 64), 20, 15, 5) | _disk((64, 64), 40, 45, 5)  # two plaques
    p = _disk((64, 64), 21, 16, 4) | _disk((64, 64), 5, 55, 2)  # finds one, one false
    found, n_true, hit, n_pred = metrics.plaque_matches(t, p)
    assert (found, n_true, hit, n_pred) == (1, 2, 1, 2)


def test_summary_separates_plaque_and_plaque_free_images():
    rng = np.random.default_rng(0)
    T, P = [], []
    for k in range(20):  # 10 plaque images predicted well, 10 free ones
        t = _disk((64, 64), 32, 32, 8) if k < 10 else np.zeros((64, 64), bool)
        p = _disk((64, 64), 32 + rng.integers(-2, 3), 32, 8) if k < 10 else np.zeros((64, 64), bool)
        if k in (10, 11):  # two false alarms
            p = _disk((64, 64), 10, 10, 3)
        T.append(t)
        P.append(p)
    df = metrics.per_image(np.array(T), np.array(P), px_area_mm2=np.full(20, 0.01))
    s = metrics.summarize(df, n_boot=200, seed=1).set_index("metric")
    assert 0.8 < s.loc["dice_mean", "estimate"] <= 1.0
    assert s.loc["false_alarm_rate", "estimate"] == pytest.approx(0.2)
    assert s.loc["false_alarm_rate", "n_images"] == 10 and s.loc["dice_mean", "n_images"] == 10
    assert s.loc["dice_mean", "ci_low"] <= s.loc["dice_mean", "estimate"] <= s.loc["dice_mean", "ci_high"]
    assert s.loc["plaque_recall", "estimate"] == 1.0
    assert s.loc["plaque_precision", "estimate"] == pytest.approx(10 / 12)
    assert abs(s.loc["area_bias_mm2", "estimate"]) < 0.05


def test_vectorised_bootstrap_equals_one_replicate_at_a_time():
    """summarize's replicates computed at once give the CIs of recomputing every statistic per
    replicate with the same draws (the definition), including NaN Dice (a reader who skipped an
    image) and a missing pixel spacing."""
    rng = np.random.default_rng(3)
    T, P = [], []
    for k in range(30):
        t = _disk((48, 48), 24, 24, int(rng.integers(3, 9))) if k < 18 else np.zeros((48, 48), bool)
        p = _disk((48, 48), 24 + int(rng.integers(-4, 5)), 24, int(rng.integers(0, 9)))
        T.append(t)
        P.append(p if rng.random() < 0.7 else np.zeros((48, 48), bool))
    for spacing in (np.full(30, 0.01), None):
        df = metrics.per_image(np.array(T), np.array(P), px_area_mm2=spacing)
        df.loc[3, "dice"] = np.nan  # a plaque image the reader did not trace
        got = metrics.summarize(df, n_boot=300, seed=7).set_index("metric")
        r = np.random.default_rng(7)
        pl, free = np.where(df.has_plaque)[0], np.where(~df.has_plaque)[0]
        boots = {}
        for _ in range(300):
            idx = np.concatenate([r.choice(pl, len(pl)), r.choice(free, len(free))])
            for k, v in metrics._summaries(df.iloc[idx]).items():
                boots.setdefault(k, []).append(v)
        assert set(boots) == set(got.index)
        for k, v in boots.items():
            b = np.asarray(v, float)
            b = b[np.isfinite(b)]
            assert got.loc[k, "ci_low"] == pytest.approx(np.quantile(b, 0.025), abs=1e-12), k
            assert got.loc[k, "ci_high"] == pytest.approx(np.quantile(b, 0.975), abs=1e-12), k


def test_majority_vote_and_mean_vote():
    probs = np.array([[[0.9, 0.9, 0.1]], [[0.8, 0.2, 0.1]], [[0.1, 0.3, 0.6]]])  # 3 models, 1x3 image
    assert metrics.vote(probs, "majority").tolist() == [[True, False, False]]
    assert metrics.vote(probs, "mean").tolist() == [[True, False, False]]
    d = metrics.disagreement(probs)
    assert d[0, 0] == pytest.approx(1 / 3) and d[0, 2] == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        metrics.vote(probs, "median")


def test_vote_beats_or_equals_a_noisy_member():
    """Independent errors cancel: the majority of three noisy copies is closer to the truth."""
    rng = np.random.default_rng(2)
    truth = _disk((64, 64), 32, 32, 12)
    members = np.stack([np.where(rng.random(truth.shape) < 0.15, ~truth, truth) for _ in range(3)]).astype(float)
    ens = metrics.vote(members[:, None], "majority")[0]
    assert metrics.dice(truth, ens) > max(metrics.dice(truth, m > 0.5) for m in members)


def test_remove_small():
    m = _disk((32, 32), 10, 10, 4)
    m[30, 30] = True
    assert metrics.remove_small(m, 5).sum() == m.sum() - 1


def test_paired_dice_pairs_models_with_the_second_reader_on_the_same_images():
    from carotidkit.segment.metrics import paired_dice, per_image

    y = np.zeros((12, 32, 32), bool)
    y[:8, 10:20, 8:24] = True  # 8 plaque images, 4 plaque-free
    reader = y.copy()
    reader[:8, 10:20, 8:12] = False  # the reader trims one end: Dice 0.857 on every plaque image
    good = y.copy()
    good[:8, 10:12] = False  # the model misses two rows: Dice 0.889
    bad = np.roll(y, 6, axis=2)
    rows = [
        per_image(y, reader, image_ids=list(range(12))).assign(model="annotator 2"),
        per_image(y, good, image_ids=list(range(12))).assign(model="good"),
        per_image(y, bad, image_ids=list(range(12))).assign(model="bad"),
    ]
    t = paired_dice(pd.concat(rows[::-1]), "annotator 2", n_boot=200).set_index("model")
    assert list(t.index) == ["bad", "good"] and (t.n_images == 8).all()
    assert t.loc["good", "dice_reference"] == pytest.approx(2 * 120 / (160 + 120))
    assert t.loc["good", "difference"] == pytest.approx(t.loc["good", "dice_model"] - t.loc["good", "dice_reference"])
    assert t.loc["good", "difference"] > 0 and t.loc["bad", "ci_high"] < 0
    # a reader who scored only some images: the comparison keeps the images both have
    few = per_image(y[:4], reader[:4], image_ids=list(range(4))).assign(model="annotator 2")
    t2 = paired_dice(pd.concat([rows[1], few]), "annotator 2", n_boot=50)
    assert t2.n_images.iloc[0] == 4
