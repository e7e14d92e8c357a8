"""Read cohort tables (CSV, Parquet, Stata, SAS, Excel), map users' columns and units onto the
canonical schema (docs/DESIGN.md), and validate every value.

A column map (dict, or a YAML file) says ``your_column: canonical_column`` or
``your_column: {column: canonical_column, unit: "mg/dL"}``; units are converted to the canonical
ones (mmol/L for lipids, %, mmHg, umol/L, years).
"""

from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import CarotidkitError

# canonical column -> (kind, min, max, canonical unit)
CANONICAL: dict[str, tuple[str, float | None, float | None, str]] = {
    "subject_id": ("id", None, None, ""),
    "age_years": ("float", 18, 110, "years"),
    "sex": ("sex", None, None, ""),
    "smoking": ("binary", None, None, ""),
    "diabetes": ("binary", None, None, ""),
    "sbp_mmhg": ("float", 60, 260, "mmHg"),
    "dbp_mmhg": ("float", 30, 160, "mmHg"),
    "tc_mmol_l": ("float", 1.0, 20.0, "mmol/L"),
    "hdl_mmol_l": ("float", 0.2, 5.0, "mmol/L"),
    "ldl_mmol_l": ("float", 0.1, 15.0, "mmol/L"),
    "bmi_kg_m2": ("float", 10, 80, "kg/m2"),
    "antihypertensive": ("binary", None, None, ""),
    "hypertension": ("binary", None, None, ""),
    "heart_rate_bpm": ("float", 20, 250, "bpm"),
    "hba1c_pct": ("float", 3.0, 20.0, "%"),
    "creatinine_umol_l": ("float", 10, 2000, "umol/L"),
    "egfr_ml_min": ("float", 1, 200, "mL/min/1.73m2"),
    "crp_mg_l": ("float", 0, 500, "mg/L"),
    "prior_mi": ("binary", None, None, ""),
    "prior_stroke": ("binary", None, None, ""),
    "atrial_fibrillation": ("binary", None, None, ""),
    "pad": ("binary", None, None, ""),
    "ckd": ("binary", None, None, ""),
}
for _ep in ("mi", "cardiac_death", "death"):
    CANONICAL[f"{_ep}_event"] = ("binary", None, None, "")
    CANONICAL[f"{_ep}_years"] = ("float", 0, 60, "years")
    CANONICAL[f"{_ep}_competing"] = ("binary", None, None, "")

# (canonical column, user unit) -> factor or function to canonical
_LIPID = 1 / 38.67
UNIT_CONVERSIONS = {
    **{(c, u): _LIPID for c in ("tc_mmol_l", "hdl_mmol_l", "ldl_mmol_l") for u in ("mg/dl", "mg/dL")},
    ("creatinine_umol_l", "mg/dl"): 88.42,
    ("hba1c_pct", "mmol/mol"): lambda x: x / 10.929 + 2.15,
    ("sbp_mmhg", "kpa"): 7.50062,
    ("dbp_mmhg", "kpa"): 7.50062,
    ("crp_mg_l", "mg/dl"): 10.0,
    **{(c, u): 1 / 365.25 for c in CANONICAL if c.endswith("_years") for u in ("days", "d")},
    **{(c, u): 1 / 12 for c in CANONICAL if c.endswith("_years") for u in ("months",)},
}
_SEX = {
    "female": "female",
    "f": "female",
    "w": "female",
    "woman": "female",
    "weiblich": "female",
    "male": "male",
    "m": "male",
    "man": "male",
    "männlich": "male",
}
_BINARY = {"1": 1, "0": 0, "yes": 1, "no": 0, "true": 1, "false": 0, "y": 1, "n": 0, "ja": 1, "nein": 0}

READERS = {
    ".csv": pd.read_csv,
    ".txt": pd.read_csv,
    ".tsv": lambda p: pd.read_csv(p, sep="\t"),
    ".parquet": pd.read_parquet,
    ".pq": pd.read_parquet,
    ".dta": pd.read_stata,
    ".sas7bdat": pd.read_sas,
    ".xpt": pd.read_sas,
    ".xlsx": pd.read_excel,
    ".xls": pd.read_excel,
}


def _suggest(name: str, options) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def read_column_map(column_map) -> dict[str, dict]:
    """Normalise a column map (dict or YAML path) to ``{source: {"column": ..., "unit": ...}}``."""
    if column_map is None:
        return {}
    if isinstance(column_map, (str, Path)):
        import yaml

        p = Path(column_map)
        if not p.exists():
            raise CarotidkitError(f"{p}: column map not found")
        try:
            column_map = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise CarotidkitError(f"{p}: not valid YAML ({str(exc).splitlines()[0]})") from None
        where = str(p)
    else:
        where = "column map"
    out = {}
    for src, spec in column_map.items():
        spec = {"column": spec} if isinstance(spec, str) else dict(spec or {})
        if spec.get("column") not in CANONICAL:
            raise CarotidkitError(
                f"{where}: {src!r} maps to unknown column {spec.get('column')!r}"
                f"{_suggest(str(spec.get('column')), CANONICAL)}; see carotidkit.data.CANONICAL"
            )
        out[str(src)] = spec
    return out


def load_cohort(path, column_map=None, extra: str = "keep") -> pd.DataFrame:
    """Read a cohort table, rename/convert with ``column_map``, validate; return canonical columns.

    ``extra="keep"`` keeps unmapped, non-canonical columns (your own covariates) after the
    canonical ones; ``extra="error"`` rejects them.

    Example:
        df = load_cohort("cohort.csv", {"SYS": "sbp_mmhg", "CHOL": {"column": "tc_mmol_l", "unit": "mg/dL"}})
    """
    path = Path(path)
    if not path.exists():
        raise CarotidkitError(f"{path}: cohort table not found")
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise CarotidkitError(f"{path}: unsupported table format {path.suffix!r}; use {', '.join(sorted(READERS))}")
    try:
        raw = reader(path)
    except Exception as exc:
        raise CarotidkitError(
            f"{path}: could not be read as {path.suffix} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None
    return map_columns(raw, column_map, source=str(path), extra=extra)


def map_columns(raw: pd.DataFrame, column_map=None, source: str = "table", extra: str = "keep") -> pd.DataFrame:
    """Rename and unit-convert ``raw`` per ``column_map``, then :func:`validate_cohort` it."""
    cmap = read_column_map(column_map)
    df = raw.copy()
    for src, spec in cmap.items():
        if src not in df.columns:
            raise CarotidkitError(
                f"{source}: column {src!r} named in the column map is not in the table{_suggest(src, df.columns)}"
            )
        unit = spec.get("unit")
        target = spec["column"]
        values = df[src]
        canon_unit = CANONICAL[target][3]
        if unit and unit.lower().replace(" ", "") not in ("", canon_unit.lower().replace(" ", "")):
            conv = UNIT_CONVERSIONS.get((target, unit)) or UNIT_CONVERSIONS.get((target, unit.lower()))
            if conv is None:
                known = sorted({u for (c, u) in UNIT_CONVERSIONS if c == target})
                raise CarotidkitError(
                    f"{source}: unknown unit {unit!r} for {src!r} -> {target}; "
                    f"use {canon_unit!r}{' or ' + ', '.join(known) if known else ''}"
                )
            values = pd.to_numeric(values, errors="coerce")
            values = conv(values) if callable(conv) else values * conv
        df = df.drop(columns=[src])
        df[target] = values
    unknown = [c for c in df.columns if c not in CANONICAL]
    if unknown and extra == "error":
        raise CarotidkitError(
            f"{source}: unknown column(s) {', '.join(map(repr, unknown))}"
            f"{_suggest(unknown[0], CANONICAL)}; map them in the column map or drop them"
        )
    return validate_cohort(df, source=source)


def _show(v) -> str:
    """A cell value as users typed it (numpy scalars unwrapped)."""
    return repr(v.item() if hasattr(v, "item") else v)


def _row_label(df, i, source):
    sid = df["subject_id"].iloc[i] if "subject_id" in df.columns else None
    return f"{source} row {i + 2}" + (f" (subject_id {sid})" if sid is not None else "")


def validate_cohort(df: pd.DataFrame, source: str = "table") -> pd.DataFrame:
    """Check every canonical column's type and plausible range; coerce binaries and sex.

    Raises :class:`CarotidkitError` naming the first offending row (as the spreadsheet row,
    header = row 1) and subject.
    """
    if "subject_id" not in df.columns:
        raise CarotidkitError(f"{source}: no subject_id column; map your id column to subject_id")
    df = df.copy()
    df["subject_id"] = df["subject_id"].astype(str).str.strip()
    dup = df["subject_id"].duplicated(keep=False)
    if dup.any():
        rows = np.where(dup)[0][:2]
        raise CarotidkitError(
            f"{source}: duplicate subject_id {df.subject_id.iloc[rows[0]]!r} in rows "
            f"{rows[0] + 2} and {rows[1] + 2}; one row per subject"
        )
    for col in df.columns:
        if col not in CANONICAL or col == "subject_id":
            continue
        kind, lo, hi, unit = CANONICAL[col]
        s = df[col]
        if kind == "sex":
            mapped = s.astype(str).str.strip().str.lower().map(_SEX)
            bad = mapped.isna() & s.notna()
            if bad.any():
                i = int(np.argmax(bad.values))
                raise CarotidkitError(
                    f"{_row_label(df, i, source)}: sex {_show(s.iloc[i])} not understood; use female/male (or f/m)"
                )
            df[col] = mapped
        elif kind == "binary":
            mapped = s.map(lambda v: v if pd.isna(v) else _BINARY.get(str(v).strip().lower().removesuffix(".0")))
            bad = mapped.isna() & s.notna()
            if bad.any():
                i = int(np.argmax(bad.values))
                raise CarotidkitError(f"{_row_label(df, i, source)}: {col} = {_show(s.iloc[i])} is not 0/1 (yes/no)")
            df[col] = mapped.astype("Int64")
        else:
            num = pd.to_numeric(s, errors="coerce")
            bad = num.isna() & s.notna()
            if bad.any():
                i = int(np.argmax(bad.values))
                raise CarotidkitError(f"{_row_label(df, i, source)}: {col} = {_show(s.iloc[i])} is not a number")
            out = (num < lo) | (num > hi)
            if out.any():
                i = int(np.argmax(out.values))
                hint = " (negative follow-up time)" if col.endswith("_years") and num.iloc[i] < 0 else ""
                raise CarotidkitError(
                    f"{_row_label(df, i, source)}: {col} = {num.iloc[i]:g} is outside "
                    f"{lo:g}-{hi:g} {unit}{hint}; check the value or its unit"
                )
            df[col] = num.astype(float)
    for ep in ("mi", "cardiac_death", "death"):
        if f"{ep}_event" in df.columns and f"{ep}_years" not in df.columns:
            raise CarotidkitError(f"{source}: {ep}_event without {ep}_years; every endpoint needs its time")
    canon = [c for c in CANONICAL if c in df.columns]
    return df[canon + [c for c in df.columns if c not in CANONICAL]]
