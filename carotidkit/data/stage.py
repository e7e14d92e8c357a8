"""Notebook 00's stage: simulate what is not given, read what is, and describe it.

``run(run_dir=..., n_subjects=..., cohort_path=..., ...)`` builds ``layout.data`` (see
:func:`carotidkit.data.prepare.prepare_data`) and returns a :class:`DataResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..layout import RunLayout


@dataclass
class DataResult:
    manifest: dict
    paths: dict  # component -> absolute Path (cohort, plaque_db, cine_index, truth)
    cohort: pd.DataFrame
    plaque_db: pd.DataFrame  # image_id, split, image_path, mask_path, has_plaque, ...
    clips: pd.DataFrame  # subject_id, clip_id, path (absolute), ...
    settings: dict = field(default_factory=dict)

    @property
    def synthetic(self) -> bool:
        return bool(self.manifest.get("synthetic", True))

    def gallery_images(self, n: int, seed: int = 0) -> dict:
        """Up to ``n`` plaque images for a gallery, redacted to the scan area (burned-in names and
        ids never reach a report), with masks and, on simulated data, the true overlays.
        Keyword arguments of :func:`carotidkit.plots.gallery`."""
        from ..clean import redact_for_display
        from .plaque_db import read_image, read_mask

        db = self.plaque_db
        ok = db[db.has_plaque & db.error.isna()]
        pick = ok.sample(min(n, len(ok)), random_state=seed)
        synthetic = self.manifest["sources"]["plaque_db"] == "synthetic"
        truth = RunLayout(self.settings["run_dir"]).data.overlay_truth if synthetic else None
        return {
            "images": [redact_for_display(read_image(p)) for p in pick.image_path],
            "masks": [read_mask(p) for p in pick.mask_path],
            "overlays": [read_mask(truth / f"{i}_overlay.png") for i in pick.source_id] if truth else None,
            "titles": [f"{s}/{f}" for s, f in zip(pick.split, pick.file_name)],
        }

    @property
    def file_errors(self) -> pd.DataFrame:
        """Plaque-database files that could not be used, with the reason (01 leaves them out)."""
        return self.plaque_db.loc[self.plaque_db.error.notna(), ["split", "file_name", "error"]]

    def headline_text(self) -> str:
        return self.manifest.get("headline", "")


def run(
    run_dir=None,
    profile: str = "workshop",
    seed: int = 0,
    n_subjects: int = 2000,
    n_plaque_images: int = 541,
    plaque_db_size_px: int = 800,
    cine_size_px: int = 64,
    cine_seconds: float = 1.4,
    vd_hr_per_sd: float = 1.4,
    followup_years: float = 12.0,
    n_jobs: int = 2,
    plaque_db_dir=None,
    cohort_path=None,
    column_map=None,
    video_dir=None,
    gallery_n: int = 8,
    progress=print,
) -> DataResult:
    """Build the run's data folder and return its tables.

    Example:
        res = run(run_dir="runs/smoke", n_subjects=80, n_plaque_images=40)
        res.cohort.shape
    """
    from .plaque_db import load_plaque_db
    from .prepare import cine_table, prepare_data

    lay = RunLayout.for_profile(profile, run_dir)
    settings = dict(
        run_dir=str(lay.run_dir),
        seed=seed,
        n_subjects=n_subjects,
        n_plaque_images=n_plaque_images,
        plaque_db_size_px=plaque_db_size_px,
        cine_size_px=cine_size_px,
        cine_seconds=cine_seconds,
        vd_hr_per_sd=vd_hr_per_sd,
        followup_years=followup_years,
        n_jobs=n_jobs,
        plaque_db_dir=plaque_db_dir,
        cohort_path=cohort_path,
        column_map=column_map,
        video_dir=video_dir,
    )
    manifest = prepare_data(settings, progress=progress or (lambda *_: None))
    paths = lay.data.resolved()
    return DataResult(
        manifest=manifest,
        paths=paths,
        cohort=pd.read_parquet(paths["cohort"]),
        plaque_db=load_plaque_db(paths["plaque_db"], errors="flag"),
        clips=cine_table(lay.run_dir),
        settings=settings,
    )


__all__ = ["DataResult", "run"]
