"""Cross-fitted training of the video model on the weak hypertension label; the torchrun entry point.

``python -m carotidkit.vd.train --run-dir runs/smoke --epochs 1`` trains in one process;
``torchrun --nproc_per_node=N -m carotidkit.vd.train ...`` runs the same code under
DistributedDataParallel (gloo on CPU, nccl on GPU). Every global batch is the same set of clips
whatever the number of processes (rank ``r`` takes items ``r::world`` of it) and augmentation is
seeded per (seed, epoch, item), so N processes take the same optimisation steps as one.
Rank 0 writes; evaluation is sharded and gathered.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .. import io
from ..stages import report_line


def check_settings(cfg) -> None:
    """Refuse, in one line, knob combinations no model can be built for (see
    :meth:`carotidkit.settings.VdSettings.check`; the settings object runs it when made)."""
    from ..settings import VdSettings

    VdSettings(**{k: cfg[k] for k in cfg if k in VdSettings._names()})


# ----------------------------------------------------------------------------- distributed helpers


class Dist:
    """Rank/world of this process; a no-op in a single process."""

    def __init__(self):
        import torch
        import torch.distributed as dist

        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.enabled = self.world > 1
        if torch.cuda.is_available():
            # each rank on its own GPU before any collective (object collectives use the current device)
            local = int(os.environ.get("LOCAL_RANK", 0))
            torch.cuda.set_device(local)
            self.device = torch.device("cuda", local)
        else:
            self.device = torch.device("cpu")
        if self.enabled and not dist.is_initialized():
            cuda = self.device.type == "cuda"
            dist.init_process_group("nccl" if cuda else "gloo", device_id=self.device if cuda else None)
        self.dist = dist

    @property
    def main(self) -> bool:
        return self.rank == 0

    def gather(self, obj):
        if not self.enabled:
            return [obj]
        out = [None] * self.world
        self.dist.all_gather_object(out, obj)
        return out

    def barrier(self):
        if self.enabled:
            self.dist.barrier()


def load_weights(model, path, architecture: str) -> None:
    """Load a local state_dict strictly: a checkpoint that does not fit the model is one line
    naming the missing and unexpected keys (never a silent start from scratch)."""
    import torch

    from ..io import CarotidkitError

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise CarotidkitError(f"{path}: not a readable torch state_dict ({type(exc).__name__})") from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]  # a carotidkit checkpoint.pt
    want = model.state_dict()
    missing = [k for k in want if k not in state]
    unexpected = [k for k in state if k not in want]
    shape = [k for k in want if k in state and tuple(state[k].shape) != tuple(want[k].shape)]
    if missing or unexpected or shape:
        show = lambda ks: ", ".join(ks[:3]) + (f" (+{len(ks) - 3} more)" if len(ks) > 3 else "") if ks else "none"
        raise CarotidkitError(
            f"{path}: does not fit this {architecture} model: missing keys {show(missing)}; "
            f"unexpected keys {show(unexpected)}; wrong shapes {show(shape)}"
        )
    model.load_state_dict(state, strict=True)


def global_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """The epoch's global batches (seeded permutation, incomplete last batch dropped)."""
    perm = np.random.default_rng([seed, 7, epoch]).permutation(n)
    nb = max(1, n // batch_size) if n >= batch_size else 1
    return [perm[k * batch_size : (k + 1) * batch_size] for k in range(nb)]


def autocast(device_type: str, enabled: bool = True):
    """bf16 autocast of the forward pass (on CUDA in training; bf16 needs no loss scaling).
    Also works on CPU, which is how the tests check it without a GPU."""
    import torch

    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=enabled)


def train_step(model, opt, xb, yb, scaler_ctx=None):
    """One optimisation step on a (local) batch; mean BCE-with-logits loss."""
    import torch

    model.train()
    opt.zero_grad(set_to_none=True)
    with scaler_ctx or torch.autocast("cpu", enabled=False):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(xb), yb)
    loss.backward()
    opt.step()
    return float(loss.detach())


def predict(model, ds, batch_size: int, dist: Dist, device) -> np.ndarray:
    """Logit per item of ``ds`` (sharded across processes, gathered); bounded memory."""
    import torch

    model.eval()
    idx = np.arange(len(ds))
    mine = idx[dist.rank :: dist.world]
    out = []
    with torch.no_grad():
        for s in range(0, len(mine), batch_size):
            xb, _ = ds.get(mine[s : s + batch_size])
            out.append(model(torch.from_numpy(xb).to(device)).float().cpu().numpy())
    mine_pred = np.concatenate(out) if out else np.zeros(0, np.float32)
    parts = dist.gather((mine, mine_pred))
    pred = np.zeros(len(ds), np.float32)
    for ix, p in parts:
        pred[ix] = p
    return pred


# ----------------------------------------------------------------------------- folds


def make_folds(subjects: pd.DataFrame, label: str, k: int, val_fraction: float, seed: int) -> pd.DataFrame:
    """Subject-level K folds stratified by label; inside each fold's training subjects an inner
    validation split (stratified) for early stopping. ``subject_id, label, fold`` + ``inner_<f>``."""
    rng = np.random.default_rng([seed, 3])
    s = subjects[["subject_id", label]].drop_duplicates("subject_id").rename(columns={label: "label"})
    s = s.reset_index(drop=True)
    fold = np.zeros(len(s), int)
    for lab in (0, 1):
        ix = np.where(s.label.to_numpy() == lab)[0]
        ix = rng.permutation(ix)
        fold[ix] = np.arange(len(ix)) % k
    s["fold"] = fold
    for f in range(k):
        tr = np.where(s.fold.to_numpy() != f)[0]
        inner = np.full(len(s), "", object)
        inner[tr] = "train"
        for lab in (0, 1):
            ix = rng.permutation(tr[s.label.to_numpy()[tr] == lab])
            inner[ix[: max(1, int(round(val_fraction * len(ix))))]] = "val"
        s[f"inner_{f}"] = inner
    return s


# ----------------------------------------------------------------------------- one fold


def _scheduler(opt, cfg: dict, steps_per_epoch: int):
    """OneCycle (warm up over the first 20 % of steps, then cosine down) or none."""
    import torch

    if cfg["schedule"] == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=cfg["learning_rate"], total_steps=max(1, cfg["epochs"] * steps_per_epoch), pct_start=0.2
        )
    if cfg["schedule"] == "constant":
        return None
    raise ValueError(f"schedule={cfg['schedule']!r}: choose 'onecycle' or 'constant'")


def _resume(ckpt, log_path, key: str, model, opt, sched, cfg: dict):
    """``(start epoch, best, bad epochs, log)`` from a checkpoint with the same key (model,
    optimizer, scheduler and torch RNG restored); a fold that stopped early trains no further."""
    import torch

    if not ckpt.exists():
        return 0, (-np.inf, None), 0, []
    st = torch.load(ckpt, map_location="cpu", weights_only=True)
    if st.get("key") != key:
        return 0, (-np.inf, None), 0, []
    model.load_state_dict(st["model"])
    opt.load_state_dict(st["optimizer"])
    if sched is not None and "scheduler" in st:
        sched.load_state_dict(st["scheduler"])
    start, best, bad = int(st["epoch"]) + 1, (float(st["best"]), None), int(st["bad"])
    if "torch_rng" in st:
        torch.set_rng_state(st["torch_rng"])
    if st.get("stopped") or bad >= cfg["patience"]:
        start = cfg["epochs"]  # it stopped early: keep its best.pt
    log = pd.read_csv(log_path).to_dict("records") if log_path.exists() else []
    return start, best, bad, log


def _save_checkpoint(path, key, model, opt, sched, epoch, best, bad, stopped) -> None:
    import torch

    with io.atomic_path(path) as tmp:
        torch.save(
            {
                "key": key,
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict() if sched is not None else {},
                "epoch": epoch,
                "best": best,
                "bad": bad,
                "stopped": stopped,
                "torch_rng": torch.get_rng_state(),
            },
            tmp,
        )


def _pretrain_mae(model, ds_tr, cfg: dict, seed: int, dist, device) -> None:
    """VideoMAE pretraining of the transformer on this fold's training loops (no labels)."""
    import torch

    from .models import VideoMAE

    B, W = cfg["batch_size"], dist.world
    mae = VideoMAE(model).to(device)
    popt = torch.optim.AdamW(mae.parameters(), lr=cfg["learning_rate"])
    for ep in range(cfg["pretrain_epochs"]):
        ds_tr.set_epoch(10_000 + ep)
        for gb in global_batches(len(ds_tr), B, seed, 10_000 + ep):
            xb, _ = ds_tr.get(gb[dist.rank :: W])
            popt.zero_grad()
            loss = mae(torch.from_numpy(xb).to(device))
            loss.backward()
            if dist.enabled:
                for p in mae.parameters():
                    if p.grad is not None:
                        dist.dist.all_reduce(p.grad)
                        p.grad /= W
            popt.step()


def _train_epoch(ddp, opt, sched, ds_tr, batches, dist, device, desc: str, show: bool) -> list:
    """One epoch over the global ``batches`` (this rank's share of each); the step losses."""
    import torch
    from tqdm.auto import tqdm

    cuda = device.type == "cuda"
    losses = []
    bar = tqdm(batches, desc=desc, leave=False, disable=not show, mininterval=5)
    for gb in bar:
        xb, yb = ds_tr.get(gb[dist.rank :: dist.world])
        ctx = autocast("cuda") if cuda else None
        losses.append(train_step(ddp, opt, torch.from_numpy(xb).to(device), torch.from_numpy(yb).to(device), ctx))
        if sched is not None:
            sched.step()
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    return losses


def _peak_gpu_mb(device) -> float:
    import torch

    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if device.type == "cuda" else float("nan")


def _validate(model, ds_va, dist, device) -> tuple[float, float]:
    """Inner-validation BCE loss and AUROC (NaN with one class)."""
    from sklearn.metrics import roc_auc_score

    pv = predict(model, ds_va, 64, dist, device)
    yv = ds_va.labels[ds_va.item_video]
    vloss = float(np.mean(np.logaddexp(0, pv) - yv * pv))
    vauc = float(roc_auc_score(yv, pv)) if len(np.unique(yv)) == 2 else float("nan")
    return vloss, vauc


def _fold_key(cfg: dict, seed: int, f: int, data_key: str, folds: pd.DataFrame) -> str:
    """A checkpoint's key: its settings, seed, fold, input data and subjects (changed inputs retrain)."""
    return io.stable_hash(
        {
            "cfg": cfg.training(),
            "seed": seed,
            "fold": f,
            "data": data_key,
            "world_batch": cfg["batch_size"],
            "subjects": folds[["subject_id", "fold", f"inner_{f}"]].to_numpy().tolist(),
        }
    )


def _fold_datasets(cache, clips: pd.DataFrame, folds: pd.DataFrame, f: int, cfg: dict, seed: int):
    """Fold ``f``'s training, inner-validation and held-out clip datasets, the held-out mask and
    the intensity normalisation (from the training loops only)."""
    from .clips import ClipDataset, intensity_stats

    lab = folds.set_index("subject_id")
    role = clips.subject_id.map(lab[f"inner_{f}"]).fillna("")
    test = clips.subject_id.map(lab.fold).to_numpy() == f
    tr, va = (role == "train").to_numpy(), (role == "val").to_numpy()
    y = clips.subject_id.map(lab.label).to_numpy(np.float32)
    mean, std = intensity_stats(cache, clips.row[tr].to_numpy(), seed=seed)
    mk = dict(frames=cfg["frames"], period=cfg["period"], mean=mean, std=std, seed=seed)
    ds_tr = ClipDataset(cache, clips.row[tr], y[tr], train=True, clips_per_video=cfg["clips_per_video"], **mk)
    ds_va = ClipDataset(cache, clips.row[va], y[va], train=False, all_clips=False, **mk)
    ds_te = ClipDataset(cache, clips.row[test], y[test], train=False, all_clips=True, **mk)
    return (ds_tr, ds_va, ds_te), test, (mean, std)


def train_fold(
    cache,
    clips: pd.DataFrame,
    folds: pd.DataFrame,
    f: int,
    cfg: dict,
    seed: int,
    out_dir,
    dist: Dist | None = None,
    progress: bool = True,
    data_key: str = "",
) -> dict:
    """Train fold ``f`` (resumable, keyed on settings + data); return out-of-fold clip logits."""
    import torch

    dist = dist or Dist()
    torch.manual_seed(seed * 1000 + f)
    fdir = Path(out_dir)
    fdir.mkdir(parents=True, exist_ok=True)
    datasets, test, (mean, std) = _fold_datasets(cache, clips, folds, f, cfg, seed)
    key = _fold_key(cfg, seed, f, data_key, folds)
    model, ddp, opt, sched = _build_training(cfg, cache.shape[2], len(datasets[0]), seed, dist)
    log = _fit_epochs(model, ddp, opt, sched, datasets, cfg, seed, f, key, fdir, dist, progress)
    if dist.main:
        model_card = {k: cfg[k] for k in ("architecture", "frames", "period")}
        model_card.update(size=int(cache.shape[2]), width=cfg["width"], depth=cfg["depth"], mean=mean, std=std, key=key)
        io.write_json(fdir / "model.json", model_card)
    if (fdir / "best.pt").exists():
        model.load_state_dict(torch.load(fdir / "best.pt", map_location="cpu", weights_only=True))
    return {
        "clips": _out_of_fold(model, datasets[2], clips[test], f, dist, dist.device),
        "log": pd.DataFrame(log),
        "mean": mean,
        "std": std,
    }


def _build_training(cfg: dict, size: int, n_train: int, seed: int, dist: Dist):
    """The fold's model (optionally from ``weights_path``), its DDP wrapper, optimiser and schedule."""
    import torch

    from .models import build_model

    model = build_model(cfg["architecture"], cfg["frames"], size, cfg["width"], cfg["depth"], dropout=cfg["dropout"])
    model = model.to(dist.device)
    if cfg.get("weights_path"):
        load_weights(model, cfg["weights_path"], cfg["architecture"])
    ddp = torch.nn.parallel.DistributedDataParallel(model) if dist.enabled else model
    opt = torch.optim.AdamW(ddp.parameters(), lr=cfg["learning_rate"], weight_decay=cfg["weight_decay"])
    B, W = cfg["batch_size"], dist.world
    if B % W:
        raise ValueError(f"batch_size={B} must be a multiple of the number of processes ({W})")
    sched = _scheduler(opt, cfg, len(global_batches(n_train, B, seed, 0)))
    return model, ddp, opt, sched


def _fit_epochs(model, ddp, opt, sched, datasets, cfg, seed, f, key, fdir: Path, dist: Dist, progress) -> list[dict]:
    """Run (or resume) fold ``f``'s epochs with early stopping; keep ``best.pt``, the checkpoint and
    ``log.csv`` up to date after every epoch; return the epoch log."""
    import torch

    ds_tr, ds_va, _ = datasets
    device, B = dist.device, cfg["batch_size"]
    ckpt, best_path, log_path = fdir / "checkpoint.pt", fdir / "best.pt", fdir / "log.csv"
    start, best, bad, log = _resume(ckpt, log_path, key, model, opt, sched, cfg)
    if cfg["architecture"] == "vivit" and cfg.get("pretrain_epochs", 0) and start == 0:
        _pretrain_mae(model, ds_tr, cfg, seed, dist, device)
    for epoch in range(start, cfg["epochs"]):
        t0 = time.perf_counter()
        ds_tr.set_epoch(epoch)
        batches = global_batches(len(ds_tr), B, seed, epoch)
        desc = f"fold {f} epoch {epoch + 1}/{cfg['epochs']}"
        losses = _train_epoch(ddp, opt, sched, ds_tr, batches, dist, device, desc, progress and dist.main)
        vloss, vauc = _validate(model, ds_va, dist, device)
        score = vauc if np.isfinite(vauc) else -vloss
        row = {
            "fold": f,
            "epoch": epoch + 1,
            "train_loss": float(np.mean(losses)),
            "val_loss": vloss,
            "val_auc": vauc,
            "seconds": round(time.perf_counter() - t0, 2),
            "train_clips": len(batches) * B,
            "peak_gpu_mb": _peak_gpu_mb(device),
        }
        log.append(row)
        improved = score > best[0]
        best, bad = ((score, None), 0) if improved else (best, bad + 1)
        if dist.main:
            if progress:
                report_line(
                    f"fold {f} epoch {epoch + 1}: train loss {row['train_loss']:.3f}, val loss {vloss:.3f}, "
                    f"val AUC {vauc:.3f} ({row['seconds']:.0f} s)"
                )
            if improved:
                with io.atomic_path(best_path) as tmp:
                    torch.save(model.state_dict(), tmp)
            _save_checkpoint(ckpt, key, model, opt, sched, epoch, best[0], bad, bad >= cfg["patience"])
            io.write_text(log_path, pd.DataFrame(log).to_csv(index=False))
        dist.barrier()
        if bad >= cfg["patience"]:
            break
    return log


def _out_of_fold(model, ds_te, te_clips: pd.DataFrame, f: int, dist, device) -> pd.DataFrame:
    """Each held-out loop's logit: the mean over all its windows (EchoNet-Dynamic's practice)."""
    pt = predict(model, ds_te, 64, dist, device)
    per_clip = pd.DataFrame({"v": ds_te.item_video, "logit": pt}).groupby("v").logit.mean()
    te_clips = te_clips.reset_index(drop=True)
    return te_clips.assign(
        fold=f,
        logit=per_clip.reindex(range(len(te_clips))).to_numpy(),
        n_windows=pd.Series(ds_te.item_video).value_counts().sort_index().to_numpy(),
    )


# ----------------------------------------------------------------------------- entry point


def _clip_index(run_dir, cfg: dict):
    """(cohort, clip index with absolute paths, build_cache keywords) of a run folder."""
    from ..io import CarotidkitError
    from ..layout import RunLayout

    lay = RunLayout(run_dir)
    paths = lay.data.resolved()
    cohort = io.read_parquet(paths["cohort"])
    if cfg["label"] not in cohort:
        raise CarotidkitError(f"{paths['cohort']}: no {cfg['label']!r} column to train on")
    index = io.read_parquet(paths["cine_index"])
    base = paths["cine_index"].parent
    index["path"] = [p if os.path.isabs(p) else str(base / p) for p in index.path]
    index = index[index.subject_id.isin(cohort.subject_id)].reset_index(drop=True)
    # real videos carry scanner margins and text: crop them to the scan area (01's detector)
    crop = io.read_json(lay.data.manifest).get("sources", {}).get("video", "synthetic") != "synthetic"
    kw = dict(size=cfg["input_size_px"], seconds=cfg["clip_seconds"], crop=crop, cache_dir=lay.vd.cache)
    return cohort, index, kw


def prepare_cache(run_dir, cfg: dict, progress: bool = True, wait: bool = False, poll_s: float = 5.0):
    """The clip cache as its own step, before any process group exists: rank 0 (or a single
    process) decodes; with ``wait`` the caller polls the file system until the finished cache
    appears (no collective, so no NCCL timeout however long a cohort takes)."""
    from .clips import build_cache, cache_files

    _, index, kw = _clip_index(run_dir, cfg)
    if not wait:
        return build_cache(index, n_jobs=cfg["n_jobs"], progress=progress, **kw)
    table = cache_files(index, **kw)[1]
    t0 = time.monotonic()
    while not table.exists():
        time.sleep(poll_s)
        if int(time.monotonic() - t0) % 600 < poll_s:
            report_line(f"rank {os.environ.get('RANK', '?')}: waiting for rank 0's clip cache ({table.name})")
    return None


def cross_fit(cfg, progress: bool = True, **knobs) -> dict:
    """All folds: returns ``{"clips", "folds", "log", "errors", "settings", "cohort", "vd", "cache"}``
    (rank 0 writes).

    ``cfg``: 03's settings (:class:`~carotidkit.settings.VdSettings`), or a run folder plus knobs
    as keywords (the declared workshop values for the rest). Under torchrun every rank opens the
    finished clip cache (:func:`main` builds it before the process group starts); a missing cache
    there is an error, never a build behind a barrier.
    """
    import torch

    from ..layout import RunLayout
    from ..settings import VdSettings
    from ..stages import phase
    from .clips import build_cache

    if isinstance(cfg, VdSettings):
        cfg = cfg.replace(**knobs) if knobs else cfg
    else:
        cfg = VdSettings(run_dir=str(cfg), **knobs)
    run_dir, seed = cfg.run_dir, cfg.seed
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // int(os.environ.get("WORLD_SIZE", "1"))))
    lay = RunLayout(run_dir)
    cohort, index, kw = _clip_index(run_dir, cfg)
    dist = Dist()
    if dist.enabled:
        cache, clips, errors = build_cache(index, progress=False, must_exist=True, **kw)
    else:
        with phase(progress, "clip cache"):
            cache, clips, errors = build_cache(index, n_jobs=cfg["n_jobs"], progress=progress, **kw)
    labelled = cohort[["subject_id", cfg["label"]]].dropna()
    folds = make_folds(
        labelled[labelled.subject_id.isin(clips.subject_id)], cfg["label"], cfg["folds"], cfg["val_fraction"], seed
    )
    clips = clips[clips.subject_id.isin(folds.subject_id)].reset_index(drop=True)
    data_key = io.stable_hash(sorted(p.name for p in lay.vd.cache.glob("*.parquet")))
    with phase(progress, "training the folds (incl. out-of-fold prediction)"):
        outs = [
            train_fold(cache, clips, folds, f, cfg, seed, lay.vd.fold_dir(f), dist, progress, data_key)
            for f in range(cfg["folds"])
        ]
    res = {
        "clips": pd.concat([o["clips"] for o in outs], ignore_index=True),
        "log": pd.concat([o["log"] for o in outs], ignore_index=True),
        "folds": folds,
        "errors": errors,
        "settings": cfg,
        "cache": cache,
    }
    if dist.main:
        res["vd"] = write_outputs(lay, res, cohort)
    res["cohort"] = cohort
    dist.barrier()
    return res


def write_outputs(lay, res: dict, cohort: pd.DataFrame) -> pd.DataFrame:
    """``vd.parquet``, ``clip_predictions.parquet``, ``folds.parquet``, ``log.csv`` under ``layout.vd``."""
    from scipy import stats

    from .agreement import within_fold_z

    c = res["clips"]
    vd = (
        c.groupby("subject_id")
        .agg(vd_logit=("logit", "mean"), fold=("fold", "first"), n_clips=("clip_id", "size"))
        .reset_index()
    )
    # each fold's model has its own logit scale: standardise within fold, then pool (agreement.py)
    vd["vd_z"] = within_fold_z(vd.vd_logit, vd.fold)
    worst = c.groupby("subject_id").logit.max().reindex(vd.subject_id).to_numpy()
    vd["vd_z_max"] = within_fold_z(pd.Series(worst, index=vd.index), vd.fold)
    vd["vd_percentile"] = 100 * (stats.rankdata(vd.vd_z) - 0.5) / len(vd)
    vd = vd[["subject_id", "vd_logit", "vd_z", "vd_z_max", "vd_percentile", "fold", "n_clips"]]
    c = c.assign(side_z=within_fold_z(c.logit, c.fold))
    lay.vd.ensure()
    io.write_parquet(lay.vd.vd, vd)
    io.write_parquet(
        lay.vd.clip_predictions,
        c[["subject_id", "clip_id", "side", "fold", "logit", "side_z", "n_windows"]]
        if "side" in c
        else c[["subject_id", "clip_id", "fold", "logit", "side_z", "n_windows"]],
    )
    io.write_parquet(lay.vd.folds, res["folds"])
    io.write_text(lay.vd.log, res["log"].to_csv(index=False))
    return vd


def settings_for(profile: str, run_dir, seed: int = 0, **cli):
    """03's settings exactly as notebook 03 resolves them for ``profile``, with ``cli`` overrides."""
    from ..settings import VdSettings

    return VdSettings.for_profile(profile, run_dir=run_dir, seed=seed, **cli)


def main(argv=None):
    from ..settings import PROFILE_NAMES, VdSettings, add_arguments

    p = argparse.ArgumentParser(
        prog="python -m carotidkit.vd.train",
        description="Cross-fitted video model on the hypertension label -> <run>/vd "
        "(one process, or under torchrun --nproc_per_node=N). Settings are notebook 03's for --profile.",
    )
    p.add_argument("--run-dir", required=True, help="run folder with 00's data (e.g. runs/smoke)")
    p.add_argument("--profile", default="workshop", choices=list(PROFILE_NAMES), help="default: workshop")
    p.add_argument("--seed", type=int, default=0)
    add_arguments(p, VdSettings)
    a = p.parse_args(argv)
    cfg = settings_for(a.profile, a.run_dir, a.seed, **{k: getattr(a, k) for k in VdSettings.knobs()})
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    # the cache first, as its own step: only then does the process group start
    prepare_cache(a.run_dir, cfg, progress=rank == 0, wait=world > 1 and rank != 0)
    cross_fit(cfg, progress=rank == 0)
    d = Dist()
    if d.enabled:
        d.dist.destroy_process_group()


if __name__ == "__main__":
    main()
