"""Packaging rules: pins agree between pyproject and environment.yml; `import carotidkit` stays light."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pins_pyproject():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return dict(d.split("==") for d in deps)


def _pins_env():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return dict(d.split("==") for d in pip if "==" in d)


def test_every_dependency_is_pinned_exactly():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert all("==" in d for d in deps), [d for d in deps if "==" not in d]
    assert _pins_pyproject()["torch"] == "2.13.0"  # the local CPU wheel; anything looser pulls CUDA


def test_environment_yml_has_the_same_pins_as_pyproject():
    assert _pins_env() == _pins_pyproject()


def test_environment_yml_python_matches_requires_python():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]


HEAVY_BY_DESIGN = ("carotidkit.segment", "carotidkit.vd", "carotidkit.xai")


def test_import_carotidkit_is_light():
    """`import carotidkit` (and every module outside the model packages) never loads TF/torch."""
    code = (
        "import sys, pkgutil, importlib, carotidkit\n"
        "light = [m.name for m in pkgutil.walk_packages(carotidkit.__path__, 'carotidkit.')\n"
        f"         if not m.name.startswith({HEAVY_BY_DESIGN!r}) and m.name != 'carotidkit.__main__']\n"
        "for name in light: importlib.import_module(name)\n"
        "heavy = [m for m in ('tensorflow', 'torch', 'keras', 'lifelines', 'shap', 'captum')"
        " if m in sys.modules]\n"
        "print(len(light), heavy); sys.exit(1 if heavy else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_makefile_documents_the_entry_points():
    mk = (ROOT / "Makefile").read_text()
    for target in ("setup:", "report:", "test:", "bench:", "clean:"):
        assert target in mk
    readme = (ROOT / "README.md").read_text()
    assert "make report" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_loaders_do_not_import_the_simulator():
    code = (
        "import sys, carotidkit.data, carotidkit.data.prepare\n"
        "sys.exit(1 if any(m.startswith('carotidkit.synth') for m in sys.modules) else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_fork_only_multiprocessing():
    """Workshop laptops on macOS/Windows have no fork: every pool uses spawn."""
    for p in (ROOT / "carotidkit").rglob("*.py"):
        assert 'get_context("fork")' not in p.read_text(), p


def test_license_is_an_spdx_string():
    """setuptools >= 77 warns on every install about a TOML-table license (seen in make setup)."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert isinstance(project["project"]["license"], str)
    assert any(r.startswith("setuptools>=77") for r in project["build-system"]["requires"])


def test_data_and_clean_do_not_import_each_other():
    """Generic image helpers live in carotidkit.imaging: the loaders (data) never import the
    cleaning stage, and imaging imports neither (the import cycle issue 20 found is gone)."""
    import ast

    root = Path(__file__).resolve().parents[1] / "carotidkit"

    def imported(path):
        mods = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                mods.add(("." * node.level) + (node.module or ""))
            elif isinstance(node, ast.Import):
                mods.update(a.name for a in node.names)
        return mods

    for f in (root / "data").glob("*.py"):
        assert not any(m.lstrip(".").startswith("clean") or "carotidkit.clean" in m for m in imported(f)), f.name
    img = imported(root / "imaging.py")
    assert not any(m.lstrip(".").split(".")[0] in ("data", "clean") for m in img), img
