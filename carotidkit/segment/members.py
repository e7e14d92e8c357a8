"""Train the ensemble's U-Nets side by side: one process per member, the cores shared out.

On a 2-core CPU a small U-Net does not keep two threads busy: measured on the workshop's 96 px
images (torch backend, model-only ``fit``), one thread trains mobilenetv2 at 0.66 and
efficientnetb0 at 0.64 of the two-thread rate. Three members, each on one thread at the same
time, finish sooner than the same three one after another on two threads: 346 s against 378 s
for the workshop's 02 (1.09x; ``make bench``, ``unet_members``, both in one run). Two processes
for three members took 377 s: one core idles while the last member trains alone.

Each worker is a fresh (spawned) process: its thread pools are sized before torch or TensorFlow
starts, and its epoch lines come back through a queue to the caller's ``progress``. Results do
not depend on the schedule beyond floating-point summation order (a member's seed, data and
checkpoint key are the same either way).
"""

from __future__ import annotations

import os
import queue as queue_mod
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from multiprocessing import get_context

from ..settings import UnetSettings

_LOG = None  # the worker's queue to the parent (set by _init)


def plan(n_members: int, n_jobs: int, cores: int | None = None) -> tuple[int, int]:
    """``(processes, threads per process)`` for training ``n_members`` U-Nets.

    ``n_jobs``: 0 = one process per member; 1 = one after another in the calling process (all
    cores); k = at most k at a time. Threads: an equal share of the cores, at least one.

    Example:
        >>> plan(3, 0, cores=2)
        (3, 1)
        >>> plan(3, 0, cores=16)
        (3, 5)
        >>> plan(3, 1, cores=2)
        (1, 2)
    """
    cores = cores or os.cpu_count() or 1
    procs = n_members if n_jobs == 0 else min(n_jobs, n_members)
    procs = max(1, procs)
    return procs, max(1, cores // procs)


def _init(threads: int, log_queue) -> None:
    global _LOG
    _LOG = log_queue
    # thread pools are sized when torch / TensorFlow start: set them before either is imported
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    from . import keras_quietly

    # once per process: a worker may train several members in turn, and torch refuses to resize
    # its inter-op pool after the first parallel work
    if keras_quietly().backend.backend() == "torch":
        import torch

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)


def _train_one(backbone: str, arrays: tuple, out_dir: str, cfg, kwargs: dict) -> dict:
    from .train import train_unet

    return train_unet(backbone, *arrays, out_dir, cfg, log=_LOG.put, **kwargs)


def _drain(log_queue, progress) -> None:
    while True:
        try:
            line = log_queue.get_nowait()
        except queue_mod.Empty:
            return
        if progress:
            progress(line)


def train_members(
    backbones,
    X_train,
    Y_train,
    X_val,
    Y_val,
    out_dir,
    settings: UnetSettings | None = None,
    /,
    *,
    weights_paths: dict | None = None,
    progress=print,
    **kwargs,
):
    """Train one U-Net per backbone (``settings`` and keyword arguments as
    :func:`~carotidkit.segment.train.train_unet`, ``n_jobs`` from them; ``weights_paths``:
    backbone -> local encoder weights file); return their summaries in ``backbones`` order,
    each with ``processes`` and ``threads`` added.

    Example:
        summaries = train_members(["mobilenetv2", "efficientnetb0"], Xtr, Ytr, Xva, Yva, "runs/x/unet", epochs=2)
    """
    backbones = list(backbones)
    if len(set(backbones)) != len(backbones):  # two members would share one checkpoint folder
        raise ValueError(f"each backbone at most once, got {backbones}")
    names = set(UnetSettings.knobs()) | {"seed"}
    cfg = (settings or UnetSettings()).replace(**{k: kwargs.pop(k) for k in list(kwargs) if k in names})
    kwargs.setdefault("verbose", 2 if progress else 0)
    procs, threads = plan(len(backbones), cfg.n_jobs)

    def own(bb):
        return {"weights_path": weights_paths[bb]} if weights_paths else {}

    if procs == 1:
        from .train import train_unet

        return [
            {
                **train_unet(bb, X_train, Y_train, X_val, Y_val, out_dir, cfg, log=progress, **kwargs, **own(bb)),
                "processes": 1,
                "threads": threads,
            }
            for bb in backbones
        ]
    ctx = get_context("spawn")
    log_queue = ctx.Queue()
    arrays = (X_train, Y_train, X_val, Y_val)
    with ProcessPoolExecutor(procs, mp_context=ctx, initializer=_init, initargs=(threads, log_queue)) as pool:
        futures = [pool.submit(_train_one, bb, arrays, str(out_dir), cfg, {**kwargs, **own(bb)}) for bb in backbones]
        pending = set(futures)
        while pending:
            _, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            _drain(log_queue, progress)
        results = [f.result() for f in futures]  # re-raises a worker's error here
    _drain(log_queue, progress)
    return [{**r, "processes": procs, "threads": threads} for r in results]
