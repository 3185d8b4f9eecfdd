"""Atomic writes: the target holds the old content or the whole new one, never a part."""

import json

import pytest

from lcmae_core.atomic import atomic_open, atomic_write_json, atomic_write_text


def test_new_file_appears_whole(tmp_path):
    p = tmp_path / "sub" / "a.json"
    atomic_write_json(p, {"b": 1, "a": [1, 2]})
    assert json.loads(p.read_text()) == {"a": [1, 2], "b": 1}
    assert p.read_text().endswith("\n")


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    p = tmp_path / "a.txt"
    atomic_write_text(p, "old")
    with pytest.raises(RuntimeError):
        with atomic_open(p, "w") as f:
            f.write("half of the new")
            raise RuntimeError("killed")
    assert p.read_text() == "old"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.txt"]


def test_only_whole_file_modes(tmp_path):
    with pytest.raises(ValueError, match="whole files"):
        with atomic_open(tmp_path / "x", "a"):
            pass
