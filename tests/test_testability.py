"""Choosing a reference scale's recipe (``lcmae_core.testability``): the rule, fed numbers, and one calibration at the
smoke scale, whose preconditions are the verdicts' own."""

import json

import pytest

from lcmae_core import testability


def _row(cost, **met):
    full = {k: met.get(k, False) for k in testability.PRECONDITIONS}
    return {"met": full, "train_s": cost}


ALL = {k: True for k in testability.PRECONDITIONS}


def test_the_rule_takes_the_cheapest_candidate_meeting_every_precondition():
    rows = {"slow": _row(100.0, **ALL), "fast": _row(10.0, **ALL), "partial": _row(1.0, encoder_local=True)}
    assert testability.choose(rows) == ("fast", "the cheapest candidate meeting every precondition in every seed")


def test_without_a_full_candidate_the_rule_takes_the_one_meeting_the_most_and_says_what_it_misses():
    rows = {"a": _row(5.0, decoder_formed=True), "b": _row(50.0, decoder_formed=True, pretraining_helps=True),
            "c": _row(20.0, decoder_formed=True, comparisons_learned=True)}
    chosen, why = testability.choose(rows)
    assert chosen == "c" and "2 of 4" in why and "encoder_local" in why and "pretraining_helps" in why
    assert testability.choose({}) == (None, "no candidate was measured")


def test_an_unknown_candidate_is_one_line():
    with pytest.raises(ValueError, match="unknown candidate 'nope' of the smoke scale; choose from base, 2ep"):
        testability.candidate_study("smoke", "nope")


@pytest.mark.slow
def test_a_calibration_at_the_smoke_scale(tmp_path):
    out = tmp_path / "t.json"
    assert testability.main(["--scale", "smoke", "--seeds", "2", "--out", str(out), "--run-root",
                             str(tmp_path / "runs"), "--jobs", "2", "--n-images", "16"]) == 0
    table = json.loads(out.read_text())
    assert set(table["candidates"]) == {"base", "2ep"} and table["seeds"] == [0, 1]
    for row in table["candidates"].values():
        assert set(row["met"]) == set(testability.PRECONDITIONS) and row["train_s"] > 0
        assert "MAE encoder attention local" in row["text"]["encoder_local"]
        assert len(row["probe"]["mae"]) == 2
    assert table["chosen"] in table["candidates"] and table["why"]
    # the 2-epoch candidate trained its MAE longer: a different run from the base one
    frame = testability.summary(table)
    assert list(frame.columns[:2]) == ["what", "training s"] and frame["chosen"].sum() == 1
