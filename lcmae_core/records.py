"""Records: one execution of the whole book at a scale, packed with its provenance, committed under ``records/`` and
shown beside every build.

``python -m lcmae_core record --scale gpu --out records`` (``make_record``):

1. plans every run of every page and trains the missing ones in parallel worker processes, then executes every
   notebook (``batch.run_batch``), the pages' records (metrics, claims) going into the record itself;
2. packs ``<out>/<name>/``: ``results/<scale>/<page>/{metrics,claims}.json`` (the layout of a build's results store,
   so the same code reads both), ``executed/<page>.ipynb`` (the notebooks with their outputs), ``figures/<page>-<k>.png``
   (every figure of every page), and ``provenance.json``: the commit, every run's name (its config hash), the
   hardware, torch, the command, the wall time per page and in all, and the training's (``training_span``);
3. writes ``<out>/<name>.tar.gz``, the same folder as one archive (to carry it back from a GPU machine), and refuses
   one over ``MAX_ARCHIVE_MIB``.

A record may be made in parts (``--only``) where one session cannot execute the whole book: each part adds its pages
to the record of that name (replacing them where it held them) with its own provenance (``parts``), so that a record
grows over several GPU sessions; the pages it lacks are named (``Record.missing``). A record is *stale* when the
code now plans other runs for its scale and parameters than each of its parts ran for its pages (``Record.stale``):
the pages then mark it as such, and a test fails, instead of hiding it. ``page_view`` shows a record's table,
figures and verdicts beside this build's (the paper's words | the record | this build); ``summary_rows`` gives the
results summary a column per record, and ``reproducibility_summary`` its opening.
"""

from __future__ import annotations

import base64
import html
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import scales
from .atomic import atomic_write_json
from .configs import run_name
from .data import dataset_info, known_train_size
from .batch import LAST, REPO, BatchError, failures, list_notebooks, run_batch, select
from .errors import OneLineParser, UsageError, interruptible
from .parameters import ParameterError, page_parameters, parse_value
from .plan import PAGE_RUNS, check_jobs, plan_runs
from .record_files import WIDGET_STATE, WIDGET_VIEW, extract_figures, make_path_free, path_free
from .results import hardware_info, load_all, table_frame
from .runs import ROOT_HELP, resolve_root

RECORDS_DIR = REPO / "records"
FORMAT = 1
MAX_ARCHIVE_MIB = 16
PROVENANCE = "provenance.json"


class RecordError(RuntimeError):
    """A record that cannot be made or read. One line."""


# ---------------------------------------------------------------------------------------------------------------
# making a record
def git_commit(repo: Path = REPO) -> dict:
    """{"commit": the checkout's HEAD, "dirty": uncommitted changes to tracked files} ("unknown" outside git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True, check=True)
        return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "dirty": None}


def planned_names(scale: str, parameters: dict | None = None, data_root: str | None = None,
                  notebooks: list[str] | None = None) -> list[str]:
    """The run names (config hashes) the book (or only ``notebooks``) plans at a scale with the given ``-p`` values,
    sorted."""
    params = page_parameters(list(PAGE_RUNS), parameters) if parameters else None
    return sorted({run_name(c) for c in plan_runs(scale, notebooks, data_root=data_root, params=params)})


def make_record(scale: str, out: str | os.PathLike = RECORDS_DIR, name: str | None = None,
                run_root: str | None = None, data_root: str | None = None, device: str = "auto",
                jobs: int | None = None, parameters: dict | None = None, progress: bool = True,
                train: bool = True, timeout: int | None = None, only: list[str] | None = None) -> Path:
    """Execute the whole book at ``scale`` and pack it as a record in ``<out>/<name>`` (default name: the scale);
    returns the folder. With ``only``, execute those pages alone and add them, as a part, to the record of that name
    (made if there is none; the pages it held are replaced). Raises ``RecordError`` (one line) for a failed page, a
    record of that name at another scale or parameters, or an archive over the limit."""
    scales.get(scale)
    name = name or scale
    out = Path(out)
    final = out / name
    work = out / f".{name}.tmp"
    shutil.rmtree(work, ignore_errors=True)
    try:
        only = select(list_notebooks(), only) if only else None
    except BatchError as e:
        raise RecordError(str(e)) from None
    existing = _existing_parts(final, scale, parameters, only)
    only = _closing(only, existing)
    before = _kept_parts(existing, scale, parameters, only)
    if before:  # the record's other pages stay as they were; the ones this part executes again go
        shutil.copytree(final, work)
        for page in only:
            shutil.rmtree(work / "results" / scale / page, ignore_errors=True)
            (work / "executed" / f"{page}.ipynb").unlink(missing_ok=True)
            for f in (work / "figures").glob(f"{page}-*.png"):
                f.unlink()
    (work / "figures").mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    previous = os.environ.get("LCMAE_RESULTS_ROOT")
    os.environ["LCMAE_RESULTS_ROOT"] = str(work / "results")  # the kernels inherit it: the pages record here
    try:
        records = run_batch(scale, work / "executed", only=only, data_root=data_root, run_root=run_root,
                            device=device, progress=progress, jobs=jobs, parameters=parameters, train=train,
                            timeout=timeout)
    except BatchError as e:
        raise RecordError(str(e)) from None
    finally:
        if previous is None:
            os.environ.pop("LCMAE_RESULTS_ROOT", None)
        else:
            os.environ["LCMAE_RESULTS_ROOT"] = previous
    failed = [r for r in records if not r["ok"]]
    if failed:
        raise RecordError(f"{len(failed)} page(s) failed, so no record was made: {failures(records)}; the executed "
                          f"copies are in {work / 'executed'}")
    places = machine_places(run_root, data_root, out)
    make_path_free(work, places, keep=(PROVENANCE,))
    figures = {}
    for r in records:
        nb = work / "executed" / f"{r['notebook']}.ipynb"
        figures[r["notebook"]] = extract_figures(nb, work / "figures", r["notebook"]) if nb.exists() else []
    root = resolve_root(run_root)
    names = planned_names(scale, parameters, data_root, only)
    runs = {}
    for n in names:
        f = Path(root) / n / "metrics.json"
        if f.exists():
            m = json.loads(f.read_text())
            runs[n] = {k: m.get(k) for k in ("family", "device_name", "train_time_s", "train_cpu_time_s")}
            runs[n]["started"] = run_started(Path(root) / n)
    end = time.time()
    part = {
        "notebooks": only, **git_commit(), "made_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "hardware": hardware_info(),
        "command": path_free(" ".join(["python -m lcmae_core record", *sys.argv[2:]]), places, quoted=False),
        "run_names": names, "runs": runs,
        "pages": {r["notebook"]: {"wall_s": r.get("wall_s"), "reused": bool(r.get("reused"))} for r in records},
        "figures": figures, "wall_s": round(end - t0, 1), "training": training_span(runs, end),
    }
    provenance = {"format": FORMAT, "name": name, "scale": scale, "seeds": list(scales.get(scale).seeds),
                  "parameters": parameters or {}, **merged([*before, part])}
    atomic_write_json(work / PROVENANCE, provenance)
    archive = out / f"{name}.tar.gz"
    tmp_archive = out / f".{name}.tar.gz.tmp"
    with tarfile.open(tmp_archive, "w:gz") as tar:
        tar.add(work, arcname=name)
    size = tmp_archive.stat().st_size / 2**20
    if size > MAX_ARCHIVE_MIB:
        tmp_archive.unlink()
        raise RecordError(f"the record's archive is {size:.1f} MiB, over the {MAX_ARCHIVE_MIB} MiB limit; lower the "
                          f"figures' resolution or the pages' n_images (kept unpacked in {work})")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(work, final)
    os.replace(tmp_archive, archive)
    return final


def machine_places(run_root: str | None, data_root: str | None, out: str | os.PathLike) -> dict[str, str]:
    """{absolute path on this machine: what a committed record says instead}: the run store, the dataset root, the
    record's folder and the checkout, which the executed notebooks name (papermill's paths, a page's messages, the
    parameters injected) and which mean nothing on another machine."""
    places = {str(Path(out).resolve()): "<records>", resolve_root(run_root): "<run store>", str(REPO): "<checkout>"}
    if data_root:
        places[os.path.abspath(data_root)] = "<data root>"
    return places


def _closing(only: list[str] | None, before: list[dict]) -> list[str] | None:
    """A part's pages with the closing ones (``batch.LAST``: the statistics appendix and the results summary, which
    read every other page's record): added to the part that completes the record and to every part after it, so
    that they always read the record as it stands; refused in a part that leaves the record without some page."""
    if not only:
        return only
    book = list_notebooks()
    held = {k for p in before for k in p["pages"]} | set(only)
    lacking = [n for n in book if n not in LAST and n not in held]
    if lacking:
        asked = [n for n in only if n in LAST]
        if asked:
            raise RecordError(f"{', '.join(asked)} read(s) every other page's record, and the record would still lack "
                              f"{', '.join(lacking)}: record those first (the closing pages go with the part that "
                              "completes the record)")
        return only
    return select(book, [*only, *LAST])


def _existing_parts(final: Path, scale: str, parameters: dict | None, only: list[str] | None) -> list[dict]:
    """The parts of the record at ``final`` that a part executing ``only`` adds to (none for a record of the whole
    book, which replaces the folder); one line where that record holds another scale or other parameters."""
    if not only or not (final / PROVENANCE).exists():
        return []
    old = read_record(final)
    if old.scale != scale or (old.provenance.get("parameters") or {}) != (parameters or {}):
        raise RecordError(f"the record {final} holds the {old.scale} scale with parameters "
                          f"{old.provenance.get('parameters') or {}}, not the {scale} scale with {parameters or {}}; "
                          "give this part another --name")
    return old.parts


def _kept_parts(parts: list[dict], scale: str, parameters: dict | None, only: list[str] | None) -> list[dict]:
    """``parts`` as a part executing ``only`` keeps them: without its pages, each standing for the pages it keeps."""
    kept = []
    for p in parts:
        pages = {k: v for k, v in p["pages"].items() if k not in only}
        if len(pages) == len(p["pages"]):
            kept.append(p)
        elif pages:  # it now stands for the pages it keeps: their runs, judged for staleness as those pages alone
            names = set(p["run_names"]) & set(planned_names(scale, parameters, notebooks=list(pages)))
            kept.append({**p, "notebooks": list(pages), "run_names": sorted(names), "pages": pages,
                         "runs": {n: r for n, r in p["runs"].items() if n in names},
                         "figures": {k: v for k, v in p["figures"].items() if k in pages}})
    return kept


def merged(parts: list[dict]) -> dict:
    """A record's provenance over its parts: the newest part's commit, hardware and command, every part's runs, pages
    and figures, and the wall and training times summed over the parts, with the parts themselves (``parts``)."""
    last = parts[-1]
    training = [p.get("training") or {} for p in parts]
    elapsed = [t.get("elapsed_s") for t in training]
    return {**{k: last.get(k) for k in ("commit", "dirty", "made_at", "hardware", "command")},
            "run_names": sorted({n for p in parts for n in p["run_names"]}),
            "runs": {n: r for p in parts for n, r in p["runs"].items()},
            "pages": {k: v for p in parts for k, v in p["pages"].items()},
            "figures": {k: v for p in parts for k, v in p["figures"].items()},
            "wall_s": round(sum(p.get("wall_s") or 0.0 for p in parts), 1),
            "training": {"runs": sum(t.get("runs") or 0 for t in training),
                         "train_s": round(sum(t.get("train_s") or 0.0 for t in training), 1),
                         "elapsed_s": round(sum(elapsed), 1) if None not in elapsed else None},
            "parts": parts}


def run_started(run_dir: Path) -> float | None:
    """When a run first started (its log's first event, Unix seconds; a resumed run keeps its first start)."""
    try:
        with open(run_dir / "log.jsonl") as f:
            return float(json.loads(f.readline())["time"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def training_span(runs: dict, end: float) -> dict:
    """The record's training, beside the pages' execution (``wall_s``, which a record made after a separate train
    step does not count): its runs, their training seconds summed (one worker each, side by side), and the elapsed
    seconds from the first run's start to ``end``, the record's (every call of a record that spanned several)."""
    started = [r["started"] for r in runs.values() if r.get("started")]
    return {"runs": sum(r.get("train_time_s") is not None for r in runs.values()),
            "train_s": round(sum(r.get("train_time_s") or 0.0 for r in runs.values()), 1),
            "elapsed_s": round(end - min(started), 1) if started else None}


# ---------------------------------------------------------------------------------------------------------------
# reading records
@dataclass
class Record:
    """A record folder: its provenance and its pages' results (``load_all`` on its ``results`` folder)."""

    path: Path
    provenance: dict

    @property
    def name(self) -> str:
        return self.provenance["name"]

    @property
    def scale(self) -> str:
        return self.provenance["scale"]

    def pages(self) -> dict[str, dict]:
        return load_all(self.scale, results_path=self.path / "results")

    def page(self, page: str) -> dict | None:
        return self.pages().get(page)

    def figures(self, page: str) -> list[Path]:
        return [self.path / "figures" / f for f in self.provenance.get("figures", {}).get(page, [])]

    @property
    def parts(self) -> list[dict]:
        """The executions that made the record, oldest first, each with its own provenance and the pages it holds."""
        p = self.provenance
        return p.get("parts") or [{"notebooks": None, **{k: v for k, v in p.items() if k not in (
            "format", "name", "scale", "seeds", "parameters")}}]

    def missing(self) -> list[str]:
        """The book's pages the record does not hold (none for a record of the whole book)."""
        return [n for n in list_notebooks() if n not in self.provenance.get("pages", {})]

    def stale(self) -> tuple[bool, str]:
        """Does the code now plan other runs at the record's scale and parameters than the record ran (each part, for
        the pages it executed)? (stale, why)"""
        counted = 0
        for part in self.parts:
            try:
                now = planned_names(self.scale, self.provenance.get("parameters") or None,
                                    notebooks=part.get("notebooks"))
            except (ParameterError, ValueError, UsageError) as e:
                return True, f"its parameters no longer apply: {e}"
            then = part.get("run_names", [])
            if now != then:
                new, gone = sorted(set(now) - set(then)), sorted(set(then) - set(now))
                pages = f" for {', '.join(part['notebooks'])}" if part.get("notebooks") else ""
                return True, (f"stale: the code now plans other runs at the {self.scale} scale{pages} ({len(new)} new, "
                              f"{len(gone)} no longer planned, e.g. {(new or gone)[0]}); remake it with "
                              f"{part.get('command')}")
            counted += len(now)
        parts = f" over its {len(self.parts)} parts" if len(self.parts) > 1 else ""
        return False, f"current: the code plans the {counted} run{'s' if counted != 1 else ''} it ran{parts}"

    @staticmethod
    def _part_text(p: dict) -> str:
        hw = p.get("hardware") or {}
        where = hw.get("gpu") or f"{hw.get('cores')} CPU cores"
        t = p.get("training") or {}
        took = f"{(p.get('wall_s') or 0) / 60:.0f} min executing the pages"
        if t.get("elapsed_s"):
            runs = (f"1 run, {t['train_s'] / 60:.0f} min of training" if t["runs"] == 1 else
                    f"{t['runs']} runs, {t['train_s'] / 60:.0f} min of training summed over them")
            took += f", {t['elapsed_s'] / 60:.0f} min from its first run's start to the end ({runs})"
        return (f"on {where} (torch {hw.get('torch')}), {took}, commit {str(p.get('commit'))[:10]}"
                f"{' (uncommitted changes)' if p.get('dirty') else ''}, made {p.get('made_at')}")

    def provenance_text(self) -> str:
        p = self.provenance
        head = f"{p['name']}: the {p['scale']} scale, {len(p.get('seeds', []))} seeds"
        parts, missing = self.parts, self.missing()
        if len(parts) == 1 and (not parts[0].get("notebooks") or not missing):  # the whole book in one go
            return f"{head}, {self._part_text(parts[0])}"
        text = f"{head}, in {len(parts)} part{'s' if len(parts) > 1 else ''}: " + "; ".join(
            f"{', '.join(part['pages'])} {self._part_text(part)}" for part in parts)
        return text + (f"; not yet recorded: {', '.join(missing)}" if missing else "")


def read_record(folder: str | os.PathLike) -> Record:
    """A record folder; a folder without a readable provenance is one line naming it."""
    folder = Path(folder)
    f = folder / PROVENANCE
    try:
        prov = json.loads(f.read_text())
    except FileNotFoundError:
        raise RecordError(f"{folder} is not a record: it has no {PROVENANCE} (make one with python -m lcmae_core "
                          "record)") from None
    except json.JSONDecodeError as e:
        raise RecordError(f"{f} is not valid JSON ({e.msg}, line {e.lineno}); remake the record") from None
    if prov.get("format") != FORMAT or not {"name", "scale", "run_names"} <= set(prov):
        raise RecordError(f"{f} is not a record's provenance of format {FORMAT}; remake the record")
    return Record(folder, prov)


def list_records(root: str | os.PathLike = RECORDS_DIR) -> list[Record]:
    """Every record under ``root`` (folders with a provenance), by name."""
    root = Path(root)
    if not root.is_dir():
        return []
    return [read_record(p) for p in sorted(root.iterdir()) if (p / PROVENANCE).exists()]


# ---------------------------------------------------------------------------------------------------------------
# showing records
def page_rows(page: str, claims_now: list, records: list[Record]) -> list[dict]:
    """One row per claim of a page: the paper's words, each record's verdict, this build's."""
    rows = []
    for c in claims_now:
        row = {"claim": c.id, "the paper": c.text}
        for r in records:
            got = r.page(page)
            match = [x for x in (got or {}).get("claims", {}).get("claims", []) if x["id"] == c.id]
            row[f"record {r.name}"] = match[0]["verdict"] if match else "not in the record"
        row["this build"] = c.verdict
        rows.append(row)
    return rows


class PageView:
    """A page's records as the reader sees them (HTML: the book and JupyterLab render it): for each record its
    provenance and whether it is current, its table, its figures, and each claim's verdict beside this build's
    (the paper's words | the record | this build)."""

    def __init__(self, page: str, claims_now: list, records: list[Record]):
        self.page, self.claims_now, self.records = page, list(claims_now), list(records)

    def _repr_html_(self) -> str:
        import pandas as pd  # lazy: the book's tables only (requirements.txt), not the library core (pyproject)

        if not self.records:
            return ("<p>No record is committed yet: <code>python -m lcmae_core record --scale gpu --out records</code> "
                    "executes the whole book at the gpu scale and packs it under <code>records/</code> (with "
                    "<code>--only PAGE ...</code>, a part of it, which later parts complete), and every page then "
                    "shows it here beside this build.</p>")
        parts = []
        for rec in self.records:
            stale, why = rec.stale()
            parts.append(f"<h4>Record {html.escape(rec.name)}{' (stale)' if stale else ''}</h4>"
                         f"<p>{html.escape(rec.provenance_text())}; {html.escape(why)}.</p>")
            if self.page not in rec.provenance.get("pages", {}):
                parts.append(f"<p>This page is not in the record yet: <code>python -m lcmae_core record --scale "
                             f"{html.escape(rec.scale)} --name {html.escape(rec.name)} --only {html.escape(self.page)}"
                             "</code> adds it.</p>")
                continue
            # a page the record holds; one that records no metrics (the explorer) shows its figures alone
            table = ((rec.page(self.page) or {}).get("metrics") or {}).get("table")
            if table:
                parts.append(table_frame(table).to_html(border=0))
            for f in rec.figures(self.page):
                data = base64.b64encode(f.read_bytes()).decode()
                parts.append(f'<img alt="{html.escape(f.name)}" style="max-width:100%" '
                             f'src="data:image/png;base64,{data}"/>')
        rows = page_rows(self.page, self.claims_now, self.records)
        if rows:  # a page without claims (the explorer, the appendices) shows its records' tables and figures alone
            parts.append("<h4>Verdicts: the paper's words, the records, this build</h4>"
                         + pd.DataFrame(rows).set_index("claim").to_html(border=0))
        return "\n".join(parts)


def page_view(page: str, claims_now: list, root: str | os.PathLike = RECORDS_DIR) -> PageView:
    """The records of ``root`` beside this build's verdicts for one page (``PageView``)."""
    return PageView(page, claims_now, list_records(root))


def summary_rows(loaded: dict, records: list[Record]) -> list[dict]:
    """The results summary's claims: one row per claim of this build, a verdict column per record."""
    rows = []
    for nb, r in loaded.items():
        for c in r["claims"]["claims"]:
            row = {"page": nb, "claim": c["id"], "this build": c["verdict"]}
            for rec in records:
                got = rec.page(nb) or {}
                match = [x for x in got.get("claims", {}).get("claims", []) if x["id"] == c["id"]]
                row[f"record {rec.name}"] = match[0]["verdict"] if match else "not in the record"
            rows.append(row)
    return rows


def reproducibility_summary(records: list[Record], scale_now: str, loaded_now: dict) -> str:
    """The results page's opening, in the manner of ReScience and the ML Reproducibility Challenge: per record and
    for this build, how many of the paper's claims were tested, at which scale, and their verdicts."""
    def counts(loaded) -> str:  # "31 claims, holds 1, ..." ("0 claims" where the pages hold none)
        verdicts = [c["verdict"] for r in loaded.values() for c in r["claims"]["claims"]]
        return ", ".join([f"{len(verdicts)} claims", *(f"{v} {verdicts.count(v)}" for v in dict.fromkeys(verdicts))])

    lines = []
    for rec in records:
        stale, why = rec.stale()
        have, lack = len(rec.provenance.get("pages", {})), len(rec.missing())
        held = f"{have} of {have + lack} pages, " if lack else ""
        lines.append(f"- **{rec.provenance_text()}**: {held}{counts(rec.pages())} ({why}).")
    lines.append(f"- **this build** (the {scale_now} scale): {counts(loaded_now)}.")
    if not records:
        lines.insert(0, "- no record is committed yet: `python -m lcmae_core record --scale gpu --out records` makes one.")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# what differs from the paper
def _planned_recipe(scale: str) -> dict:
    """The configs a scale's pages train, as the planner sees them: Table 1's MAE baseline and LC-MAE (a), the
    attention pages' MAE, and the baseline's finetuning and linear probe."""
    from .experiments import Study  # lazy: experiments sits above this module's readers

    planned: list = []
    study = Study(scale=scale, verbose=False, planner=planned)
    base = study.mae()
    study.lcmae("a")
    study.for_attention().attention_mae()
    study.finetune(base)
    study.linprobe(base)
    return dict(zip(("mae", "lcmae", "attention_mae", "finetune", "linprobe"), planned))


def _encoder_text(c) -> str:
    m = c.model
    g = m.img_size // m.patch_size
    return (f"ViT of width {m.embed_dim}, depth {m.depth}, {m.num_heads} heads; patch {m.patch_size} on "
            f"{m.img_size} px ({g}x{g} tokens)")


def _data_text(c) -> str:
    n = known_train_size(c.data)
    size = f"{n:,} samples an epoch" if n else "every image of the folder an epoch"
    return f"{c.data.dataset} ({dataset_info(c.data.dataset).description}; {size})"


def _schedule_text(c) -> str:
    o = c.optim
    text = (f"{o.epochs:g} epochs ({o.warmup_epochs:g} warming up), batch {o.batch_size}, base rate {o.base_lr:g} "
            f"(absolute {o.absolute_lr():.3g})")
    if o.decoder_lr_scale != 1.0:
        text += f"; the decoder at {o.decoder_lr_scale:g} times that rate (the paper trains one rate)"
    return text


def differences(scale_names, reference: str = "paper") -> list[dict]:
    """What differs between the paper's recipe (the ``reference`` scale) and each of ``scale_names``: one row per
    aspect (model, data, schedules, mask ratios, seeds, probe, finetuning, hardware), read from the configs the
    planner makes for each scale's pages, so that it cannot drift from what runs. [{"aspect", reference, scale...}]"""
    names = list(dict.fromkeys([reference, *scale_names]))
    recipes = {n: _planned_recipe(n) for n in names}
    recs = {n: scales.get(n) for n in names}

    def finetuning(n):
        r = recs[n]
        if r.finetune_seeds == 0:
            return "not trained (the finetuning claims are not testable at this scale)"
        return _schedule_text(recipes[n]["finetune"])

    def probe(n):
        c = recipes[n]["linprobe"]
        if c.probe == "logreg":
            return "logistic regression solved to convergence on frozen features, C chosen on held-out data"
        return f"trained by LARS: {_schedule_text(c)}"

    aspects = {
        "encoder (Tables 1-3)": lambda n: _encoder_text(recipes[n]["mae"]),
        "encoder (the attention pages)": lambda n: _encoder_text(recipes[n]["attention_mae"]),
        "decoder": lambda n: (f"width {recipes[n]['mae'].model.decoder_embed_dim}; depth "
                              f"{recipes[n]['mae'].model.decoder_depth} (Tables 1-2), "
                              f"{recipes[n]['attention_mae'].model.decoder_depth} (the attention pages)"),
        "pretraining data (Tables 1-3)": lambda n: _data_text(recipes[n]["mae"]),
        "pretraining data (the attention pages)": lambda n: _data_text(recipes[n]["attention_mae"]),
        "labelled task": lambda n: _data_text(recipes[n]["finetune"]),
        "MAE pretraining (Tables 1-3)": lambda n: _schedule_text(recipes[n]["mae"]),
        "MAE pretraining (the attention pages)": lambda n: _schedule_text(recipes[n]["attention_mae"]),
        "LC-MAE pretraining": lambda n: _schedule_text(recipes[n]["lcmae"]),
        "mask ratio (Fig. 6's)": lambda n: (f"{recipes[n]['mae'].mask_ratio:g} ("
                                            + ", ".join(f"{r:g}" for r in recs[n].fig6_mask_ratios) + ")"),
        "seeds": lambda n: f"{len(recs[n].seeds)} (" + ", ".join(map(str, recs[n].seeds)) + ")",
        "linear probe": probe,
        "finetuning": finetuning,
        "hardware": lambda n: recs[n].hardware,
    }
    return [{"aspect": a, **{n: text(n) for n in names}} for a, text in aspects.items()]


# ---------------------------------------------------------------------------------------------------------------
def add_arguments(p) -> None:
    p.add_argument("--scale", default="gpu", choices=scales.NAMES, help="the scale to record (default gpu)")
    p.add_argument("--out", default=str(RECORDS_DIR), help="where the record's folder and archive go "
                   "(default: records/ of the checkout)")
    p.add_argument("--name", default=None, help="the record's name (default: the scale)")
    p.add_argument("--run-root", default=None, help=ROOT_HELP)
    p.add_argument("--data-root", default=None, help="dataset root, where the scale reads one")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    p.add_argument("--jobs", type=int, default=None, help="training worker processes (default: the scale's)")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="a notebook parameter for every page that declares it, as batch takes it")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--only", nargs="+", default=None, metavar="NOTEBOOK",
                   help="execute only these pages and add them, as a part, to the record of this name (made if there "
                        "is none; the pages it held are replaced): a record made over several sessions")


def run(args) -> int:
    args.jobs = check_jobs(args.jobs)
    try:
        folder = make_record(args.scale, args.out, args.name, args.run_root, args.data_root, args.device, args.jobs,
                             {k: parse_value(v) for k, v in args.parameter} or None, not args.no_progress,
                             only=args.only)
    except (RecordError, ParameterError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2 if isinstance(e, ParameterError) else 1
    rec = read_record(folder)
    print(f"record written to {folder} (and {folder}.tar.gz): {rec.provenance_text()}")
    return 0


def add_cli_commands(register) -> None:
    register("record", "execute the whole book (or some pages of it) at a scale and pack it, with its provenance, "
             "as a record",
             add_arguments, run)


@interruptible
def main(argv=None) -> int:
    p = OneLineParser(prog="python -m lcmae_core.records", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["RECORDS_DIR", "FORMAT", "MAX_ARCHIVE_MIB", "RecordError", "Record", "make_record", "read_record",
           "list_records", "planned_names", "page_rows", "page_view", "PageView", "summary_rows",
           "reproducibility_summary", "differences", "git_commit", "extract_figures", "merged", "machine_places",
           "path_free", "make_path_free", "WIDGET_STATE", "WIDGET_VIEW"]
