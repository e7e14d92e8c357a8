"""``make gpu-check``: does 03's torchrun path scale on this machine's GPUs, and how long would a
cohort take? On simulated loops at the ``full`` profile's clip shape, ``torchrun`` trains one
fold epoch with 1 process and with one process per visible GPU (nccl, bf16 autocast; gloo on
the CPU where there is no GPU) and prints clips/s per process, the scaling efficiency, peak GPU
memory, and the projected hours for 31,019 videos x 5 folds x the profile's epochs.

    python -m carotidkit.vd.gpucheck                       # the GPUs this machine has
    python -m carotidkit.vd.gpucheck --subjects 40 --size 32 --nproc 2   # tiny, on CPU (the test)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

COHORT_VIDEOS = 31_019


def _torchrun(run_dir: Path, nproc: int, shape: dict, timeout: float) -> dict:
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
        "-m", "carotidkit.vd.train", "--run-dir", str(run_dir), "--profile", "full",
        "--folds", "2", "--epochs", "1", "--patience", "1",
        "--input-size-px", str(shape["size"]), "--frames", str(shape["frames"]), "--period", str(shape["period"]),
        "--width", str(shape["width"]), "--depth", str(shape["depth"]), "--batch-size", str(shape["batch_size"]),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 2) // nproc))}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode:
        raise RuntimeError(f"torchrun with {nproc} process(es) failed: {proc.stderr[-2000:]}")
    log = pd.read_csv(run_dir / "vd" / "fold0" / "log.csv")
    row = log.iloc[-1]
    return {
        "processes": nproc,
        "wall_s": round(time.perf_counter() - t0, 1),
        "epoch_s": float(row.seconds),
        "clips_per_s": round(float(row.train_clips) / float(row.seconds), 1),
        "clips_per_s_per_process": round(float(row.train_clips) / float(row.seconds) / nproc, 1),
        "peak_gpu_mb": None if pd.isna(row.peak_gpu_mb) else float(row.peak_gpu_mb),
    }


def check(subjects: int, size: int, nproc: int | None, seconds: float, timeout: float) -> dict:
    import torch

    from .. import profiles
    from ..layout import RunLayout
    from ..synth.dataset import generate

    full = profiles.settings("03_vd_video", "full")
    gpus = torch.cuda.device_count()
    n = nproc or max(1, gpus)
    shape = dict(
        size=size or full.input_size_px,
        frames=full.frames,
        period=full.period,
        width=full.width,
        depth=full.depth,
        batch_size=max(full.batch_size, 8 * n) // n * n,
    )
    out = {
        "device": torch.cuda.get_device_name(0) if gpus else "cpu",
        "gpus": gpus,
        "backend": "nccl" if gpus else "gloo",
    }
    out["shape"] = shape
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        generate(RunLayout(base).data.root, n_subjects=subjects, n_plaque_images=10, plaque_db_size_px=128,
                 cine_size_px=shape["size"], cine_seconds=seconds, n_jobs=min(4, os.cpu_count() or 1))  # fmt: skip
        runs = []
        for k in sorted({1, n}):
            rd = Path(tmp) / f"p{k}"
            shutil.copytree(base, rd)
            runs.append(_torchrun(rd, k, shape, timeout))
    out["runs"] = runs
    one, many = runs[0], runs[-1]
    out["scaling_efficiency"] = round(many["clips_per_s"] / (one["clips_per_s"] * many["processes"]), 3)
    epochs = int(full.epochs)
    # each of 5 folds trains on 4/5 of the videos for the profile's epochs (early stopping aside)
    clip_steps = COHORT_VIDEOS * 4 / 5 * epochs * 5
    out["projected_hours_31019_videos_5_folds"] = {
        f"{r['processes']} process(es)": round(clip_steps / r["clips_per_s"] / 3600, 1) for r in runs
    }
    out["epochs_assumed"] = epochs
    return out


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m carotidkit.vd.gpucheck", description=__doc__.splitlines()[0])
    p.add_argument("--subjects", type=int, default=400, help="simulated subjects (2 loops each)")
    p.add_argument("--size", type=int, default=0, help="clip size in px (default: the full profile's)")
    p.add_argument("--seconds", type=float, default=1.3, help="seconds of each simulated loop")
    p.add_argument("--nproc", type=int, default=None, help="processes for the scaled run (default: visible GPUs)")
    p.add_argument("--timeout", type=float, default=1800)
    a = p.parse_args(argv)
    res = check(a.subjects, a.size, a.nproc, a.seconds, a.timeout)
    print(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
