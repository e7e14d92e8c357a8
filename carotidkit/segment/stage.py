"""Notebook 02's stage: train each backbone, predict, vote, evaluate.

``run(settings)`` (or ``run(run_dir=..., backbones=..., epochs=...)``) writes ``layout.unet`` and returns a
:class:`UnetResult` (``res.train``, ``res.metrics``, ``res.predictions``, ``res.logs``, and the test
arrays via ``res.test_arrays()``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import io
from ..layout import RunLayout, Unet
from ..settings import UnetSettings
from ..stages import Progress, StageResult, is_synthetic, stage
from . import metrics

#: the name a second annotator's masks carry in 02's tables
SECOND_READER = "annotator 2"


@dataclass
class UnetResult(StageResult):
    train: pd.DataFrame  # one row per backbone: best epoch, val Dice, seconds, images/s
    metrics: pd.DataFrame  # model, subset, metric, estimate, ci_low, ci_high
    predictions: pd.DataFrame  # per test image and model: Dice, areas, false alarm
    logs: pd.DataFrame  # backbone, epoch, loss, val_loss, val_dice, ...
    #: each model's Dice vs annotator 1 next to a second reader's, paired difference + CI
    #: (empty without second-reader masks)
    versus_reader: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: per validation image and model, like ``predictions`` (validation picked each best epoch)
    validation_predictions: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: one row per subject: plaque area (mean per side, total), count, any plaque, IMT,
    #: disagreement (:mod:`carotidkit.segment.subjects`)
    subjects: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: one row per measured image (still or end-diastolic frame)
    still_measurements: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: on simulated data: measured vs planted plaque area and IMT (``measure, metric, estimate``)
    subject_agreement: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: the measured subjects beside the planted truth (simulated data; for the agreement figure)
    subject_truth: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: what the subjects' images were: "B-mode stills" or "end-diastolic frames of the cine loops"
    subject_source: str = ""
    unet_dir: str = ""
    vote: str = "majority"

    _arrays: dict | None = field(default=None, repr=False)

    def test_arrays(self) -> dict:
        """Test images, masks, ids and each model's probabilities (``[M, N, H, W]`` in 0..1);
        read once, then kept."""
        if self._arrays is None:
            z = np.load(Path(self.unet_dir) / Unet.NAMES["test_probs"])
            self._arrays = {
                "probs": z["probs"] / 255.0,
                "image_ids": z["image_ids"],
                "masks": z["masks"],
                "images": z["images"],
            }
        return self._arrays

    def ensemble_predictions(self) -> pd.DataFrame:
        """Per-image rows of the voting ensemble, in test order."""
        return self.predictions[self.predictions.model == f"ensemble ({self.vote})"].reset_index(drop=True)

    def journal_tables(self) -> dict[str, pd.DataFrame]:
        """Each member against the ensemble on the same test plaque images (paired Dice
        difference, bootstrap CI), for the findings and the bundle."""
        ens = f"ensemble ({self.vote})"
        if self.predictions.empty or ens not in set(self.predictions.model):
            return {}
        n_boot = self.settings.n_boot if self.settings is not None else 1000
        seed = self.settings.seed if self.settings is not None else 0
        per = self.predictions[self.predictions.model != SECOND_READER]
        return {"members_vs_ensemble": metrics.paired_dice(per, ens, n_boot, seed)}

    def findings(self):
        """What the U-Nets found, in words (:func:`carotidkit.findings.unet_findings`)."""
        from ..findings import unet_findings

        return unet_findings(self)

    def best_median_worst(self) -> list[int]:
        """Positions (test order) of the best, median and worst ensemble Dice among plaque images."""
        pe = self.ensemble_predictions()
        pl = pe[pe.has_plaque].sort_values("dice")
        return [pl.index[-1], pl.index[len(pl) // 2], pl.index[0]] if len(pl) else []


def _score(probs, Y, image_ids, backbones, qc, cdir, leak=None):
    """Per-image rows (``metrics.per_image``) of each model, both votes and, where its masks exist,
    the second reader, all against the shipped masks ``Y``; also which images have a reader."""
    from ..imaging import read_mask

    area = qc.loc[image_ids, "model_px_area_mm2"].to_numpy() if "model_px_area_mm2" in qc else None
    preds = {bb: probs[k] > 0.5 for k, bb in enumerate(backbones)}
    preds["ensemble (majority)"] = metrics.vote(probs, "majority")
    preds["ensemble (mean)"] = metrics.vote(probs, "mean")
    # a second reader's masks, scored against the first exactly like a model: the yardstick
    reader = [cdir.second_reader_masks / f"{i}.png" for i in image_ids]
    has_reader = np.array([p.is_file() for p in reader], bool)
    if has_reader.any():
        R = np.zeros(Y.shape[:3], bool)
        R[has_reader] = np.stack([read_mask(p) for p, ok in zip(reader, has_reader) if ok])
        preds[SECOND_READER] = R
    rows = []
    for name, P in preds.items():
        keep = has_reader if name == SECOND_READER else np.ones(len(P), bool)
        pi = metrics.per_image(
            Y[keep, ..., 0], P[keep], None if area is None else area[keep], list(np.array(image_ids)[keep])
        ).assign(model=name)
        pi["test_leak"] = leak[keep] if leak is not None else False
        rows.append(pi)
    return pd.concat(rows, ignore_index=True), has_reader


def training_logs(unet_dir, backbones) -> pd.DataFrame:
    """Every backbone's ``log.csv`` in one table (``backbone, epoch`` 1-based, losses, val Dice)."""
    logs = []
    for b in backbones:
        log = pd.read_csv(Path(unet_dir) / b / "log.csv")
        logs.append(log.assign(backbone=b, epoch=log.epoch + 1))
    return pd.concat(logs, ignore_index=True)


def _train(cfg: UnetSettings, lay: RunLayout, arrays: dict, progress: Progress) -> list[dict]:
    """Train (or resume) every member; their summaries."""
    from .members import train_members

    (Xtr, Ytr), (Xva, Yva) = arrays["train"], arrays["val"]
    bbs = cfg.backbones
    weights = {bb: str(Path(cfg.weights_dir) / f"{bb}.weights.h5") for bb in bbs} if cfg.weights_dir else None
    summaries = train_members(bbs, Xtr, Ytr, Xva, Yva, lay.unet.root, cfg, progress=progress, weights_paths=weights)
    for s in summaries:
        progress(
            f"{s['backbone']}: best val Dice {s['best_val_dice']:.3f} at epoch {s['best_epoch']} ({s['seconds']} s)"
        )
    return summaries


def _write_ensemble(cfg: UnetSettings, lay: RunLayout) -> None:
    """``ensemble.json``: the members, the vote and 01's preprocessing (what PlaqueSegmenter loads)."""
    cmeta = io.read_json(lay.clean.summary)
    cset = cmeta.get("settings", cmeta)
    meta = {
        "backbones": list(cfg.backbones),
        "vote": cfg.vote,
        "threshold": 0.5,
        "min_component_px": 0,
        "preprocessing": {
            "model_size_px": cset["model_size_px"],
            "square": cset["square"],
            "undo_stretch": cset["undo_stretch"],
            "inpaint_radius": cset.get("inpaint_radius", 3),
        },
    }
    io.write_json(lay.unet.ensemble, meta)


def _evaluate(cfg: UnetSettings, lay: RunLayout, arrays: dict, ids: dict, splits: pd.DataFrame) -> dict:
    """Predict test and validation images with the saved ensemble; per-image rows and the
    summary table (bootstrap CIs), the second reader's paired comparison."""
    from .ensemble import PlaqueSegmenter

    qc = io.read_parquet(lay.clean.qc).set_index("image_id")
    (Xte, Yte), (Xva, Yva) = arrays["test"], arrays["val"]
    seg = PlaqueSegmenter.load(lay.unet.root)
    t0 = time.perf_counter()
    probs = seg.predict_probs(Xte)
    infer_s = time.perf_counter() - t0
    test = splits.set_index("image_id").loc[ids["test"]]
    bbs, n_boot, seed = cfg.backbones, cfg.n_boot, cfg.seed
    per_img, has_reader = _score(probs, Yte, ids["test"], bbs, qc, lay.clean, leak=test.test_leak.to_numpy())
    tables = [
        metrics.summarize(df, n_boot, seed).assign(model=name, subset=subset)
        for name, pi in per_img.groupby("model", sort=False)
        for subset, df in (("all test", pi), ("test without duplicates", pi[~pi.test_leak]))
    ]
    # the validation images (model selection used them, which flatters the single models): a
    # second look at "is the ensemble better than its members" on more images
    val_img, _ = _score(seg.predict_probs(Xva), Yva, ids["val"], bbs, qc, lay.clean)
    tables += [
        metrics.summarize(pi, n_boot, seed).assign(model=name, subset="validation")
        for name, pi in val_img.groupby("model", sort=False)
    ]
    vs = metrics.paired_dice(per_img, SECOND_READER, n_boot, seed) if has_reader.any() else pd.DataFrame()
    return dict(
        seg=seg,
        probs=probs,
        infer_s=infer_s,
        per_img=per_img,
        val_img=val_img,
        table=pd.concat(tables, ignore_index=True),
        versus_reader=vs,
        has_reader=bool(has_reader.any()),
    )


def _summary(cfg: UnetSettings, summaries: list[dict], ev: dict, n_test: int) -> dict:
    """What 02 records in ``summary.json``: training summaries, speed, headline."""
    infer_s, table, vote = ev["infer_s"], ev["table"], cfg.vote
    summary = {
        "train": summaries,
        "n_test": n_test,
        "inference_images_per_s": round(n_test * len(cfg.backbones) / infer_s, 1) if infer_s > 0 else None,
        "ensemble_images_per_s": round(n_test / infer_s, 1) if infer_s > 0 else None,
    }
    ens = table[(table.subset == "all test") & (table.model == f"ensemble ({vote})")].set_index("metric")
    d, fa = ens.loc["dice_mean"], ens.loc["false_alarm_rate"]
    summary["headline"] = (
        f"ensemble ({vote}) Dice {d.estimate:.3f} [{d.ci_low:.3f}, {d.ci_high:.3f}], "
        f"false alarms on {fa.estimate:.0%} of plaque-free test images"
    )
    if ev["has_reader"]:
        r = table[(table.subset == "all test") & (table.model == SECOND_READER)].set_index("metric").loc["dice_mean"]
        summary["inter_observer"] = (
            f"{SECOND_READER} vs annotator 1: Dice {r.estimate:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}] "
            f"on {int(r.n_images)} plaque images"
        )
        summary["headline"] += f"; {SECOND_READER}: Dice {r.estimate:.3f}"
    return summary


def _subject_summary(sub: dict) -> dict:
    """02's summary lines about the subject measurement."""
    s = sub["subjects"]
    out = {
        "subjects_measured": int(len(s)),
        "subject_source": sub["source"],
        "subject_images": int(len(sub["per_still"])),
        "subjects_with_plaque": int(s.any_plaque.sum()),
        "subject_seconds": sub["seconds"],
    }
    a = sub["agreement"]
    if len(a):
        e = a.set_index(["measure", "metric"]).estimate
        area, imt = "plaque area (mm², mean per side)", "far-wall IMT (mm)"
        out["subject_agreement"] = (
            f"plaque area vs truth ICC {e[(area, 'icc_a1')]:.2f} (bias {e[(area, 'bias')]:+.1f} mm²); "
            f"IMT vs truth ICC {e[(imt, 'icc_a1')]:.2f}, bias {e[(imt, 'bias')]:+.3f} mm, "
            f"mean absolute error {e[(imt, 'mean_abs_error')]:.3f} mm"
        )
    return out


def _subjects(lay: RunLayout, seg, progress: Progress) -> dict:
    """Every subject's plaque burden and IMT from its stills (or end-diastolic frames), and, on
    simulated stills, their agreement with the planted truth."""
    from . import subjects as S

    index, source = S.still_index(lay.run_dir)
    progress(f"measuring {len(index)} {S.SOURCES[source]} of {index.subject_id.nunique()} subjects")
    t0 = time.perf_counter()
    per_still = S.measure(seg, index, source, progress=progress)
    subj = S.per_subject(per_still).assign(source=S.SOURCES[source])
    out = {"per_still": per_still, "subjects": subj, "source": S.SOURCES[source], "agreement": pd.DataFrame()}
    out["truth"] = pd.DataFrame()
    if source == "stills" and lay.data.stills_truth.exists():
        truth = S.truth_per_subject(io.read_parquet(lay.data.stills_truth))
        out["agreement"] = S.agreement(subj, truth)
        out["truth"] = subj.merge(truth, on="subject_id")
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


@stage(UnetSettings)
def run(cfg: UnetSettings, lay: RunLayout, progress: Progress) -> UnetResult:
    """Train the U-Nets on 01's splits, vote them, and score them on the test split.

    ``n_jobs``: U-Nets trained at the same time, each in its own process with a share of the
    cores (0 = all members at once; 1 = one after another here); see :mod:`.members`.

    Example:
        res = run(run_dir="runs/smoke", epochs=1)
        res.metrics
    """
    from .train import load_arrays

    cdir, out = lay.clean, lay.unet
    if not cdir.splits.exists():
        raise io.CarotidkitError(f"{cdir.splits}: missing; run notebook 01_cleaning first")
    out.ensure()
    splits = io.read_parquet(cdir.splits)
    ids = {k: splits[splits.split == k].image_id.tolist() for k in ("train", "val", "test")}
    arrays = {k: load_arrays(cdir.root, ids[k]) for k in ("train", "val", "test")}
    Xtr = arrays["train"][0]
    progress(
        f"train {len(Xtr)}, val {len(arrays['val'][0])}, test {len(arrays['test'][0])} images at {Xtr.shape[1]} px"
    )
    with progress.phase("training the members"):
        summaries = _train(cfg, lay, arrays, progress)
    _write_ensemble(cfg, lay)
    with progress.phase("evaluating (prediction, bootstrap CIs)"):
        ev = _evaluate(cfg, lay, arrays, ids, splits)
    (Xte, Yte) = arrays["test"]
    io.write_parquet(out.test_predictions, ev["per_img"])
    io.write_parquet(out.validation_predictions, ev["val_img"])
    io.write_parquet(out.metrics, ev["table"])
    io.write_parquet(out.versus_reader, ev["versus_reader"])
    io.write_npz(
        out.test_probs,
        probs=(ev["probs"] * 255).round().astype(np.uint8),
        image_ids=np.array(ids["test"]),
        masks=Yte[..., 0].astype(bool),
        images=Xte[..., 0],
    )
    with progress.phase("measuring every subject (segmentation, IMT)"):
        sub = _subjects(lay, ev["seg"], progress)
    io.write_parquet(out.subject_plaque, sub["subjects"])
    io.write_parquet(out.still_measurements, sub["per_still"])
    io.write_parquet(out.subject_agreement, sub["agreement"])
    summary = _summary(cfg, summaries, ev, len(ids["test"]))
    summary.update(_subject_summary(sub))
    res = UnetResult(
        train=pd.DataFrame(summaries),
        metrics=ev["table"],
        predictions=ev["per_img"],
        logs=training_logs(out.root, cfg.backbones),
        summary=summary,
        versus_reader=ev["versus_reader"],
        subjects=sub["subjects"],
        still_measurements=sub["per_still"],
        subject_agreement=sub["agreement"],
        subject_truth=sub["truth"],
        subject_source=sub["source"],
        validation_predictions=ev["val_img"],
        unet_dir=str(out.root),
        vote=cfg.vote,
        settings=cfg,
        synthetic=is_synthetic(lay),
    )
    return res  # saved by the stage decorator, with its timings
