"""The saved three-U-Net ensemble: train it (the 02 stage), load it, segment new images.

``PlaqueSegmenter.load(run_dir / "unet")`` restores the models and the preprocessing recorded
at training time; ``segment(paths_or_arrays)`` cleans raw exports exactly as 01_cleaning did
(overlays inpainted, scan area cropped, squared, resized), votes the models pixel-wise and
returns masks, probabilities and plaque areas.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import clean, io
from ..imaging import read_image
from ..layout import Unet
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
            seg = PlaqueSegmenter.load("runs/workshop/unet")
            res = seg.segment(["my_export.png"], pixel_spacing_mm=(0.07, 0.09))
            res.table[["plaque_area_px", "plaque_area_mm2"]]
        """
        from . import keras_quietly
        from .unet import CUSTOM_OBJECTS

        keras = keras_quietly()

        unet_dir = Path(unet_dir)
        meta = io.read_json(unet_dir / Unet.NAMES["ensemble"])
        models = {
            b: keras.models.load_model(unet_dir / b / f"{which}.keras", custom_objects=CUSTOM_OBJECTS, compile=False)
            for b in meta["backbones"]
        }
        return cls(models, meta)

    def clean(self, image) -> clean.CleanedExport:
        """Clean one raw export (path or array) as 01_cleaning did: the model input (``.image``),
        the inpainted full-resolution export (``.cleaned``) and the geometry between them."""
        img = read_image(image, color=True) if isinstance(image, (str, Path)) else np.asarray(image)
        p = self.meta["preprocessing"]
        return clean.clean_export(img, p["model_size_px"], p["square"], p["undo_stretch"], p["inpaint_radius"])

    def preprocess(self, image) -> tuple[np.ndarray, clean.Geometry]:
        """Clean one raw export (path or array) into the model's input, as 01_cleaning did."""
        ce = self.clean(image)
        return ce.image, ce.geom

    def predict_probs(self, X: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Each model's plaque probability ``[n_models, N, S, S]`` for model-size images ``X``."""
        X = np.asarray(X, np.float32)
        if X.ndim == 3:
            X = X[..., None]
        return np.stack([predict(m, X, batch_size)[..., 0] for m in self.models.values()])

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


def predict(model, X: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """The U-Nets' one inference path (02's evaluation, subject measurement, the benchmark).

    On the torch backend the model runs as its fused torch twin (:mod:`carotidkit.segment.fused`:
    BatchNorm folded into the convolutions, NCHW throughout): the same probabilities (largest
    difference ~1e-5 on cleaned images) at 2.3-3.3x ``model.predict``'s rate
    (``bench --only speedups``). Other backends, or a layer the twin cannot translate, use
    ``model.predict``."""
    X = np.asarray(X, np.float32)
    twin = fused_twin(model)
    if twin is None:
        return model.predict(X, batch_size=batch_size, verbose=0)
    return twin(X, batch_size)


_TWINS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def fused_twin(model):
    """The cached :class:`~carotidkit.segment.fused.FusedUNet` of ``model``, or None (not the torch
    backend, or untranslatable). Rebuilt when any weight has changed since (torch's version
    counters), so a model trained further never predicts with stale weights."""
    from . import keras_quietly

    if keras_quietly().backend.backend() != "torch":
        return None
    version = sum(int(w.value._version) for w in model.weights)
    hit = _TWINS.get(model)
    if hit is not None and hit[0] == version:
        return hit[1]
    from .fused import fuse

    try:
        twin = fuse(model)
    except NotImplementedError:
        twin = None
    _TWINS[model] = (version, twin)
    return twin
