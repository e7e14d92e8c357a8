"""Descriptive tables epidemiologists expect ("Table 1"), as tidy DataFrames."""

from __future__ import annotations

import numpy as np
import pandas as pd

LABELS = {
    "age_years": "Age, years",
    "sex": "Women",
    "smoking": "Current smoking",
    "diabetes": "Diabetes",
    "sbp_mmhg": "Systolic BP, mmHg",
    "dbp_mmhg": "Diastolic BP, mmHg",
    "tc_mmol_l": "Total cholesterol, mmol/L",
    "hdl_mmol_l": "HDL cholesterol, mmol/L",
    "ldl_mmol_l": "LDL cholesterol, mmol/L",
    "bmi_kg_m2": "BMI, kg/m²",
    "antihypertensive": "Antihypertensive treatment",
    "heart_rate_bpm": "Heart rate, bpm",
    "hba1c_pct": "HbA1c, %",
    "egfr_ml_min": "eGFR, mL/min/1.73 m²",
    "crp_mg_l": "CRP, mg/L",
    "prior_mi": "Prior MI",
    "prior_stroke": "Prior stroke",
    "atrial_fibrillation": "Atrial fibrillation",
    "pad": "Peripheral artery disease",
    "ckd": "CKD (eGFR < 60)",
}


def table1(df: pd.DataFrame, by: str | None = "hypertension", columns=None) -> pd.DataFrame:
    """Mean (SD) for continuous, n (%) for binary variables, overall and by ``by``; with the
    standardised mean difference between the two groups when ``by`` is binary.

    Example:
        table1(cohort, by="hypertension")
    """
    if by is not None and by not in df.columns:
        by = None  # e.g. a real cohort without that column
    columns = [c for c in (columns or LABELS) if c in df.columns and c != by]
    groups = [("Overall", df)]
    if by is not None:
        for level, sub in df.groupby(by):
            groups.append((f"{by} = {level}", sub))
    rows = []
    for col in columns:
        s = df[col]
        binary = col == "sex" or set(pd.unique(s.dropna())) <= {0, 1}
        row = {"variable": LABELS.get(col, col)}
        vals = []
        for name, sub in groups:
            x = (sub[col] == "female").astype(float) if col == "sex" else sub[col].astype(float)
            if binary:
                row[f"{name} (n={len(sub)})"] = f"{int(x.sum())} ({100 * x.mean():.1f} %)"
            else:
                row[f"{name} (n={len(sub)})"] = f"{x.mean():.1f} ({x.std():.1f})"
            vals.append(x)
        if len(vals) == 3:
            a, b = vals[1], vals[2]
            pooled = np.sqrt((a.var() + b.var()) / 2)
            row["SMD"] = round(float((b.mean() - a.mean()) / pooled), 2) if pooled > 0 else np.nan
        rows.append(row)
    return pd.DataFrame(rows).set_index("variable")


def ci_pivot(table, subset: str, metrics=None):
    """Metrics table (``model, subset, metric, estimate, ci_low, ci_high``) as one cell per metric
    and model: ``"0.877 [0.848, 0.906]"``."""
    t = table[table.subset == subset]
    if metrics is not None:
        t = t[t.metric.isin(metrics)]
    t = t.assign(value=[f"{e:.3f} [{lo:.3f}, {hi:.3f}]" for e, lo, hi in zip(t.estimate, t.ci_low, t.ci_high)])
    return t.pivot(index="metric", columns="model", values="value")
