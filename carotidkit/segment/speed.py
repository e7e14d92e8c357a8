"""What U-Net training costs, measured the way the notebook pays it (used by ``make bench``).

Each measurement runs in its own process (``python -m carotidkit.segment.speed <json>``), so the
Keras backend and thread pools start fresh: ``model`` times ``model.fit`` on in-memory arrays
(the model-only rate); ``pipeline`` times :func:`~carotidkit.segment.train.train_unet` with its
data pipeline, validation and checkpoints, then scores the best model on the test images;
``monai`` trains the same EfficientNet-B0 U-Net recipe in MONAI (``FlexibleUNet``, torch) as a
peer. Every result carries the process's user and system CPU seconds.
"""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import time

import numpy as np

from ..settings import UnetSettings


def _cpu() -> tuple[float, float]:
    """User and system CPU seconds of this process and of its finished children (the side-by-side
    training's workers)."""
    r, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + c.ru_utime, r.ru_stime + c.ru_stime


def _cpu_share(t0: tuple[float, float], wall: float) -> dict:
    u, s = (a - b for a, b in zip(_cpu(), t0))
    return {"system_share": round(s / max(u + s, 1e-9), 3), "cores_busy": round((u + s) / wall, 2)}


def _test_dice(probs: np.ndarray, Y: np.ndarray) -> float:
    """Mean per-image Dice on the test images that have plaque (the notebook's headline)."""
    from .metrics import dice

    has = Y.reshape(len(Y), -1).any(1)
    return float(np.mean([dice(Y[k] > 0.5, probs[k] > 0.5) for k in np.where(has)[0]]))


def _val_dice(probs: np.ndarray, Y: np.ndarray) -> float:
    """Numpy twin of Keras' ``val_dice`` (:func:`carotidkit.segment.unet.dice_metric`): hard
    Dice per image with smoothing 1, averaged over all images, so the peer selects its best
    epoch by the same rule as ``train_unet``."""
    p, t = probs.reshape(len(probs), -1) > 0.5, Y.reshape(len(Y), -1) > 0.5
    return float(np.mean((2 * (p & t).sum(1) + 1) / (p.sum(1) + t.sum(1) + 1)))


def _settings(spec: dict) -> UnetSettings:
    """02's settings (its defaults) with the spec's training knobs."""
    return UnetSettings().replace(
        **{k: spec[k] for k in ("epochs", "batch_size", "learning_rate", "vflip", "seed") if k in spec}
    )


def measure(spec: dict) -> dict:
    """One measurement (see the module docstring); ``spec``: mode, backbone, data (npz), epochs,
    batch_size, learning_rate, seed."""
    d = np.load(spec["data"])
    Xtr, Ytr, Xva, Yva, Xte, Yte = (d[k] for k in ("Xtr", "Ytr", "Xva", "Yva", "Xte", "Yte"))
    cfg = _settings(spec)
    bs, ep, lr = cfg.batch_size, cfg.epochs, cfg.learning_rate
    if spec["mode"] == "members":
        return _members(spec, Xtr, Ytr, Xva, Yva, Xte, Yte)
    if spec["mode"] == "monai":
        return _monai(Xtr, Ytr, Xva, Yva, Xte, Yte, bs, ep, lr, cfg.seed, cfg.vflip)
    from . import keras_quietly

    keras = keras_quietly()
    out = {"backend": keras.backend.backend(), "backbone": spec["backbone"], "mode": spec["mode"]}
    if spec["mode"] == "model":
        from .unet import build_unet, dice_bce_loss, dice_metric

        m = build_unet(spec["backbone"], Xtr.shape[1])
        m.compile(optimizer=keras.optimizers.Adam(lr), loss=dice_bce_loss, metrics=[dice_metric], jit_compile=False)
        X = Xtr.astype("float32")
        # one full epoch first: it builds the model and traces every batch shape (the last,
        # partial batch retraces on TensorFlow), so the timed epochs are the steady state
        m.fit(X, Ytr, batch_size=bs, epochs=1, verbose=0)
        t0, c0 = time.perf_counter(), _cpu()
        m.fit(X, Ytr, batch_size=bs, epochs=2, verbose=0)
        wall = time.perf_counter() - t0
        return {**out, "images_per_s": round(2 * len(X) / wall, 1), **_cpu_share(c0, wall)}
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), _cpu()
        (s,) = _train(spec, [spec["backbone"]], (Xtr, Ytr, Xva, Yva), tmp, n_jobs=1, patience=ep)
        wall = time.perf_counter() - t0
        share = _cpu_share(c0, wall)
        dice, rates = _best_test_dice(keras, tmp, spec["backbone"], Xte, Yte)
    return {
        **out,
        "images_per_s": round(len(Xtr) * s["epochs_run"] / wall, 1),
        "seconds": round(wall, 1),
        "epochs": s["epochs_run"],
        "best_val_dice": s["best_val_dice"],
        "test_dice": dice,
        **rates,
        **share,
    }


def _train(spec, backbones, arrays, out_dir, n_jobs: int, patience: int | None) -> list[dict]:
    """The notebook's training path (:func:`~carotidkit.segment.members.train_members`) with the
    spec's settings; ``n_jobs=1`` with one backbone is ``train_unet`` in this process."""
    from .members import train_members

    return train_members(
        backbones,
        *arrays,
        out_dir,
        _settings(spec),
        n_jobs=n_jobs,
        progress=None,
        patience=patience,
    )


#: images per inference timing (the test images repeated) and the batch size both peers predict at
INFER_IMAGES, INFER_BATCH = 256, 32


def inference_rate(predict_fn, X: np.ndarray) -> float:
    """Images/s of ``predict_fn`` on :data:`INFER_IMAGES` images (``X`` repeated), after one
    warm-up batch (so one-off setup is not counted)."""
    reps = -(-INFER_IMAGES // len(X))
    Xr = np.concatenate([X] * reps)[:INFER_IMAGES].astype("float32")
    predict_fn(Xr[:INFER_BATCH])
    t0 = time.perf_counter()
    predict_fn(Xr)
    return round(len(Xr) / (time.perf_counter() - t0), 1)


def _best_test_dice(keras, out_dir, backbone: str, Xte, Yte, rate: bool = True) -> tuple[float, dict]:
    """Test Dice of a trained member's ``best.keras`` and (``rate``) its inference rate through
    02's path (:func:`~carotidkit.segment.ensemble.predict`)."""
    from .ensemble import predict
    from .unet import CUSTOM_OBJECTS

    best = keras.models.load_model(f"{out_dir}/{backbone}/best.keras", custom_objects=CUSTOM_OBJECTS)
    dice = round(_test_dice(predict(best, Xte, INFER_BATCH), Yte), 3)
    if not rate:
        return dice, {}
    return dice, {"inference_images_per_s": inference_rate(lambda X: predict(best, X, INFER_BATCH), Xte)}


def _members(spec, Xtr, Ytr, Xva, Yva, Xte, Yte) -> dict:
    """All of the notebook's members trained with ``spec["n_jobs"]`` (1 = one after another on
    all cores, 0 = side by side), as 02 runs them: wall time, CPU shares (workers included) and
    each member's test Dice."""
    from . import keras_quietly

    keras = keras_quietly()
    with tempfile.TemporaryDirectory() as tmp:
        t0, c0 = time.perf_counter(), _cpu()
        summaries = _train(
            spec, spec["backbones"], (Xtr, Ytr, Xva, Yva), tmp, n_jobs=spec["n_jobs"], patience=spec.get("patience")
        )
        wall = time.perf_counter() - t0
        share = _cpu_share(c0, wall)
        dice = {bb: _best_test_dice(keras, tmp, bb, Xte, Yte, rate=False)[0] for bb in spec["backbones"]}
    return {
        "backend": keras.backend.backend(),
        "mode": "members",
        "n_jobs": spec["n_jobs"],
        "processes": summaries[0]["processes"],
        "threads": summaries[0]["threads"],
        "seconds": round(wall, 1),
        "epochs_run": {x["backbone"]: x["epochs_run"] for x in summaries},
        "test_dice": dice,
        **share,
    }


def _monai(Xtr, Ytr, Xva, Yva, Xte, Yte, bs, epochs, lr, seed, vflip: float = 0.0) -> dict:
    """The same recipe in MONAI: FlexibleUNet(efficientnet-b0), Adam, batch-Dice + 0.5 BCE,
    output bias at the plaque prior, BatchNorm momentum 0.1 (torch's convention for Keras' 0.9),
    the same flips/shifts/gain (carotidkit's augment_batch, same seed), best-validation model."""
    import torch
    from monai.networks.nets import FlexibleUNet

    from .train import augment_batch

    torch.manual_seed(seed)
    m = FlexibleUNet(in_channels=1, out_channels=1, backbone="efficientnet-b0", pretrained=False, spatial_dims=2)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.momentum = 0.1
    head = [mod for mod in m.modules() if isinstance(mod, torch.nn.Conv2d)][-1]
    torch.nn.init.constant_(head.bias, -4.0)
    opt = torch.optim.Adam(m.parameters(), lr)

    def tensor(x):
        return torch.from_numpy(np.ascontiguousarray(np.moveaxis(np.asarray(x, np.float32), -1, 1)))

    def loss_fn(logits, y):
        p = torch.sigmoid(logits)
        dice = (2 * (p * y).sum() + 1) / (p.sum() + y.sum() + 1)
        return 1 - dice + 0.5 * torch.nn.functional.binary_cross_entropy_with_logits(logits, y)

    def predict(X):
        m.eval()
        with torch.inference_mode():
            return np.concatenate(
                [
                    torch.sigmoid(m(tensor(X[k : k + INFER_BATCH] / 255.0))).numpy()
                    for k in range(0, len(X), INFER_BATCH)
                ]
            )

    rng = np.random.default_rng(seed)
    best, best_state = -1.0, None
    t0, c0 = time.perf_counter(), _cpu()
    for _ in range(epochs):
        m.train()
        order = rng.permutation(len(Xtr))
        for k in range(0, len(order), bs):
            x, y = augment_batch(Xtr[order[k : k + bs]], Ytr[order[k : k + bs]], rng, vflip=vflip)
            opt.zero_grad()
            loss_fn(m(tensor(x / 255.0)), tensor(y)).backward()
            opt.step()
        pv = predict(Xva)
        v = _val_dice(np.moveaxis(pv, 1, -1), Yva)
        if v > best:
            best, best_state = v, {k: t.clone() for k, t in m.state_dict().items()}
    wall = time.perf_counter() - t0
    share = _cpu_share(c0, wall)
    m.load_state_dict(best_state)
    probs = np.moveaxis(predict(Xte), 1, -1)
    return {
        "backend": "torch (MONAI FlexibleUNet)",
        "backbone": "efficientnetb0",
        "mode": "monai",
        "images_per_s": round(len(Xtr) * epochs / wall, 1),
        "seconds": round(wall, 1),
        "epochs": epochs,
        "best_val_dice": round(best, 3),
        "test_dice": round(_test_dice(probs, Yte), 3),
        "inference_images_per_s": inference_rate(predict, Xte),
        **share,
    }


def run_isolated(spec: dict, backend: str = "tensorflow", timeout: float = 3600) -> dict:
    """:func:`measure` in a fresh process with ``KERAS_BACKEND=backend``."""
    import os
    import subprocess

    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    r = subprocess.run(
        [sys.executable, "-m", "carotidkit.segment.speed", json.dumps(spec)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if r.returncode:
        return {**spec, "error": (r.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(r.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(measure(json.loads(sys.argv[1]))))
