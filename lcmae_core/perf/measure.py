"""How the benchmark measures: the training step it times (the engine's), device synchronisation, peak memory
and the timed window of steps."""

from __future__ import annotations

import contextlib
import resource
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from ..train import engine
from ..train.schedule import set_lr


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_rss_gib() -> float:
    """The process's peak resident set size (Linux reports KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / (1024**2) if sys.platform != "darwin" else kib / 1024**3


# -------------------------------------------------------------------------------------------------------
# the training step: the engine's pieces
def autocast(device: torch.device, amp: str):
    """The engine's autocast on CUDA (``engine.autocast_for``); on CPU, CPU bf16 autocast when amp is bf16
    (the engine itself runs fp32 on CPU)."""
    if device.type == "cuda":
        return engine.autocast_for(device, amp)
    if amp == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train_step(objective: Callable, optimizer: torch.optim.Optimizer, imgs: torch.Tensor, labels, device,
               amp: str, lr: float | None = None, cuda_graphs: bool = False) -> torch.Tensor:
    """One optimizer step through ``engine.train_step`` (accum_iter 1, no clipping, no scaler), after ``set_lr``,
    under this module's ``autocast`` (the engine's on CUDA; CPU bf16 autocast for bf16 on CPU). Returns the
    loss, detached, on the device (no host sync)."""
    if lr is not None:
        set_lr(optimizer, lr)
    losses, _ = engine.train_step(objective, optimizer, imgs, labels, device=device, amp=amp,
                                  cuda_graphs=cuda_graphs, autocast=autocast(device, amp))
    return losses["loss"]


# -------------------------------------------------------------------------------------------------------
# timing
@dataclass
class Timing:
    ms: list[float]  # per step
    window_s: float  # the whole timed window
    peak_mem_gib: float
    mem_kind: str
    extra: dict = field(default_factory=dict)


def time_steps(step: Callable[[], object], warmup: int, steps: int, device: torch.device, bar=None) -> Timing:
    """Run ``warmup`` untimed steps, then ``steps`` timed ones. On CUDA, per-step events and a single sync
    after the window; on CPU, wall clock per step. Peak memory over the timed window (CUDA) or the process.
    ``extra["warmup_s"]``: the warm-up's wall time, torch.compile's first call included."""
    t_warm = time.perf_counter()
    for _ in range(warmup):
        step()
        if bar is not None:
            bar.update(1)
    sync(device)
    warmup_s = time.perf_counter() - t_warm
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(steps)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(steps)]
    ms: list[float] = []
    t0 = time.perf_counter()
    last = None
    for k in range(steps):
        if cuda:
            starts[k].record()
            last = step()
            ends[k].record()
        else:
            t = time.perf_counter()
            last = step()
            ms.append((time.perf_counter() - t) * 1e3)
        if bar is not None:
            bar.update(1)
    sync(device)
    window = time.perf_counter() - t0
    if cuda:
        ms = [s.elapsed_time(e) for s, e in zip(starts, ends)]
        mem, kind = torch.cuda.max_memory_allocated(device) / 1024**3, "cuda_max_memory_allocated"
    else:
        mem, kind = peak_rss_gib(), "process_peak_rss"
    extra = {"warmup_s": round(warmup_s, 3)}
    if isinstance(last, torch.Tensor) and last.numel() == 1:
        extra["loss_last"] = float(last)
    return Timing(ms, window, mem, kind, extra)
