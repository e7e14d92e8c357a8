"""The DICOM reader on real ultrasound files that pydicom ships (``pydicom/data/test_files``,
bundled in the wheel: no download), compared with pydicom's own conversion to RGB followed by
BT.601 luma computed here; and on synthetic files for what no bundled file covers."""

from pathlib import Path

import numpy as np
import pydicom
import pytest
from helpers import write_dicom
from pydicom.pixels import apply_color_lut

from carotidkit.data.dicom import inverse_rct, read_dicom
from carotidkit.data.video import load_video
from carotidkit.io import CarotidkitError

FILES = Path(pydicom.data.__file__).parent / "test_files"
LUMA = np.array([0.299, 0.587, 0.114])


def reference_grey(name: str) -> np.ndarray:
    """pydicom's RGB (its own YBR conversion or palette lookup), then BT.601 luma, 0-255."""
    ds = pydicom.dcmread(FILES / name)
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        rgb = apply_color_lut(ds.pixel_array, ds)
        scale = 255 / 65535 if rgb.dtype == np.uint16 else 1.0
    else:
        rgb, scale = ds.pixel_array, 1.0
    g = (rgb[..., :3].astype(float) @ LUMA) * scale
    return g if g.ndim == 3 and int(getattr(ds, "NumberOfFrames", 1) or 1) > 1 else g[None]


def test_real_jpeg_ybr_full_422_cine_loop_reads_right():
    """30-frame JPEG-baseline YBR_FULL_422 loop: the most common cine export. It used to correlate
    0.32 with the right picture (mean grey 79): pydicom 3 returns RGB and it was converted again."""
    v = load_video(FILES / "examples_ybr_color.dcm")
    ref = reference_grey("examples_ybr_color.dcm")
    assert v.frames.shape == (30, 240, 320) and v.frames.dtype == np.uint8
    diff = np.abs(v.frames - ref)
    assert diff.max() <= 1.5 and diff.mean() < 0.3
    assert np.corrcoef(v.frames.ravel(), ref.ravel())[0, 1] > 0.999
    assert v.frames.mean() == pytest.approx(10.5, abs=0.3)
    assert v.fps == pytest.approx(30.0, abs=0.01)
    assert v.pixel_spacing_mm == pytest.approx(0.5105, abs=1e-4) and v.spacing_source == "ultrasound region"
    # the region is given in the scanner's coordinates (595 x 414) and reaches past the 320 x 240 image
    assert v.scan_box == (84, 31, 320, 240) and "clipped" in v.meta["region_clipped"]


@pytest.mark.parametrize(
    "name, photometric",
    [
        ("examples_rgb_color.dcm", "RGB"),
        ("ExplVR_BigEnd.dcm", "RGB"),  # big endian, planar configuration 1
        ("examples_palette.dcm", "PALETTE COLOR"),
        ("examples_jpeg2k.dcm", "YBR_RCT"),  # JPEG 2000 lossless
    ],
)
def test_real_single_frames_read_as_pydicom_luma(name, photometric):
    d = read_dicom(FILES / name)
    assert d.photometric == photometric
    assert np.abs(d.frames - reference_grey(name)).max() <= 0.51  # rounding only


def test_palette_file_takes_spacing_from_its_tissue_region_not_the_doppler_strip():
    d = read_dicom(FILES / "examples_palette.dcm")
    assert d.pixel_spacing_mm == pytest.approx(0.2623, abs=1e-4)
    assert d.scan_box == (120, 60, 800, 350)


def test_single_frame_file_is_one_line_from_load_video():
    with pytest.raises(CarotidkitError, match="examples_rgb_color.dcm: video has a single frame") as e:
        load_video(FILES / "examples_rgb_color.dcm")
    assert "\n" not in str(e.value)


def test_monochrome1_is_inverted(tmp_path):
    frames = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (3, 4, 1))
    write_dicom(tmp_path / "m2.dcm", frames)
    write_dicom(tmp_path / "m1.dcm", frames, PhotometricInterpretation="MONOCHROME1")
    assert np.array_equal(load_video(tmp_path / "m2.dcm").frames, frames)
    assert np.array_equal(load_video(tmp_path / "m1.dcm").frames, 255 - frames)


def test_12_bit_signed_and_rescaled_grey(tmp_path):
    ramp = np.tile(np.linspace(0, 4095, 16).astype(np.uint16), (3, 4, 1))
    write_dicom(tmp_path / "b12.dcm", ramp, bits=12)
    got = load_video(tmp_path / "b12.dcm").frames
    assert np.abs(got.astype(int) - np.round(ramp / 4095 * 255)).max() <= 1 and got.max() == 255
    signed = (ramp.astype(np.int32) - 2048).astype(np.int16)
    write_dicom(tmp_path / "s.dcm", signed.view(np.uint16), bits=12, PixelRepresentation=1)
    assert np.array_equal(load_video(tmp_path / "s.dcm").frames, got)  # same order, same grey
    write_dicom(tmp_path / "r.dcm", ramp, bits=12, RescaleSlope=2.0, RescaleIntercept=-100.0)
    assert np.array_equal(load_video(tmp_path / "r.dcm").frames, got)  # a linear rescale keeps the display


def test_spacing_falls_back_to_pixel_spacing_then_unknown(tmp_path):
    f = np.zeros((3, 8, 8), np.uint8)
    write_dicom(tmp_path / "ps.dcm", f, PixelSpacing=[0.1, 0.1])
    v = load_video(tmp_path / "ps.dcm")
    assert v.pixel_spacing_mm == pytest.approx(0.1) and v.spacing_source == "PixelSpacing"
    write_dicom(tmp_path / "none.dcm", f)
    v = load_video(tmp_path / "none.dcm")
    assert v.pixel_spacing_mm is None and v.spacing_source == "unknown"


def test_unsupported_photometric_is_refused_by_name(tmp_path):
    write_dicom(tmp_path / "c.dcm", np.zeros((3, 8, 8), np.uint8), PhotometricInterpretation="CMYK")
    with pytest.raises(CarotidkitError, match="photometric interpretation 'CMYK' is not supported"):
        load_video(tmp_path / "c.dcm")


def test_truncated_pixel_data_says_truncated(tmp_path):
    write_dicom(tmp_path / "t.dcm", np.zeros((10, 32, 32), np.uint8))
    raw = (tmp_path / "t.dcm").read_bytes()
    (tmp_path / "short.dcm").write_bytes(raw[: len(raw) - 4000])
    with pytest.raises(CarotidkitError, match="truncated"):
        load_video(tmp_path / "short.dcm")


def test_inverse_reversible_colour_transform_is_exact():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (50, 3)).astype(np.int64)
    r, g, b = rgb.T
    y = np.floor_divide(r + 2 * g + b, 4)
    signed = np.stack([y, b - g, r - g], axis=-1).astype(np.int16)
    assert np.array_equal(inverse_rct(signed), rgb)
    unsigned = (signed.astype(np.int32) + [0, 256, 256]).astype(np.uint16)  # chroma offset, not Y
    assert np.array_equal(inverse_rct(unsigned, offset=256), rgb)
