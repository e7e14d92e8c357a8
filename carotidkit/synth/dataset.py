"""Generate the default synthetic dataset into a folder, with its truth and a manifest.

Layout (all under ``out_dir``)::

    cohort.parquet                 observed cohort (canonical columns)
    plaque_db/train|test/          Ar-PlaqSegm1 layout: <n>.png + <n>_labeled.png, with its quirks
    cine/<clip_id>.npz             frames uint8 [T,H,W], labels, fps, pixel_spacing_mm
    cine_index.parquet             subject_id, clip_id, side, path, n_frames, fps, pixel_spacing_mm
    stills/<still_id>.png          per subject and filmed side, B-mode stills in the database's
                                   style (margins, burned-in marks, 4:3 stretched to square) of
                                   the same anatomy as that side's loop
    stills_index.parquet           subject_id, side, still_id, path, pixel_spacing_row_mm, pixel_spacing_col_mm
    truth/cohort_truth.parquet     vd_true, latent event times, ...
    truth/plaque_db_truth.parquet  per image: plaques, areas, scan box, overlay pixels, duplicates
    truth/plaque_db/<id>_clean.png, <id>_overlay.png   overlay-free image and overlay mask
    truth/annotator_2/<id>_labeled.png   the second reader's mask of every image (the database
                                   ships annotator 1's; see :mod:`carotidkit.synth.annotate`)
    truth/cine_truth.parquet       per clip: distension, IMT, plaques
    truth/stills_truth.parquet     per still: plaque area (mm²) and count in view, far-wall IMT
    manifest.json                  written last: parameters, cache key, counts, hashes, timings

The manifest's ``key`` hashes (seed, parameters, simulator version); a folder whose manifest
has the same key is reused as is, so re-running 00_data costs nothing.
"""

from __future__ import annotations

import copy
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from .. import io
from ..layout import Data
from . import anatomy as A
from . import bmode, cine
from .annotate import ANNOTATORS, annotate
from .annotate import dice as _dice
from .cohort import simulate_cohort

SIM_VERSION = "7"

#: what makes database images hard, as in a high-risk cohort's routine scans
DB_PLAQUE_MIX = {"echolucent": 0.25, "fibrous": 0.35, "calcified": 0.15, "isoechoic": 0.25}
P_IRREGULAR = 0.3  # ulcerated / heterogeneous plaques
P_THICKENED = 0.4  # plaque-free images with diffuse intima-media thickening (no mask)
P_REVERB = 0.6  # images with near-wall reverberation in the lumen


def _components(lay: Data) -> tuple[Path, ...]:
    """What :func:`generate` writes into a data folder (removed before a regeneration)."""
    return (lay.cohort, lay.plaque_db, lay.cine, lay.cine_index, lay.stills, lay.stills_index, lay.truth)


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


# ----------------------------------------------------------------------------- plaque database


def plan_plaque_db(n: int, seed: int) -> pd.DataFrame:
    """Ids, splits, duplicates and file-name quirks of an Ar-PlaqSegm1-like database of ``n`` images.

    Proportions follow the real database: 63 % with plaque, a test split of 48/541 (half with
    plaque), 26/541 byte-identical groups of which 4/26 straddle the development/test split, gaps
    in the numbering, one test image named ``"<n> .png"``, 15 % RGB masks.
    """
    rng = _rng(seed, 7)
    n_dup = int(round(26 * n / 541)) if n >= 20 else 1
    n_cross = max(1, int(round(4 * n_dup / 26)))
    n_unique = n - n_dup
    n_test_u = max(2, int(round(48 * n / 541)) - n_cross)
    has_plaque = np.zeros(n_unique, bool)
    has_plaque[: int(round(0.63 * n_unique))] = True
    rng.shuffle(has_plaque)
    split = np.array(["train"] * n_unique, dtype=object)
    pl, nopl = np.where(has_plaque)[0], np.where(~has_plaque)[0]
    test = np.concatenate(
        [rng.choice(pl, n_test_u // 2, replace=False), rng.choice(nopl, n_test_u - n_test_u // 2, replace=False)]
    )
    split[test] = "test"
    rows = [
        {"render": i, "split": split[i], "has_plaque": bool(has_plaque[i]), "duplicate_of": None}
        for i in range(n_unique)
    ]
    # duplicates (the real ones all have plaque): cross-split first, then within a split
    dev_pl = [i for i in pl if split[i] == "train"]
    src = rng.choice(dev_pl, n_dup, replace=len(dev_pl) < n_dup)
    for k, s in enumerate(src):
        rows.append(
            {"render": int(s), "split": "test" if k < n_cross else "train", "has_plaque": True, "duplicate_of": int(s)}
        )
    plan = pd.DataFrame(rows)
    plan = plan.sample(frac=1, random_state=int(rng.integers(1 << 31))).reset_index(drop=True)
    # numbering with gaps
    ids, cur = [], 0
    for _ in range(len(plan)):
        cur += 1 + int(rng.random() < 0.02)
        ids.append(cur)
    plan["image_id"] = ids
    plan["file"] = [f"{i}.png" for i in ids]
    plan["mask_file"] = [f"{i}_labeled.png" for i in ids]
    last_test = plan.index[plan.split == "test"][-1]
    plan.loc[last_test, "file"] = f"{plan.loc[last_test, 'image_id']} .png"  # stray space
    plan["mask_rgb"] = rng.random(len(plan)) < 0.15
    return plan


def _render_db_image(args) -> dict:
    i, seed, size, has_plaque, out = args
    rng = _rng(seed, 11, i)
    age, vd = float(rng.uniform(45, 82)), float(rng.normal(0.6, 0.9))
    n_pl = int(rng.choice([1, 2, 3], p=[0.65, 0.27, 0.08])) if has_plaque else 0
    anat = A.random_anatomy(rng, age=age, vd=vd, n_plaques=n_pl, plaque_mix=DB_PLAQUE_MIX, p_irregular=P_IRREGULAR)
    thickened = not has_plaque and rng.random() < P_THICKENED
    if thickened:  # diffuse thickening stays below the consensus plaque criteria (focal, > 1.5 mm)
        anat.imt_far_mm = float(rng.uniform(1.0, 1.3))
        anat.imt_near_mm = float(anat.imt_far_mm * rng.uniform(0.85, 1.0))
        anat.imt_wave = float(rng.uniform(0.04, 0.12))
        anat.imt_wave_period_mm = float(rng.uniform(12, 30))
    if rng.random() < P_REVERB:
        anat.reverb = float(rng.uniform(0.1, 0.4))
    ex = bmode.render_export(rng, size=size, anat=anat)
    m1, m2 = (annotate(ex.plaque, ex.pixel_spacing_mm, a, _rng(seed, 17, i, k)) for k, a in enumerate(ANNOTATORS))
    out = Path(out)
    io.write_png(out / f"r{i}_image.png", ex.image)
    io.write_png(out / f"r{i}_mask.png", m1.astype(np.uint8) * 255)
    io.write_png(out / f"r{i}_mask2.png", m2.astype(np.uint8) * 255)
    io.write_png(out / f"r{i}_clean.png", ex.clean)
    io.write_png(out / f"r{i}_overlay.png", ex.overlay.astype(np.uint8) * 255)
    area_px = int((ex.plaque > 0.5).sum())
    return {
        "render": i,
        "n_plaques": len(anat.plaques),
        "plaque_kinds": ",".join(p.kind for p in anat.plaques),
        "plaque_walls": ",".join(p.wall for p in anat.plaques),
        "irregular_plaques": int(sum(p.irregular for p in anat.plaques)),
        "imt_thickened": bool(thickened),
        "reverb": anat.reverb,
        "plaque_area_px": area_px,
        "annotator_1_area_px": int(m1.sum()),
        "annotator_2_area_px": int(m2.sum()),
        "annotator_dice": _dice(m1, m2) if m1.any() or m2.any() else None,
        "plaque_area_mm2": area_px * ex.pixel_spacing_mm[0] * ex.pixel_spacing_mm[1],
        "pixel_spacing_row_mm": ex.pixel_spacing_mm[0],
        "pixel_spacing_col_mm": ex.pixel_spacing_mm[1],
        "scan_x0": ex.scan_box[0],
        "scan_y0": ex.scan_box[1],
        "scan_x1": ex.scan_box[2],
        "scan_y1": ex.scan_box[3],
        "overlay_px": int(ex.overlay.sum()),
        "imt_far_mm": anat.imt_far_mm,
        "age_years": age,
        "vd": vd,
    }


def write_plaque_db(out_dir: Path, n: int, size: int, seed: int, pool=None) -> pd.DataFrame:
    plan = plan_plaque_db(n, seed)
    work = out_dir / "_render"
    work.mkdir(parents=True, exist_ok=True)
    uniq = plan.drop_duplicates("render").sort_values("render")
    tasks = [(int(r.render), seed, size, bool(r.has_plaque), str(work)) for r in uniq.itertuples()]
    rendered = list(pool.map(_render_db_image, tasks, chunksize=4) if pool else map(_render_db_image, tasks))
    truth = plan.merge(pd.DataFrame(rendered), on="render")
    lay = Data.at(out_dir)
    tdir = lay.overlay_truth
    tdir.mkdir(parents=True, exist_ok=True)
    lay.second_reader.mkdir(parents=True, exist_ok=True)
    for r in truth.itertuples():
        folder = lay.plaque_db / r.split
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(work / f"r{r.render}_image.png", folder / r.file)  # byte-identical dups
        mask = cv2.imread(str(work / f"r{r.render}_mask.png"), cv2.IMREAD_GRAYSCALE)
        if r.mask_rgb:
            mask = cv2.merge([mask, mask, mask])
        io.write_png(folder / r.mask_file, mask)
        shutil.copyfile(work / f"r{r.render}_mask2.png", lay.second_reader / r.mask_file)
        stem = str(r.image_id)
        shutil.copyfile(work / f"r{r.render}_clean.png", tdir / f"{stem}_clean.png")
        shutil.copyfile(work / f"r{r.render}_overlay.png", tdir / f"{stem}_overlay.png")
    shutil.rmtree(work)
    truth["has_plaque"] = truth.plaque_area_px > 0
    truth["duplicate_of_id"] = truth.duplicate_of.map(
        lambda s: (
            None if pd.isna(s) else int(truth.loc[(truth.render == s) & truth.duplicate_of.isna(), "image_id"].iloc[0])
        )
    )
    truth = truth.drop(columns=["duplicate_of"]).sort_values("image_id").reset_index(drop=True)
    io.write_parquet(lay.plaque_db_truth, truth)
    return truth


# ----------------------------------------------------------------------------- cine loops


#: per-clip acquisition variation at ``acquisition = 1`` (drawn independently of damage); the
#: ranges are those a sonographer's settings span on one scanner model (docs/simulator.md)
ACQUISITION = {
    "display_gain_db": "normal, SD 3 dB (overall gain)",
    "tgc_compensation": "uniform 0.80-0.98 (residual depth fall-off)",
    "tgc_db": "smooth curve over depth, 4 knots, SD 2 dB (TGC sliders)",
    "dynamic_range_db": "uniform 42-62 dB (log compression)",
    "fov_mm": "20 mm x uniform 0.85-1.2 (depth/zoom)",
    "probe_tilt": "normal, SD 0.05 mm/mm (probe angle, added to the vessel's own)",
    "motion_mm": "random walk, SD 0.04 mm/frame axial and lateral, plus a 0.15 mm sway",
}


def acquisition_draw(rng: np.random.Generator, a: float, n_rows: int, n_frames: int) -> dict:
    """One clip's acquisition settings (:data:`ACQUISITION`) scaled by ``a``; ``a = 0``: the fixed
    settings of simulator versions before 6."""
    if a <= 0:
        return {}
    knots = rng.normal(0, 2.0 * a, 4).astype(np.float32)
    tgc = np.interp(np.linspace(0, 3, n_rows), np.arange(4), knots).astype(np.float32)
    walk = np.cumsum(rng.normal(0, 0.04 * a, (n_frames, 2)), axis=0)
    sway = 0.15 * a * np.sin(2 * np.pi * (np.arange(n_frames)[:, None] / max(n_frames, 2) + rng.uniform(0, 1, 2)))
    return {
        "display_gain_db": float(rng.normal(0, 3.0 * a)),
        "tgc_compensation": float(0.9 + a * rng.uniform(-0.1, 0.08)),
        "tgc_db": tgc,
        "dynamic_range_db": float(50 + a * rng.uniform(-8, 12)),
        "fov_mm": float(20.0 * (1 + a * rng.uniform(-0.15, 0.2))),
        "probe_tilt": float(rng.normal(0, 0.05 * a)),
        "motion_mm": (walk - walk.mean(0) + sway).astype(np.float32),
    }


def _render_subject_clips(args) -> list[dict]:
    sid, idx, age, vd, hr, male, seed, size, seconds, out, sim = args
    rng = _rng(seed, 13, idx)
    lay = Data.at(out)
    local = sim["vd_pattern"] == "local"
    n_clips = 2 if rng.random() < 0.6 else 1
    rows = []
    for k, side in enumerate(["left", "right"] if n_clips == 2 else [str(rng.choice(["left", "right"]))]):
        anat = A.random_anatomy(
            rng, age=age, vd=vd, male=male, depth_mm=40, width_mm=40,
            vd_pattern=sim["vd_pattern"], vd_signal=sim["vd_signal"],
        )  # fmt: skip
        stills = _render_stills(anat, sid, side, _rng(seed, 23, idx, k), sim, lay)  # own stream: loops unchanged
        dist = cine.distension_from(age, vd, rng, per_vd=0.004 if local else 0.014, sd=0.015 if local else 0.006)
        fps = float(rng.choice([25.0, 30.0]))
        n_frames = max(2, int(round(seconds * fps)))
        acq = acquisition_draw(_rng(seed, 19, idx, k), sim["acquisition"], 2 * size, n_frames)  # own stream
        anat.tilt += acq.pop("probe_tilt", 0.0)
        stiff = 0.25 * sim["vd_signal"] * A.softplus(vd) if local else 0.0
        clip = cine.render_clip(
            anat,
            rng,
            size=size,
            fps=fps,
            seconds=seconds,
            heart_rate_bpm=hr,
            distension=dist,
            gain_db=float(rng.normal(0, 2)),
            noise=float(rng.uniform(0.002, 0.008)),
            wall_stiffening=stiff,
            **acq,
        )
        clip_id = f"{sid}_{side[0].upper()}"
        rel = str((lay.cine / f"{clip_id}.npz").relative_to(lay.root))
        io.write_npz(
            lay.root / rel,
            frames=clip.frames,
            labels=clip.labels,
            fps=np.float32(fps),
            pixel_spacing_mm=np.float32(clip.pixel_spacing_mm),
        )
        rows.append(
            {
                "subject_id": sid,
                "clip_id": clip_id,
                "side": side,
                "path": rel,
                "n_frames": int(clip.frames.shape[0]),
                "fps": fps,
                "pixel_spacing_mm": clip.pixel_spacing_mm,
                "distension": dist,
                "imt_far_mm": anat.imt_far_mm,
                "n_plaques": len(anat.plaques),
                "peri_echo": anat.peri_echo,
                "peri_texture": anat.peri_texture,
                "peri_far_laminar": anat.peri_far_laminar,
                "wall_stiffening": stiff,
                "display_gain_db": acq.get("display_gain_db", 0.0),
                "dynamic_range_db": acq.get("dynamic_range_db", 50.0),
                "fov_mm": acq.get("fov_mm", 20.0),
                "stills": stills,
            }
        )
    return rows


def _render_stills(anat: A.Anatomy, sid: str, side: str, rng: np.random.Generator, sim: dict, lay: Data) -> list:
    """``sim["stills_per_side"]`` exported B-mode stills of one side's anatomy (each its own
    acquisition: probe angle, scan area, gain, overlays), with truth: the plaque area and count
    in view and the far-wall IMT."""
    rows = []
    for j in range(int(sim["stills_per_side"])):
        a = copy.deepcopy(anat)
        a.tilt += float(rng.normal(0, 0.03))
        ex = bmode.render_export(rng, size=int(sim["still_size_px"]), anat=a, source="png1200")
        still_id = f"{sid}_{side[0].upper()}_{j + 1}"
        rel = str((lay.stills / f"{still_id}.png").relative_to(lay.root))
        io.write_png(lay.root / rel, ex.image)
        pl = (ex.plaque > 0.5).astype(np.uint8)
        io.write_png(lay.stills_truth_masks / f"{still_id}_mask.png", pl * 255)
        n_pl = cv2.connectedComponents(pl, connectivity=8)[0] - 1
        r_mm, c_mm = ex.pixel_spacing_mm
        rows.append(
            {
                "subject_id": sid,
                "side": side,
                "still_id": still_id,
                "path": rel,
                "pixel_spacing_row_mm": float(r_mm),
                "pixel_spacing_col_mm": float(c_mm),
                "true_plaque_area_mm2": float(pl.sum() * r_mm * c_mm),
                "true_plaque_count": int(n_pl),
                "true_imt_mm": float(a.imt_far_mm),
            }
        )
    return rows


#: the knobs the loops' (and stills') renderer reads
_CINE_KNOBS = ("vd_pattern", "vd_signal", "acquisition", "stills_per_side", "still_size_px")


def write_cine(
    out_dir: Path,
    cohort: pd.DataFrame,
    truth: pd.DataFrame,
    size: int,
    seconds: float,
    seed: int,
    pool=None,
    sim: dict | None = None,
) -> pd.DataFrame:
    """Both sides' (or one side's) loop of every subject, and that side's stills; ``sim``:
    :data:`_CINE_KNOBS` (00's knobs)."""
    from ..settings import DataSettings

    d = DataSettings.knobs()
    sim = {k: (sim or {}).get(k, d[k].default) for k in _CINE_KNOBS}
    vd = truth.set_index("subject_id").vd_true
    tasks = [
        (
            r.subject_id,
            i,
            float(r.age_years),
            float(vd[r.subject_id]),
            float(r.heart_rate_bpm),
            r.sex == "male",
            seed,
            size,
            seconds,
            str(out_dir),
            sim,
        )
        for i, r in enumerate(cohort.itertuples())
    ]
    chunks = pool.map(_render_subject_clips, tasks, chunksize=16) if pool else map(_render_subject_clips, tasks)
    rows = [row for chunk in chunks for row in chunk]
    stills = pd.DataFrame([s for r in rows for s in r.pop("stills")])
    table = pd.DataFrame(rows)
    lay = Data.at(out_dir)
    if len(stills):
        cols = ["subject_id", "side", "still_id", "path", "pixel_spacing_row_mm", "pixel_spacing_col_mm"]
        io.write_parquet(lay.stills_index, stills[cols])
        io.write_parquet(
            lay.stills_truth,
            stills[["still_id", *[c for c in stills if c.startswith("true_") or c in ("subject_id", "side")]]],
        )
    io.write_parquet(
        lay.cine_index,
        table[["subject_id", "clip_id", "side", "path", "n_frames", "fps", "pixel_spacing_mm"]],
    )
    io.write_parquet(
        lay.cine_truth,
        table[
            ["clip_id", "subject_id", "side", "distension", "imt_far_mm", "n_plaques", "peri_echo", "peri_texture"]
            + ["peri_far_laminar", "wall_stiffening", "display_gain_db", "dynamic_range_db", "fov_mm"]
        ],
    )
    return table


# ----------------------------------------------------------------------------- everything


def generate(out_dir, *, seed: int = 0, force: bool = False, progress=None, **knobs) -> dict:
    """Simulate cohort, plaque database and cine loops into ``out_dir``; return the manifest.

    ``knobs``: any of :data:`carotidkit.settings.DataSettings.SIMULATOR` (``n_subjects``,
    ``n_plaque_images``, ``plaque_db_size_px``, ``cine_size_px``, ``cine_seconds``,
    ``vd_hr_per_sd``, ``followup_years``, ``vd_pattern``, ``vd_signal``, ``acquisition``,
    ``n_jobs``); the rest take 00's declared defaults.
    Cached: if ``out_dir/manifest.json`` has the same key (seed + parameters), nothing is redone.

    Example:
        m = generate("runs/smoke/data", n_subjects=80, n_plaque_images=40, plaque_db_size_px=256)
        m["counts"]["plaque_images"]
        40
    """
    from ..settings import DataSettings

    unknown = sorted(set(knobs) - set(DataSettings.SIMULATOR))
    if unknown:
        raise TypeError(f"generate: unknown setting(s) {', '.join(unknown)}")
    declared = DataSettings.knobs()
    k = {n: knobs.get(n, declared[n].default) for n in DataSettings.SIMULATOR}
    n_subjects, n_plaque_images, plaque_db_size_px = k["n_subjects"], k["n_plaque_images"], k["plaque_db_size_px"]
    cine_size_px, cine_seconds, n_jobs = k["cine_size_px"], k["cine_seconds"], k["n_jobs"]
    vd_hr_per_sd, followup_years = k["vd_hr_per_sd"], k["followup_years"]
    sim = {n: k[n] for n in _CINE_KNOBS}
    out_dir = Path(out_dir)
    params = dict(
        n_subjects=n_subjects,
        n_plaque_images=n_plaque_images,
        plaque_db_size_px=plaque_db_size_px,
        cine_size_px=cine_size_px,
        cine_seconds=cine_seconds,
        vd_hr_per_sd=vd_hr_per_sd,
        followup_years=followup_years,
        **sim,
        seed=seed,
    )
    key = io.stable_hash({"params": params, "version": SIM_VERSION})
    lay = Data.at(out_dir)
    mpath = lay.manifest
    if not force and mpath.exists():
        old = io.read_json(mpath)
        if old.get("key") == key:
            return old
    say = progress or (lambda msg: None)
    if mpath.exists():
        mpath.unlink()  # the manifest gates validity; remove it first
    for p in _components(lay):
        shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    timings = {}
    n_jobs = n_jobs or os.cpu_count() or 1
    pool = ProcessPoolExecutor(n_jobs, mp_context=get_context("spawn")) if n_jobs > 1 else None
    try:
        t0 = time.perf_counter()
        cohort, truth = simulate_cohort(n_subjects, seed=seed, vd_hr_per_sd=vd_hr_per_sd, followup_years=followup_years)
        io.write_parquet(lay.cohort, cohort)
        io.write_parquet(lay.cohort_truth, truth)
        timings["cohort_s"] = round(time.perf_counter() - t0, 2)
        say(f"cohort: {n_subjects} subjects in {timings['cohort_s']} s")
        t0 = time.perf_counter()
        db = write_plaque_db(out_dir, n_plaque_images, plaque_db_size_px, seed, pool)
        timings["plaque_db_s"] = round(time.perf_counter() - t0, 2)
        say(f"plaque database: {len(db)} images in {timings['plaque_db_s']} s")
        t0 = time.perf_counter()
        clips = write_cine(out_dir, cohort, truth, cine_size_px, cine_seconds, seed, pool, sim)
        timings["cine_s"] = round(time.perf_counter() - t0, 2)
        say(f"cine: {len(clips)} clips in {timings['cine_s']} s")
    finally:
        if pool:
            pool.shutdown()
    t0 = time.perf_counter()
    hashes = {
        "cohort.parquet": io.sha256_file(lay.cohort)[:16],
        "plaque_db": io.tree_digest(lay.plaque_db),
        "cine": io.tree_digest(lay.cine),
        **({"stills": io.tree_digest(lay.stills)} if lay.stills.exists() else {}),
    }
    timings["hashing_s"] = round(time.perf_counter() - t0, 2)
    manifest = {
        "synthetic": True,
        "key": key,
        "simulator_version": SIM_VERSION,
        "parameters": params,
        "sources": {
            "cohort": "synthetic",
            "plaque_db": "synthetic",
            "video": "synthetic",
            **({"stills": "synthetic"} if lay.stills_index.exists() else {}),
        },
        "paths": {
            k: str(getattr(lay, k).relative_to(lay.root))
            for k in ("cohort", "plaque_db", "cine_index", "truth", "stills_index")
            if k != "stills_index" or lay.stills_index.exists()
        },
        "counts": {
            "subjects": int(len(cohort)),
            "plaque_images": int(len(db)),
            "plaque_images_with_plaque": int(db.has_plaque.sum()),
            "clips": int(len(clips)),
            "stills": int(len(io.read_parquet(lay.stills_index))) if lay.stills_index.exists() else 0,
            "duplicate_images": int(db.duplicate_of_id.notna().sum()),
        },
        "data_hashes": hashes,
        "timings": timings,
        "created_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    io.write_json(mpath, manifest)
    return manifest


def truth_summary(data_dir) -> tuple[pd.DataFrame, pd.Series]:
    """Per-subject truth joined to the observed cohort, and each quantity's correlation with
    the latent vascular damage ``vd_true`` (what later notebooks should recover)."""
    data_dir = Path(data_dir)
    lay = Data.at(data_dir)
    cohort = io.read_parquet(lay.cohort)
    truth = io.read_parquet(lay.cohort_truth).merge(cohort, on="subject_id")
    clips = io.read_parquet(lay.cine_truth)
    per_subject = clips.groupby("subject_id")[["distension", "imt_far_mm", "n_plaques", "peri_echo"]].mean()
    truth = truth.merge(per_subject, on="subject_id")
    cols = ["age_years", "sbp_mmhg", "hypertension", "distension", "imt_far_mm", "n_plaques", "peri_echo"]
    corr = truth[["vd_true", *cols]].corr()["vd_true"].drop("vd_true").rename("correlation with vd_true")
    return truth, corr
