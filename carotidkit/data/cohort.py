"""Read cohort tables (CSV, Parquet, Stata, SAS, Excel), map users' columns and units onto the
canonical schema (docs/DESIGN.md), and validate every value.

A column map (dict, or a YAML file) says ``your_column: canonical_column`` or
``your_column: {column: canonical_column, unit: "mg/dL"}``; units are converted to the canonical
ones (mmol/L for lipids, %, mmHg, umol/L, years).
"""

from __future__ import annotations

import difflib
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..io import CarotidkitError, read_parquet

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
    ".tsv": lambda p, **kw: pd.read_csv(p, sep="\t", **kw),
    ".parquet": read_parquet,
    ".pq": read_parquet,
    ".dta": pd.read_stata,
    ".sas7bdat": pd.read_sas,
    ".xpt": pd.read_sas,
    ".xlsx": pd.read_excel,
    ".xls": pd.read_excel,
}
_TEXT = {".csv", ".txt", ".tsv"}
_EXCEL = {".xlsx", ".xls"}

#: Column-name pieces that mark directly identifying data (names, birth dates, contact details,
#: record numbers). Such columns are dropped on load unless the column map keeps them.
IDENTIFYING_WORDS = (
    "name",
    "firstname",
    "lastname",
    "surname",
    "forename",
    "vorname",
    "nachname",
    "initials",
    "birth",
    "birthdate",
    "dob",
    "geburt",
    "gebdat",
    "geburtsdatum",
    "address",
    "street",
    "zip",
    "zipcode",
    "postcode",
    "postal",
    "phone",
    "telephone",
    "tel",
    "mobile",
    "email",
    "mail",
    "ssn",
    "mrn",
    "nhs",
    "passport",
    "insurance",
)


def _suggest(name: str, options) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def looks_identifying(name: str, values: pd.Series | None = None) -> bool:
    """True for columns named like personal identifiers (``PatientName``, ``DOB``, ``e_mail``)
    or holding calendar dates (any unmapped date may be a birth date)."""
    words = re.sub(r"([a-z])([A-Z])", r"\1_\2", str(name)).lower()
    tokens = [t for t in re.split(r"[^a-z0-9]+", words) if t]
    joined = "".join(tokens)
    if any(t in IDENTIFYING_WORDS for t in tokens) or any(
        w in joined for w in ("firstname", "lastname", "surname", "birth", "geburt", "email", "address", "phone")
    ):
        return True
    if values is None:
        return False
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    if values.dtype == object:
        sample = values.dropna().astype(str).head(50)
        if len(sample) and sample.str.match(r"^\d{1,4}[-./]\d{1,2}[-./]\d{1,4}").mean() > 0.8:
            return True
    return False


def read_column_map(column_map) -> dict[str, dict]:
    """Normalise a column map (dict or YAML path) to ``{source: {"column": ..., "unit": ...}}``.

    An entry is ``source: canonical``, ``source: {column: canonical, unit: "mg/dL"}``, or
    ``source: keep`` (keep an extra column under its own name, also one that looks identifying).
    """
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
    if not isinstance(column_map, dict):
        raise CarotidkitError(
            f"{where}: is a {type(column_map).__name__}, expected a mapping 'your_column: canonical_column' per line"
        )
    out, target_of = {}, {}
    for src, spec in column_map.items():
        if spec == "keep" or (isinstance(spec, dict) and spec.get("keep") is True and spec.get("column") is None):
            out[str(src)] = {"column": None, "keep": True}
            continue
        if isinstance(spec, str):
            spec = {"column": spec}
        elif spec is None or not isinstance(spec, dict):
            raise CarotidkitError(
                f"{where}: entry {src!r} is {spec!r}; use a column name, {{column: name, unit: 'mg/dL'}} or keep"
            )
        else:
            spec = dict(spec)
        unknown_keys = sorted(set(spec) - {"column", "unit"})
        if unknown_keys:
            raise CarotidkitError(
                f"{where}: entry {src!r} has unknown key(s) {', '.join(unknown_keys)}; use column/unit"
            )
        if spec.get("column") not in CANONICAL:
            raise CarotidkitError(
                f"{where}: {src!r} maps to unknown column {spec.get('column')!r}"
                f"{_suggest(str(spec.get('column')), CANONICAL)}; see carotidkit.data.CANONICAL"
            )
        if "unit" in spec and spec["unit"] is not None and not isinstance(spec["unit"], str):
            raise CarotidkitError(f"{where}: unit of {src!r} is {spec['unit']!r}; write it as text, e.g. 'mg/dL'")
        if spec["column"] in target_of:
            raise CarotidkitError(
                f"{where}: {target_of[spec['column']]!r} and {src!r} both map to {spec['column']}; keep one"
            )
        target_of[spec["column"]] = src
        out[str(src)] = spec
    return out


def _read(path: Path, id_columns: list[str], sheet, decimal: str, encoding=None, sep=None) -> pd.DataFrame:
    suffix = path.suffix.lower()
    reader = READERS[suffix]
    kw: dict = {}
    if suffix in _TEXT:
        kw = {"dtype": {c: str for c in id_columns}, "decimal": decimal}
        if encoding:
            kw["encoding"] = encoding
        if sep:
            kw["sep"] = sep
    elif suffix in _EXCEL:
        sheets = pd.ExcelFile(path).sheet_names
        if sheet is None and len(sheets) > 1:
            raise CarotidkitError(
                f"{path}: workbook has {len(sheets)} sheets ({', '.join(map(repr, sheets[:5]))}); "
                "pass sheet= to say which holds the cohort"
            )
        if sheet is not None and sheet not in sheets and not (isinstance(sheet, int) and 0 <= sheet < len(sheets)):
            raise CarotidkitError(f"{path}: no sheet {sheet!r}; have {', '.join(map(repr, sheets))}")
        kw = {"dtype": {c: str for c in id_columns}, "sheet_name": 0 if sheet is None else sheet}
    return reader(path, **kw)


def load_cohort(
    path,
    column_map=None,
    extra: str = "keep",
    sheet: str | int | None = None,
    decimal: str = ".",
    encoding: str | None = None,
    sep: str | None = None,
) -> pd.DataFrame:
    """Read a cohort table, rename/convert with ``column_map``, validate; return canonical columns.

    ``extra="keep"`` keeps unmapped, non-canonical columns (your own covariates) after the
    canonical ones, except columns that look identifying (names, birth dates, contact details,
    any calendar date): those are dropped unless the column map says ``COLUMN: keep``; the
    dropped names are in ``df.attrs["dropped_identifying"]``. ``extra="drop"`` keeps canonical
    columns only; ``extra="error"`` rejects unmapped ones. ``sheet`` picks an Excel sheet (a
    workbook with several sheets must name one); ``decimal=","`` reads decimal-comma CSVs;
    ``encoding`` and ``sep`` for text tables that are not UTF-8 or not comma-separated (the
    error says when a file looks like either). A table with a header but no rows is refused.

    Example:
        df = load_cohort("cohort.csv", {"SYS": "sbp_mmhg", "CHOL": {"column": "tc_mmol_l", "unit": "mg/dL"}})
    """
    path = Path(path)
    if not path.exists():
        raise CarotidkitError(f"{path}: cohort table not found")
    if path.suffix.lower() not in READERS:
        raise CarotidkitError(f"{path}: unsupported table format {path.suffix!r}; use {', '.join(sorted(READERS))}")
    cmap = read_column_map(column_map)
    id_columns = [src for src, spec in cmap.items() if spec.get("column") == "subject_id"] or ["subject_id"]
    try:
        raw = _read(path, id_columns, sheet, decimal, encoding, sep)
    except CarotidkitError:
        raise
    except UnicodeDecodeError as exc:
        raise CarotidkitError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#x} at position {exc.start}); "
            "save it as UTF-8, or it is probably Latin-1/Windows-1252: load_cohort(..., encoding='latin-1') "
            "(notebook 00: cohort_encoding=latin-1)"
        ) from None
    except Exception as exc:
        raise CarotidkitError(
            f"{path}: could not be read as {path.suffix} ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None
    if raw.empty:
        raise CarotidkitError(f"{path}: the table has a header ({len(raw.columns)} columns) but no rows")
    if path.suffix.lower() in _TEXT and sep is None and len(raw.columns) == 1:
        head = str(raw.columns[0])
        for cand, name in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
            if cand in head:
                raise CarotidkitError(
                    f"{path}: read as one column {head[:60]!r}: the separator looks like a {name}; "
                    f"load_cohort(..., sep={cand!r}) (notebook 00: cohort_sep={cand})"
                )
    return map_columns(raw, cmap, source=str(path), extra=extra)


def _not_numbers(original: pd.Series, numeric: pd.Series, col: str, df, source: str) -> None:
    bad = numeric.isna() & original.notna() & (original.astype(str).str.strip() != "")
    if bad.any():
        i = int(np.argmax(bad.values))
        v = original.iloc[i]
        hint = ""
        if isinstance(v, str) and re.fullmatch(r"\s*-?\d+,\d+\s*", v):
            hint = " (decimal comma? pass decimal=',' to load_cohort)"
        raise CarotidkitError(f"{_row_label(df, i, source)}: {col} = {_show(v)} is not a number{hint}")


def map_columns(raw: pd.DataFrame, column_map=None, source: str = "table", extra: str = "keep") -> pd.DataFrame:
    """Rename and unit-convert ``raw`` per ``column_map``, then :func:`validate_cohort` it."""
    if extra not in ("keep", "drop", "error"):
        raise CarotidkitError(f"extra={extra!r}: use 'keep', 'drop' or 'error'")
    cmap = read_column_map(column_map)
    df = raw.copy()
    df.columns = [str(c) for c in df.columns]
    kept = set()
    for src, spec in cmap.items():
        if src not in df.columns:
            raise CarotidkitError(
                f"{source}: column {src!r} named in the column map is not in the table{_suggest(src, df.columns)}"
            )
        if spec.get("keep"):
            kept.add(src)
            continue
        unit = spec.get("unit")
        target = spec["column"]
        if target in df.columns and target != src and target not in cmap:
            raise CarotidkitError(
                f"{source}: {src!r} maps to {target}, but the table already has a column {target!r}; "
                "map or drop one of them"
            )
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
            numeric = pd.to_numeric(values, errors="coerce")
            _not_numbers(values, numeric, f"{src} ({unit})", df, source)
            values = conv(numeric) if callable(conv) else numeric * conv
        df = df.drop(columns=[src])
        df[target] = values
    unknown = [c for c in df.columns if c not in CANONICAL and c not in kept]
    if unknown and extra == "error":
        raise CarotidkitError(
            f"{source}: unknown column(s) {', '.join(map(repr, unknown))}"
            f"{_suggest(unknown[0], CANONICAL)}; map them in the column map or drop them"
        )
    drop = unknown if extra == "drop" else [c for c in unknown if looks_identifying(c, df[c])]
    out = validate_cohort(df.drop(columns=drop), source=source)
    out.attrs["dropped_identifying"] = [c for c in drop if looks_identifying(c, df[c])]
    if out.attrs["dropped_identifying"]:
        import warnings

        warnings.warn(
            f"{source}: dropped column(s) that look identifying: {', '.join(out.attrs['dropped_identifying'])} "
            "(keep one with 'COLUMN: keep' in the column map)",
            stacklevel=2,
        )
    return out


def _show(v) -> str:
    """A cell value as users typed it (numpy scalars unwrapped)."""
    return repr(v.item() if hasattr(v, "item") else v)


def _row_label(df, i, source):
    sid = df["subject_id"].iloc[i] if "subject_id" in df.columns else None
    return f"{source} row {i + 2}" + (f" (subject_id {sid})" if sid is not None else "")


def _ids_as_text(ids: pd.Series, source: str) -> pd.Series:
    """Subject ids as text exactly as typed: integers stay ``"1"`` (not ``"1.0"``), blanks are refused."""
    blank = ids.isna() | (ids.astype(str).str.strip() == "")
    if blank.any():
        i = int(np.argmax(blank.to_numpy()))
        raise CarotidkitError(f"{source} row {i + 2}: subject_id is blank; every row needs an id")
    if pd.api.types.is_float_dtype(ids):
        whole = np.isclose(ids, np.round(ids))
        if whole.all():
            return ids.round().astype("int64").astype(str)
    return ids.astype(str).str.strip()


def validate_cohort(df: pd.DataFrame, source: str = "table") -> pd.DataFrame:
    """Check every canonical column's type and plausible range; coerce binaries and sex.

    Raises :class:`CarotidkitError` naming the first offending row (as the spreadsheet row,
    header = row 1) and subject.
    """
    if "subject_id" not in df.columns:
        raise CarotidkitError(f"{source}: no subject_id column; map your id column to subject_id")
    df = df.copy()
    df["subject_id"] = _ids_as_text(df["subject_id"], source)
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
            _not_numbers(s, num, col, df, source)
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
        ev, yrs = f"{ep}_event", f"{ep}_years"
        if ev in df.columns and yrs not in df.columns:
            raise CarotidkitError(f"{source}: {ep}_event without {ep}_years; every endpoint needs its time")
        if yrs in df.columns and ev not in df.columns:
            raise CarotidkitError(
                f"{source}: {yrs} without {ep}_event; map the column that says whether the event happened "
                "(a time alone is half an endpoint)"
            )
        if ev in df.columns:
            gap = df[ev].notna().to_numpy() & df[yrs].isna().to_numpy()
            if gap.any():
                i = int(np.argmax(gap))
                raise CarotidkitError(
                    f"{_row_label(df, i, source)}: {ev} = {df[ev].iloc[i]} but {yrs} is missing; "
                    "every recorded outcome needs its follow-up time"
                )
    # an event at time 0 has nobody at risk before it: counted and reported, survival functions refuse it
    zero = {}
    for ep in ("mi", "cardiac_death", "death"):
        ev, yrs = f"{ep}_event", f"{ep}_years"
        if ev in df.columns:
            n0 = int(((df[ev] == 1) & (df[yrs] == 0)).sum())
            if n0:
                zero[ep] = n0
    if zero:
        warnings.warn(
            f"{source}: events at follow-up time 0 ({', '.join(f'{k}: {v}' for k, v in zero.items())}); "
            "05 refuses them: give the time of the event after baseline or drop those rows",
            stacklevel=2,
        )
    canon = [c for c in CANONICAL if c in df.columns]
    out = df[canon + [c for c in df.columns if c not in CANONICAL]]
    out.attrs.update(df.attrs)
    out.attrs["events_at_time_zero"] = zero
    return out
