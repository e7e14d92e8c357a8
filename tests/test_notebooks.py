"""Notebooks: stored clean, one parameters cell, and each executes end to end under profile=smoke."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import pytest

from carotidkit import profiles, report

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_numbered_notebooks():
    assert [nb.stem[:2] for nb in NOTEBOOKS] == [f"{i:02d}" for i in range(len(NOTEBOOKS))]
    assert NOTEBOOKS[0].stem == "00_data"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_without_outputs(nb):
    cells = json.loads(nb.read_text())["cells"]
    for i, c in enumerate(cells):
        if c["cell_type"] == "code":
            assert not c.get("outputs"), f"{nb.name} cell {i} has outputs"
            assert c.get("execution_count") is None, f"{nb.name} cell {i} has an execution count"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_has_one_parameters_cell_declaring_every_knob(nb):
    cells = json.loads(nb.read_text())["cells"]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{nb.name}: {len(tagged)} cells tagged 'parameters'"
    tree = ast.parse("".join(tagged[0]["source"]))
    names = {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets}
    assert {"profile", "run_dir", "seed"} <= names
    # the knobs a profile can set are exactly the ones the notebook declares
    assert names - {"profile", "run_dir", "seed"} == set(profiles.knobs(nb.stem))
    # and the cell is the one its settings class generates (``python tools/nb2py.py --params``)
    from carotidkit.settings import parameters_cell

    assert "".join(tagged[0]["source"]) == parameters_cell(nb.stem), f"{nb.name}: run tools/nb2py.py --params"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_papermill_parses_every_parameter_and_the_notebook_validates(nb, caplog):
    """papermill reads the parameters cell with its own parser: a line it cannot parse (e.g. a
    comment with ``=`` in it) is left out, so ``-p`` still injects the value but the report says
    "Passed unknown parameter". nbformat must also accept the stored JSON as it is."""
    import logging

    import nbformat
    import papermill as pm

    with caplog.at_level(logging.WARNING):
        names = set(pm.inspect_notebook(str(nb)))
    assert not [r.getMessage() for r in caplog.records if "Unable to parse" in r.getMessage()]
    assert names == {"profile", "run_dir", "seed", *profiles.knobs(nb.stem)}
    nbformat.validate(nbformat.read(str(nb), as_version=4))


@pytest.mark.notebook
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_under_smoke(smoke_run, nb):
    state = json.loads((smoke_run["run_dir"] / report.STATE_NAME).read_text())
    assert nb.stem in state, f"{nb.stem} never ran: {smoke_run['error']}"
    assert state[nb.stem]["status"] == "ok", state[nb.stem]["error"]
    assert (smoke_run["reports_dir"] / "smoke" / f"{nb.stem}.html").exists()


@pytest.mark.notebook
def test_rerun_with_nothing_changed_executes_nothing(smoke_run):
    assert smoke_run["error"] is None
    log: list[str] = []
    results = report.run_report(
        "smoke", root=ROOT, run_dir=smoke_run["run_dir"], reports_dir=smoke_run["reports_dir"], echo=log.append
    )
    assert {r.status for r in results} == {"up-to-date"}
    assert not any("executing" in line for line in log)


def test_every_stage_writes_only_its_own_folder():
    assert len(set(profiles.STAGES.values())) == len(profiles.STAGES)
    for nb in NOTEBOOKS:
        assert nb.stem in profiles.STAGES


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_are_thin_and_end_with_findings(nb):
    """No def/class/for/while in code cells (logic lives in carotidkit, where it is tested); the
    notebook ends with "What we found" and "Next"."""
    cells = json.loads(nb.read_text())["cells"]
    for i, c in enumerate(cells):
        if c["cell_type"] != "code":
            continue
        tree = ast.parse("".join(c["source"]))
        bad = [
            type(n).__name__
            for n in ast.walk(tree)
            if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.For, ast.While))
        ]
        assert not bad, f"{nb.name} cell {i}: {bad}"
        assert "globals()).items()" not in "".join(c["source"]), f"{nb.name} cell {i}: use profiles.notebook_settings"
    markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert "What we found" in markdown and "## Next" in markdown, nb.name


@pytest.mark.notebook
def test_a_notebook_writes_only_its_own_folder(smoke_run):
    """Re-execute 05 and compare every other folder of the run, byte for byte, before and after."""
    from carotidkit import io

    run_dir = smoke_run["run_dir"]
    own = profiles.STAGES["05_survival"]

    def snapshot():
        snap = {p.name: io.tree_digest(p) for p in run_dir.iterdir() if p.is_dir() and p.name not in (own, "_report")}
        snap["<files>"] = sorted(p.name for p in run_dir.iterdir() if p.is_file())
        return snap

    before = snapshot()
    report.run_report(
        "smoke",
        only="05",
        force=True,
        root=ROOT,
        run_dir=run_dir,
        reports_dir=smoke_run["reports_dir"],
        echo=lambda *_: None,
    )
    assert snapshot() == before
    assert (run_dir / own / "summary.json").exists()


@pytest.mark.notebook
def test_every_documented_file_of_the_layout_is_written(smoke_run):
    """The run layout is the contract between notebooks: every file it names exists after a run."""
    from carotidkit.layout import RunLayout

    lay = RunLayout(smoke_run["run_dir"])
    for section in (lay.data, lay.clean, lay.unet, lay.vd, lay.xai, lay.survival):
        missing = [name for name, path in section.files().items() if not path.exists()]
        assert not missing, (section.folder, missing)


def test_every_notebook_has_its_percent_source_and_they_agree():
    """notebooks/src/NN_*.py for every notebook, equal cell for cell (``python tools/nb2py.py --all``
    refreshes them after editing a notebook)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("py2nb", ROOT / "tools" / "py2nb.py")
    py2nb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(py2nb)
    nbs = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    srcs = sorted((ROOT / "notebooks" / "src").glob("*.py"))
    assert [p.stem for p in srcs] == [p.stem for p in nbs]
    for nb_path, src in zip(nbs, srcs):
        want = nbformat.read(nb_path, 4).cells
        got = py2nb.convert(src.read_text()).cells
        assert len(got) == len(want), f"{src.name}: {len(got)} cells, {nb_path.name} has {len(want)}"
        for k, (g, w) in enumerate(zip(got, want)):
            assert (g.cell_type, g.source.strip("\n")) == (w.cell_type, w.source.strip("\n")), f"{src.name} cell {k}"
            assert g.get("metadata", {}).get("tags") == w.get("metadata", {}).get("tags"), f"{src.name} cell {k} tags"
