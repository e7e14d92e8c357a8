"""Kaplan-Meier by group with numbers at risk, log-rank and trend tests; Aalen-Johansen
cumulative incidence with a competing event. Tidy tables that :mod:`carotidkit.plots` draws."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..io import CarotidkitError
from ._check import check_survival
from ._km import StepKM, aalen_johansen, risk_at


def quantile_groups(x: pd.Series, q: int = 4, label: str = "Q") -> pd.Series:
    """Ordered groups ``Q1..Qq`` of ``x`` (quartiles by default; ``q=3`` for tertiles)."""
    if q < 2:
        raise CarotidkitError(f"q={q}: need at least 2 groups")
    cats = pd.qcut(x.rank(method="first"), q, labels=[f"{label}{k + 1}" for k in range(q)])
    return cats.astype(pd.CategoricalDtype([f"{label}{k + 1}" for k in range(q)], ordered=True))


def km_table(
    df: pd.DataFrame, duration_col: str, event_col: str, group_col: str, at: tuple = (0, 2, 4, 6, 8, 10)
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Kaplan-Meier cumulative incidence per group.

    Returns ``(curves, at_risk)``: ``curves`` has ``group, time, cum_incidence, ci_low, ci_high``
    (step points); ``at_risk`` has ``group`` and the number at risk at each time in ``at``.
    """
    from lifelines import KaplanMeierFitter

    d = df[[duration_col, event_col, group_col]].dropna()
    curves, risk = [], []
    groups = d[group_col].cat.categories if hasattr(d[group_col], "cat") else sorted(d[group_col].unique())
    for g in groups:
        sub = d[d[group_col] == g]
        if sub.empty:
            continue
        km = KaplanMeierFitter().fit(sub[duration_col], sub[event_col])
        sf = km.survival_function_.iloc[:, 0]
        ci = km.confidence_interval_
        curves.append(
            pd.DataFrame(
                {
                    "group": str(g),
                    "time": sf.index.to_numpy(),
                    "cum_incidence": 1 - sf.to_numpy(),
                    "ci_low": 1 - ci.iloc[:, 1].to_numpy(),
                    "ci_high": 1 - ci.iloc[:, 0].to_numpy(),
                }
            )
        )
        t = sub[duration_col].to_numpy()
        risk.append({"group": str(g), **{f"{a:g}y": int((t >= a).sum()) for a in at}})
    return pd.concat(curves, ignore_index=True), pd.DataFrame(risk)


def group_tests(df: pd.DataFrame, duration_col: str, event_col: str, group_col: str) -> dict:
    """Log-rank test across groups and a trend test (Cox score test on the ordered group index)."""
    from lifelines import CoxPHFitter
    from lifelines.statistics import multivariate_logrank_test

    d = df[[duration_col, event_col, group_col]].dropna()
    lr = multivariate_logrank_test(d[duration_col], d[group_col].astype(str), d[event_col])
    codes = d[group_col].cat.codes if hasattr(d[group_col], "cat") else pd.factorize(d[group_col], sort=True)[0]
    dd = pd.DataFrame({"t": d[duration_col], "e": d[event_col], "trend": np.asarray(codes, float)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cph = CoxPHFitter().fit(dd, "t", "e")
    return {
        "logrank_chi2": float(lr.test_statistic),
        "logrank_df": int(lr.degrees_of_freedom),
        "logrank_p": float(lr.p_value),
        "trend_hr_per_group": float(np.exp(cph.params_["trend"])),
        "trend_p": float(cph.summary.loc["trend", "p"]),
    }


def cumulative_incidence(
    df: pd.DataFrame, duration_col: str, event_col: str, competing_col: str, group_col: str | None = None
) -> pd.DataFrame:
    """Aalen-Johansen cumulative incidence of ``event_col`` with ``competing_col`` as the competing
    event, next to 1 - KM that wrongly censors the competing event:
    ``group, time, aalen_johansen, one_minus_km`` (step points at each event time).

    Ties are exact and row order does not matter (events before censorings at a tied time, as
    ``cmprsk::cuminc``); :func:`cif_at` reads the curve right-continuously at given times.
    """
    cols = [duration_col, event_col, competing_col] + ([group_col] if group_col else [])
    d = df[cols].dropna(subset=[group_col] if group_col else [])
    check_survival(d, duration_col, event_col, competing_col=competing_col, what="cumulative incidence", min_events=0)
    groups = (
        [(None, d)]
        if group_col is None
        else [
            (g, d[d[group_col] == g])
            for g in (d[group_col].cat.categories if hasattr(d[group_col], "cat") else sorted(d[group_col].unique()))
        ]
    )
    out = []
    for g, sub in groups:
        if sub.empty:
            continue
        t = sub[duration_col].to_numpy(float)
        e = sub[event_col].to_numpy(float) > 0
        c = sub[competing_col].to_numpy(float) > 0
        times, cif = aalen_johansen(t, e, c)
        km = StepKM(t, e)
        out.append(
            pd.DataFrame(
                {
                    "group": "all" if g is None else str(g),
                    "time": times,
                    "aalen_johansen": cif,
                    "one_minus_km": 1 - km(times),
                }
            )
        )
    return pd.concat(out, ignore_index=True)


def cif_at(df: pd.DataFrame, duration_col: str, event_col: str, competing_col: str | None, at) -> np.ndarray:
    """Cumulative incidence read right-continuously at ``at``: Aalen-Johansen with a competing
    event, 1 - Kaplan-Meier without one."""
    check_survival(df, duration_col, event_col, competing_col=competing_col, what="cumulative incidence", min_events=0)
    t = df[duration_col].to_numpy(float)
    e = df[event_col].to_numpy(float) > 0
    c = df[competing_col].to_numpy(float) > 0 if competing_col else None
    return risk_at(t, e, c, at)
