"""Read carotid cine loops: DICOM multi-frame, AVI/MP4/MOV, NPY/NPZ, or a folder of frames.

Every reader returns a :class:`Video` with grayscale uint8 frames ``[T, H, W]``, the frame rate
and the pixel spacing when the file says so. From DICOM only whitelisted technical tags are kept
(:data:`SAFE_DICOM_TAGS`): names, ids, dates and institutions never leave the reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io import CarotidkitError

VIDEO_EXT = {".avi", ".mp4", ".mov", ".mkv", ".wmv"}
FRAME_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
#: DICOM attributes that describe the acquisition and identify nobody.
SAFE_DICOM_TAGS = (
    "Modality",
    "Manufacturer",
    "ManufacturerModelName",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "PhotometricInterpretation",
    "BitsStored",
    "FrameTime",
    "CineRate",
    "RecommendedDisplayFrameRate",
    "PixelSpacing",
    "TransducerFrequency",
)


@dataclass
class Video:
    frames: np.ndarray  # uint8 [T, H, W]
    fps: float | None
    pixel_spacing_mm: float | None
    source: str
    meta: dict = field(default_factory=dict)  # de-identified technical metadata

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])


def _to_gray_uint8(arr: np.ndarray, path) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.ndim == 4:
        arr = arr[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    if arr.ndim != 3:
        raise CarotidkitError(f"{path}: expected frames shaped [T, H, W] (or [T, H, W, 3]), got {arr.shape}")
    if arr.dtype != np.uint8:
        lo, hi = float(np.min(arr)), float(np.max(arr))
        arr = ((arr - lo) / (hi - lo + 1e-12) * 255).round()
    return arr.astype(np.uint8)


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


def deidentified_dicom_meta(ds) -> dict:
    """The whitelisted, non-identifying attributes of a pydicom dataset, as plain Python values."""
    out = {}
    for tag in SAFE_DICOM_TAGS:
        if tag in ds:
            v = ds.data_element(tag).value
            try:
                out[tag] = (
                    [float(x) for x in v]
                    if isinstance(v, (list, tuple)) or hasattr(v, "__len__") and not isinstance(v, (str, bytes))
                    else (v if isinstance(v, (int, float)) else str(v))
                )
            except (TypeError, ValueError):
                out[tag] = str(v)
    return out


def _read_dicom(path: Path, fps) -> Video:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(str(path))
        arr = ds.pixel_array
    except (InvalidDicomError, AttributeError, ValueError, OSError) as exc:
        raise CarotidkitError(f"{path}: not a readable DICOM file ({type(exc).__name__}: {exc})") from None
    if int(getattr(ds, "NumberOfFrames", 1) or 1) == 1 and arr.ndim == 2:
        arr = arr[None]
    elif arr.ndim == 3 and getattr(ds, "SamplesPerPixel", 1) == 3 and int(getattr(ds, "NumberOfFrames", 1)) == 1:
        arr = arr[None]
    if getattr(ds, "PhotometricInterpretation", "").startswith("YBR") and arr.ndim == 4:
        from pydicom.pixels import convert_color_space

        arr = convert_color_space(arr, ds.PhotometricInterpretation, "RGB")
    rate = fps
    if rate is None:
        if getattr(ds, "CineRate", None):
            rate = float(ds.CineRate)
        elif getattr(ds, "RecommendedDisplayFrameRate", None):
            rate = float(ds.RecommendedDisplayFrameRate)
        elif getattr(ds, "FrameTime", None):
            rate = 1000.0 / float(ds.FrameTime)
    spacing = None
    regions = getattr(ds, "SequenceOfUltrasoundRegions", None)
    if regions:
        dx = getattr(regions[0], "PhysicalDeltaX", None)
        if dx:
            spacing = abs(float(dx)) * 10.0  # cm -> mm
    elif getattr(ds, "PixelSpacing", None):
        spacing = float(ds.PixelSpacing[0])
    return Video(_to_gray_uint8(arr, path), rate, spacing, "dicom", deidentified_dicom_meta(ds))


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
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in FRAME_EXT)
        from .plaque_db import read_image

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
                rate = fps or (float(z["fps"]) if "fps" in z.files else None)
                sp = pixel_spacing_mm or (float(z["pixel_spacing_mm"]) if "pixel_spacing_mm" in z.files else None)
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
    return _check(video, path)
