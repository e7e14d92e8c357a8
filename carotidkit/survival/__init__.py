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
from .reporting import td_auc_table
from .score2 import esc_category, esc_risk, hba1c_pct_to_mmol_mol, score2, score2_diabetes, score2_table

__all__ = [
    "td_auc_table",
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
    "definitions",
]


def definitions(res=None):
    """The definition behind each calibration and reclassification metric (a tidy table)."""
    import pandas as pd

    from .calibration import DEFINITIONS, NRI_DEFINITIONS

    rows = [("calibration", k, v) for k, v in DEFINITIONS.items()]
    rows += [("reclassification", k, v) for k, v in NRI_DEFINITIONS.items()]
    rows += [
        (
            "proportional hazards",
            "ph chi2",
            "exact score test of x * g(t) at the Efron Cox fit, as R's cox.zph (>= 3.0)",
        ),
        ("competing risks", "aalen_johansen", "Aalen-Johansen, events before censorings at ties (cmprsk::cuminc)"),
        ("competing risks", "fine_gray se", "robust sandwich clustered on the subject (finegray + coxph(cluster))"),
    ]
    out = pd.DataFrame(rows, columns=["table", "metric", "definition"])
    if res is not None and "transform" in getattr(res, "ph", pd.DataFrame()).columns and len(res.ph):
        out.loc[out.metric == "ph chi2", "definition"] += f"; transform g = {res.ph['transform'].iloc[0]}"
    return out


def run(settings=None, /, **knobs):
    """Notebook 05's stage: see :func:`carotidkit.survival.stage.run` (its settings object, or knobs as keywords)."""
    from .stage import run as _run

    return _run(settings, **knobs)
