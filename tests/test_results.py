"""Verdicts read against the seed-to-seed spread of one run (``results.judge_gaps``, ``Study.seed_spread``)."""

import pytest

from lcmae_core import results
from lcmae_core.experiments import SEED_SPREAD_SCALES, SeedSpread, Study

H, F, U = results.HOLDS, results.FAILS, results.UNTESTABLE


@pytest.mark.parametrize("pairs, spread, expected", [
    ([(70.0, 60.0)], 5.0, H),  # better by more than the spread
    ([(62.0, 60.0)], 5.0, U),  # better, but within the noise of one run
    ([(58.0, 60.0)], 5.0, U),  # worse, within the noise
    ([(50.0, 60.0)], 5.0, F),  # worse by more than the spread
    ([(70.0, 60.0), (61.0, 60.0)], 5.0, U),  # one clear, one within: not testable
    ([(70.0, 60.0), (50.0, 60.0)], 5.0, F),  # one clearly wrong: fails
    ([(65.0, 60.0)], 5.0, U),  # equal to the spread is within it
    ([(61.0, 60.0)], None, H),  # no estimate: the sign decides
    ([(59.0, 60.0)], None, F),
])
def test_judge_gaps(pairs, spread, expected):
    assert results.judge_gaps("cpu", pairs, spread) == expected


def test_smoke_scale_judges_nothing_and_one_pair_is_judge_gap():
    assert results.judge_gaps("smoke", [(90.0, 10.0)], 1.0) == U
    assert results.judge_gap("gpu", 90.0, 10.0, 1.0) == H
    assert "spread at this scale 3.5" in results.spread_note(3.5) and results.spread_note(None) == ""


def test_seed_spread_only_trains_at_the_small_scales(tmp_path, monkeypatch):
    assert SEED_SPREAD_SCALES == ("smoke", "cpu")

    def no_training(*a, **k):
        raise AssertionError("seed_spread trained a run at a large scale")

    monkeypatch.setattr(Study, "run", no_training)
    for scale in ("gpu", "paper"):
        assert Study(scale=scale, run_root=str(tmp_path)).seed_spread() == SeedSpread(None, None, {})
        assert Study(scale=scale, run_root=str(tmp_path)).distance_spread(images=None) is None


def test_seed_spread_table_and_maximum():
    s = SeedSpread(4.0, 1.0, {"MAE FT": (60.0, 56.0), "MAE LP": (50.0, 51.0)})
    t = s.table()
    assert list(t.index) == ["MAE FT", "MAE LP"] and list(t["|difference|"]) == [4.0, 1.0]


def test_seed_spread_at_smoke_scale_reuses_the_books_runs(tmp_path, one_thread):
    study = Study(scale="smoke", run_root=str(tmp_path), verbose=False)
    s = study.seed_spread()
    assert set(s.pairs) == {f"{m} {e}" for m in ("MAE", "LC-MAE (a)", "random init") for e in ("FT", "LP")}
    assert s.ft == max(abs(a - b) for k, (a, b) in s.pairs.items() if k.endswith("FT"))
    assert s.lp == max(abs(a - b) for k, (a, b) in s.pairs.items() if k.endswith("LP"))
    # seed 0 is the book's own run: the baseline a notebook asks for is the same run, not retrained
    assert s.pairs["MAE FT"][0] == study.finetune(study.mae()).metrics["top1"]
    names = {p.name for p in tmp_path.iterdir() if p.name.startswith("mae-")}
    assert study.mae().name in names and study.mae(seed=1).name in names and len(names) == 2
    # the attention-distance spread reads the same two MAE runs
    d = study.distance_spread(study.images(8))
    assert set(d) == {"mean", "layer"} and 0 <= d["mean"] <= d["layer"] + 1e-9
    assert {p.name for p in tmp_path.iterdir() if p.name.startswith("mae-")} == names
