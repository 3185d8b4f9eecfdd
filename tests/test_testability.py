"""Choosing a reference scale's recipe (``lcmae_core.testability``): the rule, fed numbers, and one calibration at the
smoke scale, whose preconditions are the verdicts' own."""

import json

import pytest

from lcmae_core import projection, testability


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


def test_a_candidates_changes_reach_every_run_it_names_the_attention_pages_too():
    """At a scale whose attention pages have a recipe of their own (smoke, cpu), a candidate's per-family changes stand
    above that recipe's, as its other changes do: "2 pretraining epochs" lengthens the attention pages' MAE and the
    contrastive model, not only the accuracy tables' MAE; the supervised ViT, finetuned from random initialisation, is
    the same run."""
    planned = {}
    for name in ("base", "2ep"):
        study = testability.candidate_study("smoke", name, (0,), None, [])
        runs = testability.runs_of(study)
        planned[name] = {"attention": runs["mae"][0], "contrastive": runs["contrastive"][0],
                         "supervised": runs["supervised"][0], "tables": study.mae(seed=0)}
    for k in ("attention", "contrastive", "tables"):
        assert planned["base"][k].config["optim"]["epochs"] == 1 and planned["2ep"][k].config["optim"]["epochs"] == 2
        assert planned["base"][k].name != planned["2ep"][k].name
    # the attention recipe still applies beneath the candidate's change
    assert planned["2ep"]["attention"].config["data"]["dataset"] == "photos"
    assert planned["base"]["supervised"].name == planned["2ep"]["supervised"].name


def test_an_unknown_candidate_is_one_line():
    with pytest.raises(ValueError, match="unknown candidate 'nope' of the smoke scale; choose from base, 2ep"):
        testability.candidate_study("smoke", "nope")


def test_the_projection_prices_the_runs_the_calibration_did_not_train_at_its_pace():
    from lcmae_core import configs, plan
    planned = plan.plan_runs("smoke")
    done = planned[0]
    # one run of the record measured (cost c0 in s0 seconds) and one that the record does not plan
    c0 = plan.cost(done)
    table = {"scale": "smoke", "candidates": {"a": {"runs": {
        configs.run_name(done): {"family": done.family, "seconds": 3.0 * c0, "cost": c0},
        "mae-000000000000": {"family": "mae", "seconds": 3.0 * 2.0, "cost": 2.0}}}}}
    got = projection.project(table, jobs=4)
    rest = sum(plan.cost(c) for c in planned[1:])
    assert got["planned_runs"] == len(planned) and got["already_trained"] == 1 and got["pace_s_per_cost"] == 3.0
    assert got["train_s"] == pytest.approx(3.0 * rest, abs=0.1) and got["wall_s"] == pytest.approx(got["train_s"] / 4,
                                                                                                     abs=0.1)
    with pytest.raises(ValueError, match="calibrate again"):
        projection.project({"scale": "smoke", "candidates": {"a": {"met": {}}}})


def test_a_record_starts_only_where_its_projection_fits_the_time_left(tmp_path, capsys):
    projected = {"wall_s": 100.0, "jobs": 4}
    ok, why = projection.fits(projected, 100.0 * projection.PROJECTION_MARGIN)
    assert ok and "fits" in why
    ok, why = projection.fits(projected, 100.0 * projection.PROJECTION_MARGIN - 1)
    assert not ok and why.startswith("stopped: the record's projected training (100 s over 4 workers")
    assert "the calibration is kept" in why
    # the command line: exit 3 and the one line, or 0
    from lcmae_core import configs, plan
    done = plan.plan_runs("smoke")[0]
    table = {"scale": "smoke", "chosen": "a", "why": "", "seeds": [0, 1], "candidates": {"a": {"runs": {
        configs.run_name(done): {"family": done.family, "seconds": 10.0, "cost": plan.cost(done)}}}}}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(table))
    wall = projection.project(table, jobs=2)["wall_s"]
    args = ["--scale", "smoke", "--project", "--jobs", "2", "--out", str(path), "--within"]
    assert testability.main(args + [str(wall * projection.PROJECTION_MARGIN * 0.9)]) == 3
    assert "would not end within" in capsys.readouterr().err
    assert testability.main(args + [str(wall * projection.PROJECTION_MARGIN * 1.1)]) == 0
    assert "fits the" in capsys.readouterr().out


def test_the_next_part_of_a_record_is_what_fits_the_time_left(tmp_path, capsys):
    """A record made by parts (``next_part``): the pages not held yet whose projected training fits, cheapest first;
    none where not even the cheapest page that trains fits; the command line prints them on a last line."""
    from lcmae_core import configs, plan
    from lcmae_core.batch import LAST, list_notebooks
    book = [n for n in list_notebooks() if n not in LAST]  # the closing pages go with the part that completes it
    done = plan.plan_runs("smoke")[0]
    table = {"scale": "smoke", "chosen": "a", "why": "", "seeds": [0, 1], "candidates": {"a": {"runs": {
        configs.run_name(done): {"family": done.family, "seconds": 10.0, "cost": plan.cost(done)}}}}}
    alone = {n: projection.project(table, "smoke", 2, [n])["wall_s"] for n in book}
    m = projection.PROJECTION_MARGIN
    part, got = projection.next_part(table, "smoke", 2, 1e9)
    assert part == book and got["wall_s"] == pytest.approx(projection.project(table, "smoke", 2)["wall_s"])
    cheapest = min((n for n in alone if alone[n] > 0), key=alone.get)
    part, got = projection.next_part(table, "smoke", 2, m * alone[cheapest])
    assert cheapest in part and got["wall_s"] <= alone[cheapest] + 1e-6  # with it, only pages that add no training
    nearest = min((n for n in alone if n not in part), key=alone.get)  # the next page would not have fitted
    assert not projection.fits(projection.project(table, "smoke", 2, [*part, nearest]), m * alone[cheapest])[0]
    assert projection.next_part(table, "smoke", 2, 0.5 * m * alone[cheapest]) == ([], None)
    part, _ = projection.next_part(table, "smoke", 2, 1e9, held=[cheapest])
    assert cheapest not in part and len(part) == len(alone) - 1
    # the command line: the pages on a last line; a record's pages are held; every page held stops
    path = tmp_path / "t.json"
    path.write_text(json.dumps(table))
    args = ["--scale", "smoke", "--project", "--jobs", "2", "--out", str(path), "--next-part"]
    assert testability.main(args + [str(tmp_path / "none"), "--within", "1e9"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "next part: " + " ".join(book)
    rec = tmp_path / "rec"
    rec.mkdir()
    prov = {"format": 1, "name": "smoke", "scale": "smoke", "run_names": [], "pages": {cheapest: {}}}
    (rec / "provenance.json").write_text(json.dumps(prov))
    assert testability.main(args + [str(rec), "--within", "1e9"]) == 0
    assert cheapest not in capsys.readouterr().out.strip().splitlines()[-1].split()
    (rec / "provenance.json").write_text(json.dumps({**prov, "pages": {n: {} for n in book}}))
    assert testability.main(args + [str(rec), "--within", "1e9"]) == 3
    assert "nothing left to record" in capsys.readouterr().err
    assert testability.main(args + [str(tmp_path / "none"), "--within", str(0.5 * m * alone[cheapest])]) == 3
    assert "stopped: no page left to record" in capsys.readouterr().err
    assert testability.main(args + [str(rec)]) == 2
    assert "--next-part needs --within" in capsys.readouterr().err


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
        assert row["runs"] and sum(r["seconds"] for r in row["runs"].values()) == pytest.approx(row["train_s"], abs=0.1)
        # the runs trained for epochs (not the solved probes) say what their first epoch took beside the others
        timed = [r for r in row["runs"].values() if "first_epoch_s" in r]
        assert timed and all(r["family"] != "linprobe" and r["epoch_s"] > 0 for r in timed)
    assert table["chosen"] in table["candidates"] and table["why"]
    # the 2-epoch candidate trained its MAE longer: a different run from the base one
    frame = testability.summary(table)
    assert list(frame.columns[:2]) == ["what", "training s"] and frame["chosen"].sum() == 1


def _lever(fractions, last_distance, decoder_entropy, finished=True, epochs=40):
    snaps = {str(e): {"distance_fraction": f, "encoder_distance": [25.0, 25.0] if e == 0 else last_distance,
                      "decoder_entropy": decoder_entropy} for e, f in fractions.items()}
    return {"what": "w", "epochs": epochs, "finished": finished, "local_fraction": 0.9, "formed_entropy": 0.86,
            "snapshots": snaps}


def test_the_screen_summary_reads_locality_and_formation_at_the_last_epoch(tmp_path):
    screen = {"seed": 0, "n_images": 128, "candidates": {
        "long": _lever({0: 1.0, 40: 0.88}, [22.0, 22.0], [0.5, 0.7]),
        "near": _lever({0: 1.0, 40: 0.912}, [22.8, 22.8], [0.5, 0.9]),
        # below 0.9 of uniform but not below its own initialisation: not local
        "flat": _lever({0: 0.85, 10: 0.86}, [25.5, 25.5], [0.9, 0.9], finished=False, epochs=80)}}
    frame = testability.screen_summary(screen)
    assert frame["encoder local at the end"].tolist() == ["yes", "no", "no"]
    assert frame["decoder layers formed at the end"].tolist() == ["2 of 2", "1 of 2", "0 of 2"]
    assert frame.loc["near", "distance / uniform, by epoch"] == "0: 1.000, 40: 0.912"
    assert frame.loc["flat", "epochs"] == "10 of 80 (unfinished)"
    assert frame["seed"].tolist() == [0, 0, 0]
    assert "in 1 of them (long)" in testability.screen_text(screen) and "seed 0" in testability.screen_text(screen)
    screen["candidates"]["long, seed 1"] = {**screen["candidates"]["long"], "seed": 1}  # a second seed, its own row
    assert testability.screen_summary(screen).loc["long, seed 1", "seed"] == 1
    assert "seeds 0, 1" in testability.screen_text(screen) and "(long, long, seed 1)" in testability.screen_text(screen)
    assert testability.read_screen(str(tmp_path / "none.json")) is None
    assert "No locality screen" in testability.screen_text(None)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a locality screen"):
        testability.read_screen(str(tmp_path / "bad.json"))


def _compared(entropies: dict, init, top1=None, raw=(40.0, 50.0), finished=True, epochs=20, distance=None):
    row = {"what": "w", "seed": 0, "epochs": epochs, "finished": finished, "init": {"entropy": init},
           "snapshots": {str(e): {"entropy": h} for e, h in entropies.items()}}
    if distance:  # (at init, at the last epoch), per layer
        row["init"]["distance"] = distance[0]
        row["snapshots"][str(max(entropies))]["distance"] = distance[1]
    if top1 is not False:
        row.update({"top1": top1, "raw_pixels": {"knn": raw[0], "logreg": raw[1]}})
    return row


def test_the_comparison_summary_reads_the_last_epoch_against_the_random_init_twin(tmp_path):
    screen = {"seeds": [0], "n_images": 128, "rows": {
        # below its init in every layer at the end, though not at epoch 10
        "contrastive, seed 0": _compared({0: [0.9, 0.9], 10: [0.95, 0.8], 20: [0.85, 0.8]}, [0.9, 0.9], top1=False,
                                         distance=([25.0, 24.0], [20.0, 21.0])),
        # moved in one layer only, but its task learned
        "supervised, seed 0": _compared({20: [0.95, 0.91]}, [0.9, 0.92], top1=61.0),
        "supervised, seed 1": _compared({10: [0.8, 0.8]}, [0.9, 0.9], top1=None, finished=False)}}
    frame = testability.comparison_summary(screen)
    assert frame["layers below random init at the end"].tolist() == ["2 of 2", "1 of 2", "2 of 2"]
    assert (frame.loc["contrastive, seed 0", "entropy by epoch (random init)"]
            == "0: 0.900, 10: 0.875, 20: 0.825 (0.900)")
    assert frame["top-1 % (best raw pixels)"].tolist() == ["", "61.0 (50.0)", "not finished"]
    assert frame.loc["supervised, seed 1", "epochs"] == "10 of 20 (unfinished)"
    text = testability.comparison_text(screen)
    assert "the attention of 2 of them" in text and "(contrastive, seed 0; supervised, seed 1)" in text
    assert "1 of 2 supervised runs beat the raw pixels" in text
    # Fig. 5's quantity beside the twin's, where the screen measured it
    assert frame["mean distance px at the end (random init)"].tolist() == ["20.5 (24.5)", "", ""]
    screen["rows"]["supervised, seed 0"]["top1"] = 49.0  # below logistic regression on the pixels: not learned
    assert "0 of 2 supervised runs" in testability.comparison_text(screen)
    assert testability.read_comparison_screen(str(tmp_path / "none.json")) is None
    assert "No screen of Fig. 5's comparison models" in testability.comparison_text(None)
    (tmp_path / "bad.json").write_text('{"rows": {"a": {"snapshots": {}}}}')
    with pytest.raises(ValueError, match="not a comparison screen"):
        testability.read_comparison_screen(str(tmp_path / "bad.json"))
