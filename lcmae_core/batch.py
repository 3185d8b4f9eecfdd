"""Run the book's notebooks with papermill: in this process, or one SLURM job per notebook through submitit.

``python -m lcmae_core batch --scale gpu --data-root DIR [--only NAME ...] [--launcher slurm ...] [--jobs N]``
first trains every run the notebooks need (``lcmae_core.plan``: N worker processes, independent runs at once),
then executes every notebook of ``notebooks/`` into an output folder (``book/executed`` by default), which the
book build then renders without executing anything again. Alongside the notebooks it writes ``run_status.json`` and
``run_status.md``: each notebook's scale, wall time, hardware and outcome. Any failure gives a non-zero exit.

The results summary (``results_summary.ipynb``) always runs last, since it reads what the others recorded.
"""

from __future__ import annotations

if __name__ == "__main__":  # python -m lcmae_core.batch: a Ctrl-C during the imports below is one line too
    from lcmae_core.errors import quiet_interrupts_while_importing

    quiet_interrupts_while_importing()

import argparse
import concurrent.futures as cf
import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

from . import scales
from .atomic import atomic_write_json, atomic_write_text
from .configs import ConfigError, check_device, check_scale, scale_record
from .errors import OneLineParser, UsageError, interruptible
from .experiments import BATCH_ENV, PLANNED_ENV
from .parameters import (NOTEBOOK_DIR, UNEVALUATED, ParameterError, check_page, declared_parameters,
                         page_parameters, parse_value)
from .plan import PlanError, check_jobs, default_jobs, keep_freed_memory, plan_runs, train_runs
from .pretrained import CheckpointError, check_file
from .reference_models import DEIT_FILES, DINO_FILES, MAE_DECODER_FILES, MAE_ENCODER_FILES
from .runs import LAUNCHERS, ROOT_HELP, RunError, check_root_writable

from .results import hardware_info, results_root

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "book" / "executed"
LAST = ("appendix_statistics", "results_summary")  # run after every other notebook: they read the pages' records

class BatchError(RuntimeError):
    pass


def _folder(path, flag: str) -> Path:
    """Make an output folder, or a BatchError that names the flag and the cause (a file in the way, no permission)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BatchError(f"{flag} {path} cannot be used as a folder ({e.strerror or type(e).__name__}); choose "
                         "another path") from None
    return path


def list_notebooks(notebook_dir: Path | None = None) -> list[str]:
    """Notebook names (without .ipynb) in run order: alphabetical, with the results summary last."""
    names = sorted(p.stem for p in Path(notebook_dir or NOTEBOOK_DIR).glob("*.ipynb") if not p.name.startswith("."))
    return [n for n in names if n not in LAST] + [n for n in LAST if n in names]


def select(names: list[str], only: list[str] | None) -> list[str]:
    if not only:
        return names
    unknown = [o for o in only if o not in names]
    if unknown:
        raise BatchError(f"unknown notebook(s) {', '.join(unknown)}; choose from {', '.join(names)}")
    return [n for n in names if n in only]


def library_digest() -> str:
    """A hash of the library's code: an executed notebook is stale when it changes."""
    h = hashlib.sha256()
    lib = REPO / "lcmae_core"
    for f in sorted(lib.rglob("*.py")):
        h.update(f.relative_to(lib).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def input_key(name: str, scale: str, parameters: dict, notebook_dir: Path, library: str) -> str:
    """What an executed notebook depends on: its source, its parameters and the library's code."""
    h = hashlib.sha256()
    h.update((Path(notebook_dir) / f"{name}.ipynb").read_bytes())
    h.update(json.dumps({"scale": scale, **parameters}, sort_keys=True).encode())
    h.update(library.encode())
    return h.hexdigest()[:16]


def read_status(out_dir: Path) -> dict[str, dict]:
    """{notebook: its status record} of an executed folder's run_status.json; {} where there is none, or where it was
    cut off or edited (one line on stderr says so: the next batch rewrites it)."""
    f = Path(out_dir) / "run_status.json"
    if not f.exists():
        return {}
    try:
        return {r["notebook"]: r for r in json.loads(f.read_text())}
    except (ValueError, KeyError, TypeError) as e:
        print(f"note: {f} is not a run-status record ({type(e).__name__}: cut off or edited); it is rewritten when "
              "this batch ends", file=sys.stderr)
        return {}


def reusable(name: str, key: str, out_dir: Path) -> dict | None:
    """The status record of an earlier successful execution with the same inputs, if its output is still there.

    The results summary is never reused: it reads what the other pages recorded.
    """
    if name in LAST or not (out_dir / f"{name}.ipynb").exists():
        return None
    old = read_status(out_dir).get(name)
    if old and old.get("ok") and old.get("key") == key:
        return {**old, "reused": True}
    return None


def non_default_parameters(notebook: str | Path, parameters: dict) -> dict:
    """The entries of ``parameters`` whose values differ from the defaults in the notebook's parameters cell
    (a parameter the notebook does not declare is kept, as papermill would inject it)."""
    try:
        defaults = declared_parameters(Path(notebook))
    except Exception:  # noqa: BLE001 - a notebook papermill cannot inspect: inject everything, as before
        return dict(parameters)
    return {k: v for k, v in parameters.items() if k not in defaults or defaults[k] is UNEVALUATED
            or defaults[k] != v}


def execute_one(name: str, scale: str, out_dir: str, parameters: dict, notebook_dir: str = str(NOTEBOOK_DIR),
                progress: bool = True, timeout: int | None = None, variant: dict | None = None) -> dict:
    """Execute one notebook with papermill; returns its status record. Never raises for a notebook error.

    A failed execution leaves the last good page in place (the failed copy, with its error cell, goes to
    ``failed/<name>.ipynb``; it takes the page's place only where no good one was there). variant: the ``-p`` values
    the user gave this page: its results record is then kept apart (``variant_record``) and the page's default
    record stays."""
    import papermill as pm  # lazy: optional, and slow to import (python -m lcmae_core loads this module)

    src = Path(notebook_dir) / f"{name}.ipynb"
    dst = Path(out_dir) / f"{name}.ipynb"
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp.ipynb")
    before = read_status(Path(out_dir)).get(name, {})  # a good page, or a failure that kept the good page before it
    good_before = dst.exists() and bool(before.get("ok") or before.get("kept_good"))
    results_dir = results_root(parameters.get("run_root") or None) / scale / name
    t0 = time.time()
    status = {"notebook": name, "scale": scale, "hardware": hardware_info(), "ok": True, "error": None}
    if variant:
        status["parameters"] = dict(variant)
    with variant_record(results_dir, variant) as kept:
        try:
            # only the values that differ from the notebook's own defaults are injected: a page built at its default
            # scale shows its one, commented parameters cell instead of a second, injected copy
            given = non_default_parameters(src, {"scale": scale, **parameters})
            pm.execute_notebook(str(src), str(tmp), parameters=given,
                                cwd=str(REPO), progress_bar=progress, kernel_name="python3",
                                execution_timeout=timeout, log_output=False,
                                # the outputs are in once the last cell ends: the kernel is stopped then, not asked to
                                # exit (a kernel that imported torch takes about 2.5 s to, a quarter of a smoke page)
                                shutdown_kernel="immediate")
        except Exception as e:  # papermill.PapermillExecutionError and friends
            lines = [ln.strip() for ln in _ANSI.sub("", str(e)).splitlines() if ln.strip()]
            status.update(ok=False, error=f"{type(e).__name__}: {lines[-1] if lines else ''}")
        finally:
            if tmp.exists():
                if status["ok"] or not good_before:
                    os.replace(tmp, dst)  # the executed notebook (with the error cell where no good page was)
                else:
                    status["kept_good"] = True  # the last good page stays; the failed copy goes beside it
                if not status["ok"]:
                    failed = dst.parent / "failed" / dst.name
                    failed.parent.mkdir(exist_ok=True)
                    if tmp.exists():
                        os.replace(tmp, failed)
                    else:
                        shutil.copyfile(dst, failed)
                    status["failed_copy"] = str(failed)
    if kept:
        status["record"] = str(kept[0])
        print(f"{name} ran with -p {json.dumps(variant)}: its record is kept in {kept[0]}; the page's default record "
              f"stays in {results_dir}", flush=True)
    status["wall_s"] = round(time.time() - t0, 2)
    return status


@contextlib.contextmanager
def variant_record(results_dir: Path, variant: dict | None):
    """Around a page run with ``-p`` values (``variant``): the page's default record (``results_dir``) is set
    aside, and afterwards the page's new record moves to ``<results_dir>@p-<digest>`` with the values in
    ``parameters.json``, and the default comes back. Yields a list holding that folder once made (empty else)."""
    kept: list = []
    if not variant:
        yield kept
        return
    digest = hashlib.sha256(json.dumps(variant, sort_keys=True).encode()).hexdigest()[:8]
    aside = results_dir.with_name(f".{results_dir.name}.default")
    target = results_dir.with_name(f"{results_dir.name}@p-{digest}")
    had_default = results_dir.is_dir()
    if had_default:
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(results_dir, aside)
    try:
        yield kept
    finally:
        if results_dir.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            os.replace(results_dir, target)
            atomic_write_json(target / "parameters.json", variant)
            kept.append(target)
        if had_default:
            os.replace(aside, results_dir)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def failures(records: list[dict]) -> str:
    """One line naming each failed notebook with the last line of its error, e.g. ``results_summary
    (PapermillExecutionError: FileNotFoundError: no page has recorded results ...)``; '' when none failed."""
    return "; ".join(f"{r['notebook']} ({r['error']})" if r.get("error") else r["notebook"]
                     for r in records if not r["ok"])


def write_status(out_dir: Path, records: list[dict]) -> None:
    """run_status.json (machine-readable) and run_status.md (the book's run-status page)."""
    f = out_dir / "run_status.json"
    old = read_status(out_dir)
    old.update({r["notebook"]: r for r in records})
    rows = [old[k] for k in sorted(old)]
    atomic_write_json(f, rows)
    lines = ["# Run status", "",
             "Each notebook of this build: the scale it ran at, its wall time, the hardware, and the outcome. "
             "This page is written by the batch runner (`python -m lcmae_core.batch`).", "",
             "| notebook | scale | wall time (s) | hardware | outcome |", "|---|---|---|---|---|"]
    # a reused notebook shows the wall time of the execution that made it
    for r in rows:
        hw = r["hardware"]
        where = hw.get("gpu") or f"{hw.get('cores')} CPU cores ({hw.get('cpu')})"
        outcome = ("ok (reused)" if r.get("reused") else "ok") if r["ok"] else f"failed: {r['error']}"
        if r.get("parameters"):
            outcome += f"; with -p {json.dumps(r['parameters'])}"
        if r.get("failed_copy") and not r["ok"]:
            outcome += "; the last good page was kept" if r.get("kept_good") else ""
        lines.append(f"| {r['notebook']} | {r['scale']} | {r['wall_s']:.1f} | {where}, torch {hw.get('torch')} "
                     f"| {outcome} |")
    atomic_write_text(out_dir / "run_status.md", "\n".join(lines) + "\n")


def run_batch(scale: str, out_dir: str | os.PathLike = DEFAULT_OUT, only: list[str] | None = None,
              data_root: str | None = None, run_root: str | None = None, device: str = "auto",
              launcher: str = "local", notebook_dir: str | os.PathLike | None = None, progress: bool = True,
              slurm: dict | None = None, timeout: int | None = None, reuse: bool = False,
              jobs: int | None = None, parameters: dict | None = None, checkpoints: str | None = None,
              train: bool = False) -> list[dict]:
    """Execute the notebooks; returns their status records (the caller decides the exit code).

    With the local launcher every run the notebooks need is planned first and the missing ones are trained in
    ``jobs`` worker processes (default: the usable cores at the smoke and cpu scales, 1 otherwise); then the
    notebooks run, ``jobs`` at a time.

    reuse: keep an executed notebook whose inputs (source, parameters, library code) have not changed since it
    last ran successfully into ``out_dir``; its training runs come from the run store either way.
    parameters: {name: value} for every notebook that declares the parameter (``-p name value``); checkpoints: a
    folder of the official checkpoint files, given to the pages that analyse them (``CHECKPOINT_PARAMS``); train:
    at the gpu and paper scales, train the runs that are missing (otherwise a page that needs one refuses).
    """
    try:
        check_scale(scale)
        check_device(device)
    except ConfigError as e:
        raise BatchError(str(e)) from None
    notebook_dir = Path(notebook_dir or NOTEBOOK_DIR)
    names = select(list_notebooks(notebook_dir), only)
    if not names:
        raise BatchError(f"no notebooks found in {notebook_dir}")
    out_dir = _folder(out_dir, "--out")
    if run_root:
        try:
            check_root_writable(str(run_root))
        except RunError as e:
            raise BatchError(str(e)) from None
    # "" means $LCMAE_RUN_ROOT, else runs/ of the source checkout (runs.resolve_root), whatever the working directory
    run_root = str(Path(run_root).resolve()) if run_root else ""
    common = {"data_root": data_root or "", "run_root": run_root, "device": device, "launcher": launcher}
    extra = notebook_extras(names, notebook_dir, parameters or {}, checkpoints, train)
    params = {n: {**common, **extra[n]} for n in names}
    # the -p values each page declares: its run then records apart from its default record (``variant_record``)
    variants = {n: v for n, v in page_parameters(names, parameters or {}, notebook_dir).items() if v}
    for n in names:  # every value against its rule and the others, before anything trains (the notebooks check too)
        defaults = {k: v for k, v in declared_parameters(notebook_dir / f"{n}.ipynb").items() if v is not UNEVALUATED}
        try:
            check_page(n, {**defaults, "scale": scale, **params[n]}, notebook_dir)
        except ParameterError as e:
            raise BatchError(str(e)) from None
    check_checkpoint_files(extra)
    library = library_digest()
    keys = {n: input_key(n, scale, params[n], notebook_dir, library) for n in names}
    reused = {n: r for n in names if reuse and (r := reusable(n, keys[n], out_dir))}
    todo = [n for n in names if n not in reused]
    # gpu and paper runs take hours to days: planned and trained only when asked (--train); without it a page that
    # needs a missing run refuses in its first seconds, naming what to pass instead
    planned = launcher == "local" and todo and (train or not scale_record(scale).ask_before_training)
    if planned:
        train_planned(scale, [n for n in todo if not _uses_checkpoints(extra[n])], run_root or None, data_root,
                      device, jobs, extra, progress)
    os.environ[BATCH_ENV] = "1"  # the kernels inherit it: no per-run progress bars in executed notebooks
    if planned:  # the kernels inherit it: a run the plan missed fails its page, named, instead of training alone
        os.environ[PLANNED_ENV] = "1"
    try:
        if launcher == "slurm":
            records = _run_slurm(todo, scale, out_dir, params, str(notebook_dir), slurm or {}, timeout, variants)
        else:
            keep_freed_memory()  # the kernels inherit it: the analysis pages allocate and free large maps per batch
            records = _run_local(names, reused, scale, out_dir, params, str(notebook_dir), progress, timeout,
                                 jobs or default_jobs(scale), variants)
    finally:
        os.environ.pop(PLANNED_ENV, None)
    for rec in records:
        rec["key"] = keys[rec["notebook"]]
    records += list(reused.values())
    records.sort(key=lambda r: names.index(r["notebook"]))
    write_status(out_dir, records)
    return records


# the pages that analyse released checkpoints (the checkpoint route), their parameters and the official file names
# each can read (``reference_models``: the first found wins)
CHECKPOINT_PARAMS = {
    "fig2_fig3_decoder_position_semantics": {"mae_checkpoint": MAE_DECODER_FILES, "reference": DINO_FILES},
    "fig4_figB1_decoder_attention_maps": {"mae_checkpoint": MAE_DECODER_FILES},
    "fig5_attention_distance_pretraining": {
        "mae_checkpoint": MAE_ENCODER_FILES, "dino": DINO_FILES, "deit": DEIT_FILES},
    "explorer": {"mae_checkpoint": MAE_DECODER_FILES},
}


def notebook_extras(names: list[str], notebook_dir: Path, parameters: dict, checkpoints: str | None,
                    train: bool) -> dict[str, dict]:
    """Each notebook's parameters beyond the common ones: the ``-p`` values it declares (each checked against the
    type of its default), the checkpoint files of ``checkpoints`` for the pages that take them, ``train``.
    Raises ``BatchError`` (one line) for a parameter no selected notebook takes, a badly typed value, a missing
    checkpoint folder or a file missing from it (``check_checkpoint_files`` reads the files themselves)."""
    try:
        given = page_parameters(names, parameters, notebook_dir)
    except ParameterError as e:
        raise BatchError(str(e)) from None
    if checkpoints is not None and not os.path.isdir(checkpoints):
        raise BatchError(f"checkpoint folder {checkpoints} does not exist; pass --checkpoints DIR holding the "
                         "official files (e.g. mae_visualize_vit_base.pth, dino_vitbase16_pretrain.pth)")
    out = {}
    for n in names:
        extra = dict(given[n])
        if train and "train" in declared_parameters(Path(notebook_dir) / f"{n}.ipynb"):
            extra["train"] = True
        if checkpoints is not None:
            for param, files in CHECKPOINT_PARAMS.get(n, {}).items():
                if param in extra:
                    continue
                found = [os.path.join(checkpoints, f) for f in files if os.path.isfile(os.path.join(checkpoints, f))]
                if not found:
                    raise BatchError(f"{n} needs one of {', '.join(files)} in {checkpoints} (or pass -p {param} "
                                     "FILE)")
                extra[param] = os.path.abspath(found[0])
        out[n] = extra
    return out


def check_checkpoint_files(extras: dict[str, dict]) -> None:
    """Each checkpoint file a page is given exists and is not empty (read after the values are checked: a wrong
    value is named before a file is opened). Raises ``BatchError`` (one line, naming the page and the -p to pass)."""
    for n, extra in extras.items():
        for param in CHECKPOINT_PARAMS.get(n, {}):
            if extra.get(param):
                try:
                    check_file(extra[param], f"replace it, or pass -p {param} FILE")
                except CheckpointError as e:
                    raise BatchError(f"{n}: {e}") from None


def _uses_checkpoints(extra: dict) -> bool:
    return bool(extra.get("mae_checkpoint"))


def _run_local(names, reused, scale, out_dir, params, notebook_dir, progress, timeout, jobs,
               variants) -> list[dict]:
    """Execute the notebooks here, ``jobs`` at a time (each kernel then gets cores / jobs torch threads); the
    results summary last, on its own."""
    for i, name in enumerate(names):
        if name in reused:
            print(f"[{i + 1}/{len(names)}] {name}: unchanged since its last run, reused", flush=True)
    todo = [n for n in names if n not in reused]
    first, last = [n for n in todo if n not in LAST], [n for n in todo if n in LAST]
    threads = os.environ.get("OMP_NUM_THREADS")
    if jobs > 1 and len(first) > 1:  # the kernels inherit it: two kernels on two cores, one thread each
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))

    def one(name):
        print(f"[{names.index(name) + 1}/{len(names)}] {name} at scale {scale}", flush=True)
        rec = execute_one(name, scale, str(out_dir), params[name], notebook_dir, progress and jobs == 1, timeout,
                          variants.get(name))
        print(f"    {name}: {'ok' if rec['ok'] else 'FAILED'} in {rec['wall_s']:.1f} s"
              + ("" if rec["ok"] else f": {rec['error']}"), flush=True)
        return rec

    try:
        with cf.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            records = list(pool.map(one, first))
    finally:
        if threads is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = threads
    return records + [one(n) for n in last]


def train_planned(scale: str, notebooks: list[str], run_root: str | None, data_root: str | None, device: str,
                  jobs: int | None = None, params: dict | None = None, progress: bool = True) -> None:
    """Before the notebooks run: plan every run they need with the parameters they receive (``params``: {notebook:
    its -p values}; ``lcmae_core.plan``) and train the missing ones in ``jobs`` worker processes, so that the
    notebooks only load. Raises ``BatchError`` naming failed runs."""
    cfgs = plan_runs(scale, notebooks, run_root, data_root, device, params=params)
    jobs = jobs or default_jobs(scale)
    print(f"planned {len(cfgs)} runs for {len(notebooks)} notebook(s); training the missing ones, {jobs} at a time",
          flush=True)
    try:
        train_runs(cfgs, run_root, jobs, progress=progress)
    except PlanError as e:
        raise BatchError(f"runs failed before the notebooks could run: {e}") from None


def _run_slurm(names, scale, out_dir, params, notebook_dir, slurm, timeout, variants):
    """One SLURM job per notebook through submitit; the results summary waits for the others."""
    import submitit  # lazy: optional (pip install submitit), the slurm launcher only

    executor = submitit.AutoExecutor(folder=str(out_dir / "slurm" / "%j"), cluster=slurm.get("cluster"))
    executor.update_parameters(
        name="lcmae-book", timeout_min=int(slurm.get("time_min", 24 * 60)), nodes=int(slurm.get("nodes", 1)),
        gpus_per_node=int(slurm.get("gpus_per_node", 1)), tasks_per_node=1,
        cpus_per_task=int(slurm.get("cpus_per_task", 10)),
        **({"slurm_partition": slurm["partition"]} if slurm.get("partition") else {}),
    )
    first = [n for n in names if n not in LAST]
    jobs = [executor.submit(execute_one, n, scale, str(out_dir), params[n], notebook_dir, False, timeout,
                            variants.get(n)) for n in first]
    for n, j in zip(first, jobs):
        print(f"submitted {n} as job {j.job_id}", flush=True)
    records = [j.result() for j in jobs]
    for n in [n for n in names if n in LAST]:
        records.append(executor.submit(execute_one, n, scale, str(out_dir), params[n], notebook_dir, False,
                                       timeout, variants.get(n)).result())
    return records


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scale", default="cpu", choices=scales.NAMES,
                   help="the scale every notebook runs at (default cpu)")
    p.add_argument("--data-root", default=None, help="dataset root for the gpu and paper scales")
    p.add_argument("--run-root", default=None, help=ROOT_HELP)
    p.add_argument("--out", default=str(DEFAULT_OUT), help="folder for the executed notebooks (default book/executed)")
    p.add_argument("--only", nargs="+", default=None, metavar="NAME", help="run only these notebooks")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (each notebook's cells, the runs)")
    p.add_argument("--launcher", default="local", choices=LAUNCHERS,
                   help="local: in this process; torchrun: notebooks launch multi-GPU training; "
                        "slurm: one job per notebook through submitit")
    p.add_argument("--partition", default=None, help="SLURM partition (with --launcher slurm)")
    p.add_argument("--nodes", type=int, default=1, help="SLURM nodes per job")
    p.add_argument("--gpus-per-node", type=int, default=1, help="GPUs per node")
    p.add_argument("--time-min", type=int, default=24 * 60, help="SLURM time limit per job, minutes")
    p.add_argument("--timeout", type=int, default=None, help="per-cell timeout in seconds")
    p.add_argument("--reuse", action="store_true",
                   help="keep executed notebooks whose source, parameters and library code are unchanged")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="a notebook parameter, for every selected notebook that declares it (as papermill's -p); "
                        "VALUE is a Python literal or plain text, e.g. -p n_images 256 -p mae_checkpoint FILE")
    p.add_argument("--checkpoints", default=None, metavar="DIR",
                   help="a folder of the official checkpoint files (mae_visualize_vit_base.pth, "
                        "mae_pretrain_vit_base.pth, dino_vitbase16_pretrain.pth, deit_base_patch16_224-b5f2ef4d.pth), "
                        "given to the pages that analyse them (Figs. 2-5, the explorer): no training")
    p.add_argument("--train", action="store_true",
                   help="at the gpu and paper scales, train the runs that are missing (hours to days); without it a "
                        "page that needs a missing run refuses in its first seconds")
    p.add_argument("--jobs", type=int, default=None,
                   help="train the notebooks' runs in this many worker processes before the notebooks run, then "
                        "run this many notebooks at a time (default: the usable cores at smoke and cpu scale, "
                        "1 otherwise)")


def run(args: argparse.Namespace) -> int:
    """Execute the batch described by parsed arguments; 0 when every notebook ran, 1 otherwise, 2 on bad input."""
    args.jobs = check_jobs(args.jobs)
    try:
        records = run_batch(args.scale, args.out, args.only, args.data_root, args.run_root, args.device,
                            args.launcher, slurm=dict(partition=args.partition, nodes=args.nodes,
                                                      gpus_per_node=args.gpus_per_node, time_min=args.time_min),
                            timeout=args.timeout, reuse=args.reuse, jobs=args.jobs, progress=not args.no_progress,
                            parameters={k: parse_value(v) for k, v in args.parameter},
                            checkpoints=args.checkpoints, train=args.train)
    except BatchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    failed = [r for r in records if not r["ok"]]
    if failed:
        print(f"error: {len(failed)} notebook(s) failed: {failures(records)}; the executed copies in {args.out} "
              "show the cell", file=sys.stderr)
        return 1
    print(f"all {len(records)} notebooks ran at scale {args.scale}; executed copies in {args.out}")
    return 0


def add_cli_commands(register) -> None:
    """The ``batch`` subcommand of ``python -m lcmae_core``."""
    register("batch", "execute the book's notebooks with papermill at a scale (here, or one SLURM job each)",
             add_arguments, run)


@interruptible
def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m lcmae_core.batch", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    try:
        args = p.parse_args(argv)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
