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


@benchmark
def bench_cleaning(out_dir: Path) -> dict:
    """Cleaning the 541-image workshop database (target: under a minute on 2 cores)."""
    import tempfile

    from . import clean, profiles
    from .bench import numpy_reference_s, timed
    from .data import load_plaque_db
    from .synth.dataset import generate

    ref = numpy_reference_s()
    d = profiles.settings("00_data", "workshop")
    c = profiles.settings("01_cleaning", "workshop")
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp) / "data", n_subjects=10, n_plaque_images=d.n_plaque_images,
                 plaque_db_size=d.plaque_db_size, cine_size=32, cine_seconds=0.5, n_jobs=d.n_jobs)
        db = load_plaque_db(Path(tmp) / "data" / "plaque_db")
        t, qc = timed(clean.clean_database, db, Path(tmp) / "clean", size=c.model_size, n_jobs=c.n_jobs,
                      truth_dir=Path(tmp) / "data" / "truth" / "plaque_db")
        t1, _ = timed(clean.clean_database, db.head(100), Path(tmp) / "clean1", size=c.model_size, n_jobs=1)
    return {"images": int(len(db)), "seconds": round(t, 2), "images_per_s": round(len(db) / t, 1),
            "single_core_images_per_s": round(100 / t1, 1), "numpy_reference_s": round(ref, 3),
            "ratio_to_reference": round(t / ref, 1), "score": clean.cleaning_score(qc)}
