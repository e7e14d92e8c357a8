"""Run profiles (smoke / workshop / full) in one table, and the resolver every notebook calls.

A notebook's parameters cell declares ``profile``, ``run_dir``, ``seed`` and its own knobs with
``None`` meaning "the profile's value"; :func:`settings` fills them in. The report runner injects
the same resolved values, so an interactive run and ``make report`` see identical settings.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

PROFILE_NAMES = ("smoke", "workshop", "full")

#: notebook -> the folder (under the run folder) it writes; the data flow of docs/DESIGN.md.
STAGES: dict[str, str] = {
    "00_data": "data",
    "01_cleaning": "clean",
    "02_unet_ensemble": "unet",
    "03_vd_video": "vd",
    "04_xai": "xai",
    "05_survival": "survival",
}

#: Workshop values (the default profile): meaningful results on a 2-core laptop CPU.
DEFAULTS: dict[str, dict[str, Any]] = {
    "00_data": {
        # synthetic cohort / simulator
        "n_subjects": 2000,
        "n_plaque_images": 541,
        "plaque_db_size_px": 800,
        "cine_size_px": 64,
        "cine_seconds": 1.4,
        "vd_hr_per_sd": 1.4,
        "followup_years": 12.0,
        "n_jobs": 2,
        # real data (any of these set -> that part is read instead of simulated)
        "plaque_db_dir": None,
        "cohort_path": None,
        "column_map": None,
        "cohort_encoding": None,  # text encoding of a CSV cohort that is not UTF-8 (e.g. latin-1)
        "cohort_sep": None,  # separator of a CSV cohort that is not comma-separated (e.g. ;)
        "video_dir": None,
        "gallery_n": 8,
    },
    "01_cleaning": {
        "model_size_px": 96,  # 2-core budget; full uses 256
        "square": "pad",  # "pad" (keep aspect, black bars) or "resize" (stretch)
        "undo_stretch": None,  # e.g. 1.3333 to undo a 4:3 -> square export stretch
        "inpaint_radius": 3,
        "near_dup_hamming": 4,
        "min_speck_px": 20,
        "val_fraction": 0.15,  # group-aware validation share of the development images
        "n_jobs": 2,
        "gallery_n": 6,
        "second_reader_dir": None,  # a second annotator's masks (simulated data: annotator 2's)
    },
    "02_unet_ensemble": {
        "backbones": ["mobilenetv2", "efficientnetb0", "efficientnetv2b0"],
        "epochs": 8,
        "batch_size": 16,
        "learning_rate": 1e-3,
        "patience": 3,
        "vote": "majority",
        "n_boot": 1000,
        "weights_dir": None,  # optional local folder of encoder weights (opt-in; never downloaded)
        "vflip": 0.5,  # share of training images also flipped upside down (both walls' plaques)
        "n_jobs": 0,  # U-Nets trained at once, one process each (0 = all; 1 = one after another)
    },
    "03_vd_video": {
        "architecture": "r2plus1d",  # or "vivit" (video transformer; pretrain_epochs > 0 for VideoMAE)
        "folds": 3,
        "epochs": 5,
        "batch_size": 16,
        "learning_rate": 2e-3,
        "frames": 8,
        "period": 4,
        "input_size_px": 48,
        "clip_seconds": 1.28,  # seconds of each loop cached; every window of it is scored and averaged
        "width": 16,
        "depth": 1,
        "patience": 3,
        "pretrain_epochs": 0,
        "weights_path": None,  # optional local state_dict (opt-in; never downloaded)
        "n_boot": 1000,
        "n_jobs": 2,
    },
    "04_xai": {
        "n_explain": 24,  # out-of-fold subjects explained, spread over the VD range
        "n_sanity": 4,  # clips in the cascading-randomisation test
        "methods": ["integrated_gradients", "occlusion", "grad_cam"],
        "n_boot": 1000,
        "baseline": "anechoic",  # reference input of IG/Occlusion: "anechoic" (black) or "mean" (grey)
    },
    "05_survival": {
        "region": "moderate",
        "horizon_years": 10.0,
        "groups": 4,
        "n_boot": 1000,
        "vd_source": "vd",
        "ph_transform": "km",  # g(t) of the proportional-hazards test (R's cox.zph default)
    },
}

#: Per-profile differences from DEFAULTS.
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "smoke": {
        "00_data": {
            "n_subjects": 240,
            "n_plaque_images": 40,
            "plaque_db_size_px": 800,
            "cine_size_px": 32,
            "cine_seconds": 1.3,
            "gallery_n": 4,
            "n_jobs": 1,
        },
        "01_cleaning": {"model_size_px": 64, "n_jobs": 1, "gallery_n": 3},
        "02_unet_ensemble": {"epochs": 1, "batch_size": 8, "n_boot": 50, "patience": 1, "n_jobs": 1},
        "03_vd_video": {"folds": 2, "epochs": 1, "input_size_px": 32, "width": 8, "n_boot": 50, "n_jobs": 1},
        "04_xai": {"n_explain": 4, "n_sanity": 2, "n_boot": 100},
        "05_survival": {"n_boot": 100},
    },
    "workshop": {},
    "full": {
        "00_data": {"n_subjects": 15000, "cine_size_px": 112, "cine_seconds": 3.0, "n_jobs": 0},
        "01_cleaning": {"model_size_px": 256, "n_jobs": 0},
        "02_unet_ensemble": {
            "backbones": ["mobilenetv2", "efficientnetb0", "resnet50"],
            "epochs": 80,
            "patience": 10,
            "n_boot": 2000,
        },
        "03_vd_video": {
            "folds": 5,
            "epochs": 30,
            "input_size_px": 112,
            "frames": 16,
            "period": 2,
            "width": 32,
            "depth": 2,
            "patience": 5,
            "n_boot": 2000,
            "n_jobs": 0,
        },
        "05_survival": {"n_boot": 2000},
    },
}


# ----------------------------------------------------------------------------- knob rules

_POS_INT = ("int", 1, None)
_N_JOBS = ("int", 0, 64)  # 0 = all cores
_N_BOOT = ("int", 0, 100_000)
_LR = ("float", 1e-7, 1.0)
_PATH = ("path",)

#: Type and range of every knob (checked by :func:`settings`, so ``-p epochs -3`` or
#: ``square=diagonal`` fails at once with one line instead of late or not at all).
#: ``("int"|"float", lo, hi)``, ``("choice", options)``, ``("list", options)``, ``("path",)``;
#: ``multiple`` = must be a multiple of it; ``none`` = ``None`` allowed.
RULES: dict[str, dict[str, tuple]] = {
    "00_data": {
        "n_subjects": ("int", 5, 1_000_000),
        "n_plaque_images": ("int", 4, 100_000),
        "plaque_db_size_px": ("int", 64, 4096),
        "cine_size_px": ("int", 16, 1024),
        "cine_seconds": ("float", 0.2, 60.0),
        "vd_hr_per_sd": ("float", 0.1, 10.0),
        "followup_years": ("float", 0.5, 60.0),
        "n_jobs": _N_JOBS,
        "plaque_db_dir": _PATH,
        "cohort_path": _PATH,
        "column_map": ("path_or_map",),
        "cohort_encoding": ("choice", ("utf-8", "latin-1", "cp1252", "utf-16"), None, {"none": True}),
        "cohort_sep": ("choice", (",", ";", "\t", "|"), None, {"none": True}),
        "video_dir": _PATH,
        "gallery_n": ("int", 0, 100),
    },
    "01_cleaning": {
        "model_size_px": ("int", 32, 1024, {"multiple": 32}),  # five 2x poolings in the U-Net
        "square": ("choice", ("pad", "resize")),
        "undo_stretch": ("float", 0.2, 5.0, {"none": True}),
        "inpaint_radius": ("int", 1, 50),
        "near_dup_hamming": ("int", 0, 64),
        "min_speck_px": ("int", 0, 10_000),
        "val_fraction": ("float", 0.01, 0.9),
        "n_jobs": _N_JOBS,
        "gallery_n": ("int", 0, 100),
        "second_reader_dir": _PATH,
    },
    "02_unet_ensemble": {
        "backbones": (
            "list",
            ("mobilenetv2", "efficientnetb0", "efficientnetv2b0", "resnet50", "vgg16", "densenet121"),
        ),
        "epochs": _POS_INT,
        "batch_size": ("int", 1, 4096),
        "learning_rate": _LR,
        "patience": _POS_INT,
        "vote": ("choice", ("majority", "mean")),
        "n_boot": _N_BOOT,
        "weights_dir": _PATH,
        "vflip": ("float", 0.0, 1.0),
        "n_jobs": _N_JOBS,
    },
    "03_vd_video": {
        "architecture": ("choice", ("r2plus1d", "vivit")),
        "folds": ("int", 2, 50),
        "epochs": _POS_INT,
        "batch_size": ("int", 1, 4096),
        "learning_rate": _LR,
        "frames": ("int", 2, 512),
        "period": ("int", 1, 64),
        "input_size_px": ("int", 16, 1024, {"multiple": 8}),
        "clip_seconds": ("float", 0.2, 120.0),
        "width": ("int", 2, 1024),
        "depth": ("int", 1, 16),
        "patience": _POS_INT,
        "pretrain_epochs": ("int", 0, 10_000),
        "weights_path": _PATH,
        "n_boot": _N_BOOT,
        "n_jobs": _N_JOBS,
    },
    "04_xai": {
        "n_explain": ("int", 2, 100_000),
        "n_sanity": ("int", 1, 10_000),
        "methods": ("list", ("integrated_gradients", "occlusion", "grad_cam")),
        "baseline": ("choice", ("anechoic", "mean")),
        "n_boot": _N_BOOT,
    },
    "05_survival": {
        "region": ("choice", ("low", "moderate", "high", "very high")),
        "horizon_years": ("float", 0.5, 40.0),
        "groups": ("int", 3, 5),
        "n_boot": _N_BOOT,
        "vd_source": ("choice", ("vd", "truth")),
        "ph_transform": ("choice", ("km", "rank", "identity", "log")),
    },
}


def check_knob(notebook: str, name: str, value: Any) -> Any:
    """Return ``value`` converted to the knob's type, or raise a one-line ``ValueError``.

    Example:
        >>> check_knob("02_unet_ensemble", "backbones", "mobilenetv2")
        ['mobilenetv2']
        >>> check_knob("02_unet_ensemble", "epochs", -3)
        Traceback (most recent call last):
        ...
        ValueError: 02_unet_ensemble: epochs = -3 is below 1
    """
    rule = RULES.get(notebook, {}).get(name)
    if rule is None:
        return value
    where = f"{notebook}: {name} = {value!r}"
    kind = rule[0]
    extra = rule[3] if len(rule) > 3 else {}
    if value is None:
        if kind in ("path", "path_or_map") or extra.get("none"):
            return None
        raise ValueError(f"{where} is not allowed; give a value")
    if kind in ("int", "float"):
        if isinstance(value, bool) or isinstance(value, str):
            raise ValueError(f"{where} is not a number")
        if kind == "int":
            if not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
                raise ValueError(f"{where} is not a whole number")
            value = int(value)
        else:
            if not isinstance(value, (int, float)) or value != value:
                raise ValueError(f"{where} is not a number")
            value = float(value)
        lo, hi = rule[1], rule[2]
        if lo is not None and value < lo:
            raise ValueError(f"{notebook}: {name} = {value!r} is below {lo}")
        if hi is not None and value > hi:
            raise ValueError(f"{notebook}: {name} = {value!r} is above {hi}")
        m = extra.get("multiple")
        if m and value % m:
            raise ValueError(f"{where} is not a multiple of {m} (e.g. {max(m, round(value / m) * m)})")
        return value
    if kind == "choice":
        if value not in rule[1]:
            raise ValueError(f"{where} is not one of {', '.join(map(repr, rule[1]))}")
        return value
    if kind == "list":
        items = [v.strip() for v in value.split(",")] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not items:
            raise ValueError(f"{where}: give a non-empty list, e.g. [{rule[1][0]!r}]")
        bad = [v for v in items if v not in rule[1]]
        if bad:
            raise ValueError(f"{notebook}: {name}: unknown {bad[0]!r}; choose from {', '.join(rule[1])}")
        if len(set(items)) != len(items):
            raise ValueError(f"{where} lists an entry twice")
        return list(items)
    if kind == "path" and not isinstance(value, (str, os.PathLike)):
        raise ValueError(f"{where} is not a path")
    if kind == "path_or_map" and not isinstance(value, (str, os.PathLike, dict)):
        raise ValueError(f"{where} is neither a YAML path nor a mapping")
    return value


class Settings(dict):
    """A dict with attribute access (``cfg.epochs``) that prints as a tidy table."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame({"parameter": list(self), "value": [repr(v) for v in self.values()]})

    def _repr_html_(self):
        return self.to_frame().to_html(index=False)


def repo_root(start: str | os.PathLike | None = None) -> Path:
    """The carotidkit checkout containing ``start`` (default: cwd), else ``start`` itself."""
    start = Path(start or os.getcwd()).resolve()
    for p in (start, *start.parents):
        if (p / "notebooks").is_dir() and (p / "carotidkit").is_dir():
            return p
    return start


def default_run_dir(profile: str) -> Path:
    """``runs/<profile>`` (or ``$CAROTIDKIT_RUNS/<profile>``): decided by :meth:`RunLayout.for_profile`."""
    from .layout import RunLayout

    return RunLayout.for_profile(profile).run_dir


def knobs(notebook: str) -> dict[str, Any]:
    """The notebook-specific knobs and their workshop defaults."""
    if notebook not in DEFAULTS:
        raise KeyError(f"unknown notebook {notebook!r}; known: {', '.join(DEFAULTS)}")
    return copy.deepcopy(DEFAULTS[notebook])


def settings(notebook: str, profile: str = "workshop", run_dir=None, seed: int | None = None, **overrides) -> Settings:
    """Resolve a notebook's parameters: profile values, then non-None overrides.

    Example:
        >>> cfg = settings("02_unet_ensemble", "smoke", epochs=3)
        >>> cfg.epochs, cfg.profile
        (3, 'smoke')
    """
    if profile not in PROFILE_NAMES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILE_NAMES)}")
    values = knobs(notebook)
    values.update(copy.deepcopy(PROFILES[profile].get(notebook, {})))
    unknown = sorted(set(overrides) - set(values))
    if unknown:
        raise KeyError(f"{notebook}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(values))}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    values = {k: check_knob(notebook, k, v) for k, v in values.items()}
    if notebook == "03_vd_video":  # combinations the ranges allow but no model can be built for
        from .vd.train import check_settings

        check_settings(values)
    if seed is not None and (isinstance(seed, bool) or not float(seed).is_integer() or int(seed) < 0):
        raise ValueError(f"{notebook}: seed = {seed!r} is not a non-negative whole number")
    run_dir = Path(run_dir) if run_dir else default_run_dir(profile)
    return Settings(profile=profile, run_dir=str(run_dir), seed=0 if seed is None else int(seed), **values)


def notebook_settings(notebook: str, namespace: dict) -> Settings:
    """Resolve a notebook's settings from the variables its parameters cell defined.

    Example (in a notebook, after the parameters cell):
        >>> cfg = notebook_settings("05_survival", {"profile": "smoke", "run_dir": None, "seed": 0})
        >>> cfg.n_boot
        100
    """
    names = knobs(notebook)
    return settings(
        notebook,
        namespace.get("profile", "workshop"),
        run_dir=namespace.get("run_dir"),
        seed=namespace.get("seed"),
        **{k: namespace[k] for k in names if k in namespace},
    )
