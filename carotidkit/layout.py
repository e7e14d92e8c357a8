"""The run layout: every file a stage reads or writes, named once, with its schema.

``RunLayout(run_dir)`` has one section per stage (``layout.data``, ``layout.clean``,
``layout.unet``, ``layout.vd``, ``layout.xai``, ``layout.survival``); each attribute is a
``Path``. Stages, notebooks, the report runner and tests ask the layout instead of spelling a
run-folder path. Sections create their folder on first use of :meth:`Section.ensure`.

Example:
    >>> lay = RunLayout("runs/smoke")
    >>> lay.vd.vd.name, lay.survival.cox.parent.name
    ('vd.parquet', 'survival')
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


class Section:
    """A stage folder; subclasses list its files as properties with a schema docstring."""

    folder = ""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.root = self.run_dir / self.folder

    def ensure(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root

    def files(self) -> dict[str, Path]:
        """Every named file of this section (for docs and tests)."""
        return {k: getattr(self, k) for k, v in vars(type(self)).items() if isinstance(v, property)}


class Data(Section):
    """The data folder 00 writes; the simulator's output folder has the same layout
    (``Data.at(folder)`` names the files of a data folder outside a run)."""

    folder = "data"

    @classmethod
    def at(cls, folder) -> Data:
        """The data layout rooted at ``folder`` itself (the simulator's ``out_dir``)."""
        sec = cls(Path(folder))
        sec.root = Path(folder)
        return sec

    @property
    def plaque_db(self) -> Path:
        """Folder: simulated plaque database in the Ar-PlaqSegm1 layout (``train/``, ``test/``)."""
        return self.root / "plaque_db"

    @property
    def cine(self) -> Path:
        """Folder: simulated cine loops ``<subject>_<side>.npz`` (``frames`` uint8 [T, H, W], ``fps``)."""
        return self.root / "cine"

    @property
    def plaque_db_truth(self) -> Path:
        """Parquet: per simulated image ``image_id, split, has_plaque``, plaque types, overlay share."""
        return self.root / "truth" / "plaque_db_truth.parquet"

    @property
    def overlay_truth(self) -> Path:
        """Folder: ``<image_id>_overlay.png`` (0/255): the burned-in overlay pixels of each image."""
        return self.root / "truth" / "plaque_db"

    @property
    def second_reader(self) -> Path:
        """Folder: a second annotator's masks, named like the database's (``<n>_labeled.png``)."""
        return self.root / "truth" / "annotator_2"

    @property
    def summary(self) -> Path:
        """JSON: 00's headline, settings and ``synthetic`` (the stages' common summary file)."""
        return self.root / "summary.json"

    @property
    def manifest(self) -> Path:
        """JSON: synthetic flag, sources, ``paths`` (relative or absolute), counts, hashes; written last."""
        return self.root / "manifest.json"

    @property
    def cohort(self) -> Path:
        """Parquet: canonical cohort columns (``subject_id``, ``age_years``, ..., ``<ep>_event/_years``)."""
        return self.root / "cohort.parquet"

    @property
    def cine_index(self) -> Path:
        """Parquet: ``subject_id, clip_id, side, path, n_frames, fps, pixel_spacing_mm``."""
        return self.root / "cine_index.parquet"

    @property
    def truth(self) -> Path:
        """Folder of simulator truth (synthetic runs only)."""
        return self.root / "truth"

    @property
    def cohort_truth(self) -> Path:
        """Parquet: ``subject_id, vd_true``, latent linear predictors and event times."""
        return self.root / "truth" / "cohort_truth.parquet"

    @property
    def cine_truth(self) -> Path:
        """Parquet: per clip ``distension, imt_far_mm, n_plaques, peri_echo, peri_texture``."""
        return self.root / "truth" / "cine_truth.parquet"

    @property
    def stills(self) -> Path:
        """Folder: simulated per-subject B-mode stills ``<subject>_<L|R>_<n>.png`` (database style)."""
        return self.root / "stills"

    @property
    def stills_index(self) -> Path:
        """Parquet: ``subject_id, side, still_id, path, pixel_spacing_row_mm, pixel_spacing_col_mm``."""
        return self.root / "stills_index.parquet"

    @property
    def stills_truth_masks(self) -> Path:
        """Folder: ``<still_id>_mask.png`` (0/255): each simulated still's true plaque pixels."""
        return self.root / "truth" / "stills"

    @property
    def stills_truth(self) -> Path:
        """Parquet: per simulated still ``true_plaque_area_mm2, true_plaque_count, true_imt_mm``."""
        return self.root / "truth" / "stills_truth.parquet"

    def resolved(self) -> dict[str, Path]:
        """Absolute paths of the data components from the manifest (synthetic or real)."""
        from .io import CarotidkitError, read_json

        if not self.manifest.exists():
            raise CarotidkitError(
                f"{self.manifest}: no data manifest; run notebook 00_data first (make report ONLY=00)"
            )
        m = read_json(self.manifest)
        return {k: (Path(v) if Path(v).is_absolute() else self.root / v) for k, v in m["paths"].items()}


class Clean(Section):
    folder = "clean"
    SECOND_READER = "masks_second_reader"

    @property
    def qc(self) -> Path:
        """Parquet: one row per image: ``image_id, split, flags, ...`` (QC of 01)."""
        return self.root / "qc.parquet"

    @property
    def splits(self) -> Path:
        """Parquet: ``image_id, split`` (train/val/test, group-aware)."""
        return self.root / "splits.parquet"

    @property
    def leakage(self) -> Path:
        """Parquet: duplicate groups that straddle splits."""
        return self.root / "leakage.parquet"

    @property
    def summary(self) -> Path:
        """JSON: cleaning settings and headline numbers."""
        return self.root / "summary.json"

    @property
    def images(self) -> Path:
        """Folder: cleaned, squared images ``<image_id>.png`` (uint8)."""
        return self.root / "images"

    @property
    def masks(self) -> Path:
        """Folder: aligned masks ``<image_id>.png`` (0/255)."""
        return self.root / "masks"

    @property
    def second_reader_masks(self) -> Path:
        """Folder: a second annotator's masks ``<image_id>.png`` (0/255) through the same geometry,
        where one was given (always on simulated data)."""
        return self.root / self.SECOND_READER


class Unet(Section):
    folder = "unet"
    #: file names inside a U-Net folder (PlaqueSegmenter.load also reads a copied folder by them)
    NAMES = {"ensemble": "ensemble.json", "test_probs": "test_probs.npz"}

    @property
    def ensemble(self) -> Path:
        """JSON: backbones, vote rule and preprocessing of the ensemble."""
        return self.root / self.NAMES["ensemble"]

    @property
    def metrics(self) -> Path:
        """Parquet: ``model, subset, metric, estimate, ci_low, ci_high``."""
        return self.root / "metrics.parquet"

    @property
    def validation_predictions(self) -> Path:
        """Parquet: per validation image and model, the columns of ``test_predictions``."""
        return self.root / "validation_predictions.parquet"

    @property
    def versus_reader(self) -> Path:
        """Parquet: ``model, dice_model, reference, dice_reference, difference, ci_low, ci_high, n_images``: each
        model against a second annotator on the same plaque images (empty without one)."""
        return self.root / "versus_reader.parquet"

    @property
    def test_predictions(self) -> Path:
        """Parquet: per test image and model: Dice, areas, false alarm."""
        return self.root / "test_predictions.parquet"

    @property
    def test_probs(self) -> Path:
        """NPZ: ``probs`` uint8 [M, N, H, W], ``image_ids``, ``masks``, ``images``."""
        return self.root / self.NAMES["test_probs"]

    @property
    def summary(self) -> Path:
        """JSON: training summaries and headline metrics."""
        return self.root / "summary.json"

    @property
    def subject_plaque(self) -> Path:
        """Parquet: one row per subject: ``subject_id, plaque_area_mm2`` (mean per imaged side),
        ``total_plaque_area_mm2, plaque_count, any_plaque, imt_mm, n_sides, n_images,
        mean_disagreement, source`` (what 04 and 05 read)."""
        return self.root / "subject_plaque.parquet"

    @property
    def still_measurements(self) -> Path:
        """Parquet: per measured still (or end-diastolic frame): area, count, disagreement, IMT."""
        return self.root / "still_measurements.parquet"

    @property
    def subject_agreement(self) -> Path:
        """Parquet: ``measure, metric, estimate``: measured vs planted plaque area and IMT (simulated)."""
        return self.root / "subject_agreement.parquet"

    def backbone(self, name: str) -> Path:
        """Folder of one backbone: ``best.keras, last.keras, log.csv, train.json``."""
        return self.root / name


class Vd(Section):
    folder = "vd"

    @property
    def vd(self) -> Path:
        """Parquet: ``subject_id, vd_logit`` (mean over the subject's loops), ``vd_z`` (standardised
        within fold), ``vd_z_max`` (the worse side, standardised within fold), ``vd_percentile,
        fold, n_clips`` (all out of fold)."""
        return self.root / "vd.parquet"

    @property
    def baseline(self) -> Path:
        """Parquet: ``subject_id, fold, baseline_logit`` and the handcrafted features (side means)
        of the cross-fitted logistic-regression baseline."""
        return self.root / "baseline.parquet"

    @property
    def left_right(self) -> Path:
        """Parquet: ``subject_id, left, right, mean, diff`` of the sides' within-fold scores."""
        return self.root / "left_right.parquet"

    @property
    def clip_predictions(self) -> Path:
        """Parquet: ``subject_id, clip_id, side, fold, logit`` (mean over the clip's temporal
        windows), ``side_z`` (standardised within fold), ``n_windows``."""
        return self.root / "clip_predictions.parquet"

    @property
    def folds(self) -> Path:
        """Parquet: ``subject_id, fold, label, inner`` (``inner``: train or val within its training folds)."""
        return self.root / "folds.parquet"

    @property
    def summary(self) -> Path:
        """JSON: ``auc, accuracy, balanced_accuracy`` (each with ``_ci``), the baseline's
        ``baseline_auc``, ``delta_auc`` (+CI), ``left_right`` agreement (+ ``spearman_vd_true``,
        ``partial_spearman_vd_true`` and the baseline's on synthetic data), ``headline``,
        settings and timings."""
        return self.root / "summary.json"

    @property
    def log(self) -> Path:
        """CSV: every fold's epochs: ``fold, epoch, train_loss, val_loss, val_auc, seconds``."""
        return self.root / "log.csv"

    @property
    def cache(self) -> Path:
        """Folder: memory-mapped uint8 clip cache ``<key>.u8`` + ``<key>.parquet`` (frames index)."""
        return self.root / "cache"

    def fold_dir(self, fold: int) -> Path:
        """Folder of one fold: ``checkpoint.pt`` (resumable), ``best.pt`` (state_dict), ``log.csv``."""
        return self.root / f"fold{fold}"


class Xai(Section):
    folder = "xai"

    @property
    def enrichment(self) -> Path:
        """Parquet: ``method, region, phase, enrichment, ci_low, ci_high``."""
        return self.root / "enrichment.parquet"

    @property
    def baseline_sensitivity(self) -> Path:
        """Parquet: Integrated Gradients' whole-cycle enrichment under each reference input:
        ``baseline, method, region, enrichment, ci_low, ci_high``."""
        return self.root / "baseline_sensitivity.parquet"

    @property
    def sanity(self) -> Path:
        """Parquet: ``method, randomised_through, spearman, spearman_abs, ssim`` (cascading randomisation)."""
        return self.root / "sanity.parquet"

    @property
    def faithfulness(self) -> Path:
        """Parquet: ``method, curve, auc, ci_low, ci_high`` (deletion/insertion vs random)."""
        return self.root / "faithfulness.parquet"

    @property
    def associations(self) -> Path:
        """Parquet: ``term, beta_per_sd, ci_low, ci_high, p, p_fdr, shap_mean_abs, rank_*``."""
        return self.root / "associations.parquet"

    @property
    def summary(self) -> Path:
        """JSON: headline numbers."""
        return self.root / "summary.json"


class Survival(Section):
    folder = "survival"

    @property
    def analysis(self) -> Path:
        """Parquet: analysis table: cohort + ``vd_z`` + ``score2_risk/_model/_flag/_category``."""
        return self.root / "analysis.parquet"

    @property
    def key_results(self) -> Path:
        """Parquet: per endpoint: HR per SD of VD, C of SCORE2 / VD / both, delta C, NRI."""
        return self.root / "key_results.parquet"

    @property
    def cox(self) -> Path:
        """Parquet: ``endpoint, model, term, hr, ci_low, ci_high, p, n, events``."""
        return self.root / "cox.parquet"

    @property
    def fine_gray(self) -> Path:
        """Parquet: ``endpoint, model, term, shr, ci_low, ci_high, p``."""
        return self.root / "fine_gray.parquet"

    @property
    def discrimination(self) -> Path:
        """Parquet: ``endpoint, risk, method, c_index, ci_low, ci_high, delta_*``."""
        return self.root / "discrimination.parquet"

    @property
    def calibration(self) -> Path:
        """Parquet: ``endpoint, model, metric, estimate, ci_low, ci_high``."""
        return self.root / "calibration.parquet"

    @property
    def carotid(self) -> Path:
        """Parquet: per endpoint, model (SCORE2 [+ plaque burden, IMT, VD]) and method (Cox,
        Fine-Gray): ``hr_vd, hr_plaque, hr_imt`` (+ CIs), ``c_index_cv``, ``delta_c_vs_score2``,
        ``delta_c_vs_carotid`` (+ CIs), ``lr_p_vs_score2``."""
        return self.root / "carotid.parquet"

    @property
    def summary(self) -> Path:
        """JSON: settings, headline numbers, notes."""
        return self.root / "summary.json"


@dataclass(frozen=True)
class RunLayout:
    """Every folder and file of one run (``runs/<profile>`` by default)."""

    run_dir: Path

    def __post_init__(self):
        object.__setattr__(self, "run_dir", Path(self.run_dir))

    @classmethod
    def for_profile(cls, profile: str, run_dir=None, root=None) -> "RunLayout":
        """The one place the run folder is decided: ``run_dir`` if given, else
        ``$CAROTIDKIT_RUNS/<profile>``, else ``<checkout>/runs/<profile>``."""
        if run_dir:
            return cls(Path(run_dir))
        base = os.environ.get("CAROTIDKIT_RUNS")
        from .profiles import repo_root

        return cls((Path(base) if base else repo_root(root) / "runs") / profile)

    @property
    def data(self) -> Data:
        return Data(self.run_dir)

    @property
    def clean(self) -> Clean:
        return Clean(self.run_dir)

    @property
    def unet(self) -> Unet:
        return Unet(self.run_dir)

    @property
    def vd(self) -> Vd:
        return Vd(self.run_dir)

    @property
    def xai(self) -> Xai:
        return Xai(self.run_dir)

    @property
    def survival(self) -> Survival:
        return Survival(self.run_dir)

    @property
    def report_state(self) -> Path:
        """JSON: the report runner's per-notebook state (fingerprints, status, headline)."""
        return self.run_dir / "_report" / "state.json"

    def stage_summary(self, notebook: str) -> Path:
        """``<stage>/summary.json``: where a notebook's stage records its settings and ``headline``."""
        from .profiles import STAGES

        return getattr(self, STAGES[notebook]).summary

    def executed_notebook(self, name: str) -> Path:
        return self.run_dir / "_report" / f"{name}.ipynb"

    def figures_dir(self, name: str) -> Path:
        """Folder: notebook ``name``'s figures as ``NN_<plot>.svg|pdf|png`` (300 dpi) and its
        animations as ``.webp``, written as the notebook draws them (the paper bundle's figures)."""
        return self.run_dir / "_report" / "figures" / name

    def tables_dir(self, name: str) -> Path:
        """Folder: notebook ``name``'s result tables as CSV (``<table>.csv``), written by its stage
        (the paper bundle's tables)."""
        return self.run_dir / "_report" / "tables" / name
