"""The 01_cleaning stage as one call: clean the database, audit duplicates, write splits and QC.

Kept apart from :mod:`carotidkit.clean` (the image operations) so the notebook stays thin.
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from . import clean, io
from .data import data_paths, load_plaque_db


def run_cleaning(cfg, progress=print) -> dict:
    """Clean the run's plaque database into ``<run_dir>/clean``; return the stage's summary.

    Outputs: ``images/``, ``masks/`` (model size), ``qc.parquet`` (one row per image),
    ``splits.parquet`` (group-aware train/val/test), ``leakage.parquet`` and ``clean.json``.
    """
    paths = data_paths(cfg["run_dir"])
    manifest = io.read_json(Path(cfg["run_dir"]) / "data" / "manifest.json")
    out = Path(cfg["run_dir"]) / "clean"
    # list and pair files only: clean_database decodes each image once and checks sizes itself
    db = load_plaque_db(paths["plaque_db"], check=False, errors="flag")
    truth_dir = (paths["truth"] / "plaque_db") if manifest["sources"].get("plaque_db") == "synthetic" else None
    t0 = time.perf_counter()
    qc = clean.clean_database(
        db,
        out,
        size=cfg["model_size"],
        square=cfg["square"],
        undo_stretch=cfg["undo_stretch"],
        inpaint_radius=cfg["inpaint_radius"],
        min_speck_px=cfg["min_speck_px"],
        near_dup_hamming=cfg["near_dup_hamming"],
        n_jobs=cfg["n_jobs"],
        truth_dir=truth_dir,
        progress=progress,
    )
    seconds = time.perf_counter() - t0
    qc = qc.merge(db[["image_id", "file_name"]], on="image_id", how="left")
    if truth_dir is not None:  # pixel spacing is known for simulated exports
        truth = pd.read_parquet(paths["truth"] / "plaque_db_truth.parquet")
        sp = truth.assign(image_id=truth.image_id.astype(str))[
            ["image_id", "pixel_spacing_row_mm", "pixel_spacing_col_mm"]
        ]
        qc = qc.merge(sp, on="image_id", how="left")
        stretch = float(cfg["undo_stretch"] or 1.0)  # a stretch back makes column pixels narrower
        qc["model_px_area_mm2"] = (
            qc.pixel_spacing_row_mm * qc.scale_row * qc.pixel_spacing_col_mm / stretch * qc.scale_col
        )
    splits = clean.make_splits(qc, val_fraction=cfg["val_fraction"], seed=cfg["seed"])
    leakage = clean.leakage_table(qc.assign(split=qc.split_shipped))
    io.write_parquet(out / "qc.parquet", qc)
    io.write_parquet(out / "splits.parquet", splits)
    io.write_parquet(out / "leakage.parquet", leakage)
    summary = {
        "images": int(len(qc)),
        "errors": int(qc.flag_error.sum()),
        "seconds": round(seconds, 2),
        "model_size": cfg["model_size"],
        "square": cfg["square"],
        "undo_stretch": cfg["undo_stretch"],
        "inpaint_radius": cfg["inpaint_radius"],
        "flags": {f: int(qc[f].sum()) for f in clean.QC_FLAGS},
        "duplicate_groups": int(qc.dup_group.nunique()),
        "leaking_groups": int(len(leakage)),
        "splits": splits.split.value_counts().to_dict(),
        "score": clean.cleaning_score(qc) if truth_dir is not None else None,
    }
    io.write_json(out / "clean.json", summary)
    return summary


def before_after(cfg, qc: pd.DataFrame, n: int) -> dict[str, list]:
    """Up to ``n`` plaque images for a before/after gallery: the export cropped to its scan area
    (burned-in margins never shown) with its detected overlays, and the cleaned model input with
    its mask. Returns lists ``before, overlays, after, masks, ids``."""
    from .data import read_image, read_mask

    paths = data_paths(cfg["run_dir"])
    out = Path(cfg["run_dir"]) / "clean"
    db = load_plaque_db(paths["plaque_db"], check=False).set_index("image_id")
    ok = qc[~qc.flag_error & qc.has_plaque]
    show = ok.sample(min(n, len(ok)), random_state=cfg["seed"])
    res = {"before": [], "overlays": [], "after": [], "masks": [], "ids": []}
    for r in show.itertuples():
        box = (r.scan_x0, r.scan_y0, r.scan_x1, r.scan_y1)
        img = read_image(db.loc[r.image_id, "image_path"])
        det, _ = clean.detect_overlays(img, box)
        x0, y0, x1, y1 = box
        res["before"].append(img[y0:y1, x0:x1])
        res["overlays"].append(det[y0:y1, x0:x1])
        res["after"].append(read_image(out / "images" / f"{r.image_id}.png"))
        res["masks"].append(read_mask(out / "masks" / f"{r.image_id}.png"))
        res["ids"].append(r.image_id)
    return res
