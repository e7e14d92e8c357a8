"""Notebook 04's stage: explain the video model (regions, sanity, faithfulness) and VD's
associations with risk factors. ``run(settings)`` (or ``run(run_dir=..., n_explain=..., methods=...)``) -> :class:`XaiResult`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .. import io
from ..io import CarotidkitError
from ..layout import RunLayout
from ..settings import XaiSettings
from ..stages import Progress, StageResult, is_synthetic, stage
from ..vd.clips import frame_indices
from . import associations as assoc
from . import video as V


@dataclass
class XaiResult(StageResult):
    enrichment: pd.DataFrame  # method, phase, region, enrichment, ci_low, ci_high
    per_clip: pd.DataFrame  # subject_id, method, phase, region, enrichment
    sanity: pd.DataFrame  # method, randomised_through, spearman (signed), spearman_abs, ssim
    deletion: pd.DataFrame  # clip, order, auc
    associations: pd.DataFrame  # term, beta_per_sd, ci_low, ci_high, p, p_fdr, shap_mean_abs, ranks
    shap_values: pd.DataFrame
    shap_data: pd.DataFrame
    baseline_sensitivity: pd.DataFrame = field(default_factory=pd.DataFrame)  # IG under each baseline
    unet_cam: dict | None = None  # Grad-CAM of each U-Net backbone and the ensemble (see unet_cam.py)
    movies: dict = field(default_factory=dict)  # title -> (clip uint8 [T,H,W], attribution uint8 [T,H,W])
    notes: list = field(default_factory=list)

    def journal_tables(self) -> dict[str, pd.DataFrame]:
        """The deletion test and the U-Net Grad-CAM summary (what the findings cite)."""
        return {"deletion_summary": self.deletion_summary(), "unet_cam_summary": self.unet_cam_summary()}

    def findings(self):
        """Where the models look and what VD goes with, in words
        (:func:`carotidkit.findings.xai_findings`)."""
        from ..findings import xai_findings

        return xai_findings(self)

    def deletion_summary(self) -> pd.DataFrame:
        """Mean deletion AUC by order with a clip-bootstrap CI (attribution order should be lower),
        and the paired difference ``attribution - random`` on the same clips with its CI."""
        rng = np.random.default_rng(0)
        wide = self.deletion.pivot_table(index="clip", columns="order", values="auc")
        if {"attribution", "random"} <= set(wide.columns):
            wide["attribution - random (paired)"] = wide["attribution"] - wide["random"]
        rows = []
        for order in wide.columns:
            a = wide[order].dropna().to_numpy()
            b = [a[rng.integers(0, len(a), len(a))].mean() for _ in range(1000)]
            rows.append(
                {
                    "order": order,
                    "deletion_auc": a.mean(),
                    "ci_low": np.percentile(b, 2.5),
                    "ci_high": np.percentile(b, 97.5),
                    "clips": len(a),
                }
            )
        return pd.DataFrame(rows)

    def unet_cam_summary(self) -> pd.DataFrame:
        """Per U-Net: mean share of Grad-CAM mass inside the annotated plaque vs the plaque's area share."""
        if not self.unet_cam or self.unet_cam["mass_in_plaque"].empty:
            return pd.DataFrame(columns=["model", "share_of_cam_in_plaque", "plaque_area_share"])
        return (
            self.unet_cam["mass_in_plaque"]
            .groupby("model", sort=False)[["share_of_cam_in_plaque", "plaque_area_share"]]
            .mean()
            .reset_index()
        )


def _attribute(model, X5, method, seed, ref):
    """Attribution maps of all clips, four at a time (memory)."""
    return np.concatenate(
        [V.attributions(model, X5[i : i + 4], method, seed=seed, baseline=ref) for i in range(0, len(X5), 4)]
    )


def _clip_enrichment(att, labs, sids, method, lumens, phases=("whole cycle", "systole", "diastole")) -> list[dict]:
    """Per clip and phase: each region's enrichment (phases from the clip's lumen area per frame,
    ``lumens``; see :func:`carotidkit.xai.video.cardiac_phases`)."""
    rows = []
    for sid, a, lab, lumen in zip(sids, att, labs, lumens):
        frames = V.cardiac_phases(lumen)
        for ph in phases:
            if ph not in frames:
                continue
            for region, val in V.enrichment(a[frames[ph]], lab[frames[ph]]).items():
                rows.append({"subject_id": sid, "method": method, "phase": ph, "region": region, "enrichment": val})
    return rows


def load_fold_model(lay: RunLayout, fold: int = 0):
    import torch

    from ..vd.models import build_model

    fdir = lay.vd.fold_dir(fold)
    if not (fdir / "best.pt").exists():
        raise CarotidkitError(f"{fdir / 'best.pt'}: no trained video model; run notebook 03_vd_video first")
    meta = io.read_json(fdir / "model.json")
    model = build_model(meta["architecture"], meta["frames"], meta["size"], meta["width"], meta["depth"])
    model.load_state_dict(torch.load(fdir / "best.pt", map_location="cpu", weights_only=True))
    return model.eval(), meta


def _explained_clips(lay: RunLayout, vd: pd.DataFrame, n_explain: int, meta: dict, notes: list) -> dict:
    """Fold 0's held-out subjects spread over the VD range: the frames the model saw (first
    window, normalised), their region labels and lumen sizes (simulated loops only)."""
    import cv2

    paths = lay.data.resolved()
    index = io.read_parquet(paths["cine_index"])
    base = paths["cine_index"].parent
    held = vd[vd.fold == 0].sort_values("vd_logit").reset_index(drop=True)
    pick = held.iloc[np.unique(np.linspace(0, len(held) - 1, min(n_explain, len(held))).round().astype(int))]
    S, T, P = meta["size"], meta["frames"], meta["period"]
    xs, labs, lumens, sids = [], [], [], []
    for sid in pick.subject_id:
        row = index[index.subject_id == sid].iloc[0]
        p = row.path if str(row.path).startswith("/") else str(base / row.path)
        if not p.endswith(".npz"):
            notes.append(f"{sid}: region labels exist only for simulated loops; skipped")
            continue
        z = np.load(p)
        fr = z["frames"]
        idx = frame_indices(len(fr), float(z["fps"]), T * P)[::P]  # the frames the model saw (first window)
        x = np.stack([cv2.resize(fr[i], (S, S), interpolation=cv2.INTER_AREA) for i in idx]).astype(np.float32)
        xs.append((x - meta["mean"]) / meta["std"])
        labs.append(V.resize_labels(z["labels"], idx, S))
        lumens.append((z["labels"][idx] == 1).reshape(len(idx), -1).sum(1))  # at the loop's own resolution
        sids.append(sid)
    if not xs:
        raise CarotidkitError("no simulated loops with region labels among the explained subjects")
    return dict(X5=np.stack(xs)[:, None], labs=labs, lumens=lumens, sids=sids)


def _attributions(cfg: XaiSettings, model, clips: dict, meta: dict, progress: Progress):
    """Each method's attribution maps, per-clip region enrichment and its bootstrap summary;
    Integrated Gradients' whole-cycle enrichment under the other baseline too."""
    X5, labs, lumens, sids = clips["X5"], clips["labs"], clips["lumens"], clips["sids"]
    ref = V.baseline_value(cfg.baseline, meta["mean"], meta["std"])
    per_clip, maps = [], {}
    for m in cfg.methods:
        progress(f"04_xai: {m} on {len(X5)} clips ...")
        maps[m] = _attribute(model, X5, m, cfg.seed, ref)
        per_clip += _clip_enrichment(maps[m], labs, sids, m, lumens)
    per_clip = pd.DataFrame(per_clip)
    enr = V.bootstrap_enrichment(per_clip, n_boot=cfg.n_boot, seed=cfg.seed)
    sensitivity = pd.DataFrame()
    if "integrated_gradients" in cfg.methods:
        other = next(b for b in V.BASELINES if b != cfg.baseline)
        ig = "integrated_gradients"
        alt_ref = V.baseline_value(other, meta["mean"], meta["std"])
        rows = {
            cfg.baseline: per_clip[(per_clip.method == ig) & (per_clip.phase == "whole cycle")],
            other: pd.DataFrame(
                _clip_enrichment(_attribute(model, X5, ig, cfg.seed, alt_ref), labs, sids, ig, lumens, ("whole cycle",))
            ),
        }
        sensitivity = pd.concat(
            [V.bootstrap_enrichment(d, n_boot=cfg.n_boot, seed=cfg.seed).assign(baseline=b) for b, d in rows.items()],
            ignore_index=True,
        ).drop(columns=["phase"])
    return maps, per_clip, enr, sensitivity, ref


def _movies(X5, maps: dict, sids: list, meta: dict) -> dict:
    """Clip and attribution movies for the lowest, median and highest VD explained."""
    movies = {}
    a = maps.get("integrated_gradients", next(iter(maps.values())))
    for label, i in (("low VD", 0), ("median VD", len(sids) // 2), ("high VD", len(sids) - 1)):
        clip = np.clip(X5[i, 0] * meta["std"] + meta["mean"], 0, 255).astype(np.uint8)
        heat = (255 * a[i] / (np.percentile(a[i], 99.5) + 1e-12)).clip(0, 255).astype(np.uint8)
        movies[f"{label} ({sids[i]})"] = (clip, heat)
    return movies


def _unet_cam(lay: RunLayout, progress: Progress, notes: list):
    """Grad-CAM of 02's U-Nets, when they exist."""
    if not (lay.unet.ensemble.exists() and lay.unet.test_probs.exists()):
        notes.append("no U-Net ensemble in this run (02 not run): U-Net Grad-CAM skipped")
        return None
    progress("04_xai: Grad-CAM of the U-Nets ...")
    from .unet_cam import unet_gradcam

    return unet_gradcam(lay.unet.root)


def headline(enrichment: pd.DataFrame, associations: pd.DataFrame) -> str:
    """One line of what 04 found."""
    e = enrichment[(enrichment.phase == "whole cycle") & (enrichment.method == "integrated_gradients")].set_index(
        "region"
    )
    parts = [f"{r} {e.enrichment[r]:.2f}" for r in ("far_wall", "near_wall", "perivascular", "lumen") if r in e.index]
    top = associations.sort_values("rank_shap").term.head(3).tolist()
    line = f"IG enrichment: {', '.join(parts)}; SHAP top drivers of VD: {', '.join(top)}"
    a = associations.set_index("term")
    carotid = [
        f"{assoc.LABELS[t]} β {a.beta_per_sd[t]:+.2f} [{a.ci_low[t]:+.2f}, {a.ci_high[t]:+.2f}] SD of VD per SD"
        for t in assoc.CAROTID
        if t in a.index
    ]
    return line + (f"; adjusted for the risk factors, {'; '.join(carotid)}" if carotid else "")


def _faithfulness(cfg, model, X5, maps: dict, ref) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The cascading-randomisation sanity test and the deletion curve (first method's maps)."""
    sanity = pd.concat(
        [
            V.cascading_randomisation(model, X5[: cfg.n_sanity], m, seed=cfg.seed, baseline=ref)
            for m in ("integrated_gradients", "grad_cam")
            if m in cfg.methods
        ],
        ignore_index=True,
    )
    first = maps.get("integrated_gradients", next(iter(maps.values())))
    return sanity, V.deletion_curve(model, X5, first, seed=cfg.seed, baseline=ref)


@stage(XaiSettings)
def run(cfg: XaiSettings, lay: RunLayout, progress: Progress) -> XaiResult:
    """Explain fold 0's video model on its own out-of-fold subjects, and VD's associations.

    Settings (:class:`carotidkit.settings.XaiSettings`): ``n_explain`` subjects explained (spread
    over the VD range); ``n_sanity`` clips in the randomisation test; ``methods``; ``n_boot``
    subject-bootstrap replicates; ``baseline``: the reference input of Integrated Gradients,
    Occlusion and the deletion curve, ``"anechoic"`` (a black frame: no echo) or ``"mean"`` (the
    clips' mean grey); see :func:`carotidkit.xai.video.baseline_value`. Integrated Gradients'
    region enrichment is also computed under the other baseline (``baseline_sensitivity``).

    Example:
        res = run(run_dir="runs/smoke", n_explain=4)
        res.enrichment
    """
    import torch

    torch.manual_seed(cfg.seed)
    cohort = io.read_parquet(lay.data.resolved()["cohort"])
    vd = io.read_parquet(lay.vd.vd)
    notes = []
    t0 = time.perf_counter()
    # 1. associations (all subjects)
    carotid = io.read_parquet(lay.unet.subject_plaque) if lay.unet.subject_plaque.exists() else None
    with progress.phase("associations and SHAP"):
        X, y = assoc.design(cohort, vd, carotid=carotid)
        reg = assoc.regression_table(X, y)
        imp, sv, Xs = assoc.shap_table(X, y, seed=cfg.seed)
    table = reg.merge(imp, on="term").sort_values("rank_shap").reset_index(drop=True)
    # 2. video attributions on fold 0's held-out subjects
    model, meta = load_fold_model(lay, 0)
    clips = _explained_clips(lay, vd, cfg.n_explain, meta, notes)
    X5 = clips["X5"]
    with progress.phase("video attributions"):
        maps, per_clip, enr, sensitivity, ref = _attributions(cfg, model, clips, meta, progress)
    # 3. sanity and faithfulness
    with progress.phase("sanity and deletion tests"):
        sanity, deletion = _faithfulness(cfg, model, X5, maps, ref)
    with progress.phase("attribution movies and U-Net Grad-CAM"):
        movies = _movies(X5, maps, clips["sids"], meta)  # 4. low / median / high VD
        unet_cam = _unet_cam(lay, progress, notes)  # 5. the U-Nets of 02
    res = XaiResult(
        enrichment=enr,
        per_clip=per_clip,
        sanity=sanity,
        deletion=deletion,
        associations=table,
        shap_values=sv,
        shap_data=Xs,
        movies=movies,
        baseline_sensitivity=sensitivity,
        unet_cam=unet_cam,
        notes=notes,
        settings=cfg,
        synthetic=is_synthetic(lay),
    )
    res.summary = {
        "headline": headline(enr, table),
        "n_explained": len(clips["sids"]),
        "seconds": round(time.perf_counter() - t0, 1),
        "notes": notes,
    }
    x = lay.xai
    x.ensure()
    io.write_parquet(x.enrichment, enr)
    io.write_parquet(x.baseline_sensitivity, sensitivity)
    io.write_parquet(x.sanity, sanity)
    io.write_parquet(x.faithfulness, res.deletion_summary())
    io.write_parquet(x.associations, table)
    return res  # saved by the stage decorator, with its timings
