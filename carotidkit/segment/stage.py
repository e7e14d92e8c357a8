"""Notebook 02's stage: train each backbone, predict, vote, evaluate.

``run(run_dir=..., backbones=..., epochs=...)`` writes ``layout.unet`` and returns a
:class:`UnetResult` (``res.train``, ``res.metrics``, ``res.predictions``, ``res.logs``, and the test
arrays via ``res.test_arrays()``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import io
from ..layout import RunLayout, Unet
from ..lock import stage as stage_lock
from . import metrics

#: the name a second annotator's masks carry in 02's tables
SECOND_READER = "annotator 2"


@dataclass
class UnetResult:
    train: pd.DataFrame  # one row per backbone: best epoch, val Dice, seconds, images/s
    metrics: pd.DataFrame  # model, subset, metric, estimate, ci_low, ci_high
    predictions: pd.DataFrame  # per test image and model: Dice, areas, false alarm
    logs: pd.DataFrame  # backbone, epoch, loss, val_loss, val_dice, ...
    summary: dict = field(default_factory=dict)
    #: each model's Dice vs annotator 1 next to a second reader's, paired difference + CI
    #: (empty without second-reader masks)
    versus_reader: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: per validation image and model, like ``predictions`` (validation picked each best epoch)
    validation_predictions: pd.DataFrame = field(default_factory=pd.DataFrame)
    unet_dir: str = ""
    vote: str = "majority"

    _arrays: dict | None = field(default=None, repr=False)

    def test_arrays(self) -> dict:
        """Test images, masks, ids and each model's probabilities (``[M, N, H, W]`` in 0..1);
        read once, then kept."""
        if self._arrays is None:
            z = np.load(Path(self.unet_dir) / Unet.NAMES["test_probs"])
            self._arrays = {
                "probs": z["probs"] / 255.0,
                "image_ids": z["image_ids"],
                "masks": z["masks"],
                "images": z["images"],
            }
        return self._arrays

    def ensemble_predictions(self) -> pd.DataFrame:
        """Per-image rows of the voting ensemble, in test order."""
        return self.predictions[self.predictions.model == f"ensemble ({self.vote})"].reset_index(drop=True)

    def best_median_worst(self) -> list[int]:
        """Positions (test order) of the best, median and worst ensemble Dice among plaque images."""
        pe = self.ensemble_predictions()
        pl = pe[pe.has_plaque].sort_values("dice")
        return [pl.index[-1], pl.index[len(pl) // 2], pl.index[0]] if len(pl) else []


def _score(probs, Y, image_ids, backbones, qc, cdir, leak=None):
    """Per-image rows (``metrics.per_image``) of each model, both votes and, where its masks exist,
    the second reader, all against the shipped masks ``Y``; also which images have a reader."""
    from ..data.plaque_db import read_mask

    area = qc.loc[image_ids, "model_px_area_mm2"].to_numpy() if "model_px_area_mm2" in qc else None
    preds = {bb: probs[k] > 0.5 for k, bb in enumerate(backbones)}
    preds["ensemble (majority)"] = metrics.vote(probs, "majority")
    preds["ensemble (mean)"] = metrics.vote(probs, "mean")
    # a second reader's masks, scored against the first exactly like a model: the yardstick
    reader = [cdir.second_reader_masks / f"{i}.png" for i in image_ids]
    has_reader = np.array([p.is_file() for p in reader], bool)
    if has_reader.any():
        R = np.zeros(Y.shape[:3], bool)
        R[has_reader] = np.stack([read_mask(p) for p, ok in zip(reader, has_reader) if ok])
        preds[SECOND_READER] = R
    rows = []
    for name, P in preds.items():
        keep = has_reader if name == SECOND_READER else np.ones(len(P), bool)
        pi = metrics.per_image(
            Y[keep, ..., 0], P[keep], None if area is None else area[keep], list(np.array(image_ids)[keep])
        ).assign(model=name)
        pi["test_leak"] = leak[keep] if leak is not None else False
        rows.append(pi)
    return pd.concat(rows, ignore_index=True), has_reader


def training_logs(unet_dir, backbones) -> pd.DataFrame:
    """Every backbone's ``log.csv`` in one table (``backbone, epoch`` 1-based, losses, val Dice)."""
    logs = []
    for b in backbones:
        log = pd.read_csv(Path(unet_dir) / b / "log.csv")
        logs.append(log.assign(backbone=b, epoch=log.epoch + 1))
    return pd.concat(logs, ignore_index=True)


@stage_lock
def run(
    run_dir=None,
    profile: str = "workshop",
    seed: int = 0,
    backbones=("mobilenetv2", "efficientnetb0", "efficientnetv2b0"),
    epochs: int = 8,
    batch_size: int = 16,
    learning_rate: float = 1e-3,
    patience: int = 3,
    vote: str = "majority",
    n_boot: int = 1000,
    weights_dir=None,
    vflip: float = 0.5,
    n_jobs: int = 0,
    progress=print,
) -> UnetResult:
    """Train the U-Nets on 01's splits, vote them, and score them on the test split.

    ``n_jobs``: U-Nets trained at the same time, each in its own process with a share of the
    cores (0 = all members at once; 1 = one after another here); see :mod:`.members`.

    Example:
        res = run(run_dir="runs/smoke", epochs=1)
        res.metrics
    """
    from .ensemble import PlaqueSegmenter
    from .members import train_members
    from .train import load_arrays

    lay = RunLayout.for_profile(profile, run_dir)
    cdir, out = lay.clean, lay.unet
    if not cdir.splits.exists():
        raise io.CarotidkitError(f"{cdir.splits}: missing; run notebook 01_cleaning first")
    out.ensure()
    splits = io.read_parquet(cdir.splits)
    qc = io.read_parquet(cdir.qc).set_index("image_id")
    cmeta = io.read_json(cdir.summary)
    ids = {k: splits[splits.split == k].image_id.tolist() for k in ("train", "val", "test")}
    (Xtr, Ytr), (Xva, Yva), (Xte, Yte) = (load_arrays(cdir.root, ids[k]) for k in ("train", "val", "test"))
    if progress:
        progress(f"train {len(Xtr)}, val {len(Xva)}, test {len(Xte)} images at {Xtr.shape[1]} px")
    summaries = train_members(
        backbones,
        Xtr,
        Ytr,
        Xva,
        Yva,
        out.root,
        n_jobs=n_jobs,
        progress=progress,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        patience=patience,
        seed=seed,
        vflip=vflip,
        weights_paths={bb: str(Path(weights_dir) / f"{bb}.weights.h5") for bb in backbones} if weights_dir else None,
    )
    if progress:
        for s in summaries:
            progress(
                f"{s['backbone']}: best val Dice {s['best_val_dice']:.3f} at epoch {s['best_epoch']} ({s['seconds']} s)"
            )
    meta = {
        "backbones": list(backbones),
        "vote": vote,
        "threshold": 0.5,
        "min_component_px": 0,
        "preprocessing": {
            "model_size_px": cmeta["model_size_px"],
            "square": cmeta["square"],
            "undo_stretch": cmeta["undo_stretch"],
            "inpaint_radius": cmeta.get("inpaint_radius", 3),
        },
    }
    io.write_json(out.ensemble, meta)
    seg = PlaqueSegmenter.load(out.root)
    t0 = time.perf_counter()
    probs = seg.predict_probs(Xte)
    infer_s = time.perf_counter() - t0
    test = splits.set_index("image_id").loc[ids["test"]]
    per_img, has_reader = _score(probs, Yte, ids["test"], backbones, qc, cdir, leak=test.test_leak.to_numpy())
    tables = [
        metrics.summarize(df, n_boot, seed).assign(model=name, subset=subset)
        for name, pi in per_img.groupby("model", sort=False)
        for subset, df in (("all test", pi), ("test without duplicates", pi[~pi.test_leak]))
    ]
    # the validation images (model selection used them, which flatters the single models): a
    # second look at "is the ensemble better than its members" with three times the images
    val_img, _ = _score(seg.predict_probs(Xva), Yva, ids["val"], backbones, qc, cdir)
    tables += [
        metrics.summarize(pi, n_boot, seed).assign(model=name, subset="validation")
        for name, pi in val_img.groupby("model", sort=False)
    ]
    table = pd.concat(tables, ignore_index=True)
    vs = metrics.paired_dice(per_img, SECOND_READER, n_boot, seed) if has_reader.any() else pd.DataFrame()
    io.write_parquet(out.test_predictions, per_img)
    io.write_parquet(out.validation_predictions, val_img)
    io.write_parquet(out.metrics, table)
    io.write_parquet(out.versus_reader, vs)
    io.write_npz(
        out.test_probs,
        probs=(probs * 255).round().astype(np.uint8),
        image_ids=np.array(ids["test"]),
        masks=Yte[..., 0].astype(bool),
        images=Xte[..., 0],
    )
    summary = {
        "train": summaries,
        "n_test": len(ids["test"]),
        "inference_images_per_s": round(len(Xte) * len(backbones) / infer_s, 1) if infer_s > 0 else None,
        "ensemble_images_per_s": round(len(Xte) / infer_s, 1) if infer_s > 0 else None,
    }
    ens = table[(table.subset == "all test") & (table.model == f"ensemble ({vote})")].set_index("metric")
    d, fa = ens.loc["dice_mean"], ens.loc["false_alarm_rate"]
    summary["headline"] = (
        f"ensemble ({vote}) Dice {d.estimate:.3f} [{d.ci_low:.3f}, {d.ci_high:.3f}], "
        f"false alarms on {fa.estimate:.0%} of plaque-free test images"
    )
    if has_reader.any():
        r = table[(table.subset == "all test") & (table.model == SECOND_READER)].set_index("metric").loc["dice_mean"]
        summary["inter_observer"] = (
            f"{SECOND_READER} vs annotator 1: Dice {r.estimate:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}] "
            f"on {int(r.n_images)} plaque images"
        )
        summary["headline"] += f"; {SECOND_READER}: Dice {r.estimate:.3f}"
    io.write_json(out.summary, summary)
    return UnetResult(
        train=pd.DataFrame(summaries),
        metrics=table,
        predictions=per_img,
        logs=training_logs(out.root, backbones),
        summary=summary,
        versus_reader=vs,
        validation_predictions=val_img,
        unet_dir=str(out.root),
        vote=vote,
    )
