"""The papermill batch runner: outcomes, exit codes, the run-status page, and the submitit launcher."""

import json

import nbformat
import pytest

from lcmae_core import batch


def _notebook(path, body):
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell('scale = "cpu"\ndata_root = ""\nrun_root = ""\ndevice = "auto"\nlauncher = "local"')
    p.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# test"), p, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture()
def notebooks(tmp_path):
    d = tmp_path / "nbs"
    d.mkdir()
    _notebook(d / "good.ipynb", "print('ran at', scale)")
    _notebook(d / "bad.ipynb", "raise RuntimeError('this notebook fails')")
    _notebook(d / "results_summary.ipynb", "print('summary')")
    return d


def test_order_puts_the_summary_last(notebooks):
    assert batch.list_notebooks(notebooks) == ["bad", "good", "results_summary"]


def test_a_failing_notebook_is_reported_and_the_others_still_run(notebooks, tmp_path):
    out = tmp_path / "out"
    records = batch.run_batch("smoke", out, notebook_dir=notebooks, run_root=str(tmp_path / "runs"), progress=False)
    by = {r["notebook"]: r for r in records}
    assert by["good"]["ok"] and by["results_summary"]["ok"]
    assert not by["bad"]["ok"] and "this notebook fails" in by["bad"]["error"]
    executed = nbformat.read(out / "good.ipynb", as_version=4)
    assert "ran at smoke" in json.dumps(executed.cells[-1].outputs)  # the scale parameter was injected
    status = json.loads((out / "run_status.json").read_text())
    assert {r["notebook"] for r in status} == {"bad", "good", "results_summary"}
    page = (out / "run_status.md").read_text()
    assert "| good | smoke |" in page and "failed" in page
    assert not list(out.glob(".*tmp*"))  # no half-written notebook left behind


def test_cli_exit_codes(notebooks, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(batch, "NOTEBOOK_DIR", notebooks)
    out = str(tmp_path / "o")
    assert batch.main(["--scale", "smoke", "--out", out, "--only", "good"]) == 0
    capsys.readouterr()
    assert batch.main(["--scale", "smoke", "--out", out, "--only", "bad", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()  # one line that names the notebook and its error's last line
    assert len(err.splitlines()) == 1 and "bad (PapermillExecutionError:" in err and "this notebook fails" in err
    assert "\x1b[" not in err
    assert batch.main(["--scale", "smoke", "--out", out, "--only", "missing"]) == 2


def test_slurm_launcher_submits_one_job_per_notebook(notebooks, tmp_path):
    """The same code path as SLURM, through submitit's local executor."""
    out = tmp_path / "out"
    records = batch.run_batch("smoke", out, only=["good", "results_summary"], notebook_dir=notebooks,
                              run_root=str(tmp_path / "runs"), launcher="slurm", slurm={"cluster": "local"},
                              progress=False)
    assert [r["notebook"] for r in records] == ["good", "results_summary"]
    assert all(r["ok"] for r in records)
    jobs = [p for p in (out / "slurm").iterdir() if p.name.isdigit()]
    assert len(jobs) == 2  # one submitit job folder per notebook


def test_reuse_keeps_unchanged_notebooks_and_reruns_changed_ones(notebooks, tmp_path):
    out, runs = tmp_path / "out", str(tmp_path / "runs")
    first = batch.run_batch("smoke", out, only=["good", "results_summary"], notebook_dir=notebooks, run_root=runs,
                            progress=False, reuse=True)
    assert not any(r.get("reused") for r in first)
    again = {r["notebook"]: r for r in batch.run_batch("smoke", out, only=["good", "results_summary"],
                                                       notebook_dir=notebooks, run_root=runs, progress=False,
                                                       reuse=True)}
    assert again["good"].get("reused") and again["good"]["wall_s"] == first[0]["wall_s"]
    assert not again["results_summary"].get("reused")  # the summary always reads the latest results
    assert "ok (reused)" in (out / "run_status.md").read_text()
    _notebook(notebooks / "good.ipynb", "print('changed', scale)")
    changed = batch.run_batch("smoke", out, only=["good"], notebook_dir=notebooks, run_root=runs, progress=False,
                              reuse=True)
    assert not changed[0].get("reused") and changed[0]["ok"]
    other_scale = batch.run_batch("cpu", out, only=["good"], notebook_dir=notebooks, run_root=runs, progress=False,
                                  reuse=True)
    assert not other_scale[0].get("reused")


def test_only_non_default_parameters_are_injected(tmp_path):
    """At a notebook's default values nothing is injected, so the page shows one commented parameters cell."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('scale = "cpu"  # the scale\nn = 3\nitems = list("ab")',
                                          metadata={"tags": ["parameters"]})]
    path = tmp_path / "p.ipynb"
    nbformat.write(nb, path)
    # without a kernel name papermill cannot inspect it: everything is injected
    assert batch.non_default_parameters(path, {"scale": "cpu"}) == {"scale": "cpu"}
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    assert batch.non_default_parameters(path, {"scale": "cpu", "n": 3}) == {}
    assert batch.non_default_parameters(path, {"scale": "smoke", "n": 3}) == {"scale": "smoke"}
    # not a literal: papermill cannot read the default, so a given value is always injected
    assert batch.non_default_parameters(path, {"items": ["a", "b"]}) == {"items": ["a", "b"]}
    assert batch.non_default_parameters(path, {"other": 1}) == {"other": 1}
