"""Kaplan-Meier step functions in numpy (the censoring distribution G for IPCW weights)."""

from __future__ import annotations

import numpy as np


class StepKM:
    """Kaplan-Meier estimate of ``P(T > t)`` from ``(time, event)``; callable, right-continuous.

    ``left(t)`` gives the left limit ``P(T >= t)``. For the censoring distribution G pass
    ``event = (censored)`` and ``leave_first = (had an event)``: at tied times events happen
    before censoring (the usual convention, and scikit-survival's).
    """

    def __init__(self, time, event, weights=None, leave_first=None):
        time = np.asarray(time, float)
        event = np.asarray(event, bool)
        w = np.ones_like(time) if weights is None else np.asarray(weights, float)
        order = np.argsort(time, kind="mergesort")
        t, e, w = time[order], event[order], w[order]
        uniq, first = np.unique(t, return_index=True)
        at_risk = np.cumsum(w[::-1])[::-1][first]
        if leave_first is not None:  # these leave the risk set before ties (events before censoring)
            at_risk = at_risk - np.add.reduceat(w * np.asarray(leave_first, bool)[order], first)
        d = np.add.reduceat(w * e, first)
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.where(at_risk > 0, 1 - d / at_risk, 1.0)
        self.times = uniq
        self.surv = np.cumprod(factor)

    def __call__(self, t):
        idx = np.searchsorted(self.times, np.asarray(t, float), side="right") - 1
        return np.where(idx >= 0, self.surv[np.clip(idx, 0, None)], 1.0)

    def left(self, t):
        idx = np.searchsorted(self.times, np.asarray(t, float), side="left") - 1
        return np.where(idx >= 0, self.surv[np.clip(idx, 0, None)], 1.0)


def censoring_km(time, event, competing=None) -> StepKM:
    """KM of the censoring distribution: censored = neither the event nor a competing event."""
    event = np.asarray(event, bool)
    other = np.zeros_like(event) if competing is None else np.asarray(competing, bool)
    return StepKM(time, ~(event | other), leave_first=event | other)


def aalen_johansen(time, event, competing=None):
    """Aalen-Johansen cumulative incidence of ``event`` with ``competing`` as the competing event.

    Exact tie handling, independent of row order: at a tied time everyone with that time is still
    at risk (events, competing events and censorings), events and competing events leave together,
    and censorings after them; the same convention as ``cmprsk::cuminc``. Returns
    ``(times, cif)`` at the distinct event times; read it right-continuously
    (:func:`step_at`).
    """
    t = np.asarray(time, float)
    e = np.asarray(event, bool)
    c = np.zeros_like(e) if competing is None else np.asarray(competing, bool)
    uniq, inv = np.unique(t, return_inverse=True)
    n_at = len(t) - np.concatenate([[0], np.cumsum(np.bincount(inv, minlength=len(uniq)))[:-1]])
    d1 = np.bincount(inv, weights=e.astype(float), minlength=len(uniq))
    dall = np.bincount(inv, weights=(e | c).astype(float), minlength=len(uniq))
    surv = np.cumprod(1 - dall / n_at)
    surv_left = np.concatenate([[1.0], surv[:-1]])
    cif = np.cumsum(surv_left * d1 / n_at)
    keep = dall > 0
    return uniq[keep], cif[keep]


def step_at(times, values, at, before: float = 0.0):
    """Right-continuous step function through ``(times, values)`` read at ``at``."""
    times, at = np.asarray(times, float), np.asarray(at, float)
    if not len(times):  # no event at all: the curve never leaves its starting value
        return np.full(at.shape, before)
    idx = np.searchsorted(times, at, side="right") - 1
    return np.where(idx >= 0, np.asarray(values, float)[np.clip(idx, 0, None)], before)


def risk_at(time, event, competing, at) -> np.ndarray:
    """Kaplan-Meier risk (Aalen-Johansen with ``competing``) read right-continuously at ``at``."""
    times, cif = aalen_johansen(time, event, competing)
    return step_at(times, cif, at)
