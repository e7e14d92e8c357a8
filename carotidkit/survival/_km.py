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
