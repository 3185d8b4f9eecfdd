"""The run store: a config hashes to ``<root>/<family>-<hash>/``, and ``run_or_load`` trains only what is missing.

A run folder holds ``config.json`` (the full config), ``log.jsonl`` (one JSON object per event),
``checkpoint.pt`` (see ``train.checkpoint``) and, once finished, ``metrics.json`` (written atomically; its
presence marks the run finished).

The root is the ``root`` argument, else ``$LCMAE_RUN_ROOT``, else ``runs/`` of the source checkout, else ``./runs``.

``run_or_load(config)`` returns the finished run, resumes an unfinished one from its checkpoint, or trains a new
one, here (``launcher="local"``), through ``torchrun`` on this machine, or as a SLURM job through submitit.
Two callers on the same run do not collide: the trainer holds an exclusive ``fcntl.flock`` on
``<root>/.locks/<name>.lock``; the second caller waits, then finds the run finished.

Everything that can be checked before training is checked before the run folder is made; a run that fails
before its first checkpoint removes its folder again, so a bad input never leaves a half-made run behind.

Finetuning and linear-probing configs name their pretraining run by its name (``pretrain="mae-<hash>"``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import torch

from . import configs
from .atomic import atomic_write_json
from .configs import run_name
from .data import check_classes, check_data_root, known_train_size
from .train import checkpoint as ckpt_io
from .train import distributed as dist_utils
from .train import finetune, linprobe, pretrain
from .train.trainer import fit, seed_all

LAUNCHERS = ("local", "torchrun", "slurm")


class RunError(RuntimeError):
    """A run that cannot be found, made or trained. One-line message."""


@dataclass
class Run:
    """A run folder. ``metrics`` is None until the run has finished."""

    name: str
    dir: str
    config: dict
    metrics: dict | None = None

    @property
    def finished(self) -> bool:
        return self.metrics is not None

    @property
    def checkpoint(self) -> str:
        return os.path.join(self.dir, "checkpoint.pt")

    @property
    def log(self) -> str:
        return os.path.join(self.dir, "log.jsonl")

    def read_log(self) -> list[dict]:
        if not os.path.exists(self.log):
            return []
        with open(self.log) as f:
            return [json.loads(line) for line in f if line.strip()]


ROOT_HELP = "the run store (default: $LCMAE_RUN_ROOT, else runs/ of the source checkout, else ./runs)"


def checkout_dir() -> str | None:
    """The source checkout this package runs from (the folder holding ``lcmae_core``, ``notebooks`` and
    ``pyproject.toml``: an editable install or the repository itself), else None (an installed package)."""
    top = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    marks = ("pyproject.toml", "notebooks")
    return top if all(os.path.exists(os.path.join(top, m)) for m in marks) else None


def resolve_root(root: str | None = None) -> str:
    """The run store: ``root``, else ``$LCMAE_RUN_ROOT``, else ``runs/`` of the source checkout (where ``make book``
    keeps it, whatever the working directory: JupyterLab runs a notebook in ``notebooks/``), else ``./runs``."""
    if root or os.environ.get("LCMAE_RUN_ROOT"):
        return os.path.abspath(root or os.environ["LCMAE_RUN_ROOT"])
    top = checkout_dir()
    return os.path.join(top, "runs") if top else os.path.abspath("runs")


def check_root_writable(root: str) -> str:
    """Make the root if needed and prove it writable; RunError otherwise."""
    try:
        os.makedirs(root, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=root)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise RunError(f"run root {root} is not writable ({e.strerror or type(e).__name__}); "
                       "pass --run-root DIR or set LCMAE_RUN_ROOT") from None
    return root


def _read_json(path: str):
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise RunError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}): it was cut off or edited; remove "
                       f"that run's folder {os.path.dirname(os.path.abspath(path))} to train it again") from None


def read_run(path: str) -> Run:
    """The run record of a folder (finished or not): name, folder, config and metrics. (The trained model of a
    run is ``reference_models.load_run``.)"""
    cfg_path = os.path.join(path, "config.json")
    if not os.path.exists(cfg_path):
        raise RunError(f"{path} is not a run folder (no config.json)")
    m_path = os.path.join(path, "metrics.json")
    return Run(os.path.basename(os.path.normpath(path)), path, _read_json(cfg_path),
               _read_json(m_path) if os.path.exists(m_path) else None)


def find_run(name: str, root: str | None = None, finished: bool = True) -> Run:
    """A run by name (``family-hash``) under the root; RunError when absent or (with finished) unfinished."""
    path = os.path.join(resolve_root(root), name)
    if not os.path.isdir(path):
        raise RunError(f"no run {name!r} under {resolve_root(root)}; train it first (or give its run store: "
                       "run_root, --run-root on the command line)")
    run = read_run(path)
    if finished and not run.finished:
        raise RunError(f"run {name!r} is not finished; rerun it to resume")
    return run


def run_path(cfg, root: str | None = None) -> str:
    return os.path.join(resolve_root(root), run_name(cfg))


@contextlib.contextmanager
def run_lock(root: str, name: str):
    """Exclusive lock for one run, held for the ``with`` block (blocks while another process holds it)."""
    lock_dir = os.path.join(root, ".locks")
    os.makedirs(lock_dir, exist_ok=True)
    with open(os.path.join(lock_dir, f"{name}.lock"), "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _finished(path: str) -> Run | None:
    if os.path.exists(os.path.join(path, "metrics.json")):
        return read_run(path)
    return None


def finished_metrics(run_dir: str) -> dict:
    """A run folder's metrics once it finished (its ``metrics.json``), {} while it is training or before."""
    try:
        with open(os.path.join(run_dir, "metrics.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def is_finished(cfg, root: str | None = None) -> bool:
    """Has the run of ``cfg`` finished in the run store (its ``metrics.json`` written, the last thing a run does)?"""
    return os.path.exists(os.path.join(run_path(cfg, root), "metrics.json"))


# -------------------------------------------------------------------------------------------------------
def prepare(cfg, root: str | None = None):
    """Validate a config and the root; returns (cfg, root). Raises ConfigError / RunError."""
    cfg = configs.validate(cfg)
    check_data_root(cfg.data)
    check_classes(cfg.data, cfg.family)
    n = known_train_size(cfg.data)
    if n is not None and n < cfg.optim.batch_size:  # drop_last: not one step would fit in an epoch
        raise configs.ConfigError(f"optim.batch_size {cfg.optim.batch_size} is larger than the training set ({n} "
                                  f"samples); set optim.batch_size to at most {n}")
    if getattr(cfg, "pretrain", None):
        find_run(cfg.pretrain, root)  # the pretraining run must exist and be finished
    return cfg, check_root_writable(resolve_root(root))


def pretrained_weights(cfg, root: str | None = None) -> dict | None:
    """The model state dict of the pretraining run a finetune or linear probe starts from (None: random init)."""
    if not getattr(cfg, "pretrain", None):
        return None
    return ckpt_io.load(find_run(cfg.pretrain, root).checkpoint)["model"]


def _builder(family: str):
    return {"finetune": finetune, "linprobe": linprobe}.get(family, pretrain).build


def train_run(cfg, root: str | None = None) -> Run:
    """Train (or resume, or find finished) one run in this process; the entry point of every launcher.

    Under torchrun/SLURM (``WORLD_SIZE`` > 1) every rank calls it; rank 0 holds the lock and writes the files.
    """
    cfg, root = prepare(cfg, root)
    device = dist_utils.init(configs.check_device(cfg.device))
    threads_before = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)  # restored below: a notebook kernel keeps its own setting
    try:
        return _train_run_locked(cfg, root, device)
    finally:
        torch.set_num_threads(threads_before)


def _train_run_locked(cfg, root: str, device) -> Run:
    name = run_name(cfg)
    path = os.path.join(root, name)
    main = dist_utils.rank() == 0
    lock = run_lock(root, name) if main else contextlib.nullcontext()
    with lock:
        done = dist_utils.broadcast_object(_finished(path) is not None if main else None)
        if done:
            return read_run(path)
        seed_all(cfg.seed)  # the initial weights are a function of the seed
        # data and weights are found before any folder is made
        job = _builder(cfg.family)(cfg, device, pretrained_weights(cfg, root))
        if len(job.train_set) < cfg.optim.batch_size:  # an image folder smaller than one batch
            raise configs.ConfigError(f"optim.batch_size {cfg.optim.batch_size} is larger than the training set "
                                      f"({len(job.train_set)} samples); set optim.batch_size to at most "
                                      f"{len(job.train_set)}")
        created = False
        if main:
            created = not os.path.isdir(path)
            os.makedirs(path, exist_ok=True)
            remove_stale_temporaries(path)
            atomic_write_json(os.path.join(path, "config.json"), configs.to_dict(cfg))
        dist_utils.barrier()
        t0, c0 = time.time(), time.process_time()
        try:
            metrics = fit(job, cfg, path, device)
        except BaseException:
            # no checkpoint yet: nothing to resume, so the folder goes (it only holds the config, the log,
            # the initial weight snapshot or temporary files)
            if main and not os.path.exists(os.path.join(path, "checkpoint.pt")) and (created or all(
                    f in ("config.json", "log.jsonl", "tb") or f.startswith("snapshot-") or (f.startswith(".") and f.endswith(".tmp"))
                    for f in os.listdir(path))):
                shutil.rmtree(path, ignore_errors=True)
            raise
        if main:
            record = {**metrics, "run": name, "family": cfg.family, "scale": cfg.scale, "train_time_s":
                      round(time.time() - t0, 2), "train_cpu_time_s": round(time.process_time() - c0, 2),
                      "device": str(device),
                      "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                      "threads": torch.get_num_threads()}
            atomic_write_json(os.path.join(path, "metrics.json"), record)
        dist_utils.barrier()
    return read_run(path)


def remove_stale_temporaries(path: str) -> list[str]:
    """Remove the half-written files an earlier process left in a run folder when it was killed mid-write (the
    ``.<name>.<random>.tmp`` files of ``atomic``): called under the run's lock, so no writer of them is alive.
    Returns their names."""
    gone = [f for f in os.listdir(path) if f.startswith(".") and f.endswith(".tmp")]
    for f in gone:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(path, f))
    return gone


def train_from_dict(cfg_dict: dict, root: str | None = None) -> Run:
    """``train_run`` from a plain config dict (what the torchrun and SLURM launchers ship)."""
    return train_run(configs.from_dict(cfg_dict), root)


def run_or_load(cfg, launcher: str = "local", root: str | None = None, *, nproc_per_node: int = 1,
                slurm: dict | None = None, executor: str = "slurm", wait: bool = True):
    """The finished run for ``cfg``: found, resumed or trained.

    launcher: "local" (this process; under torchrun every rank calls it), "torchrun" (``nproc_per_node``
    processes on this machine), or "slurm" (submitit; ``slurm`` holds ``nodes``, ``gpus_per_node``,
    ``partition``, ``time_min`` (minutes), ``cpus_per_task``, ``mem_gb``; ``executor="local"`` runs the same job
    with submitit's LocalExecutor, for testing). With ``wait=False`` the SLURM launcher returns the submitit
    job instead of the run.
    """
    if launcher not in LAUNCHERS:
        raise RunError(f"unknown launcher {launcher!r}; choose one of {', '.join(LAUNCHERS)}")
    cfg, root = prepare(cfg, root)
    path = os.path.join(root, run_name(cfg))
    done = _finished(path)
    if done is not None:
        return done
    if launcher == "local":
        return train_run(cfg, root)
    if launcher == "torchrun":
        return _launch_torchrun(cfg, root, nproc_per_node)
    return _launch_slurm(cfg, root, slurm or {}, executor, wait)


def _write_launch_config(cfg, root: str) -> str:
    folder = os.path.join(root, ".launch")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{run_name(cfg)}.json")
    atomic_write_json(path, configs.to_dict(cfg))
    return path


def _launch_torchrun(cfg, root: str, nproc: int) -> Run:
    cfg_file = _write_launch_config(cfg, root)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "lcmae_core.launch", cfg_file, "--run-root", root]
    res = subprocess.run(cmd)
    if res.returncode != 0:
        raise RunError(f"torchrun exited with status {res.returncode} for run {run_name(cfg)}; see its output above")
    return find_run(run_name(cfg), root)


class SlurmJob:
    """The callable a SLURM task runs: sets the torch.distributed environment from submitit, then trains."""

    def __init__(self, cfg_dict: dict, root: str):
        self.cfg_dict, self.root = cfg_dict, root

    def __call__(self) -> dict:
        import submitit  # lazy: optional (pip install submitit), the slurm launcher only

        env = submitit.JobEnvironment()
        if env.num_tasks > 1:
            os.environ.update(RANK=str(env.global_rank), LOCAL_RANK=str(env.local_rank),
                              WORLD_SIZE=str(env.num_tasks), MASTER_ADDR=env.hostnames[0],
                              MASTER_PORT=str(20000 + int(str(env.job_id).split("_")[0]) % 20000
                                              if str(env.job_id).split("_")[0].isdigit() else 29512))
        run = train_from_dict(self.cfg_dict, self.root)
        return {"dir": run.dir, "metrics": run.metrics}

    def checkpoint(self):
        """submitit preemption hook: requeue the same job; it resumes from the run's checkpoint."""
        import submitit  # lazy: optional (pip install submitit), the slurm launcher only
        return submitit.helpers.DelayedSubmission(SlurmJob(self.cfg_dict, self.root))


def _launch_slurm(cfg, root: str, slurm: dict, executor: str, wait: bool):
    import submitit  # lazy: optional (pip install submitit), the slurm launcher only

    folder = os.path.join(root, ".slurm", run_name(cfg))
    gpus = int(slurm.get("gpus_per_node", 1 if executor == "slurm" else 0))
    tasks = max(gpus, 1) if executor == "slurm" else int(slurm.get("tasks_per_node", 1))
    if executor == "local":
        ex = submitit.LocalExecutor(folder=folder)
        ex.update_parameters(timeout_min=int(slurm.get("time_min", 60)), tasks_per_node=tasks, gpus_per_node=gpus)
    elif executor == "slurm":
        ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
        params = dict(nodes=int(slurm.get("nodes", 1)), gpus_per_node=gpus, tasks_per_node=tasks,
                      cpus_per_task=int(slurm.get("cpus_per_task", 10)),
                      timeout_min=int(slurm.get("time_min", 60 * 24)),
                      name=run_name(cfg))
        if slurm.get("partition"):
            params["slurm_partition"] = slurm["partition"]
        if slurm.get("mem_gb"):
            params["mem_gb"] = int(slurm["mem_gb"])
        ex.update_parameters(**params)
    else:
        raise RunError(f"unknown executor {executor!r}; choose slurm or local")
    job = ex.submit(SlurmJob(configs.to_dict(cfg), root))
    if not wait:
        return job
    try:
        job.results()  # one result per task
    except Exception as e:
        msg = str(e).strip().splitlines()
        raise RunError(f"SLURM job {job.job_id} for run {run_name(cfg)} failed: {msg[-1] if msg else e}") from None
    return find_run(run_name(cfg), root)
