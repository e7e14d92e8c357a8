"""prepare_data: synthetic by default, real parts read in place when their paths are given."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from carotidkit import data, profiles
from carotidkit.io import CarotidkitError, read_parquet


def test_real_plaque_db_and_cohort_replace_the_simulated_ones(tmp_path):
    # a real-format plaque folder and a cohort table in the user's own column names and units
    db = tmp_path / "mydb"
    (db / "train").mkdir(parents=True)
    for i in range(3):
        cv2.imwrite(str(db / "train" / f"{i}.png"), np.full((40, 40), 100, np.uint8))
        cv2.imwrite(str(db / "train" / f"{i}_labeled.png"), np.zeros((40, 40), np.uint8))
    pd.DataFrame({"pid": ["x1", "x2"], "age": [50, 60], "chol": [200, 240]}).to_csv(tmp_path / "c.csv", index=False)
    before = sorted((p.name, p.stat().st_mtime_ns) for p in tmp_path.rglob("*") if p.is_file())
    cfg = profiles.settings(
        "00_data",
        "smoke",
        run_dir=tmp_path / "run",
        plaque_db_dir=str(db),
        cohort_path=str(tmp_path / "c.csv"),
        column_map={"pid": "subject_id", "age": "age_years", "chol": {"column": "tc_mmol_l", "unit": "mg/dL"}},
        n_subjects=10,
        n_plaque_images=20,
        cine_seconds=0.5,
    )
    m = data.prepare_data(cfg, progress=lambda *_: None)
    assert m["sources"]["plaque_db"] == str(db.resolve())
    assert m["sources"]["cohort"] == str((tmp_path / "c.csv").resolve())
    assert m["sources"]["video"] == "synthetic" and m["synthetic"]  # still partly simulated
    paths = data.data_paths(cfg.run_dir)
    assert paths["plaque_db"] == db.resolve()
    cohort = read_parquet(paths["cohort"])
    assert list(cohort.subject_id) == ["x1", "x2"] and abs(cohort.tc_mmol_l.iloc[1] - 6.21) < 0.01
    assert m["counts"]["plaque_images"] == 3 and m["counts"]["subjects"] == 2
    # raw inputs untouched
    after = sorted(
        (p.name, p.stat().st_mtime_ns)
        for p in tmp_path.rglob("*")
        if p.is_file() and "run" not in p.relative_to(tmp_path).parts
    )
    assert after == before


def test_data_paths_without_manifest_is_a_clear_error(tmp_path):
    import pytest

    with pytest.raises(data.CarotidkitError, match="run notebook 00_data first"):
        data.data_paths(tmp_path)


def test_table1_by_group_and_without_it():
    from carotidkit import tables
    from carotidkit.synth.cohort import simulate_cohort

    c, _ = simulate_cohort(400, seed=2)
    t = tables.table1(c, by="hypertension")
    assert "SMD" in t.columns and t.loc["Systolic BP, mmHg", "SMD"] > 0.5  # hypertensives: higher SBP
    assert t.shape[1] == 4
    t2 = tables.table1(c.drop(columns=["hypertension"]), by="hypertension")
    assert t2.shape[1] == 1


def _real_videos_and_cohort(tmp_path, video_ids, cohort_ids):
    vids = tmp_path / "videos"
    vids.mkdir()
    for i in video_ids:
        np.save(vids / f"{i}_L.npy", np.random.default_rng(0).integers(0, 255, (6, 16, 16), dtype=np.uint8))
    pd.DataFrame({"pid": cohort_ids, "age": [55] * len(cohort_ids)}).to_csv(tmp_path / "c.csv", index=False)
    return profiles.settings(
        "00_data",
        "smoke",
        run_dir=tmp_path / "run",
        video_dir=str(vids),
        cohort_path=str(tmp_path / "c.csv"),
        column_map={"pid": "subject_id", "age": "age_years"},
        n_subjects=10,
        n_plaque_images=20,
        cine_seconds=0.5,
    )


def test_real_videos_and_cohort_report_unmatched_ids_and_drop_the_simulated_loops(tmp_path):
    cfg = _real_videos_and_cohort(tmp_path, ["A1", "A2", "A3"], ["A1", "A2", "B9"])
    m = data.prepare_data(cfg, progress=lambda *_: None)
    j = m["id_join"]
    assert (j["matched"], j["cohort_without_video"], j["videos_without_cohort_row"]) == (2, 1, 1)
    assert j["examples_cohort_without_video"] == ["B9"] and j["examples_videos_without_cohort_row"] == ["A3"]
    assert not (tmp_path / "run" / "data" / "cine").exists()  # no simulated loops beside the real ones


def test_a_join_that_matches_nobody_stops_with_one_line(tmp_path):
    cfg = _real_videos_and_cohort(tmp_path, ["A1", "A2"], ["001", "002"])
    with pytest.raises(CarotidkitError, match="no video's subject_id matches a cohort subject_id") as e:
        data.prepare_data(cfg, progress=lambda *_: None)
    assert "\n" not in str(e.value)
