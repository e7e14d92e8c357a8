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
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from .. import io

CACHE_VERSION = "1"


def frame_indices(n_src: int, src_fps: float, n_out: int, fps: float = 25.0) -> np.ndarray:
    """Source frame of each of ``n_out`` frames at ``fps`` (nearest in time; the loop wraps)."""
    return np.round(np.arange(n_out) / fps * src_fps).astype(int) % n_src


def _decode_one(args):
    """Read one video -> uint8 [T, S, S] at ``fps`` (or an error string). Runs in a worker."""
    path, size, fps, n_frames, crop = args
    try:
        p = Path(path)
        if p.suffix.lower() == ".npz" and p.exists():
            z = np.load(p)
            frames, src_fps = z["frames"], float(z["fps"]) if "fps" in z else None
        else:
            from ..data.video import load_video

            v = load_video(p)
            frames, src_fps = v.frames, v.fps
        frames = np.asarray(frames)
        if frames.ndim != 3 or frames.shape[0] < 2:
            return None, f"{path}: expected a loop of >= 2 grayscale frames, got shape {frames.shape}"
        if crop:
            from ..clean import scan_box

            x0, y0, x1, y1 = scan_box(frames.max(0))
            frames = frames[:, y0:y1, x0:x1]
        src_fps = src_fps or fps
        # resample in time to the fixed frame rate (nearest frame), loop to n_frames
        idx = frame_indices(frames.shape[0], src_fps, n_frames, fps)
        out = np.empty((n_frames, size, size), np.uint8)
        for k, i in enumerate(idx):
            out[k] = cv2.resize(frames[i], (size, size), interpolation=cv2.INTER_AREA)
        return out, None
    except Exception as exc:  # an unreadable file is a row in the error table, not a crash
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return None, f"{path}: {msg}"


def build_cache(
    index: pd.DataFrame,
    cache_dir,
    size: int = 64,
    fps: float = 25.0,
    seconds: float = 1.28,
    crop: bool = False,
    n_jobs: int = 1,
    progress: bool = True,
) -> tuple[np.memmap, pd.DataFrame, pd.DataFrame]:
    """Decode every video of ``index`` (``subject_id, clip_id, path``) into a memory-mapped cache.

    Returns ``(frames [N, T, size, size] uint8 memmap, clips table, errors table)``. Cached by a
    key over the paths, their sizes/mtimes and the settings: an unchanged call costs nothing.
    """
    from tqdm.auto import tqdm

    n_frames = int(round(seconds * fps))
    stat = [
        (str(p), *(lambda s: (s.st_size, s.st_mtime_ns))(Path(p).stat())) if Path(p).exists() else (str(p), 0, 0)
        for p in index.path
    ]
    key = io.stable_hash({"v": CACHE_VERSION, "files": stat, "size": size, "fps": fps, "T": n_frames, "crop": crop})
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    data, table, errs = cache_dir / f"{key}.u8", cache_dir / f"{key}.parquet", cache_dir / f"{key}.errors.parquet"
    if data.exists() and table.exists() and errs.exists():
        clips = io.read_parquet(table)
        mm = np.memmap(data, np.uint8, "r", shape=(len(clips), n_frames, size, size))
        return mm, clips, io.read_parquet(errs)
    for old in cache_dir.glob("*"):
        old.unlink()
    tasks = [(p, size, fps, n_frames, crop) for p in index.path]
    tmp = cache_dir / f".{key}.u8.tmp"
    mm = np.memmap(tmp, np.uint8, "w+", shape=(max(len(tasks), 1), n_frames, size, size))
    ok, errors = [], []
    n_jobs = n_jobs or os.cpu_count() or 1
    pool = ProcessPoolExecutor(n_jobs, mp_context=get_context("spawn")) if n_jobs > 1 and len(tasks) > 64 else None
    try:
        results = pool.map(_decode_one, tasks, chunksize=32) if pool else map(_decode_one, tasks)
        bar = tqdm(results, total=len(tasks), desc="decoding videos", disable=not progress, mininterval=2)
        for i, (frames, err) in enumerate(bar):
            if err:
                errors.append({"clip_id": index.clip_id.iloc[i], "path": index.path.iloc[i], "error": err})
            else:
                mm[len(ok)] = frames
                ok.append(i)
    finally:
        if pool:
            pool.shutdown()
    mm.flush()
    del mm
    clips = index.iloc[ok].reset_index(drop=True).assign(row=np.arange(len(ok)))
    # shrink to the readable clips
    src = np.memmap(tmp, np.uint8, "r", shape=(max(len(tasks), 1), n_frames, size, size))
    with io.atomic_path(data, suffix=".u8") as t2:
        dst = np.memmap(t2, np.uint8, "w+", shape=(max(len(ok), 1), n_frames, size, size))
        dst[: len(ok)] = src[: len(ok)]
        dst.flush()
        del dst
    del src
    tmp.unlink()
    io.write_parquet(errs, pd.DataFrame(errors, columns=["clip_id", "path", "error"]))
    io.write_parquet(table, clips)
    return np.memmap(data, np.uint8, "r", shape=(max(len(ok), 1), n_frames, size, size)), clips, io.read_parquet(errs)


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
