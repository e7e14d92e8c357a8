"""The handcrafted baseline VD is compared with: whole-loop image statistics and the classic
carotid measurements an image-processing pipeline gets without deep learning.

Per loop (:func:`loop_features`): grey-level percentiles (10th, 50th, 90th) of all pixels of all
frames, the mean per-pixel temporal SD (pulsatility and motion), and the lumen diameter and its
distension, measured as a sonographer's edge-tracking software does it, on the column-averaged
depth profile of the loop's central half: the lumen is the run of dark rows around the darkest
row, its edges where the profile crosses halfway between the lumen's grey and the walls'.
Per subject the features are averaged over sides; :func:`cross_fit_baseline` fits an L2 logistic
regression on standardised features per outer fold (the network's folds) and predicts each
held-out subject once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURES = ("grey_p10", "grey_p50", "grey_p90", "temporal_sd", "lumen_mm", "distension")


def _lumen_edges(profile: np.ndarray) -> tuple[float, float] | None:
    """Sub-pixel ``(top, bottom)`` rows of the dark lumen in one depth profile, or None."""
    n = len(profile)
    lo, hi = n // 6, n - n // 6  # the vessel is never at the very edge of the field
    c = lo + int(np.argmin(profile[lo:hi]))
    floor = profile[c]
    wall = max(profile[:c].max() if c else floor, 0.0), max(profile[c:].max(), 0.0)
    half_top, half_bot = (floor + wall[0]) / 2, (floor + wall[1]) / 2
    top = c
    while top > 0 and profile[top - 1] < half_top:
        top -= 1
    bot = c
    while bot < n - 1 and profile[bot + 1] < half_bot:
        bot += 1
    if top == 0 or bot == n - 1 or bot <= top:
        return None

    def cross(i, j, level):  # linear interpolation between rows i (dark) and j (bright)
        a, b = profile[i], profile[j]
        return i + (j - i) * (level - a) / (b - a) if b != a else float(i)

    return cross(top, top - 1, half_top), cross(bot, bot + 1, half_bot)


def loop_features(frames: np.ndarray, pixel_spacing_mm: float | None = None) -> dict:
    """The baseline's features of one loop ``[T, H, W]`` (uint8 or float); lengths in mm when
    ``pixel_spacing_mm`` is known, else in pixels. ``lumen_mm``: end-diastolic (smallest)
    diameter; ``distension``: (largest - smallest) / smallest over the loop (NaN where the lumen
    was not found in some frame)."""
    f = np.asarray(frames, np.float32)
    if f.ndim != 3 or f.shape[0] < 2:
        raise ValueError(f"a loop is [frames, height, width] with at least 2 frames, got shape {f.shape}")
    p10, p50, p90 = np.percentile(f, [10, 50, 90])
    W = f.shape[2]
    prof = f[:, :, W // 4 : W - W // 4].mean(2)  # [T, H] depth profiles of the central half
    k = np.array([1, 2, 3, 2, 1], np.float32) / 9
    prof = np.stack([np.convolve(p, k, mode="same") for p in prof])
    edges = [_lumen_edges(p) for p in prof]
    diam = np.array([b - a if e else np.nan for e in edges for a, b in [e or (0, 0)]], float)
    scale = float(pixel_spacing_mm) if pixel_spacing_mm else 1.0
    ok = np.isfinite(diam).all() and diam.min() > 0
    return {
        "grey_p10": float(p10),
        "grey_p50": float(p50),
        "grey_p90": float(p90),
        "temporal_sd": float(f.std(0).mean()),
        "lumen_mm": float(np.nanmin(diam) * scale) if np.isfinite(diam).any() else np.nan,
        "distension": float((diam.max() - diam.min()) / diam.min()) if ok else np.nan,
    }


def cache_features(cache, clips: pd.DataFrame) -> pd.DataFrame:
    """:func:`loop_features` of every cached loop (``clips.row`` indexes ``cache``); the cache's
    pixel spacing is the loop's (``pixel_spacing_mm``) scaled from its width (``src_width_px``)
    to the cache's side; lengths stay in cache pixels where either is unknown."""
    rows = []
    side = cache.shape[2]
    for r in clips.itertuples():
        sp, orig = getattr(r, "pixel_spacing_mm", np.nan), getattr(r, "src_width_px", np.nan)
        known = sp is not None and orig is not None and np.isfinite(sp) and np.isfinite(orig)
        spacing = float(sp) * float(orig) / side if known else None
        rows.append({"subject_id": r.subject_id, "clip_id": r.clip_id, **loop_features(cache[r.row], spacing)})
    return pd.DataFrame(rows)


def cross_fit_baseline(features: pd.DataFrame, folds: pd.DataFrame, label: str = "label") -> pd.DataFrame:
    """Out-of-fold baseline logits: per subject the side-averaged features; per outer fold an L2
    logistic regression (median-imputed, standardised) fitted on the other folds' subjects.
    Returns ``subject_id, fold, baseline_logit`` and the features."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cols = list(FEATURES)
    subj = features.groupby("subject_id")[cols].mean().reset_index()
    d = folds[["subject_id", "fold", label]].merge(subj, on="subject_id", how="inner")
    out = []
    for f in sorted(d.fold.unique()):
        tr, te = d[d.fold != f], d[d.fold == f]
        model = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(C=1.0))
        model.fit(tr[cols], tr[label].astype(int))
        out.append(te.assign(baseline_logit=model.decision_function(te[cols])))
    return pd.concat(out, ignore_index=True)[["subject_id", "fold", "baseline_logit", *cols]]
