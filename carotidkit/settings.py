"""Every setting of the six stages, declared once.

Each stage has one frozen settings class whose fields carry the default (the workshop value),
type, range, unit and one line of help (:class:`Knob`). Everything else reads them from here:
the profiles (overlays of these defaults, :data:`carotidkit.profiles.PROFILES`), the notebooks'
parameters cells (:func:`parameters_cell`; a test keeps them equal), ``-p`` checking,
``python -m carotidkit profiles``, the torchrun argument parser (:func:`add_arguments`), the
simulator's defaults and each stage's ``run`` signature. A value outside its range, or a
combination no model can be built for, is refused when the settings are made, with one line.

Example:
    >>> from carotidkit.settings import VdSettings
    >>> VdSettings.for_profile("smoke").folds
    2
    >>> VdSettings.for_profile("smoke", width=6)
    Traceback (most recent call last):
    ...
    carotidkit.io.CarotidkitError: 03_vd_video: width = 6 cannot be built for r2plus1d (channels are normalised in groups of 8: use a multiple of 4, e.g. 8)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

PROFILE_NAMES = ("smoke", "workshop", "full")


@dataclass(frozen=True)
class Knob:
    """One setting: default, kind, range and a line of help.

    ``kind``: ``int``/``float`` (``lo``..``hi``, optionally a ``multiple`` of), ``choice`` (one of
    ``choices``), ``list`` (a non-empty list of ``choices``), ``path`` or ``path_or_map``;
    ``none``: ``None`` is allowed (always for paths).
    """

    default: Any
    help: str
    kind: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple = ()
    multiple: int | None = None
    none: bool = False
    unit: str = ""

    def describe(self) -> str:
        """The help line with unit and range, as in ``--help`` and the parameters cells."""
        rng = ""
        if self.kind in ("int", "float"):
            rng = f"{self.lo:g}..{self.hi:g}" if self.hi is not None else f">= {self.lo:g}"
            if self.multiple:
                rng += f", multiple of {self.multiple}"
        elif self.kind in ("choice", "list"):
            rng = " | ".join(map(str, self.choices))
        unit = f" [{self.unit}]" if self.unit else ""
        return f"{self.help}{unit}" + (f"; {rng}" if rng else "")


def knob(default, help: str, *, unit: str = "", lo=None, hi=None, choices=(), multiple=None, none=False, kind=None):
    """A dataclass field declaring one knob (see :class:`Knob`)."""
    if kind is None:
        if isinstance(default, list):
            kind = "list"
        elif choices:
            kind = "choice"
        elif isinstance(default, float) or isinstance(lo, float):
            kind = "float"
        elif isinstance(default, int):
            kind = "int"
        else:
            kind = "path"
    k = Knob(default, help, kind, lo, hi, tuple(choices), multiple, none, unit)
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"knob": k})
    return field(default=default, metadata={"knob": k})


def check_value(notebook: str, name: str, value: Any, k: Knob) -> Any:
    """``value`` converted to the knob's type, or a one-line ``ValueError`` naming it."""
    where = f"{notebook}: {name} = {value!r}"
    if value is None:
        if k.kind in ("path", "path_or_map") or k.none:
            return None
        raise ValueError(f"{where} is not allowed; give a value")
    if k.kind in ("int", "float"):
        if isinstance(value, (bool, str)):
            raise ValueError(f"{where} is not a number")
        if k.kind == "int":
            if not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
                raise ValueError(f"{where} is not a whole number")
            value = int(value)
        else:
            if not isinstance(value, (int, float)) or value != value:
                raise ValueError(f"{where} is not a number")
            value = float(value)
        if k.lo is not None and value < k.lo:
            raise ValueError(f"{notebook}: {name} = {value!r} is below {k.lo}")
        if k.hi is not None and value > k.hi:
            raise ValueError(f"{notebook}: {name} = {value!r} is above {k.hi}")
        if k.multiple and value % k.multiple:
            m = k.multiple
            raise ValueError(f"{where} is not a multiple of {m} (e.g. {max(m, round(value / m) * m)})")
        return value
    if k.kind == "choice":
        if value not in k.choices:
            raise ValueError(f"{where} is not one of {', '.join(map(repr, k.choices))}")
        return value
    if k.kind == "list":
        items = [v.strip() for v in value.split(",")] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not items:
            raise ValueError(f"{where}: give a non-empty list, e.g. [{k.choices[0]!r}]")
        bad = [v for v in items if v not in k.choices]
        if bad:
            raise ValueError(f"{notebook}: {name}: unknown {bad[0]!r}; choose from {', '.join(k.choices)}")
        if len(set(items)) != len(items):
            raise ValueError(f"{where} lists an entry twice")
        return list(items)
    if k.kind == "text" and (not isinstance(value, str) or not value.strip()):
        raise ValueError(f"{where} is not a name")
    if k.kind == "path" and not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"{where} is not a path")
    if k.kind == "path_or_map" and not isinstance(value, (str, os.PathLike, dict)):
        raise ValueError(f"{where} is neither a YAML path nor a mapping")
    return value


_COMMON_HELP = {
    "profile": "smoke | workshop | full",
    "run_dir": "default: runs/<profile> (or $CAROTIDKIT_RUNS/<profile>)",
    "seed": "seed of every random step",
}


@dataclass(frozen=True)
class StageSettings(Mapping):
    """Base of the six settings classes: ``profile``, ``run_dir``, ``seed`` plus the stage's knobs.

    A read-only mapping too (``**cfg``, ``dict(cfg)``); made by :meth:`for_profile` (profile
    values, then overrides) or directly (defaults, then the arguments).
    """

    NOTEBOOK: ClassVar[str] = ""
    profile: str = "workshop"
    run_dir: str | None = None
    seed: int = 0

    def __post_init__(self):
        nb = self.NOTEBOOK
        if self.profile not in PROFILE_NAMES:
            raise ValueError(f"unknown profile {self.profile!r}; choose one of {', '.join(PROFILE_NAMES)}")
        s = self.seed
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not float(s).is_integer() or s < 0:
            raise ValueError(f"{nb}: seed = {s!r} is not a non-negative whole number")
        object.__setattr__(self, "seed", int(s))
        for name, k in self.knobs().items():
            object.__setattr__(self, name, check_value(nb, name, getattr(self, name), k))
        from .layout import RunLayout

        object.__setattr__(self, "run_dir", str(RunLayout.for_profile(self.profile, self.run_dir).run_dir))
        self.check()

    def check(self) -> None:
        """Refuse combinations of knobs that each range allows but that cannot be built."""

    # ------------------------------------------------------------------ declared knobs
    @classmethod
    def knobs(cls) -> dict[str, Knob]:
        """The stage's own knobs (name -> :class:`Knob`), in declaration order."""
        return {f.name: f.metadata["knob"] for f in dataclasses.fields(cls) if "knob" in f.metadata}

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Workshop values of the stage's knobs (fresh copies)."""
        return {n: (list(k.default) if isinstance(k.default, list) else k.default) for n, k in cls.knobs().items()}

    @classmethod
    def for_profile(cls, profile: str = "workshop", run_dir=None, seed=None, **overrides) -> "StageSettings":
        """The profile's values, then the non-``None`` overrides; unknown names are refused."""
        from .profiles import PROFILES

        profile = profile or "workshop"
        if profile not in PROFILE_NAMES:
            raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILE_NAMES)}")
        values = cls.defaults()
        unknown = sorted(set(overrides) - set(values))
        if unknown:
            raise KeyError(
                f"{cls.NOTEBOOK}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(values))}"
            )
        values.update(PROFILES[profile].get(cls.NOTEBOOK, {}))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(profile=profile, run_dir=run_dir, seed=0 if seed is None else seed, **values)

    def replace(self, **changes) -> "StageSettings":
        """A copy with ``changes`` (``None`` = keep); checked like a new one."""
        unknown = sorted(set(changes) - set(self))
        if unknown:
            raise KeyError(f"{self.NOTEBOOK}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(self)}")
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    # ------------------------------------------------------------------ mapping
    def __getitem__(self, key):
        if key in self._names():
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self):
        return iter(self._names())

    def __len__(self):
        return len(self._names())

    @classmethod
    def _names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def to_frame(self):
        import pandas as pd

        helps = {**_COMMON_HELP, **{n: k.describe() for n, k in self.knobs().items()}}
        return pd.DataFrame(
            {"parameter": list(self), "value": [repr(v) for v in self.values()], "meaning": [helps[n] for n in self]}
        )

    def _repr_html_(self):
        return self.to_frame().to_html(index=False)


# ----------------------------------------------------------------------------- shared ranges

_JOBS = dict(lo=0, hi=64, unit="processes")
_BOOT = dict(lo=0, hi=100_000)


@dataclass(frozen=True)
class DataSettings(StageSettings):
    """00 · data: the simulator's size and truth, or your own data by path."""

    NOTEBOOK: ClassVar[str] = "00_data"
    n_subjects: int = knob(2000, "simulated subjects (both sides filmed)", lo=5, hi=1_000_000)
    n_plaque_images: int = knob(541, "simulated plaque-database images", lo=4, hi=100_000)
    plaque_db_size_px: int = knob(800, "side of the simulated database images", unit="px", lo=64, hi=4096)
    cine_size_px: int = knob(64, "side of the simulated cine loops", unit="px", lo=16, hi=1024)
    cine_seconds: float = knob(1.4, "length of each simulated loop", unit="s", lo=0.2, hi=60.0)
    vd_hr_per_sd: float = knob(1.4, "planted hazard ratio of the latent damage per SD", lo=0.1, hi=10.0)
    followup_years: float = knob(12.0, "administrative end of simulated follow-up", unit="years", lo=0.5, hi=60.0)
    vd_pattern: str = knob(
        "local",
        "how damage shows in the loops: local (far-wall perivascular texture, wall stiffening) or global "
        "(perivascular brightness and pulsatility: simulator version 5)",
        choices=("local", "global"),
    )
    vd_signal: float = knob(2.0, "strength of the local damage signature in the loops (0: none)", lo=0.0, hi=5.0)
    acquisition: float = knob(
        1.0, "per-loop variation of gain, TGC, dynamic range, depth, probe angle and motion (0: fixed)", lo=0.0, hi=3.0
    )
    stills_per_side: int = knob(
        1,
        "simulated B-mode stills per filmed side (0: none; 02 then uses each loop's end-diastolic frame)",
        lo=0,
        hi=10,
    )
    still_size_px: int = knob(
        512, "side of the simulated stills (database style: 4:3 stretched)", unit="px", lo=128, hi=4096
    )
    n_jobs: int = knob(2, "processes simulating (0: all cores)", **_JOBS)
    plaque_db_dir: str | None = knob(None, "your Ar-PlaqSegm1-style folder (train/ test/)")
    cohort_path: str | None = knob(None, "your cohort table (CSV, Parquet, Stata, SAS, Excel)")
    column_map: Any = knob(None, "YAML mapping your column names/units onto carotidkit's", kind="path_or_map")
    cohort_encoding: str | None = knob(
        None,
        "text encoding of a CSV cohort that is not UTF-8",
        choices=("utf-8", "latin-1", "cp1252", "utf-16"),
        none=True,
    )
    cohort_sep: str | None = knob(
        None, "separator of a CSV cohort that is not comma-separated", choices=(",", ";", "\t", "|"), none=True
    )
    video_dir: str | None = knob(None, "your cine loops (DICOM, AVI/MP4, NPY/NPZ, frame folders)")
    still_dir: str | None = knob(
        None,
        "your per-subject B-mode stills: a folder of <subject>_<left|right|L|R>[_n].png/.jpg/.dcm, or a manifest "
        "(subject_id, side, path[, pixel_spacing_row_mm, pixel_spacing_col_mm])",
    )
    gallery_n: int = knob(8, "images in the gallery", lo=0, hi=100)

    #: the knobs the simulator takes (carotidkit.synth.generate's defaults are these)
    SIMULATOR: ClassVar[tuple[str, ...]] = (
        "n_subjects",
        "n_plaque_images",
        "plaque_db_size_px",
        "cine_size_px",
        "cine_seconds",
        "vd_hr_per_sd",
        "followup_years",
        "vd_pattern",
        "vd_signal",
        "acquisition",
        "stills_per_side",
        "still_size_px",
        "n_jobs",
    )


@dataclass(frozen=True)
class CleanSettings(StageSettings):
    """01 · cleaning: redaction, squaring, duplicates and the group-aware split."""

    NOTEBOOK: ClassVar[str] = "01_cleaning"
    model_size_px: int = knob(
        96, "side of the square images the U-Nets see (five 2x poolings)", unit="px", lo=32, hi=1024, multiple=32
    )
    square: str = knob("pad", "pad (keep aspect, black bars) or resize (stretch)", choices=("pad", "resize"))
    undo_stretch: float | None = knob(
        None, "undo an export stretch, e.g. 1.3333 for 4:3 -> square", lo=0.2, hi=5.0, none=True, kind="float"
    )
    inpaint_radius: int = knob(3, "radius of the inpainting of burned-in marks", unit="px", lo=1, hi=50)
    near_dup_hamming: int = knob(4, "dHash bits two near-duplicate images may differ in", unit="bits", lo=0, hi=64)
    min_speck_px: int = knob(20, "mask components smaller than this are flagged as specks", unit="px", lo=0, hi=10_000)
    val_fraction: float = knob(0.15, "validation share (whole duplicate groups at a time)", lo=0.01, hi=0.9)
    n_jobs: int = knob(2, "processes cleaning (0: all cores)", **_JOBS)
    gallery_n: int = knob(6, "images in the before/after gallery", lo=0, hi=100)
    second_reader_dir: str | None = knob(
        None, "a second annotator's masks, named like the database's (simulated: annotator 2)"
    )


BACKBONES = ("mobilenetv2", "efficientnetb0", "efficientnetv2b0", "resnet50", "vgg16", "densenet121")


@dataclass(frozen=True)
class UnetSettings(StageSettings):
    """02 · U-Net ensemble: three encoders trained on flip/shift-augmented data, voted pixel-wise."""

    NOTEBOOK: ClassVar[str] = "02_unet_ensemble"
    backbones: list = knob(["mobilenetv2", "efficientnetb0", "efficientnetv2b0"], "encoders", choices=BACKBONES)
    epochs: int = knob(8, "training epochs (at most)", lo=1, hi=100_000)
    batch_size: int = knob(16, "images per batch", lo=1, hi=4096)
    learning_rate: float = knob(1e-3, "Adam learning rate", lo=1e-7, hi=1.0)
    patience: int = knob(3, "early stopping on validation Dice", unit="epochs", lo=1, hi=100_000)
    vote: str = knob("majority", "pixel-wise vote of the members", choices=("majority", "mean"))
    n_boot: int = knob(1000, "bootstrap resamples for confidence intervals", **_BOOT)
    weights_dir: str | None = knob(None, "local folder with <backbone>.weights.h5 encoder weights (never downloaded)")
    vflip: float = knob(0.5, "share of training images also flipped upside down (0: left-right only)", lo=0.0, hi=1.0)
    n_jobs: int = knob(0, "U-Nets trained at once, one process each (0: all; 1: one after another)", **_JOBS)


@dataclass(frozen=True)
class VdSettings(StageSettings):
    """03 · VD: the cross-fitted video network on the weak hypertension label."""

    NOTEBOOK: ClassVar[str] = "03_vd_video"
    architecture: str = knob("r2plus1d", "video network", choices=("r2plus1d", "vivit"))
    folds: int = knob(3, "K of the cross-fitting", lo=2, hi=50)
    epochs: int = knob(5, "training epochs per fold (at most)", lo=1, hi=100_000)
    batch_size: int = knob(16, "clips per batch", lo=1, hi=4096)
    learning_rate: float = knob(2e-3, "peak AdamW learning rate", lo=1e-7, hi=1.0)
    weight_decay: float = knob(1e-4, "AdamW weight decay", lo=0.0, hi=1.0)
    frames: int = knob(8, "frames per clip", lo=2, hi=512)
    period: int = knob(4, "take every period-th frame (8 x 4 at 25 fps covers one heart beat)", lo=1, hi=64)
    input_size_px: int = knob(48, "clips are resized to this square", unit="px", lo=16, hi=1024, multiple=8)
    clip_seconds: float = knob(
        1.28, "seconds of each loop cached; all its windows are scored", unit="s", lo=0.2, hi=120.0
    )
    clips_per_video: int = knob(1, "random windows drawn from each loop per epoch", lo=1, hi=64)
    width: int = knob(16, "channels of the first stage", lo=2, hi=1024)
    depth: int = knob(1, "residual blocks per stage", lo=1, hi=16)
    dropout: float = knob(0.2, "dropout before the head", lo=0.0, hi=0.9)
    schedule: str = knob("onecycle", "learning-rate schedule", choices=("onecycle", "constant"))
    patience: int = knob(3, "early stopping on inner-validation AUROC", unit="epochs", lo=1, hi=100_000)
    val_fraction: float = knob(0.15, "inner validation share of each training fold", lo=0.05, hi=0.5)
    pretrain_epochs: int = knob(0, "VideoMAE pretraining epochs (vivit only)", lo=0, hi=10_000)
    weights_path: str | None = knob(None, "local state_dict to start from (never downloaded)")
    label: str = knob("hypertension", "the weak proxy label: a 0/1 column of the cohort", kind="text")
    n_boot: int = knob(1000, "bootstrap resamples for CIs", **_BOOT)
    n_jobs: int = knob(2, "processes decoding videos into the cache (0: all cores)", **_JOBS)

    #: knobs that change the trained model (the checkpoint key); the rest only change how it runs
    NOT_TRAINING: ClassVar[tuple[str, ...]] = ("n_boot", "n_jobs")

    def check(self) -> None:
        """R(2+1)D normalises channels in groups of 8 (``width`` a multiple of 4); the video
        transformer's 4 attention heads must divide its width (``6 * width``: even) and its
        tubelets span 2 frames (``frames`` even, also for VideoMAE)."""
        from .io import CarotidkitError

        w, f = self.width, self.frames
        if self.architecture == "r2plus1d" and w % 4:
            raise CarotidkitError(
                f"03_vd_video: width = {w} cannot be built for r2plus1d (channels are normalised in groups of "
                f"8: use a multiple of 4, e.g. {max(4, round(w / 4) * 4)})"
            )
        if self.architecture == "vivit":
            if max(32, 6 * w) % 4:
                raise CarotidkitError(
                    f"03_vd_video: width = {w} cannot be built for vivit (4 attention heads must divide "
                    f"the embedding of {6 * w}: use an even width)"
                )
            if f % 2:
                raise CarotidkitError(
                    f"03_vd_video: frames = {f} cannot be built for vivit (tubelets span 2 frames: use an even number)"
                )

    def training(self) -> dict[str, Any]:
        """The knobs that define the trained model (sorted), as the checkpoint key reads them."""
        return {k: self[k] for k in sorted(self.knobs()) if k not in self.NOT_TRAINING}


XAI_METHODS = ("integrated_gradients", "occlusion", "grad_cam")


@dataclass(frozen=True)
class XaiSettings(StageSettings):
    """04 · explanations of VD."""

    NOTEBOOK: ClassVar[str] = "04_xai"
    n_explain: int = knob(24, "out-of-fold subjects explained, spread over the VD range", lo=2, hi=100_000)
    n_sanity: int = knob(4, "clips in the cascading-randomisation test", lo=1, hi=10_000)
    methods: list = knob(list(XAI_METHODS), "captum attribution methods", choices=XAI_METHODS)
    n_boot: int = knob(1000, "subject-bootstrap replicates", **_BOOT)
    baseline: str = knob(
        "anechoic",
        "reference input of IG and Occlusion: a black (anechoic) or mean frame",
        choices=("anechoic", "mean"),
    )


@dataclass(frozen=True)
class SurvivalSettings(StageSettings):
    """05 · VD against SCORE2 for MI, cardiac death and all-cause death."""

    NOTEBOOK: ClassVar[str] = "05_survival"
    region: str = knob(
        "moderate", "SCORE2 risk region (Germany: moderate)", choices=("low", "moderate", "high", "very high")
    )
    horizon_years: float = knob(10.0, "horizon of absolute risks, calibration and NRI", unit="years", lo=0.5, hi=40.0)
    groups: int = knob(4, "VD groups for Kaplan–Meier (4: quartiles, 3: tertiles)", lo=3, hi=5)
    n_boot: int = knob(1000, "bootstrap replicates for CIs", **_BOOT)
    vd_source: str = knob("vd", "03's out-of-fold score, or the simulator's vd_true", choices=("vd", "truth"))
    ph_transform: str = knob(
        "km",
        "g(t) of the proportional-hazards test (R's cox.zph default: km)",
        choices=("km", "rank", "identity", "log"),
    )


#: notebook -> its settings class
SETTINGS: dict[str, type[StageSettings]] = {
    c.NOTEBOOK: c for c in (DataSettings, CleanSettings, UnetSettings, VdSettings, XaiSettings, SurvivalSettings)
}


def for_notebook(notebook: str) -> type[StageSettings]:
    if notebook not in SETTINGS:
        raise KeyError(f"unknown notebook {notebook!r}; known: {', '.join(SETTINGS)}")
    return SETTINGS[notebook]


def parameters_cell(notebook: str) -> str:
    """The source of a notebook's parameters cell, generated from its settings class (every
    knob ``None`` = the profile's value); ``tools/nb2py.py --params`` writes it into the notebook."""
    cls = for_notebook(notebook)
    lines = [
        f'profile = "workshop"  # {_COMMON_HELP["profile"]}',
        f"run_dir = None  # {_COMMON_HELP['run_dir']}",
        "seed = 0",
    ]
    lines += [f"{n} = None  # {k.describe()}" for n, k in cls.knobs().items()]
    return "\n".join(lines)


def add_arguments(parser, cls: type[StageSettings]) -> None:
    """One ``--knob`` option per knob of ``cls`` (default ``None``: the profile's value)."""
    import json

    def parse(k: Knob):
        if k.kind == "int":
            return int
        if k.kind == "float":
            return float
        if k.kind == "list":
            return lambda s: json.loads(s) if s.startswith("[") else s.split(",")
        return str

    for n, k in cls.knobs().items():
        opts = dict(type=parse(k), default=None, help=f"{k.describe()}; workshop: {k.default!r}")
        if k.kind == "choice":
            opts["choices"] = list(k.choices)
        parser.add_argument(f"--{n.replace('_', '-')}", **opts)


__all__ = [
    "Knob",
    "knob",
    "StageSettings",
    "DataSettings",
    "CleanSettings",
    "UnetSettings",
    "VdSettings",
    "XaiSettings",
    "SurvivalSettings",
    "SETTINGS",
    "for_notebook",
    "parameters_cell",
    "add_arguments",
    "PROFILE_NAMES",
]
