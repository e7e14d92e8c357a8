"""Known-truth validation (``make validate``): simulate many cohorts and check that the Cox 95 %
CI of ``vd_true``'s hazard ratio covers the planted value, its bias, and the Fine-Gray analogue
(data simulated with an exactly proportional subdistribution hazard).

    python -m carotidkit.survival.validate --reps 100
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd

from . import cox as coxm


def cox_coverage(reps: int = 100, n: int = 4000, vd_hr_per_sd: float = 1.4, seed: int = 0) -> dict:
    """MI hazard ratio of vd_true, adjusted for the simulator's own MI covariates."""
    from ..synth.cohort import simulate_cohort

    est, cover = [], []
    for r in range(reps):
        c, t = simulate_cohort(n, seed=seed + r, vd_hr_per_sd=vd_hr_per_sd)
        d = c.merge(t[["subject_id", "vd_true"]]).assign(male=lambda x: (x.sex == "male").astype(int))
        covs = [
            "vd_true",
            "age_years",
            "male",
            "smoking",
            "sbp_mmhg",
            "tc_mmol_l",
            "hdl_mmol_l",
            "diabetes",
            "prior_mi",
        ]
        tab, _ = coxm.cox_table(d, "mi_years", "mi_event", covs)
        row = tab.set_index("term").loc["vd_true"]
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
    out = {"cox_vd_true": cox_coverage(a.reps), "fine_gray": fine_gray_coverage(a.reps)}
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    pd.set_option("display.width", 200)
    main()
