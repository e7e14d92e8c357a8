"""Absolute-risk performance at a horizon (the STRATOS checklist): observed/expected,
calibration-in-the-large and slope, a flexible calibration curve with ICI/E50/E90 (Austin et al.
2020; Fine-Gray for competing risks, Austin et al. 2022), Brier score and IPA, net benefit; and
reclassification (NRI, IPCW and Kaplan-Meier based) and IDI for an added marker.

O/E is the Kaplan-Meier (Aalen-Johansen) risk at the horizon over the mean predicted risk of
everyone. The IPCW quantities (calibration-in-the-large, slope, Brier, net benefit, IPCW NRI,
IDI) use inverse-probability-of-censoring weights (IPCW) at the horizon ``t``: inverse-probability-of-censoring weights (IPCW) at the horizon ``t``:
a subject with the event by ``t`` is a case with weight ``1/G(T-)``, one event-free beyond ``t``
is a control with weight ``1/G(t)``, one with a competing event by ``t`` is a control with
weight ``1/G(T-)`` (so "risk" is the cumulative incidence), and one censored before ``t`` has
weight 0. The weighted share of cases equals the Kaplan-Meier (Aalen-Johansen) estimate.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..io import CarotidkitError
from ._check import check_survival
from ._km import censoring_km, risk_at


def _observed(t, e, c, horizon) -> float:
    """Kaplan-Meier (Aalen-Johansen) risk at ``horizon`` from arrays (inputs already checked)."""
    return float(risk_at(t, e, c, [horizon])[0])


def _ipcw(t, e, c, horizon):
    """Arrays version of :func:`ipcw_outcome`."""
    c = np.zeros_like(e) if c is None else c
    g = censoring_km(t, e, c)
    case = e & (t <= horizon)
    other = c & (t <= horizon)
    w = np.zeros(len(t))
    w[case | other] = 1.0 / np.maximum(g.left(t[case | other]), 1e-12)
    w[t > horizon] = 1.0 / max(float(g(horizon)), 1e-12)
    return case.astype(float), w


def ipcw_outcome(
    df: pd.DataFrame, duration_col: str, event_col: str, horizon: float, competing_col: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(case indicator at ``horizon``, IPCW weight) per row of ``df``."""
    t = df[duration_col].to_numpy(float)
    e = df[event_col].to_numpy(float) > 0
    c = df[competing_col].to_numpy(float) > 0 if competing_col else None
    return _ipcw(t, e, c, horizon)


DEFINITIONS = {
    "observed": "Kaplan-Meier (Aalen-Johansen with a competing event) risk at the horizon",
    "expected": "mean predicted risk over everyone",
    "o_e": "observed / expected (STRATOS; Riley et al. 2024)",
    "calibration_in_the_large": "IPCW logistic intercept with logit(predicted) as offset (slope fixed at 1)",
    "calibration_slope": "IPCW logistic slope on logit(predicted)",
    "ici": "mean |predicted - observed|, observed from a Cox (Fine-Gray) model on rcs(cloglog(predicted), 3 knots) (Austin et al. 2020, 2022)",
    "e50": "median |predicted - observed|, same calibration model",
    "e90": "90th percentile |predicted - observed|, same calibration model",
    "brier": "IPCW Brier score at the horizon",
    "ipa": "index of prediction accuracy: 1 - Brier / Brier of the null model",
}


def rcs_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Restricted cubic spline basis with 3 knots: ``[x, s(x)]`` (Harrell's ``rms::rcs``
    normalisation; linear beyond the outer knots)."""
    k1, k2, k3 = knots
    p = lambda u: np.maximum(u, 0.0) ** 3
    s = (p(x - k1) - p(x - k2) * (k3 - k1) / (k3 - k2) + p(x - k3) * (k2 - k1) / (k3 - k2)) / (k3 - k1) ** 2
    return np.column_stack([x, s])


def _calibration_model(risk, time, event, horizon, competing, grid):
    """Observed risk at ``horizon`` for each subject and on ``grid`` (predicted risks), from a Cox
    model (Fine-Gray with a competing event) on ``rcs(cloglog(risk))``: Austin 2020/2022."""
    from . import cox as coxm
    from ._coxph import fit_cox

    cll = np.log(-np.log(1 - risk))
    knots = np.quantile(cll, [0.1, 0.5, 0.9])
    if not (knots[0] < knots[1] < knots[2]):
        raise CarotidkitError("predicted risks take too few distinct values for a flexible calibration curve")
    X = rcs_basis(cll, knots)
    if competing is None:
        fit = fit_cox(time, event, X, ["cll", "rcs"])
    else:
        d = pd.DataFrame(
            {"t": time, "e": event.astype(int), "c": competing.astype(int), "cll": X[:, 0], "rcs": X[:, 1]}
        )
        long = coxm.finegray_expand(d, "t", "e", "c", ["cll", "rcs"])
        fit = fit_cox(
            long.stop,
            long.event,
            long[["cll", "rcs"]].to_numpy(),
            ["cll", "rcs"],
            start=long.start,
            weights=long.weight,
        )
    gx = rcs_basis(np.log(-np.log(1 - grid)), knots)
    return fit.risk(X, horizon), fit.risk(gx, horizon)


def _ipcw_logistic(lp, y, w, offset_only: bool = False, iters: int = 50) -> tuple[float, float]:
    """Weighted logistic regression of ``y`` on ``lp``: ``(intercept, slope)``; with
    ``offset_only`` the slope is fixed at 1 (calibration-in-the-large)."""
    X = np.ones((len(lp), 1)) if offset_only else np.column_stack([np.ones_like(lp), lp])
    off = lp if offset_only else np.zeros_like(lp)
    b = np.zeros(X.shape[1])
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(X @ b + off)))
        grad = X.T @ (w * (y - p))
        H = (X * (w * p * (1 - p))[:, None]).T @ X
        step = np.linalg.solve(H, grad)
        b += step
        if np.abs(step).max() < 1e-10:
            break
    return (float(b[0]), 1.0) if offset_only else (float(b[0]), float(b[1]))


def _check_calibration_inputs(risk, time, event, comp, horizon, what) -> None:
    if np.isnan(risk).any():
        raise CarotidkitError(
            f"{what}: column 'risk' has {int(np.isnan(risk).sum())} missing values; drop or impute them first"
        )
    d = pd.DataFrame({"t": time, "e": event.astype(int)})
    if comp is not None:
        d["c"] = comp.astype(int)
    check_survival(d, "t", "e", competing_col="c" if comp is not None else None, what=what)
    if ((risk <= 0) | (risk >= 1)).any():
        bad = int(np.where((risk <= 0) | (risk >= 1))[0][0])
        raise CarotidkitError(
            f"{what}: predicted risk in row {bad} is {risk[bad]:g}; risks lie strictly between 0 and 1"
        )
    if not (event & (time <= horizon)).any():
        raise CarotidkitError(f"{what}: no event by the horizon ({horizon:g}); calibration is undefined")


def _calibration_stats(rr, tt, ee, cc, horizon, grid, curve: bool):
    """All metrics of one (re)sample; with ``curve`` also ICI/E50/E90 and the curve on ``grid``
    (one flexible-model fit serves both). Returns ``(metrics, curve values or None)``."""
    obs = _observed(tt, ee, cc, horizon)
    y, w = _ipcw(tt, ee, cc, horizon)
    k = w > 0
    lp = np.log(rr / (1 - rr))
    brier = np.sum(w * (y - rr) ** 2) / np.sum(w)
    ow = np.sum(w * y) / np.sum(w)
    out = {
        "observed": obs,
        "expected": float(rr.mean()),
        "o_e": obs / float(rr.mean()),
        "calibration_in_the_large": _ipcw_logistic(lp[k], y[k], w[k], offset_only=True)[0],
        "calibration_slope": np.nan if np.ptp(rr) == 0 else _ipcw_logistic(lp[k], y[k], w[k])[1],
        "brier": brier,
        "ipa": 1 - brier / (ow * (1 - ow)) if 0 < ow < 1 else np.nan,
        "ici": np.nan,
        "e50": np.nan,
        "e90": np.nan,
    }
    if not curve:
        return out, None
    o_i, on_grid = _calibration_model(rr, tt, ee, horizon, cc, grid)
    err = np.abs(rr - o_i)
    out.update(ici=float(err.mean()), e50=float(np.median(err)), e90=float(np.quantile(err, 0.9)))
    return out, on_grid


def _tidy(point: dict, boots: list, definitions: dict, note: dict | None = None) -> pd.DataFrame:
    """``metric, estimate, ci_low, ci_high, definition`` (+ ``note``): percentile bootstrap CIs."""
    keys = [k for k in definitions if k in point]
    b = pd.DataFrame(boots, columns=list(point))
    out = pd.DataFrame(
        {
            "metric": keys,
            "estimate": [point[k] for k in keys],
            "ci_low": [b[k].quantile(0.025) for k in keys],
            "ci_high": [b[k].quantile(0.975) for k in keys],
            "definition": [definitions[k] for k in keys],
        }
    )
    if note is not None:
        out["note"] = [note.get(k, "") for k in keys]
    return out


def calibration(
    risk,
    time,
    event,
    horizon: float,
    competing=None,
    n_boot: int = 200,
    seed: int = 0,
    n_boot_curve: int | None = 50,
    what: str = "calibration",
) -> dict:
    """Calibration of predicted absolute risks at ``horizon`` as STRATOS and Austin define it.

    ``risk``: predicted risk by ``horizon`` per subject; ``time``/``event`` (and ``competing``):
    the outcome. Metrics and their definitions: :data:`DEFINITIONS` (also the ``definition``
    column). CIs: subject bootstrap (``n_boot`` replicates; the flexible curve's ICI/E50/E90 on
    the first ``n_boot_curve`` of them, as each needs a model fit; ``None`` = all).

    Returns ``{"summary": DataFrame(metric, estimate, ci_low, ci_high, definition, note),
    "curve": DataFrame(predicted, observed)}``. No event by the horizon is refused; a constant
    prediction gives NaN slope and ICI with the reason in ``note``.
    """
    risk = np.asarray(risk, float)
    time = np.asarray(time, float)
    event = np.asarray(event, float) > 0
    comp = None if competing is None else np.asarray(competing, float) > 0
    _check_calibration_inputs(risk, time, event, comp, horizon, what)
    constant = np.ptp(risk) == 0
    grid = np.quantile(risk, np.linspace(0.01, 0.99, 50)) if not constant else np.array([risk[0]])
    note: dict = {}
    curve = pd.DataFrame({"predicted": grid, "observed": np.nan})
    if constant:
        point, _ = _calibration_stats(risk, time, event, comp, horizon, grid, curve=False)
        note = dict.fromkeys(
            ("calibration_slope", "ici", "e50", "e90"), "predicted risk is constant: no slope or curve"
        )
    else:
        try:
            point, curve["observed"] = _calibration_stats(risk, time, event, comp, horizon, grid, curve=True)
        except CarotidkitError as exc:
            point, _ = _calibration_stats(risk, time, event, comp, horizon, grid, curve=False)
            note = dict.fromkeys(("ici", "e50", "e90"), str(exc))
    rng = np.random.default_rng(seed)
    n, n_curve = len(risk), n_boot if n_boot_curve is None else min(n_boot, n_boot_curve)
    boots = []
    for b in range(n_boot):
        i = rng.integers(0, n, n)
        c = None if comp is None else comp[i]
        fit_curve = b < n_curve and not constant and not note
        try:
            boots.append(_calibration_stats(risk[i], time[i], event[i], c, horizon, grid, fit_curve)[0])
        except CarotidkitError:  # a resample the flexible model cannot fit: its other metrics count
            boots.append(_calibration_stats(risk[i], time[i], event[i], c, horizon, grid, False)[0])
    return {"summary": _tidy(point, boots, DEFINITIONS, note), "curve": curve}


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


NRI_DEFINITIONS = {
    "nri_categorical": "categorical NRI, IPCW (events + non-events)",
    "nri_categorical_events": "categorical NRI among events, IPCW",
    "nri_categorical_nonevents": "categorical NRI among non-events, IPCW",
    "nri_categorical_km": "categorical NRI, Kaplan-Meier (Aalen-Johansen) based (Pencina et al. 2011)",
    "nri_categorical_km_events": "categorical NRI among events, Kaplan-Meier based",
    "nri_categorical_km_nonevents": "categorical NRI among non-events, Kaplan-Meier based",
    "nri_continuous": "continuous (category-free) NRI, IPCW",
    "nri_continuous_events": "continuous NRI among events, IPCW",
    "nri_continuous_nonevents": "continuous NRI among non-events, IPCW",
    "nri_continuous_km": "continuous NRI, Kaplan-Meier based (Pencina et al. 2011)",
    "idi": "integrated discrimination improvement, IPCW",
}


def ordered_codes(cat, order=None, what: str = "categories") -> np.ndarray:
    """Integer ranks of risk categories: an ordered ``Categorical`` keeps its order; otherwise
    ``order`` (a list, lowest risk first) is required. Unknown labels are refused."""
    if order is None:
        c = cat.array if isinstance(cat, pd.Series) else cat
        if not (isinstance(c, pd.Categorical) and c.ordered):
            raise CarotidkitError(
                f"{what}: risk categories must be ordered (pass an ordered Categorical or order=[lowest, ..., highest])"
            )
        order = list(c.categories)
    vals = pd.Series(np.asarray(cat, dtype=object))
    unknown = sorted(set(vals.dropna().astype(str)) - set(map(str, order)))
    if unknown:
        raise CarotidkitError(f"{what}: label {unknown[0]!r} is not in the category order {list(order)}")
    rank = {str(k): i for i, k in enumerate(order)}
    return vals.map(lambda v: rank.get(str(v), -1) if pd.notna(v) else -1).to_numpy(int)


def _km_nri(up, down, time, event, comp, horizon):
    """Pencina, Steyerberg & D'Agostino (2011): NRI from Kaplan-Meier (Aalen-Johansen) risks in
    the up- and down-classified groups; ``(events, non-events)``."""

    def risk(sel):
        return _observed(time[sel], event[sel], None if comp is None else comp[sel], horizon) if sel.any() else 0.0

    p_all = risk(np.ones(len(time), bool))
    pu, pd_ = up.mean(), down.mean()
    ru, rd = risk(up), risk(down)
    ev = (ru * pu - rd * pd_) / p_all
    ne = ((1 - rd) * pd_ - (1 - ru) * pu) / (1 - p_all)
    return ev, ne


def reclassification(
    old_risk,
    new_risk,
    time,
    event,
    horizon: float,
    competing=None,
    old_cat=None,
    new_cat=None,
    order=None,
    n_boot: int = 200,
    seed: int = 0,
) -> pd.DataFrame:
    """NRI (categorical when categories are given, and continuous) and IDI for ``new_risk``
    against ``old_risk`` at ``horizon``, each as IPCW and as Kaplan-Meier-based estimates, with
    subject-bootstrap CIs: ``metric, estimate, ci_low, ci_high, definition``.

    Categories are compared by rank, never by label text: pass ordered Categoricals (as
    :func:`~carotidkit.survival.score2.esc_category` returns) or ``order``.
    """
    time = np.asarray(time, float)
    event = np.asarray(event, float) > 0
    comp = None if competing is None else np.asarray(competing, float) > 0
    old, new = np.asarray(old_risk, float), np.asarray(new_risk, float)
    d = pd.DataFrame({"t": time, "e": event.astype(int), "old": old, "new": new})
    if comp is not None:
        d["c"] = comp.astype(int)
    check_survival(d, "t", "e", competing_col="c" if comp is not None else None, what="reclassification")
    if not (event & (time <= horizon)).any():
        raise CarotidkitError(f"reclassification: no event by the horizon ({horizon:g})")
    oc = nc = None
    if old_cat is not None:
        if order is None and isinstance(getattr(old_cat, "array", old_cat), pd.Categorical):
            order = list(getattr(old_cat, "array", old_cat).categories)
        oc = ordered_codes(old_cat, order, "old categories")
        nc = ordered_codes(new_cat, order, "new categories")
        if (oc < 0).any() or (nc < 0).any():
            raise CarotidkitError("reclassification: missing risk categories")
    case, w = ipcw_outcome(d, "t", "e", horizon, "c" if comp is not None else None)

    def stats(i):
        ww, cc = w[i], case[i]
        we, wn = ww * cc, ww * (1 - cc)
        out = {}

        def both(up, down, key):
            ev = (np.sum(we * up) - np.sum(we * down)) / we.sum()
            ne = (np.sum(wn * down) - np.sum(wn * up)) / wn.sum()
            out.update({key: ev + ne, f"{key}_events": ev, f"{key}_nonevents": ne})
            kev, kne = _km_nri(up, down, time[i], event[i], None if comp is None else comp[i], horizon)
            return kev, kne

        if oc is not None:
            kev, kne = both(nc[i] > oc[i], nc[i] < oc[i], "nri_categorical")
            out.update(nri_categorical_km=kev + kne, nri_categorical_km_events=kev, nri_categorical_km_nonevents=kne)
        kev, kne = both(new[i] > old[i], new[i] < old[i], "nri_continuous")
        out["nri_continuous_km"] = kev + kne
        out["idi"] = (np.sum(we * (new[i] - old[i])) / we.sum()) - (np.sum(wn * (new[i] - old[i])) / wn.sum())
        return out

    n = len(old)
    point = stats(np.arange(n))
    rng = np.random.default_rng(seed)
    return _tidy(point, [stats(rng.integers(0, n, n)) for _ in range(n_boot)], NRI_DEFINITIONS)
