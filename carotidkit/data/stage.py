"""Notebook 00's stage: simulate what is not given, read what is, and describe it.

``run(settings)`` (or ``run(run_dir=..., n_subjects=..., cohort_path=..., ...)``) builds ``layout.data`` (see
:func:`carotidkit.data.prepare.prepare_data`) and returns a :class:`DataResult`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import io
from ..layout import RunLayout
from ..settings import DataSettings
from ..stages import Progress, StageResult, is_synthetic, stage


@dataclass
class DataResult(StageResult):
    manifest: dict
    paths: dict  # component -> absolute Path (cohort, plaque_db, cine_index, truth)
    cohort: pd.DataFrame
    plaque_db: pd.DataFrame  # image_id, split, image_path, mask_path, has_plaque, ...
    clips: pd.DataFrame  # subject_id, clip_id, path (absolute), ...

    def journal_tables(self) -> dict[str, pd.DataFrame]:
        """The numbers the findings cite (``facts``): counts, events, the label's prevalence and,
        on simulated data, the planted hazard ratio."""
        from ..findings import flat_facts

        c = self.cohort
        extra = {
            f"events.{ep}": int(c[f"{ep}_event"].sum()) for ep in ("mi", "cardiac_death", "death") if f"{ep}_event" in c
        }
        if "hypertension" in c:
            extra["hypertension_share"] = float(c.hypertension.mean())
        if self.synthetic and self.settings is not None:
            extra["vd_hr_per_sd"] = self.settings.vd_hr_per_sd
        return {"facts": flat_facts({**self.summary, **extra})}

    def findings(self):
        """What the run's data are, in words (:func:`carotidkit.findings.data_findings`)."""
        from ..findings import data_findings

        return data_findings(self)

    def gallery_images(self, n: int, seed: int = 0) -> dict:
        """Up to ``n`` images for a gallery, redacted to the scan area (burned-in names and ids
        never reach a report), with masks and, on simulated data, the true overlays.

        On simulated data the picks cover the simulator's variety first, one image each: an
        isoechoic, an irregular (ulcerated) and a calcified plaque, a plaque-free wall with
        diffuse thickening (no mask), and near-wall reverberation; real data get plaque images
        at random. Keyword arguments of :func:`carotidkit.plots.gallery`."""
        from ..imaging import read_image, read_mask, redact_for_display

        db = self.plaque_db[self.plaque_db.error.isna()]
        synthetic = self.manifest["sources"]["plaque_db"] == "synthetic"
        picks, labels = [], []
        if synthetic:
            t = io.read_parquet(RunLayout(self.settings.run_dir).data.plaque_db_truth)
            t = t.assign(source_id=t.image_id.astype(str)).set_index("source_id")
            t = t.loc[t.index.intersection(db.source_id.astype(str))]
            kinds = t.plaque_kinds.fillna("")
            wanted = [
                ("isoechoic plaque", kinds.str.contains("isoechoic")),
                ("irregular plaque", t.irregular_plaques > 0),
                ("calcified plaque", kinds.str.contains("calcified")),
                ("thickened wall, no plaque", t.imt_thickened),
                ("reverberation", t.has_plaque & (t.reverb > 0.25)),
                ("echolucent plaque", kinds.str.contains("echolucent")),
            ]
            rng = np.random.default_rng(seed)
            for label, sel in wanted:
                ids = [i for i in t.index[sel.to_numpy(bool)] if i not in picks]
                if ids and len(picks) < n:
                    picks.append(str(rng.choice(ids)))
                    labels.append(label)
        by_source = db.assign(source_id=db.source_id.astype(str)).set_index("source_id")
        rest = by_source[by_source.has_plaque & ~by_source.index.isin(picks)]
        extra = rest.sample(min(n - len(picks), len(rest)), random_state=seed)
        pick = pd.concat([by_source.loc[picks], extra])
        labels += [""] * len(extra)
        truth = RunLayout(self.settings.run_dir).data.overlay_truth if synthetic else None
        return {
            "images": [redact_for_display(read_image(p)) for p in pick.image_path],
            "masks": [read_mask(p) for p in pick.mask_path],
            "overlays": [read_mask(truth / f"{i}_overlay.png") for i in pick.index] if truth else None,
            "titles": [
                f"{s}/{f}" + (f"\n{lab}" if lab else "") for s, f, lab in zip(pick.split, pick.file_name, labels)
            ],
        }

    @property
    def file_errors(self) -> pd.DataFrame:
        """Plaque-database files that could not be used, with the reason (01 leaves them out)."""
        return self.plaque_db.loc[self.plaque_db.error.notna(), ["split", "file_name", "error"]]

    def id_join(self) -> pd.DataFrame:
        """How the cohort's subject ids met the videos' (real data): counts and a few unmatched
        examples of each; on fully simulated data, one row saying so."""
        j = self.manifest.get("id_join")
        if not j:
            return pd.DataFrame({"note": ["cohort and videos are both simulated: every subject has its loops"]})
        rows = [(k.replace("_", " "), ", ".join(v) if isinstance(v, list) else v) for k, v in j.items()]
        return pd.DataFrame(rows, columns=["what", "value"])


@stage(DataSettings)
def run(cfg: DataSettings, lay: RunLayout, progress: Progress) -> DataResult:
    """Build the run's data folder and return its tables.

    Example:
        res = run(run_dir="runs/smoke", n_subjects=80, n_plaque_images=40)
        res.cohort.shape
    """
    from .plaque_db import load_plaque_db
    from .prepare import cine_table, prepare_data

    with progress.phase("simulating / indexing the data"):
        manifest = prepare_data(cfg, progress=progress)
    paths = lay.data.resolved()
    res = DataResult(
        manifest=manifest,
        paths=paths,
        cohort=io.read_parquet(paths["cohort"]),
        plaque_db=load_plaque_db(paths["plaque_db"], errors="flag"),
        clips=cine_table(lay.run_dir),
        settings=cfg,
        synthetic=is_synthetic(lay),
        summary={"headline": manifest.get("headline", ""), "counts": manifest.get("counts", {})},
    )
    return res  # saved by the stage decorator, with its timings


__all__ = ["DataResult", "run"]
