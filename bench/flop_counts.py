"""Training FLOPs per image of the benchmark's models, against the issue's reference counts; JSON lines out.

    python bench/flop_counts.py              # about a minute on 2 CPU cores

``torch.utils.flop_counter.FlopCounterMode`` over one forward + backward of one image on the CPU (fp32), with
the CPU's fused attention counted by PyTorch's formula for the CUDA kernels (``lcmae_core.perf.flops.training_flops``).
The references (ViT-B/16 with the 512-d/8 decoder 58.8 G, with a depth-2 decoder 34.8 G, ViT-T/4 0.9 G) count
one view; LC-MAE's count is per image, for both views, its projector and its losses.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository root

from lcmae_core.perf.flops import training_flops  # noqa: E402
from lcmae_core.perf.records import results_path, write_jsonl  # noqa: E402
from lcmae_core.perf.workloads import WORKLOADS, Workload, build_config, device_name  # noqa: E402
from lcmae_core.models import build_model  # noqa: E402

# name -> (workload, extra overrides, reference G per image or None)
CHECKS = {
    "mae_b16_dec8": ("mae_b16", (), 58.8),
    "mae_b16_dec2": ("mae_b16", ("model.decoder_depth=2",), 34.8),
    "mae_t4": ("mae_t4", (), 0.9),
    "lcmae_b16": ("lcmae_b16", (), None),
    "ae48_b16": ("ae48_b16", (), None),
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="JSONL file (default bench/results/cpu_torch<v>_<date>.jsonl)")
    args = ap.parse_args(argv)
    recs = []
    for name, (wl, extra, ref) in CHECKS.items():
        w = WORKLOADS[wl]
        cfg = build_config(Workload(w.name, w.kind, w.family, w.scale, 1, w.overrides + extra), 1)
        torch.manual_seed(0)
        t0 = time.time()
        f = training_flops(build_model(cfg), cfg.model.img_size, cfg.mask_ratio)
        rec = {"command": "python bench/flop_counts.py", "workload": "flop_count", "model": name,
               "device": device_name(torch.device("cpu")), "torch": torch.__version__,
               "date": datetime.datetime.now().isoformat(timespec="seconds"),
               "gflops_per_img_train": round(f["total"] / 1e9, 3), "gflops_per_img_forward": round(f["forward"] / 1e9, 3),
               "reference_g": ref, "ok": None if ref is None else abs(f["total"] / 1e9 - ref) <= 0.05 * ref + 0.01,
               "seconds": round(time.time() - t0, 1)}
        recs.append(rec)
        print(f"{name:14s} {rec['gflops_per_img_train']:8.3f} G/img (forward {rec['gflops_per_img_forward']:.3f})"
              + (f"  reference {ref} G" if ref else ""), flush=True)
    out = args.out or results_path(torch.device("cpu"))
    write_jsonl(out, recs)
    print(f"appended {len(recs)} records to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
