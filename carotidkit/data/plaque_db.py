"""Read a plaque database folder in the Ar-PlaqSegm1 layout into one tidy table.

Handles the database's quirks: ``train/`` and ``test/`` split folders, ``<n>.png`` images with
``<n>_labeled.png`` masks, stray spaces in names (``"544 .png"``), gaps in the numbering, masks
stored as RGB, mask values that are not only 0/255 (thresholded, never compared to 255).
"""

from __future__ import annotations

import re
from pathlib import Path

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


#: Largest image decoded (pixels). Ultrasound exports are ~1 MP; a corrupt or hostile header can
#: claim 60000x60000 and make the decoder allocate gigabytes. Override per call (``max_pixels=``).
from ..imaging import (  # noqa: E402,F401  (generic image helpers live in carotidkit.imaging)
    MAX_PIXELS,
    _bit_depth,
    _decode,
    image_size,
    mask_values,
    read_image,
    read_mask,
)

ERRORS = ("raise", "flag")


def _split_name(folder: Path, root: Path) -> str:
    if folder == root:
        return "unsplit"
    return SPLIT_ALIASES.get(folder.name.strip().lower(), folder.name.strip().lower())


def _scan(root: Path) -> list[Path]:
    """The folders holding images: split folders, or the root itself. Layouts that would drop
    images silently (images at the root beside split folders; a split folder whose images sit
    one level down) are refused."""

    def entries(folder):
        try:
            return sorted(folder.iterdir())
        except OSError as exc:
            raise CarotidkitError(f"{folder}: cannot be listed ({exc.strerror}); check permissions") from None

    def has_images(folder):
        return any(q.suffix.lower() in IMAGE_EXT and not q.name.startswith(".") for q in entries(folder))

    subdirs = [p for p in entries(root) if p.is_dir() and p.suffix.lower() not in IMAGE_EXT]
    subdirs = [p for p in subdirs if not p.name.startswith((".", "_"))]
    folders = [f for f in subdirs if has_images(f)]
    if not folders:
        return [root]
    loose = [q.name for q in entries(root) if q.suffix.lower() in IMAGE_EXT and not q.name.startswith(".")]
    if loose:
        raise CarotidkitError(
            f"{root}: {len(loose)} image(s) at the top level (e.g. {loose[0]}) beside split folders "
            f"({', '.join(f.name for f in folders)}); move them into a split folder or they would be ignored"
        )
    for f in subdirs:
        if f in folders:
            continue
        nested = [g for g in entries(f) if g.is_dir() and has_images(g)]
        if nested:
            raise CarotidkitError(
                f"{f}: no images directly inside, but its subfolder {nested[0].name}/ has some; "
                f"carotidkit reads <split>/<n>.png and <n>_labeled.png - move them up one level"
            )
    return folders


def load_plaque_db(root, check: bool = True, errors: str = "raise", max_pixels: int | None = None) -> pd.DataFrame:
    """Table of every image/mask pair: ``image_id, split, image_path, mask_path, has_plaque``.

    ``check`` decodes every file (corrupt files, size mismatches, plaque presence). With
    ``errors="flag"`` a per-file problem (unreadable, wrong size, a folder or broken link where
    an image should be) becomes an ``error`` text on its row instead of stopping the load; only
    problems with the folder as a whole raise.

    Example:
        db = load_plaque_db("/data/Ar-PlaqSegm1")
        db.groupby("split").has_plaque.agg(["size", "sum"])
    """
    if errors not in ERRORS:
        raise CarotidkitError(f"errors={errors!r}: use 'raise' or 'flag'")
    root = Path(root)
    if not root.is_dir():
        raise CarotidkitError(f"{root}: plaque database folder not found; pass the folder holding train/ and test/")
    rows, problems, orphans = [], [], []  # orphans: files that pair with nothing (flag mode)
    for folder in _scan(root):
        split = _split_name(folder, root)
        images, masks = {}, {}
        for p in sorted(folder.iterdir()):
            if p.suffix.lower() not in IMAGE_EXT or p.name.startswith("."):
                continue
            stem = p.stem
            m = MASK_RE.match(stem)
            target, key = (masks, m.group("id").strip()) if m else (images, stem.strip())
            if key in target:
                msg = f"{p}: id {key!r} also used by {target[key].name} in {folder}; rename one of them"
                if errors == "raise":
                    raise CarotidkitError(msg)
                orphans.append({"image_id": f"{key}:{p.name}", "split": split, "file_name": p.name, "error": msg})
                continue
            target[key] = p
        for key, mp in masks.items():
            if key not in images:
                msg = f"{mp}: mask without an image (expected {key}.png in {folder}); add the image or remove the mask"
                if errors == "raise":
                    raise CarotidkitError(msg)
                orphans.append({"image_id": f"{key}:{mp.name}", "split": split, "file_name": mp.name, "error": msg})
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
    if orphans:  # listed with their error; no image to check or clean
        extra = pd.DataFrame(orphans).assign(image_path=None, mask_path=None)
        df = pd.concat([df, extra[df.columns.tolist() + ["error"]]], ignore_index=True)
    # ids must be unique across splits (01 writes clean/images/<image_id>.png): an id used in two
    # folders (train/5.png and test/5.png) becomes "<split>_<id>" in both; source_id keeps the original
    df["source_id"] = df.image_id
    clash = df.image_id.duplicated(keep=False)
    df.loc[clash, "image_id"] = df.loc[clash, "split"] + "_" + df.loc[clash, "image_id"]
    if "error" not in df:
        df["error"] = None
    df["error"] = df["error"].astype(object).where(df["error"].notna(), None)
    for ip, msg in problems:
        df.loc[df.image_path == str(ip), "error"] = msg
    if check:
        checked = []
        for r in df.itertuples():
            info = {"has_plaque": False, "height": 0, "width": 0, "mask_rgb": False, "mask_nonbinary": False}
            try:
                if r.image_path is None:
                    checked.append(info)
                    continue
                img = read_image(r.image_path, max_pixels=max_pixels)
                info["height"], info["width"] = img.shape[:2]
                if r.mask_path is not None:
                    flat, full, rgb = mask_values(r.mask_path, max_pixels=max_pixels)
                    if flat.shape[:2] != img.shape[:2]:
                        raise CarotidkitError(
                            f"{r.mask_path}: mask is {flat.shape[1]}x{flat.shape[0]} but its image "
                            f"{Path(r.image_path).name} is {img.shape[1]}x{img.shape[0]}; "
                            "resample the mask to the image grid"
                        )
                    info.update(
                        has_plaque=bool((flat > full // 2).any() if full > 1 else flat.any()),
                        mask_rgb=rgb,
                        mask_nonbinary=bool(((flat > 0) & (flat < full)).any()),
                    )
            except CarotidkitError as exc:
                if errors == "raise":
                    raise
                df.loc[r.Index, "error"] = str(exc)
            checked.append(info)
        df = df.join(pd.DataFrame(checked, index=df.index))
    elif errors == "flag":
        for r in df.itertuples():
            for p in (r.image_path, r.mask_path):
                if p is not None and not Path(p).is_file():
                    df.loc[r.Index, "error"] = f"{p}: not a readable file (folder, broken link or link loop)"
    if errors == "raise" and df.error.notna().any():
        raise CarotidkitError(df.error.dropna().iloc[0])

    def _order(s):
        return s.str.extract(r"(\d+)")[0].astype(float).fillna(np.inf)

    df = df.sort_values(["split", "image_id"], key=lambda s: _order(s) if s.name == "image_id" else s)
    return df.reset_index(drop=True)
