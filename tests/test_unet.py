"""The Keras U-Net: builds on every backbone, trains, resumes, saves/loads; runs on TensorFlow too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

from carotidkit.segment import unet  # noqa: E402
from carotidkit.segment.train import augment_batch, train_unet  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize("backbone", list(unet.BACKBONES))
def test_every_backbone_builds_a_unet(backbone):
    m = unet.build_unet(backbone, 64)
    assert m.input_shape == (None, 64, 64, 1) and m.output_shape == (None, 64, 64, 1)
    out = m.predict(np.zeros((1, 64, 64, 1), np.float32), verbose=0)
    assert out.shape == (1, 64, 64, 1) and (0 <= out).all() and (out <= 1).all()
    assert out.mean() < 0.2  # starts near the plaque prior, not 0.5


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="unknown backbone"):
        unet.build_unet("alexnet", 64)
    with pytest.raises(ValueError, match="multiple of 32"):
        unet.build_unet("mobilenetv2", 100)


def test_augmentation_moves_image_and_mask_together():
    rng = np.random.default_rng(0)
    y = np.zeros((8, 32, 32, 1), np.float32)
    y[:, 10:20, 5:25] = 1
    x = y * 255
    xa, ya = augment_batch(x, y, rng, shift=0.2, gain=0.0, vflip=0.0)
    assert ((xa > 127) == (ya > 0.5)).all()
    assert not np.array_equal(ya, y)  # something moved


def test_loss_prefers_the_right_mask():
    y = np.zeros((2, 16, 16, 1), np.float32)
    y[:, 4:8, 4:8] = 1
    good = np.clip(y * 0.9 + 0.05, 0, 1)
    bad = np.clip((1 - y) * 0.9 + 0.05, 0, 1)
    assert float(unet.dice_bce_loss(y, good)) < float(unet.dice_bce_loss(y, bad))
    assert float(unet.dice_metric(y, good)) == pytest.approx(1.0)


@pytest.mark.slow
def test_train_save_resume_and_reload(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, (12, 64, 64, 1)).astype(np.uint8)
    Y = np.zeros((12, 64, 64, 1), np.float32)
    Y[:, 30:40, 10:50] = 1
    X[Y > 0] = 250
    r1 = train_unet("mobilenetv2", X[:8], Y[:8], X[8:], Y[8:], tmp_path, epochs=1, batch_size=4, verbose=0)
    assert r1["epochs_run"] == 1 and (tmp_path / "mobilenetv2" / "best.keras").exists()
    r2 = train_unet("mobilenetv2", X[:8], Y[:8], X[8:], Y[8:], tmp_path, epochs=2, batch_size=4, verbose=0, patience=5)
    assert r2["epochs_run"] == 2  # resumed from last.keras, one more epoch
    log = (tmp_path / "mobilenetv2" / "log.csv").read_text().strip().splitlines()
    assert len(log) == 3  # header + 2 epochs
    m = keras.models.load_model(tmp_path / "mobilenetv2" / "best.keras", custom_objects=unet.CUSTOM_OBJECTS)
    assert m.predict(X[:1].astype(np.float32), verbose=0).shape == (1, 64, 64, 1)
    # same settings and data: nothing to do; a new learning rate or changed data retrains from scratch
    last = tmp_path / "mobilenetv2" / "last.keras"
    stamp = last.stat().st_mtime_ns
    r3 = train_unet("mobilenetv2", X[:8], Y[:8], X[8:], Y[8:], tmp_path, epochs=2, batch_size=4, verbose=0)
    assert r3 == r2 and last.stat().st_mtime_ns == stamp
    r4 = train_unet(
        "mobilenetv2", X[:8], Y[:8], X[8:], Y[8:], tmp_path, epochs=2, batch_size=4, verbose=0, learning_rate=5e-4
    )
    assert r4["learning_rate"] == 5e-4 and last.stat().st_mtime_ns != stamp
    assert len((tmp_path / "mobilenetv2" / "log.csv").read_text().strip().splitlines()) == 3
    stamp = last.stat().st_mtime_ns
    X2 = X.copy()
    X2[0, 0, 0, 0] ^= 1
    train_unet(
        "mobilenetv2", X2[:8], Y[:8], X2[8:], Y[8:], tmp_path, epochs=2, batch_size=4, verbose=0, learning_rate=5e-4
    )
    assert last.stat().st_mtime_ns != stamp  # one changed pixel: retrained


@pytest.mark.slow
def test_unet_runs_on_the_tensorflow_backend():
    code = (
        "import numpy as np, keras; assert keras.backend.backend() == 'tensorflow';"
        "from carotidkit.segment.unet import build_unet, dice_bce_loss, dice_metric;"
        "m = build_unet('mobilenetv2', 64);"
        "m.compile(optimizer='adam', loss=dice_bce_loss, metrics=[dice_metric]);"
        "x = np.random.rand(4, 64, 64, 1).astype('float32') * 255; y = (x > 200).astype('float32');"
        "h = m.fit(x, y, epochs=1, batch_size=2, verbose=0);"
        "p = m.predict(x, verbose=0); assert p.shape == (4, 64, 64, 1); print('tf ok', h.history['loss'][0])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        env={**os.environ, "KERAS_BACKEND": "tensorflow"},
    )
    assert proc.returncode == 0 and "tf ok" in proc.stdout, proc.stderr[-2000:]


def test_a_kill_during_a_checkpoint_save_leaves_a_resumable_run(tmp_path):
    """Checkpoints and log.csv are written atomically, checkpoint first: a save that dies half
    way leaves the previous last.keras and no log row for the lost epoch."""
    from carotidkit.segment.train import EpochCheckpoints

    class Model:  # stands in for a Keras model: save() writes bytes, and can die half way
        die = False

        def save(self, path):
            Path(path).write_bytes(b"half" if self.die else b"weights-epoch")
            if self.die:
                raise KeyboardInterrupt("killed while saving")

    log, last, best = tmp_path / "log.csv", tmp_path / "last.keras", tmp_path / "best.keras"
    cb = EpochCheckpoints(log, last, best, append=False)
    cb.set_model(Model())
    cb.on_epoch_end(0, {"loss": 1.0, "val_dice": 0.2})
    cb.model.die = True
    with pytest.raises(KeyboardInterrupt):
        cb.on_epoch_end(1, {"loss": 0.9, "val_dice": 0.3})
    assert last.read_bytes() == b"weights-epoch" and best.read_bytes() == b"weights-epoch"
    assert log.read_text().strip().splitlines() == ["epoch,loss,val_dice", "0,1.0,0.2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.keras", "last.keras", "log.csv"]
    resumed = EpochCheckpoints(log, last, best, append=True)
    assert resumed.best == 0.2 and len(resumed.rows) == 1


def _loop_reference(x, y, flips, shifts):
    """The per-image definition: flip, then shift with zero fill."""
    xo, yo = np.zeros_like(x), np.zeros_like(y)
    h, w = x.shape[1:3]
    for k, (f, (dy, dx)) in enumerate(zip(flips, shifts)):
        a, b = (x[k, :, ::-1], y[k, :, ::-1]) if f else (x[k], y[k])
        for r in range(h):
            for c in range(w):
                if 0 <= r - dy < h and 0 <= c - dx < w:
                    xo[k, r, c], yo[k, r, c] = a[r - dy, c - dx], b[r - dy, c - dx]
    return xo, yo


def test_vectorised_augmentation_equals_the_per_image_definition():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 255, (6, 12, 10, 1)).astype(np.float32)
    y = (rng.random((6, 12, 10, 1)) > 0.7).astype(np.float32)
    xa, ya = augment_batch(x, y, np.random.default_rng(7), shift=0.25, gain=0.0, vflip=0.0)
    draw = np.random.default_rng(7)  # the same draws, in the function's order
    flips = draw.random(6) < 0.5
    shifts = draw.integers(-3, 4, (6, 2))
    xr, yr = _loop_reference(x, y, flips, shifts)
    np.testing.assert_array_equal(xa, xr)
    np.testing.assert_array_equal(ya, yr)
    assert flips.any() and (~flips).any() and (shifts != 0).any()  # the test exercised both
    x2, _ = augment_batch(x, y, np.random.default_rng(7), shift=0.25, gain=0.0, vflip=0.0)
    np.testing.assert_array_equal(xa, x2)  # seeded


def test_vertical_flips_follow_the_same_definition():
    rng = np.random.default_rng(4)
    x = rng.integers(0, 255, (6, 12, 10, 1)).astype(np.float32)
    y = (rng.random((6, 12, 10, 1)) > 0.7).astype(np.float32)
    xa, ya = augment_batch(x, y, np.random.default_rng(7), shift=0.25, gain=0.0, vflip=0.5)
    draw = np.random.default_rng(7)
    flips, shifts, vflips = draw.random(6) < 0.5, draw.integers(-3, 4, (6, 2)), draw.random(6) < 0.5
    xv, yv = np.where(vflips[:, None, None, None], x[:, ::-1], x), np.where(vflips[:, None, None, None], y[:, ::-1], y)
    xr, yr = _loop_reference(xv, yv, flips, shifts)  # flip upside down first, then as before
    np.testing.assert_array_equal(xa, xr)
    np.testing.assert_array_equal(ya, yr)
    assert vflips.any() and (~vflips).any()
    # without vflip the draws (and so the epochs) are exactly what they were
    x0, _ = augment_batch(x, y, np.random.default_rng(7), shift=0.25, gain=0.0, vflip=0.0)
    np.testing.assert_array_equal(x0, _loop_reference(x, y, flips, shifts)[0])


def test_member_plan_shares_the_cores():
    from carotidkit.segment.members import plan

    assert plan(3, 0, cores=2) == (3, 1)  # one process per member, one thread each
    assert plan(3, 0, cores=16) == (3, 5)
    assert plan(3, 1, cores=2) == (1, 2)  # one after another, all cores
    assert plan(3, 2, cores=8) == (2, 4)
    assert plan(2, 5, cores=2) == (2, 1)  # never more processes than members


@pytest.mark.slow
def test_members_train_side_by_side_like_one_after_another(tmp_path):
    """Three members in two processes (one worker trains two in turn): the same files and
    summaries as training them in one process, the workers' epoch lines reach the caller, and a
    worker's error surfaces in the caller."""
    from carotidkit.segment.members import train_members

    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, (12, 32, 32, 1)).astype(np.uint8)
    Y = np.zeros((12, 32, 32, 1), np.float32)
    Y[:, 14:20, 6:26] = 1
    X[Y > 0] = 250
    args = (X[:8], Y[:8], X[8:], Y[8:])
    lines = []
    members = ["mobilenetv2", "efficientnetb0", "efficientnetv2b0"]
    side = train_members(members, *args, tmp_path / "a", n_jobs=2, progress=lines.append, epochs=1, batch_size=4)
    assert [s["backbone"] for s in side] == members
    assert all(s["processes"] == 2 and s["epochs_run"] == 1 for s in side)
    assert sorted(ln.split()[0] for ln in lines if "epoch 1/1" in ln) == sorted(members)
    for bb in members:
        assert {"best.keras", "last.keras", "log.csv", "train.json", "key.json"} <= {
            p.name for p in (tmp_path / "a" / bb).iterdir()
        }
    turn = train_members(members, *args, tmp_path / "b", n_jobs=1, progress=None, epochs=1, batch_size=4)
    # same checkpoint keys (the schedule is not part of a model's identity) and the same epochs
    for bb in members:
        assert (tmp_path / "a" / bb / "key.json").read_text() == (tmp_path / "b" / bb / "key.json").read_text()
    assert [s["params"] for s in side] == [s["params"] for s in turn]
    with pytest.raises(ValueError, match="at most once"):
        train_members(["mobilenetv2", "mobilenetv2"], *args, tmp_path / "d", n_jobs=2, progress=None, epochs=1)
    with pytest.raises(ValueError, match="unknown backbone"):
        train_members(["mobilenetv2", "nosuchnet"], *args, tmp_path / "c", n_jobs=2, progress=None, epochs=1)


@pytest.mark.slow
def test_bench_times_the_notebooks_training_path(tmp_path):
    """The U-Net bench's measurements run end to end on tiny data: the notebook's path for one
    backbone and all members, with their CPU shares and test Dice."""
    from carotidkit import io
    from carotidkit.segment.speed import measure

    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, (14, 32, 32, 1)).astype(np.uint8)
    Y = np.zeros((14, 32, 32, 1), np.float32)
    Y[:, 14:20, 6:26] = 1
    data = io.write_npz(tmp_path / "a.npz", Xtr=X[:8], Ytr=Y[:8], Xva=X[8:11], Yva=Y[8:11], Xte=X[11:], Yte=Y[11:])
    spec = {"data": str(data), "epochs": 1, "batch_size": 4}
    pipe = measure({**spec, "mode": "pipeline", "backbone": "mobilenetv2"})
    assert pipe["epochs"] == 1 and 0 <= pipe["test_dice"] <= 1 and pipe["images_per_s"] > 0
    assert 0 <= pipe["system_share"] < 1 and pipe["cores_busy"] > 0
    both = measure({**spec, "mode": "members", "backbones": ["mobilenetv2", "efficientnetb0"], "n_jobs": 1})
    assert both["processes"] == 1 and set(both["test_dice"]) == {"mobilenetv2", "efficientnetb0"}
    assert both["epochs_run"] == {"mobilenetv2": 1, "efficientnetb0": 1} and both["seconds"] > 0
