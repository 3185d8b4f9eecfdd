"""``python -m lcmae_core bench`` (or ``python -m lcmae_core.perf.bench``): training throughput, memory and
model-FLOPs utilisation of named workloads.

Each workload builds its model from a config (``configs.preset`` + overrides, ``models.build_model``)
and times the training step of the engine: ``PretrainObjective`` (``model.compute_losses``) under the engine's
autocast, ``loss.float().backward()``, the pretraining recipe's AdamW (``engine.make_optimizer``, fused on
CUDA), ``set_lr`` and ``zero_grad(set_to_none=True)``: ``measure.train_step`` is ``set_lr`` +
``engine.train_step``; the ``e2e`` workload runs ``engine.train_one_epoch`` itself.

Workloads (``--workloads``, comma-separated; ``all`` for every one):

- ``mae_b16``: MAE ViT-B/16, decoder 512-d/8, norm-pix, batch 256 (the paper preset);
- ``lcmae_b16``: LC-MAE ViT-B/16, decoder depth 2, all three losses, batch 256 (each image counted once,
  for its two views);
- ``ae48_b16``: the block autoencoder AE(48) with a ViT-B/16 (no masking), batch 256;
- ``mae_t4``: MAE ViT-T/4 at 32 px (decoder 128-d/4, the ``gpu`` preset), batch 1024;
- ``tiny``, ``lcmae_tiny``: the ``smoke`` preset's MAE and LC-MAE (28 px, width 32), batch 64: CPU and CI;
- ``loader``: the GPU data path (``lcmae_core.gpu_data``) alone over ``--data-root``, batch 256 at 224 px;
- ``loader_pil``: the CPU path (torchvision ``ImageFolder`` + PIL RandomResizedCrop + flip) alone;
- ``e2e``: MAE ViT-B/16 (``--e2e-model``) trained from the JPEG folder through ``engine.train_one_epoch``,
  with the GPU data path on CUDA (``--data-path``, resolved by ``gpu_data.choose_data_path``).

Modes (``--modes``): ``fp32`` (eager), ``bf16`` (eager, bf16 autocast; CPU autocast on CPU), ``bf16_compile``
(bf16 + ``torch.compile`` of the objective, forward and backward), ``fp32_compile``, ``bf16_autotune``
(bf16 + ``torch.compile(mode="max-autotune-no-cudagraphs")``: Inductor benchmarks matmul kernels at compile time;
the engine's ``compile_mode`` config field). ``--cuda-graphs`` adds CUDA graphs on CUDA (compile
``mode="reduce-overhead"``, or ``"max-autotune"`` with autotuning); on CPU it is a no-op, noted in the record.

``--profile N`` follows each model measurement with N steps under ``torch.profiler`` and saves where the time
goes (the top operators and kernels by self time, and the shares of matmuls, attention, fused elementwise
kernels, the optimizer and the rest) as JSON next to the results; the record carries the file name and the
shares.

Numbers per (workload, mode): ms per step (the median of the timed steps, after ``--warmup`` untimed ones; on
CUDA, per-step CUDA events and one synchronisation after the timed window), images/s (batch / median step),
peak memory (``torch.cuda.max_memory_allocated`` over the timed window on CUDA; the process's peak RSS on CPU),
training FLOPs per image (``torch.utils.flop_counter`` over one forward + backward of one image on the CPU,
fp32; fused attention counted as PyTorch counts it on CUDA, with the recomputation of the scores in the
backward pass) and MFU = FLOPs per image x images/s / peak. The peak is ``--peak-tflops`` if given, else the
spec sheet's dense BF16 number of the detected GPU (H100 SXM: 989 TFLOP/s; H100 PCIe: 756), else none. MFU is
always relative to the dense BF16 peak, also in fp32 modes.

Each result is one JSON line appended atomically to ``bench/results/<device>_torch<version>_<date>.jsonl``
(``--out`` to choose), carrying the command, device, torch version, date, workload, mode, batch and numbers.

The pieces live beside this module in ``lcmae_core.perf``: ``workloads`` (the workloads, modes and devices),
``measure`` (the timed training step), ``flops`` (FLOP counts and peaks), ``profiling`` (``--profile``),
``records`` (the results files), ``compile`` (``torch.compile`` and CUDA graphs) and ``gpu_data`` (the GPU
data path); this module holds the runners, the numerics check and the command line.
"""

from __future__ import annotations

if __name__ == "__main__":  # python -m lcmae_core.perf.bench: a Ctrl-C during the imports below is one line too
    from lcmae_core.errors import quiet_interrupts_while_importing

    quiet_interrupts_while_importing()

import argparse
import datetime
import functools
import gc
import os
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from ..configs import ConfigError
from ..data import DataError
from ..errors import OneLineParser as _Parser
from ..errors import UsageError, first_line, interruptible
from ..train.engine import PretrainObjective, make_optimizer, train_one_epoch
from ..models import build_model
from .. import gpu_data
from ..train.compile import compile_mode, compile_status, maybe_compile, uses_cuda_graphs
from .flops import detect_peak_flops, workload_flops
from .measure import Timing, peak_rss_gib, sync, time_steps, train_step
from .profiling import profile_steps
from .records import file_in_path, profile_path, results_path, write_jsonl
from .workloads import (MODE_COMPILE_MODE, MODES, WORKLOADS, BenchError, Workload, build_config, device_name,
                        parse_list, resolve_device)


# -------------------------------------------------------------------------------------------------------
# runners
@dataclass
class Options:
    device: torch.device
    steps: int
    warmup: int
    batch: int | None = None
    cuda_graphs: bool = False
    peak_flops: float | None = None
    peak_source: str = ""
    data_root: str | None = None
    workers: int = 2
    data_path: str = "auto"
    e2e_model: str = "mae_b16"
    progress: bool = True
    flops: bool = True
    profile: int = 0
    profile_dir: str | None = None
    date: str | None = None


def _bar(total: int, desc: str, enabled: bool):
    return tqdm(total=total, desc=desc, disable=not enabled, leave=False, dynamic_ncols=True, file=sys.stderr)


def _summary(t: Timing, batch: int) -> dict:
    med = statistics.median(t.ms)
    steps = len(t.ms)
    return {"ms_per_step": round(med, 3), "ms_per_step_mean": round(1e3 * t.window_s / max(steps, 1), 3),
            "img_per_s": round(batch * 1e3 / med, 1),
            "img_per_s_window": round(batch * steps / max(t.window_s, 1e-9), 1),
            "peak_mem_gib": round(t.peak_mem_gib, 3), "mem_kind": t.mem_kind, **t.extra}


def _add_flops(rec: dict, name: str, opts: Options) -> None:
    if not opts.flops:
        return
    f = workload_flops(name)
    rec["flops_per_img"] = f
    rec["tflops_per_s"] = round(f * rec["img_per_s"] / 1e12, 3)
    rec["peak_flops"] = opts.peak_flops
    rec["peak_source"] = opts.peak_source
    rec["mfu"] = round(f * rec["img_per_s"] / opts.peak_flops, 4) if opts.peak_flops else None


@dataclass
class ModelStep:
    """A model workload ready to time: ``step()`` is one training step of the engine on a fixed batch."""
    step: Callable[[], torch.Tensor]
    model: nn.Module
    objective: nn.Module
    optimizer: torch.optim.Optimizer
    cfg: object
    batch: int
    img_size: int
    compile_mode: str | None
    cuda_graphs: bool
    notes: list


def prepare_model(w: Workload, mode: str, opts: Options, seed: int = 0) -> ModelStep:
    """Build a model workload as the engine trains it in ``mode``: its model, objective (compiled in the
    compile modes), optimizer, a fixed random batch and the step."""
    amp, use_compile = MODES[mode]
    device = opts.device
    cfg = build_config(w, opts.batch)
    batch = cfg.optim.batch_size
    torch.manual_seed(seed)
    model = build_model(cfg).to(device)
    objective = PretrainObjective(model, cfg.mask_ratio).to(device).train()
    optimizer = make_optimizer(cfg, model, device)
    notes = []
    cmode, note = compile_mode(device, opts.cuda_graphs, MODE_COMPILE_MODE.get(mode))
    if note:
        notes.append(note)
    graphs = uses_cuda_graphs(cmode) and use_compile
    if opts.cuda_graphs and not use_compile and device.type == "cuda":
        notes.append("cuda graphs need a compile mode; ignored in eager modes")
    objective = maybe_compile(objective, use_compile, mode=cmode)
    g = torch.Generator(device="cpu").manual_seed(seed)
    S = cfg.model.img_size
    imgs = torch.randn(batch, 3, S, S, generator=g).to(device)
    labels = torch.zeros(batch, dtype=torch.long, device=device)
    lr = cfg.optim.absolute_lr()

    def step():
        return train_step(objective, optimizer, imgs, labels, device, amp, lr, cuda_graphs=graphs)

    return ModelStep(step, model, objective, optimizer, cfg, batch, S, cmode if use_compile else None, graphs,
                     notes)


def run_model(w: Workload, mode: str, opts: Options) -> dict:
    amp, use_compile = MODES[mode]
    m = prepare_model(w, mode, opts)
    with _bar(opts.warmup + opts.steps, f"{w.name} {mode}", opts.progress) as bar:
        t = time_steps(m.step, opts.warmup, opts.steps, opts.device, bar)
    rec = {"workload": w.name, "mode": mode, "batch": m.batch, "img_size": m.img_size, "family": m.cfg.family,
           "amp": amp, "compile": compile_status(m.objective) if use_compile else "eager",
           "compile_mode": m.compile_mode, "cuda_graphs": m.cuda_graphs, **_summary(t, m.batch)}
    _add_flops(rec, w.name, opts)
    if opts.profile:  # a profiler that fails keeps the timing above, with the failure beside it
        try:
            rec.update(profile_steps(m.step, opts.profile, opts.device,
                                     profile_path(opts.device, w.name, mode, opts.profile_dir, opts.date)))
        except Exception as e:  # noqa: BLE001
            rec["profile_error"] = error_text(e)
    if m.notes:
        rec["notes"] = "; ".join(m.notes)
    return rec


def _need_root(opts: Options, w: Workload) -> str:
    root = opts.data_root
    if not root:
        raise BenchError(f"workload {w.name!r} needs --data-root DIR (an image folder; make one with "
                         "python bench/make_jpegs.py DIR)")
    if not os.path.isdir(root):
        raise BenchError(f"--data-root {root} does not exist (make one with python bench/make_jpegs.py {root})")
    train = os.path.join(root, "train")
    return train if os.path.isdir(train) else root


class _Cycle:
    """``n`` batches drawn from a loader that is restarted when it runs out; has ``len`` (for the engine)."""

    def __init__(self, loader, n: int, state: dict):
        self.loader, self.n, self.state = loader, n, state

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        for _ in range(self.n):
            if self.state.get("it") is None:
                self.state["it"] = iter(self.loader)
            try:
                yield next(self.state["it"])
            except StopIteration:
                self.state["it"] = iter(self.loader)
                yield next(self.state["it"])


def error_text(e: BaseException) -> str:
    """A failed measurement in its record: the exception's type and first line."""
    return f"{type(e).__name__}: {first_line(e, 300)}"


def whole_epochs(n: int, epoch: int) -> int:
    """``n`` steps rounded up to whole epochs of ``epoch`` batches, at least one. A data path is timed over whole
    epochs from an epoch's start: its workers prefetch (PIL: ``workers`` x ``prefetch_factor`` batches, a whole epoch
    of a small folder), so that a window inside an epoch would time batches made during the warm-up."""
    return epoch * max(1, -(-n // epoch))


def _loader(w: Workload, opts: Options, img_size: int, batch: int, path: str):
    root = _need_root(opts, w)
    try:
        if path == "gpu":
            aug = gpu_data.GpuAugment(img_size, seed=0)
            return gpu_data.GpuLoader(gpu_data.JpegFolder(root), batch, opts.device, aug, num_workers=opts.workers)
        return gpu_data.cpu_pretrain_loader(root, batch, img_size, opts.device, num_workers=opts.workers)
    except ValueError as e:
        raise BenchError(str(e)) from None


def run_loader(w: Workload, opts: Options) -> dict:
    """The data path alone: batches of normalised (N, 3, S, S) float32 on the device, per second."""
    batch = opts.batch or w.batch
    path = "gpu" if w.kind == "loader" else "cpu"
    loader = _loader(w, opts, w.img_size, batch, path)
    if len(loader) == 0:
        raise BenchError(f"--data-root has fewer images than one batch of {batch}; lower --batch or add images")
    state: dict = {}
    epoch = len(loader)
    warmup, steps = whole_epochs(opts.warmup, epoch), whole_epochs(opts.steps, epoch)
    decoded = dict(gpu_data.DECODED)
    batches = iter(_Cycle(loader, warmup + steps, state))

    def step():
        imgs, labels = next(batches)
        imgs = imgs.to(opts.device, non_blocking=True)
        return imgs

    with _bar(warmup + steps, f"{w.name}", opts.progress) as bar:
        t = time_steps(step, warmup, steps, opts.device, bar)
    t.extra.pop("loss_last", None)
    # the window's rate: a step's own time is a prefetched batch's hand-over (or, on CUDA, the copy's device time)
    t = Timing([1e3 * t.window_s / steps] * steps, t.window_s, t.peak_mem_gib, t.mem_kind, t.extra)
    rec = {"workload": w.name, "mode": "data", "batch": batch, "img_size": w.img_size,
           "data_path": path if path == "gpu" else "cpu (PIL, bicubic)", "workers": opts.workers,
           "images_in_folder": len(loader.loader.dataset if path == "gpu" else loader.dataset),
           "steps": steps, "warmup": warmup, "epoch_batches": epoch, **_decoded(decoded, path), **_summary(t, batch)}
    return rec


def _decoded(before: dict, path: str) -> dict:
    """The GPU data path's images by how they were decoded since ``before`` (``gpu_data.DECODED``): in one batch
    on the device, alone, or on the CPU, where nvJPEG could not."""
    if path != "gpu":
        return {}
    return {"decoded": {k: gpu_data.DECODED[k] - before[k] for k in before}}


def run_e2e(w: Workload, mode: str, opts: Options) -> dict:
    """Training from the JPEG folder through ``engine.train_one_epoch`` itself (a warm-up pass, then a timed
    pass of ``--steps`` optimizer steps, each rounded up to whole epochs of the folder: ``whole_epochs``).
    ms_per_step is the window's mean here (the engine is not split)."""
    amp, use_compile = MODES[mode]
    device = opts.device
    mw = WORKLOADS[opts.e2e_model]
    if mw.kind != "model":
        raise BenchError(f"--e2e-model must be a model workload, got {opts.e2e_model!r}")
    cfg = build_config(mw, opts.batch or w.batch)
    batch = cfg.optim.batch_size
    path = gpu_data.choose_data_path(opts.data_path, device)
    loader = _loader(w, opts, cfg.model.img_size, batch, path)
    if len(loader) == 0:
        raise BenchError(f"--data-root has fewer images than one batch of {batch}; lower --batch or add images")
    torch.manual_seed(0)
    model = build_model(cfg).to(device)
    cmode = compile_mode(device, opts.cuda_graphs, MODE_COMPILE_MODE.get(mode))[0]
    objective = maybe_compile(PretrainObjective(model, cfg.mask_ratio).to(device), use_compile, mode=cmode)
    optimizer = make_optimizer(cfg, model, device)
    lr = cfg.optim.absolute_lr()
    state: dict = {}
    # CPU autocast is not in the engine (it runs fp32 on CPU): on CPU the e2e modes differ only by compile
    kw = dict(lr_fn=lambda e: lr, device=device, amp=amp, log_every=10**9, progress=opts.progress,
              cuda_graphs=use_compile and uses_cuda_graphs(cmode))
    epoch = len(loader)
    warmup, steps = whole_epochs(opts.warmup, epoch), whole_epochs(opts.steps, epoch)
    decoded = dict(gpu_data.DECODED)
    t_warm = time.perf_counter()
    train_one_epoch(objective, _Cycle(loader, warmup, state), optimizer, epoch=0, desc="e2e warm-up", **kw)
    sync(device)
    warmup_s = time.perf_counter() - t_warm
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    stats = train_one_epoch(objective, _Cycle(loader, steps, state), optimizer, epoch=1, desc="e2e", **kw)
    sync(device)
    window = time.perf_counter() - t0
    mem, kind = ((torch.cuda.max_memory_allocated(device) / 1024**3, "cuda_max_memory_allocated")
                 if device.type == "cuda" else (peak_rss_gib(), "process_peak_rss"))
    t = Timing([1e3 * window / steps] * steps, window, mem, kind,
               {"warmup_s": round(warmup_s, 3), "loss_last": stats["loss"]})
    rec = {"workload": w.name, "mode": mode, "batch": batch, "img_size": cfg.model.img_size, "model": mw.name,
           "data_path": path, "workers": opts.workers, "steps": steps, "warmup": warmup, "epoch_batches": epoch,
           **_decoded(decoded, path),
           "amp": amp if device.type == "cuda" else "fp32 (engine: no autocast on CPU)",
           "compile": compile_status(objective) if use_compile else "eager", **_summary(t, batch)}
    _add_flops(rec, mw.name, opts)
    return rec


# -------------------------------------------------------------------------------------------------------
# numerics: loss curves of a mode against fp32 eager
class NoiseObjective(nn.Module):
    """``model.compute_losses(imgs, mask_ratio, noise)`` with the masking noise given, so that eager and
    compiled runs (whose in-graph RNG differs) see the same masks."""

    def __init__(self, model: nn.Module, mask_ratio: float):
        super().__init__()
        self.model, self.mask_ratio = model, mask_ratio

    def forward(self, imgs: torch.Tensor, noise: torch.Tensor | None = None) -> dict:
        return self.model.compute_losses(imgs, self.mask_ratio, noise)


def loss_curve(workload: str, mode: str, steps: int, device="cpu", batch: int | None = None,
               seed: int = 0, compile_kwargs: dict | None = None) -> list[float]:
    """The training losses of ``steps`` steps of a model workload in a mode, from the same initial weights,
    images and masks whatever the mode (one host read at the end). compile_kwargs: passed to torch.compile
    in the compile modes (e.g. ``{"backend": "aot_eager"}``)."""
    w = WORKLOADS[workload]
    device = torch.device(device)
    amp, use_compile = MODES[mode]
    cfg = build_config(w, batch)
    n = cfg.optim.batch_size
    torch.manual_seed(seed)
    model = build_model(cfg).to(device)
    kw = dict(compile_kwargs or {})
    if "backend" not in kw and MODE_COMPILE_MODE.get(mode):
        kw["mode"] = MODE_COMPILE_MODE[mode]
    objective = maybe_compile(NoiseObjective(model, cfg.mask_ratio).to(device).train(), use_compile, **kw)
    optimizer = make_optimizer(cfg, model, device)
    # drawn on the device (a ViT-B/16 batch of 64 drawn on the CPU takes longer than its step on a GPU): the same
    # numbers for every mode on one device
    g = torch.Generator(device=device).manual_seed(seed + 1)
    S, L = cfg.model.img_size, model.num_patches
    shape = (2, n, L) if cfg.family == "lcmae" else (n, L)
    losses = []
    for _ in range(steps):
        imgs = torch.randn(n, 3, S, S, generator=g, device=device)
        noise = torch.rand(*shape, generator=g, device=device)
        losses.append(train_step(objective, optimizer, imgs, noise, device, amp, cfg.optim.absolute_lr()))
    return torch.stack(losses).float().cpu().tolist()


def compare_curves(ref: list[float], other: list[float]) -> dict:
    rel = [abs(a - b) / max(abs(a), 1e-12) for a, b in zip(ref, other)]
    return {"max_rel_diff": max(rel), "mean_rel_diff": sum(rel) / len(rel), "final_ref": ref[-1],
            "final": other[-1]}


# The most a mode's loss may differ from fp32 eager's at any of the steps, relative; declared before any GPU run. bf16
# keeps 8 significant bits (a relative rounding of 2^-8, 0.4 %) and each of ViT-B/16's dozens of layers rounds again,
# so its loss may drift from fp32's by a few tenths of a percent to a percent or two over 200 steps (an estimate, not
# a measurement): 5 % leaves room for that, and a mode beyond it is not fp32's computation at bf16's precision.
# fp32 + compile reorders float sums only: 1e-3.
NUMERICS_TOL = {"bf16": 0.05, "bf16_compile": 0.05, "bf16_autotune": 0.05, "fp32_compile": 1e-3}


def run_numerics(w: Workload, modes: list[str], steps: int, opts: Options) -> list[dict]:
    ref = loss_curve(w.name, "fp32", steps, opts.device, opts.batch)
    out = []
    for mode in modes:
        if mode == "fp32":
            continue
        cmp = compare_curves(ref, loss_curve(w.name, mode, steps, opts.device, opts.batch))
        tol = NUMERICS_TOL[mode]
        out.append({"workload": w.name, "mode": mode, "check": "loss_curve_vs_fp32_eager", "steps": steps,
                    "batch": opts.batch or w.batch, **{k: round(v, 6) for k, v in cmp.items()},
                    "tol_max_rel_diff": tol, "ok": cmp["max_rel_diff"] <= tol})
    return out


# -------------------------------------------------------------------------------------------------------
# command line
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workloads", default=None, metavar="LIST",
                   help="comma-separated workloads, or 'all': " + "; ".join(
                       f"{n}: {w.description}" for n, w in WORKLOADS.items())
                   + ". Default: mae_b16,lcmae_b16,ae48_b16,mae_t4 on CUDA, tiny on CPU")
    p.add_argument("--modes", default=None, metavar="LIST",
                   help="comma-separated modes: fp32 (eager), bf16 (bf16 autocast), bf16_compile (+ torch.compile), "
                        "fp32_compile. Default: fp32,bf16,bf16_compile on CUDA, fp32,bf16 on CPU")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 30 on CUDA, 5 on CPU)")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed steps first, compilation included (default 10 on CUDA, 2 on CPU)")
    p.add_argument("--batch", type=int, default=None, help="batch size for every workload (default: its own)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="JSONL file to append to (default bench/results/<device>_torch<version>_<date>.jsonl)")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="peak for MFU, in TFLOP/s (default: the detected GPU's dense BF16 spec, e.g. 989 for an "
                        "H100 SXM; none on CPU)")
    p.add_argument("--cuda-graphs", action="store_true",
                   help="compile modes use CUDA graphs (torch.compile mode=reduce-overhead); a no-op on CPU")
    p.add_argument("--numerics", type=int, default=0, metavar="STEPS",
                   help="also compare the loss curve of each non-fp32 mode against fp32 eager over STEPS steps "
                        "(same weights, images and masks) and record the largest relative difference")
    p.add_argument("--numerics-only", action="store_true",
                   help="with --numerics: only the loss curves, no throughput measurement of the modes (each would "
                        "compile the model once more)")
    p.add_argument("--data-root", default=None, metavar="DIR",
                   help="image folder for loader, loader_pil and e2e (DIR/train/<class>/*.jpg or DIR/<class>/*.jpg)")
    p.add_argument("--workers", type=int, default=None,
                   help="data loader worker processes (default: min(16, CPU cores))")
    p.add_argument("--data-path", default="auto", choices=("auto", "gpu", "cpu"),
                   help="e2e: gpu (bytes in workers, decode and augment on the device), cpu (PIL in workers) or "
                        "auto (gpu on CUDA). Default: auto")
    p.add_argument("--e2e-model", default="mae_b16", metavar="WORKLOAD",
                   help="the model workload the e2e workload trains (default mae_b16)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--profile", type=int, default=0, metavar="STEPS",
                   help="after each model measurement, profile this many steps (torch.profiler) and save the "
                        "top operators and the time shares as profile_<workload>_<mode>_<device>_<date>.json")
    p.add_argument("--no-flops", action="store_true", help="skip the FLOP count (and MFU)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--list", action="store_true", help="list the workloads and modes and exit")


def run(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    if args.list:
        for n, w in WORKLOADS.items():
            print(f"{n:12s} {w.kind:10s} batch {w.batch:5d}  {w.description}")
        print("modes: " + ", ".join(MODES))
        return 0
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    if args.threads:
        torch.set_num_threads(args.threads)
    names = parse_list(args.workloads or ("mae_b16,lcmae_b16,ae48_b16,mae_t4" if cuda else "tiny"),
                       WORKLOADS, "workload")
    modes = parse_list(args.modes or ("fp32,bf16,bf16_compile" if cuda else "fp32,bf16"), MODES, "mode")
    for k in ("steps", "warmup", "batch", "workers", "numerics", "profile"):
        v = getattr(args, k)
        if v is not None and (v < 0 or (v == 0 and k in ("steps", "batch"))):
            raise BenchError(f"--{k} must be positive, got {v}")
    if args.numerics_only and not args.numerics:
        raise BenchError("--numerics-only needs --numerics STEPS (the loss curves' length)")
    if args.e2e_model not in WORKLOADS or WORKLOADS[args.e2e_model].kind != "model":
        raise BenchError(f"--e2e-model must be one of {', '.join(n for n, w in WORKLOADS.items() if w.kind == 'model')}")
    peak, source = detect_peak_flops(device)
    if args.peak_tflops:
        peak, source = args.peak_tflops * 1e12, "--peak-tflops"
    opts = Options(device=device, steps=args.steps or (30 if cuda else 5),
                   warmup=args.warmup if args.warmup is not None else (10 if cuda else 2), batch=args.batch,
                   cuda_graphs=args.cuda_graphs, peak_flops=peak, peak_source=source, data_root=args.data_root,
                   workers=args.workers if args.workers is not None else min(16, os.cpu_count() or 1),
                   data_path=args.data_path, e2e_model=args.e2e_model, progress=not args.no_progress,
                   flops=not args.no_flops, profile=args.profile or 0)
    out = args.out or results_path(device)
    opts.profile_dir = os.path.dirname(os.path.abspath(out))
    blocked = file_in_path(opts.profile_dir)
    if blocked:
        print(f"error: --out {out}: {blocked} is a file, not a folder; choose another path", file=sys.stderr)
        return 2
    if argv is not None:  # python -m lcmae_core.perf.bench ...
        command = shlex.join(["python", "-m", "lcmae_core.perf.bench", *argv])
    else:  # python -m lcmae_core bench ...
        command = shlex.join(["python", "-m", "lcmae_core", *sys.argv[1:]])
    common = {"command": command, "device": device_name(device), "torch": torch.__version__,
              "date": datetime.datetime.now().isoformat(timespec="seconds"), "threads": torch.get_num_threads()}
    if cuda:
        common["cuda"] = torch.version.cuda
    records = []
    failed = 0
    for name in names:
        w = WORKLOADS[name]
        if w.kind == "model":
            jobs = [] if args.numerics_only else [(m, functools.partial(run_model, w, m, opts)) for m in modes]
            if args.numerics:
                jobs.append(("numerics", lambda: run_numerics(w, modes, args.numerics, opts)))
        elif w.kind == "e2e":
            jobs = [(m, functools.partial(run_e2e, w, m, opts)) for m in modes]
        else:
            jobs = [("data", functools.partial(run_loader, w, opts))]
        recs = []
        for mode, job in jobs:
            fresh(device)
            try:
                got = job()
            except (ConfigError, DataError, KeyboardInterrupt):
                raise
            except Exception as e:  # noqa: BLE001 - record it, go on with the next measurement
                failed += 1
                got = {"workload": name, "mode": mode, "error": error_text(e)}
            recs += got if isinstance(got, list) else [got]
        recs = [{**common, "steps": opts.steps, "warmup": opts.warmup, **r} for r in recs]
        write_jsonl(out, recs)  # after each workload: a crash later keeps what was measured
        records += recs
        for r in recs:
            print(_line(r), flush=True, file=sys.stderr if "error" in r else sys.stdout)
    print(f"appended {len(records)} records to {out}" + (f"; {failed} measurement(s) failed" if failed else ""))
    return 1 if failed else 0


def fresh(device: torch.device) -> None:
    """Free what earlier measurements left (compiled graphs hold their models) so peaks are each run's own."""
    if "torch._dynamo" in sys.modules:
        torch._dynamo.reset()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def _line(r: dict) -> str:
    if "error" in r:
        return f"{r['workload']:11s} {r['mode']:13s} FAILED: {r['error']}"
    if "check" in r:
        return (f"{r['workload']:11s} {r['mode']:13s} loss curve vs fp32 over {r['steps']} steps: max rel diff "
                f"{r['max_rel_diff']:.2e} (tol {r['tol_max_rel_diff']:g}) {'ok' if r['ok'] else 'FAIL'}")
    mfu = f"  mfu {100 * r['mfu']:.1f}%" if r.get("mfu") is not None else ""
    prof = ""
    if r.get("profile_shares"):
        prof = "\n    profile: " + ", ".join(f"{c} {100 * v:.0f}%" for c, v in r["profile_shares"].items())
    return (f"{r['workload']:11s} {r['mode']:13s} batch {r['batch']:5d}  {r['img_per_s']:10.1f} img/s  "
            f"{r['ms_per_step']:9.2f} ms/step  {r['peak_mem_gib']:6.2f} GiB{mfu}{prof}")


def add_cli_commands(register) -> None:
    """The ``bench`` subcommand of ``python -m lcmae_core`` (``cli.COMMAND_MODULES`` names this module)."""
    register("bench", "time training steps, the data path and MFU of named workloads; JSON lines in bench/results",
             add_arguments, run)


@interruptible
def main(argv: list[str] | None = None) -> int:
    """``python -m lcmae_core.perf.bench [options]``; bad input: one line on stderr, exit status 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _Parser(prog="python -m lcmae_core.perf.bench", description=__doc__.split("\n\n")[0],
                     epilog="Workloads and numbers: see the module docstring of lcmae_core.perf.bench.")
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
        return run(args, argv)
    except (UsageError, ConfigError, DataError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
