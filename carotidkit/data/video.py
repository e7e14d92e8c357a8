"""Read carotid cine loops: DICOM multi-frame, AVI/MP4/MOV, NPY/NPZ, or a folder of frames.

Every reader returns a :class:`Video` with grayscale uint8 frames ``[T, H, W]``, the frame rate
and the pixel spacing when the file says so. From DICOM only whitelisted technical tags are kept
(:data:`SAFE_DICOM_TAGS`): names, ids, dates and institutions never leave the reader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io import CarotidkitError
from .dicom import SAFE_DICOM_TAGS, deidentified_dicom_meta  # noqa: F401  (re-exported)

VIDEO_EXT = {".avi", ".mp4", ".mov", ".mkv", ".wmv"}
FRAME_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


@dataclass
class Video:
    frames: np.ndarray  # uint8 [T, H, W]
    fps: float | None
    pixel_spacing_mm: float | None
    source: str
    meta: dict = field(default_factory=dict)  # de-identified technical metadata
    spacing_source: str = ""  # "ultrasound region", "PixelSpacing", "file", "given" or "unknown"
    scan_box: tuple | None = None  # (x0, y0, x1, y1) of the scan area when the file says so

    def __post_init__(self):
        if not self.spacing_source:
            self.spacing_source = "file" if self.pixel_spacing_mm is not None else "unknown"

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])


def _scale_to_uint8(arr: np.ndarray, path) -> np.ndarray:
    """Map pixel values to 0-255 by their *type's* range, never by the clip's own min/max (which
    would make one clip's grey levels depend on its content: a uniform clip would turn black)."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr)
        if bad.any():
            t = int(np.argmax(bad.reshape(len(arr), -1).any(axis=1)))
            raise CarotidkitError(
                f"{path}: {int(bad.sum())} non-finite value(s) (NaN/inf), first in frame {t}; "
                "fix or drop those frames (they would corrupt the whole clip's scaling)"
            )
        lo, hi = float(arr.min()), float(arr.max())
        if lo >= 0 and hi <= 1:
            return np.round(arr * 255).astype(np.uint8)
        if lo >= 0 and hi <= 255:
            return np.round(arr).astype(np.uint8)
        raise CarotidkitError(
            f"{path}: floating-point pixels span {lo:g}..{hi:g}; save them as 0-1 or 0-255 (or as uint8)"
        )
    if np.issubdtype(arr.dtype, np.integer):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0:
            raise CarotidkitError(f"{path}: negative pixel values ({lo}); save unsigned grey levels")
        from ..imaging import _bit_depth

        bits = _bit_depth(hi)
        return (arr >> (bits - 8)).astype(np.uint8) if bits > 8 else arr.astype(np.uint8)
    raise CarotidkitError(f"{path}: {arr.dtype} pixels; use uint8/uint16 or float 0-1")


def _to_gray_uint8(arr: np.ndarray, path) -> np.ndarray:
    """``[T, H, W]``, ``[T, H, W, C]`` or ``[T, C, H, W]`` (C = 1, 3 or 4) -> uint8 ``[T, H, W]``.

    Colour is converted with the BT.601 luma weights after scaling, without stretching, so a
    grey clip saved as RGB reads exactly like the grey clip.
    """
    arr = np.asarray(arr)
    if arr.ndim == 4:
        if arr.shape[-1] in (1, 3, 4):
            pass
        elif arr.shape[1] in (1, 3, 4):
            arr = np.moveaxis(arr, 1, -1)
        else:
            raise CarotidkitError(
                f"{path}: 4-D frames {arr.shape} have no channel axis of 1, 3 or 4; expected [T, H, W, C] or [T, C, H, W]"
            )
    if arr.ndim not in (3, 4):
        raise CarotidkitError(f"{path}: expected frames shaped [T, H, W] (or [T, H, W, 3]), got {arr.shape}")
    arr = _scale_to_uint8(arr, path)
    if arr.ndim == 4:
        if arr.shape[-1] == 1:
            return np.ascontiguousarray(arr[..., 0])
        rgb = arr[..., :3].astype(np.float32)
        arr = np.round(rgb @ np.array([0.299, 0.587, 0.114], np.float32))
        return np.clip(arr, 0, 255).astype(np.uint8)
    return arr


def _one_number(z, key: str, path) -> float | None:
    """A scalar stored in an NPZ (``fps``, ``pixel_spacing_mm``): a 0-d or 1-element array, or a
    longer array whose values agree (isotropic spacing as ``[row, col]``)."""
    if key not in z.files:
        return None
    v = np.asarray(z[key]).ravel()
    try:
        v = v.astype(float)
    except (TypeError, ValueError):
        raise CarotidkitError(f"{path}: {key} is not a number ({v[:3]!r})") from None
    if v.size == 0 or not np.isfinite(v).all():
        raise CarotidkitError(f"{path}: {key} is empty or not finite; store one number")
    if np.ptp(v) > 1e-6 * max(1.0, abs(v[0])):
        raise CarotidkitError(f"{path}: {key} holds {v.size} different values ({v[:4].tolist()}); store one number")
    return float(v[0])


def _check(video: Video, path) -> Video:
    if video.n_frames == 0:
        raise CarotidkitError(f"{path}: video has no frames; re-export the loop")
    if video.n_frames == 1:
        raise CarotidkitError(
            f"{path}: video has a single frame; a cine loop needs at least 2 (is this a still image?)"
        )
    if video.fps is not None and not (1 <= video.fps <= 1000):
        raise CarotidkitError(f"{path}: implausible frame rate {video.fps} fps; pass fps= explicitly")
    return video


def _read_dicom(path: Path, fps) -> Video:
    """A DICOM loop through :func:`carotidkit.data.dicom.read_dicom` (every photometric
    interpretation, converted to grey exactly once; geometry from the ultrasound regions)."""
    from .dicom import read_dicom

    d = read_dicom(path, fps)
    return Video(d.frames, d.fps, d.pixel_spacing_mm, "dicom", d.meta, d.spacing_source, d.scan_box)


def _read_container(path: Path, fps) -> Video:
    import imageio.v3 as iio

    try:
        frames = iio.imread(str(path), plugin="pyav")
        meta = iio.immeta(str(path), plugin="pyav")
    except Exception as exc:  # pyav raises many types for broken files
        raise CarotidkitError(
            f"{path}: not a readable video ({type(exc).__name__}); re-encode it (e.g. ffmpeg -i in.avi out.mp4)"
        ) from None
    rate = fps or (float(meta["fps"]) if meta.get("fps") else None)
    return Video(
        _to_gray_uint8(frames, path), rate, None, path.suffix.lower().lstrip("."), {"codec": str(meta.get("codec", ""))}
    )


def natural_key(p) -> list:
    """Sort key that orders ``frame_2`` before ``frame_10`` (numbers compared as numbers)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", Path(p).name)]


def load_video(path, fps: float | None = None, pixel_spacing_mm: float | None = None) -> Video:
    """Read one cine loop; ``fps``/``pixel_spacing_mm`` override what the file says.

    Example:
        v = load_video("runs/smoke/data/cine/S00001_L.npz")
        v.frames.shape, v.fps
        ((25, 32, 32), 25.0)
    """
    path = Path(path)
    if not path.exists():
        raise CarotidkitError(f"{path}: video not found")
    suffix = path.suffix.lower()
    if path.is_dir():
        files = sorted((p for p in path.iterdir() if p.suffix.lower() in FRAME_EXT), key=natural_key)
        from ..imaging import read_image

        frames = [read_image(p) for p in files]
        if len({f.shape for f in frames}) > 1:
            raise CarotidkitError(f"{path}: frames have different sizes; export them at one size")
        arr = np.stack(frames) if frames else np.zeros((0, 1, 1), np.uint8)
        video = Video(arr, fps, pixel_spacing_mm, "frames")
    elif suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise CarotidkitError(f"{path}: not a readable .npy array ({exc})") from None
        video = Video(
            _to_gray_uint8(arr, path) if arr.size else np.zeros((0, 1, 1), np.uint8), fps, pixel_spacing_mm, "npy"
        )
    elif suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                key = "frames" if "frames" in z.files else z.files[0]
                arr = z[key]
                rate = fps or _one_number(z, "fps", path)
                sp = pixel_spacing_mm or _one_number(z, "pixel_spacing_mm", path)
        except CarotidkitError:
            raise
        except (ValueError, OSError, IndexError) as exc:
            raise CarotidkitError(f"{path}: not a readable .npz archive ({exc})") from None
        video = Video(_to_gray_uint8(arr, path) if arr.size else np.zeros((0, 1, 1), np.uint8), rate, sp, "npz")
    elif suffix in (".dcm", ".dicom", ""):
        video = _read_dicom(path, fps)
    elif suffix in VIDEO_EXT:
        video = _read_container(path, fps)
    else:
        raise CarotidkitError(
            f"{path}: unsupported video format {suffix!r}; use DICOM, AVI/MP4, NPY/NPZ or a folder of frames"
        )
    if pixel_spacing_mm is not None:
        video.pixel_spacing_mm = pixel_spacing_mm
        video.spacing_source = "given"
    return _check(video, path)
