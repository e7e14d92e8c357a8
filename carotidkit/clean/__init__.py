"""01_cleaning: overlay detection and inpainting, scan-area crop/square/resize, mask QC,
duplicates and split leakage (:mod:`.core`), and the stage itself (:func:`run`)."""

from .core import (
    QC_FLAGS,
    CleanedExport,
    Geometry,
    alignment,
    clean_database,
    clean_export,
    cleaning_score,
    crop_square_resize,
    detect_overlays,
    dhash,
    duplicate_groups,
    group_split,
    inpaint,
    leakage_table,
    make_splits,
    mask_qc,
    pixel_hash,
    psnr,
    redact_clip,
    redact_for_display,
    scan_box,
)


def run(settings=None, /, **knobs):
    """Notebook 01's stage: see :func:`carotidkit.clean.stage.run` (its settings object, or knobs as keywords)."""
    from .stage import run as _run

    return _run(settings, **knobs)


__all__ = [
    "QC_FLAGS",
    "CleanedExport",
    "Geometry",
    "alignment",
    "clean_database",
    "clean_export",
    "cleaning_score",
    "crop_square_resize",
    "detect_overlays",
    "dhash",
    "duplicate_groups",
    "group_split",
    "inpaint",
    "leakage_table",
    "make_splits",
    "mask_qc",
    "pixel_hash",
    "psnr",
    "redact_clip",
    "redact_for_display",
    "run",
    "scan_box",
]
