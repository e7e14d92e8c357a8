"""One run per run folder: an advisory lock held by the report runner and by direct stage calls.

The lock is ``<run_dir>/.carotidkit.lock``, taken with ``flock`` (released by the kernel when its
holder dies, so a power cut or ``kill -9`` never leaves a folder locked for good) and carrying
the holder's PID, host, start time and command. A second run on the same folder stops at once
with one line naming them. A lock file whose holder is gone is taken over with a note.

The runner passes its token to the notebook kernels it starts (``CAROTIDKIT_RUN_LOCK``), so the
stage calls inside them run under the runner's lock instead of waiting for it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
import uuid
from pathlib import Path

from .io import CarotidkitError

LOCK_NAME = ".carotidkit.lock"
ENV = "CAROTIDKIT_RUN_LOCK"
_held: dict[str, tuple[int, str, int]] = {}  # run_dir -> (fd, token, depth) held by this process


def _describe(info: dict) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.get("started", 0)))
    return f"PID {info.get('pid', '?')} on {info.get('host', '?')}, started {started} ({info.get('command', '?')})"


@contextlib.contextmanager
def hold(run_dir, note=print):
    """Hold the run folder's lock for the duration of the block (re-entrant in one process)."""
    run_dir = Path(run_dir).resolve()
    key = str(run_dir)
    if key in _held:  # nested: the runner, or an outer stage call of this process
        fd, token, depth = _held[key]
        _held[key] = (fd, token, depth + 1)
        try:
            yield token
        finally:
            fd, token, depth = _held[key]
            _held[key] = (fd, token, depth - 1)
        return
    path = run_dir / LOCK_NAME
    inherited = os.environ.get(ENV, "")
    if inherited and path.exists():
        try:
            info = json.loads(path.read_text() or "{}")
        except (OSError, ValueError):
            info = {}
        if info.get("token") == inherited:  # our parent (the runner) holds it for us
            yield inherited
            return
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        try:
            info = json.loads(os.pread(fd, 65536, 0).decode() or "{}")
        except ValueError:
            info = {}
        os.close(fd)
        raise CarotidkitError(
            f"{run_dir}: in use by another carotidkit run ({_describe(info)}); wait for it to finish "
            "or give another run_dir"
        ) from None
    previous = os.pread(fd, 65536, 0).decode(errors="replace")
    if previous.strip():
        try:
            old = json.loads(previous)
            if note:
                note(
                    f"note: {run_dir} was locked by a run that ended without releasing it ({_describe(old)}); taking over"
                )
        except ValueError:
            pass
    token = uuid.uuid4().hex
    info = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.time(),
        "command": " ".join(sys.argv)[:200] or "python",
        "token": token,
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    os.fsync(fd)
    _held[key] = (fd, token, 1)
    try:
        yield token
    finally:
        del _held[key]
        os.ftruncate(fd, 0)  # a clean exit leaves an empty file: no "ended without releasing" note
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
