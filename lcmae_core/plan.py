"""Every run a build of the book needs, planned before any notebook runs, and trained in parallel.

``plan_runs(scale, notebooks)`` asks each page's run function (``pages.PAGE_RUNS``) for its runs on a planning
``Study``, which records configs instead of training, and returns the distinct configs in the order the pages
ask for them. ``train_runs(configs, jobs)`` trains the missing ones in ``jobs`` worker processes (one thread each
at the smoke and cpu scales, as their presets say): independent runs at once, the longest first, and a run that
needs another (a finetune, a linear probe after its pretraining) as soon as that one has finished. The notebooks
then only load. ``python -m lcmae_core plan --scale cpu --jobs 2`` does both; ``--dry-run`` lists the plan.

A run that fails stops the runs that depend on it; the others go on, and the failures are reported together
(``PlanError``). Two processes never train the same run: the run store's lock (``runs.run_lock``) makes the
second wait and then find it finished.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import ctypes
import json
import multiprocessing
import os
import signal
import sys
import threading
import time

import torch._inductor.config as inductor  # loaded with torch (its compiler's settings, read when a compile starts)
from tqdm.auto import tqdm

from . import configs, scales
from .experiments import Study, describe
from .pages import PAGE_RUNS, page_runs
from .parameters import ParameterError, page_parameters, parse_value
from .errors import UsageError
from .runs import ROOT_HELP, RunError, check_root_writable, is_finished, resolve_root, train_from_dict
from .train.trainer import recorded_epoch_times

# relative cost of one run, for ordering (the longest first packs the workers best); measured at cpu scale:
# MAE 30 s, LC-MAE 55 s, AE 67 s, finetune 22 s, linear probe 2-3 s; SimCLR 96 s of CPU time against MAE's 28 in
# the same session, one thread (it encodes all 49 tokens of two views of every image; on the attention pages' 48-px
# photos, one epoch: 64 s against the 4-block-decoder MAE's 24)
COST = {"mae": 1.0, "lcmae": 1.9, "ae": 2.2, "simclr": 3.4, "finetune": 0.75, "linprobe": 0.1}


class PlanError(RuntimeError):
    """Runs of the plan that failed (one line per run)."""


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def check_jobs(jobs: int | None, flag: str = "--jobs") -> int | None:
    """A worker count from a command line, checked once for every tool: at least 1 (``UsageError``), and no more than
    the usable cores, to which a larger one is capped with one line on stderr (each worker trains on a core of its
    own: more only make them wait on each other). None stays None (the scale's default)."""
    if jobs is None:
        return None
    if jobs < 1:
        raise UsageError(f"{flag} must be at least 1, got {jobs}")
    cores = usable_cores()
    if jobs > cores:
        print(f"note: {flag} {jobs} is more than the {cores} usable cores; training {cores} at a time", file=sys.stderr)
        return cores
    return jobs


def default_jobs(scale: str) -> int:
    """Worker processes by default: the usable cores where each run trains on one thread (the smoke and cpu scales),
    else one (a GPU)."""
    return usable_cores() if configs.scale_record(scale).parallel_runs else 1


def plan_by_page(scale: str, notebooks=None, run_root: str | None = None, data_root: str | None = None,
                 device: str = "auto", seeds=None, params: dict | None = None) -> list[tuple[str, configs.RunConfig]]:
    """(page, config) of every distinct run the notebooks (default: every page) need at a scale, in the order
    asked for, each under the first page that asks for it (``lcmae_core.budget`` prices them page by page).
    params: {notebook: its parameters} (the ``-p`` values each declares, ``parameters.page_parameters``): the runs
    are those the notebooks will ask for with them (``pages.page_runs``)."""
    planner: list = []
    study = Study(scale=scale, run_root=run_root, data_root=data_root, device=device, verbose=False, seeds=seeds,
                  planner=planner)
    names = list(PAGE_RUNS) if notebooks is None else [n for n in notebooks if n in PAGE_RUNS]
    seen, out = set(), []
    for name in names:
        start = len(planner)
        page_runs(name, study, (params or {}).get(name))
        for cfg in planner[start:]:
            run = configs.run_name(cfg)
            if run not in seen:
                seen.add(run)
                out.append((name, cfg))
    return out


def plan_runs(scale: str, notebooks=None, run_root: str | None = None, data_root: str | None = None,
              device: str = "auto", seeds=None, params: dict | None = None) -> list[configs.RunConfig]:
    """The distinct run configs the notebooks (default: every page) need at a scale, with their parameters
    (``params``, as ``plan_by_page``), in the order asked for."""
    return [cfg for _, cfg in plan_by_page(scale, notebooks, run_root, data_root, device, seeds, params)]


def cost(cfg) -> float:
    """A run's relative cost: its family's per-epoch cost at the cpu preset (``COST``), times its epochs and its
    number of patches over the digits' 49 (attention is quadratic and the MLPs linear in it; the attention pages'
    48-px MAE measured 4.3 digit-MAE epochs per epoch, this gives 2.9). Orders the runs and drives the estimate."""
    m = cfg.model
    tokens = (m.img_size // m.patch_size) ** 2
    return COST.get(cfg.family, 1.0) * cfg.optim.epochs * tokens / 49


def _train_one(cfg_dict: dict, root: str) -> tuple[str, float, dict]:
    """Worker: train (or find) one run; returns (name, seconds, its epochs' seconds as ``trainer.epoch_times``)."""
    t0 = time.time()
    run = train_from_dict(cfg_dict, root)
    return run.name, time.time() - t0, recorded_epoch_times(run.metrics)


def _die_with_parent(parent: int) -> None:
    """Worker initializer: end this worker when the process that started it dies (killed, or ended by a signal it
    does not handle), instead of training on as an orphan. Linux: the kernel sends SIGTERM at once
    (PR_SET_PDEATHSIG); elsewhere, and for the moment before that is set, a thread watches the parent's id."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux
        pass

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def compile_threads(jobs: int) -> int:
    """The processes each of ``jobs`` workers may use to compile its kernels (torch.compile on CUDA): its share of
    the cores. Inductor's default is every core for each process, which for many runs side by side on one GPU (the
    gpu scale: 12 workers on 16 cores) would start 12 pools of 16 compiler processes at once."""
    return max(1, usable_cores() // max(1, jobs))


def _start_worker(parent: int, threads: int) -> None:
    """Worker initializer: end with the parent (``_die_with_parent``); compile with ``threads`` processes."""
    _die_with_parent(parent)
    if "TORCHINDUCTOR_COMPILE_THREADS" not in os.environ:  # a value the user set wins
        inductor.compile_threads = threads


def worker_pool(jobs: int) -> cf.ProcessPoolExecutor:
    """``jobs`` spawned worker processes (each imports torch once) that end with the process that made them, each
    compiling with its share of the cores (``compile_threads``)."""
    return cf.ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                  initializer=_start_worker, initargs=(os.getpid(), compile_threads(jobs)))


def train_runs(cfgs: list, root: str | None = None, jobs: int = 1, progress: bool = True,
               log=None) -> dict[str, float]:
    """Train the configs that are not finished yet; returns {run name: seconds} of those trained here.

    jobs > 1: that many worker processes (spawned, so each imports torch once); jobs 1: in this process. A run
    whose ``pretrain`` names another run of the list waits for it. Raises ``PlanError`` naming every run that
    failed or could not start because its pretraining failed."""
    root = resolve_root(root)
    todo = {configs.run_name(c): c for c in cfgs if not is_finished(c, root)}
    if not todo:
        return {}
    deps = {n: (c.pretrain if getattr(c, "pretrain", None) in todo else None) for n, c in todo.items()}
    done: dict[str, float] = {}
    failed: dict[str, str] = {}
    # the bar counts cost units (``cost``), so that its estimate of the time left weighs a long run as such; the
    # runs finished are its postfix
    units = {n: cost(c) for n, c in todo.items()}
    bar = tqdm(total=round(sum(units.values()), 1), desc=f"training {len(todo)} runs, {jobs} at a time",
               disable=not progress, unit="cost", bar_format="{l_bar}{bar}| {postfix} [{elapsed}<{remaining}]")
    bar.set_postfix_str(f"0/{len(todo)} runs")
    log = log or bar.write  # one JSON line per finished run, above the progress bar

    def ready():
        out = [n for n in todo if n not in done and n not in failed and n not in running
               and (deps[n] is None or deps[n] in done)]
        return sorted(out, key=lambda n: -cost(todo[n]))

    def blocked():
        return [n for n in todo if n not in done and n not in failed and deps[n] in failed]

    def note(name, seconds=None, error=None, epochs=None):
        event = {"event": "run", "run": name, "family": todo[name].family, "ok": error is None}
        if seconds is not None:
            event["seconds"] = round(seconds, 1)
        event.update(epochs or {})  # the first epoch and the median one (trainer.epoch_times)
        if error:
            event["error"] = error
        log(json.dumps(event))
        finished = len(done) + len(failed)
        bar.update(min(units[name], bar.total - bar.n))
        bar.set_postfix_str(f"{finished}/{len(todo)} runs")

    running: dict = {}
    keep_freed_memory()
    try:  # the bar is closed however the plan ends: a Ctrl-C's line then starts a line of its own
        if jobs <= 1:
            for name in ready_order(todo, deps):
                if deps[name] in failed:
                    failed[name] = f"its pretraining {deps[name]} failed"
                    note(name, error=failed[name])
                    continue
                try:
                    _, done[name], epochs = _train_one(configs.to_dict(todo[name]), root)
                    note(name, done[name], epochs=epochs)
                except Exception as e:  # noqa: BLE001 - collected and reported together
                    failed[name] = _one_line(e)
                    note(name, error=failed[name])
        else:
            with worker_pool(jobs) as pool:
                while True:
                    for name in ready()[: max(0, jobs - len(running))]:
                        running[name] = pool.submit(_train_one, configs.to_dict(todo[name]), root)
                    for name in blocked():
                        failed[name] = f"its pretraining {deps[name]} failed"
                        note(name, error=failed[name])
                    if not running:
                        break
                    finished, _ = cf.wait(list(running.values()), return_when=cf.FIRST_COMPLETED)
                    for name in [n for n, f in running.items() if f in finished]:
                        fut = running.pop(name)
                        try:
                            _, done[name], epochs = fut.result()
                            note(name, done[name], epochs=epochs)
                        except Exception as e:  # noqa: BLE001
                            failed[name] = _one_line(e)
                            note(name, error=failed[name])
    finally:
        bar.close()
    if failed:
        raise PlanError("; ".join(f"{n}: {e}" for n, e in failed.items()))
    return done


# glibc gives the memory a training step frees back to the system and the next step faults it in again: about
# 27,000 page faults a second on the cpu preset, 5-10% of a step spent in the kernel (measured). Set before the
# worker processes start (glibc reads them once); children, the notebook kernels included, inherit them.
MALLOC_ENV = {"MALLOC_TRIM_THRESHOLD_": str(1 << 30), "MALLOC_MMAP_THRESHOLD_": str(1 << 30),
              "MALLOC_TOP_PAD_": str(1 << 28)}


def keep_freed_memory() -> None:
    """Keep freed heap memory in the processes started from here (``MALLOC_ENV``; a value already set wins)."""
    for k, v in MALLOC_ENV.items():
        os.environ.setdefault(k, v)


def ready_order(todo: dict, deps: dict) -> list[str]:
    """A sequential order in which every run comes after the run it needs, the longest first among the ready."""
    order, placed = [], set()
    while len(order) < len(todo):
        ready = sorted((n for n in todo if n not in placed and (deps[n] is None or deps[n] in placed)),
                       key=lambda n: -cost(todo[n]))
        if not ready:
            raise PlanError("the plan has a dependency cycle: " + ", ".join(n for n in todo if n not in placed))
        order.append(ready[0])
        placed.add(ready[0])
    return order


def _one_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[-1] if lines else ''}"


# ---------------------------------------------------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scale", default="cpu", choices=scales.NAMES, help="the scale of the book (default cpu)")
    p.add_argument("--only", nargs="+", default=None, metavar="NOTEBOOK", help="plan only these pages' runs")
    p.add_argument("--jobs", type=int, default=None,
                   help="worker processes (default: the usable cores at smoke and cpu scale, 1 otherwise)")
    p.add_argument("--run-root", default=None, help=ROOT_HELP)
    p.add_argument("--data-root", default=None, help="dataset root for the gpu and paper scales")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    p.add_argument("--dry-run", action="store_true", help="list the runs (and which are finished); train nothing")
    p.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="a notebook parameter, as the batch takes it (e.g. -p mask_ratios \"[0.9, 0.75]\"): the "
                        "runs the notebooks will ask for with it are planned")


def run(args: argparse.Namespace) -> int:
    args.jobs = check_jobs(args.jobs)
    unknown = [n for n in (args.only or []) if n not in PAGE_RUNS]
    if unknown:
        print(f"error: no runs are planned for {', '.join(unknown)}; choose from {', '.join(PAGE_RUNS)}",
              file=sys.stderr)
        return 2
    try:
        given = {k: parse_value(v) for k, v in args.parameter}
        params = page_parameters(args.only or list(PAGE_RUNS), given) if given else None
        cfgs = plan_runs(args.scale, args.only, args.run_root, args.data_root, args.device, params=params)
    except (configs.ConfigError, ParameterError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    root = resolve_root(args.run_root)
    if args.dry_run:
        for c in cfgs:
            # name, state, and what the run is (which mask ratio, setting, seed): the names are hashes
            print(f"{configs.run_name(c)}\t{'finished' if is_finished(c, root) else 'to train'}\t{describe(c)}, "
                  f"seed {c.seed}")
        return 0
    try:
        check_root_writable(root)
    except RunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        trained = train_runs(cfgs, root, args.jobs or default_jobs(args.scale))
    except PlanError as e:
        print(f"error: runs failed: {e}", file=sys.stderr)
        return 1
    except RunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{len(cfgs)} runs planned, {len(trained)} trained now, in {root}")
    return 0


def add_cli_commands(register) -> None:
    register("plan", "list, and train in parallel, every run the book's notebooks need at a scale", add_arguments, run)
