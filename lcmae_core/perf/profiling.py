"""Where the time of a training step goes: steps under ``torch.profiler``, operators and kernels sorted into
categories (matmul, attention, optimizer, fused elementwise, indexing, memory, elementwise, other), the summary
saved as JSON."""

from __future__ import annotations

import json
import os
import re
from typing import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from ..atomic import atomic_open
from .measure import sync
from .workloads import device_name

# (category, name patterns) matched in order against an operator's or kernel's lower-cased name: the libraries'
# matmuls (and Triton's matmul templates, under max-autotune), attention, the optimizer, Triton's fused kernels
# (torch.compile), indexing (the masking's gathers, scatters and sorts, eager), memory, and ATen's own unfused
# elementwise and reduction kernels (eager: GELU, LayerNorm, softmax, dropout, sums)
PROFILE_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("attention", r"flash|fmha|attention|sdpa|sdp_"),
    ("optimizer", r"adam|multi_tensor|foreach|_fused_sgd|lars"),
    ("matmul", r"gemm|cutlass|xmma|nvjet|cublas|wgmma|s16816|conv|^triton_tem_fused_(mm|addmm|bmm|baddbmm)"
               r"|aten::(mm|addmm|bmm|baddbmm|linear|matmul)$"),
    ("fused_elementwise", r"^triton_|triton"),
    ("indexing", r"gather|scatter|index|radixsort|radix_sort|aten::(sort|argsort)$"),
    ("memory", r"memcpy|memset|catarraybatchedcopy|aten::copy_|aten::fill_|aten::zero_|aten::cat$|aten::clone$"),
    ("elementwise", r"elementwise_kernel|reduce_kernel|layer_norm|layernorm|gammabeta|softmax|gelu|dropout"),
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
