"""Segmentation metrics with bootstrap confidence intervals (numpy only).

Conventions, as in Rulloni et al.: Dice and IoU are computed per image on images **with**
plaque; on plaque-free images what matters is false alarms (any predicted plaque, and its area).
Per-plaque detection matches connected components (a true plaque is found when a predicted
component overlaps it). Every summary comes with a percentile bootstrap CI over images.
"""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd


def dice(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Dice of two binary masks (1.0 when both are empty)."""
    t, p = np.asarray(y_true, bool), np.asarray(y_pred, bool)
    s = t.sum() + p.sum()
    return 1.0 if s == 0 else float(2 * (t & p).sum() / s)


def iou(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    t, p = np.asarray(y_true, bool), np.asarray(y_pred, bool)
    u = (t | p).sum()
    return 1.0 if u == 0 else float((t & p).sum() / u)


def remove_small(mask: np.ndarray, min_px: int) -> np.ndarray:
    """Drop connected components smaller than ``min_px`` pixels."""
    if min_px <= 1:
        return np.asarray(mask, bool)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(np.asarray(mask, np.uint8), connectivity=8)
    keep = np.zeros(n, bool)
    keep[1:] = stats[1:, cv2.CC_STAT_AREA] >= min_px
    return keep[lab]


def plaque_matches(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[int, int, int]:
    """(true plaques found, true plaques, predicted components that overlap a true plaque) and
    the number of predicted components, for per-plaque precision/recall."""
    nt, lt = cv2.connectedComponents(np.asarray(y_true, np.uint8), connectivity=8)
    npr, lp = cv2.connectedComponents(np.asarray(y_pred, np.uint8), connectivity=8)
    found = len(set(np.unique(lt[(lt > 0) & (lp > 0)])))
    hit = len(set(np.unique(lp[(lt > 0) & (lp > 0)])))
    return found, nt - 1, hit, npr - 1


def per_image(y_true: np.ndarray, y_pred: np.ndarray, px_area_mm2=None, image_ids=None) -> pd.DataFrame:
    """One row per image: plaque truth, Dice, IoU, areas, plaque matches."""
    rows = []
    for k in range(len(y_true)):
        t, p = y_true[k].astype(bool).squeeze(), y_pred[k].astype(bool).squeeze()
        found, n_true, hit, n_pred = plaque_matches(t, p)
        a = float(px_area_mm2[k]) if px_area_mm2 is not None else np.nan
        rows.append(
            {
                "image_id": image_ids[k] if image_ids is not None else k,
                "has_plaque": bool(t.any()),
                "dice": dice(t, p) if t.any() else np.nan,
                "iou": iou(t, p) if t.any() else np.nan,
                "true_area_px": int(t.sum()),
                "pred_area_px": int(p.sum()),
                "true_area_mm2": t.sum() * a,
                "pred_area_mm2": p.sum() * a,
                "any_predicted": bool(p.any()),
                "plaques_true": n_true,
                "plaques_found": found,
                "pred_components": n_pred,
                "pred_components_hit": hit,
            }
        )
    return pd.DataFrame(rows)


def _summaries(df: pd.DataFrame) -> dict[str, float]:
    pl, free = df[df.has_plaque], df[~df.has_plaque]
    rec = pl.plaques_found.sum() / max(pl.plaques_true.sum(), 1)
    prec = df.pred_components_hit.sum() / max(df.pred_components.sum(), 1)
    out = {
        "dice_mean": pl.dice.mean(),
        "dice_median": pl.dice.median(),
        "iou_mean": pl.iou.mean(),
        "iou_median": pl.iou.median(),
        "false_alarm_rate": free.any_predicted.mean() if len(free) else np.nan,
        "false_positive_area_px": free.pred_area_px.mean() if len(free) else np.nan,
        "plaque_recall": rec,
        "plaque_precision": prec,
        "plaque_f1": 2 * prec * rec / (prec + rec) if prec + rec > 0 else 0.0,
    }
    if pl.true_area_mm2.notna().any():
        d = pl.pred_area_mm2 - pl.true_area_mm2
        out.update(
            area_bias_mm2=d.mean(),
            area_loa_low_mm2=d.mean() - 1.96 * d.std(),
            area_loa_high_mm2=d.mean() + 1.96 * d.std(),
        )
    return out


def _boot_summaries(df: pd.DataFrame, P: np.ndarray, F: np.ndarray, est: dict) -> dict[str, np.ndarray]:
    """:func:`_summaries` of every bootstrap replicate at once: row ``r`` of ``P`` / ``F`` holds
    replicate ``r``'s plaque / plaque-free rows of ``df``. Same statistics, NaNs skipped as pandas does."""
    import warnings

    def col(name, rows):
        return df[name].to_numpy(float)[rows]

    n_boot = len(P)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN replicates give NaN, dropped later
        out = {}
        for m in ("dice", "iou"):
            v = col(m, P)
            out[f"{m}_mean"] = np.nanmean(v, 1) if v.shape[1] else np.full(n_boot, np.nan)
            out[f"{m}_median"] = np.nanmedian(v, 1) if v.shape[1] else np.full(n_boot, np.nan)
        if F.shape[1]:
            out["false_alarm_rate"] = col("any_predicted", F).mean(1)
            out["false_positive_area_px"] = col("pred_area_px", F).mean(1)
        else:
            out["false_alarm_rate"] = out["false_positive_area_px"] = np.full(n_boot, np.nan)
        found, true = np.nansum(col("plaques_found", P), 1), np.nansum(col("plaques_true", P), 1)
        rec = found / np.maximum(true, 1)
        hits = np.nansum(col("pred_components_hit", P), 1) + np.nansum(col("pred_components_hit", F), 1)
        comps = np.nansum(col("pred_components", P), 1) + np.nansum(col("pred_components", F), 1)
        prec = hits / np.maximum(comps, 1)
        out.update(plaque_recall=rec, plaque_precision=prec)
        out["plaque_f1"] = np.where(prec + rec > 0, 2 * prec * rec / np.where(prec + rec > 0, prec + rec, 1), 0.0)
        if "area_bias_mm2" in est:
            d = col("pred_area_mm2", P) - col("true_area_mm2", P)
            mean, sd = np.nanmean(d, 1), np.nanstd(d, 1, ddof=1)
            out.update(area_bias_mm2=mean, area_loa_low_mm2=mean - 1.96 * sd, area_loa_high_mm2=mean + 1.96 * sd)
    return out


def summarize(df: pd.DataFrame, n_boot: int = 1000, seed: int = 0, ci: float = 0.95) -> pd.DataFrame:
    """Tidy table ``metric, estimate, ci_low, ci_high, n_images`` with bootstrap CIs over images
    (resampled within plaque and plaque-free images, so both parts keep their size).

    Example:
        summarize(per_image(masks, preds))
    """
    est = _summaries(df)
    rng = np.random.default_rng(seed)
    pl_idx, free_idx = np.where(df.has_plaque.values)[0], np.where(~df.has_plaque.values)[0]
    # the replicates' rows, drawn in the same order as one replicate at a time
    P = np.empty((n_boot, len(pl_idx)), int)
    F = np.empty((n_boot, len(free_idx)), int)
    for r in range(n_boot):
        if len(pl_idx):
            P[r] = rng.choice(pl_idx, len(pl_idx))
        if len(free_idx):
            F[r] = rng.choice(free_idx, len(free_idx))
    boots = _boot_summaries(df, P, F, est)
    a = (1 - ci) / 2
    rows = []
    for k, v in est.items():
        b = np.asarray(boots.get(k, []), float)
        b = b[np.isfinite(b)]
        rows.append(
            {
                "metric": k,
                "estimate": float(v),
                "ci_low": float(np.quantile(b, a)) if b.size else np.nan,
                "ci_high": float(np.quantile(b, 1 - a)) if b.size else np.nan,
                "n_images": int(
                    len(pl_idx)
                    if k.startswith(("dice", "iou", "area"))
                    else len(free_idx)
                    if k.startswith(("false",))
                    else len(df)
                ),
            }
        )
    return pd.DataFrame(rows)


def paired_dice(per_img: pd.DataFrame, reference: str, n_boot: int = 1000, seed: int = 0, ci: float = 0.95):
    """Each model's Dice next to ``reference``'s on the same plaque images, with the paired
    difference (model minus reference) and its bootstrap CI over images. With a second reader as
    the reference: "as good as a second specialist", measured; with the ensemble: whether any
    member beats it beyond noise. ``per_img`` is :func:`per_image` rows of every model and of
    ``reference`` (all scored against the same annotation), with a ``model`` column.

    Example:
        paired_dice(predictions, "annotator 2")
    """
    ref = per_img[per_img.model == reference].set_index("image_id")
    rng = np.random.default_rng(seed)
    rows = []
    for name, df in per_img[per_img.model != reference].groupby("model", sort=False):
        df = df.set_index("image_id")
        both = df.index.intersection(ref.index)
        pl = both[df.loc[both, "has_plaque"].to_numpy(bool)]
        a, b = df.loc[pl, "dice"].to_numpy(float), ref.loc[pl, "dice"].to_numpy(float)
        d = a - b
        idx = rng.integers(0, len(d), (n_boot, len(d))) if len(d) else np.zeros((0, 0), int)
        boots = d[idx].mean(1) if len(d) else np.array([])
        lo, hi = np.quantile(boots, [(1 - ci) / 2, (1 + ci) / 2]) if boots.size else (np.nan, np.nan)
        rows.append(
            {
                "model": name,
                "dice_model": a.mean() if len(a) else np.nan,
                "reference": reference,
                "dice_reference": b.mean() if len(b) else np.nan,
                "difference": d.mean() if len(d) else np.nan,
                "ci_low": float(lo),
                "ci_high": float(hi),
                "n_images": len(d),
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- ensemble


def vote(probs: np.ndarray, mode: str = "majority", threshold: float = 0.5) -> np.ndarray:
    """Combine ``[n_models, N, H, W, ...]`` probabilities pixel-wise.

    ``majority``: a pixel is plaque when more than half of the models say so;
    ``mean``: when the mean probability exceeds ``threshold``.
    """
    probs = np.asarray(probs, np.float32)
    if mode == "majority":
        return (probs > threshold).sum(0) * 2 > probs.shape[0]
    if mode == "mean":
        return probs.mean(0) > threshold
    raise ValueError(f"vote mode must be 'majority' or 'mean', not {mode!r}")


def disagreement(probs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Share of models that disagree with the majority at each pixel (0 = unanimous)."""
    votes = (np.asarray(probs) > threshold).astype(np.float32)
    frac = votes.mean(0)
    return np.minimum(frac, 1 - frac)
