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
from .layout import RunLayout

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


# ----------------------------------------------------------------------------- the benchmarks


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
        kw = {k: cfg[k] for k in cfg.SIMULATOR}  # the simulator's own knobs, declared in DataSettings
        with tempfile.TemporaryDirectory() as tmp:
            t, m = timed(generate, tmp, seed=0, **kw)
            cached, _ = timed(generate, tmp, seed=0, **kw)
        res[prof] = {
            "seconds": round(t, 2),
            "ratio_to_reference": round(t / ref, 1),
            "cached_rerun_s": round(cached, 4),
            "timings": m["timings"],
            "counts": m["counts"],
        }
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
        lay = RunLayout(tmp)
        generate(
            lay.data.root,
            n_subjects=10,
            n_plaque_images=d.n_plaque_images,
            plaque_db_size_px=d.plaque_db_size_px,
            cine_size_px=32,
            cine_seconds=0.5,
            n_jobs=d.n_jobs,
        )
        db = load_plaque_db(lay.data.plaque_db)
        t, qc = timed(
            clean.clean_database,
            db,
            lay.clean.root,
            size=c.model_size_px,
            n_jobs=c.n_jobs,
            truth_dir=lay.data.overlay_truth,
        )
        t1, _ = timed(
            clean.clean_database,
            db.head(100),
            RunLayout(Path(tmp) / "serial").clean.root,
            size=c.model_size_px,
            n_jobs=1,
        )
    return {
        "images": int(len(db)),
        "seconds": round(t, 2),
        "images_per_s": round(len(db) / t, 1),
        "single_core_images_per_s": round(100 / t1, 1),
        "numpy_reference_s": round(ref, 3),
        "ratio_to_reference": round(t / ref, 1),
        "score": clean.cleaning_score(qc),
    }


def workshop_unet_arrays(tmp: Path) -> Path:
    """The workshop's 02 inputs (00 + 01 at workshop settings, few cohort subjects) as one NPZ."""
    from . import clean, data, profiles
    from .layout import RunLayout
    from .segment.train import load_arrays

    d = profiles.settings("00_data", "workshop", run_dir=tmp)
    c = profiles.settings("01_cleaning", "workshop", run_dir=tmp)
    keep = ("n_plaque_images", "plaque_db_size_px", "n_jobs")
    data.run(run_dir=tmp, n_subjects=20, cine_seconds=0.5, progress=None, **{k: d[k] for k in keep})
    clean.run(c, progress=None)
    lay = RunLayout(tmp)
    splits = io.read_parquet(lay.clean.splits)
    arrays = {}
    for part, key in (("train", "tr"), ("val", "va"), ("test", "te")):
        X, Y = load_arrays(lay.clean.root, splits[splits.split == part].image_id.tolist())
        arrays[f"X{key}"], arrays[f"Y{key}"] = X, Y
    return io.write_npz(Path(tmp) / "unet_arrays.npz", **arrays)


@benchmark
def bench_unet(out_dir: Path) -> dict:
    """U-Net training on the workshop's own 02 data, per backbone and Keras backend:
    model-only images/s (``model.fit`` on arrays), the notebook's path (``train_unet``: data
    pipeline, validation, checkpoints) and their ratio (pipeline efficiency), system-CPU share,
    achieved FLOP/s as a share of the dense matmul peak measured in the same run, test Dice; and
    the same EfficientNet-B0 recipe in MONAI as a peer."""
    import tempfile

    from . import profiles
    from .segment.speed import run_isolated

    cfg = profiles.settings("02_unet_ensemble", "workshop")
    peak = matmul_flops()
    res = {"matmul_gflops": round(peak / 1e9, 1), "batch_size": cfg.batch_size, "epochs": cfg.epochs, "runs": []}
    only_backends = os.environ.get("CAROTIDKIT_BENCH_BACKENDS", "tensorflow,torch").split(",")
    # e.g. CAROTIDKIT_BENCH_BACKBONES=efficientnetb0: only the pair compared with MONAI (~8 min)
    backbones = os.environ.get("CAROTIDKIT_BENCH_BACKBONES", ",".join(cfg.backbones)).split(",")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        npz = workshop_unet_arrays(Path(tmp))
        res["data_prep_s"] = round(time.perf_counter() - t0, 1)
        spec = {
            "data": str(npz),
            "epochs": cfg.epochs,
            "batch_size": cfg.batch_size,
            "learning_rate": cfg.learning_rate,
            "vflip": cfg.vflip,
        }
        with np.load(npz) as z:
            res["images"] = {k: int(len(z[f"X{k}"])) for k in ("tr", "va", "te")}
            res["input_size_px"] = int(z["Xtr"].shape[1])
        flops = _unet_forward_flops(backbones, res["input_size_px"])
        for backend in only_backends:
            for bb in backbones:
                model = run_isolated({**spec, "mode": "model", "backbone": bb}, backend)
                pipe = run_isolated({**spec, "mode": "pipeline", "backbone": bb}, backend)
                row = {"backend": backend, "backbone": bb, "model_only": model, "pipeline": pipe}
                if "error" not in model and "error" not in pipe:
                    row["pipeline_efficiency"] = round(pipe["images_per_s"] / model["images_per_s"], 3)
                    row["model_share_of_matmul_peak"] = round(3 * flops[bb] * model["images_per_s"] / peak, 3)
                res["runs"].append(row)
                print(json.dumps(row), flush=True)
        if os.environ.get("CAROTIDKIT_BENCH_MONAI", "1") == "1":
            res["monai_peer"] = run_isolated({**spec, "mode": "monai"})
            res["vs_monai"] = vs_monai(res["runs"], res["monai_peer"])
    res["gflops_forward_per_image"] = {k: round(v / 1e9, 3) for k, v in flops.items()}
    return res


def vs_monai(runs: list[dict], peer: dict, backbone: str = "efficientnetb0", backend: str = "torch") -> dict:
    """The notebook's EfficientNet-B0 U-Net (Keras on ``backend``) against MONAI's, same data,
    recipe and run: training and inference rate ratios (> 1: ours is faster) and both test Dice."""
    row = next((r for r in runs if r["backbone"] == backbone and r["backend"] == backend), None)
    if row is None or "error" in row["pipeline"] or "error" in peer:
        return {"error": "no like-for-like pair in this run"}
    ours = row["pipeline"]
    return {
        "training_ratio": round(ours["images_per_s"] / peer["images_per_s"], 2),
        "inference_ratio": round(ours["inference_images_per_s"] / peer["inference_images_per_s"], 2),
        "test_dice": {"carotidkit": ours["test_dice"], "monai": peer["test_dice"]},
    }


@benchmark
def bench_unet_members(out_dir: Path) -> dict:
    """02's three members on the workshop data, trained as the notebook does (``n_jobs=0``: one
    process per member, the cores shared out) and one after another on all cores (``n_jobs=1``),
    each in a fresh process, in the same run: wall seconds, their ratio, and each member's test
    Dice both ways (the schedule must not change the results beyond noise)."""
    import tempfile

    from . import profiles
    from .segment.speed import run_isolated

    cfg = profiles.settings("02_unet_ensemble", "workshop")
    backend = os.environ.get("KERAS_BACKEND", "torch")
    res = {"backend": backend, "backbones": list(cfg.backbones), "epochs": cfg.epochs, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        npz = workshop_unet_arrays(Path(tmp))
        spec = {
            "data": str(npz),
            "mode": "members",
            "backbones": list(cfg.backbones),
            "epochs": cfg.epochs,
            "batch_size": cfg.batch_size,
            "learning_rate": cfg.learning_rate,
            "patience": cfg.patience,
            "vflip": cfg.vflip,
        }
        for n_jobs in (1, 0):
            row = run_isolated({**spec, "n_jobs": n_jobs}, backend)
            res["runs"].append(row)
            print(json.dumps(row), flush=True)
    ok = [r for r in res["runs"] if "error" not in r]
    if len(ok) == 2:
        res["speedup_side_by_side"] = round(ok[0]["seconds"] / ok[1]["seconds"], 3)
    return res


def _unet_forward_flops(backbones, size: int) -> dict[str, int]:
    """Forward FLOPs per image of each backbone's U-Net, counted in a child process (no Keras here)."""
    import subprocess
    import sys

    code = (
        "import json,sys; from carotidkit.segment.unet import build_unet, forward_flops; "
        "print(json.dumps({b: forward_flops(build_unet(b, int(sys.argv[1]))) for b in sys.argv[2:]}))"
    )
    r = subprocess.run([sys.executable, "-c", code, str(size), *backbones], capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


@benchmark
def bench_delta_c(out_dir: Path) -> dict:
    """1,000 paired bootstrap replicates of delta C (SCORE2 + VD vs SCORE2) on 10,000 subjects,
    against a loop of lifelines' concordance_index per replicate (timed on 20, scaled to 1,000)."""
    from lifelines.utils import concordance_index

    from .survival import bootstrap_c
    from .survival.score2 import score2
    from .synth.cohort import simulate_cohort

    c, t = simulate_cohort(10_000, seed=0)
    c["score2_risk"] = score2(c)
    c["both"] = np.log(-np.log(1 - c.score2_risk)) + 0.3 * t.vd_true.to_numpy()
    secs, tab = timed(
        bootstrap_c, c, "death_years", "death_event", ["score2_risk", "both"], n_boot=1000, reference="score2_risk"
    )
    rng = np.random.default_rng(0)
    n, reps = len(c), 20

    def loop():
        for _ in range(reps):
            i = rng.integers(0, n, n)
            d = c.iloc[i]
            concordance_index(d.death_years, -d.both, d.death_event)
            concordance_index(d.death_years, -d.score2_risk, d.death_event)

    ref = timed(loop)[0] * 1000 / reps
    return {
        "n": n,
        "events": int(c.death_event.sum()),
        "replicates": 1000,
        "seconds": round(secs, 2),
        "lifelines_loop_seconds_projected": round(ref, 1),
        "speedup_vs_lifelines_loop": round(ref / secs, 1),
        "delta_c": float(tab.delta_c.dropna().iloc[0]),
    }


@benchmark
def bench_vd(out_dir: Path) -> dict:
    """Video model clips/s (train and inference) per architecture at the workshop clip shape, and
    the loader's clips/s, against the dense-matmul peak measured now."""
    import torch

    from .vd.clips import ClipDataset
    from .vd.models import build_model

    torch.set_num_threads(os.cpu_count() or 2)
    peak = matmul_flops()
    S, T, B = 48, 8, 16
    out = {"matmul_gflops": round(peak / 1e9, 1), "clip": f"{T}x{S}x{S}", "batch": B}
    x, y = torch.randn(B, 1, T, S, S), (torch.rand(B) > 0.5).float()
    for arch in ("r2plus1d", "vivit"):
        m = build_model(arch, T, S)
        opt = torch.optim.AdamW(m.parameters(), 1e-3)

        def step(m=m, opt=opt):
            opt.zero_grad()
            torch.nn.functional.binary_cross_entropy_with_logits(m(x), y).backward()
            opt.step()

        step()
        tr = timed(step, repeat=5)[0]
        m.eval()
        with torch.no_grad():
            m(x)
            inf = timed(m, x, repeat=5)[0]
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as fc:
            m.train()
            torch.nn.functional.binary_cross_entropy_with_logits(m(x), y).backward()
        flops = fc.get_total_flops()
        out[arch] = {
            "train_clips_s": round(B / tr, 1),
            "infer_clips_s": round(B / inf, 1),
            "train_flop_share_of_matmul": round(flops / tr / peak, 3),
        }
    cache = np.random.default_rng(0).integers(0, 255, (256, 32, S, S), dtype=np.uint8)
    ds = ClipDataset(cache, np.arange(256), np.zeros(256), frames=T, period=4, train=True)
    load = timed(lambda: [ds.get(np.arange(k, k + B)) for k in range(0, 256, B)])[0]
    out["loader_clips_s"] = round(256 / load, 1)
    out["inference_peak_rss_mb"] = _inference_peak_rss(S, T)
    out["loader_to_train_ratio"] = round(out["loader_clips_s"] / out["r2plus1d"]["train_clips_s"], 1)
    return out


_RSS_SCRIPT = """
import sys, tempfile, threading, time, numpy as np, torch
from carotidkit.vd.clips import ClipDataset
from carotidkit.vd.models import build_model
from carotidkit.vd.train import Dist, predict
n, S, T = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
f = tempfile.NamedTemporaryFile(suffix=".u8")
w = np.memmap(f.name, np.uint8, "w+", shape=(n, 64, S, S)); w[:] = 100; w.flush(); del w
mm = np.memmap(f.name, np.uint8, "r", shape=(n, 64, S, S))
def anon():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
peak = [0.0]; stop = [False]
def watch():
    while not stop[0]:
        peak[0] = max(peak[0], anon()); time.sleep(0.005)
ds = ClipDataset(mm, np.arange(n), np.zeros(n), frames=T, period=4, train=False, all_clips=True)
m = build_model("r2plus1d", T, S)
th = threading.Thread(target=watch); th.start()
predict(m, ds, 64, Dist(), torch.device("cpu"))
stop[0] = True; th.join()
print(peak[0], len(ds))
"""


def _inference_peak_rss(S: int, T: int) -> dict:
    """Peak anonymous RSS (MB; memory-mapped clip pages are file-backed and not counted) of
    all-clips inference over 256 and 2,048 cached videos: flat in the number of clips = streaming."""
    import subprocess
    import sys

    out = {}
    for n in (256, 2048):
        r = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, str(n), str(S), str(T)], capture_output=True, text=True)
        peak, items = map(float, r.stdout.split()[-2:])
        out[f"{n}_videos_mb"] = round(peak, 1)
        out[f"{n}_videos_clip_windows"] = int(items)
    out["ratio_2048_to_256"] = round(out["2048_videos_mb"] / out["256_videos_mb"], 3)
    return out


def write_cine_dicoms(folder: Path, n: int, frames: int = 32, shape=(320, 400), jpeg: bool = False, seed: int = 0):
    """``n`` multi-frame ultrasound DICOM loops of moving speckle, uncompressed or JPEG baseline
    (frames encoded one by one with OpenCV and encapsulated, as scanners export cine)."""
    import cv2
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = rng.gamma(2.0, 30.0, (frames + 8, *shape)).clip(0, 255).astype(np.uint8)
    paths = []
    for i in range(n):
        loop = np.ascontiguousarray(np.roll(base, i, axis=0)[:frames])
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = JPEGBaseline8Bit if jpeg else ExplicitVRLittleEndian
        p = folder / f"S{i:05d}_L.dcm"
        ds = FileDataset(str(p), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.Modality = "US"
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns, ds.NumberOfFrames = shape[0], shape[1], frames
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.FrameTime = 40.0
        if jpeg:
            ds.PixelData = encapsulate(
                [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes() for f in loop]
            )
            ds["PixelData"].VR = "OB"
            ds.LossyImageCompression = "01"
        else:
            ds.PixelData = loop.tobytes()
        ds.save_as(str(p), enforce_file_format=True)
        paths.append(p)
    return paths


def _bare_decode(paths) -> float:
    """Seconds for pydicom alone to read and decode every file (one process): the reference."""
    import pydicom

    t0 = time.perf_counter()
    for p in paths:
        _ = pydicom.dcmread(str(p)).pixel_array
    return time.perf_counter() - t0


@benchmark
def bench_vd_ingest(out_dir: Path) -> dict:
    """03's clip-cache build on multi-frame DICOM loops written to disk (uncompressed and JPEG
    baseline): videos/s with 1 and 2 workers against pydicom's bare decode of the same files in
    the same run (aim: >= 0.8 of it with 2 workers), peak memory per worker, and the projected
    hours for 31,019 loops on 2 and 16 cores (assuming the measured per-worker rate scales)."""
    import resource
    import tempfile

    import pandas as pd

    from .vd import clips as C

    n = int(os.environ.get("CAROTIDKIT_BENCH_INGEST_N", "96"))
    out = {"loops": n, "frames": 32, "shape": [320, 400]}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for kind in ("uncompressed", "jpeg_baseline"):
            paths = write_cine_dicoms(tmp / kind, n, jpeg=kind == "jpeg_baseline")
            idx = pd.DataFrame(
                {
                    "subject_id": [p.stem for p in paths],
                    "clip_id": [p.stem for p in paths],
                    "path": list(map(str, paths)),
                }
            )
            ref = _bare_decode(paths)
            row = {"pydicom_bare_videos_per_s": round(n / ref, 1)}
            for jobs in (1, 2):
                cache = tmp / f"cache_{kind}_{jobs}"
                t0 = time.perf_counter()
                C.build_cache(idx, cache, size=112, seconds=1.28, crop=True, n_jobs=jobs, progress=False)
                dt = time.perf_counter() - t0
                row[f"cache_{jobs}w_videos_per_s"] = round(n / dt, 1)
                row[f"ratio_{jobs}w_vs_bare"] = round(ref / dt, 2)
            row["peak_rss_per_worker_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 0)
            per_worker = row["cache_1w_videos_per_s"]
            row["projected_hours_31019_on_2_cores"] = round(31019 / (per_worker * 2) / 3600, 2)
            row["projected_hours_31019_on_16_cores"] = round(31019 / (per_worker * 16) / 3600, 2)
            out[kind] = row
    out["note"] = (
        "ratio = pydicom's bare single-process decode time / cache build time for the same files; the cache "
        "build also crops, masks overlays, resamples to 25 fps, resizes to 112 px and writes the memmap"
    )
    return out


# ----------------------------------------------------------------------------- issue-27 speed-ups


def _speedup(old_s: float, new_s: float, n: int, unit: str) -> dict:
    return {
        f"old_{unit}_per_s": round(n / old_s, 1),
        f"new_{unit}_per_s": round(n / new_s, 1),
        "speedup": round(old_s / new_s, 2),
    }


def _keras_and_monai_inference(size: int = 96, repeats: int = 3) -> dict:
    """Inference rates of 02's three U-Nets (Keras on torch) through 02's path
    (:func:`~carotidkit.segment.ensemble.predict`: the fused torch twin) and through the old one
    (``model.predict``), and of MONAI's EfficientNet-B0 FlexibleUNet, on the same 256 images at
    the same batch size. Speed does not depend on the weights, so the models are untrained; the
    three paths alternate ``repeats`` times and each rate is the median, since a shared machine's
    speed drifts between runs."""
    import subprocess
    import sys

    code = f"""
import json, numpy as np, torch
from carotidkit.segment.speed import inference_rate, INFER_BATCH
from carotidkit.segment.unet import build_unet
from carotidkit.segment.ensemble import predict
from monai.networks.nets import FlexibleUNet
X = np.random.default_rng(0).integers(0, 256, (64, {size}, {size}, 1)).astype("float32")
mm = FlexibleUNet(in_channels=1, out_channels=1, backbone="efficientnet-b0", pretrained=False, spatial_dims=2).eval()
def mon(x):
    t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1)) / 255.0).float()
    with torch.inference_mode():
        return [torch.sigmoid(mm(t[k:k + INFER_BATCH])) for k in range(0, len(t), INFER_BATCH)]
models = {{b: build_unet(b, {size}) for b in ("efficientnetb0", "mobilenetv2", "efficientnetv2b0")}}
out = {{"monai": []}}
for rep in range({repeats}):
    out["monai"].append(inference_rate(mon, X))
    for b, m in models.items():
        out.setdefault(b, []).append(inference_rate(lambda x: predict(m, x, INFER_BATCH), X))
        out.setdefault(b + "_model_predict", []).append(
            inference_rate(lambda x: m.predict(x, batch_size=INFER_BATCH, verbose=0), X))
print(json.dumps(out))
"""
    env = {**os.environ, "KERAS_BACKEND": "torch", "TF_CPP_MIN_LOG_LEVEL": "3"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=1800)
    if r.returncode:
        return {"error": (r.stderr.strip().splitlines() or ["failed"])[-1]}
    runs = json.loads(r.stdout.strip().splitlines()[-1])
    rates = {k: float(np.median(v)) for k, v in runs.items()}
    return {
        "images_per_s": rates,
        "images_per_s_each_repeat": runs,
        "ours_vs_monai": round(rates["efficientnetb0"] / rates["monai"], 2),
        "fused_vs_model_predict": {
            b: round(rates[b] / rates[b + "_model_predict"], 2)
            for b in ("efficientnetb0", "mobilenetv2", "efficientnetv2b0")
        },
    }


@benchmark
def bench_speedups(out_dir: Path) -> dict:
    """Each of the workshop speed-ups against the code it replaced, in the same run (same inputs;
    the outputs are the same, which ``tests/test_speedups.py`` checks): the plaque database's
    simulated annotators (around the plaque vs the whole frame), far-wall IMT's dynamic
    programming (vectorised vs the loop over moves), and 02's U-Net inference path against
    ``model.predict`` and MONAI's FlexibleUNet."""
    import functools
    import tempfile

    from .segment import imt
    from .synth import anatomy as A
    from .synth import bmode
    from .synth import dataset as D
    from .synth.annotate import annotate

    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        tasks = [(i, 0, 800, i % 5 != 0, tmp) for i in range(24)]
        D._render_db_image(tasks[0])  # warm-up
        new_s, _ = timed(lambda: [D._render_db_image(t) for t in tasks])
        D.annotate = functools.partial(annotate, _whole_frame=True)
        try:
            old_s, _ = timed(lambda: [D._render_db_image(t) for t in tasks])
        finally:
            D.annotate = annotate
    res["plaque_db_image"] = _speedup(old_s, new_s, len(tasks), "images")
    stills = []
    for i in range(24):
        rng = np.random.default_rng(i)
        ex = bmode.render_export(rng, size=512, anat=A.random_anatomy(rng, age=60, vd=0.5), source="png1200")
        x0, y0, x1, y1 = ex.scan_box
        stills.append((ex.clean[y0:y1, x0:x1], *ex.pixel_spacing_mm, ex.plaque[y0:y1, x0:x1] > 0.5))

    def imt_all():
        return [imt.far_wall_imt(g, sr, sc, plaque_mask=m).imt_mm for g, sr, sc, m in stills]

    new_s, new_v = timed(imt_all, repeat=2)
    fast = imt._best_path
    imt._best_path = imt._best_path_loop
    try:
        old_s, old_v = timed(imt_all, repeat=2)
    finally:
        imt._best_path = fast
    res["far_wall_imt"] = {
        **_speedup(old_s, new_s, len(stills), "images"),
        "same_result": bool(np.allclose(old_v, new_v, equal_nan=True)),
    }
    res["unet_inference"] = _keras_and_monai_inference()
    return res
