"""Write a notebook's percent-format source (the reverse of ``py2nb.py``):
``python tools/nb2py.py notebooks/05_survival.ipynb notebooks/src/05_survival.py``, or
``python tools/nb2py.py --all`` to refresh ``notebooks/src/`` from every notebook;
``python tools/nb2py.py --params`` first rewrites every notebook's parameters cell from its settings
class (:func:`carotidkit.settings.parameters_cell`), then refreshes the sources.

The notebooks are the source of truth; ``notebooks/src/`` holds one readable, diffable script per
notebook, and ``tests/test_notebooks.py`` fails when a script and its notebook differ.
"""

import json
import sys
from pathlib import Path

import nbformat


def to_percent(nb) -> str:
    out = []
    for c in nb.cells:
        src = c.source.strip("\n")
        if c.cell_type == "markdown":
            out.append("# %% [markdown]\n" + "\n".join(f"# {ln}" if ln else "#" for ln in src.splitlines()))
        else:
            tags = c.get("metadata", {}).get("tags")
            out.append(("# %% tags=" + json.dumps(tags) if tags else "# %%") + "\n" + src)
    return "\n\n".join(out) + "\n"


def write_parameters(nb_path: Path) -> None:
    """Replace the notebook's parameters cell by the one its settings class generates."""
    sys.path.insert(0, str(nb_path.resolve().parents[1]))
    from carotidkit.settings import SETTINGS, parameters_cell

    if nb_path.stem not in SETTINGS:
        return
    nb = nbformat.read(nb_path, 4)
    cell = next(c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", []))
    cell.source = parameters_cell(nb_path.stem)
    nbformat.write(nb, nb_path)


def main(argv):
    root = Path(__file__).resolve().parents[1]
    if argv == ["--params"]:
        for nb in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
            write_parameters(nb)
        argv = ["--all"]
    pairs = (
        [
            (nb, root / "notebooks" / "src" / f"{nb.stem}.py")
            for nb in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
        ]
        if argv == ["--all"]
        else [(Path(argv[0]), Path(argv[1]))]
    )
    for nb_path, py_path in pairs:
        py_path.parent.mkdir(parents=True, exist_ok=True)
        py_path.write_text(to_percent(nbformat.read(nb_path, 4)))
        print(f"{nb_path} -> {py_path}")


if __name__ == "__main__":
    main(sys.argv[1:])
