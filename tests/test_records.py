"""Records (``lcmae_core.records``): one command executes the whole book at a scale and packs it with its provenance;
the same code reads it back; a record the code no longer reproduces is stale, and the committed ones must not be."""

import dataclasses
import json
import os
import re
import subprocess
import sys
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
    one = records.read_record(_fake(tmp_path / "one" / "w", training={"runs": 1, "train_s": 600.0, "elapsed_s": 900.0}))
    assert "15 min from its first run's start to the end (1 run, 10 min of training)" in one.provenance_text()


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


def test_a_record_names_the_paths_of_the_machine_that_made_it_by_stand_ins(tmp_path):
    """The run store inside the checkout is named as the run store (the longest path first), a path in JSON as JSON
    escapes it, and a path that merely starts like one (a sibling folder) is left alone."""
    store, repo = "/m/x/repo/runs", "/m/x/repo"
    places = {repo: "<checkout>", store: "<run store>"}
    assert records.path_free('run_root = "/m/x/repo/runs/a"; /m/x/repo/notebooks', places, quoted=False) == \
        'run_root = "<run store>/a"; <checkout>/notebooks'
    assert records.path_free("/m/x/repo/runs2 /m/x/repo.old /m/x/repo", places, quoted=False) == \
        "<checkout>/runs2 /m/x/repo.old <checkout>"
    odd = {'/m/a "b"': "<data root>"}
    assert records.path_free(json.dumps({"p": '/m/a "b"/c'}), odd) == json.dumps({"p": "<data root>/c"})
    nb = {"cells": [{"cell_type": "code", "source": [f'run_root = "{store}"'], "outputs": []}],
          "metadata": {"papermill": {"input_path": f"{repo}/notebooks/p.ipynb", "output_path": "/tmp/.p.tmp.ipynb",
                                     "parameters": {"run_root": store}}}}
    (tmp_path / "executed").mkdir()
    (tmp_path / "executed" / "p.ipynb").write_text(json.dumps(nb))
    (tmp_path / "m.json").write_text(json.dumps({"file": f"{repo}/runs/r/checkpoint.pt"}))
    records.make_path_free(tmp_path, places)
    got = json.loads((tmp_path / "executed" / "p.ipynb").read_text())
    assert got["metadata"]["papermill"]["input_path"] == "notebooks/p.ipynb"
    assert got["metadata"]["papermill"]["output_path"] == "executed/p.ipynb"
    assert got["metadata"]["papermill"]["parameters"]["run_root"] == "<run store>"
    assert got["cells"][0]["source"] == ['run_root = "<run store>"']
    assert json.loads((tmp_path / "m.json").read_text()) == {"file": "<run store>/r/checkpoint.pt"}


def test_the_views_without_records_say_how_to_make_one(tmp_path):
    view = records.page_view("table2_decoders", [], tmp_path)
    assert "No record is committed yet" in view._repr_html_() and "python -m lcmae_core record" in view._repr_html_()
    assert "no record is committed yet" in records.reproducibility_summary([], "cpu", {})


def _png(tag: int) -> str:
    """A one-pixel PNG, base64, whose red channel is ``tag``."""
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (1, 1), (tag, 0, 0)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def test_a_record_keeps_the_figures_a_widget_shows_in_page_order(tmp_path):
    """An interactive page (the explorer) shows its figure inside a widget, whose frozen state holds it: the record
    takes it as a figure of the cell that shows the widget, between the figures of the cells around it."""
    def shown(tag):
        return {"output_type": "display_data", "data": {"image/png": _png(tag), "text/plain": "fig"}}

    def model(name, **state):
        return {"model_name": name, "state": state}

    state = {"box": model("VBoxModel", children=["IPY_MODEL_row", "IPY_MODEL_out", "IPY_MODEL_box"]),
             "row": model("HBoxModel", children=["IPY_MODEL_slider"]), "slider": model("FloatSliderModel"),
             "out": model("OutputModel", outputs=[shown(2), {"output_type": "stream", "text": "x"}]),
             "unshown": model("OutputModel", outputs=[shown(9)])}
    view = {"output_type": "display_data", "data": {records.WIDGET_VIEW: {"model_id": "box"}, "text/plain": "VBox"}}
    nb = {"cells": [{"cell_type": "code", "outputs": [shown(1)]}, {"cell_type": "code", "outputs": [view]},
                    {"cell_type": "markdown"}, {"cell_type": "code", "outputs": [shown(3)]}],
          "metadata": {"widgets": {records.WIDGET_STATE: {"state": state}}}}
    (tmp_path / "page.ipynb").write_text(json.dumps(nb))
    names = records.extract_figures(tmp_path / "page.ipynb", tmp_path, "page")
    assert names == ["page-1.png", "page-2.png", "page-3.png"]
    from PIL import Image

    assert [Image.open(tmp_path / n).getpixel((0, 0))[0] for n in names] == [1, 2, 3]
    # a notebook saved without the widget state (or a widget it lacks) has no figure there, and no error
    del nb["metadata"]["widgets"]
    (tmp_path / "page.ipynb").write_text(json.dumps(nb))
    assert len(records.extract_figures(tmp_path / "page.ipynb", tmp_path, "bare")) == 2


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


# The device script (bench/gpu_record.sh) rehearsed at the smoke scale on the CPU. Its three rehearsals share one run
# store, in the order a device session would fill it (pytest runs a file's tests in order): a train step that its
# budget cuts (made first, on the empty store, by the fixture), a calibration that stops at a recipe it did not
# choose, the record that goes on from the runs the others left, and a calibration that stops before a record that
# would not fit (its runs then trained by the record: it only measures). Each still passes alone, training what it
# needs.
SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "gpu_record.sh")


def _script(store, out, *steps, **env):
    """bench/gpu_record.sh at the smoke scale on the CPU, writing to ``out``, with the run store ``store``."""
    env = {**os.environ, "SCALE": "smoke", "DEVICE": "cpu", "JOBS": "2", "OUT": str(out), "RUNS": str(store),
           "PY": sys.executable, "CHECKS": "0", **env}  # the CUDA checks skip here; their own test runs them
    return subprocess.run(["bash", SCRIPT, *steps], env=env, capture_output=True, text=True, timeout=1200)


def _started(store) -> dict:
    """{run: when it first started} of the runs in a store."""
    return {d.name: t for d in (store.iterdir() if store.exists() else ()) if (t := records.run_started(d)) is not None}


@pytest.mark.slow
def test_a_failing_check_of_the_gpu_data_path_stops_the_device_script_before_anything(tmp_path):
    failing = tmp_path / "py"  # an interpreter whose pytest fails
    failing.write_text(f'#!/bin/sh\n[ "$2" = pytest ] && exit 1\nexec {sys.executable} "$@"\n')
    failing.chmod(0o755)
    p = _script(tmp_path / "runs", tmp_path / "out", "calibrate", CHECKS="1", PY=str(failing))
    assert p.returncode == 5 and "stopped: the GPU data path's checks failed" in p.stderr, p.stderr[-3000:]
    assert "== calibrate" not in p.stdout


@pytest.fixture(scope="module")
def device_store(tmp_path_factory):
    """The shared run store, after a train step cut by its budget (about 7 s of training, where the smoke plan takes
    20 s or more on one worker): (store, that call, the runs it started)."""
    base = tmp_path_factory.mktemp("device")
    store, out = base / "runs", base / "cut"
    p = _script(store, out, "train", "record", BUDGET_S="24", JOBS="1")
    return store, p, out, _started(store)


@pytest.mark.slow
def test_the_calibration_step_stops_before_a_record_at_a_recipe_it_did_not_choose(device_store, tmp_path):
    """bench/gpu_record.sh calibrate with one candidate (CANDIDATES): the table holds it alone, and since it is not
    the scale's recipe the script stops instead of making a record."""
    result = tmp_path / "out"
    p = _script(device_store[0], result, CANDIDATES="2ep", SEEDS="2", CHECKS="1")
    assert p.returncode != 0 and "stopped: the calibration chose 2ep" in p.stderr, p.stderr[-3000:]
    # first, the checks of the GPU data path the record's runs take (skipped here, where there is no CUDA)
    assert re.search(r"\b\d+ skipped, \d+ deselected", p.stdout.split("== calibrate")[0]), p.stdout[-3000:]
    assert "== record" not in p.stdout and not (result / "smoke.tar.gz").exists()
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
def test_one_command_makes_a_record_at_the_smoke_scale(device_store, tmp_path):
    """The GPU session's command itself: a train step that its budget cut, then the record step, which goes on from
    the runs it left (their finished epochs resumed, the rest trained)."""
    store, cut, cut_out, _ = device_store
    # the cut call stopped with exit 4, said how to go on, and made no record
    assert cut.returncode == 4 and "resume:" in cut.stderr and "== record" not in cut.stdout, cut.stderr[-3000:]
    assert not (cut_out / "smoke.tar.gz").exists() and "resume:" in (cut_out / "gpu_record.log").read_text()
    before = _started(store)  # the runs the earlier calls started (on a loaded machine the cut may start none)
    result = tmp_path / "out"
    p = _script(store, result, "record")
    assert p.returncode == 0, p.stderr[-3000:]
    assert "== done" in p.stdout and "installed" not in p.stdout  # papermill is here: no wheels needed
    out = store / "records"
    folder = out / "smoke"
    rec = records.read_record(folder)
    prov = rec.provenance
    assert prov["scale"] == "smoke" and prov["seeds"] == [0, 1] and len(prov["commit"]) in (40, 7)
    assert prov["run_names"] == records.planned_names("smoke") and set(prov["runs"]) == set(prov["run_names"])
    assert set(prov["pages"]) >= {"table1_lcmae_ablation", "results_summary"} and prov["wall_s"] > 0
    # the training spans the calls: the record's own wall time counts only the last, its training the earlier ones
    # too, from the first run's start, whichever call started it
    training = prov["training"]
    assert training["runs"] == len(prov["runs"]) and training["train_s"] > 0
    first = [t for name, t in before.items() if name in prov["runs"]]
    assert (training["elapsed_s"] > prov["wall_s"]) == bool(first) and "from its first run's start" in \
        rec.provenance_text()
    if first:
        assert min(r["started"] for r in prov["runs"].values()) == min(first)
        assert min(first) < out.stat().st_mtime - prov["wall_s"]
    assert rec.stale()[0] is False
    # the pages' records, read by the same code as a build's
    pages = rec.pages()
    assert "table2_decoders" in pages and pages["table2_decoders"]["claims"]["claims"]
    assert (folder / "executed" / "table1_lcmae_ablation.ipynb").exists()
    assert rec.figures("fig2_fig3_decoder_position_semantics") and all(f.exists() for f in rec.figures(
        "fig2_fig3_decoder_position_semantics"))
    assert len(rec.figures("explorer")) == 1 and rec.figures("explorer")[0].exists()  # the panel's, as frozen
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
    # a page without metrics or claims (the explorer) shows the figure the record holds of it
    html = records.PageView("explorer", [], [rec])._repr_html_()
    assert "not in the record yet" not in html and html.count('<img alt="explorer-1.png"') == 1
    rows = records.summary_rows(pages, [rec])
    assert rows and all(r["record smoke"] == r["this build"] for r in rows)
    verdicts = [c["verdict"] for r in pages.values() for c in r["claims"]["claims"]]
    counted = ", ".join([f"{len(verdicts)} claims", *(f"{v} {verdicts.count(v)}" for v in dict.fromkeys(verdicts))])
    assert f"**: {counted} (current" in records.reproducibility_summary([rec], "smoke", pages)
    # no path of the machine that made it: the run store, the checkout and the record's folder are named by stand-ins
    made_on = [str(store.resolve()), str(records.REPO), str(out.resolve())]
    for f in folder.rglob("*"):
        if f.suffix in (".ipynb", ".json"):
            text = f.read_text()
            assert not [p for p in made_on if p in text], f
    nb = json.loads((folder / "executed" / "table1_lcmae_ablation.ipynb").read_text())
    assert nb["metadata"]["papermill"]["input_path"] == "notebooks/table1_lcmae_ablation.ipynb"
    assert "<run store>" in prov["command"] and str(store.resolve()) not in prov["command"]
    # nothing half-made is left beside it
    assert sorted(p.name for p in out.iterdir()) == ["smoke", "smoke.tar.gz"]


@pytest.mark.slow
def test_the_calibration_step_stops_before_a_record_that_would_not_fit_the_time_left(device_store, tmp_path):
    """bench/gpu_record.sh with BUDGET_S: the calibration chose the scale's recipe, but the record's projected
    training does not fit the seconds left, so the script stops with the table kept."""
    result = tmp_path / "out"
    p = _script(device_store[0], result, CANDIDATES="base", SEEDS="2", BUDGET_S="1")
    assert p.returncode == 3 and "would not end within" in p.stderr, p.stderr[-3000:]
    assert "== record" not in p.stdout and not (result / "smoke.tar.gz").exists()
    assert json.loads((result / "smoke_scale_calibration.json").read_text())["chosen"] == "base"
