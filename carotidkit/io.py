"""Atomic writes, content hashing and small file helpers shared by every stage.

Every file carotidkit writes goes through :func:`atomic_path` (temp file in the same folder,
then ``os.replace``), so a crash never leaves a half-written output behind.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Iterator

import numpy as np


class CarotidkitError(ValueError):
    """A user-facing, one-line error about bad input (names the file/row and the fix)."""


_UMASK_LOCK = threading.Lock()


def file_mode() -> int:
    """The mode a plain ``open()`` would give a new file under the current umask (e.g. 0o644).

    ``tempfile.mkstemp`` always creates 0o600; outputs get this mode instead, so a shared report
    or run folder stays readable to colleagues exactly as the user's umask allows.
    """
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    Example:
        with atomic_path(tmp / "t.parquet") as p:
            df.to_parquet(p)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or "".join(path.suffixes), dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():
            os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except OSError as exc:
        if (
            exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
            or "No space left" in str(exc)
            or "too large" in str(exc)
        ):
            raise CarotidkitError(
                f"{path}: could not be written ({exc.strerror or exc}): the disk is full or over its quota; "
                "previous version left intact"
            ) from None
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes(path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json(path, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def read_json(path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, Mapping):  # a stage's settings object
        return dict(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_parquet(path, **kwargs):
    """``pandas.read_parquet`` with pyarrow's thread pools left alone (no pre-buffering, no
    multi-threaded decoding).

    pyarrow's background threads can outlive a script and abort the interpreter at exit
    ("terminate called without an active exception", status 134 / signal 6) after all the work
    is done (apache/arrow#34314). Measured here with short scripts reading one small table while
    both cores were busy: 6 of 30 aborted with the defaults, 1 of 30 without pre-buffering, 0 of
    110 with neither pre-buffering nor threads. A CI run of the test suite failed this way once.
    Single-threaded decoding costs nothing measurable at the sizes carotidkit reads.
    """
    import pandas as pd

    return pd.read_parquet(path, pre_buffer=False, use_threads=False, **kwargs)


def write_parquet(path, df) -> Path:
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return Path(path)


def write_npz(path, **arrays) -> Path:
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)
    return Path(path)


def write_png(path, image: np.ndarray) -> Path:
    import cv2

    with atomic_path(path, suffix=".png") as tmp:
        if not cv2.imwrite(str(tmp), image):
            raise OSError(f"{path}: could not encode PNG")
    return Path(path)


def sha256_file(path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stable_hash(obj: Any) -> str:
    """Short hash of a JSON-serialisable object (sorted keys): cache keys and fingerprints."""
    blob = json.dumps(obj, sort_keys=True, default=_json_default).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def tree_digest(root, *, content: bool = True, exclude_prefix: str = ".") -> str:
    """Digest of every file under ``root`` (relative path + content hash, or size+mtime).

    Used for incremental reports (did an upstream stage's outputs change?) and data manifests.
    """
    root = Path(root)
    h = hashlib.sha256()
    if not root.exists():
        return "missing"
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(exclude_prefix) for part in p.relative_to(root).parts)
    )
    for p in files:
        h.update(str(p.relative_to(root)).encode())
        if content:
            h.update(sha256_file(p).encode())
        else:
            st = p.stat()
            h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]
