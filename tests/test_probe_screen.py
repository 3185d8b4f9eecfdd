"""The probe screen (``bench/probe_screen.py``) at the smoke scale: it trains the very runs the pretraining gate of a
calibration candidate reads (the accuracy tables' MAE and the linear probes of it and of random initialisation), and
solves the same converged probe on every snapshot the MAE keeps."""

from __future__ import annotations

import json
import os
import sys

import pytest

from lcmae_core import testability

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import probe_screen  # noqa: E402


def _gate_runs(scale, candidate, seed, root):
    """The probe runs a calibration of ``candidate`` trains for the gate at ``seed``: {"mae", "random"}."""
    planner: list = []
    runs = testability.runs_of(testability.candidate_study(scale, candidate, (seed,), root, planner))
    return runs["probes"][seed]


def test_the_screen_trains_the_gates_runs_and_solves_the_same_probe_on_every_snapshot(tmp_path):
    out, root = tmp_path / "screen.json", str(tmp_path / "runs")
    assert probe_screen.main(["--scale", "smoke", "--candidate", "base", "--jobs", "2", "--run-root", root,
                              "--out", str(out)]) == 0
    screen = json.loads(out.read_text())
    assert screen["seeds"] == [0] and list(screen["rows"]) == ["seed 0"]
    row = screen["rows"]["seed 0"]
    gate = _gate_runs("smoke", "base", 0, root)
    assert row["run"] == gate["mae"].config["pretrain"] and gate["random"].config["pretrain"] is None
    assert row["finished"] and row["candidate"] == "base"
    # a snapshot per epoch, the first the MAE's initialisation
    assert sorted(map(int, row["snapshots"])) == list(range(row["epochs"] + 1))
    # the probe solved here on the last snapshot and on random initialisation is the probe the runs solved
    metrics = {k: json.loads((tmp_path / "runs" / r.name / "metrics.json").read_text()) for k, r in gate.items()}
    assert row["snapshots"][str(row["epochs"])]["top1"] == round(metrics["mae"]["top1"], 2)
    assert row["random"]["top1"] == round(metrics["random"]["top1"], 2)
    assert row["snapshots"][str(row["epochs"])]["knn_top1"] == round(metrics["mae"]["knn_top1"], 2)
    assert row["probe_runs"] == {"mae": metrics["mae"]["top1"], "random": metrics["random"]["top1"]}
    assert row["probe_run_names"] == {k: r.name for k, r in gate.items()}
    assert row["gain_at_end_pt"] == round(row["snapshots"][str(row["epochs"])]["top1"] - row["random"]["top1"], 2)
    frame = testability.probe_summary(testability.read_probe_screen(str(out)))
    assert list(frame.index) == ["seed 0"]
    assert frame.loc["seed 0", "gain at the end, pt"] == f"{row['gain_at_end_pt']:+.1f}"


def test_a_second_seed_merges_and_nothing_untrained_is_measured(tmp_path):
    out, root = tmp_path / "screen.json", str(tmp_path / "runs")
    probe_screen.main(["--scale", "smoke", "--jobs", "1", "--run-root", root, "--out", str(out)])
    assert probe_screen.main(["--scale", "smoke", "--seed", "1", "--no-train", "--merge", "--run-root", root,
                              "--out", str(out)]) == 0
    assert list(json.loads(out.read_text())["rows"]) == ["seed 0"]
    probe_screen.main(["--scale", "smoke", "--seed", "1", "--merge", "--jobs", "2", "--run-root", root,
                       "--out", str(out)])
    screen = json.loads(out.read_text())
    assert screen["seeds"] == [0, 1] and list(screen["rows"]) == ["seed 0", "seed 1"]
    assert screen["rows"]["seed 1"]["run"] != screen["rows"]["seed 0"]["run"]
    assert screen["rows"]["seed 1"]["candidate"] == "the recipe"


def _row(seed, by_epoch, random, finished=True):
    return {"seed": seed, "candidate": "e80", "epochs": 20, "finished": finished,
            "random": {"top1": random, "knn_top1": 30.0, "C": 1.0},
            "snapshots": {str(e): {"top1": v, "knn_top1": 40.0, "C": 10.0 ** e} for e, v in by_epoch.items()}}


def test_the_summary_and_sentence_read_the_last_kept_epoch_against_random_init(tmp_path):
    screen = {"scale": "gpu", "seeds": [0, 1],
              "rows": {"seed 0": _row(0, {0: 40.0, 10: 52.5, 20: 55.0}, 50.0),
                       "seed 1": _row(1, {0: 41.0, 10: 47.0}, 48.0, finished=False)}}
    frame = testability.probe_summary(screen)
    assert frame.loc["seed 0", "gain at the end, pt"] == "+5.0"
    assert frame.loc["seed 1", "gain at the end, pt"] == "-1.0"  # epoch 10 is seed 1's last kept one
    assert frame.loc["seed 1", "epochs"] == "10 of 20 (unfinished)"
    assert frame.loc["seed 0", "MAE probe top-1 % by epoch"] == "0: 40.0, 10: 52.5, 20: 55.0"
    assert frame.loc["seed 1", "probe C at the end (random init)"] == "1e+10 (1)"  # the last kept epoch's
    text = testability.probe_text(screen, "gpu")
    assert "2 seeds screened (seeds 0, 1)" in text and "in 1 of them (+5.0, -1.0 pt)" in text
    assert "bench/probe_screen.py" in testability.probe_text(None, "gpu")


def test_reading_a_missing_or_foreign_probe_screen(tmp_path):
    assert testability.read_probe_screen(str(tmp_path / "none.json")) is None
    (tmp_path / "bad.json").write_text(json.dumps({"rows": {"seed 0": {"snapshots": {}}}}))
    with pytest.raises(ValueError, match="not a probe screen; rewrite it with bench/probe_screen.py"):
        testability.read_probe_screen(str(tmp_path / "bad.json"))


def test_a_lars_probe_is_refused_with_one_line(tmp_path):
    config = dict(_gate_runs("smoke", "base", 0, str(tmp_path))["random"].config, probe="lars")
    with pytest.raises(ValueError, match="solves the converged probe; this scale's probe is 'lars'"):
        probe_screen.solve_probe(config, None, None)


def test_the_committed_screen_read_the_runs_its_candidate_trains_for_the_gate():
    """The committed screen says it read the runs the calibration trains for the gate; when the recipe changes, this
    fails and the screen is stale (run bench/probe_screen.py again)."""
    screen = testability.read_probe_screen(testability.probe_screen_path("gpu"))
    if screen is None:
        pytest.skip("no probe screen of the gpu scale is committed")
    for name, row in screen["rows"].items():
        candidate = None if row["candidate"] == "the recipe" else row["candidate"]
        planned = probe_screen.planned_runs(probe_screen.study_of("gpu", candidate, row["seed"], None, "cpu", []),
                                            row["seed"])
        assert row["run"] == planned["mae"].name, f"{name} is stale: rerun bench/probe_screen.py"
        assert row["probe_run_names"] == {"mae": planned["probe_mae"].name, "random": planned["probe_random"].name}, \
            f"{name}'s probes are stale: rerun bench/probe_screen.py"
        last = row["snapshots"][str(max(map(int, row["snapshots"])))]
        assert row["gain_at_end_pt"] == round(last["top1"] - row["random"]["top1"], 2)
        if row["finished"]:
            assert round(row["probe_runs"]["mae"], 2) == last["top1"]
            assert round(row["probe_runs"]["random"], 2) == row["random"]["top1"]
