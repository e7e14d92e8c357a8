"""Absolute-risk performance at a horizon (the STRATOS checklist): observed/expected, calibration
slope, smoothed calibration curve with ICI/E50/E90, Brier score and IPA, net benefit; and
reclassification (NRI) and IDI for an added marker.

Every quantity uses inverse-probability-of-censoring weights (IPCW) at the horizon ``t``:
a subject with the event by ``t`` is a case with weight ``1/G(T-)``, one event-free beyond ``t``
is a control with weight ``1/G(t)``, one with a competing event by ``t`` is a control with
weight ``1/G(T-)`` (so "risk" is the cumulative incidence), and one censored before ``t`` has
weight 0. The weighted share of cases equals the Kaplan-Meier (Aalen-Johansen) estimate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ._km import censoring_km


def ipcw_outcome(
    df: pd.DataFrame, duration_col: str, event_col: str, horizon: float, competing_col: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(case indicator at ``horizon``, IPCW weight) per row of ``df``."""
    t = df[duration_col].to_numpy(float)
    e = df[event_col].to_numpy(float) > 0
    c = df[competing_col].to_numpy(float) > 0 if competing_col else np.zeros_like(e)
    g = censoring_km(t, e, c)
    case = e & (t <= horizon)
    other = c & (t <= horizon)
    w = np.zeros(len(t))
    w[case | other] = 1.0 / np.maximum(g.left(t[case | other]), 1e-12)
    w[t > horizon] = 1.0 / max(float(g(horizon)), 1e-12)
    return case.astype(float), w


def _smooth(x, y, w, grid, bw):
    k = np.exp(-0.5 * ((grid[:, None] - x[None, :]) / bw) ** 2) * w[None, :]
    return (k @ y) / np.maximum(k.sum(1), 1e-12)


def calibration(risk, case, w, n_boot: int = 200, seed: int = 0, bandwidth: float | None = None) -> dict:
    """O/E (with bootstrap CI), calibration intercept/slope (IPCW logistic on logit risk),
    ICI/E50/E90 from a kernel-smoothed calibration curve on the cloglog scale, Brier and IPA.

    Returns ``{"summary": DataFrame(metric, estimate, ci_low, ci_high), "curve": DataFrame}``.
    """
    risk = np.clip(np.asarray(risk, float), 1e-6, 1 - 1e-6)
    keep = w > 0
    risk, case, w = risk[keep], case[keep], w[keep]
    x = np.log(-np.log(1 - risk))
    bw = bandwidth or 1.06 * x.std() * len(x) ** -0.2

    def stats(idx):
        rr, cc, ww, xx = risk[idx], case[idx], w[idx], x[idx]
        obs = np.sum(ww * cc) / np.sum(ww)
        exp_ = np.sum(ww * rr) / np.sum(ww)
        grid = np.linspace(xx.min(), xx.max(), 64)
        sm = np.interp(xx, grid, _smooth(xx, cc, ww, grid, bw))
        err = np.abs(sm - rr)
        brier = np.sum(ww * (cc - rr) ** 2) / np.sum(ww)
        brier0 = obs * (1 - obs)
        slope, intercept = _logistic_slope(np.log(rr / (1 - rr)), cc, ww)
        return {
            "observed": obs,
            "expected": exp_,
            "o_e": obs / exp_,
            "calibration_slope": slope,
            "calibration_intercept": intercept,
            "ici": np.average(err, weights=ww),
            "e50": _wq(err, ww, 0.5),
            "e90": _wq(err, ww, 0.9),
            "brier": brier,
            "ipa": 1 - brier / brier0 if brier0 > 0 else np.nan,
        }

    n = len(risk)
    point = stats(np.arange(n))
    rng = np.random.default_rng(seed)
    boots = pd.DataFrame([stats(rng.integers(0, n, n)) for _ in range(n_boot)])
    summary = pd.DataFrame(
        {
            "metric": list(point),
            "estimate": list(point.values()),
            "ci_low": [boots[k].quantile(0.025) for k in point],
            "ci_high": [boots[k].quantile(0.975) for k in point],
        }
    )
    grid_x = np.linspace(np.quantile(x, 0.01), np.quantile(x, 0.99), 50)
    curve = pd.DataFrame({"predicted": 1 - np.exp(-np.exp(grid_x)), "observed": _smooth(x, case, w, grid_x, bw)})
    return {"summary": summary, "curve": curve}


def _wq(v, w, q):
    o = np.argsort(v)
    cw = np.cumsum(w[o]) / w.sum()
    return float(v[o][np.searchsorted(cw, q)])


def _logistic_slope(lp, y, w, iters: int = 25):
    """Weighted logistic regression of y on lp: returns (slope, intercept)."""
    X = np.column_stack([np.ones_like(lp), lp])
    b = np.zeros(2)
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(X @ b)))
        grad = X.T @ (w * (y - p))
        H = (X * (w * p * (1 - p))[:, None]).T @ X
        step = np.linalg.solve(H + 1e-9 * np.eye(2), grad)
        b += step
        if np.abs(step).max() < 1e-8:
            break
    return float(b[1]), float(b[0])


def net_benefit(risks: dict, case, w, thresholds=np.arange(0.01, 0.31, 0.01)) -> pd.DataFrame:
    """Decision curves: net benefit of treating when risk >= threshold, per model, plus
    treat-all and treat-none; ``threshold, model, net_benefit``."""
    keep = w > 0
    case, w = case[keep], w[keep]
    W = w.sum()
    prev = np.sum(w * case) / W
    rows = []
    for pt in thresholds:
        odds = pt / (1 - pt)
        rows.append({"threshold": pt, "model": "treat all", "net_benefit": prev - (1 - prev) * odds})
        rows.append({"threshold": pt, "model": "treat none", "net_benefit": 0.0})
        for name, r in risks.items():
            pos = np.asarray(r, float)[keep] >= pt
            tp = np.sum(w * case * pos) / W
            fp = np.sum(w * (1 - case) * pos) / W
            rows.append({"threshold": pt, "model": name, "net_benefit": tp - fp * odds})
    return pd.DataFrame(rows)


def reclassification(
    old_risk, new_risk, case, w, old_cat=None, new_cat=None, n_boot: int = 200, seed: int = 0
) -> pd.DataFrame:
    """Categorical NRI (when categories are given), continuous NRI and IDI, IPCW-weighted, with
    bootstrap CIs: ``metric, estimate, ci_low, ci_high``."""
    keep = w > 0
    old, new, case, w = (np.asarray(a)[keep] for a in (old_risk, new_risk, case, w))
    oc = None if old_cat is None else np.asarray(pd.Categorical(old_cat).codes)[keep]
    nc = (
        None
        if new_cat is None
        else np.asarray(pd.Categorical(new_cat, categories=pd.Categorical(old_cat).categories).codes)[keep]
    )

    def stats(i):
        ww, cc = w[i], case[i]
        we, wn = ww * cc, ww * (1 - cc)
        out = {}
        if oc is not None:
            up, down = nc[i] > oc[i], nc[i] < oc[i]
            ev = (np.sum(we * up) - np.sum(we * down)) / we.sum()
            ne = (np.sum(wn * down) - np.sum(wn * up)) / wn.sum()
            out.update(nri_categorical=ev + ne, nri_categorical_events=ev, nri_categorical_nonevents=ne)
        up, down = new[i] > old[i], new[i] < old[i]
        ev = (np.sum(we * up) - np.sum(we * down)) / we.sum()
        ne = (np.sum(wn * down) - np.sum(wn * up)) / wn.sum()
        out.update(nri_continuous=ev + ne, nri_continuous_events=ev, nri_continuous_nonevents=ne)
        idi = (np.sum(we * (new[i] - old[i])) / we.sum()) - (np.sum(wn * (new[i] - old[i])) / wn.sum())
        out["idi"] = idi
        return out

    n = len(old)
    point = stats(np.arange(n))
    rng = np.random.default_rng(seed)
    boots = pd.DataFrame([stats(rng.integers(0, n, n)) for _ in range(n_boot)])
    return pd.DataFrame(
        {
            "metric": list(point),
            "estimate": list(point.values()),
            "ci_low": [boots[k].quantile(0.025) for k in point],
            "ci_high": [boots[k].quantile(0.975) for k in point],
        }
    )
