"""Issue 24: every subject's plaque burden and IMT from the U-Net ensemble, into 04 and 05."""

from __future__ import annotations

import hashlib
import shutil

import cv2
import numpy as np
import pandas as pd
import pytest

from carotidkit import io
from carotidkit.io import CarotidkitError
from carotidkit.layout import RunLayout
from carotidkit.segment import subjects as S
from carotidkit.segment.ensemble import PlaqueSegmenter
from carotidkit.segment.imt import far_wall_imt


def _smoke(smoke_run) -> RunLayout:
    assert smoke_run["error"] is None, smoke_run["error"]
    return RunLayout(smoke_run["run_dir"])


def test_imt_of_a_drawn_wall_is_exact():
    """Two rising edges 0.66 mm apart (11 rows of 0.06 mm), tilted: the DP finds both; a focal
    plaque 1.5 mm high and 10 mm long (about as steep as real ones) is left out."""
    img = np.full((300, 240), 5, np.uint8)
    img[:80] = 150  # tissue above the lumen (near wall)
    rows = 180 + (np.arange(240) * 0.1).astype(int)  # lumen-intima interface, sloping 0.1 row/col
    for c, r in enumerate(rows):
        img[r:, c] = 60  # media
        img[r : r + 3, c] = 200  # intima echo
        img[r + 11 :, c] = 230  # adventitia
    res = far_wall_imt(img, 0.06, 0.1)
    assert res.imt_mm == pytest.approx(0.66, abs=0.04)
    assert res.share_valid > 0.8
    # a focal plaque lifting the lumen surface by 1.5 mm: its columns are left out, IMT unchanged
    plaque = img.copy()
    for c in range(70, 171):  # a dome 10 mm long
        r = rows[c] - int(round(25 * (1 - ((c - 120) / 50) ** 2)))
        plaque[r : rows[c] + 11, c] = 120
        plaque[r : r + 3, c] = 200
    res2 = far_wall_imt(plaque, 0.06, 0.1)
    assert res2.imt_mm == pytest.approx(0.66, abs=0.04)
    assert np.isnan(res2.li[90:151]).all()  # the dome, but for its low shoulders


def test_subject_measurement_on_smoke_data_matches_the_planted_truth(smoke_run):
    """02's per-subject table covers every subject with stills; its IMT agrees with the truth."""
    lay = _smoke(smoke_run)
    subj = io.read_parquet(lay.unet.subject_plaque)
    stills = io.read_parquet(lay.data.stills_index)
    assert set(subj.subject_id) == set(stills.subject_id)
    assert {"plaque_area_mm2", "total_plaque_area_mm2", "plaque_count", "any_plaque", "imt_mm"} <= set(subj)
    assert (subj.total_plaque_area_mm2 >= subj.plaque_area_mm2 - 1e-9).all()
    truth = S.truth_per_subject(io.read_parquet(lay.data.stills_truth))
    d = subj.merge(truth, on="subject_id")
    ok = d[["imt_mm", "true_imt_mm"]].dropna()
    assert len(ok) > 0.9 * len(d)
    err = ok.imt_mm - ok.true_imt_mm
    assert abs(err.mean()) < 0.15 and err.abs().mean() < 0.15
    assert np.corrcoef(ok.imt_mm, ok.true_imt_mm)[0, 1] > 0.7
    agree = io.read_parquet(lay.unet.subject_agreement).set_index(["measure", "metric"]).estimate
    assert agree[("far-wall IMT (mm)", "icc_a1")] > 0.5


class _Oracle(PlaqueSegmenter):
    """The planted plaque masks, passed through the same cleaning geometry as the images: what a
    perfect ensemble would predict. Tests the measurement chain (geometry, mm², aggregation)."""

    def __init__(self, meta, masks_by_image):
        super().__init__({}, meta)
        self.by_image, self.by_input = masks_by_image, {}  # keyed by content: stills are cleaned on threads

    def clean(self, image):
        from carotidkit import clean

        img = np.asarray(image)
        p = self.meta["preprocessing"]
        mask = self.by_image[hashlib.sha1(img.tobytes()).hexdigest()]
        ce = clean.clean_export(img, p["model_size_px"], p["square"], p["undo_stretch"], p["inpaint_radius"], mask=mask)
        self.by_input[hashlib.sha1(ce.image.tobytes()).hexdigest()] = ce.mask.astype(np.float32)
        return ce

    def predict_probs(self, X, batch_size=32):
        return np.stack([self.by_input[hashlib.sha1(x.tobytes()).hexdigest()] for x in np.asarray(X)])[None]


def test_a_perfect_segmenter_recovers_the_planted_plaque_area(smoke_run):
    lay = _smoke(smoke_run)
    index, source = S.still_index(lay.run_dir)
    assert source == "stills"
    index = index.head(120)
    from carotidkit.imaging import read_image

    masks = {}
    for r in index.itertuples():
        img = read_image(r.path)
        masks[hashlib.sha1(np.asarray(img).tobytes()).hexdigest()] = (
            cv2.imread(str(lay.data.stills_truth_masks / f"{r.still_id}_mask.png"), cv2.IMREAD_GRAYSCALE) > 0
        )
    meta = {**io.read_json(lay.unet.ensemble), "vote": "majority", "threshold": 0.5}
    meta["preprocessing"]["model_size_px"] = 128
    per_still = S.measure(_Oracle(meta, masks), index, source, batch_size=32)
    truth = io.read_parquet(lay.data.stills_truth).set_index("still_id").loc[per_still.still_id]
    a, t = per_still.plaque_area_mm2.to_numpy(), truth.true_plaque_area_mm2.to_numpy()
    assert (per_still.any_plaque.to_numpy() == (t > 0)).mean() > 0.95
    assert np.corrcoef(a, t)[0, 1] > 0.97
    assert abs(a.sum() / t.sum() - 1) < 0.1  # mm² conversion through crop, pad and resize
    counts = truth.true_plaque_count.to_numpy()
    assert (np.abs(per_still.plaque_count.to_numpy() - counts) <= 1).mean() > 0.9


def test_end_diastolic_frame_is_a_narrow_lumen_frame(smoke_run):
    lay = _smoke(smoke_run)
    idx = io.read_parquet(lay.data.cine_index).head(40)
    ranks = []
    for r in idx.itertuples():
        z = np.load(lay.data.root / r.path)
        lumen = (z["labels"] == 1).reshape(len(z["labels"]), -1).sum(1)
        k = S.end_diastolic_frame(z["frames"])
        ranks.append((lumen < lumen[k]).mean())  # share of frames with a narrower lumen
    assert np.median(ranks) < 0.25 and np.mean(ranks) < 0.3  # a random frame: 0.5


def test_still_folders_and_manifests_are_read_and_bad_names_refused(tmp_path):
    folder = tmp_path / "stills"
    folder.mkdir()
    for name in ("007_left.png", "007_R_2.png", "008_L.png"):
        cv2.imwrite(str(folder / name), np.zeros((40, 40), np.uint8))
    t = S.index_stills(folder)
    assert sorted(zip(t.subject_id, t.side)) == [("007", "left"), ("007", "right"), ("008", "left")]
    man = tmp_path / "m.csv"
    pd.DataFrame({"subject_id": ["007"], "side": ["sideways"], "path": ["stills/007_left.png"]}).to_csv(
        man, index=False
    )
    with pytest.raises(CarotidkitError, match=r"m.csv: row 2: side 'sideways'"):
        S.index_stills(man)
    pd.DataFrame(
        {"subject_id": ["007"], "side": ["L"], "path": ["stills/007_left.png"], "pixel_spacing_row_mm": ["0.07"]}
    ).to_csv(man, index=False)
    t = S.index_stills(man)
    assert t.path[0] == str(tmp_path / "stills" / "007_left.png") and t.pixel_spacing_row_mm[0] == 0.07
    cv2.imwrite(str(folder / "no-side.png"), np.zeros((40, 40), np.uint8))
    with pytest.raises(CarotidkitError, match="no-side.png: still name is not"):
        S.index_stills(folder)


def test_05_refuses_a_plaque_table_of_another_cohort(smoke_run, tmp_path):
    from carotidkit import survival

    lay = _smoke(smoke_run)
    copy = tmp_path / "run"
    shutil.copytree(lay.run_dir, copy, ignore=shutil.ignore_patterns("cine", "stills", "plaque_db", "*.keras", "cache"))
    p = RunLayout(copy).unet.subject_plaque
    t = io.read_parquet(p)
    io.write_parquet(p, t.assign(subject_id="X" + t.subject_id))
    with pytest.raises(CarotidkitError) as exc:
        survival.run(profile="smoke", run_dir=copy, n_boot=10)
    msg = str(exc.value)
    assert "\n" not in msg and "subject_plaque.parquet" in msg and "not in the cohort" in msg


def test_carotid_models_on_a_cohort_with_planted_markers():
    """Six nested models per method; directions as planted: VD, plaque and IMT each raise risk
    alone; VD adjusted for both keeps an HR above 1."""
    from carotidkit.survival import carotid
    from carotidkit.survival.stage import build_analysis_table
    from carotidkit.synth.anatomy import carotid_markers
    from carotidkit.synth.cohort import simulate_cohort

    c, t = simulate_cohort(3000, seed=3, vd_hr_per_sd=1.6)
    c["mi_years"] = c.mi_years.clip(lower=0.001)  # (one event at time 0 after rounding)
    m = carotid_markers(np.random.default_rng(1), c.age_years, t.vd_true)
    d = build_analysis_table(c, None, "moderate", t, "truth")
    d = carotid.attach(d, pd.DataFrame({"subject_id": c.subject_id, **m}), c.subject_id)
    out, notes, key = {"carotid": [], "carotid_reclassification": []}, [], {}
    carotid.models(d, "mi", "mi_years", "mi_event", "mi_competing", 10.0, 100, 0, notes, out, key)
    assert notes == []
    tab = out["carotid"][0]
    assert len(tab) == 12 and set(tab.method) == {"Cox", "Fine-Gray"}
    cox = tab[tab.method == "Cox"].set_index("model")
    assert cox.loc["SCORE2 + VD", "hr_vd"] > 1.2 and cox.loc["SCORE2 + IMT", "hr_imt"] > 1.2
    assert cox.loc[carotid.FULL, "hr_vd"] > 1.0
    assert np.isfinite(key["delta_c_beyond_carotid"]) and key["hr_vd_adj_carotid"] == cox.loc[carotid.FULL, "hr_vd"]
    assert cox.loc["SCORE2", "lr_p_vs_score2"] != cox.loc["SCORE2", "lr_p_vs_score2"]  # NaN: no comparison
    printed = carotid.paper_table(tab)
    assert printed["VD, HR per SD (95 % CI)"].str.match(r"^$|^\d\.\d\d \(\d\.\d\d to \d\.\d\d\)$").all()
    rc = out["carotid_reclassification"][0]
    assert {"nri_continuous", "idi"} <= set(rc.metric)
    with pytest.raises(CarotidkitError, match="2 of 3 subject ids are not in the cohort"):
        carotid.attach(
            d,
            pd.DataFrame({"subject_id": ["nobody", "S00001", "ghost"], **{k: v[:3] for k, v in m.items()}}),
            c.subject_id,
        )


def test_validate_covers_vd_adjusted_for_the_markers():
    from carotidkit.survival.validate import carotid_coverage

    r = carotid_coverage(reps=3, n=3000)
    assert r["mean_hr_imt_per_sd_without_vd"] > 1.1 and r["mean_hr_plaque_per_sd_without_vd"] > 1.0
    assert 1.1 < r["mean_hr_adjusted_for_plaque_imt"] < 1.8
