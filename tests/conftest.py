"""Shared fixtures: the smoke pipeline runs once per test session into a temporary run folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """Execute every notebook under profile=smoke into a temp run folder; render the site."""
    from carotidkit.report import NotebookFailed, run_report

    base = tmp_path_factory.mktemp("smoke")
    run_dir, reports_dir = base / "runs" / "smoke", base / "reports"
    log: list[str] = []
    try:
        results = run_report("smoke", root=ROOT, run_dir=run_dir, reports_dir=reports_dir, echo=log.append)
        error = None
    except NotebookFailed as exc:  # reported per notebook by the tests below
        results, error = None, str(exc)
    return {"run_dir": run_dir, "reports_dir": reports_dir, "results": results, "error": error, "log": log}
