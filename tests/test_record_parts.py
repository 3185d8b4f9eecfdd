"""A record made by parts (``record --only``, ``bench/gpu_record.sh`` with ``PAGES``): the parts' provenance,
staleness and texts, the closing pages, and a record grown over several calls, rehearsed at the smoke scale."""

import json
import tarfile

import pytest

from lcmae_core import records
from lcmae_core.records import RecordError
from test_records import _fake, _script


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
    summary = records.reproducibility_summary([rec], "smoke", {})
    assert f"3 of {n} pages, 0 claims (current" in summary and summary.endswith("(the smoke scale): 0 claims.")
    # one part's runs no longer planned for its pages: stale, naming them and the part's own command
    old = records.read_record(_fake(tmp_path / "old", **records.merged([pa, {**pb, "run_names": ["ae-0"]}])))
    stale, why = old.stale()
    assert stale and "for fig4_figB1_decoder_attention_maps, explorer" in why and "--only fig4" in why
    # a part that loses a page to a later part stands for the pages it keeps: their runs, judged for those alone
    both = _part(a + b, records.planned_names("smoke", notebooks=a + b))
    _fake(tmp_path / "both", **records.merged([both]))
    kept = records._kept_parts(records._existing_parts(tmp_path / "both", "smoke", None, b), "smoke", None, b)
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
    """bench/gpu_record.sh by parts, rehearsed at the smoke scale. PAGES=auto, with a calibration table whose pace
    puts the whole book far beyond the budget: the script records the pages whose projected training fits, cheapest
    first, and says which; a second call with PAGES adds its part to the record the first left in the run store, and
    the archive that comes back holds both."""
    from lcmae_core import configs, plan, projection

    result, runs = tmp_path / "out", tmp_path / "runs"
    done = plan.plan_runs("smoke")[0]
    cheapest = min(plan.cost(c) for c in plan.plan_runs("smoke", ["explorer"]))
    # a pace at which the explorer's run (the cheapest page's) projects to 300 s on 2 workers, the whole book to hours
    pace = 300.0 * 2 / cheapest
    table = {"scale": "smoke", "chosen": "base", "why": "", "seeds": [0, 1], "candidates": {"base": {"runs": {
        configs.run_name(done): {"family": done.family, "seconds": pace * plan.cost(done), "cost": plan.cost(done)}}}}}
    assert projection.project(table, "smoke", 2)["wall_s"] > 3600
    calibration = tmp_path / "table.json"
    calibration.write_text(json.dumps(table))
    env = {"PAGES": "auto", "BUDGET_S": "600", "CALIBRATION": str(calibration)}
    p = _script(runs, result, "train", "record", **env)
    assert p.returncode == 0, p.stderr[-3000:]
    part = next(line for line in p.stdout.splitlines() if line.startswith("== the part: ")).split()[3:]
    assert part == ["explorer"]  # 1.5 x 300 s fits the 600 s; with any other page it would not
    rec = records.read_record(runs / "records" / "smoke")
    assert [p["notebooks"] for p in rec.parts] == [part] and set(rec.provenance["pages"]) == set(part)
    assert '"next_part"' in (result / "gpu_record.log").read_text()
    # a second call, a named part: added to the record the first call left
    p = _script(runs, result, "train", "record", **{**env, "PAGES": "eq2_eq4_local_contrastive"})
    assert p.returncode == 0, p.stderr[-3000:]
    rec = records.read_record(runs / "records" / "smoke")
    assert [p["notebooks"] for p in rec.parts] == [["explorer"], ["eq2_eq4_local_contrastive"]]
    assert set(rec.provenance["runs"]) == set(records.planned_names(
        "smoke", notebooks=["eq2_eq4_local_contrastive", "explorer"]))
    with tarfile.open(result / "smoke.tar.gz") as tar:  # what the device brings back: the record with both parts
        assert {"smoke/executed/explorer.ipynb", "smoke/executed/eq2_eq4_local_contrastive.ipynb"} <= \
            set(tar.getnames())
    # without a budget there is no time to fit the part to: one line, before anything
    p = _script(runs, result, "train", **{**env, "BUDGET_S": ""})
    assert p.returncode == 2 and "PAGES=auto chooses the pages that fit the time left: set BUDGET_S" in p.stderr
