"""Vascular damage (VD) from carotid cine loops: clip cache, video networks (R(2+1)D, video
transformer with VideoMAE pretraining), cross-fitted training on the hypertension label, and
notebook 03's stage (:func:`run`). torch is imported only when these are used.
"""


def run(**settings):
    """Notebook 03's stage: see :func:`carotidkit.vd.stage.run`."""
    from .stage import run as _run

    return _run(**settings)


__all__ = ["run"]
