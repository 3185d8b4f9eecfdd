"""What the benchmark measures: the named workloads and modes, their configs, and the device they run on."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

import torch

from .. import configs
from ..configs import ConfigError


class BenchError(ConfigError):
    """Bad bench input (unknown workload or mode, a missing GPU or data folder): one line, exit status 2."""


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
    Workload("mae_t4", "model", "mae", "cifar", 1024, (),
             "MAE ViT-T/4 at 32 px, decoder 128-d/4"),
    Workload("mae_gpu", "model", "mae", "gpu", 256, (),
             "the gpu scale's MAE (48 px, patch 4, width 96, depth 6): one of the reference record's many short runs"),
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


def parse_list(text: str, known: dict, what: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if names == ["all"]:
        return list(known)
    bad = [n for n in names if n not in known]
    if bad or not names:
        raise BenchError(f"unknown {what} {', '.join(map(repr, bad)) or repr(text)}; choose from "
                         f"{', '.join(known)} (comma-separated)")
    return names


def build_config(workload: Workload, batch: int | None = None):
    """The workload's config: ``configs.build`` of its family and scale with its overrides and the batch size."""
    w = workload
    return configs.build(w.family, w.scale, [*w.overrides, f"optim.batch_size={batch or w.batch}"])


# -------------------------------------------------------------------------------------------------------
# devices
def resolve_device(device: str) -> torch.device:
    """'auto' | 'cpu' | 'cuda' | 'cuda:N' -> torch.device; a missing GPU is a one-line ``ConfigError``."""
    try:
        return torch.device(configs.check_device(device))
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
