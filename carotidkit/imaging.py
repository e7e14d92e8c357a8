"""Generic image helpers every stage shares: decode images and masks with one-line errors
(:func:`read_image`, :func:`read_mask`), find the scan area inside black margins
(:func:`scan_box`) and redact everything outside it before anything is shown. Loaders, cleaning,
video and plots import them from here, so ``data`` and ``clean`` do not import each other.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import cv2
import numpy as np

from .io import CarotidkitError

MAX_PIXELS = 40_000_000


def _bit_depth(max_value: int) -> int:
    """Significant bits of integer data from its largest value: 8-bit data in a 16-bit PNG stays
    8-bit; 10-, 12- and 14-bit scanner data are recognised instead of being read as near-black."""
    for bits in (8, 10, 12, 14):
        if max_value < (1 << bits):
            return bits
    return 16


def image_size(path) -> tuple[int, int]:
    """``(width, height)`` from the file header, without decoding the pixels."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                return im.size
    except Image.DecompressionBombError as exc:
        raise CarotidkitError(f"{path}: image header claims an implausible size ({exc}); re-export it") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise CarotidkitError(
            f"{path}: not a readable image ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "re-export or remove it"
        ) from None


def _decode(path, max_pixels: int | None) -> np.ndarray:
    path = Path(path)
    if path.is_symlink():
        try:
            path.stat()
        except OSError as exc:
            what = "a link loop" if exc.errno == errno.ELOOP else f"a broken link (to {os.readlink(path)!r})"
            raise CarotidkitError(f"{path}: is {what}, not an image file; fix or remove it") from None
    if not path.is_file():
        kind = "a folder" if path.is_dir() else "not a regular file (link loop, device or socket?)"
        raise CarotidkitError(f"{path}: is {kind}, not an image file; rename or remove it")
    w, h = image_size(path)
    limit = MAX_PIXELS if max_pixels is None else max_pixels
    if w * h > limit:
        raise CarotidkitError(
            f"{path}: {w}x{h} pixels is over the {limit:,}-pixel limit (max_pixels=); downscale it or raise the limit"
        )
    try:
        data = np.fromfile(str(path), np.uint8)
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except (OSError, cv2.error) as exc:
        raise CarotidkitError(f"{path}: could not be decoded ({type(exc).__name__}); re-export it") from None
    if img is None:
        raise CarotidkitError(f"{path}: not a readable image (truncated or corrupt?); re-export or remove it")
    if img.dtype not in (np.uint8, np.uint16):
        raise CarotidkitError(f"{path}: {img.dtype} pixels; carotidkit reads 8- or 16-bit images")
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    return img


def read_image(path, color: bool = False, max_pixels: int | None = None) -> np.ndarray:
    """Decode an image to uint8 (grayscale unless ``color``); a clear one-line error otherwise.

    16-bit files are scaled by their significant bits (8-bit data stored in 16 bits stays as is;
    10/12/14-bit data is shifted down, not divided by 256). Files larger than ``max_pixels``
    (default :data:`MAX_PIXELS`) are refused before decoding.
    """
    img = _decode(path, max_pixels)
    if img.dtype == np.uint16:
        bits = _bit_depth(int(img.max()))
        img = (img >> (bits - 8)).astype(np.uint8) if bits > 8 else img.astype(np.uint8)
    if not color and img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    return img


def mask_values(path, max_pixels: int | None = None) -> tuple[np.ndarray, int, bool]:
    """A mask's raw values (RGB collapsed by max over channels), its full-scale value, and
    whether the file was colour.

    Conventions understood: 0/255 (8-bit, anti-aliased edges allowed), 0/1, 0/65535 and 0/255
    stored in a 16-bit file. Values that top out between 2 and 127 look like class labels or a
    dim export and are refused rather than guessed.
    """
    raw = _decode(path, max_pixels)
    flat = raw.max(axis=2) if raw.ndim == 3 else raw
    top = int(flat.max())
    if top <= 1:
        return flat, 1, raw.ndim == 3
    if top < 128:
        raise CarotidkitError(
            f"{path}: mask values top out at {top}; carotidkit expects binary masks (0/255 or 0/1). "
            "Class-label masks: export the plaque class as 255"
        )
    return flat, (1 << _bit_depth(top)) - 1, raw.ndim == 3


def read_mask(path, max_pixels: int | None = None) -> np.ndarray:
    """Binary plaque mask (bool): values above half of the mask's full scale (see :func:`mask_values`)."""
    flat, full, _ = mask_values(path, max_pixels)
    return flat > full // 2 if full > 1 else flat > 0


# ----------------------------------------------------------------------------- scan area


def scan_box(img: np.ndarray, thr: int = 4, col_frac: float = 0.3, row_frac: float = 0.6):
    """Bounding box ``(x0, y0, x1, y1)`` of the scan area inside black margins.

    Columns count as scan area when > ``col_frac`` of their pixels are brighter than ``thr``;
    rows likewise within those columns with ``row_frac`` (high enough that margin text rows do
    not count, low enough that the dark lumen does not split the area).
    """
    g = img if img.ndim == 2 else cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    b = g > thr
    xs = np.where(b.mean(0) > col_frac)[0]
    if xs.size == 0:
        return 0, 0, g.shape[1], g.shape[0]
    x0, x1 = int(xs.min()), int(xs.max()) + 1
    ys = np.where(b[:, x0:x1].mean(1) > row_frac)[0]
    if ys.size == 0:
        return x0, 0, x1, g.shape[0]
    return x0, int(ys.min()), x1, int(ys.max()) + 1


def redact_for_display(img: np.ndarray, box=None) -> np.ndarray:
    """Black out everything outside the scan area (burned-in names, ids, dates) before showing."""
    x0, y0, x1, y1 = box or scan_box(img)
    out = np.zeros_like(img)
    out[y0:y1, x0:x1] = img[y0:y1, x0:x1]
    return out


def redact_clip(frames: np.ndarray) -> np.ndarray:
    """:func:`redact_for_display` for a cine loop ``[T, H, W]``: one scan box, found on the
    loop's brightest-pixel projection (burned-in text is static, speckle moves), for all frames."""
    frames = np.asarray(frames)
    box = scan_box(frames.max(axis=0))
    return np.stack([redact_for_display(f, box) for f in frames])
