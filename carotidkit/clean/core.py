"""Image cleaning for plaque segmentation: overlays, scan area, squaring, mask QC, duplicates.

What Rulloni et al. did by hand, as functions: detect burned-in overlays (caliper crosses, text,
scanner marks, colour annotations) and inpaint them without touching any other pixel; find the
scan area and crop the black margins; square the image by a documented policy and resize it to
the model size with its mask resampled consistently (and checked to stay aligned); flag masks
that look wrong; find exact and near duplicates and the leakage they cause across splits; make
group-aware splits so one duplicate group never sits on both sides.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from .. import io
from ..imaging import read_image, read_mask, redact_clip, redact_for_display, scan_box  # noqa: F401
from ..layout import Clean
from ..settings import CleanSettings

K3 = np.ones((3, 3), np.uint8)


# ----------------------------------------------------------------------------- scan area


# ----------------------------------------------------------------------------- overlays


def detect_overlays(img: np.ndarray, box=None, grow_threshold: int = 12) -> tuple[np.ndarray, tuple]:
    """Mask of burned-in overlay pixels, and the scan box it was computed with.

    - outside the scan area: every non-black pixel (text, logos in the margins);
    - inside: seeds are components at least ~9 px long (scaled to the image width) of saturated
      pixels (>= 245) or flat bright plateaus (3x3 std <= 3, >= 200), colour annotations (channel spread > 40) and bright marks in the border bands where
      scanners draw depth ticks and focus markers; seeds grow by one pixel, then by up to two
      more into pixels brighter than the local median (21 px) by ``grow_threshold`` - the
      anti-aliased edges of lines and glyphs.
    Speckle seldom saturates on a well-set display, so saturated plateaus are overlays.
    """
    color = img if img.ndim == 3 else None
    g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if color is not None else img
    x0, y0, x1, y1 = box or scan_box(g)
    inside = np.zeros(g.shape, bool)
    inside[y0:y1, x0:x1] = True
    outside = ~inside & (g > 6)
    bg = cv2.medianBlur(g, 21)
    contrast = g.astype(np.int16) - bg
    f = g.astype(np.float32)
    mean = cv2.blur(f, (3, 3))
    std = np.sqrt(np.maximum(cv2.blur(f * f, (3, 3)) - mean * mean, 0))
    bright = inside & ((g >= 245) | ((g >= 200) & (std <= 3)))
    # keep bright components at least ~9 px long (at 800 px): lines, glyphs, marks - not speckle
    n, lab, stats, _ = cv2.connectedComponentsWithStats(bright.astype(np.uint8), connectivity=8)
    min_len = max(5, int(round(9 * g.shape[1] / 800)))
    keep = np.zeros(n, bool)
    keep[1:] = np.maximum(stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]) >= min_len
    seeds = keep[lab]
    if color is not None:
        spread = color.max(axis=2).astype(np.int16) - color.min(axis=2)
        seeds |= inside & (spread > 40)
    band = max(6, int(round(0.03 * (x1 - x0))))
    edge = np.zeros(g.shape, bool)
    edge[y0:y1, x1 - band : x1] = True
    edge[y0:y1, x0 : x0 + band] = True
    seeds |= edge & (g >= 200) & (contrast >= 40)
    allow = ((contrast >= grow_threshold) | (g >= 200)) & inside
    region = (cv2.dilate(seeds.astype(np.uint8), K3) > 0) & inside
    for _ in range(2):
        region = (cv2.dilate(region.astype(np.uint8), K3) > 0) & (allow | region)
    return region | outside, (x0, y0, x1, y1)


def inpaint(img: np.ndarray, mask: np.ndarray, radius: int = 3) -> np.ndarray:
    """Fill ``mask`` pixels (Telea); every pixel outside ``mask`` is returned unchanged."""
    filled = cv2.inpaint(img, mask.astype(np.uint8), radius, cv2.INPAINT_TELEA)
    out = img.copy()
    out[mask] = filled[mask]
    return out


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def cine_overlays(frames: np.ndarray, box=None, static_sd: float = 2.0) -> np.ndarray:
    """Mask ``[H, W]`` of burned-in overlays on a cine loop (text, depth scale, calipers, focus
    markers): 01's still-image detector run on the loop's median frame (static marks survive the
    median, moving speckle does not), plus bright pixels that never change (range over the loop
    <= 2 ``static_sd`` and >= 200 grey) inside the scan area, both on 9 frames spread over the
    loop. Outside the scan area is left to the crop."""
    frames = np.asarray(frames)
    x0, y0, x1, y1 = box or scan_box(frames.max(axis=0))
    # marks are in every frame: 9 frames spread over the loop find them at a fraction of the cost
    sub = frames[np.unique(np.linspace(0, len(frames) - 1, min(9, len(frames))).round().astype(int))]
    med = np.median(sub, axis=0).astype(np.uint8)
    mask, _ = detect_overlays(med, (x0, y0, x1, y1))
    inside = np.zeros(med.shape, bool)
    inside[y0:y1, x0:x1] = True
    lo = sub.min(axis=0)
    static = (lo >= 200) & ((sub.max(axis=0) - lo) <= 2 * static_sd) if len(sub) > 1 else np.zeros(med.shape, bool)
    return (mask | static) & inside


# ----------------------------------------------------------------------------- geometry


@dataclass
class Geometry:
    box: tuple[int, int, int, int]
    stretch: float  # horizontal factor applied to undo an export stretch
    pad_top: int
    pad_left: int
    side: int  # square side before resizing (pad policy)
    scale_row: float  # source pixels per model pixel (rows)
    scale_col: float


def crop_square_resize(img, mask, box, size: int, square: str, undo_stretch: float | None):
    """Crop to ``box``, optionally undo a horizontal stretch, square, resize to ``size``.

    ``square="pad"`` keeps the aspect ratio and pads with black; ``"resize"`` stretches. The
    mask goes through the same steps (area interpolation, then a 0.5 threshold).
    Returns ``(image, mask, Geometry)``.
    """
    if square not in ("pad", "resize"):
        raise ValueError(f"square must be 'pad' or 'resize', not {square!r}")
    x0, y0, x1, y1 = box
    im = img[y0:y1, x0:x1]
    m = mask[y0:y1, x0:x1].astype(np.float32) if mask is not None else None
    f = float(undo_stretch or 1.0)
    if f != 1.0:
        w = max(1, int(round(im.shape[1] * f)))
        im = cv2.resize(im, (w, im.shape[0]), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
        if m is not None:
            m = cv2.resize(m, (w, m.shape[0]), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
    h, w = im.shape[:2]
    pt = pl = 0
    if square == "pad":
        side = max(h, w)
        pt, pl = (side - h) // 2, (side - w) // 2
        im = cv2.copyMakeBorder(im, pt, side - h - pt, pl, side - w - pl, cv2.BORDER_CONSTANT, value=0)
        if m is not None:
            m = cv2.copyMakeBorder(m, pt, side - h - pt, pl, side - w - pl, cv2.BORDER_CONSTANT, value=0)
        sr = sc = side / size
    else:
        side = 0
        sr, sc = h / size, w / size
    interp = cv2.INTER_AREA if im.shape[0] > size else cv2.INTER_LINEAR
    im = cv2.resize(im, (size, size), interpolation=interp)
    mo = (cv2.resize(m, (size, size), interpolation=interp) >= 0.5) if m is not None else None
    return im, mo, Geometry(tuple(int(v) for v in box), f, pt, pl, side, sr, sc)


def model_to_crop(mask_model: np.ndarray, geom: Geometry, h: int, w: int) -> np.ndarray:
    """A model-size mask mapped back onto the ``h x w`` scan-area crop it was made from (the
    inverse of :func:`crop_square_resize`'s geometry, nearest neighbour)."""
    wf = max(1, int(round(w * geom.stretch)))
    if geom.side:
        back = cv2.resize(mask_model.astype(np.uint8), (geom.side, geom.side), interpolation=cv2.INTER_NEAREST)
        back = back[geom.pad_top : geom.pad_top + h, geom.pad_left : geom.pad_left + wf]
    else:
        back = cv2.resize(mask_model.astype(np.uint8), (wf, h), interpolation=cv2.INTER_NEAREST)
    return cv2.resize(back, (w, h), interpolation=cv2.INTER_NEAREST) > 0


def alignment(mask_src: np.ndarray, mask_model: np.ndarray, geom: Geometry) -> tuple[float, float]:
    """Check that the model-size mask still sits on the source mask.

    Maps the model-size mask back onto the source crop and returns ``(iou, shift)``: the IoU of
    the round trip (limited by resolution at small model sizes) and the distance between the
    two masks' centroids in model pixels (a misalignment shows here; resolution loss does not).
    """
    x0, y0, x1, y1 = geom.box
    src = mask_src[y0:y1, x0:x1]
    h, w = src.shape
    back = model_to_crop(mask_model, geom, h, w)
    union = (src | back).sum()
    iou = float((src & back).sum() / union) if union else 1.0
    if not src.any() or not back.any():
        return iou, (0.0 if src.any() == back.any() else float("inf"))
    (ys, xs), (yb, xb) = np.nonzero(src), np.nonzero(back)
    dy = (ys.mean() - yb.mean()) / geom.scale_row
    dx = (xs.mean() - xb.mean()) * geom.stretch / geom.scale_col
    return iou, float(np.hypot(dy, dx))


@dataclass
class CleanedExport:
    gray: np.ndarray  # the export in grayscale, as read
    cleaned: np.ndarray  # overlays inpainted (scan area only), same size as the export
    overlay: np.ndarray  # detected overlay pixels (margins included; only scan-area ones are inpainted)
    image: np.ndarray  # model input: cropped, squared, resized
    mask: np.ndarray | None  # the mask through the same geometry
    geom: Geometry


def clean_export(
    img: np.ndarray,
    size: int,
    square: str,
    undo_stretch: float | None,
    inpaint_radius: int,
    mask: np.ndarray | None = None,
) -> CleanedExport:
    """The whole per-image cleaning step: detect overlays, inpaint them inside the scan area,
    crop/square/resize image (and mask) to ``size``. 01_cleaning and ``PlaqueSegmenter`` both
    call this, so new images are preprocessed exactly like the training data."""
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.ndim == 3 else img
    overlay, box = detect_overlays(img)
    x0, y0, x1, y1 = box
    inside = np.zeros(gray.shape, bool)
    inside[y0:y1, x0:x1] = True
    cleaned = inpaint(gray, overlay & inside, inpaint_radius)
    im, m, geom = crop_square_resize(cleaned, mask, box, size, square, undo_stretch)
    return CleanedExport(gray, cleaned, overlay, im, m, geom)


# ----------------------------------------------------------------------------- mask QC


def mask_qc(mask: np.ndarray, box, min_speck_px: int, labelled_plaque: bool | None = None) -> dict:
    """QC flags of one binary mask in source geometry."""
    x0, y0, x1, y1 = box
    area = int(mask.sum())
    inside = np.zeros(mask.shape, bool)
    inside[y0:y1, x0:x1] = True
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA] if n > 1 else np.array([], int)
    return {
        "mask_area_px": area,
        "mask_components": int(len(areas)),
        "flag_mask_outside_scan": bool((mask & ~inside).any()),
        "flag_tiny_specks": bool(((areas > 0) & (areas < min_speck_px)).any()),
        "flag_empty_but_labelled_plaque": bool(labelled_plaque is True and area == 0),
    }


# ----------------------------------------------------------------------------- duplicates


def pixel_hash(img: np.ndarray) -> str:
    """Content hash of the decoded pixels (catches byte-different encodings of one image)."""
    return hashlib.sha1(np.ascontiguousarray(img).tobytes() + str(img.shape).encode()).hexdigest()


def dhash(img: np.ndarray, size: int = 8) -> int:
    """64-bit difference hash (horizontal gradients of a 9x8 thumbnail)."""
    small = cv2.resize(img, (size + 1, size), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int(np.packbits(bits).view(">u8")[0]) if bits.size == 64 else int("".join(map(str, bits.astype(int))), 2)


def duplicate_groups(table: pd.DataFrame, max_hamming: int = 4) -> pd.DataFrame:
    """Union exact (``pixel_hash``) and near (``dhash`` within ``max_hamming`` bits) duplicates.

    Returns ``table`` with ``dup_group`` (group id, or None for singletons), ``dup_kind``
    ("exact", "near" or None) and ``group_size``.
    """
    n = len(table)
    parent = list(range(n))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    kind = [None] * n
    for _, idx in table.groupby("pixel_hash").indices.items():
        for j in idx[1:]:
            parent[find(j)] = find(idx[0])
            kind[j] = kind[idx[0]] = "exact"
    h = np.array(table["dhash"].astype(np.uint64).values, dtype=np.uint64)
    bits = np.unpackbits(h.view(np.uint8).reshape(-1, 8), axis=1).astype(np.uint8)
    for i in range(n):
        d = (bits[i + 1 :] != bits[i]).sum(1)
        for j in np.where(d <= max_hamming)[0] + i + 1:
            if find(i) != find(j):
                parent[find(j)] = find(i)
                kind[i] = kind[i] or "near"
                kind[j] = kind[j] or "near"
    roots = [find(i) for i in range(n)]
    sizes = pd.Series(roots).map(pd.Series(roots).value_counts())
    out = table.copy()
    ids = {r: f"G{k:03d}" for k, r in enumerate(sorted({r for r, s in zip(roots, sizes) if s > 1}))}
    out["dup_group"] = [ids.get(r) for r in roots]
    out["dup_kind"] = [kind[i] if out["dup_group"].iloc[i] else None for i in range(n)]
    out["group_size"] = sizes.values
    return out


def leakage_table(table: pd.DataFrame, split_col: str = "split") -> pd.DataFrame:
    """Duplicate groups whose members sit in more than one split (one row per group)."""
    g = table.dropna(subset=["dup_group"]).groupby("dup_group")
    rows = []
    for gid, sub in g:
        splits = sorted(sub[split_col].unique())
        if len(splits) > 1:
            rows.append(
                {
                    "dup_group": gid,
                    "kind": sub.dup_kind.dropna().iloc[0] if sub.dup_kind.notna().any() else None,
                    "splits": "+".join(splits),
                    "image_ids": ", ".join(map(str, sub.image_id)),
                    "n_images": len(sub),
                }
            )
    return pd.DataFrame(rows, columns=["dup_group", "kind", "splits", "image_ids", "n_images"])


def group_split(
    table: pd.DataFrame,
    fraction: float,
    seed: int = 0,
    group_col: str = "dup_group",
    stratify: str | None = "has_plaque",
) -> pd.Series:
    """Boolean Series: True for rows drawn into the held-out part, whole groups at a time.

    Singletons are their own group. Stratified by ``stratify`` (the group's majority value).
    """
    rng = np.random.default_rng(seed)
    grp = table[group_col].fillna(pd.Series([f"_single{i}" for i in range(len(table))], index=table.index))
    per_group = (
        pd.DataFrame({"g": grp, "s": table[stratify] if stratify else 0})
        .groupby("g")
        .agg(size=("s", "size"), strat=("s", lambda v: v.mean() >= 0.5))
    )
    chosen = set()
    for _, sub in per_group.groupby("strat"):
        order = sub.index.to_numpy()[rng.permutation(len(sub))]
        target, got = fraction * sub["size"].sum(), 0
        for gname in order:
            if got >= target:
                break
            chosen.add(gname)
            got += sub.loc[gname, "size"]
    return grp.isin(chosen)


# ----------------------------------------------------------------------------- the whole database


def _second_reader_mask(second_dir, rec, shape) -> np.ndarray | None:
    """A second reader's mask of ``rec`` (same file name as its mask, flat or in the split folder)."""
    if not second_dir or not rec.get("mask_path"):
        return None
    name = Path(rec["mask_path"]).name
    for cand in (Path(second_dir) / name, Path(second_dir) / str(rec.get("split", "")) / name):
        if cand.is_file():
            m = read_mask(cand)
            if m.shape != shape:
                raise io.CarotidkitError(
                    f"{cand}: second reader's mask is {m.shape[1]}x{m.shape[0]} but the image is {shape[1]}x{shape[0]}"
                )
            return m
    return None


def _clean_one(args) -> dict:
    rec, out_dir, cfg, truth_dir, second_dir = args
    size, square, undo_stretch = cfg.model_size_px, cfg.square, cfg.undo_stretch
    row = {"image_id": rec["image_id"], "split_shipped": rec["split"]}
    try:
        if rec.get("error"):  # e.g. an image without a mask, found when listing
            raise io.CarotidkitError(rec["error"])
        raw = read_image(rec["image_path"], color=True)
        shape = raw.shape[:2]
        mask = read_mask(rec["mask_path"]) if rec.get("mask_path") else np.zeros(shape, bool)
        if mask.shape != shape:
            raise io.CarotidkitError(
                f"{rec['mask_path']}: mask is {mask.shape[1]}x{mask.shape[0]} but the image is {shape[1]}x{shape[0]}"
            )
        ce = clean_export(raw, size, square, undo_stretch, cfg.inpaint_radius, mask)
        gray, cleaned, overlay, im, m, geom = ce.gray, ce.cleaned, ce.overlay, ce.image, ce.mask, ce.geom
        box = geom.box
        x0, y0, x1, y1 = box
        inside = np.zeros(gray.shape, bool)
        inside[y0:y1, x0:x1] = True
        io.write_png(Path(out_dir) / "images" / f"{rec['image_id']}.png", im)
        io.write_png(Path(out_dir) / "masks" / f"{rec['image_id']}.png", m.astype(np.uint8) * 255)
        m2 = _second_reader_mask(second_dir, rec, shape)
        if m2 is not None:  # through the very same crop, square and resize as the first mask
            m2 = crop_square_resize(gray, m2, box, size, square, undo_stretch)[1]
            io.write_png(Path(out_dir) / SECOND_READER / f"{rec['image_id']}.png", m2.astype(np.uint8) * 255)
        row["second_reader"] = m2 is not None
        crop = gray[y0:y1, x0:x1]
        row.update(
            {
                "height": gray.shape[0],
                "width": gray.shape[1],
                "scan_x0": x0,
                "scan_y0": y0,
                "scan_x1": x1,
                "scan_y1": y1,
                "margin_left": x0,
                "margin_top": y0,
                "margin_right": gray.shape[1] - x1,
                "margin_bottom": gray.shape[0] - y1,
                "overlay_fraction": float((overlay & inside).mean() / max(inside.mean(), 1e-9)),
                "overlay_px": int((overlay & inside).sum()),
                "scale_row": geom.scale_row,
                "scale_col": geom.scale_col,
                "pad_top": geom.pad_top,
                "pad_left": geom.pad_left,
                "square_side": geom.side,
                "mask_area_model_px": int(m.sum()),
                "pixel_hash": pixel_hash(gray),
                "dhash": dhash(crop),
                "has_plaque": bool(mask.any()),
                "error": None,
            }
        )
        row.update(mask_qc(mask, box, cfg.min_speck_px, rec.get("labelled_plaque")))
        iou, shift = alignment(mask, m, geom) if mask.sum() >= 30 else (None, None)
        row.update(align_iou=iou, align_shift_model_px=shift, flag_misaligned=bool(shift is not None and shift > 2.5))
        if truth_dir is not None:
            tdir = Path(truth_dir)
            clean_truth = read_image(tdir / f"{rec['image_id']}_clean.png")
            ov_all = read_mask(tdir / f"{rec['image_id']}_overlay.png")
            ov_truth = ov_all & inside
            det = overlay & inside
            row.update(
                {
                    "truth_overlay_all_px": int(ov_all.sum()),
                    "detected_true_all_px": int((overlay & ov_all).sum()),
                    "truth_overlay_px": int(ov_truth.sum()),
                    "detected_true_px": int((det & ov_truth).sum()),
                    "changed_non_overlay_px": int((cleaned != gray)[~ov_truth].sum()),
                    "non_overlay_px": int((~ov_truth & inside).sum()),
                    "psnr_before": psnr(gray[ov_truth], clean_truth[ov_truth]) if ov_truth.any() else None,
                    "psnr_after": psnr(cleaned[ov_truth], clean_truth[ov_truth]) if ov_truth.any() else None,
                }
            )
    except io.CarotidkitError as exc:
        row.update({"error": str(exc), "has_plaque": False})
    except cv2.error as exc:
        row.update({"error": f"{rec['image_path']}: OpenCV failed ({str(exc).splitlines()[-1]})", "has_plaque": False})
    return row


SECOND_READER = Clean.SECOND_READER  # sub-folder of the second reader's masks
QC_FLAGS = ("flag_mask_outside_scan", "flag_tiny_specks", "flag_empty_but_labelled_plaque", "flag_misaligned")


def clean_database(
    db: pd.DataFrame,
    out_dir,
    settings: CleanSettings | None = None,
    /,
    *,
    truth_dir=None,
    second_reader_dir=None,
    progress=None,
    **knobs,
) -> pd.DataFrame:
    """Clean every image of ``db`` (from :func:`carotidkit.data.load_plaque_db`) into ``out_dir``.

    ``settings`` (a :class:`~carotidkit.settings.CleanSettings`; its defaults when omitted) and
    ``knobs`` (its field names, e.g. ``model_size_px=64``) say how. Writes ``images/<id>.png`` and
    ``masks/<id>.png`` at ``model_size_px`` and returns the per-image QC table. ``second_reader_dir``: a folder with a second annotator's masks, named like the
    database's masks; they go through the same geometry into ``masks_second_reader/<id>.png``.

    Returns the per-image QC
    table (margins, overlay fraction, geometry, mask flags, duplicate group, error). Bad images
    get an ``error`` and ``flag_error`` instead of stopping the run.

    Example:
        qc = clean_database(load_plaque_db(root), "runs/smoke/clean", model_size_px=64)
    """
    cfg = (settings or CleanSettings()).replace(**knobs)
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "masks").mkdir(parents=True, exist_ok=True)
    if second_reader_dir:
        if not Path(second_reader_dir).is_dir():
            raise io.CarotidkitError(f"{second_reader_dir}: second reader's mask folder not found")
        (out_dir / SECOND_READER).mkdir(parents=True, exist_ok=True)
    recs = db.to_dict("records")
    truth = str(truth_dir) if truth_dir else None
    second = str(second_reader_dir) if second_reader_dir else None
    tasks = [(r, str(out_dir), cfg, truth, second) for r in recs]
    n_jobs = cfg.n_jobs or os.cpu_count() or 1
    if n_jobs > 1:
        with ProcessPoolExecutor(n_jobs, mp_context=get_context("spawn")) as pool:
            rows = list(pool.map(_clean_one, tasks, chunksize=8))
    else:
        rows = []
        for k, t in enumerate(tasks):
            rows.append(_clean_one(t))
            if progress and (k + 1) % 100 == 0:
                progress(f"cleaned {k + 1}/{len(tasks)}")
    qc = pd.DataFrame(rows)
    qc["flag_error"] = qc["error"].notna()
    ok = qc[~qc.flag_error].copy()
    if len(ok):
        ok = duplicate_groups(ok, cfg.near_dup_hamming)
        qc = qc.merge(ok[["image_id", "dup_group", "dup_kind", "group_size"]], on="image_id", how="left")
    else:  # every image failed: the errors are the result
        qc = qc.assign(dup_group=np.nan, dup_kind=None, group_size=np.nan)
    for f in QC_FLAGS:
        qc[f] = qc[f].eq(True) if f in qc else False
    return qc


def make_splits(qc: pd.DataFrame, val_fraction: float, test_fraction: float = 0.1, seed: int = 0) -> pd.DataFrame:
    """Group-aware train/val/test assignment.

    A shipped test split is kept as is (``split_shipped == "test"``); validation is drawn from
    the rest whole duplicate groups at a time. Test images with a duplicate in the training
    data are marked ``test_leak`` so results can be reported with and without them. Without a
    shipped split, test is drawn group-aware too. Images with errors are excluded.
    """
    t = qc[~qc.flag_error].copy()
    shipped_test = t.split_shipped.eq("test")
    if not shipped_test.any():
        held = group_split(t, test_fraction, seed + 1)
        t.loc[held, "split_shipped"] = "test"
        shipped_test = held
    t["split"] = np.where(shipped_test, "test", "train")
    dev = t[~shipped_test]
    val = group_split(dev, val_fraction, seed)
    t.loc[dev.index[val.values], "split"] = "val"
    leak_groups = set(leakage_table(t.assign(split=np.where(t.split == "test", "test", "dev"))).dup_group)
    t["test_leak"] = t.split.eq("test") & t.dup_group.isin(leak_groups)
    return t[["image_id", "split", "split_shipped", "has_plaque", "dup_group", "test_leak"]].reset_index(drop=True)


def cleaning_score(qc: pd.DataFrame) -> dict:
    """Overlay detection recall (whole image, and inside the scan area where pixels are inpainted),
    share of non-overlay scan-area pixels changed, PSNR inside the overlays before/after cleaning
    (against the overlay-free truth). Needs the simulator's truth (``truth_dir``)."""
    t = qc.dropna(subset=["truth_overlay_px"])
    return {
        "images": int(len(t)),
        "overlay_recall": float(t.detected_true_all_px.sum() / max(t.truth_overlay_all_px.sum(), 1)),
        "overlay_recall_in_scan_area": float(t.detected_true_px.sum() / max(t.truth_overlay_px.sum(), 1)),
        "non_overlay_changed_fraction": float(t.changed_non_overlay_px.sum() / max(t.non_overlay_px.sum(), 1)),
        "psnr_before_db": float(t.psnr_before.median()),
        "psnr_after_db": float(t.psnr_after.median()),
        "images_psnr_improved": float((t.psnr_after > t.psnr_before).mean()),
    }
