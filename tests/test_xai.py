"""XAI: region enrichment arithmetic, randomisation and deletion checks on a model with a known
answer, associations recover planted effects, Grad-CAM on a Keras U-Net."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from carotidkit.xai import associations as A  # noqa: E402
from carotidkit.xai import video as V  # noqa: E402


def test_enrichment_is_mass_share_over_area_share():
    labels = np.zeros((2, 10, 10), np.uint8)
    labels[:, :2] = 3  # far wall: 20 % of the area
    att = np.zeros((2, 10, 10))
    att[:, :2] = 1.0  # all attribution there
    e = V.enrichment(att, labels)
    assert e["far_wall"] == pytest.approx(5.0)
    assert e["background"] == pytest.approx(0.0)


def test_cardiac_phases_split_every_pulsating_clip():
    """Most frames sit at the resting diameter: the split must still give both phases frames
    (a median split left diastole empty for most simulated clips), and none to a clip that does
    not pulsate."""
    lumen = [1205, 1205, 1205, 1266, 1266, 1215, 1205, 1333]
    ph = V.cardiac_phases(lumen)
    assert ph["systole"].tolist() == [7] and len(ph["diastole"]) == 7
    assert sorted(ph["systole"].tolist() + ph["diastole"].tolist()) == list(range(8))
    assert set(V.cardiac_phases([900] * 8)) == {"whole cycle"}


class _WallModel(torch.nn.Module):
    """Logit = mean intensity of the top rows (a 'wall'), through a conv stack Grad-CAM can see."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Identity()
        self.layers = torch.nn.Sequential(torch.nn.Conv3d(1, 4, 1), torch.nn.ReLU(), torch.nn.Conv3d(4, 4, 1))
        self.head = torch.nn.Linear(4, 1)
        with torch.no_grad():
            for p in self.parameters():
                p.fill_(0.5)

    def forward(self, x):
        f = self.layers(x[:, :, :, :3])  # only the top three rows matter
        return self.head(f.mean(dim=(2, 3, 4))).squeeze(1)


def test_attributions_find_the_region_the_model_uses():
    x = torch.rand(3, 1, 4, 12, 12)
    labels = np.zeros((4, 12, 12), np.uint8)
    labels[:, :3] = 2  # near wall = the rows the model reads
    labels[:, 5:9] = 1  # lumen
    m = _WallModel()
    for method in ("integrated_gradients", "occlusion"):
        att = V.attributions(m, x, method, n_samples=2)
        assert att.shape == (3, 4, 12, 12)
        e = V.enrichment(att[0], labels)
        assert e["near_wall"] > 3 and e.get("lumen", 0) < 0.3, (method, e)


class _ContrastModel(torch.nn.Module):
    """Logit = mean |x - 1| over the frame: dark and bright pixels count alike (a contrast reader)."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Identity()
        self.layers = torch.nn.Sequential(torch.nn.Conv3d(1, 1, 1))
        self.head = torch.nn.Identity()
        with torch.no_grad():
            self.layers[0].weight.fill_(1.0)
            self.layers[0].bias.fill_(-1.0)

    def forward(self, x):
        return self.layers(x).abs().mean(dim=(1, 2, 3, 4))


def test_the_reference_input_decides_what_dark_pixels_get():
    """An anechoic reference gives anechoic pixels no attribution (IG multiplies by input minus
    reference; Occlusion pastes black over black); a mean-grey reference gives them the most."""
    assert V.baseline_value("anechoic", mean=60.0, std=40.0) == pytest.approx(-1.5)
    assert V.baseline_value("mean", mean=60.0, std=40.0) == 0.0
    with pytest.raises(ValueError, match="baseline"):
        V.baseline_value("white", 0.0, 1.0)
    black = V.baseline_value("anechoic", mean=60.0, std=40.0)
    x = torch.full((1, 1, 4, 12, 12), 1.0)  # tissue
    x[:, :, :, 4:8] = black  # an anechoic lumen
    labels = np.zeros((4, 12, 12), np.uint8)
    labels[:, 4:8] = 1
    m = _ContrastModel()
    for method in ("integrated_gradients", "occlusion"):
        anechoic = V.enrichment(V.attributions(m, x, method, n_samples=2, baseline=black)[0], labels)
        grey = V.enrichment(V.attributions(m, x, method, n_samples=2, baseline=0.0)[0], labels)
        assert anechoic["lumen"] < 0.1 < 1 < grey["lumen"], (method, anechoic, grey)


def test_deletion_beats_random_order_for_faithful_attributions():
    x = np.random.default_rng(0).random((4, 1, 4, 12, 12)).astype(np.float32) + 1
    m = _WallModel()
    att = V.attributions(m, torch.from_numpy(x), "integrated_gradients", n_samples=2)
    curves = V.deletion_curve(m, x, att, steps=6)
    d = curves.groupby("order").auc.mean()
    assert d["attribution"] < d["random"]
    from carotidkit.xai.stage import XaiResult

    empty = pd.DataFrame()
    summary = XaiResult(empty, empty, empty, curves, empty, empty, empty).deletion_summary().set_index("order")
    paired = summary.loc["attribution - random (paired)"]
    assert paired.deletion_auc == pytest.approx(d["attribution"] - d["random"])
    assert paired.ci_low <= paired.deletion_auc <= paired.ci_high and paired.clips == 4


def test_cascading_randomisation_reports_each_block():
    x = torch.rand(2, 1, 4, 12, 12)
    s = V.cascading_randomisation(_WallModel(), x, "integrated_gradients")
    assert s.randomised_through.tolist()[0] == "head" and s.randomised_through.tolist()[-1] == "stem"
    assert s.spearman.between(-1, 1).all() and s.spearman_abs.between(-1, 1).all()
    # signed maps keep the sign of the evidence, absolute maps do not
    m = _WallModel()
    with torch.no_grad():
        m.head.weight.fill_(-0.5)
    signed = V.attributions(m, x, "integrated_gradients", n_samples=2, signed=True)
    assert (signed[:, :, :3] < 0).mean() > 0.9 and (
        V.attributions(m, x, "integrated_gradients", n_samples=2) >= 0
    ).all()


def test_associations_rank_the_planted_drivers_first():
    rng = np.random.default_rng(0)
    n = 1500
    c = pd.DataFrame(
        {
            "subject_id": [f"S{i}" for i in range(n)],
            "age_years": rng.uniform(35, 75, n),
            "sex": rng.choice(["female", "male"], n),
            "sbp_mmhg": rng.normal(130, 15, n),
            "bmi_kg_m2": rng.normal(27, 4, n),
            "smoking": rng.integers(0, 2, n),
        }
    )
    vd = c[["subject_id"]].assign(vd_z=0.06 * (c.age_years - 55) + 0.03 * (c.sbp_mmhg - 130) + rng.normal(0, 0.5, n))
    X, y = A.design(c, vd)
    reg = A.regression_table(X, y).set_index("term")
    assert set(reg.sort_values("rank_regression").index[:2]) == {"age_years", "sbp_mmhg"}
    assert reg.loc["bmi_kg_m2", "p_fdr"] > 0.05
    imp, sv, Xs = A.shap_table(X, y)
    assert set(imp.sort_values("rank_shap").term[:2]) == {"age_years", "sbp_mmhg"}
    assert sv.shape == Xs.shape


@pytest.mark.slow
def test_unet_gradcam_maps(tmp_path):
    pytest.importorskip("keras")
    from carotidkit.segment.unet import BACKBONES, build_unet
    from carotidkit.xai.unet_cam import gradcam

    m = build_unet("mobilenetv2", 64)
    imgs = np.random.default_rng(0).integers(0, 255, (2, 64, 64)).astype(np.uint8)
    cam = gradcam(m, imgs, BACKBONES["mobilenetv2"][2])
    assert cam.shape == (2, 64, 64) and cam.min() >= 0 and cam.max() <= 1


_CAM = """
import sys, numpy as np, keras
from carotidkit.segment.unet import CUSTOM_OBJECTS, build_unet
from carotidkit.xai.unet_cam import gradcam
path, mode = sys.argv[1], sys.argv[2]
if mode == "build":  # a briefly trained model: an untrained one can give an all-zero (ReLU) map
    keras.utils.set_random_seed(0)
    m = build_unet("mobilenetv2", 64)
    y = np.zeros((16, 64, 64, 1), "float32"); y[:, 24:40, 8:56] = 1
    x = np.random.default_rng(1).integers(0, 120, (16, 64, 64, 1)).astype("float32"); x[y > 0] = 230
    m.compile(optimizer=keras.optimizers.Adam(3e-3), loss="binary_crossentropy")
    m.fit(x, y, batch_size=8, epochs=4, verbose=0)
    m.save(path)
else:
    m = keras.models.load_model(path, custom_objects=CUSTOM_OBJECTS, compile=False)
    imgs = np.random.default_rng(0).integers(0, 120, (2, 64, 64)).astype(np.uint8)
    imgs[:, 24:40, 8:56] = 230
    # a mid-encoder layer: the bottleneck map of so small a model can be all zero after the ReLU
    np.save(mode, gradcam(m, imgs, "block_6_expand_relu"))
print(keras.backend.backend())
"""


@pytest.mark.slow
def test_unet_gradcam_is_the_same_on_both_keras_backends(tmp_path):
    """The U-Nets may be trained and explained on TensorFlow or torch: one saved model gives the
    same Grad-CAM maps under both backends."""
    import os
    import subprocess
    import sys

    def run(backend, *args):
        env = {**os.environ, "KERAS_BACKEND": backend}
        r = subprocess.run([sys.executable, "-c", _CAM, *args], capture_output=True, text=True, env=env, timeout=600)
        assert r.returncode == 0 and r.stdout.strip().endswith(backend), r.stderr[-2000:]

    model = str(tmp_path / "m.keras")
    run("tensorflow", model, "build")
    run("tensorflow", model, str(tmp_path / "tf.npy"))
    run("torch", model, str(tmp_path / "torch.npy"))
    a, b = np.load(tmp_path / "tf.npy"), np.load(tmp_path / "torch.npy")
    assert a.shape == (2, 64, 64) and a.max() > 0
    np.testing.assert_allclose(a, b, atol=2e-3)
