"""Assemble a run's data folder (``<run>/data``): simulate what is not given, read what is.

:func:`prepare_data` is what notebook 00 calls. It writes ``manifest.json`` last, naming each
source (synthetic or a real path), the files downstream notebooks read, counts and hashes.
Real raw files are read in place and never copied or modified; a real cohort is validated and
stored in canonical form as ``cohort.parquet``.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pandas as pd

from .. import io
from .cohort import load_cohort
from .plaque_db import load_plaque_db
from .video import FRAME_EXT, VIDEO_EXT


def read_video_manifest(path) -> pd.DataFrame:
    """A video manifest (CSV or Parquet): ``subject_id, path`` and optional ``side``/``clip_id``.

    Relative paths are taken relative to the manifest's folder; ids are read as text (``007``
    stays ``007``). Bad rows stop with one line naming the manifest row (spreadsheet numbering).
    """
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        m = io.read_parquet(path)
    else:
        m = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("subject_id", "path") if c not in m.columns]
    if missing:
        raise io.CarotidkitError(
            f"{path}: video manifest needs column(s) {', '.join(missing)} (have: {', '.join(map(str, m.columns))})"
        )
    m = m.astype({"subject_id": str, "path": str})
    rows = []
    for i, r in enumerate(m.itertuples(index=False)):
        line = i + 2  # header is row 1
        sid, p = str(r.subject_id).strip(), str(r.path).strip()
        if not sid or sid.lower() == "nan":
            raise io.CarotidkitError(f"{path}: row {line}: empty subject_id")
        if not p:
            raise io.CarotidkitError(f"{path}: row {line} (subject {sid}): empty path")
        full = Path(p) if Path(p).is_absolute() else (path.parent / p)
        side = str(getattr(r, "side", "") or "").strip()
        clip = str(getattr(r, "clip_id", "") or "").strip() or (f"{sid}_{side}" if side else Path(p).stem)
        rows.append({"subject_id": sid, "clip_id": clip, "side": side or None, "path": str(full)})
    out = pd.DataFrame(rows)
    dup = out.clip_id.duplicated(keep=False)
    if dup.any():
        raise io.CarotidkitError(
            f"{path}: clip id {out.clip_id[dup].iloc[0]!r} appears twice; add a side or clip_id column"
        )
    if out.empty:
        raise io.CarotidkitError(f"{path}: video manifest has no rows")
    return out


def index_videos(video_dir) -> pd.DataFrame:
    """One row per video under ``video_dir``; ``subject_id`` is the file stem before the first ``_``.

    ``video_dir`` may also be a manifest file (.csv/.parquet, see :func:`read_video_manifest`).
    """
    root = Path(video_dir)
    if root.is_file() and root.suffix.lower() in (".csv", ".parquet"):
        return read_video_manifest(root)
    if not root.is_dir():
        raise io.CarotidkitError(f"{root}: video folder not found")
    rows = []
    for p in sorted(root.rglob("*")):
        is_frames_dir = p.is_dir() and any(q.suffix.lower() in FRAME_EXT for q in p.iterdir())
        if is_frames_dir or (p.is_file() and p.suffix.lower() in VIDEO_EXT | {".dcm", ".npy", ".npz"}):
            stem = p.name if p.is_dir() else p.stem
            rows.append({"subject_id": stem.split("_")[0], "clip_id": stem, "path": str(p)})
    if not rows:
        raise io.CarotidkitError(f"{root}: no videos found (DICOM, AVI/MP4, NPY/NPZ or frame folders)")
    return pd.DataFrame(rows)


def prepare_data(cfg, progress=print) -> dict:
    """Build ``<run_dir>/data`` from the 00_data settings ``cfg``; return the manifest."""
    from ..layout import RunLayout
    from ..settings import DataSettings
    from ..synth.dataset import generate  # only when something is simulated: loaders stay simulator-free

    lay = RunLayout(cfg["run_dir"]).data
    out = lay.root
    real = {k: cfg.get(k) for k in ("plaque_db_dir", "cohort_path", "video_dir") if cfg.get(k)}
    manifest = (
        generate(
            out,
            seed=cfg["seed"],
            progress=progress,
            **{k: cfg[k] for k in DataSettings.SIMULATOR},
        )
        if len(real) < 3
        else {"parameters": {}, "counts": {}, "data_hashes": {}, "timings": {}, "paths": {}, "sources": {}}
    )
    manifest = dict(manifest)
    sources, paths, hashes = dict(manifest["sources"]), dict(manifest["paths"]), dict(manifest["data_hashes"])
    t0 = time.perf_counter()
    if "plaque_db_dir" in real:
        db = load_plaque_db(real["plaque_db_dir"], errors="flag")  # a bad file is listed, not fatal
        sources["plaque_db"], paths["plaque_db"] = (
            str(Path(real["plaque_db_dir"]).resolve()),
            str(Path(real["plaque_db_dir"]).resolve()),
        )
        hashes["plaque_db"] = io.tree_digest(real["plaque_db_dir"])
        manifest["counts"]["plaque_images"] = int(len(db))
        manifest["counts"]["plaque_images_with_errors"] = int(db.error.notna().sum())
    if "cohort_path" in real:
        cohort = load_cohort(
            real["cohort_path"], cfg.get("column_map"), encoding=cfg.get("cohort_encoding"), sep=cfg.get("cohort_sep")
        )
        io.write_parquet(out / "cohort_real.parquet", cohort)
        sources["cohort"], paths["cohort"] = str(Path(real["cohort_path"]).resolve()), "cohort_real.parquet"
        hashes["cohort"] = io.sha256_file(real["cohort_path"])[:16]
        manifest["counts"]["subjects"] = int(len(cohort))
    if "video_dir" in real:
        idx = index_videos(real["video_dir"])
        io.write_parquet(out / "video_index_real.parquet", idx)
        sources["video"], paths["cine_index"] = str(Path(real["video_dir"]).resolve()), "video_index_real.parquet"
        hashes["video"] = (
            io.sha256_file(real["video_dir"])[:16]
            if Path(real["video_dir"]).is_file()
            else io.tree_digest(real["video_dir"], content=False)
        )
        manifest["counts"]["clips"] = int(len(idx))
        sim_cine = lay.cine
        if sim_cine.exists():  # simulated loops must not sit beside the real ones
            shutil.rmtree(sim_cine)
            Path(lay.cine_index).unlink(missing_ok=True)
    if cfg.get("still_dir"):
        from ..segment.subjects import index_stills  # (no model import: pure file listing)

        st = index_stills(cfg["still_dir"])
        io.write_parquet(out / "still_index_real.parquet", st)
        sources["stills"], paths["stills_index"] = str(Path(cfg["still_dir"]).resolve()), "still_index_real.parquet"
        manifest["counts"]["stills"] = int(len(st))
    elif "video_dir" in real or "cohort_path" in real:  # simulated stills belong to simulated subjects
        for p in (lay.stills, lay.stills_index):
            shutil.rmtree(p) if p.is_dir() else p.unlink(missing_ok=True)
        paths.pop("stills_index", None)
        sources.pop("stills", None)
        manifest["counts"].pop("stills", None)
    if "cohort_path" in real or "video_dir" in real:
        manifest["id_join"] = id_join(out, paths, strict="cohort_path" in real and "video_dir" in real)
    manifest["timings"]["real_data_s"] = round(time.perf_counter() - t0, 2)
    manifest.update(
        sources=sources,
        paths=paths,
        data_hashes=hashes,
        synthetic=any(v == "synthetic" for v in sources.values()) or not sources,
    )
    manifest["headline"] = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in manifest["counts"].items())
    io.write_json(lay.manifest, manifest)
    return manifest


def id_join(out: Path, paths: dict, examples: int = 5, strict: bool = True) -> dict:
    """How the cohort's ids meet the videos' ids: counts and a few unmatched examples of each
    (ids compared as text). With ``strict`` (both real) a join that matches nobody stops with one
    line; otherwise (one side simulated) it is reported: 03-05 then have no real subject."""
    cohort = io.read_parquet(out / paths["cohort"])
    videos = io.read_parquet(out / paths["cine_index"])
    c, v = set(cohort.subject_id.astype(str)), set(videos.subject_id.astype(str))
    both = c & v
    report = {
        "cohort_subjects": len(c),
        "video_subjects": len(v),
        "matched": len(both),
        "cohort_without_video": len(c - v),
        "videos_without_cohort_row": len(v - c),
        "examples_cohort_without_video": sorted(c - v)[:examples],
        "examples_videos_without_cohort_row": sorted(v - c)[:examples],
    }
    if not both and strict:
        raise io.CarotidkitError(
            f"no video's subject_id matches a cohort subject_id (cohort e.g. {sorted(c)[:3]}, videos e.g. "
            f"{sorted(v)[:3]}): check the id format, or give a manifest (subject_id, path)"
        )
    return report


def data_paths(run_dir) -> dict[str, Path]:
    """Absolute paths of the run's data components, from the manifest 00_data wrote."""
    from ..layout import RunLayout

    return RunLayout(run_dir).data.resolved()


def cine_table(run_dir) -> pd.DataFrame:
    """The run's clip index with absolute ``path`` values (synthetic or real videos)."""
    paths = data_paths(run_dir)
    idx = io.read_parquet(paths["cine_index"])
    base = paths["cine_index"].parent
    idx["path"] = [str(p) if Path(p).is_absolute() else str(base / p) for p in idx.path]
    return idx
