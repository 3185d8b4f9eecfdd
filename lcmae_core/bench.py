"""``python -m lcmae_core.bench``: training throughput, memory and model-FLOPs utilisation of named workloads.

Each workload builds its model from a config (``configs.preset`` + overrides, ``train.pretrain.build_model``)
and times the training step of the engine: ``PretrainObjective`` (``model.compute_losses``) under the engine's
autocast, ``loss.float().backward()``, the pretraining recipe's AdamW (``engine.make_optimizer``, fused on
CUDA), ``set_lr`` and ``zero_grad(set_to_none=True)``: ``train_step`` below is ``set_lr`` + ``engine.train_step``;
the ``e2e`` workload runs ``engine.train_one_epoch`` itself.

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
  with the GPU data path on CUDA (``--data-path``).

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
"""

from __future__ import annotations

if __name__ == "__main__":  # python -m lcmae_core.bench: a Ctrl-C during the imports below is one line too
    from lcmae_core.errors import quiet_interrupts_while_importing

    quiet_interrupts_while_importing()

import argparse
import contextlib
import datetime
import functools
import json
import os
import platform
import re
import resource
import shlex
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn as nn

from .atomic import atomic_open

from .configs import ConfigError
from .data import DataError
from .errors import OneLineParser as _Parser
from .errors import UsageError, interruptible


class BenchError(ConfigError):
    """Bad bench input (unknown workload or mode, a missing GPU or data folder): one line, exit status 2."""


# -------------------------------------------------------------------------------------------------------
# workloads and modes
@dataclass(frozen=True)
class Workload:
    name: str
    kind: str  # model | loader | loader_pil | e2e
    family: str = "mae"
    scale: str = "paper"
    batch: int = 256
    overrides: tuple[str, ...] = ()
    description: str = ""
    img_size: int = 224  # loader workloads


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("mae_b16", "model", "mae", "paper", 256, (),
             "MAE ViT-B/16, decoder 512-d/8, norm-pix"),
    Workload("lcmae_b16", "model", "lcmae", "paper", 256, (),
             "LC-MAE ViT-B/16, decoder depth 2, all three losses, two views per image"),
    Workload("ae48_b16", "model", "ae", "paper", 256, ("model.block_size=48",),
             "AE(48) ViT-B/16, no masking, 48x48 block targets"),
    Workload("mae_t4", "model", "mae", "gpu", 1024, (),
             "MAE ViT-T/4 at 32 px, decoder 128-d/4"),
    Workload("tiny", "model", "mae", "smoke", 64, (), "smoke-preset MAE (28 px, width 32): CPU and CI"),
    Workload("lcmae_tiny", "model", "lcmae", "smoke", 64, (), "smoke-preset LC-MAE: CPU and CI"),
    Workload("loader", "loader", batch=256, description="GPU data path alone (bytes -> decode -> crop)"),
    Workload("loader_pil", "loader_pil", batch=256, description="CPU PIL path alone (ImageFolder + RRC + flip)"),
    Workload("e2e", "e2e", "mae", "paper", 256, (), "MAE ViT-B/16 from a JPEG folder, engine.train_one_epoch"),
)}

# mode -> (amp, compile)
MODES: dict[str, tuple[str, bool]] = {
    "fp32": ("fp32", False),
    "bf16": ("bf16", False),
    "bf16_compile": ("bf16", True),
    "fp32_compile": ("fp32", True),
    "bf16_autotune": ("bf16", True),
}
# modes that compile with a torch.compile mode other than the default
MODE_COMPILE_MODE: dict[str, str] = {"bf16_autotune": "max-autotune-no-cudagraphs"}

# dense BF16 tensor-core peaks from the vendors' spec sheets (FLOP/s), matched in order against the device name
PEAK_BF16_DENSE: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12), ("H200", 989e12), ("H800", 989e12),
    ("GH200", 989e12), ("A100", 312e12), ("L40S", 362e12), ("A10G", 70e12), ("L4", 121e12),
)


def parse_list(text: str, known: dict, what: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if names == ["all"]:
        return list(known)
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise BenchError(f"unknown {what} {', '.join(map(repr, bad)) or repr(text)}; choose from "
                         f"{', '.join(known)} (comma-separated)")
    return names


# -------------------------------------------------------------------------------------------------------
# devices, files
def resolve_device(device: str) -> torch.device:
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' -> torch.device; a missing GPU is a one-line ``ConfigError``."""
    from .configs import check_device

    try:
        return torch.device(check_device(device))
    except ConfigError as e:
        raise BenchError(str(e).replace("use device=cpu or auto", "use --device cpu or auto")
                         .replace("choose auto, cpu", "pass --device auto, cpu")) from None


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    name = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"CPU {name or platform.machine()} x{os.cpu_count()}"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-")[:60]


def results_dir() -> str:
    """``bench/results`` of this repository (beside the ``lcmae_core`` package), else under the working dir."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    base = repo if os.path.isdir(os.path.join(repo, "bench")) else os.getcwd()
    return os.path.join(base, "bench", "results")


def _file_in_path(folder: str) -> str | None:
    """The first component of ``folder`` that exists as something other than a folder, or None."""
    path = os.path.abspath(folder)
    while path and path != os.path.dirname(path):
        if os.path.exists(path) and not os.path.isdir(path):
            return path
        path = os.path.dirname(path)
    return None


def results_path(device: torch.device, date: str | None = None) -> str:
    date = date or datetime.date.today().isoformat()
    kind = "cpu" if device.type == "cpu" else _slug(device_name(device))
    return os.path.join(results_dir(), f"{kind}_torch{_slug(torch.__version__)}_{date}.jsonl")


def write_jsonl(path: str, records: list[dict]) -> None:
    """Append records as JSON lines atomically: the old content plus the new lines go to a temporary file in
    the same folder, which then replaces the file (a reader never sees half a line)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    old = b""
    if os.path.exists(path):
        with open(path, "rb") as f:
            old = f.read()
        if old and not old.endswith(b"\n"):
            old += b"\n"
    new = "".join(json.dumps(r, sort_keys=False) + "\n" for r in records).encode()
    with atomic_open(path, "wb") as f:
        f.write(old + new)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_rss_gib() -> float:
    """The process's peak resident set size (Linux reports KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / (1024**2) if sys.platform != "darwin" else kib / 1024**3


def detect_peak_flops(device: torch.device) -> tuple[float | None, str]:
    if device.type != "cuda":
        return None, "none (CPU: pass --peak-tflops)"
    name = device_name(device)
    for key, peak in PEAK_BF16_DENSE:
        if key.lower() in name.lower():
            return peak, f"spec sheet dense BF16 for {key}"
    return None, f"unknown GPU {name!r} (pass --peak-tflops)"


# -------------------------------------------------------------------------------------------------------
# compile and CUDA graphs
from .train.compile import compile_mode, compile_status, maybe_compile, uses_cuda_graphs  # noqa: E402,F401


# -------------------------------------------------------------------------------------------------------
# the training step: the engine's pieces
def autocast(device: torch.device, amp: str):
    """The engine's autocast on CUDA (``engine.autocast_for``); on CPU, CPU bf16 autocast when amp is bf16
    (the engine itself runs fp32 on CPU)."""
    from .train.engine import autocast_for

    if device.type == "cuda":
        return autocast_for(device, amp)
    if amp == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def build_config(workload: Workload, batch: int | None = None):
    from . import configs

    w = workload
    return configs.build(w.family, w.scale, [*w.overrides, f"optim.batch_size={batch or w.batch}"])


def build_model(cfg) -> nn.Module:
    from .train.pretrain import build_model as _build

    return _build(cfg)


def make_optimizer(cfg, model: nn.Module, device: torch.device) -> torch.optim.Optimizer:
    """The pretraining recipe's optimizer: ``engine.make_optimizer`` (fused AdamW on CUDA)."""
    from .train.engine import make_optimizer as _make

    return _make(cfg, model, device)


def train_step(objective: Callable, optimizer: torch.optim.Optimizer, imgs: torch.Tensor, labels, device,
               amp: str, lr: float | None = None, cuda_graphs: bool = False) -> torch.Tensor:
    """One optimizer step through ``engine.train_step`` (accum_iter 1, no clipping, no scaler), after ``set_lr``,
    under this module's ``autocast`` (the engine's on CUDA; CPU bf16 autocast for bf16 on CPU). Returns the
    loss, detached, on the device (no host sync)."""
    from .train import engine
    from .train.schedule import set_lr

    if lr is not None:
        set_lr(optimizer, lr)
    losses, _ = engine.train_step(objective, optimizer, imgs, labels, device=device, amp=amp,
                                  cuda_graphs=cuda_graphs, autocast=autocast(device, amp))
    return losses["loss"]


# -------------------------------------------------------------------------------------------------------
# FLOPs
def _cpu_flash_fwd(query, key, value, *args, out_shape=None, **kwargs):
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(query, key, value)


def _cpu_flash_bwd(grad_out, query, key, value, *args, out_shape=None, **kwargs):
    from torch.utils.flop_counter import sdpa_backward_flop_count

    return sdpa_backward_flop_count(grad_out, query, key, value)


def _flop_mapping() -> dict:
    """Count the CPU's fused attention as PyTorch counts the CUDA kernels (``torch.utils.flop_counter`` has no
    formula for the CPU flash kernel)."""
    aten = torch.ops.aten
    out = {}
    if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu"):
        out[aten._scaled_dot_product_flash_attention_for_cpu] = _cpu_flash_fwd
    if hasattr(aten, "_scaled_dot_product_flash_attention_for_cpu_backward"):
        out[aten._scaled_dot_product_flash_attention_for_cpu_backward] = _cpu_flash_bwd
    return out


def training_flops(model: nn.Module, img_size: int, mask_ratio: float, images: int = 1) -> dict:
    """FLOPs of one training step's forward + backward, per image, counted by ``FlopCounterMode`` on the CPU.

    Returns {"total": per image, "forward": per image, "by_op": {op: per image}}. The optimizer is not counted.
    """
    from torch.utils.flop_counter import FlopCounterMode

    model = model.to("cpu").train()
    g = torch.Generator().manual_seed(0)
    imgs = torch.randn(images, model.in_chans, img_size, img_size, generator=g)
    fwd = FlopCounterMode(display=False, custom_mapping=_flop_mapping())
    with fwd:
        out = model.compute_losses(imgs, mask_ratio)
    total = FlopCounterMode(display=False, custom_mapping=_flop_mapping())
    model.zero_grad(set_to_none=True)
    with total:
        out = model.compute_losses(imgs, mask_ratio)
        out["loss"].backward()
    model.zero_grad(set_to_none=True)
    by_op = {str(k): v / images for k, v in total.get_flop_counts()["Global"].items()}
    return {"total": total.get_total_flops() / images, "forward": fwd.get_total_flops() / images, "by_op": by_op}


@functools.lru_cache(maxsize=None)
def workload_flops(name: str) -> float:
    """Training FLOPs per image of a model workload (cached)."""
    w = WORKLOADS["mae_b16" if name == "e2e" else name]
    cfg = build_config(w, 1)
    torch.manual_seed(0)
    model = build_model(cfg)
    return training_flops(model, cfg.model.img_size, cfg.mask_ratio)["total"]


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
    after the window; on CPU, wall clock per step. Peak memory over the timed window (CUDA) or the process."""
    for _ in range(warmup):
        step()
        if bar is not None:
            bar.update(1)
    sync(device)
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
    extra = {}
    if isinstance(last, torch.Tensor) and last.numel() == 1:
        extra["loss_last"] = float(last)
    return Timing(ms, window, mem, kind, extra)


# -------------------------------------------------------------------------------------------------------
# profiling: where the time of a step goes
# (category, name patterns) matched in order against an operator's or kernel's lower-cased name
PROFILE_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("attention", r"flash|fmha|attention|sdpa|sdp_"),
    ("optimizer", r"adam|multi_tensor|foreach|_fused_sgd|lars"),
    ("matmul", r"gemm|cutlass|xmma|nvjet|cublas|wgmma|s16816|conv|aten::(mm|addmm|bmm|baddbmm|linear|matmul)$"),
    ("fused_elementwise", r"^triton_|triton"),
    ("memory", r"memcpy|memset|aten::copy_|aten::fill_|aten::zero_|aten::cat$|aten::clone$"),
)


def profile_category(name: str) -> str:
    n = name.lower()
    for cat, pattern in PROFILE_CATEGORIES:
        if re.search(pattern, n):
            return cat
    return "other"


def summarize_profile(events, steps: int, device_kind: str, top: int = 40) -> dict:
    """Per-step self time by operator (CPU) or kernel (CUDA) from ``profiler.key_averages()``, the ``top``
    largest, and the shares of each category (``PROFILE_CATEGORIES``) in the busy time."""
    rows = []
    for e in events:
        if device_kind == "cuda":
            if str(getattr(e, "device_type", "")).split(".")[-1] != "CUDA":
                continue
            us = getattr(e, "self_device_time_total", None)
            if us is None:
                us = getattr(e, "self_cuda_time_total", 0.0)
        else:
            us = e.self_cpu_time_total
        if us > 0:
            rows.append((e.key, float(us), int(e.count)))
    total_us = sum(us for _, us, _ in rows)
    rows.sort(key=lambda r: -r[1])
    cats: dict[str, float] = {}
    for name, us, _ in rows:
        c = profile_category(name)
        cats[c] = cats.get(c, 0.0) + us
    share = (lambda us: round(us / total_us, 4) if total_us else 0.0)
    return {
        "busy_ms_per_step": round(total_us / 1e3 / steps, 3),
        "categories": {c: {"ms_per_step": round(us / 1e3 / steps, 3), "share": share(us)}
                       for c, us in sorted(cats.items(), key=lambda kv: -kv[1])},
        "top": [{"name": name[:200], "category": profile_category(name), "ms_per_step": round(us / 1e3 / steps, 4),
                 "share": share(us), "calls_per_step": round(n / steps, 2)} for name, us, n in rows[:top]],
    }


def profile_steps(step: Callable[[], object], steps: int, device: torch.device, path: str) -> dict:
    """Run ``steps`` more steps under ``torch.profiler``; save ``summarize_profile`` to ``path`` (JSON, atomic).
    Returns the record's fields: the file's name, the busy time per step and the category shares."""
    os.environ.setdefault("KINETO_LOG_LEVEL", "99")  # the profiler backend's start/stop chatter on stderr
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    step()  # one untimed step: nothing the profiler sees is a first call
    sync(device)
    with profile(activities=acts) as prof:
        for _ in range(steps):
            step()
        sync(device)
    summary = summarize_profile(prof.key_averages(), steps, device.type)
    doc = {"device": device_name(device), "torch": torch.__version__, "steps": steps,
           "time_kind": "self CUDA kernel time" if device.type == "cuda" else "self CPU operator time", **summary}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_open(path, "w") as f:
        json.dump(doc, f, indent=1)
    return {"profile_file": os.path.basename(path), "profile_busy_ms_per_step": summary["busy_ms_per_step"],
            "profile_shares": {c: v["share"] for c, v in summary["categories"].items()}}


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

    def profile_path(self, workload: str, mode: str) -> str:
        kind = "cpu" if self.device.type == "cpu" else _slug(device_name(self.device))
        date = self.date or datetime.date.today().isoformat()
        return os.path.join(self.profile_dir or results_dir(), f"profile_{workload}_{mode}_{kind}_{date}.json")


def _bar(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

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


def run_model(w: Workload, mode: str, opts: Options) -> dict:
    from .train.engine import PretrainObjective

    amp, use_compile = MODES[mode]
    device = opts.device
    cfg = build_config(w, opts.batch)
    batch = cfg.optim.batch_size
    torch.manual_seed(0)
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
    g = torch.Generator(device="cpu").manual_seed(0)
    S = cfg.model.img_size
    imgs = torch.randn(batch, 3, S, S, generator=g).to(device)
    labels = torch.zeros(batch, dtype=torch.long, device=device)
    lr = cfg.optim.absolute_lr()

    def step():
        return train_step(objective, optimizer, imgs, labels, device, amp, lr, cuda_graphs=graphs)

    with _bar(opts.warmup + opts.steps, f"{w.name} {mode}", opts.progress) as bar:
        t = time_steps(step, opts.warmup, opts.steps, device, bar)
    rec = {"workload": w.name, "mode": mode, "batch": batch, "img_size": S, "family": cfg.family,
           "amp": amp, "compile": compile_status(objective) if use_compile else "eager",
           "compile_mode": cmode if use_compile else None, "cuda_graphs": graphs, **_summary(t, batch)}
    _add_flops(rec, w.name, opts)
    if opts.profile:
        rec.update(profile_steps(step, opts.profile, device, opts.profile_path(w.name, mode)))
    if notes:
        rec["notes"] = "; ".join(notes)
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


def _loader(w: Workload, opts: Options, img_size: int, batch: int, path: str):
    from . import gpu_data

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
    batches = iter(_Cycle(loader, opts.warmup + opts.steps, state))

    def step():
        imgs, labels = next(batches)
        imgs = imgs.to(opts.device, non_blocking=True)
        return imgs

    with _bar(opts.warmup + opts.steps, f"{w.name}", opts.progress) as bar:
        t = time_steps(step, opts.warmup, opts.steps, opts.device, bar)
    t.extra.pop("loss_last", None)
    rec = {"workload": w.name, "mode": "data", "batch": batch, "img_size": w.img_size,
           "data_path": path if path == "gpu" else "cpu (PIL, bicubic)", "workers": opts.workers,
           "images_in_folder": len(loader.loader.dataset if path == "gpu" else loader.dataset),
           **_summary(t, batch)}
    return rec


def run_e2e(w: Workload, mode: str, opts: Options) -> dict:
    """Training from the JPEG folder through ``engine.train_one_epoch`` itself (a warm-up pass, then a timed
    pass of ``--steps`` optimizer steps). ms_per_step is the window's mean here (the engine is not split)."""
    from . import gpu_data
    from .train.engine import PretrainObjective, train_one_epoch

    amp, use_compile = MODES[mode]
    device = opts.device
    mw = WORKLOADS[opts.e2e_model]
    if mw.kind != "model":
        raise BenchError(f"--e2e-model must be a model workload, got {opts.e2e_model!r}")
    cfg = build_config(mw, opts.batch or w.batch)
    batch = cfg.optim.batch_size
    path = gpu_data.resolve_data_path(opts.data_path, device)
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
    if opts.warmup:
        train_one_epoch(objective, _Cycle(loader, opts.warmup, state), optimizer, epoch=0, desc="e2e warm-up", **kw)
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    stats = train_one_epoch(objective, _Cycle(loader, opts.steps, state), optimizer, epoch=1, desc="e2e", **kw)
    sync(device)
    window = time.perf_counter() - t0
    mem, kind = ((torch.cuda.max_memory_allocated(device) / 1024**3, "cuda_max_memory_allocated")
                 if device.type == "cuda" else (peak_rss_gib(), "process_peak_rss"))
    t = Timing([1e3 * window / opts.steps] * opts.steps, window, mem, kind, {"loss_last": stats["loss"]})
    rec = {"workload": w.name, "mode": mode, "batch": batch, "img_size": cfg.model.img_size, "model": mw.name,
           "data_path": path, "workers": opts.workers,
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
    g = torch.Generator().manual_seed(seed + 1)
    S, L = cfg.model.img_size, model.num_patches
    shape = (2, n, L) if cfg.family == "lcmae" else (n, L)
    losses = []
    for _ in range(steps):
        imgs = torch.randn(n, 3, S, S, generator=g).to(device)
        noise = torch.rand(*shape, generator=g).to(device)
        losses.append(train_step(objective, optimizer, imgs, noise, device, amp, cfg.optim.absolute_lr()))
    return torch.stack(losses).float().cpu().tolist()


def compare_curves(ref: list[float], other: list[float]) -> dict:
    rel = [abs(a - b) / max(abs(a), 1e-12) for a, b in zip(ref, other)]
    return {"max_rel_diff": max(rel), "mean_rel_diff": sum(rel) / len(rel), "final_ref": ref[-1],
            "final": other[-1]}


NUMERICS_TOL = {"bf16": 0.05, "bf16_compile": 0.05, "bf16_autotune": 0.05, "fp32_compile": 1e-3}  # max relative difference per step


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
    blocked = _file_in_path(opts.profile_dir)
    if blocked:
        print(f"error: --out {out}: {blocked} is a file, not a folder; choose another path", file=sys.stderr)
        return 2
    if argv is not None:  # python -m lcmae_core.bench ...
        command = shlex.join(["python", "-m", "lcmae_core.bench", *argv])
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
            jobs = [(m, functools.partial(run_model, w, m, opts)) for m in modes]
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
                first = (str(e).strip().splitlines() or [""])[0][:300]
                got = {"workload": name, "mode": mode, "error": f"{type(e).__name__}: {first}"}
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
    import gc

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
    """``python -m lcmae_core.bench [options]``; bad input: one line on stderr, exit status 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _Parser(prog="python -m lcmae_core.bench", description=__doc__.split("\n\n")[0],
                     epilog="Workloads and numbers: see the module docstring of lcmae_core.bench.")
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
        return run(args, argv)
    except (UsageError, ConfigError, DataError) as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
