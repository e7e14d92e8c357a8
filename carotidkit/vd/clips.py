"""Clip cache and clip datasets for the video model.

Videos are decoded once into a memory-mapped uint8 cache ``[N, T, S, S]`` (grayscale, resampled
to a fixed frame rate, cropped to the scan area for real videos, resized to ``S``), in parallel
worker processes with a progress bar; training then never decodes video. A file that cannot be
read becomes a row of the error table with a one-line reason.

:class:`ClipDataset` says what a clip is: ``frames`` frames taken every ``period`` frames;
in training one window per video per epoch at a random temporal offset (``clips_per_video``
windows if asked), at test time every non-overlapping window of the loop (``all_clips``).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from .. import io

CACHE_VERSION = "3"
INFO_COLUMNS = ["n_src_frames", "src_fps", "pixel_spacing_mm", "spacing_source", "overlay_fraction", "src_width_px"]
#: what the last :func:`build_cache` call in this process did (tests and the ingest bench read it)
LAST_BUILD: dict = {}


def frame_indices(n_src: int, src_fps: float, n_out: int, fps: float = 25.0) -> np.ndarray:
    """Source frame of each of ``n_out`` frames at ``fps`` (nearest in time; the loop wraps)."""
    return np.round(np.arange(n_out) / fps * src_fps).astype(int) % n_src


def _decode_one(args):
    """Read one video -> (uint8 [T, S, S] at ``fps``, info dict) or (None, {"error": ...}).

    Every format goes through :func:`carotidkit.data.video.load_video` (``.npz``/``.npy``
    included, so float 0-1 and 16-bit clips keep their grey scale). Runs in a worker.
    """
    path, size, fps, n_frames, crop = args
    fault = os.environ.get("CAROTIDKIT_DECODE_FAULT", "")  # tests only: "<file name or *>:crash|sleep|slow"
    if fault and fault.split(":")[0] in (Path(path).name, "*"):
        if fault.endswith(":crash"):
            os._exit(3)  # what an out-of-memory kill or a decoder segfault looks like to the pool
        time.sleep(0.02 if fault.endswith(":slow") else 3600)
    try:
        from ..data.video import load_video

        v = load_video(Path(path))
        frames = v.frames
        overlay = None
        if crop:  # real loops: crop to the scan area, mask burned-in overlays as 01 cleans stills
            from ..clean.core import cine_overlays
            from ..imaging import scan_box

            x0, y0, x1, y1 = v.scan_box if v.scan_box is not None else scan_box(frames.max(0))
            overlay = cine_overlays(frames, (x0, y0, x1, y1))[y0:y1, x0:x1]
            frames = frames[:, y0:y1, x0:x1]
        src_fps = v.fps or fps
        # resample in time to the fixed frame rate (nearest frame), loop to n_frames
        idx = frame_indices(frames.shape[0], src_fps, n_frames, fps)
        out = np.empty((n_frames, size, size), np.uint8)
        small = None
        if overlay is not None and overlay.any():
            small = cv2.resize(overlay.astype(np.uint8) * 255, (size, size), interpolation=cv2.INTER_AREA) > 0
        for k, i in enumerate(idx):
            out[k] = cv2.resize(frames[i], (size, size), interpolation=cv2.INTER_AREA)
            if small is not None:  # inpainted at model size: cheap, and what the model sees
                out[k] = cv2.inpaint(out[k], small.astype(np.uint8), 2, cv2.INPAINT_TELEA)
        info = {
            "overlay_fraction": float(overlay.mean()) if overlay is not None else 0.0,
            "n_src_frames": int(v.n_frames),
            "src_fps": float(v.fps) if v.fps else np.nan,
            "pixel_spacing_mm": float(v.pixel_spacing_mm) if v.pixel_spacing_mm else np.nan,
            "spacing_source": v.spacing_source,
            "src_width_px": int(frames.shape[2]),  # of the (cropped) loop before resizing
        }
        return out, info
    except Exception as exc:  # an unreadable file is a row in the error table, not a crash
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, {"error": msg if msg.startswith(str(path)) else f"{path}: {msg}"}


def _file_key(path) -> str:
    p = Path(path)
    st = p.stat() if p.exists() else None
    return io.stable_hash([str(p), st.st_size if st else 0, st.st_mtime_ns if st else 0])


def _mem_available() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 2**30


def worker_count(paths, n_jobs: int) -> int:
    """Workers capped by cores and by memory: each may hold a decoded loop, estimated as 12x the
    largest file (JPEG cine compresses about 10:1) plus 300 MB for the interpreter."""
    n = n_jobs or os.cpu_count() or 1
    biggest = max((Path(p).stat().st_size for p in paths if Path(p).exists()), default=0)
    per = 300 * 2**20 + 12 * biggest
    return max(1, min(n, int(0.7 * _mem_available() // per)))


class _State:
    """A build in progress: a memmap of every row plus a done mask and per-row info, flushed
    together so that a killed build resumes where it stopped."""

    def __init__(self, cache_dir: Path, key: str, n: int, shape: tuple):
        self.data = cache_dir / f".{key}.u8.tmp"
        self.file = cache_dir / f".{key}.state.parquet"
        self.n, self.shape = n, shape
        fresh = not (self.data.exists() and self.file.exists())
        self.mm = np.memmap(self.data, np.uint8, "w+" if fresh else "r+", shape=(max(n, 1), *shape))
        if fresh:
            self.table = pd.DataFrame({"done": np.zeros(n, bool), "error": [""] * n, "spacing_source": [""] * n})
            for c in ("n_src_frames", "src_fps", "pixel_spacing_mm", "overlay_fraction"):
                self.table[c] = np.nan
        else:
            self.table = io.read_parquet(self.file)
        self.dirty = 0

    def put(self, i: int, frames, info: dict):
        if frames is not None:
            self.mm[i] = frames
            for c in INFO_COLUMNS:
                self.table.at[i, c] = info[c]
        else:
            self.table.at[i, "error"] = info["error"]
        self.table.at[i, "done"] = True
        self.dirty += 1

    def flush(self, force: bool = False):
        if self.dirty and (force or self.dirty >= 16):
            self.mm.flush()  # frames first: a row marked done always has its frames on disk
            io.write_parquet(self.file, self.table)
            self.dirty = 0


def _reuse(cache_dir: Path, skey: str, fkeys: list, state: _State) -> int:
    """Copy rows decoded by earlier finished caches with the same settings (one file added to a
    cohort does not re-decode the others)."""
    want = {k: i for i, k in enumerate(fkeys) if not state.table.done.iat[i]}
    n = 0
    for table in cache_dir.glob("*.parquet"):
        if not want or table.name.startswith(".") or table.name.endswith(".errors.parquet"):
            continue
        old = io.read_parquet(table)
        if not len(old) or "file_key" not in old or "skey" not in old or old.skey.iloc[0] != skey:
            continue
        data = table.with_suffix(".u8")
        if not data.exists():
            continue
        src = np.memmap(data, np.uint8, "r", shape=(max(len(old), 1), *state.shape))
        for r in old.itertuples():
            i = want.pop(r.file_key, None)
            if i is not None:
                state.put(i, src[r.row], {c: getattr(r, c) for c in INFO_COLUMNS})
                n += 1
        del src
    state.flush(force=True)
    return n


def _run_pool(tasks, pending, n_jobs, timeout_s, state, bar):
    """Decode ``pending`` rows in worker processes, one task per worker at a time. A worker that
    dies (out of memory, a decoder crash) or a file over ``timeout_s`` becomes that file's error
    row; the pool is rebuilt and the build goes on. When a pool breaks, the files it was working
    on are retried one per process, so only the file that kills its worker is lost."""
    from concurrent.futures import FIRST_COMPLETED, wait
    from concurrent.futures.process import BrokenProcessPool

    queue, suspects = list(pending), []
    while queue or suspects:
        solo = not queue
        if solo:
            queue = [suspects.pop(0)]
        width = 1 if solo else n_jobs
        pool = ProcessPoolExecutor(width, mp_context=get_context("spawn"))
        running: dict = {}
        broken = False
        try:
            while (queue or running) and not broken:
                while queue and len(running) < width:
                    i = queue.pop(0)
                    running[pool.submit(_decode_one, tasks[i])] = (i, time.monotonic())
                done, _ = wait(list(running), timeout=min(2.0, timeout_s), return_when=FIRST_COMPLETED)
                for f in done:
                    i, _t = running.pop(f)
                    try:
                        frames, info = f.result()
                    except BrokenProcessPool:
                        broken = True
                        if solo:
                            info = {
                                "error": f"{tasks[i][0]}: the decoding worker died (out of memory or a decoder crash)"
                            }
                            state.put(i, None, info)
                            bar.update(1)
                        else:
                            suspects.append(i)
                        continue
                    state.put(i, frames, info)
                    bar.update(1)
                    state.flush()
                late = [f for f, (_, t0) in running.items() if time.monotonic() - t0 > timeout_s]
                for f in late:
                    i, _ = running.pop(f)
                    state.put(i, None, {"error": f"{tasks[i][0]}: decoding took over {timeout_s:g} s; skipped"})
                    bar.update(1)
                if late:
                    broken = True  # a stuck worker cannot be cancelled: replace the pool
        except BaseException:  # Ctrl-C or a kill of the build: stop the workers too
            broken = True
            raise
        finally:
            # files still running when the pool broke go back: retried one per process
            (suspects if broken else queue).extend(i for i, _ in running.values())
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                if broken and proc.is_alive():
                    proc.kill()
            pool.shutdown(wait=True, cancel_futures=True)
            state.flush(force=True)


def _keys(index: pd.DataFrame, size: int, fps: float, seconds: float, crop: bool):
    """``(settings key, per-file keys, cache key)``: the one place the cache is keyed."""
    n_frames = int(round(seconds * fps))
    skey = io.stable_hash({"v": CACHE_VERSION, "size": size, "fps": fps, "T": n_frames, "crop": crop})
    fkeys = [_file_key(p) for p in index.path]
    return skey, fkeys, io.stable_hash({"settings": skey, "files": fkeys})


def cache_files(
    index: pd.DataFrame, cache_dir, size: int = 64, fps: float = 25.0, seconds: float = 1.28, crop: bool = False
):
    """The finished cache's ``(data, table, errors)`` paths for these videos and settings (the
    table is written last: when it exists, the cache is complete)."""
    key = _keys(index, size, fps, seconds, crop)[2]
    d = Path(cache_dir)
    return d / f"{key}.u8", d / f"{key}.parquet", d / f"{key}.errors.parquet"


def _decode_pending(tasks, state, pending, n_jobs, timeout_s, progress) -> int:
    """Decode the rows not done yet (in worker processes for more than 64); returns the workers."""
    from tqdm.auto import tqdm

    bar = tqdm(
        total=len(tasks), initial=len(tasks) - len(pending), desc="decoding videos", disable=not progress, mininterval=2
    )
    workers = worker_count([tasks[i][0] for i in pending], n_jobs)
    try:
        if workers > 1 and len(pending) > 64:
            _run_pool(tasks, pending, workers, timeout_s, state, bar)
        else:
            for i in pending:
                state.put(i, *_decode_one(tasks[i]))
                bar.update(1)
                state.flush()
    finally:
        state.flush(force=True)
        bar.close()
    return workers


def _publish(index, state: _State, fkeys, skey, files, shape):
    """Compact the build to its readable clips and write the cache atomically (data, errors,
    table last); returns ``(clips, errors)`` and removes the build state."""
    data, table, errs = files
    st = state.table
    ok = np.where(st.done.to_numpy() & (st.error.to_numpy() == ""))[0]
    clips = index.iloc[ok].reset_index(drop=True).assign(row=np.arange(len(ok)), file_key=[fkeys[i] for i in ok])
    for c in INFO_COLUMNS:
        clips[c] = st[c].to_numpy()[ok]
    clips["skey"] = skey
    bad = np.where(st.error.to_numpy() != "")[0]
    errors = pd.DataFrame(
        {
            "clip_id": index.clip_id.to_numpy()[bad],
            "path": index.path.to_numpy()[bad],
            "error": st.error.to_numpy()[bad],
        }
    )
    with io.atomic_path(data, suffix=".u8") as t2:
        dst = np.memmap(t2, np.uint8, "w+", shape=(max(len(ok), 1), *shape))
        for j in range(0, len(ok), 256):
            dst[j : j + 256] = state.mm[ok[j : j + 256]]
        dst.flush()
        del dst
    io.write_parquet(errs, errors)
    io.write_parquet(table, clips)
    del state.mm
    state.data.unlink(missing_ok=True)
    state.file.unlink(missing_ok=True)
    return clips, errors


def build_cache(
    index: pd.DataFrame,
    cache_dir,
    size: int = 64,
    fps: float = 25.0,
    seconds: float = 1.28,
    crop: bool = False,
    n_jobs: int = 1,
    progress: bool = True,
    timeout_s: float = 600.0,
    must_exist: bool = False,
) -> tuple[np.memmap, pd.DataFrame, pd.DataFrame]:
    """Decode every video of ``index`` (``subject_id, clip_id, path``) into a memory-mapped cache.

    Returns ``(frames [N, T, size, size] uint8 memmap, clips table, errors table)``; the clips
    table says for each loop its source frame count and rate and its pixel spacing with where it
    came from (``spacing_source``: ``ultrasound region``, ``PixelSpacing``, ``file`` or
    ``unknown``, never a silent default). Keyed by the settings and each file's path, size and
    mtime: an unchanged call costs nothing; a killed build resumes where it stopped; a file
    added to the cohort decodes only that file (rows of an earlier cache with the same settings
    are copied); a worker that dies or a file over ``timeout_s`` becomes an error row.
    """
    n_frames = int(round(seconds * fps))
    shape = (n_frames, size, size)
    skey, fkeys, key = _keys(index, size, fps, seconds, crop)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    files = cache_dir / f"{key}.u8", cache_dir / f"{key}.parquet", cache_dir / f"{key}.errors.parquet"
    if all(f.exists() for f in files):
        clips = io.read_parquet(files[1])
        LAST_BUILD.update(decoded=0, reused=len(clips), resumed=0)
        return np.memmap(files[0], np.uint8, "r", shape=(max(len(clips), 1), *shape)), clips, io.read_parquet(files[2])
    if must_exist:
        from ..io import CarotidkitError

        raise CarotidkitError(
            f"{cache_dir}: the clip cache for these videos and settings is not built; build it first "
            "(python -m carotidkit.vd.train does, before its process group starts)"
        )
    tasks = [(p, size, fps, n_frames, crop) for p in index.path]
    state = _State(cache_dir, key, len(tasks), shape)
    resumed = int(state.table.done.sum())
    reused = _reuse(cache_dir, skey, fkeys, state)
    pending = np.where(~state.table.done.to_numpy())[0].tolist()
    workers = _decode_pending(tasks, state, pending, n_jobs, timeout_s, progress)
    LAST_BUILD.update(decoded=len(pending), reused=reused, resumed=resumed, workers=workers)
    clips, errors = _publish(index, state, fkeys, skey, files, shape)
    for old in cache_dir.glob("*"):  # earlier caches: their rows were reused above
        if not old.name.startswith((key, f".{key}")):
            old.unlink(missing_ok=True)
    return np.memmap(files[0], np.uint8, "r", shape=(max(len(clips), 1), *shape)), clips, errors


def windows(n_total: int, frames: int, period: int) -> np.ndarray:
    """Start frames of every non-overlapping window of ``frames`` x ``period`` in a loop."""
    span = frames * period
    if n_total < span:
        return np.array([0])
    return np.arange(0, n_total - span + 1, span)


class ClipDataset:
    """Clips of cached loops, as float tensors ``[1, frames, S, S]`` normalised by ``mean``/``std``.

    Args:
        cache: uint8 array ``[N, T, S, S]`` (the memmap of :func:`build_cache`).
        rows: cache rows of the videos in this set.
        labels: one label per row (float), or None.
        frames, period: a clip is ``frames`` frames taken every ``period`` frames.
        train: random temporal offset and augmentation (spatial jitter, gain/gamma, noise),
            seeded per (seed, epoch, item) so that any number of processes sees the same clips.
        clips_per_video: windows drawn per video per epoch in training.
        all_clips: at test time, every non-overlapping window (``item_video`` maps them back).
    """

    def __init__(
        self,
        cache,
        rows,
        labels=None,
        frames: int = 8,
        period: int = 4,
        train: bool = False,
        clips_per_video: int = 1,
        mean: float = 0.0,
        std: float = 1.0,
        seed: int = 0,
        all_clips: bool = True,
        jitter_px: int = 4,
    ):
        self.cache, self.rows = cache, np.asarray(rows)
        self.labels = None if labels is None else np.asarray(labels, np.float32)
        self.frames, self.period, self.train = frames, period, train
        self.mean, self.std, self.seed, self.jitter = float(mean), float(std), seed, jitter_px
        self.epoch = 0
        T = cache.shape[1]
        if train:
            self.item_video = np.repeat(np.arange(len(self.rows)), clips_per_video)
            self.item_start = np.full(len(self.item_video), -1)
        else:
            w = windows(T, frames, period) if all_clips else np.array([max(0, (T - frames * period) // 2)])
            self.item_video = np.repeat(np.arange(len(self.rows)), len(w))
            self.item_start = np.tile(w, len(self.rows))

    def __len__(self):
        return len(self.item_video)

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def get(self, idx) -> tuple[np.ndarray, np.ndarray]:
        """A batch: float32 ``[B, 1, frames, S, S]`` and labels ``[B]``."""
        idx = np.asarray(idx)
        T, S = self.cache.shape[1], self.cache.shape[2]
        span = self.frames * self.period
        out = np.empty((len(idx), 1, self.frames, S, S), np.float32)
        for k, i in enumerate(idx):
            v = self.item_video[i]
            clip = np.asarray(self.cache[self.rows[v]])
            if self.train:
                rng = np.random.default_rng([self.seed, self.epoch, int(i)])
                start = int(rng.integers(0, max(1, T - span + 1)))
                x = clip[(start + self.period * np.arange(self.frames)) % T].astype(np.float32)
                dy, dx = rng.integers(-self.jitter, self.jitter + 1, 2)
                x = np.roll(x, (int(dy), int(dx)), axis=(1, 2))
                gamma = float(np.exp(rng.normal(0, 0.1)))
                x = 255.0 * (x / 255.0) ** gamma * float(np.exp(rng.normal(0, 0.1)))
                x = x + rng.normal(0, 3.0, x.shape).astype(np.float32)
            else:
                x = clip[(int(self.item_start[i]) + self.period * np.arange(self.frames)) % T].astype(np.float32)
            out[k, 0] = (x - self.mean) / self.std
        y = self.labels[self.item_video[idx]] if self.labels is not None else np.zeros(len(idx), np.float32)
        return out, y


def intensity_stats(cache, rows, n: int = 256, seed: int = 0) -> tuple[float, float]:
    """Mean and SD of pixel intensity over (a sample of) the training videos only."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(np.asarray(rows), min(n, len(rows)), replace=False)
    x = np.asarray(cache[np.sort(pick)], np.float32)
    return float(x.mean()), float(x.std() + 1e-6)
