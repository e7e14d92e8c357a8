"""The report runner: incremental execution, failure reporting, banner, code toggle, CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from carotidkit import io, report
from carotidkit.layout import RunLayout

ROOT = Path(__file__).resolve().parents[1]


def _nb(path: Path, *sources: str, params: str = 'profile = "workshop"\nrun_dir = None\nseed = 0'):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell] + [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


@pytest.fixture()
def toy_root(tmp_path):
    """A miniature checkout: two notebooks, 00_data writes data/, 01_cleaning reads it."""
    (tmp_path / "carotidkit").mkdir()
    (tmp_path / "notebooks").mkdir()
    _nb(
        tmp_path / "notebooks" / "00_data.ipynb",
        "from pathlib import Path\nd = Path(run_dir) / 'data'; d.mkdir(parents=True, exist_ok=True)\n"
        "(d / 'x.txt').write_text(str(seed))\n"
        "import json; (d / 'manifest.json').write_text(json.dumps({'synthetic': True}))",
    )
    _nb(
        tmp_path / "notebooks" / "01_cleaning.ipynb",
        "from pathlib import Path\nprint('upstream says', (Path(run_dir) / 'data' / 'x.txt').read_text())",
    )
    return tmp_path


def _run(root, **kw):
    log = []
    res = report.run_report(
        "smoke", root=root, run_dir=root / "runs" / "smoke", reports_dir=root / "reports", echo=log.append, **kw
    )
    return {r.notebook: r.status for r in res}, log


@pytest.mark.slow
def test_incremental_reruns_only_what_changed(toy_root):
    status, _ = _run(toy_root)
    assert status == {"00_data": "ok", "01_cleaning": "ok"}
    status, _ = _run(toy_root)
    assert status == {"00_data": "up-to-date", "01_cleaning": "up-to-date"}
    # an upstream output changes -> only the downstream notebook re-executes ... and the upstream
    # notebook itself, whose recorded outputs no longer match
    (RunLayout(toy_root / "runs" / "smoke").data.root / "x.txt").write_text("edited")
    status, _ = _run(toy_root)
    assert status == {"00_data": "ok", "01_cleaning": "ok"}
    # editing the downstream notebook re-executes it alone
    nb = toy_root / "notebooks" / "01_cleaning.ipynb"
    _nb(nb, "print('changed')")
    status, _ = _run(toy_root)
    assert status == {"00_data": "up-to-date", "01_cleaning": "ok"}
    # re-running only the upstream notebook with new outputs marks the downstream one out of date
    _nb(
        toy_root / "notebooks" / "00_data.ipynb",
        "from pathlib import Path\nd = Path(run_dir) / 'data'; d.mkdir(parents=True, exist_ok=True)\n"
        "(d / 'x.txt').write_text('v2')",
    )
    status, _ = _run(toy_root, only="00")
    assert status == {"00_data": "ok", "01_cleaning": "out of date"}
    assert "out of date" in (toy_root / "reports" / "index.html").read_text()
    status, _ = _run(toy_root)
    assert status == {"00_data": "up-to-date", "01_cleaning": "ok"}
    # a different seed changes every notebook's parameters
    status, _ = _run(toy_root, seed=3)
    assert status == {"00_data": "ok", "01_cleaning": "ok"}
    # --only re-executes that notebook even when it is up to date
    status, _ = _run(toy_root, seed=3, only="01")
    assert status == {"00_data": "ok", "01_cleaning": "ok"} or status["01_cleaning"] == "ok"
    assert status["00_data"] != "not run"


@pytest.mark.slow
def test_failed_notebook_stops_the_run_and_is_shown(toy_root):
    _nb(toy_root / "notebooks" / "00_data.ipynb", "x = 1", "raise ValueError('planted failure 42')")
    with pytest.raises(report.NotebookFailed, match="planted failure 42"):
        _run(toy_root)
    index = (toy_root / "reports" / "index.html").read_text()
    assert "planted failure 42" in index and "failed" in index
    state = io.read_json(toy_root / "runs" / "smoke" / report.STATE_NAME)
    assert state["00_data"]["status"] == "failed"
    assert "cell [4]" in state["00_data"]["error"]
    # the downstream notebook never ran
    assert "01_cleaning" not in state
    page = (toy_root / "reports" / "smoke" / "00_data.html").read_text()
    assert "planted failure 42" in page


@pytest.mark.slow
def test_cli_failure_prints_cell_and_error(toy_root):
    _nb(toy_root / "notebooks" / "00_data.ipynb", "raise RuntimeError('cli boom')")
    proc = subprocess.run(
        [sys.executable, "-m", "carotidkit", "report", "--profile", "smoke"],
        cwd=toy_root,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 1
    assert "cli boom" in proc.stderr and "cell [3]" in proc.stderr


@pytest.mark.slow
def test_pages_have_banner_toggle_and_no_remote_assets(toy_root):
    _run(toy_root)
    for page in [toy_root / "reports" / "smoke" / "00_data.html", toy_root / "reports" / "index.html"]:
        text = page.read_text()
        assert "SYNTHETIC DATA" in text, page
        assert 'src="http' not in text and "cdnjs" not in text
    assert "ckToggleCode" in (toy_root / "reports" / "smoke" / "01_cleaning.html").read_text()


@pytest.mark.slow
def test_real_data_manifest_drops_the_banner(toy_root):
    run_dir = toy_root / "runs" / "smoke"
    io.write_json(RunLayout(run_dir).data.manifest, {"synthetic": False})
    assert report.synthetic_banner(run_dir) is None
    io.write_json(RunLayout(run_dir).data.manifest, {"synthetic": True})
    assert "SYNTHETIC" in report.synthetic_banner(run_dir)


def test_unknown_override_is_a_clear_error(toy_root):
    with pytest.raises(KeyError, match="not used by"):
        _run(toy_root, overrides={"epochz": 3})


def test_parse_value():
    assert report.parse_value("2") == 2
    assert report.parse_value("[a, b]") == ["a", "b"]
    assert report.parse_value("null") is None
    assert report.parse_value("0.5") == 0.5


def test_declutter_drops_progress_bars_but_keeps_results():
    import nbformat

    from carotidkit.report import declutter

    nb = nbformat.v4.new_notebook()
    c = nbformat.v4.new_code_cell("x")
    c.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text="fold 0: 40%|████      | 4/10 [00:01<00:02]\r"),
        nbformat.v4.new_output(
            "stream", name="stdout", text="Epoch 1/8\n30/30 - 12s - 400ms/step - loss: 0.5\nresult 0.87\n"
        ),
        nbformat.v4.new_output("stream", name="stdout", text="Epoch 2/8\n"),
    ]
    nb.cells.append(c)
    assert declutter(nb) == 3
    assert [o["text"] for o in nb.cells[0].outputs] == ["result 0.87\n"]


def test_version_list_names_every_package_a_result_depends_on():
    from carotidkit.report import versions

    v = versions()
    needed = {"captum", "shap", "scikit-survival", "statsmodels", "monai", "lifelines", "pydicom", "pylibjpeg-openjpeg"}
    assert needed <= set(v) and all(v[p] != "not installed" for p in needed)
