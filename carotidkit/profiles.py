"""Run profiles (smoke / workshop / full) as overlays of the declared settings, and the resolver
every notebook calls.

Every knob is declared once, with its workshop default, in :mod:`carotidkit.settings`; a profile
here only lists where it differs. A notebook's parameters cell declares ``profile``, ``run_dir``, ``seed`` and its own knobs with
``None`` meaning "the profile's value"; :func:`settings` fills them in. The report runner injects
the same resolved values, so an interactive run and ``make report`` see identical settings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .settings import PROFILE_NAMES, StageSettings, check_value, for_notebook  # noqa: F401 (re-exported)

#: notebook -> the folder (under the run folder) it writes; the data flow of docs/DESIGN.md.
STAGES: dict[str, str] = {
    "00_data": "data",
    "01_cleaning": "clean",
    "02_unet_ensemble": "unet",
    "03_vd_video": "vd",
    "04_xai": "xai",
    "05_survival": "survival",
}

#: Per-profile differences from the workshop values declared in :mod:`carotidkit.settings`.
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
    k = for_notebook(notebook).knobs().get(name)
    return value if k is None else check_value(notebook, name, value, k)


#: What :func:`settings` returns: the stage's settings object (a read-only mapping).
Settings = StageSettings


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
    return for_notebook(notebook).defaults()


def settings(notebook: str, profile: str = "workshop", run_dir=None, seed: int | None = None, **overrides):
    """Resolve a notebook's parameters: profile values, then non-None overrides.

    Example:
        >>> cfg = settings("02_unet_ensemble", "smoke", epochs=3)
        >>> cfg.epochs, cfg.profile
        (3, 'smoke')
    """
    return for_notebook(notebook).for_profile(profile, run_dir=run_dir, seed=seed, **overrides)


def notebook_settings(notebook: str, namespace: dict) -> Settings:
    """Resolve a notebook's settings from the variables its parameters cell defined.

    Example (in a notebook, after the parameters cell):
        >>> cfg = notebook_settings("05_survival", {"profile": "smoke", "run_dir": None, "seed": 0})
        >>> cfg.n_boot
        100
    """
    names = knobs(notebook)
    cfg = settings(
        notebook,
        namespace.get("profile", "workshop"),
        run_dir=namespace.get("run_dir"),
        seed=namespace.get("seed"),
        **{k: namespace[k] for k in names if k in namespace},
    )
    if _in_kernel():  # a notebook being run: its figures also go to the paper bundle
        from . import plots
        from .layout import RunLayout

        plots.export_to(RunLayout(cfg.run_dir).figures_dir(notebook))
    return cfg


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    ip = get_ipython()
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"
