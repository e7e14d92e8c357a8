"""Where a report run's time went: ``python -m carotidkit timings [--profile workshop]``.

Read from what a run already records, nothing re-timed: papermill's per-cell start and end times
in the executed notebooks (``runs/<profile>/_report/*.ipynb``), each stage's ``timings_s`` in
its ``summary.json`` (the phases a stage times with ``progress.phase``) and the report's
``state.json`` (execution and page-writing seconds per notebook). One tidy row per notebook and
part:

* ``kernel start``: papermill's start to the first cell (kernel process, connection);
* ``imports and settings``: the cell that imports carotidkit and resolves the settings;
* ``stage: <phase>``: the cell calling ``<stage>.run`` split into the stage's own phases
  (``stage: other`` is the rest of that call);
* ``figures``: cells drawing with ``carotidkit.plots``; ``tables and text``: the other cells;
* ``kernel stop and saving``: the notebook's execution time not spent in cells;
* ``page writing``: rendering the executed notebook to its HTML page.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pandas as pd

from . import io, profiles
from .layout import RunLayout


def _t(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def _kind(src: str) -> str:
    if ".run(" in src:
        return "stage"
    if "import " in src:
        return "imports and settings"
    if "plots." in src:
        return "figures"
    return "tables and text"


def notebook_parts(executed: Path, stage_timings: dict | None) -> list[dict]:
    """Seconds per part of one executed notebook (see the module docstring)."""
    nb = json.loads(Path(executed).read_text())
    pm = nb["metadata"].get("papermill", {})
    cells = [c for c in nb["cells"] if c.get("metadata", {}).get("papermill", {}).get("start_time")]
    parts: dict[str, float] = {}
    if pm.get("start_time") and cells:
        first = cells[0]["metadata"]["papermill"]["start_time"]
        parts["kernel start"] = (_t(first) - _t(pm["start_time"])).total_seconds()
    for c in cells:
        if c["cell_type"] != "code":
            continue
        kind = _kind("".join(c["source"]))
        sec = float(c["metadata"]["papermill"].get("duration") or 0.0)
        if kind == "stage" and stage_timings:
            phases = {k: v for k, v in stage_timings.items() if k != "total"}
            for k, v in phases.items():
                parts[f"stage: {k}"] = parts.get(f"stage: {k}", 0.0) + float(v)
            sec -= float(stage_timings.get("total", 0.0))  # the cell's own remainder
            kind = "stage: other"
        parts[kind] = parts.get(kind, 0.0) + max(sec, 0.0)
    return [{"part": k, "seconds": round(v, 1)} for k, v in parts.items()]


def run_times(run_dir) -> pd.DataFrame:
    """Tidy ``notebook, part, seconds`` for every notebook the run executed (see the module
    docstring); each notebook's parts sum to its execution plus page-writing time."""
    from .report import STATE_NAME

    lay = RunLayout(run_dir)
    state_path = lay.run_dir / STATE_NAME
    if not state_path.exists():
        raise io.CarotidkitError(f"{state_path}: missing; run `make report` first")
    state = io.read_json(state_path)
    rows = []
    for name in sorted(state):
        st, executed = state[name], lay.executed_notebook(name)
        if st.get("status") != "ok" or not executed.exists():
            continue
        summary = lay.stage_summary(name) if name in profiles.STAGES else None
        timings = io.read_json(summary).get("timings_s") if summary and summary.exists() else None
        parts = notebook_parts(executed, timings)
        in_cells = sum(p["seconds"] for p in parts)
        if st.get("duration_s") is not None:
            parts.append({"part": "kernel stop and saving", "seconds": round(max(0.0, st["duration_s"] - in_cells), 1)})
        if st.get("render_s") is not None:
            parts.append({"part": "page writing", "seconds": float(st["render_s"])})
        rows += [{"notebook": name, **p} for p in parts]
    return pd.DataFrame(rows, columns=["notebook", "part", "seconds"])


def markdown(times: pd.DataFrame) -> str:
    """The table for ``docs/`` (one row per notebook and part, each notebook's total, the sum)."""
    lines = ["| notebook | part | seconds | share of the run |", "|---|---|---:|---:|"]
    total = float(times.seconds.sum()) or 1.0
    for nb, g in times.groupby("notebook", sort=True):
        for r in g.sort_values("seconds", ascending=False).itertuples():
            lines.append(f"| {nb} | {r.part} | {r.seconds:.1f} | {100 * r.seconds / total:.1f} % |")
        lines.append(
            f"| **{nb}** | **total** | **{g.seconds.sum():.1f}** | **{100 * g.seconds.sum() / total:.1f} %** |"
        )
    lines.append(f"| **all** | | **{total:.1f}** | 100 % |")
    return "\n".join(lines)


def by_part(times: pd.DataFrame) -> pd.DataFrame:
    """Seconds per kind of work over the whole run (kernel starts, imports, stage phases, ...)."""
    kind = times.part.where(~times.part.str.startswith("stage"), "stage work")
    return times.assign(kind=kind).groupby("kind").seconds.sum().sort_values(ascending=False).to_frame()


def tables(run_dir) -> str:
    """What ``python -m carotidkit timings`` prints: :func:`markdown`, then :func:`by_part`."""
    times = run_times(run_dir)
    kinds = "\n".join(f"| {k} | {v:.1f} |" for k, v in by_part(times).seconds.items())
    return f"{markdown(times)}\n\n| kind of work | seconds |\n|---|---:|\n{kinds}"
