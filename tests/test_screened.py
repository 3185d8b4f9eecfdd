"""A candidate's four preconditions read from the three screens (``testability.screened``): on the runs a
calibration trains, the screens' readings give the calibration's verdicts; a seed that a screen lacks, or read from
other runs than the code plans, is not read."""

from __future__ import annotations

import copy
import os
import sys

import pytest

from lcmae_core import testability

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

import comparison_screen  # noqa: E402
import locality_screen  # noqa: E402
import probe_screen  # noqa: E402


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    """The smoke scale's recipe calibrated at 2 seeds, and the three screens of the same runs (nothing trained again:
    the screens only measure)."""
    tmp = tmp_path_factory.mktemp("screened")
    root = str(tmp / "runs")
    table = testability.calibrate("smoke", root, (0, 1), [testability.recipe_candidate("smoke")], jobs=2,
                                  n_images=testability.N_IMAGES, progress=False)
    outs = {k: str(tmp / f"{k}.json") for k in ("locality", "comparison", "probe")}
    for seed in ("0", "1"):
        common = ["--scale", "smoke", "--seed", seed, "--merge", "--no-train", "--run-root", root]
        assert locality_screen.main([*common, "--only", "recipe", "--out", outs["locality"]]) == 0
        assert comparison_screen.main([*common, "--candidate", "base", "--out", outs["comparison"]]) == 0
        assert probe_screen.main([*common, "--candidate", "base", "--out", outs["probe"]]) == 0
    screens = (testability.read_screen(outs["locality"]), testability.read_comparison_screen(outs["comparison"]),
               testability.read_probe_screen(outs["probe"]))
    return table, screens


def test_the_screens_of_the_calibrations_runs_give_its_verdicts(calibrated):
    table, screens = calibrated
    assert testability.recipe_candidate("smoke") == "base" and testability.recipe_candidate("gpu") == "e80-dec2x"
    reading = testability.screened("smoke", "base", *screens)
    row = table["candidates"]["base"]
    assert reading["seeds"] == [0, 1] and reading["missing"] == {}
    assert reading["met"] == row["met"]
    # the probe's top-1 travels unrounded: the same interval to the letter; the attention readings are rounded
    assert reading["text"]["pretraining_helps"] == row["text"]["pretraining_helps"]
    for k in ("decoder_formed", "encoder_local", "comparisons_learned"):
        assert reading["text"][k].split(":")[0] == row["text"][k].split(":")[0]
    frame = testability.screened_summary(reading)
    assert list(frame.index) == [k.replace("_", " ") for k in testability.PRECONDITIONS]
    assert testability.screened_text(reading, "smoke").startswith("Read from the screens at seeds 0, 1, the smoke "
                                                                  "recipe (base) meets")


def test_a_seed_a_screen_lacks_or_read_from_other_runs_is_not_read(calibrated):
    _, (locality, comparison, probe) = calibrated
    no_probe = testability.screened("smoke", "base", locality, comparison, None)
    assert no_probe["met"] is None and no_probe["missing"] == {0: ["probe"], 1: ["probe"]}
    assert "too few for a paired interval (not screened: seed 0: probe; seed 1: probe)" in \
        testability.screened_text(no_probe, "smoke")
    stale = copy.deepcopy(probe)
    stale["rows"]["seed 1"]["probe_run_names"]["random"] = "linprobe-000000000000"
    one = testability.screened("smoke", "base", locality, comparison, stale)
    assert one["seeds"] == [0] and one["missing"] == {1: ["probe"]} and one["met"] is None
    # another candidate trains its MAEs and its contrastive model longer: those rows are not its runs (the supervised
    # ViT, finetuned from random initialisation, is the same run)
    other = testability.screened("smoke", "2ep", locality, comparison, probe)
    assert other["seeds"] == [] and other["missing"] == {s: ["mae", "probe", "contrastive"] for s in (0, 1)}
    assert testability.screened("smoke", "base", None, None, None) == {
        "candidate": "base", "seeds": [], "missing": {}, "met": None, "text": None}
