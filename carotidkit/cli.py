"""Command line with the Makefile's powers: ``python -m carotidkit report|test|bench|clean|profiles``."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from . import profiles


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m carotidkit",
        description="carotidkit: run the notebook pipeline, tests and benchmarks.",
        epilog="Examples:\n  python -m carotidkit report --profile smoke\n"
        "  python -m carotidkit report --profile workshop --only 02 -p epochs 2\n"
        "  python -m carotidkit profiles 02_unet_ensemble",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ap.add_subparsers(dest="command", required=True)

    rp = sub.add_parser("report", help="execute the notebooks (what changed) and render reports/")
    rp.add_argument("--profile", default="workshop", choices=profiles.PROFILE_NAMES)
    rp.add_argument("--only", help="notebook number(s) or name(s), comma separated (e.g. 03 or 00,01)")
    rp.add_argument(
        "-p",
        "--param",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="override a notebook parameter (YAML value), repeatable",
    )
    rp.add_argument("--force", action="store_true", help="re-execute even if nothing changed")
    rp.add_argument("--run-dir", help="run folder (default runs/<profile>)")
    rp.add_argument("--reports-dir", help="report folder (default reports/)")
    rp.add_argument("--seed", type=int, help="seed for every notebook (default 0)")

    tp = sub.add_parser("test", help="run the test suite (pytest); extra args go to pytest")
    tp.add_argument("pytest_args", nargs=argparse.REMAINDER)
    bp = sub.add_parser("bench", help="run the benchmarks and write bench/results/")
    bp.add_argument("--only", help="benchmark name(s), comma separated")
    sub.add_parser("clean", help="remove generated outputs (runs/, reports/, caches); never raw data")
    wp = sub.add_parser("timings", help="where a report run's time went, per notebook and part (markdown)")
    wp.add_argument("--profile", default="workshop")
    wp.add_argument("--run-dir", help="run folder (default runs/<profile>)")
    pp = sub.add_parser("profiles", help="every knob of a notebook: meaning, unit, range and its value per profile")
    pp.add_argument("notebook", nargs="?", default=None)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    root = profiles.repo_root()
    if args.command == "report":
        from .report import NotebookFailed, parse_value, run_report

        overrides = {k: parse_value(v) for k, v in args.param}
        try:
            run_report(
                args.profile,
                only=args.only,
                overrides=overrides,
                force=args.force,
                root=root,
                run_dir=args.run_dir,
                reports_dir=args.reports_dir,
                seed=args.seed,
            )
        except NotebookFailed as exc:
            print(f"error: {exc}", file=sys.stderr)
            print(
                f"see {root / 'reports' / 'index.html'} and the notebook's page for the full traceback", file=sys.stderr
            )
            return 1
        except (KeyError, ValueError, FileNotFoundError) as exc:
            print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print(
                "stopped (Ctrl-C): the running notebook and its workers were stopped; run the same command "
                "again to continue where it stopped",
                file=sys.stderr,
            )
            sys.stdout.flush()
            sys.stderr.flush()
            # leave now: the notebook client's abandoned asyncio tasks would print their own
            # "Kernel died" tracebacks while the interpreter shuts down (the run lock is released)
            os._exit(130)
        print(f"report: {root / 'reports' / 'index.html'}")
        return 0
    if args.command == "test":
        return subprocess.call([sys.executable, "-m", "pytest", *args.pytest_args], cwd=root)
    if args.command == "bench":
        from .bench import run_benchmarks

        run_benchmarks(root, only=args.only)
        return 0
    if args.command == "clean":
        for d in ("runs", ".cache", "bench/results"):
            shutil.rmtree(root / d, ignore_errors=True)
        for p in (root / "reports").glob("*"):
            if p.name != ".gitkeep":
                shutil.rmtree(p) if p.is_dir() else p.unlink()
        print("removed runs/, reports/*, .cache/, bench/results/ (raw data untouched)")
        return 0
    if args.command == "timings":
        return _timings(args, root)
    if args.command == "profiles":
        return _profiles(args, root)
    return 2


def _timings(args, root: Path) -> int:
    """``timings``: where a report run's time went (:mod:`carotidkit.timing`)."""
    from .io import CarotidkitError
    from .layout import RunLayout
    from .timing import tables

    try:
        print(tables(RunLayout.for_profile(args.profile, args.run_dir, root).run_dir))
    except CarotidkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _profiles(args, root: Path) -> int:
    """``profiles``: every knob of a notebook, its meaning and its value per profile."""
    names = [args.notebook] if args.notebook else list(profiles.STAGES)
    if args.notebook:
        from .report import discover, select

        try:
            names = [nb.stem for nb in select(discover(root), args.notebook)]
        except (ValueError, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    from .settings import for_notebook

    for nb in names:
        cls = for_notebook(nb)
        print(f"== {nb}  ({cls.__name__}; declared in carotidkit/settings.py)")
        per = {prof: profiles.settings(nb, prof, run_dir=Path("runs") / prof) for prof in profiles.PROFILE_NAMES}
        for name, k in cls.knobs().items():
            vals = "  ".join(f"{prof}={per[prof][name]!r}" for prof in profiles.PROFILE_NAMES)
            print(f"  {name}: {k.describe()}\n      {vals}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
