"""Benchmarks for ``make bench``: each reports its speed as a ratio to a reference measured in
the same run (so numbers travel between machines), never as a timed assert.

Results go to ``bench/results/<name>.json`` and a summary table is printed.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Callable

import numpy as np

from . import io

BENCHMARKS: dict[str, Callable[[Path], dict]] = {}


def benchmark(fn: Callable[[Path], dict]) -> Callable[[Path], dict]:
    BENCHMARKS[fn.__name__.removeprefix("bench_")] = fn
    return fn


def timed(fn, *args, repeat: int = 1, **kw) -> tuple[float, object]:
    """Best wall time of ``repeat`` calls, and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args, **kw)
        best = min(best, time.perf_counter() - t0)
    return best, out


def matmul_flops(n: int = 1024, repeat: int = 5) -> float:
    """The machine's dense float32 matmul FLOP/s (numpy/BLAS), measured now: the reference."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n), dtype=np.float32), rng.standard_normal((n, n), dtype=np.float32)
    a @ b
    t, _ = timed(lambda: a @ b, repeat=repeat)
    return 2 * n**3 / t


def numpy_reference_s() -> float:
    """Seconds for a fixed numpy workload (FFT convolution of 16 800x600 speckle fields):
    the yardstick the data benchmarks are divided by."""
    from scipy.signal import fftconvolve

    rng = np.random.default_rng(0)
    psf = rng.standard_normal((15, 9))

    def work():
        for _ in range(16):
            fftconvolve(rng.standard_normal((600, 800)), psf, mode="same")

    return timed(work, repeat=2)[0]


def run_benchmarks(root: Path, only: str | None = None) -> dict[str, dict]:
    # import the modules that register benchmarks
    from . import bench_suite  # noqa: F401

    names = [n.strip() for n in only.split(",")] if only else list(BENCHMARKS)
    out_dir = Path(root) / "bench" / "results"
    results = {}
    for name in names:
        if name not in BENCHMARKS:
            raise KeyError(f"unknown benchmark {name!r}; have {', '.join(BENCHMARKS)}")
        print(f"== bench {name} ...", flush=True)
        res = BENCHMARKS[name](out_dir)
        res.update(machine=platform.platform(), cpus=os.cpu_count(), measured_at=time.strftime("%Y-%m-%d %H:%M:%S"))
        io.write_json(out_dir / f"{name}.json", res)
        results[name] = res
        print(json.dumps(res, indent=1, default=str), flush=True)
    return results
