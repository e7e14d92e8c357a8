"""Kill ``python -m carotidkit report`` (the whole process tree, as a power cut does) at points
spread over the notebooks, rerun, and check that the final tables equal an uninterrupted run's
and that the rerun executes only what had not finished."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from carotidkit import io

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("clean", "unet", "vd", "xai", "survival")


def _tables(run_dir: Path) -> dict[str, str]:
    """Content hash of every result table of the run (parquet files of the stage folders)."""
    out = {}
    for stage in STAGES:
        for p in sorted((run_dir / stage).rglob("*.parquet")):
            if "cache" in p.parts:
                continue
            df = io.read_parquet(p)
            out[str(p.relative_to(run_dir))] = str(pd.util.hash_pandas_object(df.astype(str), index=False).sum())
    return out


def _start(run_dir, reports_dir, env):
    cmd = [sys.executable, "-m", "carotidkit", "report", "--profile", "smoke", "--run-dir", str(run_dir)]
    cmd += ["--reports-dir", str(reports_dir)]
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _kill_when(proc, ready, timeout=900):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            return False
        if ready():
            os.killpg(proc.pid, signal.SIGKILL)  # the runner, its kernel and the member processes
            proc.wait()
            return True
        time.sleep(0.2)
    raise AssertionError("kill point never reached")


@pytest.mark.notebook
@pytest.mark.slow
def test_kill_anywhere_and_rerun_gives_the_uninterrupted_tables(smoke_run, tmp_path):
    assert smoke_run["error"] is None
    run_dir, reports = tmp_path / "runs" / "smoke", tmp_path / "reports"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    points = [
        ("inside 02's member training", lambda: any((run_dir / "unet").rglob("last.keras"))),
        # 03's cache build, slowed to 20 ms a loop so that the kill lands inside it
        ("inside 03's clip-cache build", lambda: any((run_dir / "vd" / "cache").glob(".*.state.parquet"))),
        ("inside 04", lambda: (run_dir / "xai").exists()),
    ]
    killed = []
    for name, ready in points:
        e = {**env, "CAROTIDKIT_DECODE_FAULT": "*:slow"} if "03" in name else env
        proc = _start(run_dir, reports, e)
        if _kill_when(proc, ready):
            killed.append(name)
    assert len(killed) == 3, killed
    state_before = (
        io.read_json(run_dir / "_report" / "state.json") if (run_dir / "_report" / "state.json").exists() else {}
    )
    done_before = {k for k, v in state_before.items() if v.get("status") == "ok"}
    proc = _start(run_dir, reports, env)
    out, _ = proc.communicate(timeout=1800)
    assert proc.returncode == 0, out[-3000:]
    # the notebooks that had finished before the last kill were not executed again
    for nb in done_before:
        assert f"{nb}: executing" not in out, f"{nb} re-executed"
    assert "05_survival: executing" in out
    assert _tables(run_dir) == _tables(smoke_run["run_dir"])


@pytest.mark.notebook
@pytest.mark.slow
def test_ctrl_c_during_member_training_stops_everything_with_one_line(tmp_path):
    run_dir = tmp_path / "runs" / "smoke"
    mark = f"ctrl-c-{os.getpid()}-{time.time_ns()}"  # inherited by every process the run starts
    proc = _start(run_dir, tmp_path / "reports", {**os.environ, "PYTHONUNBUFFERED": "1", "CAROTIDKIT_TEST_MARK": mark})
    t0 = time.time()
    while not any((run_dir / "unet").rglob("last.keras")):
        assert proc.poll() is None and time.time() - t0 < 900, "02 never started training"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends to the foreground group
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 130, out[-2000:]
    # the runner says what happened in one line and echoes nothing after the interrupt; the
    # interrupted kernel may still log its own "[IPKernelApp] ERROR" to the terminal (ipykernel
    # writes that to the stderr it inherited, not through the runner)
    ours = [
        ln for ln in out.splitlines() if not ln.startswith(("[IPKernelApp]", "Traceback", "  ", "KeyboardInterrupt"))
    ]
    assert ours[-1].startswith("stopped (Ctrl-C)"), ours[-5:]
    t0, left = time.time(), ["?"]
    while left and time.time() - t0 < 30:  # kernel, members and workers exit within seconds of the runner
        left = _marked(mark)
        time.sleep(0.5)
    assert left == [], f"stray processes: {left}"


def _marked(mark: str) -> list[str]:
    """PIDs of live processes whose environment carries ``mark`` (kernels start their own session,
    so a process group does not find them)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if f"CAROTIDKIT_TEST_MARK={mark}".encode() in (d / "environ").read_bytes():
                    out.append(d.name)
            except OSError:
                pass
    return out
