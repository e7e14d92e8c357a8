"""Video VD: clip sampling, models, DDP gives the single-process step, and the cross-fitting
does not leak (shuffled labels give chance AUROC out of fold)."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from carotidkit.io import read_parquet

torch = pytest.importorskip("torch")

from carotidkit.layout import RunLayout  # noqa: E402
from carotidkit.vd.clips import ClipDataset, windows  # noqa: E402
from carotidkit.vd.models import R2Plus1D, VideoMAE, build_model  # noqa: E402
from carotidkit.vd.train import global_batches, make_folds, train_step  # noqa: E402


def test_windows_and_clip_dataset():
    assert windows(36, 8, 4).tolist() == [0]
    assert windows(70, 8, 4).tolist() == [0, 32]
    cache = np.arange(3 * 40 * 4 * 4, dtype=np.uint8).reshape(3, 40, 4, 4) % 251
    ds = ClipDataset(cache, [0, 2], labels=[0, 1], frames=4, period=2, train=False, all_clips=True)
    assert len(ds) == 2 * len(windows(40, 4, 2))
    x, y = ds.get([0, len(ds) - 1])
    assert x.shape == (2, 1, 4, 4, 4) and y.tolist() == [0, 1]
    np.testing.assert_array_equal(x[0, 0], cache[0, 0:8:2].astype(np.float32))
    tr = ClipDataset(cache, [0, 1, 2], labels=[0, 1, 0], frames=4, period=2, train=True, seed=1)
    a, _ = tr.get([1])
    b, _ = tr.get([1])
    np.testing.assert_array_equal(a, b)  # seeded per (seed, epoch, item): any process sees the same
    tr.set_epoch(1)
    c, _ = tr.get([1])
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("arch", ["r2plus1d", "vivit"])
def test_models_shapes_and_mae(arch):
    m = build_model(arch, frames=8, size=32, width=8)
    out = m(torch.randn(3, 1, 8, 32, 32))
    assert out.shape == (3,)
    if arch == "vivit":
        loss = VideoMAE(m, mask_ratio=0.9)(torch.randn(2, 1, 8, 32, 32))
        assert loss.ndim == 0 and torch.isfinite(loss)


def test_folds_are_subject_level_stratified_with_inner_validation():
    s = pd.DataFrame({"subject_id": [f"S{i}" for i in range(100)], "hypertension": [i % 2 for i in range(100)]})
    f = make_folds(s, "hypertension", 4, 0.2, seed=0)
    assert f.subject_id.is_unique
    assert f.groupby("fold").label.mean().between(0.4, 0.6).all()
    for k in range(4):
        assert set(f.loc[f.fold == k, f"inner_{k}"]) == {""}
        assert (f.loc[f.fold != k, f"inner_{k}"] == "val").mean() == pytest.approx(0.2, abs=0.03)


def test_global_batches_partition_for_any_world_size():
    b = global_batches(50, 8, seed=0, epoch=3)
    assert len(b) == 6 and all(len(x) == 8 for x in b)
    assert len(np.unique(np.concatenate(b))) == 48
    # rank r takes b[r::W]; the union over ranks is the global batch
    assert sorted(np.concatenate([b[0][r::2] for r in range(2)])) == sorted(b[0])


def _ddp_worker(rank, world, port, x, y, out_path):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    import torch.distributed as dist

    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = R2Plus1D(width=8, depth=1, stages=2, dropout=0.0)
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.5)  # SGD: the step is the averaged gradient itself
    train_step(ddp, opt, x[rank::world], y[rank::world])
    if rank == 0:
        torch.save(model.state_dict(), out_path)
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_processes_take_the_single_process_step(tmp_path):
    import socket

    import torch.multiprocessing as mp

    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 1, 8, 32, 32, generator=g), (torch.rand(8, generator=g) > 0.5).float()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, x, y, str(tmp_path / "ddp.pt")), nprocs=2, join=True)
    torch.manual_seed(0)
    model = R2Plus1D(width=8, depth=1, stages=2, dropout=0.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    train_step(model, opt, x, y)
    ddp = torch.load(tmp_path / "ddp.pt", weights_only=True)
    moved = 0
    for k, v in model.state_dict().items():
        torch.testing.assert_close(ddp[k], v, atol=2e-5, rtol=1e-4)
        moved += int(not torch.equal(v, before[k]))
    assert moved > 10  # the step really changed the weights


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    from carotidkit.synth.dataset import generate

    root = tmp_path_factory.mktemp("vdrun")
    generate(
        RunLayout(root).data.root,
        n_subjects=300,
        n_plaque_images=20,
        plaque_db_size_px=256,
        cine_size_px=32,
        cine_seconds=1.3,
        seed=5,
        n_jobs=1,
    )
    return root


@pytest.mark.slow
def test_shuffled_labels_give_chance_auroc_out_of_fold(small_run, tmp_path):
    """Leakage guard: with hypertension shuffled, out-of-fold AUROC stays within 0.5 +/- 0.1."""
    from sklearn.metrics import roc_auc_score

    from carotidkit import io
    from carotidkit.vd.train import cross_fit

    run = tmp_path / "shuffled"
    lay = RunLayout(run)
    shutil.copytree(RunLayout(small_run).data.root, lay.data.root)
    cohort = read_parquet(lay.data.cohort)
    cohort["hypertension"] = np.random.default_rng(0).permutation(cohort.hypertension.to_numpy())
    io.write_parquet(lay.data.cohort, cohort)
    out = cross_fit(run, seed=0, progress=False, folds=3, epochs=3, input_size_px=32, width=8, batch_size=16)
    vd = read_parquet(lay.vd.vd).merge(cohort[["subject_id", "hypertension"]])
    assert len(vd) == cohort.subject_id.nunique()
    assert set(out["clips"].groupby("subject_id").fold.nunique()) == {1}  # all clips of a subject in one fold
    auc = roc_auc_score(vd.hypertension, vd.vd_logit)
    assert 0.4 <= auc <= 0.6, auc


@pytest.mark.slow
def test_checkpoint_is_keyed_on_settings(small_run, tmp_path):
    """Same settings resume (no new epochs); a changed learning rate retrains."""
    from carotidkit.vd.train import cross_fit

    run = tmp_path / "keyed"
    lay = RunLayout(run)
    shutil.copytree(RunLayout(small_run).data.root, lay.data.root)
    kw = dict(folds=2, epochs=1, input_size_px=32, width=8, progress=False)
    cross_fit(run, seed=0, **kw)
    log0 = (lay.vd.fold_dir(0) / "log.csv").stat().st_mtime_ns
    cross_fit(run, seed=0, **kw)
    assert (lay.vd.fold_dir(0) / "log.csv").stat().st_mtime_ns == log0
    cross_fit(run, seed=0, learning_rate=5e-4, **kw)
    assert (lay.vd.fold_dir(0) / "log.csv").stat().st_mtime_ns != log0


@pytest.mark.slow
def test_torchrun_two_processes_write_the_in_process_outputs(small_run, tmp_path):
    """``torchrun --nproc_per_node=2 -m carotidkit.vd.train`` and an in-process run of the same
    settings write the same folds and (within float tolerance) the same VD."""
    import subprocess
    import sys
    from pathlib import Path

    from scipy import stats

    from carotidkit.vd.train import cross_fit

    a, b = tmp_path / "inproc", tmp_path / "torchrun"
    for d in (a, b):
        shutil.copytree(RunLayout(small_run).data.root, RunLayout(d).data.root)
    # dropout off: its masks are drawn per process, the one thing that legitimately differs
    kw = dict(folds=2, epochs=1, input_size_px=32, width=8, batch_size=16, dropout=0.0)
    cross_fit(a, seed=0, progress=False, **kw)
    cmd = [
        str(Path(sys.executable).parent / "torchrun"),
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "carotidkit.vd.train",
        "--run-dir",
        str(b),
        "--folds",
        "2",
        "--epochs",
        "1",
        "--input-size-px",
        "32",
        "--width",
        "8",
        "--batch-size",
        "16",
        "--dropout",
        "0",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    va, vb = (read_parquet(RunLayout(d).vd.vd).sort_values("subject_id").reset_index(drop=True) for d in (a, b))
    assert va.subject_id.tolist() == vb.subject_id.tolist()
    assert va.fold.tolist() == vb.fold.tolist() and va.n_clips.tolist() == vb.n_clips.tolist()
    assert np.abs(va.vd_logit - vb.vd_logit).max() < 0.02
    assert stats.spearmanr(va.vd_logit, vb.vd_logit)[0] > 0.999
    pd.testing.assert_frame_equal(read_parquet(RunLayout(a).vd.folds), read_parquet(RunLayout(b).vd.folds))


def test_unbuildable_knob_combinations_are_refused_when_the_settings_are_made():
    from carotidkit import profiles
    from carotidkit.io import CarotidkitError
    from carotidkit.report import check_across_notebooks

    for kw, msg in [
        (dict(width=3), "width = 3 cannot be built for r2plus1d"),
        (dict(architecture="vivit", width=7), "width = 7 cannot be built for vivit"),
        (dict(architecture="vivit", frames=7), "frames = 7 cannot be built for vivit"),
    ]:
        with pytest.raises(CarotidkitError, match=msg):
            profiles.settings("03_vd_video", "smoke", **kw)
    with pytest.raises(CarotidkitError, match="grad_cam, which needs a convolutional video model"):
        check_across_notebooks({"03_vd_video": {"architecture": "vivit"}, "04_xai": {"methods": ["grad_cam"]}})


def test_weights_that_do_not_fit_are_one_line_naming_the_keys(tmp_path):
    from carotidkit.io import CarotidkitError
    from carotidkit.vd.models import build_model
    from carotidkit.vd.train import load_weights

    torch.save(build_model("r2plus1d", 8, 32, 8, 1).state_dict(), tmp_path / "w8.pt")
    load_weights(build_model("r2plus1d", 8, 32, 8, 1), tmp_path / "w8.pt", "r2plus1d")  # fits: silent
    torch.save(build_model("r2plus1d", 8, 32, 16, 1).state_dict(), tmp_path / "w16.pt")
    with pytest.raises(CarotidkitError, match="w16.pt: does not fit this r2plus1d model: .*wrong shapes") as e:
        load_weights(build_model("r2plus1d", 8, 32, 8, 1), tmp_path / "w16.pt", "r2plus1d")
    assert "\n" not in str(e.value)
    torch.save(build_model("vivit", 8, 32, 8, 1).state_dict(), tmp_path / "vivit.pt")
    with pytest.raises(CarotidkitError, match="missing keys .*unexpected keys"):
        load_weights(build_model("r2plus1d", 8, 32, 8, 1), tmp_path / "vivit.pt", "r2plus1d")


@pytest.mark.slow
def test_a_fold_that_stopped_early_is_not_trained_further_on_resume(small_run, tmp_path):
    from carotidkit.vd.train import cross_fit

    run = tmp_path / "stopped"
    lay = RunLayout(run)
    shutil.copytree(RunLayout(small_run).data.root, lay.data.root)
    kw = dict(folds=2, epochs=3, patience=2, input_size_px=32, width=8, progress=False)
    cross_fit(run, seed=0, **kw)
    fdir = lay.vd.fold_dir(0)
    # as if fold 0 had stopped early after its first epoch
    st = torch.load(fdir / "checkpoint.pt", weights_only=True)
    st.update(epoch=0, bad=2, stopped=True)
    torch.save(st, fdir / "checkpoint.pt")
    log = pd.read_csv(fdir / "log.csv").iloc[:1]
    log.to_csv(fdir / "log.csv", index=False)
    best = (fdir / "best.pt").read_bytes()
    cross_fit(run, seed=0, **kw)
    assert len(pd.read_csv(fdir / "log.csv")) == 1  # no further epoch
    assert (fdir / "best.pt").read_bytes() == best


@pytest.mark.slow
def test_the_command_line_trains_exactly_notebook_03s_settings(small_run, tmp_path):
    """``python -m carotidkit.vd.train --profile smoke`` after notebook 03's call: same cache,
    same checkpoints (nothing retrained), same model.json."""
    from carotidkit import profiles, vd
    from carotidkit.vd import clips as C
    from carotidkit.vd.train import main

    run = tmp_path / "cli"
    lay = RunLayout(run)
    shutil.copytree(RunLayout(small_run).data.root, lay.data.root)
    res = vd.run(**profiles.settings("03_vd_video", "smoke", run_dir=run), progress=False)  # what notebook 03 does
    # VD reported like the paper: within-fold scores, both sides, the baseline on the same folds
    v = read_parquet(lay.vd.vd)
    assert np.allclose(v.groupby("fold").vd_z.mean(), 0, atol=1e-6)
    assert np.allclose(v.groupby("fold").vd_z.std(ddof=0), 1, atol=1e-6)
    assert (v.vd_z_max.notna()).all() and read_parquet(lay.vd.clip_predictions).side_z.notna().all()
    bl = read_parquet(lay.vd.baseline)
    assert set(bl.subject_id) == set(v.subject_id)
    assert (bl.set_index("subject_id").fold == v.set_index("subject_id").fold.reindex(bl.subject_id)).all()
    pairs = read_parquet(lay.vd.left_right)
    assert len(pairs) == res.agreement.n.iloc[0] > 10  # 60 % of simulated subjects are filmed on both sides
    summary = json.loads(lay.vd.summary.read_text())
    assert {"accuracy", "accuracy_ci", "auc_baseline", "delta_auc", "delta_auc_ci", "left_right"} <= set(summary)
    assert summary["delta_auc"] == pytest.approx(summary["auc"] - summary["auc_baseline"])
    assert "accuracy" in res.headline and "baseline" in res.headline
    assert list(res.comparison().measure[:3]) == [
        "hypertension AUROC",
        "accuracy (p > 0.5)",
        "balanced accuracy (p > 0.5)",
    ]
    model = (lay.vd.fold_dir(0) / "model.json").read_text()
    logs = [(lay.vd.fold_dir(f) / "log.csv").stat().st_mtime_ns for f in range(2)]
    main(["--profile", "smoke", "--run-dir", str(run)])
    assert C.LAST_BUILD["decoded"] == 0  # the cache was reused
    assert [(lay.vd.fold_dir(f) / "log.csv").stat().st_mtime_ns for f in range(2)] == logs  # nothing retrained
    assert (lay.vd.fold_dir(0) / "model.json").read_text() == model


@pytest.mark.slow
def test_gpu_check_runs_on_cpu_with_gloo():
    """make gpu-check's script end to end on a tiny simulated cohort: 1 and 2 gloo processes."""
    from carotidkit.vd.gpucheck import check

    r = check(subjects=40, size=32, nproc=2, seconds=1.3, timeout=900)
    assert r["backend"] == "gloo" and [x["processes"] for x in r["runs"]] == [1, 2]
    assert all(x["clips_per_s"] > 0 for x in r["runs"]) and 0 < r["scaling_efficiency"] < 2
    assert set(r["projected_hours_31019_videos_5_folds"]) == {"1 process(es)", "2 process(es)"}


@pytest.mark.parametrize("arch", ["r2plus1d", "vivit"])
def test_bf16_autocast_trains_and_predicts_like_fp32(arch):
    """The GPU path's bf16 autocast, run on CPU: a step lowers nothing to NaN, keeps the weights
    in fp32 and moves them; bf16 logits agree with fp32 ones to bf16 precision."""
    from carotidkit.vd.train import autocast, train_step

    torch.manual_seed(0)
    m = build_model(arch, frames=8, size=32, width=8)
    x = torch.randn(4, 1, 8, 32, 32)
    y = torch.tensor([0.0, 1.0, 0.0, 1.0])
    m.eval()
    with torch.no_grad():
        ref = m(x)
        with autocast("cpu"):
            low = m(x)
    assert low.dtype == torch.bfloat16
    assert torch.allclose(low.float(), ref, atol=0.05 + 0.05 * ref.abs().max().item())
    before = {k: v.clone() for k, v in m.state_dict().items()}
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    loss = train_step(m, opt, x, y, autocast("cpu"))
    assert np.isfinite(loss)
    assert all(p.dtype == torch.float32 for p in m.parameters())
    assert sum(not torch.equal(v, before[k]) for k, v in m.state_dict().items()) > 5
