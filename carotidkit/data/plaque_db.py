"""Read a plaque database folder in the Ar-PlaqSegm1 layout into one tidy table.

Handles the database's quirks: ``train/`` and ``test/`` split folders, ``<n>.png`` images with
``<n>_labeled.png`` masks, stray spaces in names (``"544 .png"``), gaps in the numbering, masks
stored as RGB, mask values that are not only 0/255 (thresholded, never compared to 255).
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from ..io import CarotidkitError

IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
MASK_RE = re.compile(r"^(?P<id>.+?)\s*_labell?ed\s*$", re.I)
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "dev": "train",
    "development": "train",
    "test": "test",
    "testing": "test",
    "val": "val",
    "valid": "val",
    "validation": "val",
}


def read_image(path, color: bool = False) -> np.ndarray:
    """Decode an image (uint8; grayscale unless ``color``); a clear error if it cannot be read."""
    data = np.fromfile(str(path), np.uint8)
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        raise CarotidkitError(f"{path}: not a readable image (truncated or corrupt?); re-export or remove it")
    if img.dtype == np.uint16:
        img = (img >> 8).astype(np.uint8)
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    if not color and img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return img


def read_mask(path, threshold: int = 127) -> np.ndarray:
    """Binary plaque mask (bool): RGB collapsed by max over channels, then ``> threshold``."""
    m = read_image(path, color=True)
    if m.ndim == 3:
        m = m.max(axis=2)
    return m > threshold


def _split_name(folder: Path, root: Path) -> str:
    if folder == root:
        return "unsplit"
    return SPLIT_ALIASES.get(folder.name.strip().lower(), folder.name.strip().lower())


def load_plaque_db(root, check: bool = True, errors: str = "raise") -> pd.DataFrame:
    """Table of every image/mask pair: ``image_id, split, image_path, mask_path, has_plaque``.

    ``check`` decodes every file (corrupt files, size mismatches, plaque presence). With
    ``errors="flag"`` a bad pair gets an ``error`` text instead of stopping the load.

    Example:
        db = load_plaque_db("/data/Ar-PlaqSegm1")
        db.groupby("split").has_plaque.agg(["size", "sum"])
    """
    root = Path(root)
    if not root.is_dir():
        raise CarotidkitError(f"{root}: plaque database folder not found; pass the folder holding train/ and test/")
    folders = [p for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith((".", "_"))]
    folders = [f for f in folders if any(q.suffix.lower() in IMAGE_EXT for q in f.iterdir())] or [root]
    rows, problems = [], []
    for folder in folders:
        split = _split_name(folder, root)
        images, masks = {}, {}
        for p in sorted(folder.iterdir()):
            if p.suffix.lower() not in IMAGE_EXT or p.name.startswith("."):
                continue
            stem = p.stem
            m = MASK_RE.match(stem)
            target, key = (masks, m.group("id").strip()) if m else (images, stem.strip())
            if key in target:
                raise CarotidkitError(
                    f"{p}: id {key!r} also used by {target[key].name} in {folder}; rename one of them"
                )
            target[key] = p
        for key, mp in masks.items():
            if key not in images:
                raise CarotidkitError(
                    f"{mp}: mask without an image (expected {key}.png in {folder}); add the image or remove the mask"
                )
        for key, ip in images.items():
            if key not in masks:
                problems.append(
                    (
                        ip,
                        f"{ip}: image without a mask (expected {key}_labeled.png); "
                        "add an empty mask for plaque-free images",
                    )
                )
            rows.append(
                {
                    "image_id": key,
                    "split": split,
                    "image_path": str(ip),
                    "mask_path": str(masks[key]) if key in masks else None,
                    "file_name": ip.name,
                }
            )
    if not rows:
        raise CarotidkitError(
            f"{root}: no images found (expected <n>.png with <n>_labeled.png, optionally in train/ and test/)"
        )
    df = pd.DataFrame(rows)
    # ids must be unique across splits (01 writes clean/images/<image_id>.png): an id used in two
    # folders (train/5.png and test/5.png) becomes "<split>_<id>" in both; source_id keeps the original
    df["source_id"] = df.image_id
    clash = df.image_id.duplicated(keep=False)
    df.loc[clash, "image_id"] = df.loc[clash, "split"] + "_" + df.loc[clash, "image_id"]
    df["error"] = None
    for ip, msg in problems:
        df.loc[df.image_path == str(ip), "error"] = msg
    if check:
        checked = []
        for r in df.itertuples():
            info = {"has_plaque": False, "height": 0, "width": 0, "mask_rgb": False, "mask_nonbinary": False}
            try:
                img = read_image(r.image_path)
                info["height"], info["width"] = img.shape[:2]
                if r.mask_path is not None:
                    raw = read_image(r.mask_path, color=True)
                    if raw.shape[:2] != img.shape[:2]:
                        raise CarotidkitError(
                            f"{r.mask_path}: mask is {raw.shape[1]}x{raw.shape[0]} but its image "
                            f"{Path(r.image_path).name} is {img.shape[1]}x{img.shape[0]}; "
                            "resample the mask to the image grid"
                        )
                    flat = raw.max(axis=2) if raw.ndim == 3 else raw
                    info.update(
                        has_plaque=bool((flat > 127).any()),
                        mask_rgb=raw.ndim == 3,
                        mask_nonbinary=bool(((flat > 0) & (flat < 255)).any()),
                    )
            except CarotidkitError as exc:
                if errors == "raise":
                    raise
                df.loc[r.Index, "error"] = str(exc)
            checked.append(info)
        df = df.join(pd.DataFrame(checked, index=df.index))
    if errors == "raise" and df.error.notna().any():
        raise CarotidkitError(df.error.dropna().iloc[0])

    def _order(s):
        return s.str.extract(r"(\d+)")[0].astype(float).fillna(np.inf)

    df = df.sort_values(["split", "image_id"], key=lambda s: _order(s) if s.name == "image_id" else s)
    return df.reset_index(drop=True)
