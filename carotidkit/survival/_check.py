"""Input checks shared by every survival function (scikit-survival's ``_check_inputs`` is the
model): one line naming the column and the problem, before any number is computed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..io import CarotidkitError


def check_survival(
    df: pd.DataFrame,
    duration_col: str,
    event_col: str,
    markers=(),
    competing_col: str | None = None,
    what: str = "",
    min_events: int = 1,
) -> pd.DataFrame:
    """Return ``df`` restricted to the columns used, or raise :class:`CarotidkitError`.

    Refused: a missing column; NaN in any used column (counted); fewer than 2 rows; negative
    times; an event at time 0 (nobody is at risk before it); an event indicator other than 0/1;
    a row with both the event and the competing event; fewer than ``min_events`` events; a
    constant marker.
    """
    where = f"{what}: " if what else ""
    cols = [duration_col, event_col, *([competing_col] if competing_col else []), *markers]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise CarotidkitError(
            f"{where}column {missing[0]!r} not in the table (have: {', '.join(map(str, df.columns))})"
        )
    d = df[cols]
    nan = d.isna().sum()
    if nan.any():
        c = nan.index[nan.to_numpy() > 0][0]
        raise CarotidkitError(f"{where}column {c!r} has {int(nan[c])} missing values; drop or impute them first")
    if len(d) < 2:
        raise CarotidkitError(f"{where}{len(d)} subject(s); survival statistics need at least 2")
    t = d[duration_col].to_numpy(float)
    for c in [event_col, *([competing_col] if competing_col else [])]:
        v = d[c].to_numpy(float)
        if not np.isin(v, (0.0, 1.0)).all():
            bad = np.where(~np.isin(v, (0.0, 1.0)))[0][0]
            raise CarotidkitError(f"{where}column {c!r}, row {bad}: value {v[bad]:g}; an event indicator is 0 or 1")
    if (t < 0).any():
        bad = np.where(t < 0)[0][0]
        raise CarotidkitError(f"{where}column {duration_col!r}, row {bad}: negative time {t[bad]:g}")
    e = d[event_col].to_numpy(float) > 0
    c = d[competing_col].to_numpy(float) > 0 if competing_col else np.zeros_like(e)
    if ((e | c) & (t == 0)).any():
        bad = np.where((e | c) & (t == 0))[0][0]
        raise CarotidkitError(f"{where}column {duration_col!r}, row {bad}: an event at time 0 (nobody is at risk)")
    if (e & c).any():
        bad = np.where(e & c)[0][0]
        raise CarotidkitError(f"{where}row {bad}: both {event_col!r} and {competing_col!r}")
    if e.sum() < min_events:
        raise CarotidkitError(f"{where}column {event_col!r}: {int(e.sum())} events; need at least {min_events}")
    for m in markers:
        v = d[m].to_numpy(float)
        if np.ptp(v) == 0:
            raise CarotidkitError(f"{where}marker {m!r} is constant ({v[0]:g}); it cannot rank anyone")
    return d
