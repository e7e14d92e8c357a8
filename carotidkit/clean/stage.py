"""Notebook 01's stage: clean the database, audit duplicates, write splits and QC.

``run(settings)`` (or ``run(run_dir=..., model_size_px=..., ...)``) writes ``layout.clean`` and returns a
:class:`CleanResult` (``res.qc``, ``res.splits``, ``res.leakage``, ``res.summary``), with the
before/after gallery's data from ``res.before_after(n)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd

from .. import io
from ..data import load_plaque_db
from ..layout import RunLayout
from ..settings import CleanSettings
from ..stages import Progress, StageResult, is_synthetic, stage
from . import core as clean


@dataclass
class CleanResult(StageResult):
    qc: pd.DataFrame  # one row per image: geometry, overlay share, QC flags, duplicate group, error
    splits: pd.DataFrame  # image_id, split (train/val/test, group-aware)
    leakage: pd.DataFrame  # duplicate groups that straddle the shipped splits

    def journal_tables(self) -> dict[str, pd.DataFrame]:
        """The summary's numbers as ``facts`` (what the findings cite)."""
        from ..findings import flat_facts

        return {"facts": flat_facts(self.summary)}

    def findings(self):
        """What cleaning found, in words (:func:`carotidkit.findings.clean_findings`)."""
        from ..findings import clean_findings

        return clean_findings(self)

    def before_after(self, n: int) -> dict[str, list]:
        """Up to ``n`` plaque images for a before/after gallery: the export cropped to its scan area
        (burned-in margins never shown) with its detected overlays, and the cleaned model input with
        its mask. Returns lists ``before, overlays, after, masks, ids``."""
        return before_after(self.settings, self.qc, n)


@stage(CleanSettings)
def run(cfg: CleanSettings, lay: RunLayout, progress: Progress) -> CleanResult:
    """Clean the run's plaque database into ``layout.clean``.

    ``second_reader_dir``: a folder of a second annotator's masks named like the database's
    (on simulated data, annotator 2's from the truth); 02 scores them against the first.

    Outputs: ``images/``, ``masks/`` (model size), ``masks_second_reader/`` (if any), ``qc.parquet`` (one row per image),
    ``splits.parquet`` (group-aware train/val/test), ``leakage.parquet`` and ``summary.json``.

    Example:
        res = run(run_dir="runs/smoke", model_size_px=64)
        res.qc.flag_error.sum()
    """
    paths = lay.data.resolved()
    manifest = io.read_json(lay.data.manifest)
    out = lay.clean.ensure()
    second_reader_dir = cfg.second_reader_dir
    # list and pair files only: clean_database decodes each image once and checks sizes itself
    db = load_plaque_db(paths["plaque_db"], check=False, errors="flag")
    truth_dir = lay.data.overlay_truth if manifest["sources"].get("plaque_db") == "synthetic" else None
    if second_reader_dir is None and truth_dir is not None and lay.data.second_reader.is_dir():
        second_reader_dir = lay.data.second_reader
    t0 = time.perf_counter()
    with progress.phase("cleaning"):
        qc = clean.clean_database(
            db, out, cfg, truth_dir=truth_dir, second_reader_dir=second_reader_dir, progress=progress
        )
    seconds = time.perf_counter() - t0
    qc = qc.merge(db[["image_id", "file_name"]], on="image_id", how="left")
    if truth_dir is not None:  # pixel spacing is known for simulated exports
        truth = io.read_parquet(lay.data.plaque_db_truth)
        sp = truth.assign(image_id=truth.image_id.astype(str))[
            ["image_id", "pixel_spacing_row_mm", "pixel_spacing_col_mm"]
        ]
        qc = qc.merge(sp, on="image_id", how="left")
        stretch = float(cfg.undo_stretch or 1.0)  # a stretch back makes column pixels narrower
        qc["model_px_area_mm2"] = (
            qc.pixel_spacing_row_mm * qc.scale_row * qc.pixel_spacing_col_mm / stretch * qc.scale_col
        )
    splits = clean.make_splits(qc, val_fraction=cfg.val_fraction, seed=cfg.seed)
    leakage = clean.leakage_table(qc.assign(split=qc.split_shipped))
    io.write_parquet(lay.clean.qc, qc)
    io.write_parquet(lay.clean.splits, splits)
    io.write_parquet(lay.clean.leakage, leakage)
    summary = {
        "images": int(len(qc)),
        "errors": int(qc.flag_error.sum()),
        "seconds": round(seconds, 2),
        "second_reader": int(qc.get("second_reader", pd.Series(dtype=bool)).eq(True).sum()),
        "flags": {f: int(qc[f].sum()) for f in clean.QC_FLAGS},
        "duplicate_groups": int(qc.dup_group.nunique()),
        "leaking_groups": int(len(leakage)),
        "splits": splits.split.value_counts().to_dict(),
        "score": clean.cleaning_score(qc) if truth_dir is not None else None,
        "headline": f"{len(qc)} images cleaned, {int(qc.flag_error.sum())} with errors",
    }
    res = CleanResult(qc=qc, splits=splits, leakage=leakage, summary=summary, settings=cfg, synthetic=is_synthetic(lay))
    return res  # saved by the stage decorator, with its timings


def before_after(cfg, qc: pd.DataFrame, n: int) -> dict[str, list]:
    """See :meth:`CleanResult.before_after` (``cfg`` needs ``run_dir`` and ``seed``)."""
    from ..data import read_image, read_mask

    lay = RunLayout(cfg["run_dir"])
    paths = lay.data.resolved()
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
        res["after"].append(read_image(lay.clean.images / f"{r.image_id}.png"))
        res["masks"].append(read_mask(lay.clean.masks / f"{r.image_id}.png"))
        res["ids"].append(r.image_id)
    return res
