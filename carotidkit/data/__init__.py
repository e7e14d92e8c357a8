"""Loaders for real data: the plaque database folder, carotid videos, cohort tables.

Each returns tidy, canonical structures (docs/DESIGN.md) and fails on bad input with one
:class:`~carotidkit.io.CarotidkitError` line naming the file/row, the problem and the fix.
Raw files are only ever read.
"""

from ..io import CarotidkitError
from .cohort import CANONICAL, load_cohort, map_columns, validate_cohort
from .plaque_db import load_plaque_db, read_image, read_mask
from .video import Video, load_video

__all__ = [
    "CarotidkitError",
    "CANONICAL",
    "load_cohort",
    "validate_cohort",
    "load_plaque_db",
    "read_image",
    "read_mask",
    "Video",
    "load_video",
    "map_columns",
    "prepare_data",
    "data_paths",
]
from .prepare import cine_table, data_paths, prepare_data  # noqa: E402, F401


def run(settings=None, /, **knobs):
    """Notebook 00's stage: see :func:`carotidkit.data.stage.run` (its settings object, or knobs as keywords)."""
    from .stage import run as _run

    return _run(settings, **knobs)
