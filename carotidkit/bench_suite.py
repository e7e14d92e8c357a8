"""The registered benchmarks (imported by ``carotidkit.bench.run_benchmarks``)."""
from __future__ import annotations

from pathlib import Path

from .bench import benchmark, matmul_flops


@benchmark
def bench_reference(out_dir: Path) -> dict:
    """The machine's dense matmul rate, the yardstick for FLOP/s shares."""
    return {"matmul_gflops": round(matmul_flops() / 1e9, 1)}


@benchmark
def bench_synth(out_dir: Path) -> dict:
    """Generating the smoke and workshop datasets (targets: a few seconds / under a minute)."""
    import tempfile

    from . import profiles
    from .bench import numpy_reference_s, timed
    from .synth.dataset import generate

    ref = numpy_reference_s()
    res = {"numpy_reference_s": round(ref, 3)}
    for prof in ("smoke", "workshop"):
        cfg = profiles.settings("00_data", prof)
        kw = {k: cfg[k] for k in ("n_subjects", "n_plaque_images", "plaque_db_size", "cine_size",
                                  "cine_seconds", "vd_hr_per_sd", "followup_years", "n_jobs")}
        with tempfile.TemporaryDirectory() as tmp:
            t, m = timed(generate, tmp, seed=0, **kw)
            cached, _ = timed(generate, tmp, seed=0, **kw)
        res[prof] = {"seconds": round(t, 2), "ratio_to_reference": round(t / ref, 1),
                     "cached_rerun_s": round(cached, 4), "timings": m["timings"], "counts": m["counts"]}
    return res
