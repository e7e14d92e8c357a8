"""The TRIPOD+AI checklist (Collins et al., BMJ 2024;385:e078378), filled from a run.

Each of the 27 items (with their sub-items) gets where this run reports it (notebook and section,
or a bundle file), what the run found for it where a number answers it, and who must still act:
``run`` (reported on the pages as they are), ``run + author`` (the numbers are there, the words
are the author's) or ``author`` (nothing a pipeline can know: setting, dates, ethics, funding).
The item wording here is a short paraphrase; cite the statement itself in a paper.
"""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from . import io

# (item, section, topic, paraphrase, who, where)
ITEMS = [
    (
        "1",
        "Title",
        "Title",
        "development/evaluation of a prediction model, population, outcome, approach",
        "author",
        "",
    ),
    ("2", "Abstract", "Abstract", "structured summary (TRIPOD+AI for Abstracts)", "author", "index: headline results"),
    ("3a", "Introduction", "Background", "healthcare context and rationale, existing models", "author", ""),
    ("3b", "Introduction", "Background", "target population and intended use in the care pathway", "author", ""),
    ("3c", "Introduction", "Background", "known health inequalities between groups", "author", ""),
    (
        "4",
        "Introduction",
        "Objectives",
        "objectives: development, evaluation or both",
        "run + author",
        "05: introduction",
    ),
    (
        "5a",
        "Methods",
        "Data",
        "sources of data, representativeness",
        "run + author",
        "00: data sources; provenance.json",
    ),
    (
        "5b",
        "Methods",
        "Data",
        "dates of accrual and end of follow-up",
        "author",
        "05: follow-up table (durations only)",
    ),
    ("6a", "Methods", "Participants", "setting, number and location of centres", "author", ""),
    ("6b", "Methods", "Participants", "eligibility criteria", "run + author", "05: participant flow"),
    (
        "6c",
        "Methods",
        "Participants",
        "treatments received",
        "run + author",
        "00: Table 1 (antihypertensive treatment)",
    ),
    (
        "7",
        "Methods",
        "Data preparation",
        "pre-processing and quality checks",
        "run",
        "01: cleaning, QC flags, duplicates",
    ),
    ("8a", "Methods", "Outcome", "outcome definition and time horizon", "run + author", "05: endpoints, horizon"),
    ("8b", "Methods", "Outcome", "qualifications of outcome assessors, blinding", "author", ""),
    ("8c", "Methods", "Outcome", "outcome assessment consistency across groups", "author", ""),
    ("9a", "Methods", "Predictors", "choice of predictors", "run + author", "03: proxy label; 05: SCORE2 inputs"),
    ("9b", "Methods", "Predictors", "predictor definitions and measurement", "run", "02: plaque area, IMT; 03: VD"),
    ("9c", "Methods", "Predictors", "assessor qualifications, blinding", "author", "02: second reader agreement"),
    (
        "10",
        "Methods",
        "Sample size",
        "how the sample size was arrived at; events per variable",
        "run",
        "05: events per variable",
    ),
    ("11", "Methods", "Missing data", "how missing data were handled", "run", "05: missing data"),
    (
        "12a",
        "Methods",
        "Analysis",
        "how the data were used for development and evaluation",
        "run",
        "03: cross-fitting folds",
    ),
    ("12b", "Methods", "Analysis", "how predictors were handled (transformations)", "run", "05: VD per SD, log plaque"),
    (
        "12c",
        "Methods",
        "Analysis",
        "model type, building, hyperparameters, internal validation",
        "run",
        "02, 03: settings",
    ),
    ("12d", "Methods", "Analysis", "heterogeneity across clusters (centres, scanners)", "author", ""),
    ("12e", "Methods", "Analysis", "performance measures and their rationale", "run", "05: definitions table"),
    ("12f", "Methods", "Analysis", "model updating or recalibration", "run", "05: recalibrated SCORE2"),
    ("12g", "Methods", "Analysis", "for evaluation: how predictions were computed", "run", "05: SCORE2 formula, flags"),
    (
        "13",
        "Methods",
        "Class imbalance",
        "methods for class imbalance and recalibration",
        "run + author",
        "03: label balance",
    ),
    ("14", "Methods", "Fairness", "approaches to address model fairness", "run + author", "04: VD by sex and age"),
    (
        "15",
        "Methods",
        "Model output",
        "output of the model and risk groups",
        "run",
        "05: VD quartiles, SCORE2 categories",
    ),
    (
        "16",
        "Methods",
        "Training vs evaluation",
        "differences between development and evaluation data",
        "run",
        "03: folds",
    ),
    ("17", "Methods", "Ethics", "ethics committee approval and consent", "author", ""),
    ("18a", "Open science", "Funding", "sources of funding and role of funders", "author", ""),
    ("18b", "Open science", "Conflicts of interest", "declarations", "author", ""),
    ("18c", "Open science", "Protocol", "where the protocol can be accessed", "author", ""),
    ("18d", "Open science", "Registration", "registration of the study", "author", ""),
    ("18e", "Open science", "Data sharing", "availability of the data", "author", "bundle tables (aggregate)"),
    (
        "18f",
        "Open science",
        "Code sharing",
        "availability of the analysis code",
        "run",
        "provenance.json: commit, versions",
    ),
    ("19", "Open science", "Patient & public involvement", "involvement during the study", "author", ""),
    (
        "20a",
        "Results",
        "Participants",
        "flow of participants, number with and without the outcome",
        "run",
        "05: participant flow",
    ),
    ("20b", "Results", "Participants", "characteristics overall and by group", "run", "05: Table 1 by VD quartile"),
    ("20c", "Results", "Participants", "comparison of development and evaluation data", "run", "03: folds"),
    (
        "21",
        "Results",
        "Model development",
        "participants and events in each analysis",
        "run",
        "05: events per variable",
    ),
    (
        "22",
        "Results",
        "Model specification",
        "full model to allow predictions",
        "run",
        "05: Cox tables; 03 checkpoints",
    ),
    ("23a", "Results", "Performance", "performance with CIs, subgroups", "run", "05: discrimination, calibration"),
    ("23b", "Results", "Performance", "heterogeneity of performance across clusters", "author", ""),
    ("24", "Results", "Model updating", "results of updating", "run", "05: recalibrated SCORE2 + VD"),
    (
        "25",
        "Discussion",
        "Interpretation",
        "overall interpretation, fairness",
        "run + author",
        "every notebook: what we found",
    ),
    (
        "26",
        "Discussion",
        "Limitations",
        "limitations: sample, missing data, overfitting",
        "run + author",
        "05: what we found",
    ),
    (
        "27a",
        "Discussion",
        "Usability",
        "how poor-quality or unavailable input is handled",
        "run",
        "01: QC flags; 00: errors",
    ),
    ("27b", "Discussion", "Usability", "user interaction and expertise needed", "author", "README"),
    ("27c", "Discussion", "Usability", "future research", "author", ""),
]


def _read_csv(run_dir: Path, nb: str, table: str) -> pd.DataFrame | None:
    p = Path(run_dir) / "_report" / "tables" / nb / f"{table}.csv"
    return pd.read_csv(p) if p.exists() else None


def _evidence(run_dir: Path) -> dict[str, str]:
    """Numbers from the run that answer items directly (where the tables exist)."""
    ev: dict[str, str] = {}
    flow = _read_csv(run_dir, "05_survival", "flow")
    if flow is not None and len(flow):
        ev["20a"] = "; ".join(f"{s}: {n}" for s, n in zip(flow.step, flow.n))
        ev["6b"] = ev["20a"]
    epv = _read_csv(run_dir, "05_survival", "events_per_variable")
    if epv is not None and len(epv):
        ev["10"] = "; ".join(
            f"{e}: {int(k)} events, {int(v)} variables, EPV {r:.1f}"
            for e, k, v, r in zip(epv.endpoint, epv.events, epv.variables, epv.epv)
        )
        ev["21"] = ev["10"]
    miss = _read_csv(run_dir, "05_survival", "missing_data")
    if miss is not None and len(miss):
        ev["11"] = "; ".join(
            f"{v}: {int(n)} missing ({h})" for v, n, h in zip(miss.variable, miss.missing, miss.handling)
        )
    fu = _read_csv(run_dir, "05_survival", "follow_up")
    if fu is not None and len(fu):
        ev["5b"] = f"median follow-up {fu.median_follow_up_years.iloc[0]:.1f} years (reverse Kaplan–Meier)"
    man = Path(run_dir) / "data" / "manifest.json"
    if man.exists():
        m = io.read_json(man)
        ev["5a"] = "synthetic (carotidkit simulator)" if m.get("synthetic", True) else "real data: see provenance.json"
    return ev


def checklist(run_dir, profile: str) -> pd.DataFrame:
    """The checklist as a table: ``item, section, topic, asks, who, where, from_this_run``."""
    ev = _evidence(Path(run_dir))
    rows = [
        {"item": i, "section": s, "topic": t, "asks": a, "who": w, "where": where, "from_this_run": ev.get(i, "")}
        for i, s, t, a, w, where in ITEMS
    ]
    return pd.DataFrame(rows)


def to_html(table: pd.DataFrame, banner: str | None = None) -> str:
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>" for r in table.itertuples(index=False)
    )
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    top = f'<div class="ck-banner" role="alert" style="background:#b3261e;color:#fff;padding:8px;text-align:center">{html.escape(banner)}</div>'
    n_author = int((table.who == "author").sum())
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>TRIPOD+AI checklist</title>
<style>body{{font:14px/1.45 system-ui,sans-serif;margin:0}} main{{padding:8px 20px;overflow-x:auto}}
table{{border-collapse:collapse}} td,th{{border:1px solid #ddd;padding:3px 8px;vertical-align:top;text-align:left}}</style>
</head><body>{top if banner else ""}<main><p><a href="index.html">&larr; bundle</a></p>
<h1>TRIPOD+AI checklist, filled from this run</h1>
<p>Collins GS et al. TRIPOD+AI statement. BMJ 2024;385:e078378. "who": <b>run</b> = reported on the
pages; <b>run + author</b> = the numbers are there, the words are yours; <b>author</b> = {n_author}
items only you can write.</p>
<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></main></body></html>
"""


__all__ = ["ITEMS", "checklist", "to_html"]
