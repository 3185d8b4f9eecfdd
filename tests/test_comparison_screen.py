"""The comparison screen (``bench/comparison_screen.py``) at the smoke scale: it trains the very runs a calibration
candidate trains for Fig. 5's contrastive and supervised models, and measures each kept snapshot beside the random-init
twin the verdict compares with."""

from __future__ import annotations

import json
import os
import shutil
import sys

from lcmae_core import testability

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import comparison_screen  # noqa: E402
import pytest  # noqa: E402


def _calibration_runs(scale, candidate, seed, root):
    """The names a calibration of ``candidate`` gives Fig. 5's comparison models at ``seed``."""
    planner: list = []
    runs = testability.runs_of(testability.candidate_study(scale, candidate, (seed,), root, planner))
    return {k: runs[k][seed].name for k in ("contrastive", "supervised")}


@pytest.fixture(scope="module")
def seed0(tmp_path_factory):
    """The screen of the smoke recipe (candidate base) at seed 0, trained into a fresh run store: (screen, store).
    The second test merges seed 1 into a copy of it, in the same store."""
    tmp = tmp_path_factory.mktemp("comparison")
    out, root = tmp / "screen.json", tmp / "runs"
    assert comparison_screen.main(["--scale", "smoke", "--candidate", "base", "--jobs", "2", "--run-root", str(root),
                                   "--out", str(out)]) == 0
    return out, root


def test_the_screen_trains_the_calibrations_runs_and_measures_them_beside_their_init(seed0):
    out, root = seed0
    screen = json.loads(out.read_text())
    rows = screen["rows"]
    assert list(rows) == ["contrastive, seed 0", "supervised, seed 0"] and screen["seeds"] == [0]
    names = _calibration_runs("smoke", "base", 0, str(root))
    assert rows["contrastive, seed 0"]["run"] == names["contrastive"]
    assert rows["supervised, seed 0"]["run"] == names["supervised"]
    con, sup = rows["contrastive, seed 0"], rows["supervised, seed 0"]
    # the contrastive run keeps a snapshot per epoch, the first its initialisation, which is the random-init twin
    assert sorted(map(int, con["snapshots"])) == list(range(con["epochs"] + 1))
    assert con["snapshots"]["0"]["entropy"] == con["init"]["entropy"]
    assert all(r["finished"] for r in rows.values())
    depth = len(con["init"]["entropy"])
    assert all(len(v["entropy"]) == len(v["distance"]) == depth for v in con["snapshots"].values())
    # the supervised run keeps no snapshots: its last weights are read, with its top-1 and the raw-pixel baselines
    assert list(sup["snapshots"]) == [str(sup["epochs"])]
    metrics = json.loads((root / sup["run"] / "metrics.json").read_text())
    assert sup["top1"] == metrics["top1"] and set(sup["raw_pixels"]) == {"knn", "logreg"}
    assert "top1" not in con
    frame = testability.comparison_summary(testability.read_comparison_screen(str(out)))
    assert list(frame.index) == list(rows)


def test_a_second_seed_merges_and_nothing_untrained_is_measured(seed0, tmp_path):
    out, root = tmp_path / "screen.json", str(seed0[1])
    shutil.copyfile(seed0[0], out)  # seed 0's screen (the default candidate is the recipe, base), trained
    assert comparison_screen.main(["--scale", "smoke", "--seed", "1", "--no-train", "--merge", "--run-root", root,
                                   "--out", str(out)]) == 0
    assert list(json.loads(out.read_text())["rows"]) == ["contrastive, seed 0", "supervised, seed 0"]
    comparison_screen.main(["--scale", "smoke", "--seed", "1", "--merge", "--jobs", "2", "--run-root", root,
                            "--out", str(out)])
    screen = json.loads(out.read_text())
    assert screen["seeds"] == [0, 1] and len(screen["rows"]) == 4
    assert screen["rows"]["contrastive, seed 1"]["run"] != screen["rows"]["contrastive, seed 0"]["run"]
