"""Vascular damage (VD) from carotid cine loops: clip cache, video networks (R(2+1)D, video
transformer with VideoMAE pretraining), cross-fitted training on the hypertension label, and
notebook 03's stage (:func:`run`). torch is imported only when these are used.
"""


def run(settings=None, /, **knobs):
    """Notebook 03's stage: see :func:`carotidkit.vd.stage.run` (its settings object, or knobs as keywords)."""
    from .stage import run as _run

    return _run(settings, **knobs)


__all__ = ["run"]
