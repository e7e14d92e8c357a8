"""What a journal asks of 05, from its result: participant flow, missing data, follow-up,
events per variable, Table 1 by VD quartile, "Table 2" (HR from crude to fully adjusted), one
added-value table, the SCORE2 statements, and the findings paragraph.

Every function takes the :class:`~carotidkit.survival.stage.SurvivalResult` (and the cohort it
was built from where it needs the rows VD did not reach) and returns a tidy DataFrame with human
labels; p-values are printed ``<0.001`` style by :func:`carotidkit.findings.fmt_p`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..findings import Findings, facts, fmt_number, fmt_p, verdict
from ..tables import LABELS, table1

ENDPOINT_LABELS = {"mi": "Myocardial infarction", "cardiac_death": "Cardiac death", "death": "All-cause death"}
MODEL_LABELS = {
    "crude": "Crude",
    "age + sex": "Age and sex",
    "SCORE2-adjusted": "SCORE2",
    "fully adjusted": "Full risk factors",
}
#: candidate variables of each endpoint's largest model (for events per variable)
LARGEST_MODEL = "fully adjusted"


def _label(ep: str) -> str:
    return ENDPOINT_LABELS.get(ep, ep.replace("_", " "))


def flow(res, n_cohort: int) -> pd.DataFrame:
    """Participant flow: cohort → with a VD score → with SCORE2 → analysed per endpoint (the
    rows with an ``endpoint``, which branch off the last selection step)."""
    d = res.analysis
    rows = [
        {"step": "cohort", "n": int(n_cohort), "excluded": 0, "reason": ""},
        {
            "step": "with a VD score (video read by 03)",
            "n": len(d),
            "excluded": int(n_cohort - len(d)),
            "reason": "no readable cine loop, or not in 03's folds",
        },
    ]
    with_s2 = int(d.score2_risk.notna().sum())
    rows.append(
        {
            "step": "with a SCORE2 risk",
            "n": with_s2,
            "excluded": len(d) - with_s2,
            "reason": "a SCORE2 input missing",
        }
    )
    for r in res.key_results.itertuples():
        rows.append(
            {
                "step": f"analysed: {_label(r.endpoint)} ({int(r.events)} events)",
                "n": int(r.n),
                "excluded": with_s2 - int(r.n),
                "reason": "no follow-up time or status",
                "endpoint": r.endpoint,
            }
        )
    return pd.DataFrame(rows).assign(endpoint=lambda t: t.endpoint.fillna("") if "endpoint" in t else "")


def missing_data(res) -> pd.DataFrame:
    """Missing values per analysis variable among the people with a VD score, and how each is
    handled (complete-case analysis throughout: no imputation)."""
    from .score2 import INPUTS

    d = res.analysis
    handling = {
        **{c: "complete case: no SCORE2, left out of the endpoint analyses" for c in INPUTS},
        "vd_z": "complete case",
        "plaque_area_mm2": "complete case in the carotid models only",
        "imt_mm": "complete case in the carotid models only",
    }
    names = {**LABELS, "vd_z": "VD score", "plaque_area_mm2": "Plaque area, mm²", "imt_mm": "Far-wall IMT, mm"}
    rows = []
    for c, h in handling.items():
        if c in d:
            rows.append(
                {
                    "variable": names.get(c, c),
                    "missing": int(d[c].isna().sum()),
                    "percent": round(100 * float(d[c].isna().mean()), 1),
                    "handling": h,
                }
            )
    return pd.DataFrame(rows)


def _reverse_km_median(t: np.ndarray, e: np.ndarray) -> float:
    """Median potential follow-up: Kaplan–Meier of the censoring times (reverse KM)."""
    from lifelines import KaplanMeierFitter

    km = KaplanMeierFitter().fit(t, 1 - e)
    return float(km.median_survival_time_)


def follow_up(res) -> pd.DataFrame:
    """Per endpoint: median follow-up (reverse Kaplan–Meier), person-years, events and the rate
    per 1,000 person-years with its exact Poisson 95 % CI."""
    from scipy.stats import chi2

    d = res.analysis
    rows = []
    for ep in res.key_results.endpoint:
        dur, ev = f"{ep}_years", f"{ep}_event"
        if dur not in d:
            continue
        x = d.dropna(subset=[dur, ev, "vd_z", "score2_risk"])
        t, e = x[dur].to_numpy(float), x[ev].to_numpy(float)
        k, py = int(e.sum()), float(t.sum())
        lo = chi2.ppf(0.025, 2 * k) / 2 if k > 0 else 0.0
        hi = chi2.ppf(0.975, 2 * (k + 1)) / 2
        rows.append(
            {
                "endpoint": ep,
                "label": _label(ep),
                "n": len(x),
                "events": k,
                "median_follow_up_years": _reverse_km_median(t, e) if len(x) else np.nan,
                "person_years": py,
                "rate_per_1000_py": 1000 * k / py if py else np.nan,
                "rate_ci_low": 1000 * lo / py if py else np.nan,
                "rate_ci_high": 1000 * hi / py if py else np.nan,
            }
        )
    return pd.DataFrame(rows)


def events_per_variable(res) -> pd.DataFrame:
    """Events per candidate variable of each endpoint's largest Cox model (rule of thumb: ≥ 10)."""
    cox = res.cox
    rows = []
    for r in res.key_results.itertuples():
        big = cox[(cox.endpoint == r.endpoint) & (cox.model == LARGEST_MODEL)] if len(cox) else cox
        n_var = int(len(big)) if len(big) else 2
        rows.append(
            {
                "endpoint": r.endpoint,
                "label": _label(r.endpoint),
                "events": int(r.events),
                "variables": n_var,
                "model": LARGEST_MODEL if len(big) else "SCORE2 + VD",
                "epv": float(r.events) / n_var,
            }
        )
    return pd.DataFrame(rows)


def table1_by_vd(res, groups: int = 4) -> pd.DataFrame:
    """Table 1 by VD quartile (or ``groups`` groups): mean (SD) or n (%), with the standardised
    difference between the highest and the lowest group."""
    from .curves import quantile_groups

    d = res.analysis.copy()
    if "age_years" not in d or len(d) < groups * 2:
        return pd.DataFrame()
    d["VD group"] = quantile_groups(d.vd_z, groups, "Q").astype(str)
    cols = [c for c in LABELS if c in d] + [c for c in ("plaque_area_mm2", "imt_mm", "score2_risk") if c in d]
    t = table1(d, by="VD group", columns=cols)
    t.index = [
        {"plaque_area_mm2": "Plaque area, mm²", "imt_mm": "Far-wall IMT, mm", "score2_risk": "SCORE2 10-year risk"}.get(
            i, i
        )
        for i in t.index
    ]
    t.index.name = "characteristic"
    return t


def table2(res) -> pd.DataFrame:
    """HR (95 % CI) per SD of VD for each endpoint, from crude to fully adjusted, with p."""
    cox = res.cox
    if cox.empty:
        return pd.DataFrame(columns=["endpoint", "adjustment", "events", "HR (95 % CI)", "p"])
    v = cox[cox.term == "vd_z"]
    rows = [
        {
            "endpoint": _label(r.endpoint),
            "adjustment": MODEL_LABELS.get(r.model, r.model),
            "events": int(r.events),
            "hr": r.hr,
            "ci_low": r.ci_low,
            "ci_high": r.ci_high,
            "HR (95 % CI)": f"{r.hr:.2f} ({r.ci_low:.2f}–{r.ci_high:.2f})",
            "p": fmt_p(r.p),
        }
        for r in v.itertuples()
    ]
    return pd.DataFrame(rows)


def added_value(res) -> pd.DataFrame:
    """One table of what VD adds to SCORE2 per endpoint: Harrell's C of both, ΔC [95 % CI], the
    likelihood-ratio p, and the continuous and categorical NRI [95 % CI] at the horizon."""
    k = res.key_results
    rows = []
    rc = res.reclassification
    lr = res.lr
    for r in k.itertuples():
        if not np.isfinite(getattr(r, "c_score2", np.nan)):
            continue
        row = {
            "endpoint": _label(r.endpoint),
            "events": int(r.events),
            "C, SCORE2": f"{r.c_score2:.3f}",
            "C, SCORE2 + VD": f"{getattr(r, 'c_score2_vd', np.nan):.3f}",
            "ΔC (95 % CI)": f"{fmt_number(r.delta_c, '+.3f')} [{fmt_number(r.delta_ci_low, '+.3f')}, "
            f"{fmt_number(r.delta_ci_high, '+.3f')}]",
        }
        p = lr[lr.endpoint == r.endpoint].p if len(lr) else []
        row["LR test p"] = fmt_p(p.iloc[0]) if len(p) else "n/a"
        for metric, name in (("nri_continuous", "continuous NRI"), ("nri_categorical", "categorical NRI")):
            m = rc[(rc.endpoint == r.endpoint) & (rc.metric == metric)] if len(rc) else []
            row[f"{name} (95 % CI)"] = (
                f"{fmt_number(m.estimate.iloc[0], '+.2f')} [{fmt_number(m.ci_low.iloc[0], '+.2f')}, "
                f"{fmt_number(m.ci_high.iloc[0], '+.2f')}]"
                if len(m)
                else "n/a"
            )
        rows.append(row)
    return pd.DataFrame(rows)


RISK_LABELS = {"score2_risk": "SCORE2", "vd_z": "VD", "score2_vd_lp": "SCORE2 + VD"}


def td_auc_table(res) -> pd.DataFrame:
    """Time-dependent AUC per endpoint, score and time, as ``AUC [95 % CI]`` with human labels."""
    t = res.td_auc
    if t.empty:
        return pd.DataFrame(columns=["endpoint", "score", "years", "cases", "AUC (95 % CI)"])
    lo = t.ci_low if "ci_low" in t else pd.Series(np.nan, index=t.index)
    hi = t.ci_high if "ci_high" in t else pd.Series(np.nan, index=t.index)
    return pd.DataFrame(
        {
            "endpoint": t.endpoint.map(_label),
            "score": t.risk.map(lambda r: RISK_LABELS.get(r, r)),
            "years": t.time,
            "cases": t.cases,
            "AUC (95 % CI)": [
                "n/a" if not np.isfinite(a) else f"{a:.3f}" + (f" [{x:.3f}, {y:.3f}]" if np.isfinite(x) else "")
                for a, x, y in zip(t.auc.astype(float), lo.astype(float), hi.astype(float))
            ],
        }
    )


def score2_statement(res) -> pd.DataFrame:
    """Who got which score and why: extrapolations and diabetics scored with SCORE2."""
    d = res.analysis
    rows = [
        {"group": f"{m}" + (f", {f}" if isinstance(f, str) and f else ""), "people": int(n)}
        for (m, f), n in d.groupby(["score2_model", d.score2_flag.fillna("")], dropna=False).size().items()
    ]
    return pd.DataFrame(rows)


def journal_tables(res, n_cohort: int | None = None, planted_hr: float | None = None) -> dict[str, pd.DataFrame]:
    """The tables above by name (the paper bundle's), plus the ``facts`` the findings cite."""
    fu = follow_up(res)
    out = {
        "flow": flow(res, n_cohort if n_cohort is not None else len(res.analysis)),
        "missing_data": missing_data(res),
        "follow_up": fu,
        "events_per_variable": events_per_variable(res),
        "table1_by_vd": table1_by_vd(res, res.settings.groups if res.settings else 4),
        "table2": table2(res),
        "added_value": added_value(res),
        "score2_use": score2_statement(res),
    }
    d = res.analysis
    diab = int(((d.get("diabetes", 0) == 1) & (d.score2_model != "SCORE2-Diabetes")).sum()) if "diabetes" in d else 0
    young = int(d.score2_flag.fillna("").str.contains("age<40").sum())
    spearman = None
    if "vd_true" in d and d.vd_true.notna().sum() > 2:
        spearman = float(d[["vd_z", "vd_true"]].corr(method="spearman").iloc[0, 1])
    out["facts"] = facts(
        planted_hr=planted_hr,
        n_analysed=len(d),
        diabetics_scored_with_score2=diab,
        score2_extrapolated_below_40=young,
        spearman_vd_truth=spearman,
        horizon_years=res.settings.horizon_years if res.settings else None,
    )
    return out


def findings(res, tables: dict[str, pd.DataFrame]) -> Findings:
    """05's "What we found", every number from ``tables`` (see :mod:`carotidkit.findings`)."""
    f = Findings(tables)
    k = tables.get("key_results", pd.DataFrame())
    f.say(f"{f.num('facts', 'value', 'd', key='n_analysed')} people had both a VD score and a SCORE2 risk.")
    for ep in k.endpoint if len(k) else []:
        ev = f.num("key_results", "events", "d", endpoint=ep)
        hr = f.ci("key_results", "hr_vd_per_sd_adj_score2", "hr_ci_low", "hr_ci_high", ".2f", "()", endpoint=ep)
        if hr is None:
            f.say(f"{_label(ep)}: {ev} events, too few for survival models.")
            continue
        dc = f.ci("key_results", "delta_c", "delta_ci_low", "delta_ci_high", "+.3f", endpoint=ep)
        p = f.num("lr", "p", "p", endpoint=ep)
        lo, hi = f.lookup("key_results", "hr_ci_low", endpoint=ep), f.lookup("key_results", "hr_ci_high", endpoint=ep)
        dlo, dhi = (f.lookup("key_results", c, endpoint=ep) for c in ("delta_ci_low", "delta_ci_high"))
        word = verdict(
            lo,
            hi,
            "VD carried risk beyond SCORE2",
            "VD was associated with lower risk after SCORE2",
            "the data are compatible with no association beyond SCORE2",
            null=1.0,
        )
        adds = verdict(dlo, dhi, "improved", "worsened", "did not clearly change")
        f.say(
            f"{_label(ep)} ({ev} events): hazard ratio per SD of VD adjusted for SCORE2 {hr}"
            + (f", likelihood-ratio p = {p}" if p else "")
            + f"; {word}. Adding VD {adds} Harrell's C (ΔC {dc})."
        )
        nri = f.ci("reclassification", fmt="+.2f", endpoint=ep, metric="nri_continuous")
        if nri:
            f.say(f"Continuous NRI at the horizon: {nri}.")
        kc = "hr_vd_adj_carotid"
        hr_c = f.ci("key_results", kc, f"{kc}_ci_low", f"{kc}_ci_high", ".2f", "()", endpoint=ep)
        if hr_c:
            b = "delta_c_beyond_carotid"
            dcc = f.ci("key_results", b, f"{b}_ci_low", f"{b}_ci_high", "+.3f", endpoint=ep)
            f.say(
                f"With plaque burden and IMT from the same scan also in the model, VD's hazard ratio was {hr_c}"
                + (f" and its ΔC beyond SCORE2 + plaque + IMT {dcc}" if dcc else "")
                + "."
            )
    epv = tables.get("events_per_variable", pd.DataFrame())
    if len(epv):
        low = epv[epv.epv < 10]
        if len(low):
            ep = low.sort_values("epv").endpoint.iloc[0]
            f.say(
                f"Precision is limited: {_label(ep).lower()} has "
                f"{f.num('events_per_variable', 'epv', '.1f', endpoint=ep)} events per candidate variable of the "
                "fully adjusted model (fewer than 10), so wide intervals are expected and a null result is weak "
                "evidence of no effect."
            )
    if res.synthetic:
        hr0 = f.num("facts", "value", ".1f", key="planted_hr")
        rho = f.num("facts", "value", ".2f", key="spearman_vd_truth")
        if hr0:
            f.say(
                f"On this simulated cohort the truth is known: the simulator planted a hazard ratio of {hr0} per SD "
                "of the latent damage for MI and cardiac death"
                + (f"; 03's VD ranks that damage with Spearman ρ = {rho}" if rho else "")
                + ", so VD's hazard ratio is expected to lie between 1 and the planted value, nearer 1 the weaker "
                "that correlation."
            )
    young = f.num("facts", "value", "d", key="score2_extrapolated_below_40")
    diab = f.num("facts", "value", "d", key="diabetics_scored_with_score2")
    if young and young != "0":
        f.say(f"SCORE2 was extrapolated below its age range (40 years) for {young} people (flagged in `score2_flag`).")
    if diab and diab != "0":
        f.say(
            f"{diab} people with diabetes were scored with SCORE2, not SCORE2-Diabetes, because the cohort has no "
            "age at diabetes diagnosis."
        )
    return f


__all__ = [
    "added_value",
    "events_per_variable",
    "findings",
    "flow",
    "follow_up",
    "journal_tables",
    "missing_data",
    "score2_statement",
    "table1",
    "table1_by_vd",
    "table2",
    "td_auc_table",
]
