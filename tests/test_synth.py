"""The simulator: speckle statistics, anatomy truth, cohort realism, cine physiology, caching."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from carotidkit.io import read_parquet
from carotidkit.layout import Data
from carotidkit.synth import anatomy as A
from carotidkit.synth import bmode, cine, speckle
from carotidkit.synth.cohort import simulate_cohort
from carotidkit.synth.dataset import generate, plan_plaque_db


def test_homogeneous_envelope_is_rayleigh():
    rng = np.random.default_rng(0)
    amp = np.ones((400, 400), np.float32)
    env = speckle.envelope(speckle.iq_image(amp, speckle.gaussian_psf(0.1, 0.1), rng))
    inner = env[20:-20, 20:-20]
    snr = inner.mean() / inner.std()
    assert abs(snr - speckle.RAYLEIGH_SNR) < 0.05, snr
    assert abs(speckle.RAYLEIGH_SNR - 1.913) < 1e-3


def test_rayleigh_holds_inside_simulated_tissue():
    """A homogeneous patch of a full simulated anatomy (deep tissue, no texture) is Rayleigh too."""
    rng = np.random.default_rng(1)
    anat = A.random_anatomy(rng, n_plaques=0)
    z, x = np.arange(0, 40, 0.1), np.arange(0, 50, 0.1)
    amp, labels, _ = A.echo_map(anat, z, x, rng)
    amp[:] = np.where(labels == A.LABELS["lumen"], amp, 0.5)  # flatten texture outside the lumen
    env = speckle.envelope(speckle.iq_image(amp, speckle.gaussian_psf(0.1, 0.1), rng))
    patch = env[-80:-10, 50:-50]
    assert abs(patch.mean() / patch.std() - 1.913) < 0.08


def test_log_compression_keeps_tissue_below_white():
    rng = np.random.default_rng(2)
    ex = bmode.render_export(rng, size=256)
    scan = ex.clean[ex.scan_box[1] : ex.scan_box[3], ex.scan_box[0] : ex.scan_box[2]]
    assert (scan >= 250).mean() < 0.002  # only overlays are pure white
    assert scan.mean() > 40  # but the tissue is not black


def test_plaque_truth_matches_geometry():
    rng = np.random.default_rng(3)
    anat = A.Anatomy(plaques=[A.Plaque(x_mm=25, length_mm=10, height_mm=2.0, wall="far", kind="fibrous")])
    z, x = np.arange(0, 40, 0.1), np.arange(0, 50, 0.1)
    amp, labels, mask = A.echo_map(anat, z, x, rng)
    cols = np.where(mask.any(0))[0]
    assert 8.5 < (cols.max() - cols.min()) * 0.1 < 10.5  # plaque length ~10 mm
    thick = mask.sum(0).max() * 0.1
    assert 1.5 < thick < 2.0 + anat.imt_far_mm  # encroachment + part of IMT
    assert (labels[mask] == A.LABELS["plaque"]).all()
    lumen_center = labels[:, 100] == A.LABELS["lumen"]
    assert abs(lumen_center.sum() * 0.1 - 2 * anat.lumen_radius_mm) < 0.3


def test_calcified_plaque_casts_a_shadow():
    rng = np.random.default_rng(4)
    anat = A.Anatomy(plaques=[A.Plaque(x_mm=25, length_mm=8, height_mm=2.0, kind="calcified")])
    z, x = np.arange(0, 40, 0.1), np.arange(0, 50, 0.1)
    amp, _, _ = A.echo_map(anat, z, x, rng)
    deep = slice(320, 390)
    assert amp[deep, 240:260].mean() < 0.3 * amp[deep, 50:100].mean()


def test_cohort_is_realistic_and_reproducible():
    c, t = simulate_cohort(6000, seed=5)
    assert 0.42 < c.hypertension.mean() < 0.58
    assert 0.15 < c.smoking.mean() < 0.26 and 0.04 < c.diabetes.mean() < 0.10
    assert abs(c.sbp_mmhg.mean() - 130) < 6 and abs(c.tc_mmol_l.mean() - 5.6) < 0.3
    assert c.hdl_mmol_l[c.sex == "male"].mean() < c.hdl_mmol_l[c.sex == "female"].mean()
    assert c.age_years.between(35, 75).all()
    decade = ((c.age_years - 35) // 10).clip(0, 3)
    assert c.groupby([c.sex, decade]).size().std() / len(c) < 0.01  # balanced by sex x decade
    death10 = ((c.death_event == 1) & (c.death_years <= 10)).mean()
    assert 0.04 <= death10 <= 0.09
    assert 0.01 < ((c.mi_event == 1) & (c.mi_years <= 10)).mean() < 0.04
    assert (c.mi_years >= 0).all() and (c.mi_event + c.mi_competing <= 1).all()
    c2, _ = simulate_cohort(6000, seed=5)
    pd.testing.assert_frame_equal(c, c2)
    # vd_true drives hypertension (noisy proxy) and events
    assert np.corrcoef(t.vd_true, c.hypertension)[0, 1] > 0.3
    hi = t.vd_true > 1
    assert c.death_event[hi].mean() > 2 * c.death_event[t.vd_true < -1].mean()


def test_vd_hazard_ratio_is_configurable():
    """With a larger HR per SD, events concentrate more in high-vd subjects."""

    def slope(hr):
        c, t = simulate_cohort(8000, seed=6, vd_hr_per_sd=hr)
        return c.mi_event[t.vd_true > 0.5].mean() / max(c.mi_event[t.vd_true < -0.5].mean(), 1e-3)

    assert slope(2.5) > slope(1.0)


def test_cine_wall_distends_less_when_stiff():
    rng = np.random.default_rng(7)
    anat = A.random_anatomy(rng, n_plaques=0)
    soft = cine.render_clip(anat, np.random.default_rng(1), size=64, distension=0.10, seconds=1.2)
    stiff = cine.render_clip(anat, np.random.default_rng(1), size=64, distension=0.02, seconds=1.2)
    lumen = lambda c: (c.labels == A.LABELS["lumen"]).sum((1, 2))
    rel = lambda c: (lumen(c).max() - lumen(c).min()) / lumen(c).min()
    assert rel(soft) > 3 * rel(stiff)
    assert 0.05 < rel(soft) < 0.16
    assert soft.frames.shape == (30, 64, 64) and soft.frames.dtype == np.uint8
    assert cine.distension_from(40, -1) > cine.distension_from(70, 1.5)


def test_plaque_db_plan_has_the_real_databases_quirks():
    plan = plan_plaque_db(541, seed=0)
    assert len(plan) == 541 and (plan.split == "test").sum() == 48
    dup = plan.dropna(subset=["duplicate_of"])
    assert len(dup) == 26
    src_split = plan.set_index("render")[plan.duplicate_of.isna().values].split
    cross = sum(src_split[int(r.duplicate_of)] != r.split for r in dup.itertuples())
    assert cross == 4
    assert plan.image_id.max() > len(plan)  # gaps in the numbering
    assert plan.file.str.contains(" ").sum() == 1  # the "544 .png" quirk
    assert 0.05 < plan.mask_rgb.mean() < 0.3
    assert 0.55 < plan.has_plaque.mean() < 0.75


@pytest.mark.slow
def test_generate_writes_layout_truth_and_caches(tmp_path):
    kw = dict(n_subjects=30, n_plaque_images=24, plaque_db_size_px=192, cine_size_px=32, cine_seconds=0.8, n_jobs=1)
    m = generate(tmp_path, **kw)
    assert m["synthetic"] and m["counts"]["plaque_images"] == 24 and m["counts"]["subjects"] == 30
    assert (Data.at(tmp_path).plaque_db / "train").is_dir() and (Data.at(tmp_path).plaque_db / "test").is_dir()
    truth = read_parquet(Data.at(tmp_path).plaque_db_truth)
    assert truth.duplicate_of_id.notna().sum() >= 1
    assert (Data.at(tmp_path).overlay_truth / f"{truth.image_id.iloc[0]}_overlay.png").exists()
    # annotator 1 ships with the database, annotator 2 is kept with the truth, for every image
    from carotidkit.data import read_mask

    lay = Data.at(tmp_path)
    assert all((lay.second_reader / f).is_file() for f in truth.mask_file)
    thick = truth[truth.imt_thickened]
    assert len(thick) >= 1 and not thick.has_plaque.any()
    for r in thick.itertuples():  # thickened plaque-free walls carry no mask, from either reader
        assert not read_mask(lay.plaque_db / r.split / r.mask_file).any()
        assert not read_mask(lay.second_reader / r.mask_file).any()
    pl = truth[truth.has_plaque]
    assert pl.annotator_dice.between(0.2, 0.99).all() and (pl.annotator_1_area_px > 0).all()
    mtime = (tmp_path / "manifest.json").stat().st_mtime_ns
    assert generate(tmp_path, **kw)["key"] == m["key"]
    assert (tmp_path / "manifest.json").stat().st_mtime_ns == mtime  # cached: nothing redone
    m2 = generate(tmp_path, **{**kw, "n_subjects": 31})
    assert m2["key"] != m["key"] and m2["counts"]["subjects"] == 31
    # the same seed gives byte-identical images, whatever the worker count
    other = generate(tmp_path / "b", **{**kw, "n_subjects": 31, "n_jobs": 2})
    assert other["data_hashes"]["plaque_db"] == m2["data_hashes"]["plaque_db"]
    assert other["data_hashes"]["cine"] == m2["data_hashes"]["cine"]


@pytest.mark.slow
def test_truth_summary_links_vd_to_what_images_show(tmp_path):
    from carotidkit.synth.dataset import truth_summary

    generate(
        tmp_path, n_subjects=300, n_plaque_images=20, plaque_db_size_px=128, cine_size_px=32, cine_seconds=0.5, n_jobs=2
    )
    truth, corr = truth_summary(tmp_path)
    assert len(truth) == 300
    assert corr["distension"] < -0.3  # stiffer arteries with more damage
    assert corr["imt_far_mm"] > 0.3 and corr["hypertension"] > 0.2


# ----------------------------------------------------------------------------- realism (issue 13)


def _db_like_export(i: int, size: int = 400):
    from carotidkit.synth.dataset import DB_PLAQUE_MIX, P_IRREGULAR, _rng

    rng = _rng(0, 11, i)
    n_pl = int(rng.choice([1, 2, 3], p=[0.65, 0.27, 0.08]))
    anat = A.random_anatomy(rng, age=65, vd=0.5, n_plaques=n_pl, plaque_mix=DB_PLAQUE_MIX, p_irregular=P_IRREGULAR)
    return bmode.render_export(rng, size=size, anat=anat)


def test_two_annotators_agree_within_the_configured_band():
    from carotidkit.synth.annotate import AGREEMENT_BAND, ANNOTATORS, annotate, dice
    from carotidkit.synth.dataset import _rng

    d12, d1t, largest_kept = [], [], []
    for i in range(30):
        ex = _db_like_export(i)
        truth = ex.plaque > 0.5
        m1, m2 = (annotate(ex.plaque, ex.pixel_spacing_mm, a, _rng(0, 17, i, k)) for k, a in enumerate(ANNOTATORS))
        d12.append(dice(m1, m2))
        d1t.append(dice(m1, truth))
        # the main finding is always drawn: the largest true plaque overlaps both readers' masks
        n, lab, stats, _ = cv2.connectedComponentsWithStats(truth.astype(np.uint8))
        big = lab == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        largest_kept.append(bool((big & m1).any() and (big & m2).any()))
    lo, hi = AGREEMENT_BAND
    assert lo <= np.mean(d12) <= hi, np.mean(d12)
    assert np.mean(d1t) > np.mean(d12)  # each reader is closer to the truth than to the other reader
    assert np.std(d12) > 0.03  # disagreement varies from image to image
    assert all(largest_kept)


def test_annotator_style_is_in_millimetres_and_reproducible():
    from carotidkit.synth.annotate import ANNOTATORS, annotate

    ex = _db_like_export(3, size=400)
    a = annotate(ex.plaque, ex.pixel_spacing_mm, ANNOTATORS[0], np.random.default_rng(1))
    b = annotate(ex.plaque, ex.pixel_spacing_mm, ANNOTATORS[0], np.random.default_rng(1))
    assert (a == b).all()
    # annotator 1 draws on the outside of the outline, annotator 2 on the inside
    m2 = annotate(ex.plaque, ex.pixel_spacing_mm, ANNOTATORS[1], np.random.default_rng(1))
    assert a.sum() > (ex.plaque > 0.5).sum() * 0.9 and m2.sum() < a.sum()
    assert not annotate(np.zeros((50, 50)), (0.1, 0.1), ANNOTATORS[0], np.random.default_rng(0)).any()


def test_thickened_plaque_free_wall_carries_no_mask():
    rng = np.random.default_rng(7)
    z, x = np.arange(0, 40, 0.1), np.arange(0, 50, 0.1)
    normal = A.Anatomy(imt_far_mm=0.6)
    thick = A.Anatomy(imt_far_mm=1.25, imt_near_mm=1.1, imt_wave=0.1)
    _, lab_n, mask_n = A.echo_map(normal, z, x, rng)
    _, lab_t, mask_t = A.echo_map(thick, z, x, rng)
    assert not mask_n.any() and not mask_t.any()
    far = A.LABELS["far_wall"]
    # the far wall is visibly thicker (about 0.65 mm more) and its thickness undulates along x
    extra = (lab_t == far).sum(0) * 0.1 - (lab_n == far).sum(0) * 0.1
    assert 0.4 < np.median(extra) < 0.9
    assert np.ptp((lab_t == far).sum(0)) >= 2


def test_harder_plaques_isoechoic_irregular_and_reverberation():
    rng = np.random.default_rng(8)
    z, x = np.arange(0, 40, 0.1), np.arange(0, 50, 0.1)
    iso = A.Anatomy(plaques=[A.Plaque(x_mm=25, length_mm=10, height_mm=2.0, kind="isoechoic")])
    amp, labels, mask = A.echo_map(iso, z, x, rng)
    body = np.median(amp[mask])
    assert 0.3 < body < 0.6  # as echogenic as the wall around it, far above the lumen
    assert np.median(amp[labels == A.LABELS["lumen"]]) < 0.05
    # an irregular plaque: rough, ulcerated surface, reproducible from its seed
    p = A.Plaque(x_mm=25, length_mm=12, height_mm=2.0, irregular=True, seed=3)
    prof, smooth = A.plaque_profile(p, x), A.plaque_profile(A.Plaque(x_mm=25, length_mm=12, height_mm=2.0), x)
    assert (A.plaque_profile(p, x) == prof).all()
    assert np.abs(np.diff(prof)).sum() > 1.2 * np.abs(np.diff(smooth)).sum()  # a rougher outline
    inner = prof[prof > 0.3]
    peaks = ((inner[1:-1] > inner[:-2]) & (inner[1:-1] >= inner[2:])).sum()
    assert peaks >= 2  # the ulcer splits the cap into at least two crests; a dome has one
    # reverberation: the upper lumen gets ghosts of the superficial layers, the lower lumen less
    _, lab0, _ = A.echo_map(A.Anatomy(), z, x, np.random.default_rng(9))
    amp0, _, _ = A.echo_map(A.Anatomy(), z, x, np.random.default_rng(9))
    amp1, _, _ = A.echo_map(A.Anatomy(reverb=0.3), z, x, np.random.default_rng(9))
    lumen = lab0 == A.LABELS["lumen"]
    rows = np.where(lumen[:, 250])[0]
    upper, lower = rows[: len(rows) // 3], rows[-len(rows) // 3 :]
    gain_upper = amp1[upper, 200:300].mean() / amp0[upper, 200:300].mean()
    gain_lower = amp1[lower, 200:300].mean() / amp0[lower, 200:300].mean()
    assert gain_upper > 2 and gain_upper > 1.5 * gain_lower


def test_default_anatomy_keeps_the_cine_plaque_mix():
    """Cine loops (03/04) keep their plaques: the database's harder mix is opt-in."""
    rng = np.random.default_rng(10)
    kinds = [p.kind for _ in range(200) for p in A.random_anatomy(rng, n_plaques=2).plaques]
    assert set(kinds) <= {"echolucent", "fibrous", "calcified"}
    assert not any(p.irregular for p in A.random_anatomy(rng, n_plaques=3).plaques)
    with pytest.raises(ValueError, match="unknown plaque kinds"):
        A.random_anatomy(rng, plaque_mix={"soft": 1.0})
