"""Cox models as tidy tables (lifelines), proportional-hazards checks, and Fine-Gray.

Fine-Gray subdistribution hazards are fitted the way R's ``survival::finegray`` prepares the
data: a subject with a competing event stays in the risk set after that event with a
time-varying weight ``G(t-) / G(T_i-)`` (``G``: Kaplan-Meier of the censoring distribution);
the expanded counting-process data set (delayed entry at ``start``) is fitted by the weighted
Efron Cox engine of :mod:`._coxph` with robust (sandwich) standard errors clustered on the
subject, as R's ``coxph(..., weights=fgwt, cluster=id)``. The partial likelihood only
looks at risk sets at times of the event of interest, so cutting the weights there is exact.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats

from ..io import CarotidkitError
from ._check import check_survival
from ._km import censoring_km


def _tidy(summary: pd.DataFrame, label: str, ratio: str, n: int, events: int) -> pd.DataFrame:
    """lifelines' summary as ``model, term, <ratio>, ci_low, ci_high, p, n, events``."""
    return pd.DataFrame(
        {
            "model": label,
            "term": summary.index,
            ratio: summary["exp(coef)"].to_numpy(),
            "ci_low": summary["exp(coef) lower 95%"].to_numpy(),
            "ci_high": summary["exp(coef) upper 95%"].to_numpy(),
            "p": summary["p"].to_numpy(),
            "n": n,
            "events": events,
        }
    )


def cox_table(
    df: pd.DataFrame,
    duration_col: str,
    event_col: str,
    covariates,
    label: str = "",
    per_sd: tuple = (),
    robust: bool = False,
) -> tuple[pd.DataFrame, object]:
    """Fit ``CoxPHFitter`` on ``covariates``; return (tidy table, fitted model).

    Table columns: ``model, term, hr, ci_low, ci_high, p, n, events``. Columns named in
    ``per_sd`` are standardised first, so their HR is per SD.
    """
    from lifelines import CoxPHFitter

    covariates = list(covariates)
    d = df[[duration_col, event_col, *covariates]].dropna().copy()
    check_survival(d, duration_col, event_col, covariates, what=f"Cox {label}".strip())
    for c in per_sd:
        d[c] = (d[c] - d[c].mean()) / d[c].std()
    if d[event_col].sum() < 2:
        raise CarotidkitError(f"{event_col}: {int(d[event_col].sum())} events; a Cox model needs more")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cph = CoxPHFitter().fit(d, duration_col, event_col, robust=robust)
    return _tidy(cph.summary, label, "hr", len(d), int(d[event_col].sum())), cph


def ph_test(
    df: pd.DataFrame,
    duration_col: str,
    event_col: str,
    covariates,
    label: str = "",
    transform: str = "km",
    residuals: bool = False,
):
    """The proportional-hazards test of R's ``cox.zph`` (survival >= 3.0): the exact score test
    of ``x * g(t)`` per term and globally, at the fitted Efron Cox model.

    ``transform`` (``g``): ``"km"`` (R's default, 1 - left-continuous Kaplan-Meier), ``"rank"``,
    ``"identity"`` or ``"log"``. Returns ``model, term, chi2, df, p, transform,
    ph_violated_at_0.05`` (last row ``GLOBAL``); with ``residuals=True`` also the scaled
    Schoenfeld residuals (``time, g_time`` + one column per term) for
    :func:`carotidkit.plots.ph_residuals`. A singular test (all events at one time, a constant
    covariate) is refused.
    """
    from ._coxph import fit_cox, zph

    covariates = list(covariates)
    d = check_survival(df, duration_col, event_col, markers=covariates, what=f"PH test {label}".strip(), min_events=2)
    x = d[covariates].to_numpy(float)
    t, e = d[duration_col].to_numpy(float), d[event_col].to_numpy(float)
    fit = fit_cox(t, e, x, covariates)
    tab, res = zph(fit, t, e, x, transform=transform)
    tab.insert(0, "model", label)
    tab["transform"] = transform
    tab["ph_violated_at_0.05"] = tab.p < 0.05
    return (tab, res) if residuals else tab


def lr_test(small, big) -> dict:
    """Likelihood-ratio test of a nested pair of fitted lifelines Cox models."""
    stat = 2 * (big.log_likelihood_ - small.log_likelihood_)
    df = len(big.params_) - len(small.params_)
    return {"lr_chi2": float(stat), "df": int(df), "p": float(stats.chi2.sf(stat, df))}


def finegray_expand(
    df: pd.DataFrame, duration_col: str, event_col: str, competing_col: str, covariates
) -> pd.DataFrame:
    """Counting-process data for a Fine-Gray fit: ``id, start, stop, event, weight`` + covariates."""
    covariates = list(covariates)
    d = df[[duration_col, event_col, competing_col, *covariates]].dropna().reset_index(drop=True)
    t = d[duration_col].to_numpy(float)
    e = d[event_col].to_numpy(float) > 0
    c = d[competing_col].to_numpy(float) > 0
    if (e & c).any():
        raise CarotidkitError(f"rows {np.where(e & c)[0][:5].tolist()}: both {event_col} and {competing_col}")
    g = censoring_km(t, e, c)
    ev_times = np.unique(t[e])
    base = pd.DataFrame({"id": np.arange(len(d)), "start": 0.0, "stop": t, "event": e.astype(int), "weight": 1.0})
    pieces = [base]
    ci = np.where(c)[0]
    if len(ci) and len(ev_times):
        # the weight G(t-)/G(T_i-) only changes at censoring times: cut the event times into runs of
        # equal G(t-) once, then each competing subject gets the runs after its own time (exact)
        gl = g.left(ev_times)
        last = np.r_[gl[1:] != gl[:-1], True]
        run_stop, run_w = ev_times[last], gl[last]
        k0 = np.searchsorted(run_stop, t[ci], side="right")
        counts = len(run_stop) - k0
        ids = np.repeat(ci, counts)
        first = np.repeat(np.cumsum(counts) - counts, counts)
        k = np.repeat(k0, counts) + (np.arange(counts.sum()) - first)
        g0 = np.maximum(g.left(t[ci]), 1e-12)
        start = np.where(k == np.repeat(k0, counts), np.repeat(t[ci], counts), run_stop[np.maximum(k - 1, 0)])
        pieces.append(
            pd.DataFrame(
                {"id": ids, "start": start, "stop": run_stop[k], "event": 0, "weight": run_w[k] / np.repeat(g0, counts)}
            )
        )
    long = pd.concat(pieces, ignore_index=True)
    long = long[long.weight > 0]
    return long.join(d[covariates], on="id")


def fine_gray(
    df: pd.DataFrame,
    duration_col: str,
    event_col: str,
    competing_col: str,
    covariates,
    label: str = "",
    per_sd: tuple = (),
):
    """Fine-Gray subdistribution hazard ratios (SHR) as a tidy table, and the fitted model.

    The expanded data are fitted by carotidkit's weighted Efron Cox engine with the robust
    variance clustered on the subject, which equals R's ``finegray`` + ``coxph(weights=fgwt,
    cluster=id)`` (lifelines' sandwich is wrong with delayed entry: 7-13 % too wide on mgus2).

    Example:
        >>> # tab, fit = fine_gray(cohort, "mi_years", "mi_event", "mi_competing", ["vd_z", "age_years"])
    """
    from ._coxph import fit_cox

    covariates = list(covariates)
    d = df[[duration_col, event_col, competing_col, *covariates]].dropna().copy()
    check_survival(
        d, duration_col, event_col, covariates, competing_col, what=f"Fine-Gray {label}".strip(), min_events=2
    )
    for col in per_sd:
        d[col] = (d[col] - d[col].mean()) / d[col].std()
    long = finegray_expand(d, duration_col, event_col, competing_col, covariates)
    fit = fit_cox(
        long.stop,
        long.event,
        long[covariates].to_numpy(float),
        covariates,
        start=long.start,
        weights=long.weight,
        cluster=long.id,
    )
    s = fit.summary()
    tab = pd.DataFrame(
        {
            "model": label,
            "term": s.term,
            "shr": s.hr,
            "ci_low": s.ci_low,
            "ci_high": s.ci_high,
            "p": s.p,
            "n": int(long.id.nunique()),
            "events": int(long.event.sum()),
        }
    )
    return tab, fit


def simulate_fine_gray(
    n: int, beta1=(0.5, -0.5), beta2=(-0.5, 0.5), p: float = 0.3, seed: int = 0, censor_rate: float = 0.2
) -> pd.DataFrame:
    """Competing-risks data whose cause-1 subdistribution hazard is exactly proportional
    (Fine & Gray 1999, section 5): ``P(cause 1 | x) = 1 - (1 - p)^exp(x b1)``. For tests/validation."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, len(beta1)))
    e1 = np.exp(x @ np.asarray(beta1))
    p1 = 1 - (1 - p) ** e1
    cause1 = rng.random(n) < p1
    u = rng.random(n)
    inner = 1 - (1 - u * p1) ** (1 / e1)
    t1 = -np.log(np.clip(1 - inner / p, 1e-12, None))
    t2 = rng.exponential(1 / np.exp(x @ np.asarray(beta2)))
    t = np.where(cause1, t1, t2)
    cens = rng.exponential(1 / censor_rate, n)
    obs = np.minimum(t, cens)
    return pd.DataFrame(
        {
            "time": obs,
            "event": (cause1 & (t <= cens)).astype(int),
            "competing": (~cause1 & (t <= cens)).astype(int),
            **{f"x{k + 1}": x[:, k] for k in range(x.shape[1])},
        }
    )
