"""VD beyond the carotid markers on the same scan: plaque burden and IMT from 02.

For each endpoint 05 fits six nested models on the subjects with all three carotid measures
(complete cases), as cause-specific Cox and, where a competing event exists, Fine-Gray:
SCORE2; SCORE2 + plaque burden; SCORE2 + IMT; SCORE2 + VD; SCORE2 + plaque + IMT (the carotid
reference); SCORE2 + VD + plaque + IMT. Each row gives the hazard ratios per SD of VD, plaque
burden (``log(1 + plaque area in mm²)``, mean per side) and IMT with 95 % CIs, the
cross-validated Harrell C, its paired-bootstrap difference from SCORE2, and the likelihood-ratio
p against SCORE2; VD's added value beyond SCORE2 + plaque + IMT is the paired ΔC of the last
model against the carotid reference. NRI/IDI compare the full model with SCORE2 (both
cross-validated, recalibrated Cox risks).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..io import CarotidkitError

#: model -> covariates (score2_lp: SCORE2's complementary log-log risk)
MODELS = {
    "SCORE2": ["score2_lp"],
    "SCORE2 + plaque burden": ["score2_lp", "plaque_z"],
    "SCORE2 + IMT": ["score2_lp", "imt_z"],
    "SCORE2 + VD": ["score2_lp", "vd_z"],
    "SCORE2 + plaque + IMT": ["score2_lp", "plaque_z", "imt_z"],
    "SCORE2 + VD + plaque + IMT": ["score2_lp", "vd_z", "plaque_z", "imt_z"],
}
REFERENCE, FULL = "SCORE2 + plaque + IMT", "SCORE2 + VD + plaque + IMT"
TERMS = {"vd_z": "vd", "plaque_z": "plaque", "imt_z": "imt"}


def attach(d: pd.DataFrame, plaque: pd.DataFrame, cohort_ids, where: str = "subject_plaque.parquet") -> pd.DataFrame:
    """``d`` with 02's per-subject ``plaque_area_mm2``, ``any_plaque``, ``imt_mm`` and their per-SD
    forms ``plaque_z`` (of ``log(1 + area)``) and ``imt_z``. A plaque table with a subject id the
    cohort does not have belongs to another cohort (or run): refused with one line."""
    ids = plaque.subject_id.astype(str)
    unknown = sorted(set(ids) - set(map(str, cohort_ids)))
    if unknown:
        raise CarotidkitError(
            f"{where}: {len(unknown)} of {len(ids)} subject ids are not in the cohort (e.g. {', '.join(unknown[:3])}); "
            "it was measured on another cohort: rerun 02_unet_ensemble on this run's data"
        )
    cols = ["subject_id", "plaque_area_mm2", "any_plaque", "imt_mm"]
    p = plaque[cols].assign(subject_id=ids)
    out = d.merge(p, on="subject_id", how="left")
    burden = np.log1p(out.plaque_area_mm2)
    out["plaque_z"] = _per_sd(burden)
    out["imt_z"] = _per_sd(out.imt_mm)
    out["plaque_group"] = out.any_plaque.map({True: "plaque", False: "no plaque"})
    return out


def _per_sd(x: pd.Series) -> pd.Series:
    """Standardised ``x`` (0 where it does not vary: the models then say so and are skipped)."""
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else x * 0.0


def _hr(tab: pd.DataFrame, term: str, col: str = "hr") -> dict:
    t = tab.set_index("term")
    if term not in t.index:
        return {}
    r = t.loc[term]
    return {"": float(r[col]), "_ci_low": float(r.ci_low), "_ci_high": float(r.ci_high)}


def _row(ep, name, method, tab, col, n, events) -> dict:
    row = {"endpoint": ep, "model": name, "method": method, "n": n, "events": events}
    for term, short in TERMS.items():
        row.update({f"hr_{short}{k}": v for k, v in _hr(tab, term, col).items()})
    return row


def models(dd, ep, dur, ev, comp, horizon, n_boot, seed, notes, out, key) -> None:
    """The six models of :data:`MODELS` for one endpoint: rows into ``out["carotid"]``, NRI/IDI
    into ``out["carotid_reclassification"]``, VD's adjusted HR and ΔC into ``key``."""
    from . import calibration as cal
    from . import cox as coxm
    from .discrimination import bootstrap_c
    from .score2 import esc_category
    from .stage import FIT_ERRORS, _cv_risk

    dc = dd.dropna(subset=["plaque_z", "imt_z"]).reset_index(drop=True)
    n, n_ev = len(dc), int(dc[ev].sum())
    if len(dc) < len(dd):
        notes.append(f"{ep}: {len(dd) - n} subjects without a plaque or IMT measurement left out of the carotid models")
    flat = [TERMS[c] for c in ("plaque_z", "imt_z") if dc[c].nunique() < 2]
    if flat:
        notes.append(f"{ep}: no variation in {' and '.join(flat)} across subjects; carotid models skipped")
        return
    if n_ev < 10:
        notes.append(f"{ep}: {n_ev} events among subjects with carotid measures; carotid models need 10, skipped")
        return
    rows, fitted, lps, risks = [], {}, {}, {}
    for name, covs in MODELS.items():
        try:
            tab, cph = coxm.cox_table(dc, dur, ev, covs, label=name)
            fitted[name] = cph
            rows.append(_row(ep, name, "Cox", tab, "hr", n, n_ev))
            lps[name], risks[name] = _cv_risk(dc, dur, ev, covs, horizon, seed=seed)
        except FIT_ERRORS as exc:
            notes.append(f"{ep} / carotid Cox {name}: not fitted ({type(exc).__name__}: {str(exc)[:120]})")
        if not comp:
            continue
        try:
            fg, _ = coxm.fine_gray(dc, dur, ev, comp, covs, label=name)
            rows.append(_row(ep, name, "Fine-Gray", fg, "shr", n, n_ev))
        except FIT_ERRORS as exc:
            notes.append(f"{ep} / carotid Fine-Gray {name}: not fitted ({type(exc).__name__}: {str(exc)[:120]})")
    table = pd.DataFrame(rows)
    cols = {name: f"lp{i}" for i, name in enumerate(lps)}
    dl = dc.assign(**{cols[k]: v for k, v in lps.items()})
    if "SCORE2" in fitted:
        table["lr_p_vs_score2"] = [
            coxm.lr_test(fitted["SCORE2"], fitted[m])["p"]
            if m in fitted and m != "SCORE2" and meth == "Cox"
            else np.nan
            for m, meth in zip(table.model, table.method)
        ]
    for ref, prefix in (("SCORE2", "delta_c_vs_score2"), (REFERENCE, "delta_c_vs_carotid")):
        if ref not in cols:
            continue
        try:
            b = bootstrap_c(dl, dur, ev, list(cols.values()), n_boot=n_boot, seed=seed, reference=cols[ref]).set_index(
                "risk"
            )
        except CarotidkitError as exc:
            notes.append(f"{ep} / carotid C: {exc}")
            continue
        for name, c in cols.items():
            sel = (table.model == name) & (table.method == "Cox")
            table.loc[sel, "c_index_cv"] = float(b.loc[c, "c_index"])
            if name != ref and (ref == "SCORE2" or name == FULL):
                for k, src in (("", "delta_c"), ("_ci_low", "delta_ci_low"), ("_ci_high", "delta_ci_high")):
                    table.loc[sel, prefix + k] = float(b.loc[c, src])
    out["carotid"].append(table)
    full = table[(table.model == FULL) & (table.method == "Cox")]
    if len(full):
        f = full.iloc[0]
        key.update(
            hr_vd_adj_carotid=f.get("hr_vd"),
            hr_vd_adj_carotid_ci_low=f.get("hr_vd_ci_low"),
            hr_vd_adj_carotid_ci_high=f.get("hr_vd_ci_high"),
            delta_c_beyond_carotid=f.get("delta_c_vs_carotid"),
            delta_c_beyond_carotid_ci_low=f.get("delta_c_vs_carotid_ci_low"),
            delta_c_beyond_carotid_ci_high=f.get("delta_c_vs_carotid_ci_high"),
        )
    if "SCORE2" in risks and FULL in risks:
        t, e = dc[dur].to_numpy(float), dc[ev].to_numpy(float)
        c = dc[comp].to_numpy(float) if comp else None
        try:
            rc = cal.reclassification(
                risks["SCORE2"], risks[FULL], t, e, horizon, c,
                esc_category(risks["SCORE2"], dc.age_years), esc_category(risks[FULL], dc.age_years),
                n_boot=min(n_boot, 200), seed=seed,
            )  # fmt: skip
            out["carotid_reclassification"].append(rc.assign(endpoint=ep, comparison=f"{FULL} vs SCORE2"))
        except CarotidkitError as exc:
            notes.append(f"{ep} / carotid NRI: {exc}")


def _fmt_ci(est, lo, hi, digits: int = 2, signed: bool = False) -> str:
    if est is None or pd.isna(est):
        return ""
    f = f"{{:{'+' if signed else ''}.{digits}f}}"
    return f"{f.format(est)} ({f.format(lo)} to {f.format(hi)})"


def _fmt_p(p) -> str:
    return "" if p is None or pd.isna(p) else ("<0.001" if p < 0.001 else f"{p:.3f}")


def paper_table(table: pd.DataFrame) -> pd.DataFrame:
    """:data:`MODELS`' rows as a paper prints them: hazard ratios per SD as "HR (95 % CI)" text,
    cross-validated C, ΔC against SCORE2 and VD's ΔC beyond SCORE2 + plaque + IMT, LR p."""
    if table is None or table.empty:
        return pd.DataFrame()
    t = table.copy()
    g = lambda r, k: r.get(k, np.nan)  # noqa: E731
    out = pd.DataFrame(
        {
            "endpoint": t.endpoint.str.replace("_", " "),
            "model": t.model,
            "method": t.method.map({"Cox": "Cox (cause-specific)", "Fine-Gray": "Fine-Gray (subdistribution)"}),
            "events / n": [f"{e} / {n}" for e, n in zip(t.events, t.n)],
            "VD, HR per SD (95 % CI)": [
                _fmt_ci(g(r, "hr_vd"), g(r, "hr_vd_ci_low"), g(r, "hr_vd_ci_high")) for _, r in t.iterrows()
            ],
            "plaque burden, HR per SD": [
                _fmt_ci(g(r, "hr_plaque"), g(r, "hr_plaque_ci_low"), g(r, "hr_plaque_ci_high")) for _, r in t.iterrows()
            ],
            "IMT, HR per SD": [
                _fmt_ci(g(r, "hr_imt"), g(r, "hr_imt_ci_low"), g(r, "hr_imt_ci_high")) for _, r in t.iterrows()
            ],
            "C (cross-validated)": [
                ("" if pd.isna(g(r, "c_index_cv")) else f"{g(r, 'c_index_cv'):.3f}") for _, r in t.iterrows()
            ],
            "ΔC vs SCORE2 (95 % CI)": [
                _fmt_ci(
                    g(r, "delta_c_vs_score2"),
                    g(r, "delta_c_vs_score2_ci_low"),
                    g(r, "delta_c_vs_score2_ci_high"),
                    3,
                    True,
                )
                for _, r in t.iterrows()
            ],
            "ΔC of VD beyond plaque + IMT": [
                _fmt_ci(
                    g(r, "delta_c_vs_carotid"),
                    g(r, "delta_c_vs_carotid_ci_low"),
                    g(r, "delta_c_vs_carotid_ci_high"),
                    3,
                    True,
                )
                for _, r in t.iterrows()
            ],
            "LR p vs SCORE2": [_fmt_p(g(r, "lr_p_vs_score2")) for _, r in t.iterrows()],
        }
    )
    return out
