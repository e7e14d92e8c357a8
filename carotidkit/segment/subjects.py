"""Every subject's plaque burden and far-wall IMT, measured by the saved U-Net ensemble.

02 segments each subject's B-mode stills (or, when the data has none, each cine loop's end-diastolic
frame) with :class:`~carotidkit.segment.ensemble.PlaqueSegmenter`, streaming them in batches so
that memory stays bounded whatever the cohort size, and measures on each image

* the plaque area (mm²) and the number of plaques (connected components of the voted mask),
* the ensemble's disagreement (share of members outvoted, mean over the plaque pixels),
* the far-wall IMT by dynamic programming (:mod:`carotidkit.segment.imt`), in the full-resolution
  scan area, plaque columns left out.

A subject's values (:func:`per_subject`): ``plaque_area_mm2`` is the mean per imaged side (so
subjects filmed on one side are comparable with those filmed on two) and
``total_plaque_area_mm2`` the sum over the sides imaged; ``plaque_count`` the sum over sides (of
each side's mean over its stills); ``any_plaque``; ``imt_mm`` the mean over sides.
On simulated data :func:`agreement` compares them with the planted truth.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from .. import io
from ..io import CarotidkitError

#: what 02 says a measurement came from
SOURCES = {"stills": "B-mode stills", "ed_frames": "end-diastolic frames of the cine loops"}
STILL_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm"}
_NAME = re.compile(r"^(?P<subject>.+?)_(?P<side>left|right|l|r)(?:_(?P<n>\d+))?$", re.IGNORECASE)
_SIDES = {"l": "left", "r": "right", "left": "left", "right": "right"}


def index_stills(still_dir) -> pd.DataFrame:
    """One row per still: ``subject_id, side, still_id, path`` (absolute) and, where known,
    ``pixel_spacing_row_mm, pixel_spacing_col_mm``.

    ``still_dir``: a folder of ``<subject>_<left|right|L|R>[_<n>].<png|jpg|dcm|...>`` files, or a
    manifest (CSV/Parquet: ``subject_id, side, path`` and optional spacing columns; relative paths
    are relative to the manifest). A bad row or name stops with one line naming it.
    """
    root = Path(still_dir)
    if root.is_file():
        m = io.read_parquet(root) if root.suffix.lower() == ".parquet" else pd.read_csv(root, dtype=str)
        missing = [c for c in ("subject_id", "side", "path") if c not in m.columns]
        if missing:
            raise CarotidkitError(f"{root}: still manifest needs column(s) {', '.join(missing)}")
        rows = []
        for i, r in enumerate(m.itertuples(index=False)):
            side = _SIDES.get(str(r.side).strip().lower())
            if side is None:
                raise CarotidkitError(f"{root}: row {i + 2}: side {r.side!r} is not left/right/L/R")
            p = Path(str(r.path).strip())
            rows.append(
                {
                    "subject_id": str(r.subject_id).strip(),
                    "side": side,
                    "path": str(p if p.is_absolute() else root.parent / p),
                }
            )
        out = pd.DataFrame(rows)
        for c in ("pixel_spacing_row_mm", "pixel_spacing_col_mm"):
            if c in m:
                out[c] = pd.to_numeric(m[c], errors="coerce").to_numpy()
    elif root.is_dir():
        rows = []
        for p in sorted(q for q in root.rglob("*") if q.suffix.lower() in STILL_EXT):
            hit = _NAME.match(p.stem)
            if not hit:
                raise CarotidkitError(
                    f"{p}: still name is not <subject>_<left|right|L|R>[_<n>]; give a manifest instead"
                )
            rows.append({"subject_id": hit["subject"], "side": _SIDES[hit["side"].lower()], "path": str(p)})
        if not rows:
            raise CarotidkitError(f"{root}: no stills found ({', '.join(sorted(STILL_EXT))})")
        out = pd.DataFrame(rows)
    else:
        raise CarotidkitError(f"{root}: still folder or manifest not found")
    out["still_id"] = (
        out.subject_id
        + "_"
        + out.side.str[0].str.upper()
        + "_"
        + (out.groupby(["subject_id", "side"]).cumcount() + 1).astype(str)
    )
    return out


def still_index(run_dir) -> tuple[pd.DataFrame, str]:
    """The run's images to measure and where they come from (a key of :data:`SOURCES`): the
    stills 00 recorded, else one end-diastolic frame per cine loop."""
    from ..data.prepare import cine_table, data_paths

    paths = data_paths(run_dir)
    if "stills_index" in paths and paths["stills_index"].exists():
        idx = io.read_parquet(paths["stills_index"])
        base = paths["stills_index"].parent
        idx["path"] = [str(p) if Path(p).is_absolute() else str(base / p) for p in idx.path]
        return idx, "stills"
    clips = cine_table(run_dir)
    idx = clips.assign(still_id=clips.clip_id + "_ED", side=clips.get("side"))
    return idx[["subject_id", "side", "still_id", "path"]], "ed_frames"


def end_diastolic_frame(frames: np.ndarray) -> int:
    """The frame with the narrowest lumen, taken as end-diastolic: the least total darkness below
    the loop's 30th grey-level percentile (the anechoic lumen is the darkest large region; its
    darkness shrinks with the diameter, and summing depth below the threshold is steadier than
    counting pixels when the lumen spans few rows)."""
    f = np.asarray(frames, np.float32)
    thr = np.percentile(f, 30)
    return int(np.clip(thr - f, 0, None).reshape(len(f), -1).sum(1).argmin())


def _load(row, source: str) -> tuple[np.ndarray, float, float]:
    """One image (uint8) and its (row, col) pixel spacing in mm (NaN when unknown)."""
    from ..data.video import load_video
    from ..imaging import read_image

    sr = float(getattr(row, "pixel_spacing_row_mm", np.nan) or np.nan)
    sc = float(getattr(row, "pixel_spacing_col_mm", np.nan) or np.nan)
    p = Path(row.path)
    if source == "ed_frames" or p.suffix.lower() == ".dcm":
        v = load_video(p)
        img = v.frames[end_diastolic_frame(v.frames) if source == "ed_frames" else 0]
        if v.pixel_spacing_mm and not np.isfinite(sr):
            sr = sc = float(v.pixel_spacing_mm)
        return img, sr, sc
    return read_image(p), sr, sc


def _to_crop(mask_model: np.ndarray, geom, h: int, w: int) -> np.ndarray:
    from ..clean.core import model_to_crop

    return model_to_crop(mask_model, geom, h, w)


#: threads decoding and cleaning a batch of stills
_PREP_THREADS = 2


def _measure_batch(seg, rows: list, source: str) -> list[dict]:
    from . import metrics
    from .imt import far_wall_imt

    def prepare(r):
        try:
            img, sr, sc = _load(r, source)
            return seg.clean(img), (sr, sc)
        except (CarotidkitError, OSError, ValueError) as exc:
            raise CarotidkitError(f"{r.path}: {exc}") from exc

    # decoding and cleaning (OpenCV's median filter and inpainting release the GIL) on two
    # threads: 1.6x on 2 cores, same result; the first failing row (in order) still names itself
    with ThreadPoolExecutor(_PREP_THREADS) as pool:
        prepared = list(pool.map(prepare, rows))
    cleaned = [ce for ce, _ in prepared]
    spacing = [sp for _, sp in prepared]
    X = [ce.image for ce in cleaned]
    probs = seg.predict_probs(np.stack(X))
    masks = metrics.vote(probs, seg.meta["vote"], seg.meta["threshold"])
    dis = metrics.disagreement(probs, seg.meta["threshold"])
    out = []
    for r, ce, (sr, sc), m, d in zip(rows, cleaned, spacing, masks, dis):
        g = ce.geom
        x0, y0, x1, y1 = g.box
        crop = _to_crop(m, g, y1 - y0, x1 - x0)
        n_pl = cv2.connectedComponents(crop.astype(np.uint8), connectivity=8)[0] - 1
        imt = far_wall_imt(ce.cleaned[y0:y1, x0:x1], sr, sc, plaque_mask=crop) if np.isfinite(sr) else None
        area_px = int(m.sum())
        out.append(
            {
                "subject_id": r.subject_id,
                "side": r.side,
                "still_id": r.still_id,
                "plaque_area_mm2": area_px * sr * g.scale_row * sc / g.stretch * g.scale_col,
                "plaque_count": int(n_pl),
                "any_plaque": bool(area_px > 0),
                "mean_disagreement": float(d[m].mean()) if m.any() else 0.0,
                "imt_mm": imt.imt_mm if imt else np.nan,
                "imt_columns": imt.n_columns if imt else 0,
            }
        )
    return out


def measure(seg, index: pd.DataFrame, source: str, batch_size: int = 64, progress=None) -> pd.DataFrame:
    """Per-image measurements (one row per still), ``batch_size`` images in memory at a time."""
    say = progress or (lambda msg: None)
    rows, recs, told = list(index.itertuples(index=False)), [], 0
    for i in range(0, len(rows), batch_size):
        recs += _measure_batch(seg, rows[i : i + batch_size], source)
        if len(recs) * 5 // len(rows) > told:  # five progress lines, whatever the size
            told = len(recs) * 5 // len(rows)
            say(f"subjects' {SOURCES[source]}: {len(recs)} of {len(rows)} measured")
    return pd.DataFrame(recs)


def per_subject(per_still: pd.DataFrame, prefix: str = "") -> pd.DataFrame:
    """One row per subject from per-image rows (columns named ``prefix`` + the measurement)."""
    p = prefix
    side = per_still.groupby(["subject_id", "side"], dropna=False).agg(
        area=(f"{p}plaque_area_mm2", "mean"),
        count=(f"{p}plaque_count", "mean"),
        imt=(f"{p}imt_mm", "mean"),
        n=(f"{p}plaque_area_mm2", "size"),
    )
    g = side.groupby(level="subject_id")
    out = pd.DataFrame(
        {
            f"{p}plaque_area_mm2": g.area.mean(),
            f"{p}total_plaque_area_mm2": g.area.sum(),
            f"{p}plaque_count": g["count"].sum(),
            f"{p}any_plaque": g.area.max() > 0,
            f"{p}imt_mm": g.imt.mean(),
            "n_sides": g.size(),
            "n_images": g.n.sum(),
        }
    )
    if f"{p}mean_disagreement" in per_still:
        out[f"{p}mean_disagreement"] = per_still.groupby("subject_id")[f"{p}mean_disagreement"].mean()
    return out.reset_index()


def agreement(subjects: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Measured vs true per subject: ICC(A,1), Spearman, Bland-Altman bias and limits for the
    plaque area and the IMT; sensitivity and specificity of "any plaque". Tidy: ``measure,
    metric, estimate``."""
    from scipy import stats

    from ..vd.agreement import bland_altman, icc

    d = subjects.merge(truth, on="subject_id")
    rows = []
    for name, m, t in (
        ("plaque area (mm², mean per side)", "plaque_area_mm2", "true_plaque_area_mm2"),
        ("far-wall IMT (mm)", "imt_mm", "true_imt_mm"),
    ):
        x = d[[m, t]].dropna()
        if len(x) < 3:
            continue
        ba = bland_altman(x[m], x[t])
        vals = {
            "n": len(x),
            "icc_a1": icc(x[[m, t]].to_numpy())["icc_a1"],
            "spearman": float(stats.spearmanr(x[m], x[t]).statistic) if x[m].nunique() > 1 else float("nan"),
            "mean_abs_error": float((x[m] - x[t]).abs().mean()),
            **{k: v for k, v in ba.items() if k != "n"},
        }
        rows += [{"measure": name, "metric": k, "estimate": float(v)} for k, v in vals.items()]
    if "true_any_plaque" in d:
        tp = (d.any_plaque & d.true_any_plaque).sum()
        rows.append(
            {"measure": "any plaque", "metric": "sensitivity", "estimate": float(tp / max(1, d.true_any_plaque.sum()))}
        )
        tn = (~d.any_plaque & ~d.true_any_plaque).sum()
        rows.append(
            {
                "measure": "any plaque",
                "metric": "specificity",
                "estimate": float(tn / max(1, (~d.true_any_plaque).sum())),
            }
        )
    return pd.DataFrame(rows)


def truth_per_subject(stills_truth: pd.DataFrame) -> pd.DataFrame:
    """The simulator's truth aggregated exactly like the measurements (:func:`per_subject`)."""
    t = stills_truth.rename(columns={"true_plaque_count": "true_plaque_count"})
    t = t.assign(true_mean_disagreement=0.0)
    out = per_subject(t, prefix="true_").drop(columns=["n_sides", "n_images", "true_mean_disagreement"])
    return out
