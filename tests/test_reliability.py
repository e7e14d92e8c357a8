"""One run per folder (the lock), a full disk, and what a rerun after a kill does."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from carotidkit import io, lock
from carotidkit.io import CarotidkitError

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}

HOLDER = """
import sys, time, os
from carotidkit import lock
with lock.hold(sys.argv[1]):
    print("held", flush=True)
    if sys.argv[2] == "die":
        os.kill(os.getpid(), 9)
    time.sleep(60)
"""


def _holder(run_dir, mode="wait"):
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir), mode], env=ENV, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def test_a_second_run_on_the_folder_stops_at_once_naming_the_other(tmp_path):
    p = _holder(tmp_path)
    try:
        with pytest.raises(
            CarotidkitError, match=rf"in use by another carotidkit run \(PID {p.pid} on .*, started 20"
        ) as e:
            with lock.hold(tmp_path):
                pass
        assert "\n" not in str(e.value)  # non-blocking: it never waits for the other run
        # a direct stage call on the folder is refused the same way
        from carotidkit.survival.stage import run

        with pytest.raises(CarotidkitError, match=f"PID {p.pid}"):
            run(run_dir=tmp_path, progress=None)
    finally:
        p.kill()
        p.wait()


def test_a_lock_left_by_a_dead_process_is_taken_over_with_a_note(tmp_path):
    p = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path), "die"], env=ENV, stdout=subprocess.PIPE, text=True
    )
    p.communicate()
    assert p.returncode == -signal.SIGKILL
    notes = []
    with lock.hold(tmp_path, note=notes.append):
        pass
    assert len(notes) == 1 and "ended without releasing it" in notes[0] and f"PID {p.pid} " in notes[0]
    with lock.hold(tmp_path, note=notes.append):  # a clean release leaves nothing to take over
        pass
    assert len(notes) == 1


def test_kernels_started_by_the_runner_share_its_lock(tmp_path, monkeypatch):
    with lock.hold(tmp_path) as token:
        child = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from carotidkit import lock\nwith lock.hold(sys.argv[1]): print('ok')",
                str(tmp_path),
            ],
            env={**ENV, lock.ENV: token},
            capture_output=True,
            text=True,
        )
        assert child.stdout.strip() == "ok", child.stderr
        stranger = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from carotidkit import lock\nwith lock.hold(sys.argv[1]): print('ok')",
                str(tmp_path),
            ],
            env={**ENV, lock.ENV: "not-the-token"},
            capture_output=True,
            text=True,
        )
        assert stranger.returncode != 0 and "in use by another carotidkit run" in stranger.stderr


DISK_FULL = """
import resource, signal, sys
import numpy as np, pandas as pd
from carotidkit import io
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
try:
    io.write_parquet(sys.argv[1], pd.DataFrame({"x": np.random.default_rng(0).random(200_000)}))
except io.CarotidkitError as exc:
    print(exc)
    sys.exit(3)
"""


def test_a_write_that_runs_out_of_space_keeps_the_previous_file_and_says_so(tmp_path):
    target = tmp_path / "table.parquet"
    io.write_parquet(target, pd.DataFrame({"x": [1.0, 2.0]}))
    before = target.read_bytes()
    p = subprocess.run([sys.executable, "-c", DISK_FULL, str(target)], env=ENV, capture_output=True, text=True)
    assert p.returncode == 3, p.stderr
    line = p.stdout.strip()
    assert "\n" not in line and "table.parquet" in line and "previous version left intact" in line
    assert target.read_bytes() == before
    assert [f.name for f in tmp_path.iterdir()] == ["table.parquet"]  # no temp file left behind
