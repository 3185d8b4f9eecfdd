"""The book end to end at smoke scale: every notebook runs under papermill and records its results, nbval
re-executes each one against its outputs, and the built book renders offline in headless Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from lcmae_core import batch, results
from lcmae_core import claims as claims_module
from lcmae_core.build import build_html, vendor_assets

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = batch.list_notebooks()
REQUIRED_PARAMETERS = ("scale", "data_root", "run_root", "device", "launcher")
RECORD_NOTHING = ("explorer", "results_summary", "appendix_statistics", "appendix_cpu_scale")  # pages that record no claims of their own


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """Every notebook executed at smoke scale into a fresh folder, with a fresh run store."""
    base = tmp_path_factory.mktemp("smoke")
    out, run_root = base / "executed", base / "runs"
    records = batch.run_batch("smoke", out, run_root=str(run_root), progress=False, timeout=900)
    return {"out": out, "run_root": run_root, "records": {r["notebook"]: r for r in records}}


def test_there_are_notebooks_for_the_papers_tables_and_figures():
    for name in ("table3_fig7_figA1_autoencoders", "explorer", "results_summary"):
        assert name in NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_starts_with_prose_then_a_parameters_cell(name):
    nb = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    names = {line.split("=")[0].strip() for line in code[0].source.splitlines() if "=" in line}
    assert set(REQUIRED_PARAMETERS) <= names
    assert 'scale = "cpu"' in code[0].source
    assert all(not c.get("outputs") for c in code), "commit notebooks without outputs"
    # the book shows prose, tables and figures, the code folded under them; JupyterLab shows every cell
    assert all("hide-input" in c.metadata.get("tags", []) for c in code[1:]), "tag code cells hide-input"
    assert "import lcmae_core" in "\n".join(c.source for c in code) or "from lcmae_core" in code[1].source


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_at_smoke_scale_and_records_results(smoke, name):
    rec = smoke["records"][name]
    assert rec["ok"], rec["error"]
    assert (smoke["out"] / f"{name}.ipynb").is_file()
    # a reader sees no warning (a library's deprecation, a dtype cast) printed into a page
    nb = nbformat.read(smoke["out"] / f"{name}.ipynb", as_version=4)
    warned = [o.text for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stderr"]
    assert not warned, f"{name} prints to stderr: {warned[0][:300]}"
    if name in RECORD_NOTHING:
        return
    folder = results.results_root(smoke["run_root"]) / "smoke" / name
    metrics = json.loads((folder / "metrics.json").read_text())
    claims = json.loads((folder / "claims.json").read_text())
    assert set(results.METRICS_KEYS) <= set(metrics) and metrics["notebook"] == name
    assert metrics["scale"] == "smoke" and metrics["metrics"]
    assert set(results.CLAIMS_KEYS) <= set(claims) and claims["claims"]
    for c in claims["claims"]:
        assert set(results.CLAIM_KEYS) <= set(c)
        assert c["verdict"] in results.VERDICTS and c["text"] and c["evidence"] and c["why"]
    assert {c["id"] for c in claims["claims"]} == {fn_claim_id(f) for f in claims_module.PAGES[name]}


def fn_claim_id(fn) -> str:
    """The claim id a claim function records (the first string argument of the Claim it builds)."""
    import inspect
    import re

    ids = set(re.findall(r'"((?:S32|T1|T2|T3|TA1|F2|F3|F4|F5|F6|FA1)-[a-z0-9-]+)"', inspect.getsource(fn)))
    assert len(ids) == 1, (fn.__name__, ids)
    return ids.pop()


def test_run_status_page_lists_every_notebook(smoke):
    rows = json.loads((smoke["out"] / "run_status.json").read_text())
    assert {r["notebook"] for r in rows} == set(NOTEBOOKS)
    page = (smoke["out"] / "run_status.md").read_text()
    assert all(name in page for name in NOTEBOOKS)


def test_results_summary_gathers_every_page(smoke):
    nb = nbformat.read(smoke["out"] / "results_summary.ipynb", as_version=4)
    text = json.dumps([c.get("outputs", []) for c in nb.cells if c.cell_type == "code"])
    for name in NOTEBOOKS:
        if name not in RECORD_NOTHING:
            assert name in text


def test_nbval_reexecution_matches_the_stored_outputs(smoke):
    """nbval re-executes each executed notebook (the same parameters, the same run store, so every run is reused)
    and compares every output, sanitised by tests/nbval_sanitize.cfg. The notebooks are shared out over as many
    pytest processes as there are cores for this test (under ``make test``'s workers, its worker's share of them)."""
    from conftest import cores_per_worker

    files = sorted(str(p) for p in smoke["out"].glob("*.ipynb") if not p.name.startswith("."))
    assert files
    workers = max(1, min(cores_per_worker() or len(os.sched_getaffinity(0)), len(files)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"} if workers > 1 else None
    procs = [subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval",
                               "--nbval-sanitize-with", str(REPO / "tests" / "nbval_sanitize.cfg"),
                               "--nbval-cell-timeout", "600", "--rootdir", str(smoke["out"]), *files[i::workers]],
                              cwd=smoke["out"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
             for i in range(workers)]
    outs = [p.communicate(timeout=1800)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-4000:]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


CONSOLE_ERRORS = ("Uncaught", "Error", "Failed to load resource", "net::ERR_")


def _dom(browser: str, page: Path | str, tmp: Path, console: list | None = None) -> str:
    """The page's DOM after its scripts ran (``page``: a file or a URL); its console errors are appended to
    ``console`` (lines naming an uncaught exception, an error or a failed load)."""
    profile = tmp / "chromium-profile"
    url = page.as_uri() if isinstance(page, Path) else page
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--no-first-run", "--disable-sync", f"--user-data-dir={profile}",
           "--virtual-time-budget=20000", "--enable-logging=stderr", "--v=0", "--dump-dom", url]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if console is not None:
        console += [line for line in res.stderr.splitlines()
                    if ":CONSOLE" in line and any(e in line for e in CONSOLE_ERRORS)]
    return res.stdout


class _Served:
    """The built HTML on a local HTTP server (as a reader's browser gets it), recording every request it could not
    serve."""

    def __init__(self, folder: Path):
        import functools
        import http.server
        import threading

        missing = self.missing = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, fmt, *args):
                pass

            def send_error(self, code, *args, **kwargs):
                if self.path != "/favicon.ico":
                    missing.append(f"{code} {self.path}")
                super().send_error(code, *args, **kwargs)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      functools.partial(Handler, directory=str(folder)))
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()


def test_book_builds_and_renders_offline(smoke, tmp_path):
    """Build the book from the smoke-scale notebooks, then check in headless Chromium, with no network, that
    equations are typeset by the bundled MathJax and the explorer's sliders appear from the frozen widget state."""
    browser = _chromium()
    if browser is None:
        pytest.fail("headless Chromium is needed (make test installs Debian's chromium package)")
    root = tmp_path / "book-root"
    root.mkdir()
    for f in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO / f, root / f)
    shutil.copytree(REPO / "book", root / "book", ignore=shutil.ignore_patterns("executed", "vendor*"))
    vendor_assets(root / "book" / "_static" / "vendor")
    shutil.copytree(smoke["out"], root / "book" / "executed", ignore=shutil.ignore_patterns(".*", "slurm"))
    assert build_html(root) == 0
    html = root / "_build" / "html"
    method = _dom(browser, html / "book" / "method.html", tmp_path)
    assert "mjx-container" in method, "equations were not typeset"
    explorer = _dom(browser, html / "book" / "executed" / "explorer.html", tmp_path)
    assert "widget-slider" in explorer and "noUi-target" in explorer, "the explorer's sliders did not render"
    assert "mask ratio" in explorer
    assert "note admonition" in explorer and "admonition-title\">Scale: smoke" in explorer, "no scale admonition"
    assert "Rerun this page at a larger scale" in explorer and "--only explorer" in explorer
    fig6 = _dom(browser, html / "book" / "executed" / "fig6_attention_distance_mask_ratio.html", tmp_path)
    assert "admonition-title\">Scale: smoke" in fig6 and "--only fig6_attention_distance_mask_ratio" in fig6, \
        "a page whose start() does not end its cell lost its notes"
    summary = _dom(browser, html / "book" / "executed" / "results_summary.html", tmp_path)
    assert "Paper vs reproduced" in summary and "precondition" in summary and "null controls" in summary
    for page in (method, explorer, summary):
        assert "https://cdn" not in page and "unpkg.com/@jupyter-widgets" not in page
    # served as a reader gets it: no page logs a console error, and nothing it asks for is missing (the widget
    # manager's fonts included)
    served, console = _Served(html), []
    try:
        for page in ("intro", "method", "executed/explorer", "executed/table1_lcmae_ablation",
                     "executed/fig6_attention_distance_mask_ratio", "executed/results_summary"):
            page = f"book/{page}.html"
            _dom(browser, f"{served.base}/{page}", tmp_path, console)
    finally:
        served.close()
    assert not console, "console errors:\n" + "\n".join(console[:10])
    assert not served.missing, "requests that failed:\n" + "\n".join(served.missing[:10])
    # a build that fails (here a reference to nothing, a warning under -W) leaves the last good HTML in place
    good = (html / "book" / "intro.html").read_text()
    intro = root / "book" / "intro.md"
    intro.write_text(intro.read_text() + "\nSee {ref}`no-such-label`.\n")
    assert build_html(root) != 0
    assert (html / "book" / "intro.html").read_text() == good and not (root / ".build.tmp").exists()


def test_table_of_contents_lists_every_notebook():
    toc = (REPO / "_toc.yml").read_text()
    for name in NOTEBOOKS:
        assert f"book/executed/{name}\n" in toc, f"{name} is missing from _toc.yml"
    assert "book/executed/run_status" in toc


def test_gpu_and_paper_pages_say_what_hardware_they_need():
    from lcmae_core.book import scale_admonition

    for scale, kind, words in (("gpu", "important", "GPU"), ("paper", "important", "cluster"), ("cpu", "note", "CPU")):
        text = scale_admonition(scale).data
        assert f'<div class="{kind} admonition"><p class="admonition-title">Scale: {scale}</p>' in text
        assert words in text and ":::" not in text


def test_glued_numbers_are_rounded_to_what_their_noise_supports():
    from lcmae_core.stats import prose_number

    assert prose_number(14.318123) == 14.3 and prose_number(0.449412) == 0.449 and prose_number(93.25) == 93.2
    assert prose_number(238.14) == 238.1 and prose_number(-0.0012345) == -0.00123 and prose_number(0.0) == 0.0
    assert prose_number(1.0) == 1.0 and prose_number(float("nan")) != prose_number(float("nan"))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_page_says_how_to_rerun_it_at_the_larger_scales(name):
    from lcmae_core import book
    from lcmae_core.parameters import declared_parameters

    nb = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
    assert f'page="{name}"' in "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    cmds = book.rerun_commands(name)
    trains = "train" in declared_parameters(REPO / "notebooks" / f"{name}.ipynb")
    for scale, (batch_cmd, papermill) in cmds.items():
        assert batch_cmd.startswith(f"python -m lcmae_core batch --scale {scale} --data-root DIR")
        assert f"--only {name}" in batch_cmd
        assert papermill.startswith(f"papermill notebooks/{name}.ipynb ") and f"-p scale {scale}" in papermill
        assert ("--train" in batch_cmd) == trains and ("-p train True" in papermill) == trains
    assert "--launcher slurm" in cmds["paper"][0] and "--launcher" not in cmds["gpu"][0]
    box = book.rerun_box(name)
    assert "Rerun this page at a larger scale" in box and all(c in box for c in cmds["gpu"])


def test_page_parameters_are_planned_and_trained_before_the_page_runs(tmp_path):
    """A page run with -p values (another mask ratio) finds every run trained by the batch's plan: the page itself
    trains nothing (in a planned batch a run the plan missed fails the page, naming it)."""
    fig6 = "fig6_attention_distance_mask_ratio"
    recs = batch.run_batch("smoke", tmp_path / "o", only=[fig6], run_root=str(tmp_path / "runs"), progress=False,
                           parameters={"mask_ratios": [0.9, 0.75], "seeds": [0]})
    assert recs[0]["ok"], recs[0]["error"]
    from lcmae_core import configs, plan

    planned = plan.plan_runs("smoke", [fig6], str(tmp_path / "runs"),
                             params={fig6: {"mask_ratios": [0.9, 0.75], "seeds": [0]}})
    assert sorted(c.mask_ratio for c in planned) == [0.75, 0.9] and {c.seed for c in planned} == {0}
    trained = {p.name for p in (tmp_path / "runs").iterdir() if (p / "metrics.json").exists()}
    assert {configs.run_name(c) for c in planned} == trained


def test_a_pages_tables_show_every_cell_whole(capsys):
    """pandas cuts a cell at 50 characters by default; after ``book.start`` the trend over epochs keeps its end."""
    import pandas as pd

    from lcmae_core import book

    trend = ", ".join(f"{e}: {0.5 + e / 1000:.3f}" for e in range(0, 90, 10))
    frame = pd.DataFrame({"by epoch": [trend]})
    with pd.option_context("display.max_colwidth", 50):
        assert "80: 0.580" not in frame._repr_html_()  # the default cuts it
        book.start("smoke")
        assert "80: 0.580" in frame._repr_html_() and "80: 0.580" in repr(frame)
