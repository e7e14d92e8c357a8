"""Known-truth validation (``make validate``): simulate many cohorts and check that the Cox 95 %
CI of ``vd_true``'s hazard ratio covers the planted value, its bias, the same adjusted for the
carotid markers (plaque burden and IMT drawn from ``vd_true`` with noise, as the simulator's
images are: the hazard does not depend on them given ``vd_true``, so the adjusted HR is still the
planted one while the markers' own HRs are near 1), and the Fine-Gray analogue (data simulated
with an exactly proportional subdistribution hazard).

    python -m carotidkit.survival.validate --reps 100
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd

from . import cox as coxm

#: the simulator's own MI covariates (beside vd_true)
MI_COVARIATES = ["age_years", "male", "smoking", "sbp_mmhg", "tc_mmol_l", "hdl_mmol_l", "diabetes", "prior_mi"]


def _replicate(n: int, seed: int, vd_hr_per_sd: float) -> pd.DataFrame:
    """One simulated cohort with ``vd_true`` and ``male`` (0/1)."""
    from ..synth.cohort import simulate_cohort

    c, t = simulate_cohort(n, seed=seed, vd_hr_per_sd=vd_hr_per_sd)
    return c.merge(t[["subject_id", "vd_true"]]).assign(male=lambda x: (x.sex == "male").astype(int))


def _vd_row(d: pd.DataFrame, covs: list) -> pd.Series:
    tab, _ = coxm.cox_table(d, "mi_years", "mi_event", ["vd_true", *covs])
    return tab.set_index("term").loc["vd_true"]


def cox_coverage(reps: int = 100, n: int = 4000, vd_hr_per_sd: float = 1.4, seed: int = 0) -> dict:
    """MI hazard ratio of vd_true, adjusted for the simulator's own MI covariates."""
    est, cover = [], []
    for r in range(reps):
        row = _vd_row(_replicate(n, seed + r, vd_hr_per_sd), MI_COVARIATES)
        est.append(np.log(row.hr))
        cover.append(row.ci_low <= vd_hr_per_sd <= row.ci_high)
    est = np.asarray(est)
    return {
        "reps": reps,
        "n": n,
        "planted_hr": vd_hr_per_sd,
        "mean_hr": float(np.exp(est.mean())),
        "bias_log_hr": float(est.mean() - np.log(vd_hr_per_sd)),
        "coverage_95": float(np.mean(cover)),
    }


def carotid_coverage(reps: int = 100, n: int = 4000, vd_hr_per_sd: float = 1.4, seed: int = 0) -> dict:
    """MI hazard ratio of vd_true adjusted for the simulator's MI covariates and for plaque
    burden (per SD of log(1 + area)) and IMT (per SD): coverage of the planted value, and the
    mean HRs of the two markers alone (adjusted for the covariates only: above 1, through VD)."""
    from ..synth.anatomy import carotid_markers

    est, cover, marg = [], [], {"plaque_z": [], "imt_z": []}
    for r in range(reps):
        d = _replicate(n, seed + r, vd_hr_per_sd)
        m = carotid_markers(np.random.default_rng([seed + r, 29]), d.age_years, d.vd_true)
        burden = np.log1p(m["plaque_area_mm2"])
        d["plaque_z"] = (burden - burden.mean()) / burden.std()
        d["imt_z"] = (m["imt_mm"] - m["imt_mm"].mean()) / m["imt_mm"].std()
        row = _vd_row(d, ["plaque_z", "imt_z", *MI_COVARIATES])
        est.append(np.log(row.hr))
        cover.append(row.ci_low <= vd_hr_per_sd <= row.ci_high)
        for k in marg:
            mt, _ = coxm.cox_table(d, "mi_years", "mi_event", [k, *MI_COVARIATES])
            marg[k].append(np.log(mt.set_index("term").loc[k, "hr"]))
    est = np.asarray(est)
    return {
        "reps": reps,
        "n": n,
        "planted_hr": vd_hr_per_sd,
        "mean_hr_adjusted_for_plaque_imt": float(np.exp(est.mean())),
        "bias_log_hr": float(est.mean() - np.log(vd_hr_per_sd)),
        "coverage_95": float(np.mean(cover)),
        "mean_hr_plaque_per_sd_without_vd": float(np.exp(np.mean(marg["plaque_z"]))),
        "mean_hr_imt_per_sd_without_vd": float(np.exp(np.mean(marg["imt_z"]))),
    }


def fine_gray_coverage(reps: int = 100, n: int = 800, beta=(0.5, -0.5), seed: int = 0) -> dict:
    est, cover = [], []
    for r in range(reps):
        d = coxm.simulate_fine_gray(n, beta1=beta, seed=seed + r, p=0.2)
        tab, _ = coxm.fine_gray(d, "time", "event", "competing", ["x1", "x2"])
        est.append(np.log(tab.shr.to_numpy()))
        cover.append(((tab.ci_low.to_numpy() <= np.exp(beta)) & (np.exp(beta) <= tab.ci_high.to_numpy())))
    est, cover = np.asarray(est), np.asarray(cover)
    return {
        "reps": reps,
        "n": n,
        "planted_log_shr": list(beta),
        "bias_log_shr": (est.mean(0) - beta).tolist(),
        "coverage_95": cover.mean(0).tolist(),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=100)
    a = ap.parse_args(argv)
    out = {
        "cox_vd_true": cox_coverage(a.reps),
        "cox_vd_true_adjusted_for_plaque_imt": carotid_coverage(a.reps),
        "fine_gray": fine_gray_coverage(a.reps),
    }
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    pd.set_option("display.width", 200)
    main()
