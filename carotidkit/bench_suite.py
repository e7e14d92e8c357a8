"""The registered benchmarks (imported by ``carotidkit.bench.run_benchmarks``)."""
from __future__ import annotations

from pathlib import Path

from .bench import benchmark, matmul_flops


@benchmark
def bench_reference(out_dir: Path) -> dict:
    """The machine's dense matmul rate, the yardstick for FLOP/s shares."""
    return {"matmul_gflops": round(matmul_flops() / 1e9, 1)}
