"""Cleaning: overlay removal scored against the simulator's truth, geometry, QC, duplicates."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pandas as pd
import pytest

from carotidkit import clean, data
from carotidkit.io import read_parquet
from carotidkit.layout import Data, RunLayout
from carotidkit.synth.dataset import generate


@pytest.fixture(scope="module")
def synth_db(tmp_path_factory):
    root = tmp_path_factory.mktemp("cleandb")
    generate(
        root,
        n_subjects=5,
        n_plaque_images=30,
        plaque_db_size_px=800,
        cine_size_px=32,
        cine_seconds=0.5,
        n_jobs=2,
        seed=3,
    )
    return root


@pytest.fixture(scope="module")
def cleaned(synth_db, tmp_path_factory):
    db = data.load_plaque_db(Data.at(synth_db).plaque_db)
    out = tmp_path_factory.mktemp("cleaned")
    qc = clean.clean_database(db, out, model_size_px=96, n_jobs=2, truth_dir=Data.at(synth_db).overlay_truth)
    return db, qc, out


@pytest.mark.slow
def test_overlay_removal_meets_targets(cleaned):
    _, qc, _ = cleaned
    s = clean.cleaning_score(qc)
    assert s["overlay_recall"] >= 0.95, s  # all overlay pixels, margins included
    assert s["overlay_recall_in_scan_area"] >= 0.92, s  # the ones that get inpainted
    assert s["non_overlay_changed_fraction"] < 0.01, s
    assert (qc.psnr_after > qc.psnr_before).all()  # closer to the overlay-free truth, every image
    assert s["psnr_after_db"] > s["psnr_before_db"] + 6


def test_scan_box_matches_truth(synth_db, cleaned):
    _, qc, _ = cleaned
    truth = read_parquet(Data.at(synth_db).plaque_db_truth).assign(image_id=lambda d: d.image_id.astype(str))
    m = qc.merge(truth, on="image_id", suffixes=("", "_true"))
    for c in ("scan_x0", "scan_y0", "scan_x1", "scan_y1"):
        assert (m[c] - m[f"{c}_true"]).abs().max() <= 2, c


def test_inpaint_changes_only_masked_pixels():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (120, 160), dtype=np.uint8)
    mask = np.zeros(img.shape, bool)
    mask[40:50, 20:120] = True
    mask[rng.random(img.shape) < 0.01] = True
    out = clean.inpaint(img, mask)
    assert np.array_equal(out[~mask], img[~mask])
    assert not np.array_equal(out[mask], img[mask])


def test_crop_square_resize_keeps_mask_aligned():
    img = np.zeros((300, 400), np.uint8)
    img[50:250, 40:360] = 120  # scan area 320 x 200
    mask = np.zeros(img.shape, bool)
    mask[100:140, 200:280] = True  # a plaque right of centre
    box = clean.scan_box(img)
    assert box == (40, 50, 360, 250)
    im, m, g = clean.crop_square_resize(img, mask, box, 64, "pad", None)
    assert im.shape == m.shape == (64, 64)
    assert g.pad_top == 60 and g.pad_left == 0  # 200 rows padded to 320
    assert im[:10].max() == 0 and im[32].min() == 120  # black bars top/bottom, tissue in the middle
    ys, xs = np.nonzero(m)
    # the plaque's centre maps to ((120-50+60)/5, (240-40)/5) = (26, 40) in model pixels
    assert abs(ys.mean() - 26) <= 1 and abs(xs.mean() - 40) <= 1
    iou, shift = clean.alignment(mask, m, g)
    assert iou > 0.8 and shift < 0.5
    # resize policy stretches instead; undo_stretch widens the crop before squaring
    _, m2, g2 = clean.crop_square_resize(img, mask, box, 64, "resize", None)
    assert g2.side == 0 and abs(g2.scale_col - 5) < 1e-9 and abs(g2.scale_row - 200 / 64) < 1e-9
    _, _, g3 = clean.crop_square_resize(img, mask, box, 64, square="pad", undo_stretch=0.5)
    assert g3.pad_left == 20 and g3.pad_top == 0  # 160 wide x 200 high: pad columns
    shifted = np.roll(m, 6, axis=1)  # a mask that moved is caught
    assert clean.alignment(mask, shifted, g)[1] > 2.5


def test_mask_qc_flags():
    box = (10, 10, 90, 90)
    m = np.zeros((100, 100), bool)
    m[0:5, 0:5] = True  # outside the scan area, and a speck
    f = clean.mask_qc(m, box, min_speck_px=30)
    assert f["flag_mask_outside_scan"] and f["flag_tiny_specks"]
    f = clean.mask_qc(np.zeros((100, 100), bool), box, 20, labelled_plaque=True)
    assert f["flag_empty_but_labelled_plaque"] and f["mask_area_px"] == 0
    ok = np.zeros((100, 100), bool)
    ok[40:60, 30:70] = True
    assert not any(v for k, v in clean.mask_qc(ok, box, 20).items() if k.startswith("flag"))


def test_planted_cross_split_duplicates_are_all_found(synth_db, cleaned):
    _, qc, _ = cleaned
    truth = read_parquet(Data.at(synth_db).plaque_db_truth)
    planted = truth.dropna(subset=["duplicate_of_id"])
    assert len(planted) >= 1
    for r in planted.itertuples():
        a, b = str(r.image_id), str(int(r.duplicate_of_id))
        ga = qc.set_index("image_id").loc[a, "dup_group"]
        assert ga is not None and ga == qc.set_index("image_id").loc[b, "dup_group"]
    leak = clean.leakage_table(qc.assign(split=qc.split_shipped))
    cross = planted[
        planted.split != planted.merge(truth, left_on="duplicate_of_id", right_on="image_id").split_y.values
    ]
    assert len(leak) == len(cross) >= 1
    # nothing that is not a planted duplicate is grouped
    assert qc.dup_group.notna().sum() == 2 * len(planted)


def test_near_duplicates_are_found():
    rng = np.random.default_rng(1)
    base = cv2.GaussianBlur(rng.integers(0, 255, (200, 200), dtype=np.uint8), (9, 9), 3)
    near = np.clip(base.astype(int) + 6, 0, 255).astype(np.uint8)  # gain change
    other = cv2.GaussianBlur(rng.integers(0, 255, (200, 200), dtype=np.uint8), (9, 9), 3)
    t = pd.DataFrame(
        {
            "image_id": ["a", "b", "c"],
            "pixel_hash": [clean.pixel_hash(x) for x in (base, near, other)],
            "dhash": [clean.dhash(x) for x in (base, near, other)],
        }
    )
    g = clean.duplicate_groups(t, max_hamming=4).set_index("image_id")
    assert g.loc["a", "dup_group"] == g.loc["b", "dup_group"] and g.loc["a", "dup_kind"] == "near"
    assert g.loc["c", "dup_group"] is None


@pytest.mark.parametrize("seed", range(5))
def test_group_split_never_separates_a_group(seed):
    rng = np.random.default_rng(seed)
    n = 200
    groups = [f"G{rng.integers(0, 30)}" if rng.random() < 0.4 else None for _ in range(n)]
    t = pd.DataFrame({"dup_group": groups, "has_plaque": rng.random(n) < 0.6})
    held = clean.group_split(t, 0.2, seed=seed)
    for g, sub in t.assign(h=held).dropna(subset=["dup_group"]).groupby("dup_group"):
        assert sub.h.nunique() == 1, g
    assert 0.1 < held.mean() < 0.35


def test_make_splits_respects_shipped_test_and_marks_leaks(cleaned):
    _, qc, _ = cleaned
    s = clean.make_splits(qc, val_fraction=0.2, seed=0)
    m = s.merge(qc[["image_id", "split_shipped"]], on="image_id", suffixes=("", "_qc"))
    assert (m[m.split_shipped_qc == "test"].split == "test").all()
    dev = s[s.split != "test"].dropna(subset=["dup_group"])
    assert (dev.groupby("dup_group").split.nunique() == 1).all()  # no group in both train and val
    assert s.test_leak.sum() >= 1 and (s[s.test_leak].split == "test").all()


@pytest.mark.slow
def test_bad_images_are_flagged_not_fatal(synth_db, tmp_path):
    root = tmp_path / "db"
    shutil.copytree(Data.at(synth_db).plaque_db, root)
    imgs = sorted((root / "train").glob("*[0-9].png"))
    imgs[0].write_bytes(imgs[0].read_bytes()[:100])  # truncated
    cv2.imwrite(str(imgs[1].with_name(imgs[1].stem + "_labeled.png")), np.zeros((10, 10), np.uint8))  # wrong size
    db = data.load_plaque_db(root, errors="flag")
    qc = clean.clean_database(db, tmp_path / "out", model_size_px=64, n_jobs=1)
    bad = qc[qc.flag_error]
    assert len(bad) == 2 and len(qc) == len(db)
    assert bad.error.str.contains("not a readable image").any() and bad.error.str.contains("mask is").any()
    assert (tmp_path / "out" / "images").exists() and len(list((tmp_path / "out" / "images").glob("*.png"))) == len(
        db
    ) - 2


def test_redaction_blacks_out_margins():
    img = np.full((100, 100), 200, np.uint8)
    red = clean.redact_for_display(img, (10, 20, 90, 80))
    assert red[:20].max() == 0 and red[:, :10].max() == 0 and red[50, 50] == 200


@pytest.mark.notebook
def test_images_shown_in_reports_never_show_the_margins(smoke_run):
    """The burned-in identity (names, ids, dates) lives in the export's margins, outside the scan
    area. Every image the 00 gallery shows is redacted to the scan area, and every "before" image
    of 01's before/after gallery is cropped inside it: checked against the simulator's true scan
    box for every image of the smoke database, so the test fails if either step is dropped."""

    from carotidkit.clean.stage import before_after

    lay = RunLayout(smoke_run["run_dir"])
    truth = read_parquet(lay.data.truth / "plaque_db_truth.parquet").set_index("image_id")
    db = data.load_plaque_db(lay.data.plaque_db, check=False)
    leaked = 0
    for r in db.itertuples():
        t = truth.loc[int(r.source_id)]
        img = data.read_image(r.image_path)
        shown = clean.redact_for_display(img)
        # burned-in marks outside the true scan area (2-px tolerance for the export's resampling)
        overlay = data.read_image(lay.data.overlay_truth / f"{r.source_id}_overlay.png") > 0
        outside = np.ones(img.shape[:2], bool)
        outside[max(t.scan_y0 - 2, 0) : t.scan_y1 + 2, max(t.scan_x0 - 2, 0) : t.scan_x1 + 2] = False
        assert (overlay & outside).sum() > 100, r.image_id  # the margins do carry burned-in text
        leaked += int((shown[overlay & outside] > 0).sum())
    assert leaked == 0
    qc = read_parquet(lay.clean.qc)
    cfg = {"run_dir": str(lay.run_dir), "seed": 0}
    g = before_after(cfg, qc, n=len(qc))
    assert g["ids"]
    for i, before in zip(g["ids"], g["before"]):
        q = qc.set_index("image_id").loc[i]
        t = truth.loc[int(i)]
        assert q.scan_x0 >= t.scan_x0 - 2 and q.scan_y0 >= t.scan_y0 - 2, i
        assert q.scan_x1 <= t.scan_x1 + 2 and q.scan_y1 <= t.scan_y1 + 2, i
        assert before.shape[:2] == (q.scan_y1 - q.scan_y0, q.scan_x1 - q.scan_x0)


def test_image_without_mask_stays_flagged_through_cleaning(synth_db, tmp_path):
    root = tmp_path / "db"
    shutil.copytree(Data.at(synth_db).plaque_db, root)
    mask = sorted((root / "train").glob("*_labeled.png"))[0]
    mask.unlink()
    db = data.load_plaque_db(root, check=False, errors="flag")
    qc = clean.clean_database(db, tmp_path / "out", model_size_px=64, n_jobs=1).set_index("image_id")
    stem = mask.name.replace("_labeled.png", "")
    assert qc.loc[stem, "flag_error"] and "image without a mask" in qc.loc[stem, "error"]
    assert not (tmp_path / "out" / "images" / f"{stem}.png").exists()


def test_second_reader_masks_follow_the_same_geometry(synth_db, tmp_path):
    """A second annotator's masks go through the first mask's crop/square/resize, so their
    agreement at model size is the agreement the readers had at full size."""
    from carotidkit.segment.metrics import dice

    lay = Data.at(synth_db)
    db = data.load_plaque_db(lay.plaque_db)
    qc = clean.clean_database(db, tmp_path, model_size_px=96, n_jobs=1, second_reader_dir=lay.second_reader)
    assert qc.second_reader.all()
    truth = read_parquet(lay.plaque_db_truth).assign(image_id=lambda d: d.image_id.astype(str))
    pl = truth[truth.has_plaque & truth.image_id.isin(qc.image_id)]
    folder = tmp_path / clean.core.SECOND_READER
    small = [
        dice(data.read_mask(tmp_path / "masks" / f"{i}.png"), data.read_mask(folder / f"{i}.png")) for i in pl.image_id
    ]
    # model-size agreement tracks full-size agreement image by image (same geometry, no shift)
    assert np.corrcoef(small, pl.annotator_dice)[0, 1] > 0.8
    assert abs(np.mean(small) - pl.annotator_dice.mean()) < 0.06
    # a shape mismatch is named, and a missing folder refused
    bad = tmp_path / "bad_reader"
    bad.mkdir()
    one = db.iloc[0]
    cv2.imwrite(str(bad / f"{one.image_id}_labeled.png"), np.zeros((10, 10), np.uint8))
    qc2 = clean.clean_database(db.iloc[:1], tmp_path / "o2", model_size_px=64, n_jobs=1, second_reader_dir=bad)
    assert "second reader's mask is 10x10" in qc2.error.iloc[0]
    with pytest.raises(Exception, match="second reader's mask folder not found"):
        clean.clean_database(
            db.iloc[:1], tmp_path / "o3", model_size_px=64, n_jobs=1, second_reader_dir=tmp_path / "nope"
        )
