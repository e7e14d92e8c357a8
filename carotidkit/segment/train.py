"""Training one U-Net: augmentation, Dice+BCE loss, early stopping, checkpoints, CSV log.

Each backbone trains into ``<out_dir>/<backbone>/`` with ``log.csv`` (one row per epoch),
``last.keras`` (resumable), ``best.keras`` (best validation Dice) and ``train.json``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from .. import io
from ..settings import UnetSettings
from ..stages import report_line
from . import keras_quietly
from .unet import CUSTOM_OBJECTS, build_unet, dice_bce_loss, dice_metric, iou_coefficient

keras = keras_quietly()


def load_arrays(clean_dir, image_ids) -> tuple[np.ndarray, np.ndarray]:
    """Cleaned images and masks (written by 01_cleaning) as ``[N, S, S, 1]`` uint8 / float32."""
    from ..imaging import read_image, read_mask

    clean_dir = Path(clean_dir)
    X = np.stack([read_image(clean_dir / "images" / f"{i}.png") for i in image_ids])[..., None]
    Y = np.stack([read_mask(clean_dir / "masks" / f"{i}.png") for i in image_ids])[..., None]
    return X, Y.astype(np.float32)


def augment_batch(
    x: np.ndarray,
    y: np.ndarray,
    rng: np.random.Generator,
    shift: float = 0.1,
    hflip: bool = True,
    gain: float = 0.15,
    *,
    vflip: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Random left-right flips, shifts (up to ``shift`` of the side, zero fill) and mild
    gain/gamma changes; the masks get the same geometric changes. ``vflip``: the share of images
    also flipped upside down (near-wall plaques become far-wall-like and back; 0 = never).

    Vectorised over the batch: the flip and shift of every image are one gather (an index map
    per image), the intensity change one broadcast power; no per-image Python loop.
    """
    x = np.asarray(x, np.float32)
    n, h, w = x.shape[:3]
    flip = rng.random(n) < 0.5 if hflip else np.zeros(n, bool)
    m = int(shift * h)
    d = rng.integers(-m, m + 1, (n, 2)) if m > 0 else np.zeros((n, 2), np.int64)
    # output pixel (r, c) reads source (r - dy, c - dx) of the flipped image; outside -> 0
    rows = np.arange(h)[None, :] - d[:, :1]
    cols = np.arange(w)[None, :] - d[:, 1:]
    valid = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    cols = np.where(flip[:, None], w - 1 - cols, cols)
    if vflip > 0:  # drawn only when asked for: default epochs keep their draws
        rows = np.where((rng.random(n) < vflip)[:, None], h - 1 - rows, rows)
    i = np.arange(n)[:, None, None]
    r, c = rows.clip(0, h - 1)[:, :, None], cols.clip(0, w - 1)[:, None, :]
    keep = valid[..., None] if x.ndim == 4 else valid
    xo = np.where(keep, x[i, r, c], 0).astype(np.float32)
    yo = np.where(keep, np.asarray(y)[i, r, c], 0).astype(np.asarray(y).dtype)
    if gain > 0:
        shape = (n,) + (1,) * (x.ndim - 1)
        g = rng.uniform(1 - gain, 1 + gain, n).astype(np.float32).reshape(shape)
        gamma = rng.uniform(1 - gain, 1 + gain, n).astype(np.float32).reshape(shape)
        xo = 255.0 * np.clip(xo / 255.0, 0, 1) ** gamma * g
    return np.clip(xo, 0, 255), yo


def epoch_arrays(X, Y, seed: int, epoch: int, *, vflip: float, augment: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """One epoch of training data: a permutation and a fresh augmentation of every image, seeded
    by ``(seed, epoch)`` (a resumed run sees exactly the epochs it would have seen), vectorised
    over the whole epoch. The model then reads plain arrays: Keras' array path, no Python
    generator between the model and its data (a ``PyDataset`` cost a third of the speed)."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(X))
    if not augment:
        return X[order].astype(np.float32), Y[order]
    return augment_batch(X[order], Y[order], rng, vflip=vflip)


class Plateau:
    """Early stopping and learning-rate halving on validation Dice, as pure bookkeeping over the
    epoch history, so a resumed run replays the log to the same state (Keras' callbacks forget
    theirs between ``fit`` calls)."""

    def __init__(self, learning_rate: float, patience: int, factor: float = 0.5, min_lr: float = 1e-5):
        self.lr, self.patience, self.factor, self.min_lr = learning_rate, patience, factor, min_lr
        self.lr_patience = max(1, patience // 2)
        self.best, self.since_best, self.since_cut = -np.inf, 0, 0

    def update(self, val_dice: float) -> bool:
        """Record one epoch; True when training should stop."""
        if val_dice > self.best:
            self.best, self.since_best, self.since_cut = val_dice, 0, 0
            return False
        self.since_best += 1
        self.since_cut += 1
        if self.since_cut >= self.lr_patience and self.lr > self.min_lr:
            self.lr, self.since_cut = max(self.min_lr, self.lr * self.factor), 0
        return self.since_best >= self.patience


class EpochCheckpoints(keras.callbacks.Callback):
    """After every epoch: ``last.keras``, ``best.keras`` when validation Dice improved, then one
    ``log.csv`` row, each written atomically (temp file + rename) in that order.

    A kill at any moment leaves the previous complete files, and ``log.csv`` never lists an epoch
    whose checkpoint is missing, so a resume always works (Keras' CSVLogger and ModelCheckpoint
    write in place).
    """

    def __init__(self, log_path, last_path, best_path, append: bool):
        super().__init__()
        import pandas as pd

        self.paths = Path(log_path), Path(last_path), Path(best_path)
        self.rows = pd.read_csv(log_path).to_dict("records") if append and Path(log_path).exists() else []
        self.best = max((r.get("val_dice", -np.inf) for r in self.rows), default=-np.inf)

    def _save(self, path):
        with io.atomic_path(path, suffix=".keras") as tmp:
            self.model.save(tmp)

    def on_epoch_end(self, epoch, logs=None):
        import pandas as pd

        log_path, last_path, best_path = self.paths
        logs = {k: float(v) for k, v in (logs or {}).items()}
        self._save(last_path)
        if logs.get("val_dice", -np.inf) > self.best or not best_path.exists():
            self.best = logs.get("val_dice", -np.inf)
            with io.atomic_path(best_path, suffix=".keras") as tmp:  # a file copy, not a 2nd save
                shutil.copyfile(last_path, tmp)
        self.rows.append({"epoch": int(epoch), **dict(sorted(logs.items()))})
        io.write_text(log_path, pd.DataFrame(self.rows).to_csv(index=False))


def _checkpoint_key(backbone, size, batch_size, learning_rate, seed, weights_path, vflip, arrays) -> str:
    """A checkpoint belongs to its settings and its input data: anything else retrains."""
    return io.stable_hash(
        {
            "backbone": backbone,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "seed": seed,
            "weights_path": str(weights_path),
            "size": int(size),
            **({"vflip": float(vflip)} if vflip else {}),  # absent at 0: older checkpoints stay valid
            "data": [io.sha256_bytes(np.ascontiguousarray(a).tobytes())[:16] for a in arrays],
        }
    )


def _resume_or_build(out: Path, key: str, backbone, size, epochs, learning_rate, weights_path, resume):
    """``(model, initial_epoch, finished_summary)``: the last checkpoint of a run with the same
    key, the finished summary when it is complete, or a freshly compiled U-Net."""
    log_path, last_path, best_path = out / "log.csv", out / "last.keras", out / "best.keras"
    key_path, done_path = out / "key.json", out / "train.json"
    same = key_path.exists() and io.read_json(key_path).get("key") == key
    if not same:
        for p in (log_path, last_path, best_path, done_path):
            p.unlink(missing_ok=True)
    if resume and same and last_path.exists() and log_path.exists():
        done = max(0, sum(1 for _ in open(log_path)) - 1)
        if 0 < done < epochs:
            io.write_json(key_path, {"key": key})
            return keras.models.load_model(last_path, custom_objects=CUSTOM_OBJECTS), done, None
        if done == epochs and best_path.exists() and done_path.exists():
            return None, done, json.loads(done_path.read_text())
    io.write_json(key_path, {"key": key})
    model = build_unet(backbone, size, weights_path=weights_path)
    # no XLA: on CPU it triples the first epoch and slows the steady state (measured)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=dice_bce_loss,
        metrics=[dice_metric, iou_coefficient],
        jit_compile=False,
    )
    log_path.unlink(missing_ok=True)
    return model, 0, None


def _fit_epochs(model, backbone, X_train, Y_train, val_data, ckpt, plateau, stop, epochs, initial_epoch, cfg, log):
    """Train epoch by epoch (one ``fit`` call each on that epoch's augmented arrays); the
    per-epoch logs. ``cfg``: batch_size, seed, vflip, verbose."""
    history = []
    for epoch in range(initial_epoch, epochs):
        if stop:
            break
        model.optimizer.learning_rate.assign(plateau.lr)
        xa, ya = epoch_arrays(X_train, Y_train, cfg["seed"], epoch, vflip=cfg["vflip"])
        te = time.perf_counter()
        h = model.fit(
            xa,
            ya,
            batch_size=cfg["batch_size"],
            epochs=epoch + 1,
            initial_epoch=epoch,
            shuffle=False,
            validation_data=val_data,
            callbacks=[ckpt],
            verbose=0,
        )
        logs = {k: float(v[-1]) for k, v in h.history.items()}
        history.append(logs)
        stop = plateau.update(logs["val_dice"])
        if cfg["verbose"]:
            secs = time.perf_counter() - te
            log(
                f"{backbone} epoch {epoch + 1}/{epochs}: loss {logs['loss']:.3f}, val Dice {logs['val_dice']:.3f}, "
                f"lr {plateau.lr:.1e}, {secs:.0f} s ({len(X_train) / secs:.1f} img/s)"
                + (" - early stop" if stop else "")
            )
    return history


def train_unet(
    backbone: str,
    X_train,
    Y_train,
    X_val,
    Y_val,
    out_dir,
    settings: UnetSettings | None = None,
    /,
    *,
    weights_path: str | None = None,
    resume: bool = True,
    verbose: int = 2,
    log=None,
    **knobs,
) -> dict:
    """Train one U-Net; return a summary (best epoch, validation Dice, seconds, images/s).

    ``settings`` (a :class:`~carotidkit.settings.UnetSettings`, its defaults when omitted) and
    ``knobs`` (its field names: ``epochs``, ``batch_size``, ``learning_rate``, ``patience``,
    ``seed``, ``vflip``) say how; ``log``: where the one line per epoch goes (``verbose``).

    Example:
        res = train_unet("mobilenetv2", Xtr, Ytr, Xva, Yva, "runs/smoke/unet", epochs=1)
    """
    cfg = (settings or UnetSettings()).replace(**knobs)
    epochs, batch_size, learning_rate, seed, vflip = cfg.epochs, cfg.batch_size, cfg.learning_rate, cfg.seed, cfg.vflip
    log = log or report_line
    out = Path(out_dir) / backbone
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(seed)
    size = X_train.shape[1]
    arrays = (X_train, Y_train, X_val, Y_val)
    key = _checkpoint_key(backbone, size, batch_size, learning_rate, seed, weights_path, vflip, arrays)
    model, initial_epoch, finished = _resume_or_build(
        out, key, backbone, size, epochs, learning_rate, weights_path, resume
    )
    if finished is not None:
        return finished
    best_path = out / "best.keras"
    ckpt = EpochCheckpoints(out / "log.csv", out / "last.keras", best_path, append=initial_epoch > 0)
    plateau = Plateau(learning_rate, cfg.patience)
    stop = False
    for row in ckpt.rows:  # a resumed run replays its history
        stop = plateau.update(row["val_dice"])
    if stop and (out / "train.json").exists():  # it had stopped early: nothing left to do
        return json.loads((out / "train.json").read_text())
    t0 = time.perf_counter()
    fit_cfg = dict(batch_size=batch_size, seed=seed, vflip=vflip, verbose=verbose)
    val_data = (X_val.astype(np.float32), Y_val)
    history = _fit_epochs(
        model, backbone, X_train, Y_train, val_data, ckpt, plateau, stop, epochs, initial_epoch, fit_cfg, log
    )
    seconds = time.perf_counter() - t0
    n_epochs = len(history)
    val = [r["val_dice"] for r in ckpt.rows]
    summary = {
        "backbone": backbone,
        "epochs_run": len(ckpt.rows),
        "best_epoch": int(np.nanargmax(val)) + 1 if val else None,
        "best_val_dice": float(np.nanmax(val)) if val else None,
        "seconds": round(seconds, 1),
        "params": int(model.count_params()),
        "train_images_per_s": round(len(X_train) * n_epochs / seconds, 1) if n_epochs else None,
        "keras_backend": keras.backend.backend(),
        "input_size": int(size),
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "vflip": vflip,
    }
    if not best_path.exists():
        with io.atomic_path(best_path, suffix=".keras") as tmp:
            model.save(tmp)
    io.write_json(out / "train.json", summary)
    return summary
