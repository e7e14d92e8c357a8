"""Loaders for real data: formats, quirks, and one clear error per kind of bad input."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from helpers import write_dicom

from carotidkit import data
from carotidkit.io import CarotidkitError, read_parquet
from carotidkit.layout import Data, RunLayout

# ----------------------------------------------------------------------------- fixtures


def _png(path: Path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), arr)


@pytest.fixture()
def quirky_db(tmp_path):
    """A folder in the Ar-PlaqSegm1 layout with its quirks: gaps, a stray space, RGB masks,
    non-binary mask values, plaque-free images with empty masks."""
    root = tmp_path / "Ar-PlaqSegm1"
    rng = np.random.default_rng(0)
    img = lambda: rng.integers(0, 255, (64, 64), dtype=np.uint8)
    m = np.zeros((64, 64), np.uint8)
    m[20:30, 10:40] = 255
    m[19, 10:40] = 100  # anti-aliased edge (below half: not plaque)
    _png(root / "train" / "1.png", img())
    _png(root / "train" / "1_labeled.png", m)
    _png(root / "train" / "3.png", img())
    _png(root / "train" / "3_labeled.png", np.zeros((64, 64), np.uint8))
    _png(root / "train" / "7.png", img())
    _png(root / "train" / "7_labeled.png", cv2.merge([m, m, m]))  # RGB
    _png(root / "test" / "544 .png", img())
    _png(root / "test" / "544_labeled.png", m // 2 + 1)  # values 1..128
    _png(root / "test" / "545.png", img())
    _png(root / "test" / "545_labeled.png", np.zeros((64, 64), np.uint8))
    return root


def test_plaque_db_quirks(quirky_db):
    before = {p: p.stat().st_mtime_ns for p in quirky_db.rglob("*.png")}
    db = data.load_plaque_db(quirky_db)
    assert list(db.columns[:5]) == ["image_id", "split", "image_path", "mask_path", "file_name"]
    assert set(db.image_id) == {"1", "3", "7", "544", "545"}
    row = db.set_index("image_id")
    assert row.loc["544", "split"] == "test" and row.loc["544", "file_name"] == "544 .png"
    assert row.loc["7", "mask_rgb"] and row.loc["7", "has_plaque"]
    assert row.loc["1", "mask_nonbinary"]
    assert not row.loc["3", "has_plaque"] and not row.loc["545", "has_plaque"]
    assert row.loc["544", "has_plaque"] is np.True_ or bool(row.loc["544", "has_plaque"])  # 129 > 127
    assert data.read_mask(row.loc["7", "mask_path"]).sum() == 10 * 30
    assert {p: p.stat().st_mtime_ns for p in quirky_db.rglob("*.png")} == before  # raw data untouched


def test_plaque_db_reads_the_simulators_output(tmp_path):
    from carotidkit.synth.dataset import generate

    generate(
        tmp_path, n_subjects=10, n_plaque_images=24, plaque_db_size_px=128, cine_size_px=32, cine_seconds=0.5, n_jobs=1
    )
    db = data.load_plaque_db(Data.at(tmp_path).plaque_db)
    truth = read_parquet(Data.at(tmp_path).plaque_db_truth)
    assert len(db) == len(truth) == 24
    merged = db.assign(image_id=db.image_id.astype(int)).merge(truth, on="image_id")
    assert (merged.has_plaque_x == merged.has_plaque_y).all()


# ----------------------------------------------------------------------------- bad input (plaque db)


def test_bad_db_folder_missing(tmp_path):
    with pytest.raises(CarotidkitError, match="folder not found"):
        data.load_plaque_db(tmp_path / "nope")


def test_bad_db_empty_folder(tmp_path):
    with pytest.raises(CarotidkitError, match="no images found"):
        data.load_plaque_db(tmp_path)


def test_bad_db_mask_without_image(quirky_db):
    _png(quirky_db / "train" / "9_labeled.png", np.zeros((64, 64), np.uint8))
    with pytest.raises(CarotidkitError, match=r"9_labeled.png: mask without an image"):
        data.load_plaque_db(quirky_db)


def test_bad_db_image_without_mask(quirky_db):
    _png(quirky_db / "train" / "11.png", np.zeros((64, 64), np.uint8))
    with pytest.raises(CarotidkitError, match=r"11.png: image without a mask"):
        data.load_plaque_db(quirky_db)
    flagged = data.load_plaque_db(quirky_db, errors="flag")
    assert flagged.error.notna().sum() == 1


def test_bad_db_truncated_image(quirky_db):
    p = quirky_db / "train" / "3.png"
    p.write_bytes(p.read_bytes()[:60])
    with pytest.raises(CarotidkitError, match=r"3.png: not a readable image"):
        data.load_plaque_db(quirky_db)
    flagged = data.load_plaque_db(quirky_db, errors="flag")
    assert "not a readable image" in flagged.set_index("image_id").loc["3", "error"]


def test_bad_db_mask_size_mismatch(quirky_db):
    _png(quirky_db / "train" / "1_labeled.png", np.zeros((32, 64), np.uint8))
    with pytest.raises(CarotidkitError, match=r"1_labeled.png: mask is 64x32 but its image 1.png is 64x64"):
        data.load_plaque_db(quirky_db)


def test_bad_db_duplicate_id(quirky_db):
    _png(quirky_db / "test" / "545 .png", np.zeros((64, 64), np.uint8))
    with pytest.raises(CarotidkitError, match="also used by"):
        data.load_plaque_db(quirky_db)


# ----------------------------------------------------------------------------- videos


def test_video_formats_roundtrip(tmp_path):
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 255, (12, 32, 48), dtype=np.uint8)
    np.save(tmp_path / "a.npy", frames)
    np.savez(tmp_path / "b.npz", frames=frames, fps=np.float32(30), pixel_spacing_mm=np.float32(0.1))
    for i, f in enumerate(frames):
        _png(tmp_path / "frames" / f"{i:03d}.png", f)
    v = data.load_video(tmp_path / "a.npy", fps=25)
    assert v.frames.shape == (12, 32, 48) and v.fps == 25
    v = data.load_video(tmp_path / "b.npz")
    assert v.fps == 30 and abs(v.pixel_spacing_mm - 0.1) < 1e-6
    v = data.load_video(tmp_path / "frames")
    np.testing.assert_array_equal(v.frames, frames)


def test_video_mp4(tmp_path):
    import imageio.v3 as iio

    t = np.linspace(0, 1, 16)
    frames = np.stack([np.full((32, 32, 3), int(40 + 150 * s), np.uint8) for s in t])
    iio.imwrite(tmp_path / "c.mp4", frames, plugin="pyav", codec="libx264", fps=25)
    v = data.load_video(tmp_path / "c.mp4")
    assert v.n_frames == 16 and v.frames.ndim == 3 and abs(v.fps - 25) < 0.5
    assert v.frames[-1].mean() > v.frames[0].mean() + 100


def test_video_dicom_is_deidentified(tmp_path):
    frames = np.random.default_rng(2).integers(0, 255, (10, 24, 24), dtype=np.uint8)
    write_dicom(
        tmp_path / "clip.dcm",
        frames,
        PatientName="DOE^JANE",
        PatientID="PID-12345",
        PatientBirthDate="19560312",
        InstitutionName="Clinica Secreta",
        StudyDate="20200101",
        Manufacturer="Acme",
    )
    v = data.load_video(tmp_path / "clip.dcm")
    np.testing.assert_array_equal(v.frames, frames)
    assert abs(v.fps - 25) < 1e-6
    text = repr(v.meta)
    for secret in ("DOE", "PID-12345", "1956", "Clinica", "20200101"):
        assert secret not in text
    assert "Manufacturer" not in v.meta and v.meta["Modality"] == "US"  # free text never kept


def test_bad_video_zero_frames(tmp_path):
    np.save(tmp_path / "z.npy", np.zeros((0, 8, 8), np.uint8))
    with pytest.raises(CarotidkitError, match="no frames"):
        data.load_video(tmp_path / "z.npy")


def test_bad_video_one_frame(tmp_path):
    np.save(tmp_path / "one.npy", np.zeros((1, 8, 8), np.uint8))
    with pytest.raises(CarotidkitError, match="one.npy: video has a single frame"):
        data.load_video(tmp_path / "one.npy")


def test_bad_video_corrupt_mp4(tmp_path):
    (tmp_path / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42garbage" * 10)
    with pytest.raises(CarotidkitError, match="bad.mp4: not a readable video"):
        data.load_video(tmp_path / "bad.mp4")


def test_bad_video_corrupt_dicom(tmp_path):
    (tmp_path / "bad.dcm").write_bytes(b"not a dicom")
    with pytest.raises(CarotidkitError, match="bad.dcm: not a readable DICOM"):
        data.load_video(tmp_path / "bad.dcm")


def test_bad_video_unsupported_format(tmp_path):
    (tmp_path / "clip.xyz").write_bytes(b"1234")
    with pytest.raises(CarotidkitError, match="unsupported video format"):
        data.load_video(tmp_path / "clip.xyz")


# ----------------------------------------------------------------------------- cohort tables


@pytest.fixture()
def user_table():
    return pd.DataFrame(
        {
            "ID": ["a1", "a2", "a3"],
            "AGE": [50, 61, 70],
            "SEX": ["F", "m", "male"],
            "SYS": [140, 120, 155],
            "CHOL_MGDL": [232, 193, 270],
            "HDL": [1.3, 1.1, 1.6],
            "SMK": ["yes", "no", "no"],
            "FU_DAYS": [3650, 2000, 400],
            "DIED": [0, 1, 0],
            "MY_SCORE": [1, 2, 3],
        }
    )


CMAP = {
    "ID": "subject_id",
    "AGE": "age_years",
    "SEX": "sex",
    "SYS": "sbp_mmhg",
    "CHOL_MGDL": {"column": "tc_mmol_l", "unit": "mg/dL"},
    "HDL": "hdl_mmol_l",
    "SMK": "smoking",
    "FU_DAYS": {"column": "death_years", "unit": "days"},
    "DIED": "death_event",
}


@pytest.mark.parametrize("fmt", ["csv", "parquet", "dta", "xlsx"])
def test_cohort_formats_mapping_and_units(tmp_path, user_table, fmt):
    p = tmp_path / f"cohort.{fmt}"
    {
        "csv": lambda: user_table.to_csv(p, index=False),
        "parquet": lambda: user_table.to_parquet(p),
        "dta": lambda: user_table.to_stata(p, write_index=False),
        "xlsx": lambda: user_table.to_excel(p, index=False),
    }[fmt]()
    df = data.load_cohort(p, CMAP)
    assert list(df.columns[:3]) == ["subject_id", "age_years", "sex"]
    assert list(df.sex) == ["female", "male", "male"]
    assert abs(df.tc_mmol_l.iloc[0] - 6.0) < 0.01  # 232 mg/dL
    assert abs(df.death_years.iloc[0] - 9.993) < 0.01  # 3650 days
    assert list(df.smoking) == [1, 0, 0]
    assert "MY_SCORE" in df.columns  # users' extra covariates kept


def test_cohort_column_map_from_yaml(tmp_path, user_table):
    import yaml

    user_table.to_csv(tmp_path / "c.csv", index=False)
    (tmp_path / "map.yaml").write_text(yaml.safe_dump(CMAP))
    assert len(data.load_cohort(tmp_path / "c.csv", tmp_path / "map.yaml")) == 3


def _bad(tmp_path, table, cmap=CMAP, match="", **kw):
    p = tmp_path / "c.csv"
    table.to_csv(p, index=False)
    with pytest.raises(CarotidkitError, match=match) as info:
        data.load_cohort(p, cmap, **kw)
    assert "\n" not in str(info.value)  # one line
    return str(info.value)


def test_bad_cohort_unknown_canonical_column(tmp_path, user_table):
    msg = _bad(tmp_path, user_table, {**CMAP, "SYS": "sbp_mmHg"}, match="unknown column 'sbp_mmHg'")
    assert "did you mean 'sbp_mmhg'" in msg


def test_bad_cohort_mapped_column_missing(tmp_path, user_table):
    _bad(tmp_path, user_table.drop(columns=["SYS"]), match="column 'SYS' named in the column map is not in the table")


def test_bad_cohort_unknown_columns_when_strict(tmp_path, user_table):
    _bad(tmp_path, user_table, match="unknown column.*MY_SCORE", extra="error")


def test_bad_cohort_impossible_sbp(tmp_path, user_table):
    _bad(
        tmp_path,
        user_table.assign(SYS=[140, 20, 150]),
        match=r"c.csv row 3 \(subject_id a2\): sbp_mmhg = 20 is outside",
    )


def test_bad_cohort_impossible_age(tmp_path, user_table):
    _bad(tmp_path, user_table.assign(AGE=[50, 300, 60]), match=r"row 3 .*age_years = 300")


def test_bad_cohort_negative_time(tmp_path, user_table):
    _bad(tmp_path, user_table.assign(FU_DAYS=[100, -5, 30]), match="negative follow-up time")


def test_bad_cohort_duplicate_ids(tmp_path, user_table):
    _bad(tmp_path, user_table.assign(ID=["a1", "a2", "a1"]), match=r"duplicate subject_id 'a1' in rows 2 and 4")


def test_bad_cohort_unknown_unit(tmp_path, user_table):
    _bad(
        tmp_path,
        user_table,
        {**CMAP, "CHOL_MGDL": {"column": "tc_mmol_l", "unit": "furlongs"}},
        match=r"unknown unit 'furlongs'.*use 'mmol/L' or mg/dL",
    )


def test_bad_cohort_binary_not_binary(tmp_path, user_table):
    _bad(tmp_path, user_table.assign(DIED=[0, 2, 1]), match=r"row 3 .*death_event = 2 is not 0/1")


def test_bad_cohort_unknown_sex(tmp_path, user_table):
    _bad(tmp_path, user_table.assign(SEX=["F", "x", "m"]), match="sex 'x' not understood")


def test_bad_cohort_not_a_number(tmp_path, user_table):
    _bad(tmp_path, user_table.assign(HDL=[1.2, "n/a?", 1.0]), match=r"hdl_mmol_l = 'n/a\?' is not a number")


def test_bad_cohort_unsupported_format(tmp_path):
    (tmp_path / "c.json").write_text("{}")
    with pytest.raises(CarotidkitError, match="unsupported table format '.json'"):
        data.load_cohort(tmp_path / "c.json")


def test_bad_cohort_corrupt_sas(tmp_path):
    (tmp_path / "c.sas7bdat").write_bytes(b"garbage" * 50)
    with pytest.raises(CarotidkitError, match=r"c.sas7bdat: could not be read"):
        data.load_cohort(tmp_path / "c.sas7bdat")


def test_bad_cohort_no_subject_id(tmp_path, user_table):
    _bad(tmp_path, user_table, {k: v for k, v in CMAP.items() if k != "ID"}, match="no subject_id column")


def test_bad_cohort_event_without_time(tmp_path, user_table):
    _bad(
        tmp_path, user_table, {k: v for k, v in CMAP.items() if k != "FU_DAYS"}, match="death_event without death_years"
    )


def test_synthetic_cohort_passes_validation(tmp_path):
    from carotidkit.synth.cohort import simulate_cohort

    c, _ = simulate_cohort(300, seed=1)
    out = data.validate_cohort(c)
    assert len(out) == 300 and set(c.columns) == set(out.columns)


def test_same_id_in_train_and_test_gives_two_distinct_cleaned_images(tmp_path):
    """train/5.png and test/5.png must not overwrite each other in clean/images/."""
    from carotidkit.clean import clean_database

    root = tmp_path / "db"
    rng = np.random.default_rng(1)
    a = np.zeros((200, 200), np.uint8)
    a[40:160, 40:160] = rng.integers(30, 120, (120, 120))
    b = np.zeros((200, 200), np.uint8)
    b[40:160, 40:160] = rng.integers(130, 220, (120, 120))
    m = np.zeros((200, 200), np.uint8)
    m[90:110, 60:140] = 255
    _png(root / "train" / "5.png", a)
    _png(root / "train" / "5_labeled.png", m)
    _png(root / "test" / "5.png", b)
    _png(root / "test" / "5_labeled.png", np.zeros((200, 200), np.uint8))
    _png(root / "train" / "6.png", a)
    _png(root / "train" / "6_labeled.png", m)
    db = data.load_plaque_db(root)
    assert db.image_id.is_unique
    assert set(db.image_id) == {"train_5", "test_5", "6"}
    assert db.set_index("image_id").source_id.to_dict() == {"train_5": "5", "test_5": "5", "6": "6"}
    clean_dir = RunLayout(tmp_path).clean
    qc = clean_database(db, clean_dir.root, model_size_px=64, n_jobs=1)
    assert qc.image_id.is_unique
    ia = cv2.imread(str(clean_dir.images / "train_5.png"), cv2.IMREAD_GRAYSCALE)
    ib = cv2.imread(str(clean_dir.images / "test_5.png"), cv2.IMREAD_GRAYSCALE)
    assert ia.mean() < ib.mean()  # two different images, not one overwritten


def test_video_manifest_reads_ids_as_text_and_resolves_paths(tmp_path):
    from carotidkit.data.prepare import index_videos

    (tmp_path / "v").mkdir()
    np.save(tmp_path / "v" / "a.npy", np.zeros((4, 8, 8), np.uint8))
    np.save(tmp_path / "v" / "b.npy", np.zeros((4, 8, 8), np.uint8))
    (tmp_path / "m.csv").write_text("subject_id,path,side\n007,v/a.npy,left\n007,v/b.npy,right\n")
    idx = index_videos(tmp_path / "m.csv")
    assert idx.subject_id.tolist() == ["007", "007"]
    assert idx.clip_id.tolist() == ["007_left", "007_right"]
    assert Path(idx.path[0]) == tmp_path / "v" / "a.npy"


@pytest.mark.parametrize(
    "text,msg",
    [
        ("subject,path\n1,a.npy\n", "needs column"),
        ("subject_id,path\n,a.npy\n", "row 2: empty subject_id"),
        ("subject_id,path\n5,\n", "row 2 (subject 5): empty path"),
        ("subject_id,path\n5,a.npy\n5,a.npy\n", "appears twice"),
    ],
)
def test_bad_video_manifests(tmp_path, text, msg):
    from carotidkit.data.prepare import index_videos

    (tmp_path / "m.csv").write_text(text)
    import re

    with pytest.raises(CarotidkitError, match=re.escape(msg)):
        index_videos(tmp_path / "m.csv")
