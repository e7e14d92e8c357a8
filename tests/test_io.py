from __future__ import annotations

import numpy as np
import pytest

from carotidkit import io


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    io.write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert io.read_json(target) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_npz_and_json_roundtrip(tmp_path):
    io.write_npz(tmp_path / "a.npz", x=np.arange(5))
    assert np.load(tmp_path / "a.npz")["x"].sum() == 10
    io.write_json(tmp_path / "b.json", {"v": np.float32(1.5), "n": np.int64(3)})
    assert io.read_json(tmp_path / "b.json") == {"v": 1.5, "n": 3}


def test_tree_digest_changes_with_content(tmp_path):
    (tmp_path / "f").write_text("a")
    d1 = io.tree_digest(tmp_path)
    (tmp_path / "f").write_text("b")
    assert io.tree_digest(tmp_path) != d1
    assert io.tree_digest(tmp_path / "missing") == "missing"
