"""A population cohort like the Gutenberg Health Study, with a latent vascular damage and outcomes.

Ages 35-74 balanced by sex and decade; risk factors, labs and comorbidities with realistic
marginals and correlations; a latent vascular damage ``vd_true`` (standard normal) driven by
age, blood-pressure history, smoking, diabetes, lipids and unmeasured factors; competing-risk
outcomes (myocardial infarction, cardiac death, other death) whose hazards depend on the SCORE2
risk factors and on ``vd_true`` with a configurable hazard ratio per SD. Canonical column names
(docs/DESIGN.md): ``age_years``, ``sbp_mmhg``, ``tc_mmol_l``, ``<endpoint>_event``, ``<endpoint>_years``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: 10-year cumulative incidence targets (general population, ages 35-74)
TARGET_10Y = {"mi": 0.025, "cardiac_death": 0.014, "other_death": 0.050}


def _ckd_epi_2021(creat_umol_l, age, female):
    """eGFR (mL/min/1.73 m^2), CKD-EPI 2021 race-free equation."""
    scr = creat_umol_l / 88.4
    kappa = np.where(female, 0.7, 0.9)
    alpha = np.where(female, -0.241, -0.302)
    egfr = (
        142
        * np.minimum(scr / kappa, 1) ** alpha
        * np.maximum(scr / kappa, 1) ** -1.2
        * 0.9938**age
        * np.where(female, 1.012, 1.0)
    )
    return egfr


def _calibrate_scale(lp, years, target, lo=1e-7, hi=10.0):
    """Baseline exponential rate so that mean 10-y risk 1-exp(-rate*e^lp*10) hits ``target``."""
    for _ in range(80):
        mid = np.sqrt(lo * hi)
        risk = 1 - np.exp(-mid * np.exp(lp) * years)
        lo, hi = (mid, hi) if risk.mean() < target else (lo, mid)
    return np.sqrt(lo * hi)


def simulate_cohort(
    n: int = 2000, seed: int = 0, vd_hr_per_sd: float = 1.4, followup_years: float = 12.0, targets: dict | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate ``n`` subjects. Returns ``(cohort, truth)``: observed table and latent truth.

    Example:
        >>> cohort, truth = simulate_cohort(500, seed=1)
        >>> round(float(cohort.hypertension.mean()), 1)
        0.5
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 101]))
    targets = {**TARGET_10Y, **(targets or {})}
    # balanced by sex and decade
    strata = np.arange(n) % 8
    female = strata % 2 == 0
    decade = strata // 2  # 0:35-44 ... 3:65-74
    age = 35 + 10 * decade + rng.uniform(0, 10, n)
    a = (age - 55) / 10
    u = rng.standard_normal((n, 6))  # shared latent traits

    bmi = np.exp(np.log(26.5) + 0.03 * a - 0.02 * female + 0.16 * u[:, 0])
    smoking = (rng.random(n) < 1 / (1 + np.exp(-(-1.5 - 0.25 * a + 0.2 * (~female) + 0.2 * u[:, 3])))).astype(int)
    diab_lp = -3.15 + 0.55 * a + 0.12 * (bmi - 27) + 0.3 * (~female)
    diabetes = (rng.random(n) < 1 / (1 + np.exp(-diab_lp))).astype(int)
    # "usual" (untreated) blood pressure, then treatment lowers the measured value
    sbp_true = 132 + 7.5 * a + 5 * (~female) + 1.1 * (bmi - 27) + 4 * diabetes + 13 * u[:, 1] + rng.normal(0, 6, n)
    dbp_true = (
        79
        + 1.2 * a
        + 2.5 * (~female)
        + 0.5 * (bmi - 27)
        + 0.35 * (sbp_true - 130) * 0.5
        + 6 * u[:, 2]
        + rng.normal(0, 3, n)
    )
    treat_lp = -1.6 + 0.07 * (sbp_true - 140) + 0.45 * a + 0.5 * diabetes
    antihypertensive = (rng.random(n) < 1 / (1 + np.exp(-treat_lp))).astype(int)
    sbp = sbp_true - antihypertensive * rng.normal(12, 5, n) + rng.normal(0, 5, n)
    dbp = dbp_true - antihypertensive * rng.normal(6, 3, n) + rng.normal(0, 3.5, n)
    sbp, dbp = np.round(np.clip(sbp, 85, 230)), np.round(np.clip(dbp, 45, 130))
    tc = np.clip(
        5.55 + 0.2 * a + 0.1 * female - 0.15 * (a > 1) * (~female) + 1.0 * u[:, 4] * 0.95 + rng.normal(0, 0.3, n),
        2.5,
        10,
    )
    hdl = np.clip(
        np.exp(
            np.log(1.5)
            - 0.21 * (~female)
            + 0.09 * female
            - 0.015 * (bmi - 27)
            - 0.06 * smoking
            + 0.22 * rng.standard_normal(n)
        ),
        0.5,
        3.5,
    )
    hba1c = np.where(diabetes, rng.normal(7.1, 1.0, n), rng.normal(5.35 + 0.08 * a + 0.02 * (bmi - 27), 0.35, n))
    creat = np.exp(np.log(np.where(female, 68, 85)) + 0.05 * a + 0.15 * rng.standard_normal(n))
    egfr = _ckd_epi_2021(creat, age, female)
    crp = np.exp(np.log(1.4) + 0.06 * (bmi - 27) + 0.3 * smoking + 0.1 * a + 0.9 * rng.standard_normal(n))
    ldl = np.clip(tc - hdl - 0.45 * rng.lognormal(0, 0.3, n), 0.5, 8)
    heart_rate = np.round(np.clip(rng.normal(68 + 2 * smoking + 0.3 * (bmi - 27), 9, n), 48, 105))

    # latent vascular damage: cumulative BP, age, smoking, diabetes, lipids, unmeasured factors
    vd_raw = (
        0.55 * a
        + 0.035 * (sbp_true - 130)
        + 0.35 * smoking
        + 0.4 * diabetes
        + 0.25 * (tc - hdl - 4.1)
        + 0.15 * (~female)
        + 0.8 * u[:, 5]
    )
    vd_true = (vd_raw - vd_raw.mean()) / vd_raw.std()

    # comorbidities at baseline, partly driven by vd_true
    def bern(lp):
        return (rng.random(n) < 1 / (1 + np.exp(-lp))).astype(int)

    prior_mi = bern(-4.3 + 0.6 * vd_true + 0.6 * (~female) + 0.3 * a)
    prior_stroke = bern(-4.7 + 0.6 * vd_true + 0.4 * a)
    atrial_fibrillation = bern(-4.6 + 0.9 * a + 0.2 * vd_true + 0.3 * (~female))
    pad = bern(-4.5 + 0.7 * vd_true + 0.5 * smoking + 0.4 * diabetes)
    ckd = (egfr < 60).astype(int)
    hypertension = ((sbp >= 140) | (dbp >= 90) | (antihypertensive == 1)).astype(int)

    # competing-risk outcomes (exponential baselines, log-linear hazards)
    log_hr_vd = np.log(vd_hr_per_sd)
    lp_cv = (
        0.075 * (age - 55)
        + 0.45 * (~female)
        + 0.55 * smoking
        + 0.011 * (sbp - 130)
        + 0.16 * (tc - 5.6)
        - 0.35 * (hdl - 1.4)
        + 0.55 * diabetes
        + 0.5 * prior_mi
        + log_hr_vd * vd_true
    )
    lp_mi = lp_cv
    lp_cd = lp_cv + 0.02 * (age - 55) + 0.3 * atrial_fibrillation
    lp_other = (
        0.085 * (age - 55)
        + 0.35 * (~female)
        + 0.65 * smoking
        + 0.35 * diabetes
        + 0.3 * ckd
        + 0.2 * np.log(crp / 1.4)
        + 0.3 * np.log(vd_hr_per_sd) * vd_true
    )
    rates = {
        k: _calibrate_scale(lp, 10.0, targets[k])
        for k, lp in (("mi", lp_mi), ("cardiac_death", lp_cd), ("other_death", lp_other))
    }
    t_mi = rng.exponential(1 / (rates["mi"] * np.exp(lp_mi)))
    t_cd = rng.exponential(1 / (rates["cardiac_death"] * np.exp(lp_cd)))
    t_od = rng.exponential(1 / (rates["other_death"] * np.exp(lp_other)))
    t_cens = np.minimum(
        rng.uniform(followup_years - 2, followup_years, n),  # administrative
        rng.exponential(150, n),
    )  # loss to follow-up
    t_death = np.minimum(t_cd, t_od)
    death_years = np.minimum(t_death, t_cens)
    death_event = (t_death <= t_cens).astype(int)
    cd_event = ((t_cd <= t_od) & (t_cd <= t_cens)).astype(int)
    mi_years = np.minimum.reduce([t_mi, t_death, t_cens])
    mi_event = ((t_mi <= t_death) & (t_mi <= t_cens)).astype(int)
    mi_competing = ((t_death < t_mi) & (t_death <= t_cens)).astype(int)
    od_event = ((t_od < t_cd) & (t_od <= t_cens)).astype(int)

    ids = np.array([f"S{i:05d}" for i in range(1, n + 1)])
    cohort = pd.DataFrame(
        {
            "subject_id": ids,
            "age_years": np.round(age, 1),
            "sex": np.where(female, "female", "male"),
            "smoking": smoking,
            "diabetes": diabetes,
            "sbp_mmhg": sbp,
            "dbp_mmhg": dbp,
            "tc_mmol_l": np.round(tc, 2),
            "hdl_mmol_l": np.round(hdl, 2),
            "ldl_mmol_l": np.round(ldl, 2),
            "bmi_kg_m2": np.round(bmi, 1),
            "antihypertensive": antihypertensive,
            "hypertension": hypertension,
            "heart_rate_bpm": heart_rate,
            "hba1c_pct": np.round(hba1c, 1),
            "creatinine_umol_l": np.round(creat),
            "egfr_ml_min": np.round(egfr, 1),
            "crp_mg_l": np.round(crp, 2),
            "prior_mi": prior_mi,
            "prior_stroke": prior_stroke,
            "atrial_fibrillation": atrial_fibrillation,
            "pad": pad,
            "ckd": ckd,
            "mi_event": mi_event,
            "mi_years": np.round(mi_years, 3),
            "mi_competing": mi_competing,
            "cardiac_death_event": cd_event,
            "cardiac_death_years": np.round(death_years, 3),
            "cardiac_death_competing": od_event,
            "death_event": death_event,
            "death_years": np.round(death_years, 3),
        }
    )
    truth = pd.DataFrame(
        {
            "subject_id": ids,
            "vd_true": vd_true,
            "sbp_usual_mmhg": sbp_true,
            "lp_mi": lp_mi,
            "lp_cardiac_death": lp_cd,
            "lp_other_death": lp_other,
            "t_mi_years": t_mi,
            "t_cardiac_death_years": t_cd,
            "t_other_death_years": t_od,
            "t_censor_years": t_cens,
        }
    )
    truth.attrs["vd_hr_per_sd"] = vd_hr_per_sd
    return cohort, truth


def event_rates(cohort: pd.DataFrame, years: float = 10.0) -> pd.DataFrame:
    """Crude share of subjects with each event within ``years`` (a quick sanity table)."""
    rows = []
    for ep in ("mi", "cardiac_death", "death"):
        if f"{ep}_event" not in cohort or f"{ep}_years" not in cohort:
            continue  # a real cohort may not carry every endpoint
        ev = (cohort[f"{ep}_event"] == 1) & (cohort[f"{ep}_years"] <= years)
        rows.append(
            {
                "endpoint": ep,
                "events": int(cohort[f"{ep}_event"].sum()),
                f"share_within_{int(years)}y": float(ev.mean()),
            }
        )
    return pd.DataFrame(rows)
