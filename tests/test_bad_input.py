"""Hostile input, class by class: every case ends in a correct load or one CarotidkitError line
naming the file/row/column and the problem. Complements the format tests in test_loaders.py."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from helpers import write_dicom

from carotidkit import data, profiles
from carotidkit.io import CarotidkitError


def _png(path: Path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), arr)


def _one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg and len(msg) < 400, msg
    return msg


@pytest.fixture()
def db(tmp_path):
    """Two good pairs in train/ and one in test/."""
    root = tmp_path / "db"
    rng = np.random.default_rng(0)
    m = np.zeros((48, 64), np.uint8)
    m[20:30, 10:40] = 255
    for split, i in (("train", 1), ("train", 2), ("test", 3)):
        _png(root / split / f"{i}.png", rng.integers(20, 200, (48, 64), dtype=np.uint8))
        _png(root / split / f"{i}_labeled.png", m)
    return root


# ============================================================================ plaque masks and images

MASK = np.zeros((48, 64), bool)
MASK[20:30, 10:40] = True


@pytest.mark.parametrize(
    "name, values",
    [
        ("0/1 uint8", MASK.astype(np.uint8)),
        ("0/255 in 16 bits", MASK.astype(np.uint16) * 255),
        ("0/65535", MASK.astype(np.uint16) * 65535),
        ("0/4095 (12-bit)", MASK.astype(np.uint16) * 4095),
        ("0/255 RGB", cv2.merge([MASK.astype(np.uint8) * 255] * 3)),
    ],
)
def test_mask_conventions_keep_the_plaque(db, name, values):
    _png(db / "train" / "1_labeled.png", values)
    t = data.load_plaque_db(db).set_index("image_id")
    assert bool(t.loc["1", "has_plaque"]), name
    assert data.read_mask(t.loc["1", "mask_path"]).sum() == MASK.sum()


def test_mask_with_class_labels_is_refused_not_guessed(db):
    _png(db / "train" / "2_labeled.png", MASK.astype(np.uint8) * 3)
    with pytest.raises(CarotidkitError, match=r"2_labeled.png: mask values top out at 3") as e:
        data.load_plaque_db(db)
    _one_line(e)
    flagged = data.load_plaque_db(db, errors="flag").set_index("image_id")
    assert "top out at 3" in flagged.loc["2", "error"] and flagged.error.notna().sum() == 1


@pytest.mark.parametrize("bits", [10, 12, 14, 16])
def test_high_bit_depth_images_are_scaled_by_their_bits(tmp_path, bits):
    ramp = np.tile(np.linspace(0, (1 << bits) - 1, 64), (16, 1)).astype(np.uint16)
    _png(tmp_path / "x.png", ramp)
    img = data.read_image(tmp_path / "x.png")
    assert img.dtype == np.uint8 and img.max() == 255 and img.min() == 0  # not near-black


def test_eight_bit_data_in_a_16_bit_png_is_kept(tmp_path):
    arr = np.arange(256, dtype=np.uint16).reshape(16, 16)
    _png(tmp_path / "x.png", arr)
    np.testing.assert_array_equal(data.read_image(tmp_path / "x.png"), arr.astype(np.uint8))


def test_images_at_the_root_beside_split_folders_are_refused(db):
    _png(db / "9.png", np.zeros((48, 64), np.uint8))
    with pytest.raises(CarotidkitError, match=r"image\(s\) at the top level \(e.g. 9.png\)") as e:
        data.load_plaque_db(db)
    _one_line(e)


def test_split_folder_with_images_one_level_down_is_refused(db):
    _png(db / "val" / "images" / "4.png", np.zeros((48, 64), np.uint8))
    with pytest.raises(CarotidkitError, match=r"val: no images directly inside, but its subfolder images/"):
        data.load_plaque_db(db)


def _hostile(db: Path, kind: str) -> Path:
    p = db / "train" / "7.png"
    _png(db / "train" / "7_labeled.png", np.zeros((48, 64), np.uint8))
    if kind == "dangling link":
        os.symlink(db / "nowhere.png", p)
    elif kind == "link loop":
        os.symlink(p, p)
    elif kind == "folder named like an image":
        p.mkdir()
    elif kind == "60000x60000 header":
        _png(p, np.zeros((8, 8), np.uint8))
        raw = bytearray(p.read_bytes())
        raw[16:24] = (60000).to_bytes(4, "big") * 2  # IHDR width, height (CRC now wrong too)
        p.write_bytes(bytes(raw))
    elif kind == "empty file":
        p.write_bytes(b"")
    elif kind == "text file":
        p.write_text("hello")
    return p


HOSTILE = {
    "dangling link": "is a broken link",
    "link loop": "is a link loop",
    "folder named like an image": "is a folder",
    "60000x60000 header": "60000|implausible|not a readable",
    "empty file": "not a readable image",
    "text file": "not a readable image",
}


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_files_give_one_line_and_flag_never_raises(db, kind):
    _hostile(db, kind)
    with pytest.raises(CarotidkitError, match=HOSTILE[kind]) as e:
        data.load_plaque_db(db)
    assert "7.png" in _one_line(e)
    flagged = data.load_plaque_db(db, errors="flag").set_index("image_id")
    assert flagged.error.notna().sum() == 1 and "7.png" in flagged.loc["7", "error"]
    assert flagged.drop(index="7").has_plaque.all()  # the good rows are intact


def test_size_guard_refuses_before_decoding(tmp_path):
    _png(tmp_path / "big.png", np.zeros((300, 400), np.uint8))
    with pytest.raises(CarotidkitError, match=r"big.png: 400x300 pixels is over the 100,000-pixel limit"):
        data.read_image(tmp_path / "big.png", max_pixels=100_000)


@pytest.mark.parametrize("errors", ["ignore", "warn", "", "Raise"])
def test_errors_mode_must_be_known(db, errors):
    with pytest.raises(CarotidkitError, match="use 'raise' or 'flag'"):
        data.load_plaque_db(db, errors=errors)


def test_flag_without_check_still_marks_non_files(db):
    _hostile(db, "dangling link")
    t = data.load_plaque_db(db, check=False, errors="flag").set_index("image_id")
    assert "not a readable file" in t.loc["7", "error"]


# ============================================================================ videos


def test_frame_folders_sort_numerically(tmp_path):
    for i in range(1, 13):
        _png(tmp_path / "loop" / f"frame_{i}.png", np.full((8, 8), i * 10, np.uint8))
    v = data.load_video(tmp_path / "loop", fps=25)
    assert list(v.frames[:, 0, 0]) == [i * 10 for i in range(1, 13)]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_refused_with_the_frame(tmp_path, bad):
    arr = np.random.default_rng(0).random((6, 8, 8)).astype(np.float32)
    arr[3, 2, 2] = bad
    np.save(tmp_path / "c.npy", arr)
    with pytest.raises(CarotidkitError, match=r"c.npy: 1 non-finite value\(s\) \(NaN/inf\), first in frame 3"):
        data.load_video(tmp_path / "c.npy")


@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_float_clips_scale_by_range_not_by_content(tmp_path, scale):
    arr = np.full((4, 8, 8), 0.5 * scale / 1.0, np.float32) if scale == 1.0 else np.full((4, 8, 8), 128.0, np.float32)
    np.save(tmp_path / "c.npy", arr)
    v = data.load_video(tmp_path / "c.npy")
    assert abs(int(v.frames.mean()) - 128) <= 1  # a uniform clip stays mid-grey, not black


def test_float_clip_outside_known_ranges_is_refused(tmp_path):
    np.save(tmp_path / "c.npy", np.linspace(-5, 300, 4 * 64).reshape(4, 8, 8))
    with pytest.raises(CarotidkitError, match=r"floating-point pixels span -5..300"):
        data.load_video(tmp_path / "c.npy")


def test_rgb_clip_reads_like_the_same_gray_clip(tmp_path):
    gray = np.random.default_rng(1).integers(0, 256, (5, 16, 16), dtype=np.uint8)
    np.save(tmp_path / "g.npy", gray)
    np.save(tmp_path / "rgb.npy", np.repeat(gray[..., None], 3, axis=3))
    np.testing.assert_array_equal(
        data.load_video(tmp_path / "g.npy").frames, data.load_video(tmp_path / "rgb.npy").frames
    )


def test_uniform_colour_clip_is_not_black(tmp_path):
    np.save(tmp_path / "c.npy", np.broadcast_to(np.array([200, 150, 100], np.uint8), (4, 8, 8, 3)).copy())
    v = data.load_video(tmp_path / "c.npy")
    assert int(v.frames[0, 0, 0]) == round(0.299 * 200 + 0.587 * 150 + 0.114 * 100)


def test_channels_first_clip(tmp_path):
    gray = np.random.default_rng(2).integers(0, 256, (5, 16, 20), dtype=np.uint8)
    np.save(tmp_path / "c.npy", np.repeat(gray[:, None], 3, axis=1))  # [T, 3, H, W]
    np.testing.assert_array_equal(data.load_video(tmp_path / "c.npy").frames, gray)


def test_single_channel_last_axis(tmp_path):
    gray = np.random.default_rng(3).integers(0, 256, (5, 16, 20), dtype=np.uint8)
    np.save(tmp_path / "c.npy", gray[..., None])  # [T, H, W, 1]
    np.testing.assert_array_equal(data.load_video(tmp_path / "c.npy").frames, gray)


def test_four_d_without_channel_axis_is_refused(tmp_path):
    np.save(tmp_path / "c.npy", np.zeros((5, 7, 16, 20), np.uint8))
    with pytest.raises(CarotidkitError, match=r"no channel axis of 1, 3 or 4"):
        data.load_video(tmp_path / "c.npy")


def test_twelve_bit_integer_clip(tmp_path):
    np.save(tmp_path / "c.npy", np.full((4, 8, 8), 2048, np.uint16))
    assert int(data.load_video(tmp_path / "c.npy").frames.mean()) == 128


def test_negative_integer_clip_is_refused(tmp_path):
    np.save(tmp_path / "c.npy", np.full((4, 8, 8), -3, np.int16))
    with pytest.raises(CarotidkitError, match=r"negative pixel values \(-3\)"):
        data.load_video(tmp_path / "c.npy")


@pytest.mark.parametrize(
    "fps, expect",
    [(np.array([25.0]), 25.0), (np.array(30), 30.0), (np.array([50, 50, 50]), 50.0), (np.array([25, 30]), None)],
)
def test_npz_fps_arrays(tmp_path, fps, expect):
    np.savez(tmp_path / "c.npz", frames=np.zeros((4, 8, 8), np.uint8), fps=fps)
    if expect is None:
        with pytest.raises(CarotidkitError, match=r"c.npz: fps holds 2 different values"):
            data.load_video(tmp_path / "c.npz")
    else:
        assert data.load_video(tmp_path / "c.npz").fps == expect


def test_npz_isotropic_spacing_pair(tmp_path):
    np.savez(tmp_path / "c.npz", frames=np.zeros((4, 8, 8), np.uint8), pixel_spacing_mm=np.array([0.1, 0.1]))
    assert abs(data.load_video(tmp_path / "c.npz").pixel_spacing_mm - 0.1) < 1e-9


@pytest.mark.parametrize("syntax, name", [("1.2.840.10008.1.2.4.80", "JPEG-LS"), ("1.2.840.10008.1.2.4.100", "MPEG2")])
def test_compressed_dicom_names_its_transfer_syntax(tmp_path, syntax, name):
    write_dicom(tmp_path / "c.dcm", np.zeros((3, 8, 8), np.uint8), syntax=syntax)
    with pytest.raises(CarotidkitError, match=rf"c.dcm: cannot decode pixel data stored as {name}.*\({syntax}\)") as e:
        data.load_video(tmp_path / "c.dcm")
    _one_line(e)


def test_dicom_free_text_tags_never_leave_the_reader(tmp_path):
    write_dicom(
        tmp_path / "c.dcm",
        np.zeros((3, 8, 8), np.uint8),
        Manufacturer="Dr Jane Doe's clinic",
        ManufacturerModelName="Ward 7 Smith",
        StationName="ROOM-DOE",
    )
    meta = repr(data.load_video(tmp_path / "c.dcm").meta)
    assert "Doe" not in meta and "Smith" not in meta and "DOE" not in meta


def test_dicom_12_bit_uses_bits_stored(tmp_path):
    frames = np.full((3, 8, 8), 2048, np.uint16)
    write_dicom(tmp_path / "c.dcm", frames, bits=12)
    assert int(data.load_video(tmp_path / "c.dcm").frames.mean()) == 128


def test_cine_shown_in_reports_is_redacted(monkeypatch):
    from carotidkit import plots
    from carotidkit.clean import redact_clip

    clip = np.zeros((4, 60, 80), np.uint8)
    clip[:, 10:60, 15:75] = np.random.default_rng(0).integers(40, 200, (4, 50, 60))
    clip[:, 2:6, 20:40] = 255  # a burned-in name above the scan area
    red = redact_clip(clip)
    assert red[:, :8].max() == 0 and np.array_equal(red[:, 10:60, 15:75], clip[:, 10:60, 15:75])
    seen = []
    monkeypatch.setattr("carotidkit.imaging.redact_clip", lambda c: seen.append(c) or c)
    plots.animate_clips([clip, clip], redact=[True, False])
    assert len(seen) == 1


# ============================================================================ cohort tables


@pytest.fixture()
def table():
    return pd.DataFrame(
        {
            "ID": ["a1", "a2", "a3"],
            "AGE": [50, 61, 70],
            "CHOL": ["232", "193", "270"],
            "FU": [10.0, 5.5, 2.0],
            "DIED": [0, 1, 0],
        }
    )


CMAP = {
    "ID": "subject_id",
    "AGE": "age_years",
    "CHOL": {"column": "tc_mmol_l", "unit": "mg/dL"},
    "FU": "death_years",
    "DIED": "death_event",
}


def _load(tmp_path, df, cmap=CMAP, fmt="csv", **kw):
    p = tmp_path / f"c.{fmt}"
    if fmt == "csv":
        df.to_csv(p, index=False)
    else:
        df.to_parquet(p)
    return data.load_cohort(p, cmap, **kw)


@pytest.mark.parametrize("value", ["abc", "2000,5", "", "<5"])
def test_non_numeric_in_a_converted_column(tmp_path, table, value):
    bad = table.assign(CHOL=["232", value, "270"])
    if value == "":  # an empty cell is a missing value, not an error
        assert np.isnan(_load(tmp_path, bad).tc_mmol_l.iloc[1])
        return
    with pytest.raises(
        CarotidkitError, match=r"c.csv row 3 \(subject_id a2\): CHOL \(mg/dL\) = .* is not a number"
    ) as e:
        _load(tmp_path, bad)
    if "," in value:
        assert "decimal=','" in _one_line(e)


def test_decimal_comma_csv_reads_with_decimal_option(tmp_path):
    (tmp_path / "c.csv").write_text('ID;AGE\na1;"50,5"\n'.replace(";", ","))
    with pytest.raises(CarotidkitError, match="decimal comma"):
        data.load_cohort(tmp_path / "c.csv", {"ID": "subject_id", "AGE": "age_years"})
    (tmp_path / "d.csv").write_text("ID;AGE\na1;50,5\n")
    df = pd.read_csv(tmp_path / "d.csv", sep=";", decimal=",")
    assert data.map_columns(df, {"ID": "subject_id", "AGE": "age_years"}).age_years.iloc[0] == 50.5


def test_blank_subject_id_is_refused(tmp_path, table):
    with pytest.raises(CarotidkitError, match=r"c.csv row 3: subject_id is blank"):
        _load(tmp_path, table.assign(ID=["a1", None, "a3"]))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_integer_ids_stay_integers_as_text(tmp_path, table, fmt):
    df = _load(tmp_path, table.assign(ID=[1, 2, 3], AGE=[50, None, 70]), fmt=fmt)
    assert list(df.subject_id) == ["1", "2", "3"]


def test_float_ids_from_a_missing_value_column_lose_the_point(tmp_path, table):
    df = _load(tmp_path, table.assign(ID=[1.0, 2.0, 3.0]), fmt="parquet")
    assert list(df.subject_id) == ["1", "2", "3"]


def test_leading_zero_ids_survive_csv(tmp_path, table):
    df = _load(tmp_path, table.assign(ID=["007", "010", "100"]))
    assert list(df.subject_id) == ["007", "010", "100"]


def test_event_with_missing_time_is_refused(tmp_path, table):
    with pytest.raises(CarotidkitError, match=r"row 3 \(subject_id a2\): death_event = 1 but death_years is missing"):
        _load(tmp_path, table.assign(FU=[10.0, None, 2.0]))


def test_two_sources_for_one_column_are_refused(tmp_path, table):
    with pytest.raises(CarotidkitError, match=r"'AGE' and 'FU' both map to age_years"):
        _load(tmp_path, table, {**CMAP, "FU": "age_years"})


def test_mapped_column_colliding_with_a_canonical_one(tmp_path, table):
    with pytest.raises(CarotidkitError, match=r"'AGE' maps to age_years, but the table already has"):
        _load(tmp_path, table.assign(age_years=[1, 2, 3]))


def test_excel_with_several_sheets_must_name_one(tmp_path, table):
    p = tmp_path / "c.xlsx"
    with pd.ExcelWriter(p) as w:
        pd.DataFrame({"note": ["readme"]}).to_excel(w, sheet_name="about", index=False)
        table.to_excel(w, sheet_name="cohort", index=False)
    with pytest.raises(CarotidkitError, match=r"c.xlsx: workbook has 2 sheets \('about', 'cohort'\); pass sheet="):
        data.load_cohort(p, CMAP)
    assert len(data.load_cohort(p, CMAP, sheet="cohort")) == 3
    with pytest.raises(CarotidkitError, match=r"no sheet 'Cohort'"):
        data.load_cohort(p, CMAP, sheet="Cohort")


@pytest.mark.parametrize(
    "yaml_text, match",
    [
        ("- ID\n- AGE\n", "is a list, expected a mapping"),
        ("ID: subject_id\nCHOL: {column: tc_mmol_l, unit: 5}\n", "unit of 'CHOL' is 5; write it as text"),
        ("ID: subject_id\nAGE: 7\n", "entry 'AGE' is 7"),
        ("ID: subject_id\nAGE: {column: age_years, units: years}\n", "unknown key\\(s\\) units"),
        ("just text\n", "is a str, expected a mapping"),
    ],
)
def test_malformed_yaml_column_maps(tmp_path, table, yaml_text, match):
    (tmp_path / "map.yaml").write_text(yaml_text)
    table.to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(CarotidkitError, match=match) as e:
        data.load_cohort(tmp_path / "c.csv", tmp_path / "map.yaml")
    assert "map.yaml" in _one_line(e)


def test_identifying_columns_are_dropped_unless_kept(tmp_path, table):
    t = table.assign(
        PatientName=["Ann", "Bob", "Cy"],
        DOB=["1950-01-02", "1960-03-04", "1970-05-06"],
        e_mail=["a@x", "b@x", "c@x"],
        VISIT=["2020-01-01", "2020-02-01", "2020-03-01"],
        MY_SCORE=[1, 2, 3],
    )
    with pytest.warns(UserWarning, match="look identifying"):
        df = _load(tmp_path, t)
    assert set(df.attrs["dropped_identifying"]) == {"PatientName", "DOB", "e_mail", "VISIT"}
    assert "MY_SCORE" in df.columns and not {"PatientName", "DOB", "e_mail", "VISIT"} & set(df.columns)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept = _load(tmp_path, t[["ID", "AGE", "CHOL", "FU", "DIED", "DOB"]], {**CMAP, "DOB": "keep"})
    assert "DOB" in kept.columns


@pytest.mark.parametrize("extra", ["bogus", "KEEP", None])
def test_extra_mode_must_be_known(tmp_path, table, extra):
    with pytest.raises(CarotidkitError, match="use 'keep', 'drop' or 'error'"):
        _load(tmp_path, table, extra=extra)


def test_extra_drop_keeps_canonical_columns_only(tmp_path, table):
    assert "MY_SCORE" not in _load(tmp_path, table.assign(MY_SCORE=1), extra="drop").columns


# ============================================================================ parameters and CLI


@pytest.mark.parametrize(
    "nb, knob, value, match",
    [
        ("02_unet_ensemble", "epochs", "abc", "is not a number"),
        ("02_unet_ensemble", "epochs", -3, "is below 1"),
        ("02_unet_ensemble", "epochs", 2.5, "not a whole number"),
        ("02_unet_ensemble", "batch_size", 0, "is below 1"),
        ("02_unet_ensemble", "learning_rate", 0, "is below"),
        ("02_unet_ensemble", "backbones", "resnet999", "unknown 'resnet999'"),
        ("02_unet_ensemble", "backbones", [], "non-empty list"),
        ("02_unet_ensemble", "vote", "unanimous", "not one of 'majority', 'mean'"),
        ("01_cleaning", "model_size_px", 100, "not a multiple of 32"),
        ("01_cleaning", "square", "diagonal", "not one of 'pad', 'resize'"),
        ("01_cleaning", "val_fraction", 1.5, "is above 0.9"),
        ("03_vd_video", "folds", 1, "is below 2"),
        ("03_vd_video", "architecture", "resnet", "not one of"),
        ("04_xai", "methods", ["shap"], "unknown 'shap'"),
        ("05_survival", "region", "europe", "not one of"),
        ("05_survival", "n_boot", -1, "is below 0"),
        ("00_data", "n_jobs", True, "is not a number"),
    ],
)
def test_knobs_are_checked_against_their_rules(nb, knob, value, match):
    with pytest.raises(ValueError, match=match) as e:
        profiles.settings(nb, "smoke", **{knob: value})
    assert _one_line(e).startswith(f"{nb}: {knob}")


def test_a_single_backbone_string_becomes_a_list():
    assert profiles.settings("02_unet_ensemble", "smoke", backbones="mobilenetv2").backbones == ["mobilenetv2"]
    assert profiles.settings("02_unet_ensemble", "smoke", backbones="mobilenetv2,efficientnetb0").backbones == [
        "mobilenetv2",
        "efficientnetb0",
    ]


@pytest.mark.parametrize(
    "only, expect",
    [
        ("0", ["00_data"]),
        ("00,3", ["00_data", "03_vd_video"]),
        ("05_survival", ["05_survival"]),
        ("2", ["02_unet_ensemble"]),
    ],
)
def test_only_selects_exactly(only, expect):
    from carotidkit.report import discover, select

    assert [n.stem for n in select(discover(profiles.repo_root()), only)] == expect


@pytest.mark.parametrize("only", ["7", "", "xx", "0_data"])
def test_only_that_matches_nothing_is_refused(only):
    from carotidkit.report import discover, select

    with pytest.raises(ValueError, match="--only"):
        select(discover(profiles.repo_root()), only)


def test_cli_profiles_unknown_notebook(capsys):
    from carotidkit.cli import main

    assert main(["profiles", "bogus"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --only bogus: no notebook matches") and "\n" not in err


def test_cli_bad_parameter_fails_before_anything_runs(tmp_path, capsys):
    from carotidkit.cli import main

    args = ["report", "--profile", "smoke", "--run-dir", str(tmp_path / "run"), "--reports-dir", str(tmp_path / "rep")]
    assert main(args + ["-p", "epochs", "-3"]) == 2
    assert "epochs = -3 is below 1" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # 00 and 01 did not run first


# ============================================================================ files written


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_outputs_respect_the_umask(tmp_path, umask, mode):
    from carotidkit import io

    old = os.umask(umask)
    try:
        io.write_text(tmp_path / "a.txt", "x")
        io.write_parquet(tmp_path / "b.parquet", pd.DataFrame({"a": [1]}))
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == mode
    assert (tmp_path / "b.parquet").stat().st_mode & 0o777 == mode


def test_a_crash_while_writing_leaves_the_previous_file(tmp_path):
    from carotidkit import io

    io.write_text(tmp_path / "log.csv", "epoch\n0\n")
    with pytest.raises(RuntimeError):
        with io.atomic_path(tmp_path / "log.csv") as tmp:
            tmp.write_text("epo")  # half written ...
            raise RuntimeError("killed")  # ... then the process dies
    assert (tmp_path / "log.csv").read_text() == "epoch\n0\n"
    assert [p.name for p in tmp_path.iterdir()] == ["log.csv"]


@pytest.mark.parametrize(
    "make, match",
    [
        (
            lambda db: _png(db / "train" / "9_labeled.png", np.zeros((48, 64), np.uint8)),
            "9_labeled.png: mask without an image",
        ),
        (lambda db: _png(db / "train" / "1 .png", np.zeros((48, 64), np.uint8)), "id '1' also used by"),
    ],
)
def test_files_that_pair_with_nothing_are_flagged_not_raised(db, make, match):
    make(db)
    with pytest.raises(CarotidkitError, match=match):
        data.load_plaque_db(db)
    t = data.load_plaque_db(db, errors="flag")
    bad = t[t.error.notna()]
    assert len(bad) == 1 and bad.error.str.contains(match).all() and bad.image_path.isna().all()
    assert t[t.error.isna()].has_plaque.all() and t[t.error.isna()].image_id.tolist() == ["3", "1", "2"]


# ----------------------------------------------------------------------------- issue 26's inputs


def test_header_only_cohort_is_one_line(tmp_path):
    from carotidkit.data import load_cohort

    (tmp_path / "h.csv").write_text("subject_id,age_years\n")
    with pytest.raises(CarotidkitError, match="h.csv: the table has a header \\(2 columns\\) but no rows"):
        load_cohort(tmp_path / "h.csv")


def test_an_endpoint_time_without_its_event_column_names_the_missing_column(tmp_path):
    from carotidkit.data import load_cohort

    pd.DataFrame({"id": ["a", "b"], "death_years": [3.0, 5.0], "DIED": [0, 1]}).to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(CarotidkitError, match="death_years without death_event"):
        load_cohort(tmp_path / "c.csv", {"id": "subject_id", "death_years": "death_years"})


def test_events_at_time_zero_are_counted_with_a_warning(tmp_path):
    from carotidkit.data import load_cohort

    pd.DataFrame({"subject_id": ["a", "b", "c"], "death_years": [0.0, 2.0, 0.0], "death_event": [1, 1, 0]}).to_csv(
        tmp_path / "c.csv", index=False
    )
    with pytest.warns(UserWarning, match="events at follow-up time 0 \\(death: 1\\)"):
        df = load_cohort(tmp_path / "c.csv")
    assert df.attrs["events_at_time_zero"] == {"death": 1}


def test_latin1_csv_gets_an_encoding_hint_and_reads_with_it(tmp_path):
    from carotidkit.data import load_cohort

    (tmp_path / "l.csv").write_bytes("subject_id,age_years,Stadt\na,55,München\n".encode("latin-1"))
    with pytest.raises(CarotidkitError, match="not UTF-8 text.*encoding='latin-1'"):
        load_cohort(tmp_path / "l.csv")
    assert load_cohort(tmp_path / "l.csv", encoding="latin-1").Stadt.iloc[0] == "München"


def test_semicolon_csv_gets_a_separator_hint_and_reads_with_it(tmp_path):
    from carotidkit.data import load_cohort

    (tmp_path / "s.csv").write_text("subject_id;age_years\na;55\nb;61\n")
    with pytest.raises(CarotidkitError, match="separator looks like a semicolon.*sep=';'"):
        load_cohort(tmp_path / "s.csv")
    assert load_cohort(tmp_path / "s.csv", sep=";").age_years.tolist() == [55.0, 61.0]


def test_cli_profiles_lists_every_knob_with_its_meaning_and_values(capsys):
    from carotidkit.cli import main
    from carotidkit.settings import VdSettings

    assert main(["profiles", "03"]) == 0
    out = capsys.readouterr().out
    for name, k in VdSettings.knobs().items():
        assert f"  {name}: {k.describe()}" in out
    assert "smoke=2  workshop=3  full=5" in out  # folds per profile
