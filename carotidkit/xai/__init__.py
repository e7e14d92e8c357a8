"""Explanations with numbers: captum attributions of the video model summarised by anatomical
region, sanity (cascading randomisation) and faithfulness (deletion) checks, and VD's associations
with risk factors (adjusted regression next to SHAP). Notebook 04's stage is :func:`run`."""


def run(settings=None, /, **knobs):
    """Notebook 04's stage: see :func:`carotidkit.xai.stage.run` (its settings object, or knobs as keywords)."""
    from .stage import run as _run

    return _run(settings, **knobs)


__all__ = ["run"]
