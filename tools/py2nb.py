"""Build a notebook (no outputs) from a percent-format script: ``python tools/py2nb.py src.py out.ipynb``.

Cells start with ``# %%`` (code), ``# %% [markdown]`` (markdown, lines prefixed by ``# ``) or
``# %% tags=["parameters"]`` (the papermill parameters cell).
"""

import json
import re
import sys

import nbformat


def convert(src: str):
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    }
    blocks = re.split(r"^# %%", src, flags=re.M)
    for block in blocks[1:]:
        header, _, body = block.partition("\n")
        body = body.strip("\n")
        if "[markdown]" in header:
            text = "\n".join(ln[2:] if ln.startswith("# ") else ln.lstrip("#") for ln in body.splitlines())
            nb.cells.append(nbformat.v4.new_markdown_cell(text))
        else:
            cell = nbformat.v4.new_code_cell(body)
            m = re.search(r"tags=(\[.*\])", header)
            if m:
                cell.metadata["tags"] = json.loads(m.group(1))
            nb.cells.append(cell)
    for c in nb.cells:
        c.pop("id", None)
    nb.nbformat_minor = 4
    return nb


if __name__ == "__main__":
    nb = convert(open(sys.argv[1]).read())
    nbformat.write(nb, sys.argv[2])
