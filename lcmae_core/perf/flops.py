"""FLOPs for the model-FLOPs utilisation: the training FLOPs per image of a model (``torch.utils.flop_counter``,
with the CPU's fused attention counted as on CUDA) and the dense BF16 peaks of known GPUs."""

from __future__ import annotations

import functools

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from ..models import build_model
from .workloads import WORKLOADS, build_config, device_name

# dense BF16 tensor-core peaks from the vendors' spec sheets (FLOP/s), matched in order against the device name
PEAK_BF16_DENSE: tuple[tuple[str, float], ...] = (
    ("H100 PCIe", 756e12), ("H100 NVL", 835e12), ("H100", 989e12), ("H200", 989e12), ("H800", 989e12),
    ("GH200", 989e12), ("A100", 312e12), ("L40S", 362e12), ("A10G", 70e12), ("L4", 121e12),
)


def detect_peak_flops(device: torch.device) -> tuple[float | None, str]:
    if device.type != "cuda":
        return None, "none (CPU: pass --peak-tflops)"
    name = device_name(device)
    for key, peak in PEAK_BF16_DENSE:
        if key.lower() in name.lower():
            return peak, f"spec sheet dense BF16 for {key}"
    return None, f"unknown GPU {name!r} (pass --peak-tflops)"


def _cpu_flash_fwd(query, key, value, *args, out_shape=None, **kwargs):
    return sdpa_flop_count(query, key, value)


def _cpu_flash_bwd(grad_out, query, key, value, *args, out_shape=None, **kwargs):
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
