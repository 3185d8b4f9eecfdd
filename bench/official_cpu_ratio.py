"""Is our MAE training step as fast as the official one on CPU? Times both, alternating, in one process.

    python bench/official_cpu_ratio.py --official-dir /tmp/fbmae          # a checkout of facebookresearch/mae

The official code is imported from ``--official-dir`` by ``bench/official.py`` (never copied into this
repository; see there for the two run-time patches for timm 1.x and numpy 2).

Both models are built at the same tiny size (default: 32 px, patch 4, width 192, depth 4, decoder 128-d/2, LayerNorm
eps 1e-6, norm-pix loss), ours loads the official state dict with ``strict=True``, and each step is forward +
backward + AdamW step in fp32 on the same batch with the same masking noise (the RNG is reseeded before each
step and both models draw one ``torch.rand(N, L)``). The steps alternate (ours/official, then official/ours) so
that drifts in clock speed, load or cache state hit both equally. Reports the median ms of each, their ratio
ours/official (<= 1.0 is the requirement) and the median of the ratios of adjacent (paired) steps, which is
robust to other processes' load, and the ratio of median CPU times of this process (``time.process_time``;
with ``--threads 1`` it counts the work done, not the time spent waiting for a core on a shared machine).
Appends a JSON line to ``bench/results/``.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from functools import partial

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the repository root, for lcmae_core when run as a script

from lcmae_core.perf.records import results_path, write_jsonl  # noqa: E402
from lcmae_core.perf.workloads import device_name  # noqa: E402
from lcmae_core.models import MaskedAutoencoderViT  # noqa: E402
from official import import_official  # noqa: E402


def step_fn(model: nn.Module, opt: torch.optim.Optimizer, imgs: torch.Tensor, mask_ratio: float, seed: int):
    """One training step; the seed fixes the masking noise (one torch.rand(N, L) in either model)."""
    torch.manual_seed(seed)
    loss = model(imgs, mask_ratio)[0]
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.detach()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official-dir", required=True, help="a checkout of facebookresearch/mae (models_mae.py, util/)")
    ap.add_argument("--img-size", type=int, default=32)
    ap.add_argument("--patch-size", type=int, default=4)
    ap.add_argument("--embed-dim", type=int, default=192)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--num-heads", type=int, default=3)
    ap.add_argument("--decoder-embed-dim", type=int, default=128)
    ap.add_argument("--decoder-depth", type=int, default=2)
    ap.add_argument("--decoder-num-heads", type=int, default=4)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=60, help="timed steps per model (default 60)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps per model first (default 5)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: steady timings on a shared machine; 0 for torch's default)")
    ap.add_argument("--out", default=None, help="JSONL file (default bench/results/<cpu>_torch<v>_<date>.jsonl)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    official = import_official(args.official_dir)
    kw = dict(img_size=args.img_size, patch_size=args.patch_size, in_chans=3, embed_dim=args.embed_dim,
              depth=args.depth, num_heads=args.num_heads, decoder_embed_dim=args.decoder_embed_dim,
              decoder_depth=args.decoder_depth, decoder_num_heads=args.decoder_num_heads, mlp_ratio=4.0,
              norm_pix_loss=True)
    torch.manual_seed(0)
    theirs = official.MaskedAutoencoderViT(**kw, norm_layer=partial(nn.LayerNorm, eps=1e-6))
    ours = MaskedAutoencoderViT(**kw)
    ours.load_state_dict(copy.deepcopy(theirs.state_dict()), strict=True)
    theirs.train()
    ours.train()
    adamw = dict(lr=1.5e-4, betas=(0.9, 0.95), weight_decay=0.05)
    opt_t = torch.optim.AdamW(theirs.parameters(), **adamw)
    opt_o = torch.optim.AdamW(ours.parameters(), **adamw)
    g = torch.Generator().manual_seed(1)
    imgs = torch.randn(args.batch, 3, args.img_size, args.img_size, generator=g)

    # same numbers first: the first step's losses must agree
    lo = float(step_fn(ours, opt_o, imgs, 0.75, 0))
    lt = float(step_fn(theirs, opt_t, imgs, 0.75, 0))
    if abs(lo - lt) > 1e-5 * max(1.0, abs(lt)):
        raise SystemExit(f"error: the two models disagree at step 0: ours {lo:.6f}, official {lt:.6f}")

    times = {"ours": [], "official": []}  # wall clock, ms
    cpu = {"ours": [], "official": []}  # this process's CPU time, ms
    pairs = [("ours", ours, opt_o), ("official", theirs, opt_t)]
    for i in range(args.warmup + args.steps):
        order = pairs if i % 2 == 0 else pairs[::-1]
        for name, model, opt in order:
            c0, t0 = time.process_time(), time.perf_counter()
            step_fn(model, opt, imgs, 0.75, 1000 + i)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if i >= args.warmup:
                times[name].append(dt * 1e3)
                cpu[name].append(dc * 1e3)
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    ratio = med["ours"] / med["official"]
    ratio_cpu = med_cpu["ours"] / med_cpu["official"]
    # adjacent steps share the machine's load: the median of per-pair ratios is robust to load that changes
    pair_ratio = statistics.median(a / b for a, b in zip(times["ours"], times["official"]))
    record = {
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "workload": "official_cpu_ratio",
        "device": device_name(torch.device("cpu")),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "date": time.strftime("%Y-%m-%d"),
        "config": {k: v for k, v in kw.items()},
        "batch": args.batch, "steps": args.steps, "warmup": args.warmup,
        "ms_ours": round(med["ours"], 3), "ms_official": round(med["official"], 3),
        "ratio_ours_over_official": round(ratio, 4),
        "ratio_median_of_pairs": round(pair_ratio, 4),
        "cpu_ms_ours": round(med_cpu["ours"], 3), "cpu_ms_official": round(med_cpu["official"], 3),
        "ratio_cpu_time": round(ratio_cpu, 4),
        "min_ms_ours": round(min(times["ours"]), 3), "min_ms_official": round(min(times["official"]), 3),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "loss_step0": {"ours": lo, "official": lt},
    }
    out = args.out or results_path(torch.device("cpu"))
    write_jsonl(out, [record])
    print(f"ours {med['ours']:.2f} ms, official {med['official']:.2f} ms per step (medians); ratio ours/official "
          f"{ratio:.3f} ({'OK' if ratio <= 1.0 else 'SLOWER'}), median of paired ratios {pair_ratio:.3f}, "
          f"CPU-time ratio {ratio_cpu:.3f} ({med_cpu['ours']:.2f} / {med_cpu['official']:.2f} ms); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; appended to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
