"""Notebook 03's stage: cross-fitted VD and its evaluation against the label (and the truth).

``run(settings)`` (or ``run(run_dir=..., architecture=..., folds=..., epochs=...)``) trains (or resumes) the K fold
models, writes ``layout.vd`` and returns a :class:`VdResult` of tidy tables.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import io
from ..layout import RunLayout
from ..settings import VdSettings
from ..stages import Progress, StageResult, is_synthetic, stage
from .train import cross_fit


@dataclass
class VdResult(StageResult):
    vd: pd.DataFrame  # subject_id, vd_logit, vd_z, vd_percentile, fold, n_clips (+ label, truth)
    metrics: pd.DataFrame  # metric, estimate, ci_low, ci_high
    log: pd.DataFrame  # fold, epoch, train_loss, val_loss, val_auc, seconds
    folds: pd.DataFrame
    clips: pd.DataFrame
    roc: pd.DataFrame  # fpr, tpr
    calibration: pd.DataFrame  # decile: predicted, observed
    errors: pd.DataFrame
    baseline: pd.DataFrame  # subject_id, fold, baseline_logit, the handcrafted features
    left_right: pd.DataFrame  # subject_id, left, right, mean, diff (within-fold side scores)
    agreement: pd.DataFrame  # metric, estimate, ci_low, ci_high, n: left-right ICC, Spearman, Bland-Altman

    def journal_tables(self) -> dict[str, pd.DataFrame]:
        """The summary's numbers as ``facts`` (what the findings cite)."""
        from ..findings import flat_facts

        return {"facts": flat_facts(self.summary)}

    def findings(self):
        """What the video network learned, in words (:func:`carotidkit.findings.vd_findings`)."""
        from ..findings import vd_findings

        return vd_findings(self)

    def comparison(self) -> pd.DataFrame:
        """Network vs the handcrafted baseline on the same folds: ``measure, network, baseline``
        (estimates with 95 % CIs as text) and the paired difference where there is one."""
        m = self.metrics.set_index("metric")

        def fmt(k):
            if k not in m.index:
                return ""
            r = m.loc[k]
            ci = f" [{r.ci_low:.3f}, {r.ci_high:.3f}]" if np.isfinite(r.ci_low) else ""
            return f"{r.estimate:.3f}{ci}"

        names = {
            "auc": "hypertension AUROC",
            "accuracy": "accuracy (p > 0.5)",
            "balanced_accuracy": "balanced accuracy (p > 0.5)",
            "spearman_vd_true": "Spearman with vd_true (simulated)",
            "partial_spearman_vd_true": "partial Spearman given age, sex, SBP",
        }
        rows = [
            {"measure": v, "network": fmt(k), "baseline": fmt(f"{k}_baseline"), "network - baseline": ""}
            for k, v in names.items()
            if k in m.index
        ]
        if "delta_auc" in m.index:
            rows[0]["network - baseline"] = fmt("delta_auc")
        return pd.DataFrame(rows)

    def example_subjects(self) -> pd.DataFrame:
        """Subjects at the low end, the median and the high end of VD (one clip each)."""
        v = self.vd.sort_values("vd_logit").reset_index(drop=True)
        pick = {"low VD": v.iloc[0], "median VD": v.iloc[len(v) // 2], "high VD": v.iloc[-1]}
        rows = [
            {
                "which": k,
                "subject_id": r.subject_id,
                "vd_percentile": r.vd_percentile,
                "clip_id": self.clips[self.clips.subject_id == r.subject_id].clip_id.iloc[0],
            }
            for k, r in pick.items()
        ]
        return pd.DataFrame(rows)

    def example_loops(self) -> tuple[list, list]:
        """Frames ``[T, H, W]`` of the low/median/high VD examples, and their titles."""
        from ..data.video import load_video

        ex = self.example_subjects()
        paths = self.clips.set_index("clip_id").path
        loops = []
        for c in ex.clip_id:
            p = str(paths[c])
            loops.append(np.load(p)["frames"] if p.endswith(".npz") else load_video(p).frames)
        titles = [f"{r.which}: {r.vd_percentile:.0f}th percentile" for r in ex.itertuples()]
        return loops, titles

    def geometry(self) -> pd.DataFrame:
        """Where each loop's pixel spacing came from (``ultrasound region``, ``PixelSpacing``,
        ``file``, ``unknown``) and how much of it was masked as burned-in overlay."""
        c = self.clips
        if "spacing_source" not in c:
            return pd.DataFrame(columns=["spacing_source", "loops", "median_spacing_mm", "median_overlay_pct"])
        g = c.groupby("spacing_source", dropna=False)
        return pd.DataFrame(
            {
                "loops": g.size(),
                "median_spacing_mm": g.pixel_spacing_mm.median(),
                "median_overlay_pct": 100 * g.overlay_fraction.median(),
            }
        ).reset_index()

    def redaction_example(self):
        """``(frame, overlay mask, title)`` of the loop with the most burned-in overlay (real
        loops are masked before caching), or None when no loop had any."""
        from ..clean.core import cine_overlays
        from ..data.video import load_video
        from ..imaging import scan_box

        c = self.clips
        if "overlay_fraction" not in c or not (c.overlay_fraction > 0).any():
            return None
        r = c.loc[c.overlay_fraction.idxmax()]
        v = load_video(r.path)
        box = v.scan_box or scan_box(v.frames.max(0))
        return v.frames[0], cine_overlays(v.frames, box), f"{r.clip_id}: {100 * r.overlay_fraction:.1f} % masked"

    def by_group(self) -> pd.DataFrame:
        """VD (z) by hypertension and by age decade: ``group, level, n, mean, sd``."""
        v = self.vd.assign(
            age_decade=(self.vd.age_years // 10 * 10).astype("Int64").astype(str) + "s",
            hypertension=self.vd.label.map({0: "no", 1: "yes"}),
        )
        rows = []
        for g in ("hypertension", "age_decade"):
            t = v.groupby(g).vd_z.agg(["size", "mean", "std"]).reset_index()
            rows.append(t.rename(columns={g: "level", "size": "n", "std": "sd"}).assign(group=g))
        return pd.concat(rows, ignore_index=True)[["group", "level", "n", "mean", "sd"]]


def headline(metrics: pd.DataFrame) -> str:
    """One line of what 03 found (also written to ``summary.json`` for the report index)."""
    m = metrics.set_index("metric")
    s = (
        f"hypertension AUROC {m.estimate['auc']:.3f} [{m.ci_low['auc']:.3f}, {m.ci_high['auc']:.3f}], "
        f"accuracy {m.estimate['accuracy']:.3f} (paper {PAPER_ACCURACY:.3f}), "
        f"balanced accuracy {m.estimate['balanced_accuracy']:.3f}"
    )
    if "delta_auc" in m.index:
        s += (
            f"; vs image-statistics baseline AUROC {m.estimate['auc_baseline']:.3f}: "
            f"delta {m.estimate['delta_auc']:+.3f} [{m.ci_low['delta_auc']:+.3f}, {m.ci_high['delta_auc']:+.3f}]"
        )
    if "spearman_vd_true" in m.index:
        s += (
            f"; Spearman(VD, vd_true) {m.estimate['spearman_vd_true']:.2f}, partial given age/sex/SBP "
            f"{m.estimate['partial_spearman_vd_true']:.2f}"
        )
    return s


def partial_spearman(x, y, covars: pd.DataFrame) -> float:
    """Spearman correlation of x and y after removing (rank-)linear effects of the covariates."""
    from scipy import stats

    R = np.column_stack([np.ones(len(x))] + [stats.rankdata(covars[c]) for c in covars])
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    ex = rx - R @ np.linalg.lstsq(R, rx, rcond=None)[0]
    ey = ry - R @ np.linalg.lstsq(R, ry, rcond=None)[0]
    return float(np.corrcoef(ex, ey)[0, 1])


#: the Sound of Death paper's hypertension accuracy (held-out, at its stated threshold)
PAPER_ACCURACY = 0.757


def _metric_fns() -> dict:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

    return {
        "auc": lambda yy, ss: roc_auc_score(yy, ss),
        "accuracy": lambda yy, ss: accuracy_score(yy, ss > 0),
        "balanced_accuracy": lambda yy, ss: balanced_accuracy_score(yy, ss > 0),
    }


def _truth_rows(score: pd.Series, vd: pd.DataFrame, truth, cohort, suffix: str = "") -> list[dict]:
    """Spearman and partial Spearman (given age, sex, SBP) of ``score`` with ``vd_true``."""
    from scipy import stats

    if truth is None or "vd_true" not in truth:
        return []
    d = vd[["subject_id"]].assign(s=score.to_numpy()).merge(truth[["subject_id", "vd_true"]], on="subject_id")
    rows = [{"metric": f"spearman_vd_true{suffix}", "estimate": stats.spearmanr(d.s, d.vd_true)[0]}]
    if cohort is not None:
        d = d.merge(cohort[["subject_id", "age_years", "sex", "sbp_mmhg"]], on="subject_id")
        cov = pd.DataFrame({"age": d.age_years, "male": (d.sex == "male").astype(float), "sbp": d.sbp_mmhg})
        rows.append({"metric": f"partial_spearman_vd_true{suffix}", "estimate": partial_spearman(d.s, d.vd_true, cov)})
    return rows


def evaluate(
    vd: pd.DataFrame,
    n_boot: int = 1000,
    seed: int = 0,
    truth: pd.DataFrame | None = None,
    cohort: pd.DataFrame | None = None,
    baseline: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """AUROC, accuracy and balanced accuracy (logit > 0, i.e. predicted probability > 0.5) with
    subject-bootstrap CIs; with ``baseline`` (``subject_id, baseline_logit``) the same for the
    baseline and the paired difference ``delta_auc`` (network - baseline, same resampled subjects
    for both); on synthetic data the Spearman and partial Spearman (given age, sex, SBP) of each
    score with ``vd_true``."""
    y, s = vd.label.to_numpy(), vd.vd_logit.to_numpy()
    scores = {"": s}
    if baseline is not None:
        bl = vd[["subject_id"]].merge(baseline[["subject_id", "baseline_logit"]], on="subject_id", how="left")
        if bl.baseline_logit.isna().any():
            raise ValueError(f"baseline: {int(bl.baseline_logit.isna().sum())} subjects with a VD have no baseline")
        scores["_baseline"] = bl.baseline_logit.to_numpy()
    fns = _metric_fns()
    two = len(np.unique(y)) == 2
    est = {(n, k): (fn(y, sc) if two else np.nan) for k, sc in scores.items() for n, fn in fns.items()}
    if baseline is not None:
        est[("delta_auc", "")] = est[("auc", "")] - est[("auc", "_baseline")]
    rng = np.random.default_rng(seed)
    boots = {key: [] for key in est}
    for _ in range(n_boot):
        i = rng.integers(0, len(y), len(y))
        if len(np.unique(y[i])) < 2:
            continue
        b = {(n, k): fn(y[i], sc[i]) for k, sc in scores.items() for n, fn in fns.items()}
        if baseline is not None:
            b[("delta_auc", "")] = b[("auc", "")] - b[("auc", "_baseline")]
        for key, v in b.items():
            boots[key].append(v)
    rows = []
    for (n, k), e in est.items():
        lo, hi = np.percentile(boots[(n, k)], [2.5, 97.5]) if boots[(n, k)] else (np.nan, np.nan)
        rows.append({"metric": f"{n}{k}", "estimate": e, "ci_low": lo, "ci_high": hi})
    rows += _truth_rows(vd.vd_logit, vd, truth, cohort)
    if baseline is not None:
        rows += _truth_rows(pd.Series(scores["_baseline"]), vd, truth, cohort, "_baseline")
    return pd.DataFrame(rows)


def _summary(metrics: pd.DataFrame, out: dict, vd: pd.DataFrame, agreement: pd.DataFrame, seconds: float) -> dict:
    """What 03 records in ``summary.json``."""
    m = metrics.set_index("metric")
    summary = {"seconds": round(seconds, 1), "paper_accuracy": PAPER_ACCURACY}
    for k in ("auc", "accuracy", "balanced_accuracy", "auc_baseline", "accuracy_baseline", "delta_auc"):
        if k in m.index:
            summary[k] = m.estimate[k]
            summary[f"{k}_ci"] = [m.ci_low[k], m.ci_high[k]]
    summary.update(n_subjects=int(len(vd)), n_clips=int(len(out["clips"])), unreadable_videos=int(len(out["errors"])))
    for k in ("spearman_vd_true", "partial_spearman_vd_true"):
        for kk in (k, f"{k}_baseline"):
            if kk in m.index:
                summary[kk] = m.estimate[kk]
    if len(agreement):
        a = agreement.set_index("metric")
        summary["left_right"] = {k: {"estimate": a.estimate[k], "ci": [a.ci_low[k], a.ci_high[k]]} for k in a.index} | {
            "n_subjects": int(a.n.iloc[0])
        }
    summary["headline"] = headline(metrics)
    return summary


def _baseline(lay: RunLayout, out: dict) -> pd.DataFrame:
    """The handcrafted baseline, cross-fitted on the network's folds (``baseline.parquet``)."""
    from .baseline import cache_features, cross_fit_baseline

    feats = cache_features(out["cache"], out["clips"])
    bl = cross_fit_baseline(feats, out["folds"], label="label")
    io.write_parquet(lay.vd.baseline, bl)
    return bl


@stage(VdSettings)
def run(cfg: VdSettings, lay: RunLayout, progress: Progress) -> VdResult:
    """Train (or resume) the cross-fitted video model and evaluate its out-of-fold VD against
    the label, the handcrafted baseline (same folds) and, on simulated data, the truth; score
    the sides' left-right agreement.

    Settings: :class:`carotidkit.settings.VdSettings` (``architecture``, ``folds``, ``epochs``,
    ``batch_size``, ``learning_rate``, ``frames``, ``period``, ``input_size_px``, ``clip_seconds``,
    ``width``, ``depth``, ``patience``, ``pretrain_epochs``, ``weights_path``, ``n_boot``, ...).

    Example:
        res = run(run_dir="runs/smoke", epochs=1, folds=2)
        res.metrics
    """
    from sklearn.metrics import roc_curve

    from .agreement import left_right, side_scores

    t0 = time.perf_counter()
    out = cross_fit(cfg, progress=progress)
    seconds = time.perf_counter() - t0
    cohort = out["cohort"]
    truth = io.read_parquet(lay.data.cohort_truth) if lay.data.cohort_truth.exists() else None
    vd = out["vd"].merge(out["folds"][["subject_id", "label"]], on="subject_id")
    with progress.phase("handcrafted baseline"):
        baseline = _baseline(lay, out)
    with progress.phase("metrics with bootstrap CIs"):
        metrics = evaluate(vd, n_boot=cfg.n_boot, seed=cfg.seed, truth=truth, cohort=cohort, baseline=baseline)
        pairs, agreement = left_right(side_scores(out["clips"]), n_boot=cfg.n_boot, seed=cfg.seed)
    io.write_parquet(lay.vd.left_right, pairs)
    fpr, tpr, _ = roc_curve(vd.label, vd.vd_logit)
    p = 1 / (1 + np.exp(-vd.vd_logit))
    dec = pd.qcut(p.rank(method="first"), 10, labels=False)
    calib = pd.DataFrame({"predicted": p, "observed": vd.label, "decile": dec}).groupby("decile").mean()
    vd = vd.merge(cohort[["subject_id", "age_years", "sex", "sbp_mmhg"]], on="subject_id", how="left")
    if truth is not None:
        vd = vd.merge(truth[["subject_id", "vd_true"]], on="subject_id", how="left")
    res = VdResult(
        vd=vd,
        metrics=metrics,
        log=out["log"],
        folds=out["folds"],
        clips=out["clips"],
        roc=pd.DataFrame({"fpr": fpr, "tpr": tpr}),
        calibration=calib.reset_index(),
        errors=out["errors"],
        baseline=baseline,
        left_right=pairs,
        agreement=agreement,
        settings=cfg,
        synthetic=is_synthetic(lay),
        summary=_summary(metrics, out, vd, agreement, seconds),
    )
    return res  # saved by the stage decorator, with its timings
