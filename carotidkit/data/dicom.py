"""DICOM pixel data to display grey, exactly once, whatever the scanner wrote and whatever pydicom
version decodes it; and the ultrasound geometry (pixel spacing, scan area) from the file.

One reader for every photometric interpretation an ultrasound machine writes:

============================  =====================================================================
``MONOCHROME2``               grey as stored
``MONOCHROME1``               inverted (0 = white) to display grey
``RGB``                       BT.601 luma ``0.299 R + 0.587 G + 0.114 B``
``YBR_FULL``, ``YBR_FULL_422``  to RGB once (pydicom's conversion), then BT.601 luma
``PALETTE COLOR``             through the file's lookup table, then BT.601 luma
``YBR_RCT``, ``YBR_ICT``      JPEG 2000: decoded by pylibjpeg-openjpeg (pinned) or Pillow, which
                              undo the colour transform; then BT.601 luma
============================  =====================================================================

The decoder is asked for its *raw* output (``Decoder.as_array(raw=True)``), whose metadata say
which colour space the array is really in (a JPEG decoder may or may not have converted YCbCr
already); the conversion to grey is then chosen from that, so it happens exactly once. Signed
pixels are shifted to unsigned, ``RescaleSlope``/``RescaleIntercept`` applied (grey images), and
grey levels scaled by ``BitsStored`` (a 12-bit loop is not read as near-black), by the type's
range, never by the clip's own content. Planar configuration 1 is handled by pydicom.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io import CarotidkitError

LUMA = np.array([0.299, 0.587, 0.114], np.float32)
SUPPORTED = {
    "MONOCHROME1",
    "MONOCHROME2",
    "RGB",
    "YBR_FULL",
    "YBR_FULL_422",
    "PALETTE COLOR",
    "YBR_RCT",
    "YBR_ICT",
}
#: DICOM attributes that describe the acquisition and identify nobody: coded or numeric values
#: only. Free-text attributes (Manufacturer, ManufacturerModelName, StationName, ...) are left
#: out: sites type names, places and ids into them.
SAFE_DICOM_TAGS = (
    "Modality",
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
#: Physical unit codes of the ultrasound region module (PS3.3 C.8.5.5.1.15): only 3 is a length.
UNIT_CM = 3


@dataclass
class DicomFrames:
    """Display grey frames ``uint8 [T, H, W]`` and the geometry read from one DICOM file."""

    frames: np.ndarray
    fps: float | None
    pixel_spacing_mm: float | None
    spacing_source: str  # "ultrasound region", "PixelSpacing" or "unknown"
    scan_box: tuple | None  # (x0, y0, x1, y1), end-exclusive, clipped to the image; None if unknown
    photometric: str
    meta: dict = field(default_factory=dict)


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


def _truncated(ds, path) -> str | None:
    """A one-line reason when native (uncompressed) pixel data are shorter than the header says."""
    ts = ds.file_meta.TransferSyntaxUID if "TransferSyntaxUID" in getattr(ds, "file_meta", {}) else None
    if ts is None or ts.is_compressed or "PixelData" not in ds:
        return None
    n = int(getattr(ds, "NumberOfFrames", 1) or 1)
    spp = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    bits = int(getattr(ds, "BitsAllocated", 8) or 8)
    expected = n * int(ds.Rows) * int(ds.Columns) * spp * bits // 8
    if ds.PhotometricInterpretation == "YBR_FULL_422":
        expected = expected * 2 // 3
    got = len(ds.PixelData)
    if got < expected:
        return (
            f"{path}: pixel data truncated ({got:,} of {expected:,} bytes for {n} frame(s) of "
            f"{ds.Rows}x{ds.Columns}); the file was cut short: copy it again from the source"
        )
    return None


def _decoder(ds, path):
    """The pydicom decoder for ``ds``'s transfer syntax, or a one-line reason why there is none."""
    from pydicom.pixels import get_decoder

    ts = ds.file_meta.TransferSyntaxUID if "TransferSyntaxUID" in getattr(ds, "file_meta", {}) else None
    name = f"{ts.name} ({ts})" if ts is not None else "an unknown transfer syntax"
    if "PixelData" not in ds:
        raise CarotidkitError(f"{path}: no pixel data (a DICOM report or structured document, not an image)")
    reason = _truncated(ds, path)
    if reason:
        raise CarotidkitError(reason)
    try:
        decoder = get_decoder(ts) if ts is not None else None
    except NotImplementedError:  # pydicom has no decoder class for this syntax (MPEG, HEVC, ...)
        decoder = None
    if decoder is None:
        raise CarotidkitError(
            f"{path}: cannot decode pixel data stored as {name}: pydicom has no decoder for it; "
            "export the loop uncompressed, as JPEG baseline or JPEG 2000, or as MP4/AVI"
        )
    if not decoder.is_available:
        raise CarotidkitError(
            f"{path}: cannot decode pixel data stored as {name}: no decoder installed for it "
            f"(e.g. {decoder.missing_dependencies[0] if decoder.missing_dependencies else 'a pydicom plugin'}); "
            "export the loop uncompressed, as JPEG baseline or JPEG 2000, or as MP4/AVI"
        )
    return decoder, name


def decode_grey(ds, path) -> tuple[np.ndarray, str]:
    """Display grey frames ``uint8 [T, H, W]`` and the photometric interpretation the decoder
    returned. Frames are decoded and converted one at a time, so a long colour loop never holds
    more than one colour frame beside its grey frames."""
    decoder, name = _decoder(ds, path)
    n = int(getattr(ds, "NumberOfFrames", 1) or 1)
    out, actual = None, str(ds.PhotometricInterpretation)
    try:
        for k, (arr, meta) in enumerate(decoder.iter_array(ds, raw=True)):
            actual = str(meta.get("photometric_interpretation", actual))
            g = to_grey(arr[None], actual, ds, path)[0]
            if out is None:
                out = np.empty((n, *g.shape), np.uint8)
            out[k] = g
    except CarotidkitError:
        raise
    except Exception as exc:  # each codec plugin raises its own types (RuntimeError, ValueError, ...)
        first = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise CarotidkitError(f"{path}: cannot decode pixel data stored as {name} ({first})") from None
    if out is None:
        raise CarotidkitError(f"{path}: the pixel data hold no frames")
    return out, actual


def _grey_scale(arr: np.ndarray, ds, path) -> np.ndarray:
    """Grey pixels (signed, rescaled, any BitsStored) to uint8 by the stored range."""
    bits = int(getattr(ds, "BitsStored", 8) or 8)
    lo, hi = 0.0, float(2**bits - 1)
    a = arr.astype(np.float64) if arr.dtype != np.uint8 else arr
    if int(getattr(ds, "PixelRepresentation", 0) or 0) == 1:
        a = np.asarray(a, np.float64) + 2 ** (bits - 1)  # signed -> unsigned, same order
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    inter = float(getattr(ds, "RescaleIntercept", 0) or 0)
    if (slope, inter) != (1.0, 0.0):
        a = np.asarray(a, np.float64) * slope + inter
        lo, hi = sorted((lo * slope + inter, hi * slope + inter))
    if a.dtype == np.uint8 and bits == 8:
        return a
    return np.clip(np.round((np.asarray(a, np.float64) - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)


def _luma(rgb: np.ndarray, max_value: float) -> np.ndarray:
    x = rgb[..., :3].astype(np.float32) @ LUMA
    if max_value != 255:
        x = x * (255.0 / max_value)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def inverse_rct(ybr: np.ndarray, offset: int = 0) -> np.ndarray:
    """JPEG 2000's reversible colour transform undone: ``(Y, Cb, Cr) -> (R, G, B)``, integers;
    ``Y = floor((R + 2G + B) / 4)``, ``Cb = B - G + offset``, ``Cr = R - G + offset`` (chroma is
    one bit wider than the samples: signed, or unsigned with an offset)."""
    y, cb, cr = (ybr[..., k].astype(np.int64) for k in range(3))
    cb, cr = cb - offset, cr - offset
    g = y - np.floor_divide(cb + cr, 4)
    return np.stack([cr + g, g, cb + g], axis=-1)


def to_grey(arr: np.ndarray, photometric: str, ds, path) -> np.ndarray:
    """Decoded pixels in ``photometric`` (what the decoder returned) -> display grey uint8."""
    bits = int(getattr(ds, "BitsStored", 8) or 8)
    if photometric not in SUPPORTED:
        raise CarotidkitError(
            f"{path}: photometric interpretation {photometric!r} is not supported "
            f"(carotidkit reads {', '.join(sorted(SUPPORTED))})"
        )
    colour = photometric not in ("MONOCHROME1", "MONOCHROME2", "PALETTE COLOR")
    if colour and arr.shape[-1] != 3:
        raise CarotidkitError(f"{path}: {photometric} pixels should have 3 samples, got shape {arr.shape}")
    if photometric == "MONOCHROME2":
        return _grey_scale(arr, ds, path)
    if photometric == "MONOCHROME1":
        return 255 - _grey_scale(arr, ds, path)
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        try:
            rgb = apply_color_lut(arr, ds)
        except (ValueError, KeyError, AttributeError) as exc:
            raise CarotidkitError(f"{path}: PALETTE COLOR without a usable lookup table ({exc})") from None
        lut_bits = 16 if rgb.dtype == np.uint16 else 8
        desc = getattr(ds, "RedPaletteColorLookupTableDescriptor", None)
        if desc is not None and int(desc[2]) in (8, 16):
            lut_bits = int(desc[2])
        top = float(rgb.max()) if lut_bits == 16 and rgb.max() <= 255 else float(2**lut_bits - 1)
        return _luma(rgb, top)
    if photometric in ("YBR_FULL", "YBR_FULL_422", "YBR_ICT"):
        # to RGB once (pydicom's own conversion, clipped to the displayable range), then luma; Y
        # alone differs where saturated colours clip (up to 6 grey levels on pydicom's example)
        from pydicom.pixels import convert_color_space

        if bits != 8:
            return _grey_scale(arr[..., 0], ds, path)
        return _luma(convert_color_space(arr, "YBR_FULL", "RGB"), 255)
    if photometric == "YBR_RCT":
        # only reached when the decoder left the transform in place (both bundled ones undo it)
        offset = 0 if np.issubdtype(arr.dtype, np.signedinteger) else 2**bits
        return _luma(np.clip(inverse_rct(arr, offset), 0, 2**bits - 1), 2**bits - 1)
    return _luma(arr, 2**bits - 1)  # RGB


def frame_rate(ds) -> float | None:
    """Frames per second from CineRate, RecommendedDisplayFrameRate, FrameTime or
    FrameTimeVector, in that order."""
    for tag in ("CineRate", "RecommendedDisplayFrameRate"):
        v = getattr(ds, tag, None)
        if v:
            return float(v)
    if getattr(ds, "FrameTime", None):
        return 1000.0 / float(ds.FrameTime)
    ftv = getattr(ds, "FrameTimeVector", None)
    if ftv and len(ftv) > 1:
        d = np.asarray([float(x) for x in ftv[1:]])
        if (d > 0).all():
            return 1000.0 / float(d.mean())
    return None


def ultrasound_geometry(ds, shape) -> tuple[float | None, str, tuple | None, dict]:
    """Pixel spacing (mm), where it came from, the scan area ``(x0, y0, x1, y1)`` and notes.

    The largest 2-D tissue region of ``SequenceOfUltrasoundRegions`` (RegionSpatialFormat 1)
    gives the scan area, clipped to the image (downsampled exports keep the scanner's
    coordinates), and its spacing when its physical units are cm; otherwise ``PixelSpacing``;
    otherwise the spacing is unknown and said so.
    """
    h, w = shape
    notes: dict = {}
    best = None
    for r in getattr(ds, "SequenceOfUltrasoundRegions", None) or []:
        if int(getattr(r, "RegionSpatialFormat", 0) or 0) != 1:
            continue
        try:
            x0, y0 = int(r.RegionLocationMinX0), int(r.RegionLocationMinY0)
            x1, y1 = int(r.RegionLocationMaxX1) + 1, int(r.RegionLocationMaxY1) + 1
        except AttributeError:
            continue
        box = (max(0, x0), max(0, y0), min(w, x1), min(h, y1))
        if box[2] <= box[0] or box[3] <= box[1]:
            continue
        if (x1, y1) != box[2:] or (x0, y0) != box[:2]:
            notes["region_clipped"] = f"region ({x0}, {y0})-({x1}, {y1}) clipped to the {w}x{h} image"
        area = (box[2] - box[0]) * (box[3] - box[1])
        tissue = int(getattr(r, "RegionDataType", 0) or 0) == 1
        if best is None or (tissue, area) > (best[0], best[1]):
            best = (tissue, area, box, r)
    spacing, source, box = None, "unknown", None
    if best is not None:
        box, r = best[2], best[3]
        ux, uy = int(getattr(r, "PhysicalUnitsXDirection", 0) or 0), int(getattr(r, "PhysicalUnitsYDirection", 0) or 0)
        dx, dy = abs(float(getattr(r, "PhysicalDeltaX", 0) or 0)), abs(float(getattr(r, "PhysicalDeltaY", 0) or 0))
        if ux == UNIT_CM and uy == UNIT_CM and dx > 0 and dy > 0:
            spacing, source = 10.0 * float(np.sqrt(dx * dy)), "ultrasound region"
            notes["spacing_x_mm"], notes["spacing_y_mm"] = 10.0 * dx, 10.0 * dy
    if spacing is None and getattr(ds, "PixelSpacing", None):
        ps = [float(x) for x in ds.PixelSpacing]
        if len(ps) == 2 and min(ps) > 0:
            spacing, source = float(np.sqrt(ps[0] * ps[1])), "PixelSpacing"
            notes["spacing_y_mm"], notes["spacing_x_mm"] = ps
    return spacing, source, box, notes


def read_dicom(path, fps: float | None = None) -> DicomFrames:
    """Read one DICOM file (single- or multi-frame) into display grey frames with geometry."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    path = Path(path)
    try:
        ds = pydicom.dcmread(str(path))
    except (InvalidDicomError, AttributeError, ValueError, OSError, EOFError, KeyError) as exc:
        raise CarotidkitError(f"{path}: not a readable DICOM file ({type(exc).__name__}: {exc})") from None
    pi = str(getattr(ds, "PhotometricInterpretation", "") or "")
    if pi and pi not in SUPPORTED:
        raise CarotidkitError(
            f"{path}: photometric interpretation {pi!r} is not supported "
            f"(carotidkit reads {', '.join(sorted(SUPPORTED))})"
        )
    grey, actual = decode_grey(ds, path)
    spacing, source, box, notes = ultrasound_geometry(ds, grey.shape[1:])
    return DicomFrames(
        frames=grey,
        fps=fps if fps is not None else frame_rate(ds),
        pixel_spacing_mm=spacing,
        spacing_source=source,
        scan_box=box,
        photometric=pi,
        meta={**deidentified_dicom_meta(ds), "decoded_as": actual, **notes},
    )
