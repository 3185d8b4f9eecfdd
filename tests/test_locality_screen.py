"""The locality screen (``bench/locality_screen.py``) at the smoke scale: each lever moves what it names, one seed's
candidates share their initialisation, and every kept snapshot is measured against uniform attention."""

from __future__ import annotations

import json
import os
import sys

from lcmae_core import analysis, configs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import locality_screen  # noqa: E402


def test_the_screen_trains_each_lever_and_measures_every_snapshot(tmp_path):
    out = tmp_path / "screen.json"
    assert locality_screen.main(["--scale", "smoke", "--only", "recipe", "mask0.3", "lr2x", "--jobs", "2",
                                 "--run-root", str(tmp_path / "runs"), "--out", str(out)]) == 0
    table = json.loads(out.read_text())["candidates"]
    cfg = {n: configs.from_dict(json.loads((tmp_path / "runs" / r["run"] / "config.json").read_text()))
           for n, r in table.items()}
    assert cfg["mask0.3"].mask_ratio == 0.3 and cfg["recipe"].mask_ratio == 0.75
    assert cfg["lr2x"].optim.base_lr == 2 * cfg["recipe"].optim.base_lr
    assert cfg["recipe"].data.dataset == "photos"  # the attention pages' MAE, not the digits
    # one seed: every candidate starts from the same initialisation (snapshot 0), then moves from it
    inits = {n: r["snapshots"]["0"]["encoder_distance"] for n, r in table.items()}
    assert inits["recipe"] == inits["mask0.3"] == inits["lr2x"]
    last = {n: r["snapshots"][str(max(map(int, r["snapshots"])))]["encoder_distance"] for n, r in table.items()}
    assert last["lr2x"] != inits["lr2x"]
    assert sorted(map(int, table["lr2x"]["snapshots"])) == list(range(cfg["lr2x"].optim.epochs + 1))
    grid = cfg["recipe"].model.img_size // cfg["recipe"].model.patch_size
    assert table["recipe"]["uniform_distance"] == round(
        float(analysis.uniform_attention_distance(grid, cfg["recipe"].model.patch_size)), 2)
    assert len(inits["recipe"]) == cfg["recipe"].model.depth
    assert all(r["finished"] for r in table.values())
    snap = table["recipe"]["snapshots"]["0"]
    mean = sum(snap["encoder_distance"]) / len(snap["encoder_distance"])
    assert abs(snap["distance_fraction"] - mean / table["recipe"]["uniform_distance"]) < 2e-3


def test_without_training_the_screen_measures_what_the_runs_have_and_skips_the_rest(tmp_path):
    out = tmp_path / "screen.json"
    root = str(tmp_path / "runs")
    locality_screen.main(["--scale", "smoke", "--only", "recipe", "--jobs", "1", "--run-root", root, "--out", str(out)])
    assert locality_screen.main(["--scale", "smoke", "--only", "recipe", "mask0.3", "--no-train", "--run-root", root,
                                 "--out", str(out)]) == 0
    table = json.loads(out.read_text())["candidates"]
    assert list(table) == ["recipe"] and table["recipe"]["finished"]


def test_another_seed_merges_into_the_table_as_its_own_row(tmp_path):
    out = tmp_path / "screen.json"
    root = str(tmp_path / "runs")
    locality_screen.main(["--scale", "smoke", "--only", "recipe", "--jobs", "1", "--run-root", root, "--out", str(out)])
    assert locality_screen.main(["--scale", "smoke", "--only", "recipe", "--seed", "1", "--merge", "--jobs", "1",
                                 "--run-root", root, "--out", str(out)]) == 0
    screen = json.loads(out.read_text())
    table = screen["candidates"]
    assert list(table) == ["recipe", "recipe, seed 1"] and screen["seeds"] == [0, 1]
    assert [r["seed"] for r in table.values()] == [0, 1] and table["recipe"]["run"] != table["recipe, seed 1"]["run"]
    assert table["recipe"]["snapshots"]["0"] != table["recipe, seed 1"]["snapshots"]["0"]  # its own initialisation
    # without --merge the table holds only what this call measured
    locality_screen.main(["--scale", "smoke", "--only", "recipe", "--seed", "1", "--no-train", "--run-root", root,
                          "--out", str(out)])
    assert list(json.loads(out.read_text())["candidates"]) == ["recipe, seed 1"]


def test_the_decoder_rate_lever_moves_the_decoders_rate_only(tmp_path):
    planner: list = []
    for name in ("e80", "e80-dec2x"):
        study, ratio = locality_screen.study_of("smoke", name, 0, str(tmp_path), planner)
        study.attention_mae(mask_ratio=ratio, seed=0)
    base, lever = planner
    assert lever.optim.decoder_lr_scale == 2.0 and base.optim.decoder_lr_scale == 1.0
    assert lever.optim.base_lr == base.optim.base_lr and lever.optim.epochs == base.optim.epochs
    assert configs.run_name(lever) != configs.run_name(base)


def test_the_committed_screen_is_what_the_screen_plans_now(tmp_path):
    """Every row of the committed gpu screen names the run the screen would train now for its lever and seed: a
    change of the gpu recipe (which the screen informs) leaves the pinned screen as it was."""
    screen = json.loads(open(os.path.join(ROOT, "bench", "results", "gpu_locality_screen.json")).read())
    assert screen["candidates"]
    for row, r in screen["candidates"].items():
        lever = row.split(",")[0]
        planner: list = []
        study, ratio = locality_screen.study_of("gpu", lever, r["seed"], str(tmp_path), planner)
        study.attention_mae(mask_ratio=ratio, seed=r["seed"])
        assert configs.run_name(planner[0]) == r["run"], row
