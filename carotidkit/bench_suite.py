"""The registered benchmarks (imported by ``carotidkit.bench.run_benchmarks``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .bench import benchmark, matmul_flops, timed


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


@benchmark
def bench_unet(out_dir: Path) -> dict:
    """U-Net training images/s per backbone, achieved FLOP/s as a share of the machine's dense
    matmul FLOP/s (numpy BLAS, measured now), and ensemble inference images/s."""
    from . import profiles
    from .segment import keras_quietly
    from .bench import matmul_flops
    from .segment.unet import build_unet, dice_bce_loss, dice_metric, forward_flops

    keras = keras_quietly()
    peak = matmul_flops()
    size = profiles.settings("01_cleaning", "workshop").model_size
    cfg = profiles.settings("02_unet_ensemble", "workshop")
    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, (96, size, size, 1)).astype("float32")
    Y = (rng.random((96, size, size, 1)) > 0.97).astype("float32")
    res = {"matmul_gflops": round(peak / 1e9, 1), "input_size": size, "batch_size": cfg.batch_size,
           "backbones": {}}
    models = []
    for bb in cfg.backbones:
        m = build_unet(bb, size)
        m.compile(optimizer=keras.optimizers.Adam(1e-3), loss=dice_bce_loss, metrics=[dice_metric],
                  jit_compile=False)
        m.fit(X[:32], Y[:32], batch_size=cfg.batch_size, epochs=1, verbose=0)      # trace / warm up
        t, _ = timed(m.fit, X, Y, batch_size=cfg.batch_size, epochs=2, verbose=0)
        ips = 2 * len(X) / t
        f = forward_flops(m)
        res["backbones"][bb] = {"train_images_per_s": round(ips, 1), "gflops_forward_per_image": round(f / 1e9, 3),
                                "achieved_gflops": round(3 * f * ips / 1e9, 1),
                                "share_of_matmul_peak": round(3 * f * ips / peak, 3)}
        models.append(m)
    for m in models:
        m.predict(X[:16], batch_size=32, verbose=0)
    t, _ = timed(lambda: [m.predict(X, batch_size=32, verbose=0) for m in models])
    res["ensemble_inference_images_per_s"] = round(len(X) / t, 1)
    return res
