"""The one shape of the six stages.

Every stage's ``run`` is ``run(settings=None, /, *, progress=True, **knobs) -> Result``: it takes
its settings object (:mod:`carotidkit.settings`), or the knobs as keywords (``profile``,
``run_dir``, ``seed`` and the stage's own; ``None`` = the profile's value), and nothing else. The
:func:`stage` decorator resolves and checks them, takes the run folder's lock and calls the
implementation as ``impl(cfg, layout, progress)``, then saves the result it returns (with the
phases timed by ``progress.phase`` as ``timings_s``). Every result derives from
:class:`StageResult` (``settings``, ``synthetic``, ``summary``, ``headline``) and is saved the
same way (:meth:`StageResult.save`: ``<stage>/summary.json``, atomically). Whether a run's data
are synthetic is decided in one place, :func:`is_synthetic`.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .settings import StageSettings

PROGRESS_ENV = "CAROTIDKIT_PROGRESS_FILE"


def report_line(line: str) -> None:
    """Where ``Progress.of(True)`` sends a line: printed in an interactive session; under the
    report runner (which names a file in ``$CAROTIDKIT_PROGRESS_FILE``) appended to that file, so
    the terminal shows it and the rendered page does not (progress is not a result)."""
    path = os.environ.get(PROGRESS_ENV)
    if path:
        try:
            with open(path, "a", encoding="utf-8") as f:
                f.write(str(line).rstrip("\n") + "\n")
            return
        except OSError:
            pass  # the runner's file is gone: fall back to printing
    print(line, flush=True)


class Progress:
    """Where a stage reports what it is doing: called with one line; false when silent.

    ``Progress.of(True)`` reports with :func:`report_line` (printed, or sent to the report
    runner's terminal), ``Progress.of(False)`` (or ``None``) is silent, and any callable taking
    one string (a logger's ``info``, a list's ``append``) receives the lines.
    """

    def __init__(self, sink: Callable[[str], Any] | None = print):
        self._sink = sink
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def phase(self, name: str):
        """Time a part of the stage (seconds add up under ``name``); the stage's summary records
        them as ``timings_s`` (what ``python -m carotidkit timings`` tabulates).

        Example:
            with progress.phase("training"):
                ...
        """
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - t0, 2)

    @classmethod
    def of(cls, p) -> "Progress":
        if isinstance(p, Progress):
            return p
        if p is True:
            return cls(report_line)
        if p is None or p is False:
            return cls(None)
        if callable(p):
            return cls(p)
        raise TypeError(f"progress = {p!r}: give True, False or a function taking one line")

    def __call__(self, message: str) -> None:
        if self._sink is not None:
            self._sink(message)

    def __bool__(self) -> bool:
        return self._sink is not None


def phase(progress, name: str):
    """``progress.phase(name)`` where ``progress`` is a :class:`Progress`, else nothing (the
    helpers that stages call also take a plain ``True``/``False``)."""
    return progress.phase(name) if isinstance(progress, Progress) else contextlib.nullcontext()


def is_synthetic(layout) -> bool:
    """Whether a run's data came (wholly or partly) from the simulator: the data manifest says so;
    a run without one is treated as synthetic (the safe side for the report's banner)."""
    from .io import read_json

    try:
        m = read_json(layout.data.manifest)
    except (OSError, ValueError):
        return True
    return bool(m.get("synthetic", True))


@dataclass(kw_only=True)
class StageResult:
    """Common base of the six results.

    ``settings``: the stage's settings object; ``synthetic``: see :func:`is_synthetic`;
    ``summary``: what the stage records in ``<stage>/summary.json`` (its headline numbers,
    ``headline``, ``settings``, ``synthetic``).
    """

    settings: StageSettings | None = None
    synthetic: bool = True
    summary: dict = field(default_factory=dict)
    _tables: dict | None = field(default=None, init=False, repr=False, compare=False)

    def tables(self) -> dict:
        """Every table of the result by name: its DataFrame fields and its ``journal_tables()``
        (:func:`carotidkit.bundle.result_tables`), computed once; the findings and the bundle
        both read them from here."""
        if self._tables is None:
            from .bundle import result_tables

            self._tables = result_tables(self)
        return self._tables

    @property
    def headline(self) -> str:
        """One line of what the stage found (also on the report index)."""
        return str(self.summary.get("headline", ""))

    def headline_text(self) -> str:
        return self.headline

    def notes_text(self):
        """The stage's notes (what was skipped and why) as a Markdown list for a notebook."""
        from IPython.display import Markdown

        notes = list(getattr(self, "notes", None) or self.summary.get("notes") or [])
        return Markdown("\n".join(f"- {n}" for n in notes) if notes else "_No notes: nothing was skipped._")

    def save(self, layout) -> None:
        """Write ``summary`` (with ``headline``, ``settings`` and ``synthetic``) to the stage's
        summary file, atomically."""
        from . import io

        if self.settings is None:
            raise ValueError("a result without settings cannot be saved")
        self.summary.setdefault("settings", {k: v for k, v in self.settings.items() if k != "run_dir"})
        self.summary["synthetic"] = bool(self.synthetic)
        path = layout.stage_summary(self.settings.NOTEBOOK)
        path.parent.mkdir(parents=True, exist_ok=True)
        io.write_json(path, self.summary)


def resolve(cls: type[StageSettings], settings, overrides: dict) -> StageSettings:
    """A stage's settings from what its ``run`` was given (see the module docstring)."""
    if settings is None:
        return cls.for_profile(**overrides)
    if isinstance(settings, cls):
        return settings.replace(**overrides) if overrides else settings
    if isinstance(settings, StageSettings):
        raise TypeError(f"{cls.NOTEBOOK}'s run was given {settings.NOTEBOOK}'s settings")
    if isinstance(settings, Mapping):
        return cls.for_profile(**{**settings, **overrides})
    raise TypeError(f"{cls.NOTEBOOK}'s run takes a {cls.__name__} (or keywords), not {type(settings).__name__}")


def stage(cls: type[StageSettings]):
    """Decorator turning ``impl(cfg, layout, progress) -> Result`` into the stage's ``run``."""

    def deco(impl):
        from .layout import RunLayout
        from .lock import hold

        @functools.wraps(impl)
        def run(settings=None, /, *, progress=True, **knobs):
            cfg = resolve(cls, settings, knobs)
            lay = RunLayout(cfg.run_dir)
            prog = Progress(Progress.of(progress)._sink)  # its own timings
            with hold(lay.run_dir):
                t0 = time.perf_counter()
                res = impl(cfg, lay, prog)
                total = round(time.perf_counter() - t0, 2)
                other = round(total - sum(prog.timings.values()), 2)
                res.summary["timings_s"] = {**prog.timings, "other": other, "total": total}
                res.save(lay)  # the one place a stage's summary is written
                from . import bundle

                bundle.export_tables(res, lay.tables_dir(cfg.NOTEBOOK))  # the paper bundle's tables
                return res

        P = inspect.Parameter
        params = [P("settings", P.POSITIONAL_ONLY, default=None), P("progress", P.KEYWORD_ONLY, default=True)]
        params += [P(n, P.KEYWORD_ONLY, default=None) for n in cls._names()]
        run.__signature__ = inspect.Signature(params, return_annotation=inspect.signature(impl).return_annotation)
        run.Settings = cls
        run.implementation = impl
        return run

    return deco


__all__ = ["PROGRESS_ENV", "Progress", "report_line", "StageResult", "is_synthetic", "phase", "resolve", "stage"]
