"""Records (``lcmae_core.records``): one command executes the whole book at a scale and packs it with its provenance;
the same code reads it back; a record the code no longer reproduces is stale, and the committed ones must not be."""

import dataclasses
import json
import tarfile

import pytest

from lcmae_core import records, scales
from lcmae_core.records import RecordError
from lcmae_core.verdicts import Claim


def _fake(folder, **over):
    prov = {"format": records.FORMAT, "name": "x", "scale": "smoke", "seeds": [0, 1], "parameters": {},
            "commit": "abc", "dirty": False, "made_at": "now", "hardware": {"cores": 2, "torch": "2"},
            "command": "python -m lcmae_core record --scale smoke", "run_names": records.planned_names("smoke"),
            "runs": {}, "pages": {}, "figures": {}, "wall_s": 60.0, **over}
    folder.mkdir(parents=True)
    (folder / records.PROVENANCE).write_text(json.dumps(prov))
    return folder


def test_reading_a_record_and_its_staleness(tmp_path):
    rec = records.read_record(_fake(tmp_path / "x"))
    assert rec.name == "x" and rec.scale == "smoke" and rec.pages() == {}
    assert rec.stale() == (False, f"current: the code plans the {len(rec.provenance['run_names'])} runs it ran")
    assert "2 CPU cores" in rec.provenance_text() and "commit abc" in rec.provenance_text()
    assert "1 min executing the pages" in rec.provenance_text() and "first run" not in rec.provenance_text()
    # the code now plans other runs than the record ran: stale, with the command that remakes it
    old = records.read_record(_fake(tmp_path / "y", run_names=["mae-000000000000"]))
    stale, why = old.stale()
    assert stale and "stale" in why and "python -m lcmae_core record --scale smoke" in why
    assert [r.name for r in records.list_records(tmp_path)] == ["x", "x"]
    spanned = records.read_record(_fake(tmp_path / "spanned" / "z", training=records.training_span(
        {"a": {"train_time_s": 600.0, "started": 1000.0}, "b": {"train_time_s": 1200.0, "started": 1300.0},
         "c": {"train_time_s": None, "started": None}}, 1000.0 + 3600)))
    assert spanned.provenance["training"] == {"runs": 2, "train_s": 1800.0, "elapsed_s": 3600.0}
    assert "60 min from its first run's start to the end (2 runs, 30 min of training summed" in \
        spanned.provenance_text()


def test_bad_record_folders_are_one_line(tmp_path):
    with pytest.raises(RecordError, match="is not a record: it has no provenance.json"):
        records.read_record(tmp_path)
    (tmp_path / records.PROVENANCE).write_text('{"format": 1,')
    with pytest.raises(RecordError, match="is not valid JSON"):
        records.read_record(tmp_path)
    (tmp_path / records.PROVENANCE).write_text('{"format": 99}')
    with pytest.raises(RecordError, match="format 1"):
        records.read_record(tmp_path)
    assert records.list_records(tmp_path / "none") == []


def _part(pages, run_names, commit="abc", gpu=None, elapsed=None):
    figures = {p: [f"{p}-1.png"] for p in pages}
    return {"notebooks": list(pages), "commit": commit, "dirty": False, "made_at": "now", "hardware":
            {"cores": 16, "torch": "2", **({"gpu": gpu} if gpu else {})}, "command":
            f"python -m lcmae_core record --scale smoke --only {' '.join(pages)}", "run_names": run_names, "runs": {},
            "pages": {p: {"wall_s": 30.0, "reused": False} for p in pages}, "figures": figures, "wall_s": 60.0,
            "training": {"runs": 2, "train_s": 120.0, "elapsed_s": elapsed}}


def test_a_record_made_in_parts_reads_each_part_and_names_what_it_lacks(tmp_path):
    """A record grown by parts (``record --only``): its provenance merges the parts, each part is judged stale
    against the runs the code plans for its own pages, and the pages it does not hold are named with the command
    that adds them."""
    a, b = ["eq2_eq4_local_contrastive"], ["fig4_figB1_decoder_attention_maps", "explorer"]
    pa = _part(a, records.planned_names("smoke", notebooks=a), "aaa", "NVIDIA H200", 300.0)
    pb = _part(b, records.planned_names("smoke", notebooks=b), "bbb", None, None)
    assert pa["run_names"] and set(pa["run_names"]) < set(records.planned_names("smoke"))
    prov = records.merged([pa, pb])
    assert prov["commit"] == "bbb" and prov["parts"] == [pa, pb] and set(prov["pages"]) == set(a + b)
    assert prov["run_names"] == sorted(set(pa["run_names"]) | set(pb["run_names"])) and prov["wall_s"] == 120.0
    assert prov["training"] == {"runs": 4, "train_s": 240.0, "elapsed_s": None}  # a part without it: not summed
    rec = records.read_record(_fake(tmp_path / "parts", **prov))
    assert rec.parts == [pa, pb]
    assert rec.missing() and "table1_lcmae_ablation" in rec.missing() and not set(a + b) & set(rec.missing())
    stale, why = rec.stale()
    assert not stale and "over its 2 parts" in why
    text = rec.provenance_text()
    assert text.startswith("x: the smoke scale, 2 seeds, in 2 parts: eq2_eq4_local_contrastive on NVIDIA H200")
    assert "commit aaa" in text and "fig4_figB1_decoder_attention_maps, explorer on 16 CPU cores" in text
    assert "not yet recorded: " in text and "table1_lcmae_ablation" in text
    html = records.PageView("table1_lcmae_ablation", [], [rec])._repr_html_()
    assert "not in the record yet" in html and "--name x --only table1_lcmae_ablation" in html
    assert "Verdicts:" not in html  # a page without claims has no verdict table
    n = len(records.list_notebooks())
    assert f"3 of {n} pages, 0 claims" in records.reproducibility_summary([rec], "smoke", {})
    # one part's runs no longer planned for its pages: stale, naming them and the part's own command
    old = records.read_record(_fake(tmp_path / "old", **records.merged([pa, {**pb, "run_names": ["ae-0"]}])))
    stale, why = old.stale()
    assert stale and "for fig4_figB1_decoder_attention_maps, explorer" in why and "--only fig4" in why
    # a part that loses a page to a later part stands for the pages it keeps: their runs, judged for those alone
    both = _part(a + b, records.planned_names("smoke", notebooks=a + b))
    _fake(tmp_path / "both", **records.merged([both]))
    kept = records._earlier_parts(tmp_path / "both", "smoke", None, b)
    assert len(kept) == 1 and kept[0]["notebooks"] == a and set(kept[0]["pages"]) == set(a)
    assert kept[0]["run_names"] == pa["run_names"] and set(kept[0]["figures"]) == set(a)
    assert not records.read_record(_fake(tmp_path / "regrown", **records.merged([*kept, pb]))).stale()[0]
    # a record of the whole book is one part, as before
    whole = records.read_record(_fake(tmp_path / "whole", pages={n: {} for n in records.list_notebooks()}))
    assert len(whole.parts) == 1 and whole.parts[0]["notebooks"] is None and whole.missing() == []
    assert "part" not in whole.provenance_text() and "not yet recorded" not in whole.provenance_text()
    book = records.list_notebooks()  # one part that made every page reads as the whole book too
    one = records.read_record(_fake(tmp_path / "one", **records.merged([_part(book, records.planned_names(
        "smoke", notebooks=book))])))
    assert one.provenance_text() == f"x: the smoke scale, 2 seeds, {one._part_text(one.parts[0])}"
    assert not one.stale()[0] and one.missing() == []


def test_a_part_naming_an_unknown_page_is_one_line(tmp_path, capsys):
    assert records.main(["--scale", "smoke", "--out", str(tmp_path), "--only", "table9"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown notebook(s) table9; choose from") and "\n" not in err
    assert list(tmp_path.iterdir()) == []
    # the closing pages read every other page's record: refused in a part that leaves one out, added to the one
    # that completes the record (and to every part after it)
    with pytest.raises(RecordError, match=r"results_summary read\(s\) every other page's record, and the record "
                                          "would still lack appendix_cpu_scale, eq2_eq4"):
        records.make_record("smoke", tmp_path, only=["results_summary"])
    assert list(tmp_path.iterdir()) == []
    book = [n for n in records.list_notebooks() if n not in records.LAST]
    held = [{"pages": {n: {} for n in book if n != "explorer"}}]
    assert records._closing(["explorer"], held) == ["explorer", *records.LAST]
    complete = [{"pages": {n: {} for n in book}}]  # a page made again in a complete record: they go again too
    assert records._closing(["table2_decoders"], complete) == ["table2_decoders", *records.LAST]
    assert records._closing(["table2_decoders"], held) == ["table2_decoders"]
    assert records._closing(["explorer"], []) == ["explorer"] and records._closing(None, held) is None


@pytest.mark.slow
def test_a_record_grows_by_parts(tmp_path):
    """``record --only``, at the smoke scale: each part trains and executes its pages alone and adds them to the
    record of that name, keeping the other pages' results, notebooks and figures; a page made again replaces its
    part's; a part of another scale under the same name is refused before anything trains."""
    out, runs = tmp_path / "records", tmp_path / "runs"
    eq2, fig4 = "eq2_eq4_local_contrastive", "fig4_figB1_decoder_attention_maps"

    def part(page, **kw):
        return records.read_record(records.make_record("smoke", out, run_root=str(runs), jobs=2, progress=False,
                                                       only=[page], **kw))

    rec = part(eq2)
    assert [p["notebooks"] for p in rec.parts] == [[eq2]] and set(rec.provenance["pages"]) == {eq2}
    assert rec.provenance["run_names"] == records.planned_names("smoke", notebooks=[eq2]) and not rec.stale()[0]
    assert set(rec.pages()) == {eq2} and eq2 not in rec.missing() and fig4 in rec.missing()
    executed = (out / "smoke" / "executed" / f"{eq2}.ipynb").read_bytes()
    rec = part(fig4)
    assert [p["notebooks"] for p in rec.parts] == [[eq2], [fig4]] and set(rec.pages()) == {eq2, fig4}
    assert (out / "smoke" / "executed" / f"{eq2}.ipynb").read_bytes() == executed  # the earlier part, as it was
    assert rec.figures(fig4) and all(f.exists() for f in rec.figures(fig4) + rec.figures(eq2))
    assert rec.stale() == (False, f"current: the code plans the {len(rec.provenance['run_names'])} runs it ran "
                                  "over its 2 parts")
    rec = part(eq2)  # made again: its part moves last, the other stays
    assert [p["notebooks"] for p in rec.parts] == [[fig4], [eq2]] and set(rec.pages()) == {eq2, fig4}
    with tarfile.open(out / "smoke.tar.gz") as tar:
        names = tar.getnames()
    assert f"smoke/executed/{eq2}.ipynb" in names and f"smoke/executed/{fig4}.ipynb" in names
    with pytest.raises(RecordError, match="holds the smoke scale .* give this part another --name"):
        records.make_record("cpu", out, name="smoke", run_root=str(runs), progress=False, only=[eq2])
    assert sorted(p.name for p in out.iterdir()) == ["smoke", "smoke.tar.gz"]


@pytest.mark.slow
def test_the_gpu_command_makes_a_record_by_parts(tmp_path):
    """bench/gpu_record.sh with PAGES, rehearsed at the smoke scale: each call trains and records those pages alone,
    and the second adds its part to the record the first left in the run store."""
    import os
    import subprocess
    import sys

    result, runs = tmp_path / "out", tmp_path / "runs"
    env = {**os.environ, "SCALE": "smoke", "DEVICE": "cpu", "JOBS": "2", "OUT": str(result), "RUNS": str(runs),
           "PY": sys.executable}
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "gpu_record.sh")
    for page in ("eq2_eq4_local_contrastive", "explorer"):
        p = subprocess.run(["bash", script, "train", "record"], env={**env, "PAGES": page}, capture_output=True,
                           text=True, timeout=1200)
        assert p.returncode == 0, p.stderr[-3000:]
    rec = records.read_record(runs / "records" / "smoke")
    assert [p["notebooks"] for p in rec.parts] == [["eq2_eq4_local_contrastive"], ["explorer"]]
    assert set(rec.provenance["runs"]) == set(records.planned_names(
        "smoke", notebooks=["eq2_eq4_local_contrastive", "explorer"]))
    with tarfile.open(result / "smoke.tar.gz") as tar:  # what the device brings back: the record with both parts
        assert "smoke/executed/explorer.ipynb" in tar.getnames()
        assert "smoke/executed/eq2_eq4_local_contrastive.ipynb" in tar.getnames()


@pytest.mark.slow
def test_the_gpu_command_chooses_the_part_that_fits(tmp_path):
    """PAGES=auto, rehearsed at the smoke scale with a calibration table whose pace puts the whole book far beyond the
    budget: the script records the pages whose projected training fits, cheapest first, and says which."""
    import os
    import subprocess
    import sys

    from lcmae_core import configs, plan, projection

    result, runs = tmp_path / "out", tmp_path / "runs"
    done = plan.plan_runs("smoke")[0]
    cheapest = min(plan.cost(c) for c in plan.plan_runs("smoke", ["explorer"]))
    # a pace at which the explorer's run projects to 60 s on 2 workers, and the whole book to over an hour
    pace = 60.0 * 2 / cheapest
    table = {"scale": "smoke", "chosen": "base", "why": "", "seeds": [0, 1], "candidates": {"base": {"runs": {
        configs.run_name(done): {"family": done.family, "seconds": pace * plan.cost(done), "cost": plan.cost(done)}}}}}
    assert projection.project(table, "smoke", 2)["wall_s"] > 3600
    calibration = tmp_path / "table.json"
    calibration.write_text(json.dumps(table))
    env = {**os.environ, "SCALE": "smoke", "DEVICE": "cpu", "JOBS": "2", "OUT": str(result), "RUNS": str(runs),
           "PY": sys.executable, "PAGES": "auto", "BUDGET_S": "900", "CALIBRATION": str(calibration)}
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "gpu_record.sh")
    p = subprocess.run(["bash", script, "train", "record"], env=env, capture_output=True, text=True, timeout=1200)
    assert p.returncode == 0, p.stderr[-3000:]
    part = next(line for line in p.stdout.splitlines() if line.startswith("== the part: ")).split()[3:]
    assert "explorer" in part and "table1_lcmae_ablation" not in part
    rec = records.read_record(runs / "records" / "smoke")
    assert [p["notebooks"] for p in rec.parts] == [part] and set(rec.provenance["pages"]) == set(part)
    assert '"next_part"' in (result / "gpu_record.log").read_text()
    # without a budget there is no time to fit the part to: one line, before anything
    p = subprocess.run(["bash", script, "train"], env={**env, "BUDGET_S": ""}, capture_output=True, text=True)
    assert p.returncode == 2 and "PAGES=auto chooses the pages that fit the time left: set BUDGET_S" in p.stderr


def test_the_views_without_records_say_how_to_make_one(tmp_path):
    view = records.page_view("table2_decoders", [], tmp_path)
    assert "No record is committed yet" in view._repr_html_() and "python -m lcmae_core record" in view._repr_html_()
    assert "no record is committed yet" in records.reproducibility_summary([], "cpu", {})


def test_what_differs_from_the_paper_is_read_from_the_planned_configs(monkeypatch):
    """The results page's table of differences: one row per aspect, a column per scale, each cell from the configs
    the planner makes (so a recipe change shows), and a rate the paper does not use (the decoder's own) named."""
    gpu = scales.get("gpu")
    rows = {r["aspect"]: r for r in records.differences(["gpu", "cpu"])}
    assert all(set(r) == {"aspect", "paper", "gpu", "cpu"} for r in rows.values())
    mae = gpu.pretrain_optim["mae"]
    assert rows["MAE pretraining (Tables 1-3)"]["gpu"].startswith(f"{mae['epochs']} epochs ({mae['warmup_epochs']} ")
    assert "trained by LARS" in rows["linear probe"]["paper"] and "solved" in rows["linear probe"]["gpu"]
    assert rows["finetuning"]["cpu"].startswith("not trained") and "epochs" in rows["finetuning"]["gpu"]
    assert rows["seeds"]["gpu"] == f"{len(gpu.seeds)} (" + ", ".join(map(str, gpu.seeds)) + ")"
    assert "(7x7 tokens)" in rows["encoder (Tables 1-3)"]["cpu"]
    assert "(12x12 tokens)" in rows["encoder (the attention pages)"]["cpu"]
    # a decoder rate of its own is named where the scale sets one, and only there
    k = mae.get("decoder_lr_scale", 1.0)
    assert ("decoder at" in rows["MAE pretraining (the attention pages)"]["gpu"]) == (k != 1.0)
    assert "decoder at" not in rows["MAE pretraining (Tables 1-3)"]["cpu"] + rows["linear probe"]["gpu"]
    cpu = scales.get("cpu")
    fast = {f: ({**o, "decoder_lr_scale": 3.0} if f == "mae" else o) for f, o in cpu.pretrain_optim.items()}
    monkeypatch.setitem(scales.SCALES, "cpu", dataclasses.replace(cpu, pretrain_optim=fast))
    rows = {r["aspect"]: r for r in records.differences(["cpu"])}
    assert "the decoder at 3 times that rate (the paper trains one rate)" in rows["MAE pretraining (Tables 1-3)"]["cpu"]
    assert "decoder at" not in rows["LC-MAE pretraining"]["cpu"]


@pytest.mark.parametrize("rec", records.list_records(), ids=lambda r: r.name)
def test_every_committed_record_is_current(rec):
    """The committed records ran the runs the code plans now for their scale: a recipe change makes them stale,
    which the pages show, and which fails here until the record is made again."""
    stale, why = rec.stale()
    assert not stale, why


@pytest.mark.slow
def test_the_calibration_step_stops_before_a_record_at_a_recipe_it_did_not_choose(tmp_path):
    """bench/gpu_record.sh calibrate, rehearsed at the smoke scale on the CPU with one candidate (CANDIDATES): the
    table holds it alone, and since it is not the scale's recipe the script stops instead of making a record."""
    import json
    import os
    import subprocess
    import sys

    result, runs = tmp_path / "out", tmp_path / "runs"
    env = {**os.environ, "SCALE": "smoke", "DEVICE": "cpu", "JOBS": "2", "OUT": str(result), "RUNS": str(runs),
           "PY": sys.executable, "CANDIDATES": "2ep", "SEEDS": "2"}
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "gpu_record.sh")
    p = subprocess.run(["bash", script], env=env, capture_output=True, text=True, timeout=1200)
    assert p.returncode != 0 and "stopped: the calibration chose 2ep" in p.stderr, p.stderr[-3000:]
    assert "== record" not in p.stdout and not (runs / "records").exists()
    # before stopping, the record's training time at the calibration's pace
    projected = json.loads(next(line for line in p.stdout.splitlines() if '"projected"' in line))
    assert projected["planned_runs"] == len(records.planned_names("smoke")) and projected["jobs"] == 2
    assert 0 < projected["already_trained"] < projected["planned_runs"] and projected["wall_s"] > 0
    table = json.loads((result / "smoke_scale_calibration.json").read_text())
    assert list(table["candidates"]) == ["2ep"] and table["chosen"] == "2ep" and table["seeds"] == [0, 1]
    # everything it printed is in $OUT too (it comes back from a device call that its time limit killed)
    log = (result / "gpu_record.log").read_text()
    assert "stopped: the calibration chose 2ep" in log and '"projected"' in log and '"event": "run"' in log


@pytest.mark.slow
def test_the_calibration_step_stops_before_a_record_that_would_not_fit_the_time_left(tmp_path):
    """bench/gpu_record.sh with BUDGET_S, rehearsed at the smoke scale: the calibration chose the scale's recipe, but
    the record's projected training does not fit the seconds left, so the script stops with the table kept."""
    import os
    import subprocess
    import sys

    result, runs = tmp_path / "out", tmp_path / "runs"
    env = {**os.environ, "SCALE": "smoke", "DEVICE": "cpu", "JOBS": "2", "OUT": str(result), "RUNS": str(runs),
           "PY": sys.executable, "CANDIDATES": "base", "SEEDS": "2", "BUDGET_S": "1"}
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "gpu_record.sh")
    p = subprocess.run(["bash", script], env=env, capture_output=True, text=True, timeout=1200)
    assert p.returncode == 3 and "would not end within" in p.stderr, p.stderr[-3000:]
    assert "== record" not in p.stdout and not (runs / "records").exists()
    assert json.loads((result / "smoke_scale_calibration.json").read_text())["chosen"] == "base"


@pytest.mark.slow
def test_one_command_makes_a_record_at_the_smoke_scale(tmp_path):
    """The GPU session's command itself (bench/gpu_record.sh), rehearsed at the smoke scale on the CPU."""
    import os
    import subprocess
    import sys

    result, runs = tmp_path / "out", tmp_path / "runs"
    env = {**os.environ, "SCALE": "smoke", "DEVICE": "cpu", "JOBS": "2", "OUT": str(result), "RUNS": str(runs),
           "PY": sys.executable}
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "gpu_record.sh")
    # a budget that ends while the runs train (about 7 s, where the smoke plan takes 20 s or more on one worker): the
    # step train stops with exit 4 and says how to go on, and no record is made
    p = subprocess.run(["bash", script, "train", "record"], env={**env, "BUDGET_S": "24", "JOBS": "1"},
                       capture_output=True, text=True, timeout=1200)
    assert p.returncode == 4 and "resume:" in p.stderr and "== record" not in p.stdout, p.stderr[-3000:]
    assert not (runs / "records").exists() and "resume:" in (result / "gpu_record.log").read_text()
    # the runs the first call started (on a loaded machine its budget may end before any starts)
    first = [t for d in (runs.iterdir() if runs.exists() else ()) if (t := records.run_started(d)) is not None]
    # and the record step goes on from the runs it left (their finished epochs resumed, the rest trained)
    p = subprocess.run(["bash", script, "record"], env=env, capture_output=True, text=True, timeout=1200)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "== done" in p.stdout and "installed" not in p.stdout  # papermill is here: no wheels needed
    out = runs / "records"
    folder = out / "smoke"
    rec = records.read_record(folder)
    prov = rec.provenance
    assert prov["scale"] == "smoke" and prov["seeds"] == [0, 1] and len(prov["commit"]) in (40, 7)
    assert prov["run_names"] == records.planned_names("smoke") and set(prov["runs"]) == set(prov["run_names"])
    assert set(prov["pages"]) >= {"table1_lcmae_ablation", "results_summary"} and prov["wall_s"] > 0
    # the training spans both calls: the record's own wall time counts only the second, its training the first too,
    # from the first run's start, whichever call started it
    training = prov["training"]
    assert training["runs"] == len(prov["runs"]) and training["train_s"] > 0
    assert (training["elapsed_s"] > prov["wall_s"]) == bool(first) and "from its first run's start" in \
        rec.provenance_text()
    if first:
        assert min(r["started"] for r in prov["runs"].values()) == min(first)
        assert min(first) < (runs / "records").stat().st_mtime - prov["wall_s"]
    assert rec.stale()[0] is False
    # the pages' records, read by the same code as a build's
    pages = rec.pages()
    assert "table2_decoders" in pages and pages["table2_decoders"]["claims"]["claims"]
    assert (folder / "executed" / "table1_lcmae_ablation.ipynb").exists()
    assert rec.figures("fig2_fig3_decoder_position_semantics") and all(f.exists() for f in rec.figures(
        "fig2_fig3_decoder_position_semantics"))
    # one archive, within the limit, holding the same folder
    archive = out / "smoke.tar.gz"
    assert archive.stat().st_size < records.MAX_ARCHIVE_MIB * 2**20
    assert (result / "smoke.tar.gz").read_bytes() == archive.read_bytes()  # what the device brings back
    with tarfile.open(archive) as tar:
        assert "smoke/provenance.json" in tar.getnames()
    # the page view: provenance, table, figures, and each claim beside this build's
    now = [Claim(c["id"], c["text"], c["verdict"], "") for c in pages["table2_decoders"]["claims"]["claims"]]
    html = records.PageView("table2_decoders", now, [rec])._repr_html_()
    assert "Record smoke" in html and "current" in html and "T2-akin" in html and "<table" in html
    rows = records.summary_rows(pages, [rec])
    assert rows and all(r["record smoke"] == r["this build"] for r in rows)
    assert "smoke" in records.reproducibility_summary([rec], "smoke", pages)
    # nothing half-made is left beside it
    assert sorted(p.name for p in out.iterdir()) == ["smoke", "smoke.tar.gz"]
