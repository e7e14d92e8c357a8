"""VD reported the way the paper does: per fold standardisation, per side scores, left-right
agreement (ICC, Spearman, Bland-Altman) and accuracy at the stated threshold.

Why standardise within each fold: each subject's out-of-fold logit comes from one of K models
trained on different subjects; their logits need not share a scale (one model may be more
confident than another), so pooling raw logits mixes scales. Each fold's logits are made
mean 0, SD 1 over that fold's subjects first; then the pooled scores are comparable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def within_fold_z(values: pd.Series, fold: pd.Series) -> pd.Series:
    """``values`` standardised (mean 0, SD 1, ddof 0) within each ``fold``."""
    g = values.groupby(fold)
    sd = g.transform(lambda v: v.std(ddof=0))
    return (values - g.transform("mean")) / sd.where(sd > 0)


def side_scores(clips: pd.DataFrame) -> pd.DataFrame:
    """Per loop: ``subject_id, side, fold, logit, side_z`` (the loop's logit standardised over
    its fold's loops)."""
    c = clips[["subject_id", "side", "fold", "logit"]].copy() if "side" in clips else None
    if c is None:
        c = clips[["subject_id", "fold", "logit"]].assign(side="unknown")
    c["side_z"] = within_fold_z(c.logit, c.fold)
    return c.reset_index(drop=True)


def icc(ratings: np.ndarray) -> dict:
    """Intraclass correlations of an ``n targets x k raters`` table without missing cells
    (Shrout & Fleiss 1979; McGraw & Wong 1996): ``icc1`` one-way, ``icc_a1`` two-way absolute
    agreement (Shrout-Fleiss ICC(2,1)), ``icc_c1`` two-way consistency (ICC(3,1))."""
    x = np.asarray(ratings, float)
    n, k = x.shape
    if n < 2 or k < 2 or not np.isfinite(x).all():
        raise ValueError(f"ICC needs at least 2 targets x 2 raters without missing values, got {n} x {k}")
    grand = x.mean()
    ss_rows = k * ((x.mean(1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(0) - grand) ** 2).sum()
    ss_tot = ((x - grand) ** 2).sum()
    ss_err = ss_tot - ss_rows - ss_cols
    msr, msc = ss_rows / (n - 1), ss_cols / (k - 1)
    mse = ss_err / ((n - 1) * (k - 1))
    msw = (ss_cols + ss_err) / (n * (k - 1))
    return {
        "icc1": (msr - msw) / (msr + (k - 1) * msw),
        "icc_a1": (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n),
        "icc_c1": (msr - mse) / (msr + (k - 1) * mse),
    }


def bland_altman(a, b) -> dict:
    """Mean difference (bias, ``a - b``), its SD and the 95 % limits of agreement."""
    d = np.asarray(a, float) - np.asarray(b, float)
    bias, sd = float(d.mean()), float(d.std(ddof=1))
    return {"bias": bias, "sd_diff": sd, "loa_low": bias - 1.96 * sd, "loa_high": bias + 1.96 * sd, "n": int(len(d))}


def left_right(sides: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Left-right agreement of ``side_z`` for subjects filmed on both sides. Returns the paired
    table (``subject_id, left, right, mean, diff``) and the metrics (``metric, estimate, ci_low,
    ci_high``: ICC(A,1), Spearman, Bland-Altman bias and limits; subject-bootstrap CIs)."""
    from scipy import stats

    w = sides[sides.side.isin(["left", "right"])].pivot_table(index="subject_id", columns="side", values="side_z")
    w = w.dropna() if {"left", "right"} <= set(w.columns) else pd.DataFrame(columns=["left", "right"])
    pairs = w.reset_index().rename_axis(columns=None)
    cols = ["metric", "estimate", "ci_low", "ci_high"]
    if len(pairs) < 3:
        return pairs, pd.DataFrame(columns=cols)
    pairs = pairs.assign(mean=(pairs.left + pairs.right) / 2, diff=pairs.left - pairs.right)
    L, R = pairs.left.to_numpy(), pairs.right.to_numpy()

    def stats_of(i):
        ba = bland_altman(L[i], R[i])
        return {
            "icc_a1_left_right": icc(np.column_stack([L[i], R[i]]))["icc_a1"],
            "spearman_left_right": stats.spearmanr(L[i], R[i])[0],
            "bland_altman_bias": ba["bias"],
            "bland_altman_loa_low": ba["loa_low"],
            "bland_altman_loa_high": ba["loa_high"],
        }

    est = stats_of(np.arange(len(L)))
    rng = np.random.default_rng(seed)
    boots = pd.DataFrame([stats_of(rng.integers(0, len(L), len(L))) for _ in range(n_boot)])
    rows = [
        {
            "metric": k,
            "estimate": v,
            "ci_low": boots[k].quantile(0.025) if n_boot else np.nan,
            "ci_high": boots[k].quantile(0.975) if n_boot else np.nan,
        }
        for k, v in est.items()
    ]
    return pairs, pd.DataFrame(rows, columns=cols).assign(n=len(pairs))
