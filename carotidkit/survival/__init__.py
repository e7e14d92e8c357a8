"""Survival analysis for VD against SCORE2: risk scores, discrimination, hazard models,
competing risks, calibration and added value; notebook 05's stage (:func:`run`).

Example:
    >>> from carotidkit.synth.cohort import simulate_cohort
    >>> cohort, truth = simulate_cohort(500, seed=1)
    >>> risk = score2(cohort)            # 10-year CVD risk, SCORE2 / SCORE2-OP by age
    >>> bool(risk.between(0, 1).all())
    True
"""

from .discrimination import bootstrap_c, c_index, time_dependent_auc
from .score2 import esc_category, esc_risk, hba1c_pct_to_mmol_mol, score2, score2_diabetes, score2_table

__all__ = [
    "score2",
    "score2_table",
    "score2_diabetes",
    "esc_risk",
    "esc_category",
    "hba1c_pct_to_mmol_mol",
    "c_index",
    "bootstrap_c",
    "time_dependent_auc",
    "run",
]


def run(**settings):
    """Notebook 05's stage: see :func:`carotidkit.survival.stage.run`."""
    from .stage import run as _run

    return _run(**settings)
