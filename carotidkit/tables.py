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
    standardised mean difference between the two groups when ``by`` is binary (between the last
    and the first group when it has more levels, e.g. VD Q4 against Q1).

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
        if len(vals) >= 3:
            a, b = vals[1], vals[-1]
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


#: column names as a paper prints them (:func:`readable`)
COLUMN_LABELS = {
    "hr": "HR",
    "shr": "HR (SHR for Fine–Gray)",
    "ci_low": "95 % CI, low",
    "ci_high": "95 % CI, high",
    "p": "p",
    "p_fdr": "p (FDR)",
    "logrank_p": "log-rank p",
    "trend_p": "trend p",
    "lr_chi2": "LR χ²",
    "beta_per_sd": "β per SD",
    "n": "n",
    "events": "events",
    "endpoint": "endpoint",
    "term": "term",
    "model": "model",
    "estimate": "estimate",
    "enrichment": "enrichment",
    "region": "region",
    "method": "method",
    "phase": "phase",
    "metric": "metric",
    "shap_mean_abs": "mean |SHAP|",
}
#: values (endpoints, terms, regions) as a paper prints them
VALUE_LABELS = {
    **LABELS,
    "mi": "Myocardial infarction",
    "cardiac_death": "Cardiac death",
    "death": "All-cause death",
    "vd_z": "VD (per SD)",
    "score2_lp": "SCORE2 (cloglog risk)",
    "male": "Men",
    "plaque_area_mm2": "Plaque area, mm²",
    "plaque_z": "Plaque burden (per SD)",
    "imt_mm": "Far-wall IMT, mm",
    "imt_z": "Far-wall IMT (per SD)",
    "far_wall": "far wall",
    "near_wall": "near wall",
    "integrated_gradients": "Integrated Gradients",
    "grad_cam": "Grad-CAM",
    "occlusion": "occlusion",
}


def _is_p(col: str) -> bool:
    c = str(col)
    return c == "p" or c.endswith("_p") or c.startswith("p_")


def readable(df: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """A result table as a paper prints it: p-values as ``<0.001``/``0.031``, other numbers to
    ``digits`` decimals, and human labels for the columns and for endpoint/term/region codes.

    Example:
        >>> t = pd.DataFrame({"endpoint": ["mi"], "term": ["vd_z"], "hr": [1.234], "p": [0.00002]})
        >>> readable(t).to_dict("records")
        [{'endpoint': 'Myocardial infarction', 'term': 'VD (per SD)', 'HR': 1.234, 'p': '<0.001'}]
    """
    from .findings import fmt_p

    out = df.copy()
    for c in out.columns:
        if _is_p(c) and pd.api.types.is_numeric_dtype(out[c]):
            out[c] = out[c].map(fmt_p)
        elif pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].round(digits)
        elif out[c].dtype == object:
            out[c] = out[c].map(lambda v: VALUE_LABELS.get(v, v) if isinstance(v, str) else v)
    return out.rename(columns=lambda c: COLUMN_LABELS.get(c, c))
