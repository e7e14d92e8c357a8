"""Notebook 05's stage: VD against SCORE2 for MI, cardiac death and all-cause death.

``run(run_dir=..., ...)`` reads the cohort (00) and the out-of-fold VD (03), computes SCORE2,
and returns a :class:`SurvivalResult` of tidy tables; it also writes them under
``layout.survival``. Absolute-risk comparisons use 5-fold cross-validated Cox predictions so
that refitted models are not judged on the data they were fitted to.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from .. import io
from ..io import CarotidkitError
from ..layout import RunLayout
from ..settings import SurvivalSettings
from ..stages import Progress, StageResult, is_synthetic, stage
from . import calibration as cal
from . import cox as coxm
from . import curves
from .discrimination import bootstrap_c, time_dependent_auc_ci
from .score2 import esc_category, esc_risk

ENDPOINTS = {"mi": "myocardial infarction", "cardiac_death": "cardiac death", "death": "all-cause death"}
FULL_ADJUST = [
    "age_years",
    "male",
    "smoking",
    "sbp_mmhg",
    "tc_mmol_l",
    "hdl_mmol_l",
    "diabetes",
    "bmi_kg_m2",
    "antihypertensive",
]


@dataclass
class SurvivalResult(StageResult):
    """Tables of notebook 05 (lifelines style: each attribute is a tidy DataFrame)."""

    key_results: pd.DataFrame  # one row per endpoint: VD's adjusted HR, C of SCORE2 and SCORE2 + VD, ΔC, ...
    analysis: pd.DataFrame
    cox: pd.DataFrame
    ph: pd.DataFrame
    ph_residuals: pd.DataFrame
    lr: pd.DataFrame
    fine_gray: pd.DataFrame
    discrimination: pd.DataFrame
    td_auc: pd.DataFrame
    km: pd.DataFrame
    at_risk: pd.DataFrame
    km_tests: pd.DataFrame
    cif: pd.DataFrame
    calibration: pd.DataFrame
    calibration_curves: pd.DataFrame
    reclassification: pd.DataFrame
    decision: pd.DataFrame
    #: SCORE2 against SCORE2 + plaque burden / IMT / VD, and all three (:mod:`.carotid`): one row
    #: per endpoint, model and method (Cox, Fine-Gray); empty without 02's subject measurements
    carotid: pd.DataFrame = field(default_factory=pd.DataFrame)
    carotid_reclassification: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list = field(default_factory=list)
    n_cohort: int | None = None  # people in the cohort before the join with VD (participant flow)
    planted_hr: float | None = None  # simulated data: the hazard ratio planted per SD of the latent damage

    def journal_tables(self) -> dict[str, pd.DataFrame]:
        """Flow, missing data, follow-up, EPV, Table 1 by VD quartile, Table 2, added value,
        SCORE2 use and the facts the findings cite (:mod:`.reporting`)."""
        from . import reporting

        return reporting.journal_tables(self, self.n_cohort, self.planted_hr)

    def findings(self):
        """What we found, in words whose every number comes from a table (:mod:`.reporting`)."""
        from . import reporting

        return reporting.findings(self, self.tables())

    def carotid_table(self) -> pd.DataFrame:
        """The carotid-marker models as a paper prints them (:func:`.carotid.paper_table`)."""
        from .carotid import paper_table

        return paper_table(self.carotid)

    def calibration_table(self) -> pd.DataFrame:
        """Calibration metrics as one row per endpoint and model, each ``estimate [95 % CI]``."""
        if self.calibration.empty:
            return pd.DataFrame()
        c = self.calibration.copy()
        c["value"] = [
            f"{e:.3f} [{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) and np.isfinite(hi) else f"{e:.3f}"
            for e, lo, hi in zip(c.estimate, c.ci_low.astype(float), c.ci_high.astype(float))
        ]
        return c.pivot_table(index=["endpoint", "model"], columns="metric", values="value", aggfunc="first")


def headline(key_results: pd.DataFrame) -> str:
    """One line of what 05 found (for the report index)."""
    parts = []
    for r in key_results.itertuples():
        if pd.notna(getattr(r, "hr_vd_per_sd_adj_score2", np.nan)):
            parts.append(
                f"{r.endpoint}: HR/SD {r.hr_vd_per_sd_adj_score2:.2f} | C SCORE2 "
                f"{r.c_score2:.3f}, +VD {r.c_score2_vd:.3f} (ΔC {r.delta_c:+.3f} "
                f"[{r.delta_ci_low:+.3f}, {r.delta_ci_high:+.3f}])"
            )
    if "delta_c_beyond_carotid" in key_results:
        beyond = [
            f"{r.endpoint} HR/SD {r.hr_vd_adj_carotid:.2f}, ΔC {r.delta_c_beyond_carotid:+.3f} "
            f"[{r.delta_c_beyond_carotid_ci_low:+.3f}, {r.delta_c_beyond_carotid_ci_high:+.3f}]"
            for r in key_results.itertuples()
            if pd.notna(getattr(r, "delta_c_beyond_carotid", np.nan))
        ]
        if beyond:
            parts.append("VD beyond SCORE2 + plaque + IMT: " + ", ".join(beyond))
    return "; ".join(parts) or "too few events for survival models"


#: what a model fit on small or degenerate data raises (ValueError includes CarotidkitError and
#: lifelines' ConvergenceError; LinAlgError a singular information matrix; ArithmeticError an
#: overflow): recorded as a note, the endpoint's other tables still made. Anything else is a bug.
FIT_ERRORS = (ValueError, ArithmeticError, np.linalg.LinAlgError)


def cloglog(p):
    p = np.clip(np.asarray(p, float), 1e-6, 1 - 1e-6)
    return np.log(-np.log(1 - p))


def build_analysis_table(
    cohort: pd.DataFrame, vd: pd.DataFrame | None, region: str, truth: pd.DataFrame | None, vd_source: str
) -> pd.DataFrame:
    """Cohort + VD (``vd_z``) + SCORE2 columns; one row per subject with a VD."""
    d = cohort.copy()
    if vd_source == "truth":
        if truth is None:
            raise CarotidkitError("vd_source='truth' needs the simulator's truth (synthetic data only)")
        d = d.merge(truth[["subject_id", "vd_true"]], on="subject_id")
        d["vd_z"] = (d.vd_true - d.vd_true.mean()) / d.vd_true.std()
    else:
        if vd is None:
            raise CarotidkitError(
                "no VD scores: run notebook 03_vd_video first (make report ONLY=03), "
                "or pass vd_source='truth' on synthetic data"
            )
        d = d.merge(vd[["subject_id", "vd_z", "vd_percentile"]], on="subject_id", how="inner")
        if truth is not None:
            d = d.merge(truth[["subject_id", "vd_true"]], on="subject_id", how="left")
    if d.empty:
        raise CarotidkitError("no subject has both a cohort row and a VD score: check subject_id formats")
    s2 = esc_risk(d, region=region)
    d = pd.concat([d, s2], axis=1)
    d["score2_lp"] = cloglog(d.score2_risk)
    d["male"] = (d.sex == "male").astype(int)
    return d


def _cv_risk(d, dur, ev, covs, horizon, k=5, seed=0):
    """5-fold cross-validated Cox: linear predictor and risk at ``horizon`` for every row."""
    from lifelines import CoxPHFitter

    rng = np.random.default_rng(seed)
    fold = rng.permutation(len(d)) % k
    lp, risk = np.full(len(d), np.nan), np.full(len(d), np.nan)
    for f in range(k):
        tr, te = fold != f, fold == f
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cph = CoxPHFitter().fit(d.loc[tr, [dur, ev, *covs]], dur, ev)
        X = d.loc[te, covs]
        lp[te] = cph.predict_log_partial_hazard(X).to_numpy()
        risk[te] = 1 - cph.predict_survival_function(X, times=[horizon]).to_numpy()[0]
    return lp, risk


def _curves(dd, ep, dur, ev, comp, groups, horizon, out):
    """Kaplan-Meier by VD quantile group and by SCORE2 category; Aalen-Johansen by VD group."""
    dd["vd_group"] = curves.quantile_groups(dd.vd_z, groups, "Q")
    for by, label in (
        ("vd_group", f"VD {'quartile' if groups == 4 else 'group'}"),
        ("score2_category", "SCORE2 category"),
        ("plaque_group", "plaque on the B-mode images"),
    ):
        if by not in dd:
            continue
        sub = dd.dropna(subset=[by])
        sub = sub[sub[by].isin(sub[by].value_counts()[lambda s: s > 0].index)]
        if sub[by].nunique() < 2:
            continue
        km, risk = curves.km_table(sub, dur, ev, by, at=tuple(range(0, int(horizon) + 1, 2)))
        out["km"].append(km.assign(endpoint=ep, by=label))
        out["at_risk"].append(risk.assign(endpoint=ep, by=label))
        out["km_tests"].append({"endpoint": ep, "by": label, **curves.group_tests(sub, dur, ev, by)})
    if comp:
        out["cif"].append(curves.cumulative_incidence(dd, dur, ev, comp, "vd_group").assign(endpoint=ep))


def _hazard_models(dd, ep, dur, ev, comp, ph_transform, notes, out) -> dict:
    """Cox models of VD per SD with increasing adjustment, SCORE2 vs SCORE2 + VD (LR and PH
    tests), Fine-Gray beside cause-specific Cox; returns the fitted Cox models by name."""
    models = {
        "crude": ["vd_z"],
        "age + sex": ["vd_z", "age_years", "male"],
        "SCORE2-adjusted": ["vd_z", "score2_lp"],
        "fully adjusted": ["vd_z", *[c for c in FULL_ADJUST if c in dd]],
    }
    fitted = {}
    for name, covs in models.items():
        try:
            tab, cph = coxm.cox_table(dd, dur, ev, covs, label=name)
        except FIT_ERRORS as exc:  # no convergence, a singular design on tiny data
            notes.append(f"{ep} / Cox {name}: not fitted ({type(exc).__name__}: {str(exc)[:80]})")
            continue
        fitted[name] = cph
        out["cox"].append(tab.assign(endpoint=ep))
    try:
        t0, s_only = coxm.cox_table(dd, dur, ev, ["score2_lp"], label="SCORE2 alone")
        out["cox"].append(t0.assign(endpoint=ep))
        if "SCORE2-adjusted" in fitted:
            both = fitted["SCORE2-adjusted"]
            out["lr"].append({"endpoint": ep, "comparison": "SCORE2 + VD vs SCORE2", **coxm.lr_test(s_only, both)})
            ph, phr = coxm.ph_test(
                dd, dur, ev, ["vd_z", "score2_lp"], label="SCORE2-adjusted", transform=ph_transform, residuals=True
            )
            out["ph"].append(ph.assign(endpoint=ep))
            out["ph_residuals"].append(phr.assign(endpoint=ep))
    except FIT_ERRORS as exc:
        notes.append(f"{ep} / Cox SCORE2 alone: not fitted ({type(exc).__name__})")
    if comp:
        try:
            fg, _ = coxm.fine_gray(dd, dur, ev, comp, ["vd_z", "score2_lp"], label="Fine-Gray, SCORE2-adjusted")
            out["fine_gray"].append(fg.assign(endpoint=ep))
            cs, _ = coxm.cox_table(dd, dur, ev, ["vd_z", "score2_lp"], label="cause-specific, SCORE2-adjusted")
            out["fine_gray"].append(cs.rename(columns={"hr": "shr"}).assign(endpoint=ep))
        except FIT_ERRORS as exc:
            notes.append(f"{ep} / Fine-Gray: not fitted ({type(exc).__name__}: {str(exc)[:80]})")
    return fitted


def _endpoint(d, ep, horizon, n_boot, groups, seed, notes, out, ph_transform):
    dur, ev = f"{ep}_years", f"{ep}_event"
    comp = f"{ep}_competing" if f"{ep}_competing" in d else None
    dd = d.dropna(subset=[dur, ev, "vd_z", "score2_risk"]).reset_index(drop=True)
    n_ev = int(dd[ev].sum())
    row = {"endpoint": ep, "n": len(dd), "events": n_ev}
    if n_ev < 5:
        notes.append(f"{ep}: {n_ev} events; survival models need at least 5, skipped")
        return row
    _curves(dd, ep, dur, ev, comp, groups, horizon, out)
    fitted = _hazard_models(dd, ep, dur, ev, comp, ph_transform, notes, out)
    # Cross-validated absolute risks and linear predictors
    try:
        lp_s, risk_s = _cv_risk(dd, dur, ev, ["score2_lp"], horizon, seed=seed)
        lp_b, risk_b = _cv_risk(dd, dur, ev, ["score2_lp", "vd_z"], horizon, seed=seed)
    except FIT_ERRORS as exc:
        notes.append(f"{ep}: cross-validated Cox failed ({type(exc).__name__}); discrimination only")
        lp_b = risk_s = risk_b = None
    dd["score2_vd_lp"] = lp_b if lp_b is not None else np.nan
    # Discrimination: Harrell and Uno (tau = horizon), paired bootstrap of delta C
    risks = ["score2_risk", "vd_z"] + (["score2_vd_lp"] if lp_b is not None else [])
    for method, tau in (("harrell", None), ("uno", horizon)):
        try:
            b = bootstrap_c(
                dd, dur, ev, risks, method=method, tau=tau, n_boot=n_boot, seed=seed, reference="score2_risk"
            )
            out["discrimination"].append(b.assign(endpoint=ep))
        except CarotidkitError as exc:
            notes.append(f"{ep} / {method} C: {exc}")
    for r in risks:
        times = [t for t in (5.0, float(horizon)) if t <= dd[dur].max()]
        td = time_dependent_auc_ci(dd, dur, ev, r, times, competing_col=comp, n_boot=min(n_boot, 200), seed=seed)
        out["td_auc"].append(td.assign(endpoint=ep, risk=r))
    # Calibration, reclassification and net benefit at the horizon
    if risk_b is not None:
        _absolute_risk(dd, dur, ev, comp, ep, horizon, n_boot, seed, risk_s, risk_b, notes, out, row)
    if "plaque_z" in dd:
        from . import carotid

        carotid.models(dd, ep, dur, ev, comp, horizon, n_boot, seed, notes, out, row)
    # headline row
    for name, key in (("crude", "hr_vd_per_sd_crude"), ("SCORE2-adjusted", "hr_vd_per_sd_adj_score2")):
        if name in fitted:
            s = fitted[name].summary.loc["vd_z"]
            row[key] = float(s["exp(coef)"])
            if key.endswith("score2"):
                row["hr_ci_low"], row["hr_ci_high"] = float(s["exp(coef) lower 95%"]), float(s["exp(coef) upper 95%"])
    h = [x for x in out["discrimination"] if (x.endpoint == ep).all() and (x.method == "harrell").all()]
    if h:
        t = h[0].set_index("risk")
        row["c_score2"], row["c_vd"] = float(t.loc["score2_risk", "c_index"]), float(t.loc["vd_z", "c_index"])
        if "score2_vd_lp" in t.index:
            r2 = t.loc["score2_vd_lp"]
            row.update(
                c_score2_vd=float(r2.c_index),
                delta_c=float(r2.delta_c),
                delta_ci_low=float(r2.delta_ci_low),
                delta_ci_high=float(r2.delta_ci_high),
            )
    return row


def _absolute_risk(dd, dur, ev, comp, ep, horizon, n_boot, seed, risk_s, risk_b, notes, out, row):
    """Calibration (STRATOS/Austin), reclassification (IPCW and KM NRI) and net benefit."""
    t, e = dd[dur].to_numpy(float), dd[ev].to_numpy(float)
    c = dd[comp].to_numpy(float) if comp else None
    if int(((e > 0) & (t <= horizon)).sum()) < 3:
        notes.append(f"{ep}: fewer than 3 events by {horizon:g} years; no calibration or reclassification")
        return
    model_risks = {
        "SCORE2 (as published, CVD risk)": dd.score2_risk.to_numpy(),
        "SCORE2 recalibrated (CV Cox)": risk_s,
        "SCORE2 + VD (CV Cox)": risk_b,
    }
    for name, r in model_risks.items():
        try:
            cc = cal.calibration(r, t, e, horizon, c, n_boot=min(n_boot, 200), seed=seed, what=f"{ep} / {name}")
        except CarotidkitError as exc:
            notes.append(f"{ep} / calibration of {name}: {exc}")
            continue
        out["calibration"].append(cc["summary"].assign(endpoint=ep, model=name))
        out["calibration_curves"].append(cc["curve"].assign(endpoint=ep, model=name))
    rc = cal.reclassification(
        risk_s,
        risk_b,
        t,
        e,
        horizon,
        c,
        esc_category(risk_s, dd.age_years),
        esc_category(risk_b, dd.age_years),
        n_boot=min(n_boot, 200),
        seed=seed,
    )
    out["reclassification"].append(rc.assign(endpoint=ep))
    case, w = cal.ipcw_outcome(dd, dur, ev, horizon, comp)
    out["decision"].append(
        cal.net_benefit({"SCORE2 recalibrated": risk_s, "SCORE2 + VD": risk_b}, case, w).assign(endpoint=ep)
    )
    nri = rc.set_index("metric").estimate
    for k in ("nri_categorical", "nri_categorical_km", "nri_continuous", "nri_continuous_km"):
        row[k] = float(nri.get(k, np.nan))


_NOT_TABLES = ("notes", "settings", "synthetic", "summary", "n_cohort", "planted_hr", "_tables")


def _write(lay, res: SurvivalResult, d: pd.DataFrame) -> None:
    """The tables downstream readers use, under ``layout.survival``."""
    s = lay.survival
    s.ensure()
    keep = [
        c
        for c in d.columns
        if c
        in ("subject_id", "vd_z", "vd_true", "score2_risk", "score2_model", "score2_flag", "score2_lp")
        + ("plaque_area_mm2", "any_plaque", "imt_mm", "plaque_z", "imt_z")
    ] + ["score2_category"]
    an = d[keep].copy()
    an["score2_category"] = an.score2_category.astype(str)
    io.write_parquet(s.analysis, an)
    io.write_parquet(s.key_results, res.key_results)
    io.write_parquet(s.cox, res.cox)
    io.write_parquet(s.fine_gray, res.fine_gray)
    io.write_parquet(s.discrimination, res.discrimination)
    io.write_parquet(s.calibration, res.calibration)
    io.write_parquet(s.carotid, res.carotid)


#: the endpoints 05 compares VD and SCORE2 on (a cohort lacking one's columns skips it, with a note)
ENDPOINTS = ("mi", "cardiac_death", "death")


@stage(SurvivalSettings)
def run(cfg: SurvivalSettings, lay: RunLayout, progress: Progress) -> SurvivalResult:
    """Compare VD with SCORE2 for each endpoint; return a :class:`SurvivalResult`.

    Settings (:class:`carotidkit.settings.SurvivalSettings`): ``region`` (SCORE2 risk region;
    Germany/GHS: ``"moderate"``), ``horizon_years`` (of absolute risks, calibration, NRI; SCORE2's
    is 10 years), ``groups`` (VD groups for Kaplan-Meier), ``n_boot`` (bootstrap replicates for
    C-index CIs; calibration/NRI use up to 200), ``vd_source`` (``"vd"``: 03's out-of-fold score,
    or ``"truth"``: the simulator's ``vd_true``), ``ph_transform`` (g(t) of the PH test).

    Example:
        res = run(run_dir="runs/smoke", n_boot=100)
        res.key_results
    """
    paths = lay.data.resolved()
    cohort = io.read_parquet(paths["cohort"])
    truth = io.read_parquet(lay.data.cohort_truth) if lay.data.cohort_truth.exists() else None
    vd = io.read_parquet(lay.vd.vd) if lay.vd.vd.exists() else None
    t0 = time.perf_counter()
    d = build_analysis_table(cohort, vd, cfg.region, truth, cfg.vd_source)
    if lay.unet.subject_plaque.exists():
        from . import carotid

        plaque = io.read_parquet(lay.unet.subject_plaque)
        d = carotid.attach(d, plaque, cohort.subject_id, where=str(lay.unet.subject_plaque))
    else:
        notes0 = ["no per-subject plaque burden or IMT (run 02_unet_ensemble): VD is compared with SCORE2 only"]
    # one list per table of SurvivalResult, filled endpoint by endpoint
    out = {f.name: [] for f in fields(SurvivalResult) if f.name not in ("key_results", "analysis", *_NOT_TABLES)}
    notes, rows = (notes0 if not lay.unet.subject_plaque.exists() else []), []
    for ep in ENDPOINTS:
        if f"{ep}_event" not in d or f"{ep}_years" not in d:
            notes.append(f"{ep}: no {ep}_event/{ep}_years columns in the cohort, skipped")
            continue
        progress(f"05_survival: {ep} ...")
        with progress.phase(f"endpoint {ep}"):
            rows.append(
                _endpoint(d, ep, cfg.horizon_years, cfg.n_boot, cfg.groups, cfg.seed, notes, out, cfg.ph_transform)
            )
    frames = {
        k: (pd.concat(v, ignore_index=True) if v and isinstance(v[0], pd.DataFrame) else pd.DataFrame(v))
        for k, v in out.items()
    }
    planted = None
    if truth is not None and lay.data.summary.exists():
        planted = io.read_json(lay.data.summary).get("settings", {}).get("vd_hr_per_sd")
    res = SurvivalResult(
        key_results=pd.DataFrame(rows),
        analysis=d,
        notes=notes,
        n_cohort=len(cohort),
        planted_hr=planted,
        settings=cfg,
        synthetic=is_synthetic(lay),
        **frames,
    )
    res.summary = {
        "headline": headline(res.key_results),
        "notes": notes,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    _write(lay, res, d)
    return res  # saved by the stage decorator, with its timings
