"""The paper bundle of a run: everything on the report pages, in forms a paper can take.

``reports/<profile>/bundle/`` (and ``bundle.zip`` beside it) holds

- ``tables/<NN_notebook>/<table>.csv``: every table a stage returned (its result's DataFrames, the
  journal tables, the findings' claims), plus ``tables.xlsx``: one workbook, a sheet per table;
- ``figures/<NN_notebook>/NN_<plot>.svg|pdf|png`` (300 dpi) and ``.webp`` animations, as drawn;
- ``notebooks/``: the executed notebooks;
- ``tripod_ai.csv``/``.html``: the TRIPOD+AI checklist filled from the run
  (:mod:`carotidkit.tripod`);
- ``provenance.json``: commit, package versions, each notebook's parameters, status, timing and
  fingerprint, the data hashes and whether the data are synthetic;
- ``index.html``: a page listing all of it.

Tables reach the run folder when each stage finishes (:func:`export_tables`, called by the stage
decorator); figures as each notebook draws them (:func:`carotidkit.plots.export_to`);
:func:`build` collects them after the report run.
"""

from __future__ import annotations

import dataclasses
import html
import json
import shutil
import zipfile
from pathlib import Path

import pandas as pd

from . import io

SHEET_CHARS = 31  # Excel's limit on a sheet name


INDIVIDUAL_COLUMNS = {"subject_id", "clip_id", "clip", "still_id"}
INDIVIDUAL_TABLES = {"cohort", "analysis", "shap_values", "shap_data", "clips", "plaque_db"}


def individual_level(name: str, df: pd.DataFrame) -> bool:
    """Whether a table has a row per person, clip or still: those stay in the run folder (the
    bundle is meant to be shared, and a real cohort's rows must not travel with it)."""
    cols = set(map(str, df.columns)) | {str(n) for n in df.index.names if n}
    return name in INDIVIDUAL_TABLES or bool(cols & INDIVIDUAL_COLUMNS)


def result_tables(res) -> dict[str, pd.DataFrame]:
    """Every table of a stage result: its DataFrame fields (non-empty) and what its
    ``journal_tables()`` returns, by name (individual-level ones included)."""
    out = {}
    if dataclasses.is_dataclass(res):
        for f in dataclasses.fields(res):
            v = getattr(res, f.name, None)
            if isinstance(v, pd.DataFrame) and len(v.columns):
                out[f.name] = v
    extra = getattr(res, "journal_tables", None)
    if callable(extra):
        out.update({k: v for k, v in extra().items() if isinstance(v, pd.DataFrame) and len(v.columns)})
    return out


def _flat(df: pd.DataFrame) -> pd.DataFrame:
    """A table as plain columns for CSV/Excel (named index kept as columns; lists as text)."""
    df = df.copy()
    if isinstance(df.columns, pd.MultiIndex):
        df.columns = [" · ".join(str(c) for c in col if str(c)) for col in df.columns]
    named = [n for n in df.index.names if n is not None]
    df = df.reset_index() if named else df.reset_index(drop=True)
    for c in df.columns:
        if df[c].dtype == object:
            df[c] = df[c].map(lambda v: json.dumps(v, default=str) if isinstance(v, (list, dict, tuple)) else v)
        elif isinstance(df[c].dtype, pd.CategoricalDtype):
            df[c] = df[c].astype(str)
    df.columns = [str(c) for c in df.columns]
    return df


def export_tables(res, folder: Path) -> list[Path]:
    """Write every aggregate table of ``res`` as ``<folder>/<name>.csv`` (the folder is replaced),
    and its findings: ``findings.md`` and the claims behind each number, ``findings_claims.csv``."""
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    tables = {k: v for k, v in res.tables().items() if not individual_level(k, v)}
    found = res.findings() if callable(getattr(res, "findings", None)) else None
    if found is not None:
        tables["findings_claims"] = found.claims_table()
        io.write_text(folder / "findings.md", found.markdown() + "\n")
    written = []
    for name, df in tables.items():
        path = folder / f"{name}.csv"
        with io.atomic_path(path) as tmp:
            _flat(df).to_csv(tmp, index=False)
        written.append(path)
    return written


def write_workbook(tables_root: Path, path: Path) -> int:
    """One XLSX workbook with a sheet per CSV under ``tables_root`` (``NN_table``); returns the
    number of sheets. Sheet names are unique and within Excel's 31 characters."""
    csvs = sorted(Path(tables_root).glob("*/*.csv"))
    used: set[str] = set()
    with io.atomic_path(path) as tmp:
        with pd.ExcelWriter(tmp, engine="openpyxl") as xw:
            contents = []
            for csv in csvs:
                nb = csv.parent.name[:2]
                base = f"{nb}_{csv.stem}"[:SHEET_CHARS]
                name, k = base, 1
                while name.lower() in used:
                    k += 1
                    name = f"{base[: SHEET_CHARS - 3]}~{k}"
                used.add(name.lower())
                contents.append({"sheet": name, "notebook": csv.parent.name, "table": csv.stem})
                pd.read_csv(csv).to_excel(xw, sheet_name=name, index=False)
            pd.DataFrame(contents).to_excel(xw, sheet_name="contents", index=False)
    return len(csvs)


def _copy_tree(src: Path, dst: Path) -> int:
    if not src.exists():
        return 0
    shutil.copytree(src, dst, dirs_exist_ok=True)
    return sum(1 for p in dst.rglob("*") if p.is_file())


def build(run_dir: Path, out: Path, profile: str, provenance: dict) -> Path:
    """(Re)build the bundle of ``run_dir`` into ``out`` and ``out.zip``; returns ``out``.

    Built beside its final place and swapped in, so a reader never sees half a bundle.
    """
    from . import tripod
    from .layout import RunLayout

    lay = RunLayout(run_dir)
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    n_tables = _copy_tree(lay.run_dir / "_report" / "tables", tmp / "tables")
    n_figs = _copy_tree(lay.run_dir / "_report" / "figures", tmp / "figures")
    (tmp / "notebooks").mkdir()
    for nb in sorted((lay.run_dir / "_report").glob("[0-9][0-9]_*.ipynb")):
        shutil.copy2(nb, tmp / "notebooks" / nb.name)
    n_sheets = write_workbook(tmp / "tables", tmp / "tables.xlsx") if n_tables else 0
    checklist = tripod.checklist(run_dir, profile)
    checklist.to_csv(tmp / "tripod_ai.csv", index=False)
    (tmp / "tripod_ai.html").write_text(tripod.to_html(checklist, provenance.get("banner")), encoding="utf-8")
    provenance = {**provenance, "tables": n_tables, "sheets": n_sheets, "figure_files": n_figs}
    (tmp / "provenance.json").write_text(json.dumps(provenance, indent=2, default=str) + "\n", encoding="utf-8")
    (tmp / "index.html").write_text(_index_page(tmp, profile, provenance.get("banner")), encoding="utf-8")
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    _zip(out, out.with_suffix(".zip"))
    return out


def _zip(folder: Path, path: Path) -> None:
    with io.atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for p in sorted(folder.rglob("*")):
                if p.is_file():
                    z.write(p, Path(folder.name) / p.relative_to(folder))


def _index_page(folder: Path, profile: str, banner: str | None) -> str:
    groups: dict[str, list[Path]] = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != "index.html":
            rel = p.relative_to(folder)
            groups.setdefault(str(rel.parent) if rel.parent != Path(".") else "bundle", []).append(rel)
    sections = []
    for g, files in groups.items():
        items = "".join(
            f'<li><a href="{html.escape(str(f))}">{html.escape(f.name)}</a> '
            f"<small>({(folder / f).stat().st_size / 1024:.0f} KB)</small></li>"
            for f in files
        )
        sections.append(f"<h2>{html.escape(g)}</h2><ul>{items}</ul>")
    top = f'<div class="ck-banner" role="alert">{html.escape(banner)}</div>' if banner else ""
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>carotidkit paper bundle ({html.escape(profile)})</title>
<style>body{{font:15px/1.5 system-ui,sans-serif;margin:0;color:#222}} main{{padding:8px 24px 40px}}
.ck-banner{{position:sticky;top:0;background:#b3261e;color:#fff;font-weight:600;padding:8px 16px;text-align:center}}
</style></head><body>{top}<main><p><a href="../../index.html">&larr; Report index</a></p>
<h1>Paper bundle: profile <code>{html.escape(profile)}</code></h1>
<p>Every table as CSV (and all of them in <a href="tables.xlsx">tables.xlsx</a>, a sheet each), every
figure as SVG, PDF and 300-dpi PNG, the executed notebooks, the TRIPOD+AI checklist
(<a href="tripod_ai.html">tripod_ai.html</a>) and the provenance of the run. The whole folder is also
<a href="../bundle.zip">bundle.zip</a>.</p>
{"".join(sections)}</main></body></html>
"""


__all__ = ["build", "export_tables", "result_tables", "write_workbook"]
