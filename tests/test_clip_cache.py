"""The clip cache on a cohort's worth of trouble: killed half-way and resumed, a file added, a
worker that dies, a file that hangs, float and 16-bit clips; all through load_video."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from carotidkit import io
from carotidkit.vd import clips as C

ROOT = Path(__file__).resolve().parents[1]


def _cohort(folder: Path, n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        f = rng.integers(0, 256, (12, 24, 24), dtype=np.uint8)
        p = folder / f"S{i:03d}_L.npz"
        np.savez(p, frames=f, fps=25.0, pixel_spacing_mm=0.1)
        rows.append({"subject_id": f"S{i:03d}", "clip_id": f"S{i:03d}_L", "path": str(p)})
    return pd.DataFrame(rows)


KW = dict(size=16, seconds=0.4, progress=False)


def test_float_and_16_bit_clips_keep_their_grey_scale(tmp_path):
    rng = np.random.default_rng(1)
    u8 = rng.integers(0, 256, (10, 16, 16), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", frames=u8, fps=25.0)
    np.savez(tmp_path / "b.npz", frames=u8 / 255.0, fps=25.0)  # float 0-1 used to become 0/1
    np.save(tmp_path / "c.npy", u8.astype(np.uint16) * 257)  # 16-bit
    idx = pd.DataFrame(
        {
            "subject_id": ["a", "b", "c"],
            "clip_id": ["a", "b", "c"],
            "path": [str(tmp_path / n) for n in ("a.npz", "b.npz", "c.npy")],
        }
    )
    mm, clips, errors = C.build_cache(idx, tmp_path / "cache", **KW)
    assert errors.empty and len(clips) == 3
    a, b, c = (np.asarray(mm[i], int) for i in range(3))
    assert np.abs(a - b).max() <= 1 and np.abs(a - c).max() <= 1 and a.std() > 30
    assert clips.spacing_source.tolist() == ["unknown"] * 3 and clips.pixel_spacing_mm.isna().all()


def test_spacing_from_the_file_is_in_the_clip_table(tmp_path):
    idx = _cohort(tmp_path, 3)
    _, clips, _ = C.build_cache(idx, tmp_path / "cache", **KW)
    assert clips.pixel_spacing_mm.tolist() == [0.1] * 3 and set(clips.spacing_source) == {"file"}


def test_adding_one_file_decodes_only_that_file(tmp_path):
    idx = _cohort(tmp_path, 20)
    mm, clips, _ = C.build_cache(idx, tmp_path / "cache", **KW)
    first = np.asarray(mm).copy()
    (tmp_path / "new").mkdir()
    more = pd.concat([idx, _cohort(tmp_path / "new", 1, seed=9).assign(subject_id="N", clip_id="N")], ignore_index=True)
    mm2, clips2, _ = C.build_cache(more, tmp_path / "cache", **KW)
    assert C.LAST_BUILD["decoded"] == 1 and C.LAST_BUILD["reused"] == 20
    assert np.array_equal(np.asarray(mm2[:20]), first) and len(clips2) == 21
    assert len(list((tmp_path / "cache").glob("*.u8"))) == 1  # the superseded cache is gone


BUILD = """
import sys
from carotidkit import io
from carotidkit.vd import clips as C
if __name__ == "__main__":
    idx = io.read_parquet(sys.argv[1])
    C.build_cache(idx, sys.argv[2], size=16, seconds=0.4, progress=False, n_jobs=int(sys.argv[3]))
    print("decoded", C.LAST_BUILD["decoded"], "resumed", C.LAST_BUILD["resumed"])
"""


@pytest.mark.slow
def test_a_killed_build_resumes_and_equals_an_uninterrupted_one(tmp_path):
    idx = _cohort(tmp_path, 300)
    idx.to_parquet(tmp_path / "idx.parquet")
    script = tmp_path / "build.py"
    script.write_text(BUILD)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cache = tmp_path / "cache"
    # 20 ms per video, so that the kill lands mid-build on any machine
    slow = {**env, "CAROTIDKIT_DECODE_FAULT": "*:slow"}
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "idx.parquet"), str(cache), "1"], env=slow)
    state = None
    t0 = time.time()
    while time.time() - t0 < 120:  # wait until part of the cohort is decoded, then pull the plug
        states = list(cache.glob(".*.state.parquet"))
        if states:
            try:
                done = int(io.read_parquet(states[0]).done.sum())
            except Exception:  # being replaced right now
                done = 0
            if done >= 50:
                state = states[0]
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert state is not None, "the build never got half-way"
    done_before = int(io.read_parquet(state).done.sum())
    assert done_before < 300
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "idx.parquet"), str(cache), "1"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    decoded = int(out.stdout.split()[1])
    assert decoded <= 300 - done_before + 16  # only the missing videos (and at most one unflushed batch)
    mm, clips, _ = C.build_cache(idx, cache, **KW)
    ref, ref_clips, _ = C.build_cache(idx, tmp_path / "ref", **KW)
    assert np.array_equal(np.asarray(mm), np.asarray(ref))
    pd.testing.assert_frame_equal(clips.drop(columns="file_key"), ref_clips.drop(columns="file_key"))


@pytest.mark.slow
def test_a_worker_that_dies_or_hangs_costs_only_its_file(tmp_path, monkeypatch):
    idx = _cohort(tmp_path, 70)
    monkeypatch.setenv("CAROTIDKIT_DECODE_FAULT", "S007_L.npz:crash")
    _, clips, errors = C.build_cache(idx, tmp_path / "c1", n_jobs=2, **KW)
    assert errors.clip_id.tolist() == ["S007_L"] and "worker died" in errors.error.iloc[0]
    assert len(clips) == 69
    monkeypatch.setenv("CAROTIDKIT_DECODE_FAULT", "S011_L.npz:sleep")
    _, clips, errors = C.build_cache(idx, tmp_path / "c2", n_jobs=2, timeout_s=8, **KW)
    assert errors.clip_id.tolist() == ["S011_L"] and "took over 8 s" in errors.error.iloc[0]
    assert len(clips) == 69


def _loop_with_overlays(seed=0):
    """A 20-frame loop: moving speckle in a scan area inside black margins, margin text, and a
    burned-in caliper cross and depth ticks inside the scan area (static, saturated)."""
    rng = np.random.default_rng(seed)
    T, H, W = 20, 120, 160
    clean = np.zeros((T, H, W), np.uint8)
    clean[:, 10:110, 20:140] = rng.gamma(2.0, 30.0, (T, 100, 120)).clip(5, 190).astype(np.uint8)
    marked = clean.copy()
    marked[:, 2:7, 30:90] = 230  # margin text
    marked[:, 58:61, 60:80] = 255  # caliper cross, horizontal bar
    marked[:, 50:70, 69:72] = 255  # vertical bar
    marked[:, 20:100:10, 134:138] = 250  # depth ticks on the right edge
    return clean, marked


def test_cine_overlays_find_static_marks_not_speckle():
    from carotidkit.clean.core import cine_overlays

    clean, marked = _loop_with_overlays()
    mask = cine_overlays(marked, (20, 10, 140, 110))
    assert mask[58:61, 60:80].all() and mask[50:70, 69:72].all() and mask[20:100:10, 134:138].mean() > 0.9
    marks = np.zeros(mask.shape, bool)
    marks[56:63, 58:82] = marks[48:72, 67:74] = True
    marks[18:102, 132:140] = True
    assert mask[10:110, 20:140][~marks[10:110, 20:140]].mean() < 0.01  # speckle kept
    assert not cine_overlays(clean, (20, 10, 140, 110)).any()


def test_real_loops_are_cached_with_overlays_inpainted(tmp_path):
    clean, marked = _loop_with_overlays()
    np.save(tmp_path / "clean.npy", clean)
    np.save(tmp_path / "marked.npy", marked)
    idx = pd.DataFrame(
        {
            "subject_id": ["a", "b"],
            "clip_id": ["a", "b"],
            "path": [str(tmp_path / "clean.npy"), str(tmp_path / "marked.npy")],
        }
    )
    mm, clips, _ = C.build_cache(idx, tmp_path / "cache", size=64, seconds=0.4, crop=True, progress=False)
    a, b = np.asarray(mm[0], float), np.asarray(mm[1], float)
    assert clips.overlay_fraction.iloc[0] == 0 and 0.005 < clips.overlay_fraction.iloc[1] < 0.08
    assert b.max() < 230  # no saturated caliper left for the model to learn
    assert np.abs(a - b).mean() < 3.0


def test_ingest_bench_runs_on_a_few_loops(tmp_path, monkeypatch):
    from carotidkit.bench import bench_vd_ingest

    monkeypatch.setenv("CAROTIDKIT_BENCH_INGEST_N", "3")
    r = bench_vd_ingest(tmp_path)
    for kind in ("uncompressed", "jpeg_baseline"):
        row = r[kind]
        assert row["pydicom_bare_videos_per_s"] > 0 and row["ratio_1w_vs_bare"] > 0
        assert row["projected_hours_31019_on_16_cores"] < row["projected_hours_31019_on_2_cores"]
