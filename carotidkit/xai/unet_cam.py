"""Grad-CAM for the Keras U-Nets of 02 (Seg-Grad-CAM: Vinogradova et al., AAAI 2020).

The explained score is the sum of the plaque probability over the model's own predicted plaque
(over all pixels when it predicts none); the gradient is taken at the encoder's bottleneck
(``unet.BACKBONES[...][2]``), weighted per channel and upsampled to the image. The ensemble's
map is the mean of the backbones' maps (each normalised to [0, 1]).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def gradcam(model, images: np.ndarray, layer_name: str) -> np.ndarray:
    """Grad-CAM maps ``[N, H, W]`` in [0, 1] for grayscale images ``[N, H, W]`` (uint8 or float)."""
    import cv2

    from ..segment import keras_quietly

    keras = keras_quietly()
    grad_model = keras.Model(model.inputs, [model.get_layer(layer_name).output, model.output])
    x = np.asarray(images, np.float32)[..., None]
    if keras.backend.backend() == "torch":
        import torch

        feats, prob = grad_model(torch.from_numpy(x), training=False)
        region = (prob > 0.5).to(prob.dtype)
        has = region.sum(dim=(1, 2, 3), keepdim=True) > 0
        region = torch.where(has, region, torch.ones_like(region))
        score = (prob * region).sum(dim=(1, 2, 3))
        (grads,) = torch.autograd.grad(score.sum(), feats)
        w = grads.mean(dim=(1, 2), keepdim=True)
        cam = torch.relu((w * feats).sum(dim=-1)).detach().cpu().numpy()
    else:
        import tensorflow as tf

        xt = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            feats, prob = grad_model(xt, training=False)
            region = tf.cast(prob > 0.5, prob.dtype)
            has = tf.reduce_sum(region, axis=(1, 2, 3), keepdims=True) > 0
            region = tf.where(has, region, tf.ones_like(region))
            score = tf.reduce_sum(prob * region, axis=(1, 2, 3))
        grads = tape.gradient(score, feats)
        w = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(w * feats, axis=-1)).numpy()
    H, W = images.shape[1:3]
    out = np.stack([cv2.resize(c, (W, H), interpolation=cv2.INTER_LINEAR) for c in cam])
    mx = out.reshape(len(out), -1).max(1)[:, None, None]
    return np.where(mx > 0, out / np.maximum(mx, 1e-12), 0.0)


def unet_gradcam(unet_dir, n_per_group: int = 3) -> dict:
    """Grad-CAM of each backbone and of the ensemble on test images with and without plaque.

    Returns ``{"images", "masks", "image_ids", "has_plaque", "maps": {model: [N, H, W]},
    "mass_in_plaque": DataFrame(model, image_id, share_of_cam_in_plaque, plaque_area_share)}``.
    """
    from pathlib import Path

    from .. import io
    from ..layout import Unet
    from ..segment import keras_quietly
    from ..segment.unet import BACKBONES, CUSTOM_OBJECTS

    keras = keras_quietly()
    unet_dir = Path(unet_dir)
    meta = io.read_json(unet_dir / Unet.NAMES["ensemble"])
    z = np.load(unet_dir / Unet.NAMES["test_probs"])
    masks, images, ids = z["masks"], z["images"], z["image_ids"]
    if images.ndim == 4:
        images, masks = images[..., 0], masks[..., 0]
    has = masks.reshape(len(masks), -1).max(1) > 0
    pick = np.concatenate([np.where(has)[0][:n_per_group], np.where(~has)[0][:n_per_group]])
    imgs, msk = images[pick], masks[pick] > 0
    maps = {}
    for b in meta["backbones"]:
        m = keras.models.load_model(unet_dir / b / "best.keras", custom_objects=CUSTOM_OBJECTS, compile=False)
        maps[b] = gradcam(m, imgs, BACKBONES[b][2])
    maps["ensemble"] = np.mean([maps[b] for b in meta["backbones"]], axis=0)
    rows = []
    for name, mp in maps.items():
        for k, i in enumerate(pick):
            if msk[k].any():
                rows.append(
                    {
                        "model": name,
                        "image_id": ids[i],
                        "share_of_cam_in_plaque": float(mp[k][msk[k]].sum() / max(mp[k].sum(), 1e-12)),
                        "plaque_area_share": float(msk[k].mean()),
                    }
                )
    return {
        "images": imgs,
        "masks": msk,
        "image_ids": ids[pick],
        "has_plaque": has[pick],
        "maps": maps,
        "mass_in_plaque": pd.DataFrame(rows),
    }
