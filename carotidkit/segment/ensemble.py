"""The saved three-U-Net ensemble: train it (the 02 stage), load it, segment new images.

``PlaqueSegmenter.load(run_dir / "unet")`` restores the models and the preprocessing recorded
at training time; ``segment(paths_or_arrays)`` cleans raw exports exactly as 01_cleaning did
(overlays inpainted, scan area cropped, squared, resized), votes the models pixel-wise and
returns masks, probabilities and plaque areas.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import clean, io
from ..data.plaque_db import read_image
from . import metrics


@dataclass
class Segmentation:
    table: pd.DataFrame  # one row per image: areas, disagreement, geometry
    masks: np.ndarray  # bool [N, S, S] ensemble masks at model size
    probs: np.ndarray  # float32 [n_models, N, S, S]
    images: np.ndarray = field(repr=False, default=None)  # uint8 [N, S, S] the cleaned inputs


class PlaqueSegmenter:
    """Load with :meth:`load`; call :meth:`segment` on file paths or uint8 arrays."""

    def __init__(self, models: dict, meta: dict):
        self.models, self.meta = models, meta

    @classmethod
    def load(cls, unet_dir, which: str = "best") -> "PlaqueSegmenter":
        """Restore the ensemble written by 02_unet_ensemble (``ensemble.json`` + ``<backbone>/best.keras``).

        Example:
            >>> seg = PlaqueSegmenter.load("runs/workshop/unet")     # doctest: +SKIP
            >>> res = seg.segment(["my_export.png"], pixel_spacing_mm=(0.07, 0.09))  # doctest: +SKIP
            >>> res.table[["plaque_area_px", "plaque_area_mm2"]]      # doctest: +SKIP
        """
        from . import keras_quietly
        from .unet import CUSTOM_OBJECTS

        keras = keras_quietly()

        unet_dir = Path(unet_dir)
        meta = io.read_json(unet_dir / "ensemble.json")
        models = {
            b: keras.models.load_model(unet_dir / b / f"{which}.keras", custom_objects=CUSTOM_OBJECTS, compile=False)
            for b in meta["backbones"]
        }
        return cls(models, meta)

    def preprocess(self, image) -> tuple[np.ndarray, clean.Geometry]:
        """Clean one raw export (path or array) into the model's input, as 01_cleaning did."""
        img = read_image(image, color=True) if isinstance(image, (str, Path)) else np.asarray(image)
        p = self.meta["preprocessing"]
        ce = clean.clean_export(img, p["model_size"], p["square"], p["undo_stretch"], p["inpaint_radius"])
        im, geom = ce.image, ce.geom
        return im, geom

    def predict_probs(self, X: np.ndarray, batch_size: int = 32) -> np.ndarray:
        X = np.asarray(X, np.float32)
        if X.ndim == 3:
            X = X[..., None]
        return np.stack([m.predict(X, batch_size=batch_size, verbose=0)[..., 0] for m in self.models.values()])

    def segment(self, images, preprocessed: bool = False, pixel_spacing_mm=None, batch_size: int = 32) -> Segmentation:
        """Segment raw exports (paths/arrays) or, with ``preprocessed=True``, model-size arrays.

        ``pixel_spacing_mm``: (row, col) spacing of the raw export, to report areas in mm².
        """
        geoms = []
        if preprocessed:
            X = np.asarray(images)
            X = X[..., 0] if X.ndim == 4 else X
        else:
            out = [self.preprocess(i) for i in images]
            X = np.stack([o[0] for o in out])
            geoms = [o[1] for o in out]
        probs = self.predict_probs(X, batch_size)
        masks = metrics.vote(probs, self.meta["vote"], self.meta["threshold"])
        masks = np.stack([metrics.remove_small(m, self.meta.get("min_component_px", 0)) for m in masks])
        dis = metrics.disagreement(probs, self.meta["threshold"])
        table = pd.DataFrame(
            {
                "plaque_area_px": masks.sum((1, 2)),
                "any_plaque": masks.any((1, 2)),
                "mean_disagreement": [float(d[m].mean()) if m.any() else 0.0 for d, m in zip(dis, masks)],
            }
        )
        if geoms and pixel_spacing_mm is not None:
            r, c = pixel_spacing_mm
            table["plaque_area_mm2"] = [
                a * r * g.scale_row * c / g.stretch * g.scale_col for a, g in zip(table.plaque_area_px, geoms)
            ]
        return Segmentation(table, masks, probs, X)


def run_unet_stage(cfg, progress=print) -> dict:
    """The 02 stage: train each backbone, predict, vote, evaluate; write everything under ``unet/``."""
    from .train import load_arrays, train_unet

    run_dir = Path(cfg["run_dir"])
    cdir, out = run_dir / "clean", run_dir / "unet"
    if not (cdir / "splits.parquet").exists():
        raise io.CarotidkitError(f"{cdir / 'splits.parquet'}: missing; run notebook 01_cleaning first")
    splits = pd.read_parquet(cdir / "splits.parquet")
    qc = pd.read_parquet(cdir / "qc.parquet").set_index("image_id")
    cmeta = io.read_json(cdir / "clean.json")
    ids = {k: splits[splits.split == k].image_id.tolist() for k in ("train", "val", "test")}
    (Xtr, Ytr), (Xva, Yva), (Xte, Yte) = (load_arrays(cdir, ids[k]) for k in ("train", "val", "test"))
    progress(f"train {len(Xtr)}, val {len(Xva)}, test {len(Xte)} images at {Xtr.shape[1]} px")
    summaries = []
    for bb in cfg["backbones"]:
        weights = str(Path(cfg["weights_dir"]) / f"{bb}.weights.h5") if cfg.get("weights_dir") else None
        s = train_unet(
            bb,
            Xtr,
            Ytr,
            Xva,
            Yva,
            out,
            epochs=cfg["epochs"],
            batch_size=cfg["batch_size"],
            learning_rate=cfg["learning_rate"],
            patience=cfg["patience"],
            seed=cfg["seed"],
            weights_path=weights,
        )
        progress(f"{bb}: best val Dice {s['best_val_dice']:.3f} at epoch {s['best_epoch']} ({s['seconds']} s)")
        summaries.append(s)
    meta = {
        "backbones": list(cfg["backbones"]),
        "vote": cfg["vote"],
        "threshold": 0.5,
        "min_component_px": 0,
        "preprocessing": {
            "model_size": cmeta["model_size"],
            "square": cmeta["square"],
            "undo_stretch": cmeta["undo_stretch"],
            "inpaint_radius": cmeta.get("inpaint_radius", 3),
        },
    }
    io.write_json(out / "ensemble.json", meta)
    seg = PlaqueSegmenter.load(out)
    t0 = time.perf_counter()
    probs = seg.predict_probs(Xte)
    infer_s = time.perf_counter() - t0
    area = qc.loc[ids["test"], "model_px_area_mm2"].to_numpy() if "model_px_area_mm2" in qc else None
    preds = {bb: probs[k] > 0.5 for k, bb in enumerate(cfg["backbones"])}
    preds["ensemble (majority)"] = metrics.vote(probs, "majority")
    preds["ensemble (mean)"] = metrics.vote(probs, "mean")
    test = splits.set_index("image_id").loc[ids["test"]]
    tables, per_img = [], []
    for name, P in preds.items():
        pi = metrics.per_image(Yte[..., 0], P, area, ids["test"]).assign(model=name)
        pi["test_leak"] = test.test_leak.to_numpy()
        per_img.append(pi)
        for subset, df in (("all test", pi), ("test without duplicates", pi[~pi.test_leak])):
            tables.append(metrics.summarize(df, cfg["n_boot"], cfg["seed"]).assign(model=name, subset=subset))
    per_img = pd.concat(per_img, ignore_index=True)
    table = pd.concat(tables, ignore_index=True)
    io.write_parquet(out / "test_predictions.parquet", per_img)
    io.write_parquet(out / "metrics.parquet", table)
    io.write_npz(
        out / "test_probs.npz",
        probs=(probs * 255).round().astype(np.uint8),
        image_ids=np.array(ids["test"]),
        masks=Yte[..., 0].astype(bool),
        images=Xte[..., 0],
    )
    summary = {
        "train": summaries,
        "n_test": len(ids["test"]),
        "inference_images_per_s": round(len(Xte) * len(cfg["backbones"]) / infer_s, 1) if infer_s > 0 else None,
        "ensemble_images_per_s": round(len(Xte) / infer_s, 1) if infer_s > 0 else None,
    }
    io.write_json(out / "summary.json", summary)
    return summary


def training_logs(unet_dir, backbones) -> pd.DataFrame:
    """Every backbone's ``log.csv`` in one table (``backbone, epoch`` 1-based, losses, val Dice)."""
    from pathlib import Path

    logs = []
    for b in backbones:
        log = pd.read_csv(Path(unet_dir) / b / "log.csv")
        logs.append(log.assign(backbone=b, epoch=log.epoch + 1))
    return pd.concat(logs, ignore_index=True)
