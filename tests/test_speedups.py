"""The workshop speed-ups (issue 27) change how, not what: each faster path gives the result of
the code it replaced (kept as the reference; ``make bench --only speedups`` times both)."""

from __future__ import annotations

import numpy as np
import pytest

from carotidkit.segment import imt
from carotidkit.synth import anatomy as A
from carotidkit.synth import bmode
from carotidkit.synth.annotate import ANNOTATORS, annotate


@pytest.mark.parametrize("max_step", [1, 2, 3])
def test_vectorised_best_path_is_the_loop(max_step):
    rng = np.random.default_rng(max_step)
    for R, C, pen in ((40, 120, 0.3), (7, 50, 0.0), (120, 300, 2.0)):
        score = rng.normal(size=(R, C)).astype(np.float32)
        assert np.array_equal(imt._best_path(score, pen, max_step), imt._best_path_loop(score, pen, max_step))
        ties = rng.integers(0, 3, size=(R, C)).astype(np.float32)  # many equal sums: same tie-break
        assert np.array_equal(imt._best_path(ties, 1.0, max_step), imt._best_path_loop(ties, 1.0, max_step))
    path = imt._best_path(rng.normal(size=(30, 80)), 0.1, max_step)
    assert np.abs(np.diff(path)).max() <= max_step


def test_annotators_around_the_plaque_draw_the_whole_frame_mask():
    checked = 0
    for i in range(14):
        rng = np.random.default_rng(100 + i)
        anat = A.random_anatomy(rng, age=70, vd=1.0, n_plaques=1 + i % 3)
        ex = bmode.render_export(rng, size=400 + 40 * (i % 4), anat=anat)
        cov = ex.plaque.copy()
        if i == 13:  # a plaque touching the image's edge: the crop is clipped there
            cov[:, :30] = np.maximum(cov[:, :30], (np.arange(cov.shape[0]) > cov.shape[0] - 25)[:, None])
        for k, reader in enumerate(ANNOTATORS):
            fast = annotate(cov, ex.pixel_spacing_mm, reader, np.random.default_rng(k + 7 * i))
            full = annotate(cov, ex.pixel_spacing_mm, reader, np.random.default_rng(k + 7 * i), _whole_frame=True)
            assert np.array_equal(fast, full), (i, reader.name)
            checked += int(full.any())
    assert checked >= 20  # most cases drew a plaque


# ----------------------------------------------------------------------------- the fused U-Net twin


def _cleaned_like_images(n: int, size: int) -> np.ndarray:
    """Model-size B-mode stills: simulated exports cleaned by 01's own step."""
    from carotidkit.clean import clean_export

    out = []
    for i in range(n):
        rng = np.random.default_rng(300 + i)
        ex = bmode.render_export(rng, size=320, anat=A.random_anatomy(rng, age=65, vd=0.8), source="png1200")
        out.append(clean_export(ex.image, size, "pad", None, 3).image)
    return np.stack(out).astype(np.float32)[..., None]


def _with_trained_like_batchnorm(model, rng):
    """Moving statistics and affine terms away from their initial values, so folding is exercised."""
    keras = pytest.importorskip("keras")
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.get_weights()[0].shape[0]
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, c).astype("f4"),
                    rng.normal(0, 0.1, c).astype("f4"),
                    rng.normal(0, 0.1, c).astype("f4"),
                    rng.uniform(0.5, 2.0, c).astype("f4"),
                ]
            )
    return model


@pytest.mark.parametrize("backbone", ["efficientnetb0", "mobilenetv2", "efficientnetv2b0"])
def test_the_fused_twin_predicts_what_keras_predicts(backbone):
    """02's inference path (the fused torch twin) gives Keras' own probabilities on every
    workshop backbone: BatchNorm folded, squeeze-excite, asymmetric stride-2 padding, input
    rescaling and bilinear upsampling all translated."""
    pytest.importorskip("torch")
    from carotidkit.segment import ensemble, fused, unet

    model = _with_trained_like_batchnorm(unet.build_unet(backbone, 64), np.random.default_rng(1))
    X = _cleaned_like_images(6, 64)
    want = model.predict(X, batch_size=4, verbose=0)
    twin = fused.fuse(model)
    assert {s.kind for s in twin.steps} >= {"conv+bn", "cat", "up"}
    assert sum(s.kind == "conv+bn" for s in twin.steps) == sum(
        type(layer).__name__ == "BatchNormalization" for layer in model.layers
    )  # every BatchNorm folded away
    got = ensemble.predict(model, X, batch_size=4)
    assert got.shape == want.shape == (6, 64, 64, 1)
    assert np.abs(got - want).max() < 1e-4
    assert np.abs(twin(X, 5) - want).max() < 1e-4  # batch size does not matter
    # an untrained head squashes everything near the prior, which would hide errors: compare the
    # decoder's last feature maps too, relative to their scale
    keras = pytest.importorskip("keras")
    body = keras.Model(model.input, model.get_layer("dec_final_relu2").output)
    want = body.predict(X, verbose=0)
    assert want.std() > 0.02
    assert np.abs(fused.fuse(body)(X) - want).max() < 1e-5 * np.abs(want).max()


def test_the_twin_follows_weight_changes_and_falls_back_on_unknown_layers():
    pytest.importorskip("torch")
    keras = pytest.importorskip("keras")
    from carotidkit.segment import ensemble, fused, unet

    model = unet.build_unet("mobilenetv2", 64)
    X = _cleaned_like_images(2, 64)
    first = ensemble.fused_twin(model)
    assert first is not None and ensemble.fused_twin(model) is first  # cached
    head = model.get_layer("plaque_prob")
    head.set_weights([w + 0.5 for w in head.get_weights()])  # the model changed after the twin was built
    assert ensemble.fused_twin(model) is not first
    assert np.abs(ensemble.predict(model, X, 2) - model.predict(X, verbose=0)).max() < 1e-4

    inp = keras.Input((32, 32, 1))
    odd = keras.Model(inp, keras.layers.MaxPooling2D()(inp))
    with pytest.raises(NotImplementedError, match="MaxPooling2D"):
        fused.fuse(odd)
    assert ensemble.fused_twin(odd) is None  # 02 then predicts with model.predict
    assert ensemble.predict(odd, np.ones((1, 32, 32, 1), np.float32)).shape == (1, 16, 16, 1)
