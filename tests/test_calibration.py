"""The cpu scale's calibration: the declared rule, the table the script writes, and the book's recipe against it."""

import copy
import json
import os

import pytest

from lcmae_core import calibration, configs, plan, scales, verdicts


def row(enc, enc_init, dec1, dec1_init, dec_entropy1, cost, n=144):
    return {"encoder_entropy": enc, "encoder_entropy_init": enc_init, "decoder_distance": [dec1, 20.0],
            "decoder_distance_init": [dec1_init, 20.0], "decoder_entropy": [dec_entropy1, 0.9],
            "formed_entropy": verdicts.formed_entropy(n), "train_cpu_time_s": cost}


FORMED = verdicts.formed_entropy(144)
LOCAL = [FORMED - 0.05] * 4
FLAT = [0.95] * 4
INIT = [0.99] * 4


def test_the_rule_takes_the_cheapest_candidate_where_both_mechanisms_formed():
    rows = {"cheap-decoder-only": row(FLAT, INIT, 10.0, 20.0, 0.7, 50),
            "both-dear": row(LOCAL, INIT, 10.0, 20.0, 0.7, 300),
            "both-cheaper": row(LOCAL, INIT, 17.0, 20.0, 0.7, 200)}
    assert calibration.choose(rows)[0] == "both-cheaper"
    # the margin: an encoder at the threshold itself, or one layer above it, is not local
    at = row([FORMED] * 4, INIT, 10.0, 20.0, 0.7, 10)
    one_layer = row(LOCAL[:3] + [FORMED + 0.01], INIT, 10.0, 20.0, 0.7, 10)
    assert not calibration.passes(at)["encoder_formed"] and not calibration.passes(one_layer)["encoder_formed"]
    # entropy below the threshold but not below the random-init model's is not formed either
    assert not calibration.passes(row(LOCAL, LOCAL, 10.0, 20.0, 0.7, 10))["encoder_formed"]


def test_without_a_local_encoder_the_cheapest_positional_decoder_is_chosen_and_said_so():
    rows = {"a": row(FLAT, INIT, 10.0, 20.0, 0.7, 300), "b": row(FLAT, INIT, 17.9, 20.0, 0.7, 100),
            "c": row(FLAT, INIT, 18.5, 20.0, 0.7, 50),  # 0.925 of random init: not local enough
            "d": row(FLAT, INIT, 10.0, 20.0, FORMED + 0.01, 20)}  # local but flat: not formed
    name, why = calibration.choose(rows)
    assert name == "b" and "no candidate's encoder" in why
    assert calibration.choose({"c": rows["c"], "d": rows["d"]}) == (None, "no candidate formed either mechanism")


def test_a_missing_or_foreign_table_is_a_one_line_error_naming_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m lcmae_core.calibration --out"):
        calibration.read_table(str(tmp_path / "none.json"))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"candidates": {}}))
    with pytest.raises(ValueError, match="not a calibration table"):
        calibration.read_table(str(bad))


def test_the_smoke_calibration_trains_measures_and_writes_its_table(tmp_path):
    out = tmp_path / "table.json"
    rc = calibration.main(["--scale", "smoke", "--out", str(out), "--run-root", str(tmp_path / "runs"),
                           "--n-images", "8"])
    assert rc == 0
    table = calibration.read_table(str(out))
    assert set(table["candidates"]) == set(scales.SCALES["smoke"].calibration_candidates)
    for r in table["candidates"].values():
        depth = r["config"]["model"]["depth"]
        ddepth = r["config"]["model"]["decoder_depth"]
        assert len(r["encoder_entropy"]) == len(r["encoder_entropy_init"]) == depth
        assert len(r["decoder_s_attn"]) == len(r["decoder_distance"]) == ddepth
        assert all(0 < v <= 1 for v in r["encoder_entropy"] + r["decoder_entropy"])
        assert r["train_cpu_time_s"] > 0 and r["grid"] ** 2 == r["n_keys"]
        assert r["config"]["data"]["dataset"] == "photos"
    frame = calibration.summary(table)
    assert list(frame.index) == sorted(table["candidates"], key=lambda n: table["candidates"][n]["train_cpu_time_s"])


def test_the_committed_table_chose_what_the_book_trains():
    """bench/results/cpu_scale_calibration.json is the script's output; the book's attention recipe must be its
    chosen candidate (change one, rerun the other)."""
    path = calibration.default_table_path()
    if not os.path.exists(path):
        pytest.fail(f"{path} is missing: run python -m lcmae_core.calibration --out {path} --jobs 2")
    table = calibration.read_table(path)
    ok, text = calibration.recipe_agrees(table)
    assert ok, text
    assert set(table["candidates"]) == set(scales.SCALES["cpu"].calibration_candidates)
    # and the check can fail: a table that chose other epochs disagrees, naming the field
    other = copy.deepcopy(table)
    other["candidates"][other["chosen"]]["config"]["optim"]["epochs"] += 1
    ok, text = calibration.recipe_agrees(other)
    assert not ok and "optim.epochs" in text


def test_the_attention_study_trains_on_photos_and_measures_held_out_crops():
    from lcmae_core.experiments import Study

    study = Study(scale="cpu", verbose=False)
    a = study.for_attention()
    cfg = a.config("mae")
    assert cfg.data.dataset == "photos" and cfg.model.img_size == scales.SCALES["cpu"].attention["model.img_size"]
    assert a.for_attention() is a  # idempotent
    assert study.config("mae").data.dataset == "mnist5k"  # the accuracy pages keep the digits
    # the supervised model of the attention pages learns the photos' labelled twin
    planner = []
    a_plan = Study(scale="cpu", verbose=False, planner=planner).for_attention()
    a_plan.supervised(seed=1)
    assert planner[-1].data.dataset == "photo_ids" and planner[-1].pretrain is None and planner[-1].seed == 1
    # the blocks of Table 3 on the digits stop at 5 patches; the attention pages' 12x12 grid keeps all four
    assert study.ae_block_multiples == (1, 3, 5) and a.ae_block_multiples == (1, 3, 5, 7)
    # a dataset chosen by the caller is kept
    assert Study(scale="cpu", dataset="mnist5k", verbose=False).for_attention().config("mae").data.dataset == "mnist5k"
    # the gpu and paper scales are their own attention studies
    assert Study(scale="cifar", verbose=False).for_attention().config("mae").data.dataset == "cifar10"
    assert Study(scale="gpu", verbose=False).for_attention().config("mae").data.dataset == "photos"  # all pages


def test_the_glued_sentences_come_from_the_numbers():
    a = {**row(LOCAL, INIT, 10.0, 20.0, 0.7, 200), "what": "a", "encoder_distance": [10.0] * 4,
         "encoder_distance_init": [10.0] * 4, "decoder_entropy": [0.7, 0.8, 0.95, 0.99], "encoder_formed": True,
         "decoder_layer1_positional": True}
    b = {**a, "encoder_distance": [11.0] * 4, "decoder_entropy": [0.8, 0.7, 0.8, 0.8], "encoder_formed": False}
    table = {"candidates": {"a": a, "b": b}, "chosen": "a", "why": "the rule"}
    choice = calibration.choice_text(table)
    assert "Of 2 candidates, 1 formed encoder attention" in choice and "chose a" in choice
    assert "2 of its 4 decoder layers formed" in choice and "0.500 of the random-init" in choice
    trend = calibration.trend_text(table)
    assert "In 1 of 2 candidates the first decoder layer was the most concentrated" in trend
    assert "in 1 every decoder layer formed" in trend and "within 10%" in trend
    none = calibration.choice_text({**table, "chosen": None, "why": "nothing formed"})
    assert none.endswith("no recipe was chosen: nothing formed.")


# ------------------------------------------------------------------------------------------------------------
# the build's budget: priced from the runs' own metrics
def _fake_store(root, names, seconds):
    for n in names:
        os.makedirs(os.path.join(root, n), exist_ok=True)
        with open(os.path.join(root, n, "metrics.json"), "w") as f:
            json.dump({"train_cpu_time_s": seconds}, f)


def test_the_budget_prices_each_page_and_cut_from_the_stores(tmp_path):
    from lcmae_core import budget

    planned = plan.plan_by_page("smoke")
    names = [configs.run_name(c) for _, c in planned]
    assert len(names) == len(set(names)) and names
    _fake_store(tmp_path / "now", names[1:], 2.0)  # the first run is missing from every store
    table = budget.budget_table([str(tmp_path / "now")], "smoke")
    assert table["runs"] == len(names) and table["total_core_s"] == pytest.approx(2.0 * (len(names) - 1))
    assert sum(len(p["missing"]) for p in table["pages"]) == 1
    cuts = {c["cut"]: c for c in table["cuts"]}
    assert set(cuts) == set(budget.CUTS)
    # nothing of the recipes before the cuts was measured here: they are missing, not guessed (at the smoke scale
    # Fig. 6 trains every ratio, so its "cuts" price runs the build plans)
    unplanned = [c for c in cuts.values() if not set(c["run_names_before"]) & set(names)]
    assert {c["cut"] for c in unplanned} >= {"digits-5ep", "simclr-4ep", "supervised-5ep"}
    assert all(c["core_s_before"] == 0 and len(c["missing"]) >= c["runs_before"] > 0 for c in unplanned)
    # a second store with the runs before the cuts prices them; a cut that dropped its runs saves them all
    before = [n for c in cuts.values() for n in c["run_names_before"]]
    _fake_store(tmp_path / "before", before, 5.0)
    table = budget.budget_table([str(tmp_path / "now"), str(tmp_path / "before")], "smoke")
    simclr = next(c for c in table["cuts"] if c["cut"] == "simclr-4ep")
    assert simclr["runs_now"] == simclr["runs_before"] > 0
    assert simclr["saved_core_s"] == pytest.approx(3.0 * simclr["runs_before"])  # 5 s before, 2 s now
    fig6 = next(c for c in table["cuts"] if c["cut"] == "fig6-0.9")
    assert fig6["runs_now"] == 0 and fig6["core_s_before"] > 0
    assert "not in the stores measured" in budget.budget_text(table)
    assert budget.plan_agrees(table, "smoke")[0] is True
    table["pages"][0]["run_names"] = ["mae-000000000000"]
    ok, text = budget.plan_agrees(table, "smoke")
    assert ok is False and "python -m lcmae_core.budget" in text


def test_the_budget_keeps_an_earlier_tables_cuts_only_for_the_same_runs(tmp_path):
    from lcmae_core import budget

    planned = plan.plan_by_page("smoke")
    names = [configs.run_name(c) for _, c in planned]
    _fake_store(tmp_path / "now", names, 2.0)  # the build's runs, none of the recipes before the cuts
    fresh = budget.budget_table([str(tmp_path / "now")], "smoke")
    simclr = next(c for c in fresh["cuts"] if c["cut"] == "simclr-4ep")
    assert simclr["missing"] and not simclr.get("kept_from_earlier_table")
    earlier = {"cuts": [{**simclr, "missing": [], "core_s_before": 50.0, "core_s_now": 20.0, "saved_core_s": 30.0}]}
    kept = budget.budget_table([str(tmp_path / "now")], "smoke", earlier)
    row = next(c for c in kept["cuts"] if c["cut"] == "simclr-4ep")
    assert row["kept_from_earlier_table"] and row["saved_core_s"] == 30.0 and not row["missing"]
    assert "measured on an earlier build" in budget.budget_text(kept)
    # a cut whose runs changed since (other config hashes) is priced afresh, never taken from the old table
    earlier["cuts"][0]["run_names_before"] = ["simclr-000000000000"]
    again = next(c for c in budget.budget_table([str(tmp_path / "now")], "smoke", earlier)["cuts"]
                 if c["cut"] == "simclr-4ep")
    assert again["missing"] and not again.get("kept_from_earlier_table")


def test_the_committed_budget_prices_the_runs_the_build_plans():
    from lcmae_core import budget

    table = budget.read_table()
    ok, text = budget.plan_agrees(table, "cpu")
    assert ok, text
    assert not any(p["missing"] for p in table["pages"]) and not any(c["missing"] for c in table["cuts"])
    # the cuts are real: each one saved time, measured
    assert all(c["saved_core_s"] > 0 for c in table["cuts"])


def test_the_budget_cli_names_a_missing_store(tmp_path, capsys):
    from lcmae_core import budget

    assert budget.main(["--runs", str(tmp_path / "nope"), "--out", str(tmp_path / "b.json")]) == 2
    assert "no run store at" in capsys.readouterr().err
