"""``fit``: the epochs around ``engine.train_one_epoch``: data order, seeding, DDP, checkpoints, resume, log.

Exact resume. Everything random in epoch e is a pure function of (seed, e, rank): at the start of each epoch
the torch, numpy and python RNGs are reseeded from it, the sampler's permutation comes from it, and so does the
data loader's generator (which seeds its workers). Checkpoints are written at epoch ends, so a run killed at
any point and started again replays the unfinished epoch exactly and ends with bit-identical weights (on the
same device and thread count). The checkpoint also carries the RNG states, the sampler epoch and the loader
generator, as a record and for callers who resume by hand.

Speed on CUDA, on by default: TF32 matmuls (``engine.enable_tf32``); ``torch.compile`` of the objective after
DDP wrapping (``cfg.compile``: None is on for CUDA, off on CPU; ``cfg.cuda_graphs`` adds mode="reduce-overhead"),
falling back to eager with a warning when compiling fails; and for imagefolder/imagenet pretraining the GPU data
path (``cfg.data.data_path``, ``gpu_data``), whose loader is built once with persistent byte-reading workers
(its crops come from a generator reseeded by ``set_epoch``, so exact resume holds). The PIL DataLoader is rebuilt
every epoch, without persistent workers: its random transforms run in the workers, seeded when an epoch's
iterator starts, and persistent workers would carry RNG state from one epoch into the next.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from .compile import compile_objective
from . import checkpoint as ckpt_io
from .checkpoint import CHECKPOINT
from . import distributed as dist_utils
from .engine import enable_tf32, train_one_epoch
from .schedule import lr_at

LOG = "log.jsonl"


@dataclass
class Job:
    """What ``fit`` trains, built by ``pretrain.build`` / ``finetune.build`` / ``linprobe.build``."""

    model: nn.Module  # the bare model whose state_dict is saved under "model"
    objective: nn.Module  # the module the loop calls: (imgs, labels) -> {"loss", ...}
    optimizer: torch.optim.Optimizer
    train_set: torch.utils.data.Dataset
    final_eval: Callable[[], dict]  # the run's metrics, called on every rank after training
    find_unused_parameters: bool = False
    # the classifier's class count (None for pretraining): with the run config, it rebuilds the model
    # (models.run_model_kwargs), and only the data knows it for a folder dataset, so the checkpoint keeps it
    num_classes: int | None = None
    # make_loader(sampler, micro_batch) -> a loader with len and set_epoch, built once (the GPU data path);
    # None: a torch DataLoader over train_set, built every epoch
    make_loader: Callable | None = None
    # solve() -> metrics: fits the model in place in one call instead of epochs of ``optimizer`` (the converged
    # linear probe, ``train.probe``); None: train for cfg.optim.epochs
    solve: Callable[[], dict] | None = None
    extra: dict = field(default_factory=dict)


class JsonlLogger:
    """Appends one JSON object per line to ``log.jsonl`` (rank 0 only); mirrors scalars to TensorBoard when
    it is installed."""

    def __init__(self, path: str | None, tensorboard: bool = True):
        self.path = path if dist_utils.is_main() else None
        self.tb = None
        if self.path and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter  # lazy: optional (pip install tensorboard)
                self.tb = SummaryWriter(os.path.join(os.path.dirname(path), "tb"))
            except Exception:  # tensorboard not installed
                self.tb = None

    def __call__(self, record: dict) -> None:
        if not self.path:
            return
        record = {"time": round(time.time(), 3), **record}
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.tb is not None and "step" in record:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k not in ("step", "time", "epoch"):
                    self.tb.add_scalar(f"{record.get('event', 'log')}/{k}", v, record["step"])

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    random.seed(seed)


def micro_batch_size(batch_size: int, accum_iter: int, world: int) -> int:
    """The per-process, per-step batch: batch_size / (accum_iter * world), which must be whole."""
    if batch_size % (accum_iter * world):
        raise ValueError(f"optim.batch_size {batch_size} is not divisible by accum_iter x processes "
                         f"= {accum_iter} x {world}")
    return batch_size // (accum_iter * world)


def save_snapshot(model: nn.Module, job: Job, cfg, run_dir: str, epoch: int, step: int) -> None:
    """Keep the weights after ``epoch`` epochs (0: the initialisation) as snapshot-epoch{epoch}.pt."""
    ckpt_io.atomic_save({"model": model.state_dict(), **ckpt_io.model_record(cfg, job.num_classes),
                         "epoch": epoch, "step": step}, ckpt_io.snapshot_path(run_dir, epoch))


def fit(job: Job, cfg, run_dir: str, device: torch.device, log: JsonlLogger | None = None) -> dict:
    """Train ``job`` for ``cfg.optim.epochs`` epochs in ``run_dir`` (resuming from its checkpoint), then
    evaluate. Returns the metrics (the last epoch's training averages plus ``job.final_eval()``).

    A logger made here is closed however training ends; a logger passed in stays open for its owner."""
    own_log = log is None
    log = log or JsonlLogger(os.path.join(run_dir, LOG))
    try:
        return _fit(job, cfg, run_dir, device, log)
    finally:
        if own_log:
            log.close()


def _solve(job: Job, cfg, run_dir: str, device: torch.device, log: JsonlLogger) -> dict:
    """A job solved in one call (``Job.solve``): deterministic and seconds long, so it is never resumed but solved
    again; the checkpoint holds the solution, as a trained run's holds its weights."""
    job.model.to(device)
    log({"event": "start", "world_size": dist_utils.world_size(), "device": str(device),
         "train_samples": len(job.train_set), "solve": True})
    metrics = dict(job.solve())
    if dist_utils.is_main():
        ckpt_io.atomic_save({"model": job.model.state_dict(), **ckpt_io.model_record(cfg, job.num_classes),
                             "epoch": 0, "step": 0}, os.path.join(run_dir, CHECKPOINT))
    dist_utils.barrier()
    metrics.update(job.final_eval())
    metrics.update(epochs=0, steps=0, world_size=dist_utils.world_size())
    log({"event": "final", **metrics})
    return metrics


def _fit(job: Job, cfg, run_dir: str, device: torch.device, log: JsonlLogger) -> dict:
    if job.solve is not None:
        return _solve(job, cfg, run_dir, device, log)
    rank, world = dist_utils.rank(), dist_utils.world_size()
    o = cfg.optim
    micro = micro_batch_size(o.batch_size, o.accum_iter, world)
    ckpt_path = os.path.join(run_dir, CHECKPOINT)
    model = job.model.to(device)
    objective = job.objective.to(device)
    if world > 1:
        objective = nn.parallel.DistributedDataParallel(
            objective, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=job.find_unused_parameters)
    enable_tf32(device)
    # after DDP: torch.compile of the objective (cfg.compile None: on for CUDA, off on CPU), in place
    objective, graphs = compile_objective(objective, cfg.compile, cfg.cuda_graphs, device,
                                           cfg.compile_mode)
    scaler = torch.amp.GradScaler("cuda") if (device.type == "cuda" and cfg.amp == "fp16") else None

    start_epoch, step, last_stats = 0, 0, {}
    if os.path.exists(ckpt_path):
        ck = ckpt_io.load(ckpt_path, map_location=device)
        model.load_state_dict(ck["model"])
        job.optimizer.load_state_dict(ck["optimizer"])
        if scaler is not None and ck.get("scaler"):
            scaler.load_state_dict(ck["scaler"])
        ckpt_io.set_rng_state(ck["rng"])
        start_epoch, step, last_stats = ck["epoch"], ck["step"], dict(ck.get("last_stats", {}))
        log({"event": "resume", "epoch": start_epoch, "step": step})
    else:
        log({"event": "start", "world_size": world, "micro_batch": micro, "device": str(device),
             "train_samples": len(job.train_set)})
        if cfg.snapshot_every and dist_utils.is_main():
            save_snapshot(model, job, cfg, run_dir, 0, 0)

    lr = o.absolute_lr()

    def lr_fn(e: float) -> float:
        return lr_at(e, lr, o.epochs, o.warmup_epochs, o.min_lr)

    workers = cfg.data.num_workers
    built = None
    epoch_s = []  # the seconds of each epoch this process trains
    if job.make_loader is not None:  # built once; set_epoch reseeds its sampler and augmentation per epoch
        built = job.make_loader(dist_utils.EpochSampler(len(job.train_set), cfg.seed, rank, world), micro)
    for epoch in range(start_epoch, o.epochs):
        seed_all(dist_utils.epoch_seed(cfg.seed, epoch, rank))
        gen = torch.Generator().manual_seed(dist_utils.epoch_seed(cfg.seed, epoch, rank, stream=2))
        if built is not None:
            loader = built
            loader.set_epoch(epoch)
        else:
            # Rebuilt every epoch, without persistent workers, for exact resume: the random transforms run in
            # the workers, whose RNGs are seeded from ``gen`` when the loader's iterator starts; persistent
            # workers would carry their RNG state over from the previous epoch, which a resumed run lacks.
            sampler = dist_utils.EpochSampler(len(job.train_set), cfg.seed, rank, world)
            sampler.set_epoch(epoch)
            loader = torch.utils.data.DataLoader(
                job.train_set, batch_size=micro, sampler=sampler, num_workers=workers, drop_last=True,
                generator=gen, pin_memory=device.type == "cuda", **({"prefetch_factor": 4} if workers > 0 else {}))
        stats = train_one_epoch(
            objective, loader, job.optimizer, epoch=epoch, lr_fn=lr_fn, device=device, amp=cfg.amp,
            scaler=scaler, accum_iter=o.accum_iter, clip_grad=o.clip_grad, log_every=cfg.log_every,
            start_step=step, on_log=log, progress=cfg.progress and dist_utils.is_main(),
            desc=f"{cfg.family} {epoch + 1}/{o.epochs}",
            last_checkpoint=ckpt_path if os.path.exists(ckpt_path) else None, cuda_graphs=graphs)
        step += stats["steps"]
        epoch_s.append(stats["time_s"])
        last_stats = {k: v for k, v in stats.items() if k.startswith("loss")}
        log({"event": "epoch", "epoch": epoch, "step": step,
             "images_per_s": round(stats["steps"] * o.batch_size / max(stats["time_s"], 1e-9), 1), **stats})
        if (epoch + 1) % cfg.ckpt_every == 0 or epoch + 1 == o.epochs:
            if dist_utils.is_main():
                ckpt_io.atomic_save({
                    "model": model.state_dict(),
                    **ckpt_io.model_record(cfg, job.num_classes),
                    "epoch": epoch + 1,
                    "step": step,
                    "optimizer": job.optimizer.state_dict(),
                    "scaler": scaler.state_dict() if scaler is not None else None,
                    "rng": ckpt_io.rng_state(),
                    "sampler_epoch": epoch + 1,
                    "loader_generator": gen.get_state(),
                    "last_stats": last_stats,
                }, ckpt_path)
            dist_utils.barrier()
        if cfg.snapshot_every and ((epoch + 1) % cfg.snapshot_every == 0 or epoch + 1 == o.epochs):
            if dist_utils.is_main():
                save_snapshot(model, job, cfg, run_dir, epoch + 1, step)

    metrics = {f"train_{k}": v for k, v in last_stats.items()}
    metrics.update(job.final_eval())
    metrics.update(epochs=o.epochs, steps=step, world_size=world, **epoch_times(epoch_s))
    log({"event": "final", **metrics})
    return metrics


def epoch_times(seconds: list[float]) -> dict:
    """What a run records of its epochs' seconds: ``first_epoch_s``, the first epoch this process trained, which
    holds the start-up (torch.compile's first call on CUDA, the loader's first batches), and ``epoch_s``, the median
    of the others (of the one epoch where there is no other): on a GPU their difference is about the compiling, what
    a run of few epochs pays and a longer one does not. {} where no epoch was trained here (a finished run)."""
    if not seconds:
        return {}
    return {"first_epoch_s": round(seconds[0], 3), "epoch_s": round(statistics.median(seconds[1:] or seconds), 3)}


def recorded_epoch_times(metrics: dict) -> dict:
    """The ``epoch_times`` a run's metrics hold ({} for a solved run, or one trained before they were recorded)."""
    return {k: metrics[k] for k in ("first_epoch_s", "epoch_s") if k in metrics}
