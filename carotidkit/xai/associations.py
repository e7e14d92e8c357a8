"""VD against risk factors, labs and comorbidities: an adjusted regression (per-SD effects, 95 %
CIs, FDR-adjusted p; statsmodels) next to SHAP on a gradient-boosted model predicting VD."""

from __future__ import annotations

import numpy as np
import pandas as pd

CANDIDATES = [
    "age_years",
    "male",
    "smoking",
    "diabetes",
    "sbp_mmhg",
    "dbp_mmhg",
    "tc_mmol_l",
    "hdl_mmol_l",
    "ldl_mmol_l",
    "bmi_kg_m2",
    "antihypertensive",
    "heart_rate_bpm",
    "hba1c_pct",
    "egfr_ml_min",
    "crp_mg_l",
    "prior_mi",
    "prior_stroke",
    "atrial_fibrillation",
    "pad",
    "ckd",
]


#: the carotid markers 02 measures on the same scan (``unet/subject_plaque.parquet``)
CAROTID = ["plaque_area_mm2", "imt_mm"]
LABELS = {"plaque_area_mm2": "plaque area (mm², mean per side)", "imt_mm": "far-wall IMT (mm)"}


def design(
    cohort: pd.DataFrame, vd: pd.DataFrame, target: str = "vd_z", carotid: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.Series]:
    """Predictors (risk factors, labs, comorbidities and, given 02's ``carotid`` table, plaque
    area and IMT) and VD, complete cases only."""
    d = cohort.assign(male=(cohort.sex == "male").astype(int)).merge(vd[["subject_id", target]], on="subject_id")
    if carotid is not None:
        d = d.merge(carotid[["subject_id", *CAROTID]], on="subject_id", how="left")
    cols = [c for c in CANDIDATES + CAROTID if c in d and d[c].nunique() > 1]
    d = d.dropna(subset=[*cols, target])
    X = d[cols].astype(float)
    return X, d[target].astype(float)


def regression_table(X: pd.DataFrame, y: pd.Series) -> pd.DataFrame:
    """OLS of VD (SD units) on all predictors together, each per SD (binary ones per category):
    ``term, beta_per_sd, ci_low, ci_high, p, p_fdr``."""
    import statsmodels.api as sm
    from statsmodels.stats.multitest import multipletests

    Z = X.copy()
    cont = [c for c in X if X[c].nunique() > 2]
    Z[cont] = (Z[cont] - Z[cont].mean()) / Z[cont].std()
    fit = sm.OLS(y, sm.add_constant(Z)).fit()
    ci = fit.conf_int()
    t = pd.DataFrame(
        {
            "term": Z.columns,
            "beta_per_sd": fit.params[Z.columns].to_numpy(),
            "ci_low": ci.loc[Z.columns, 0].to_numpy(),
            "ci_high": ci.loc[Z.columns, 1].to_numpy(),
            "p": fit.pvalues[Z.columns].to_numpy(),
            "scale": ["per SD" if c in cont else "yes vs no" for c in Z.columns],
        }
    )
    t["p_fdr"] = multipletests(t.p, method="fdr_bh")[1]
    t["rank_regression"] = t.beta_per_sd.abs().rank(ascending=False).astype(int)
    return t


def shap_table(X: pd.DataFrame, y: pd.Series, seed: int = 0, max_rows: int = 1000):
    """Gradient-boosted trees predicting VD, explained by SHAP (TreeExplainer): mean |SHAP| per
    feature and the SHAP values themselves (for beeswarm and dependence plots)."""
    import shap
    from sklearn.ensemble import HistGradientBoostingRegressor

    model = HistGradientBoostingRegressor(max_iter=200, learning_rate=0.05, max_leaf_nodes=15, random_state=seed).fit(
        X, y
    )
    Xs = X.sample(min(max_rows, len(X)), random_state=seed)
    sv = shap.TreeExplainer(model).shap_values(Xs)
    imp = pd.DataFrame({"term": X.columns, "shap_mean_abs": np.abs(sv).mean(0)})
    imp["rank_shap"] = imp.shap_mean_abs.rank(ascending=False).astype(int)
    return imp, pd.DataFrame(sv, columns=X.columns, index=Xs.index), Xs


def truth_drivers() -> list[str]:
    """The simulator's strongest drivers of ``vd_true`` (carotidkit.synth.cohort), strongest first:
    age (0.55 per decade), usual SBP (0.035/mmHg), diabetes, smoking, non-HDL cholesterol, male sex."""
    return ["age_years", "sbp_mmhg", "diabetes", "smoking", "tc_mmol_l", "hdl_mmol_l", "male"]
