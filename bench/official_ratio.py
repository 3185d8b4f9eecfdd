"""Our training step against facebookresearch/mae's, side by side on one device, in one process.

    python bench/official_ratio.py --official-dir .official/mae --device cuda              # the issue's three
    python bench/official_ratio.py --official-dir .official/mae --device cuda --workloads mae_t4 --cuda-graphs
    python bench/official_ratio.py --official-dir .official/mae --device cpu --workloads tiny,lcmae_tiny \\
        --mode fp32 --steps 3 --warmup 1 --rounds 2                                        # a CPU rehearsal

For each workload (``lcmae_core.perf.workloads``: ``mae_b16``, ``lcmae_b16``, ``mae_t4``; ``tiny`` and
``lcmae_tiny`` on a CPU), two models of the same shape train on the same fixed random batch:

- **ours**: the engine's own step in ``--mode`` (default ``bf16_compile``: bf16 autocast, fused AdamW,
  ``torch.compile``), exactly what ``python -m lcmae_core bench`` times (``perf.bench.prepare_model``);
- **official**: fb/mae's ``MaskedAutoencoderViT`` (imported from ``--official-dir`` by ``bench/official.py``,
  never copied here) in fb/mae's loop as published: fp16 autocast, GradScaler, the gradients' norm, a
  ``loss.item()`` and a ``torch.cuda.synchronize()`` every step, AdamW over timm's weight-decay groups. For LC-MAE,
  whose step encodes two masked views of each image, fb/mae's model (with LC-MAE's decoder) takes the two views as
  one doubled batch: "two fb/mae passes" per image, throughput counted per image as for ours.

Before timing, an MAE workload's official weights are loaded into ours (``strict=True``) and both fp32 losses on
the same masking noise must agree (the numbers are the same model's). Then both warm up (ours compiles), and the
timed blocks alternate, ``--rounds`` of them, ``--steps`` steps each, ours first in even rounds and official first
in odd ones, so that clock, load and cache drifts hit both alike. A block's time is wall clock between two device
synchronisations; images/s is the batch over the median block's time per step. The ratio is ours over official
in images/s; the median of the per-round ratios is given beside it. Peak memory is each model's own: the allocator's
peak over its blocks, less what was allocated before the block (both models' weights and states), plus its own
weights and optimizer state. One JSON line per workload is appended to ``bench/results/`` (``--out``).
"""

from __future__ import annotations

import os
import statistics
import sys
import time

import timm
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the repository root, for lcmae_core when run as a script

from lcmae_core.errors import OneLineParser, UsageError, interruptible  # noqa: E402
from lcmae_core.models import run_model_kwargs  # noqa: E402
from lcmae_core.perf.bench import Options, error_text, fresh, prepare_model  # noqa: E402
from lcmae_core.perf.measure import sync  # noqa: E402
from lcmae_core.perf.records import results_path, write_jsonl  # noqa: E402
from lcmae_core.perf.workloads import MODES, WORKLOADS, device_name, parse_list, resolve_device  # noqa: E402
from official import OfficialStep, import_official, official_model, official_optimizer  # noqa: E402

DEFAULT_WORKLOADS = "mae_b16,lcmae_b16,mae_t4"
VIEWS = {"mae": 1, "lcmae": 2}  # images the model encodes per image of the batch
TARGETS = {"mae_b16": 2.5, "lcmae_b16": 2.1, "mae_t4": 4.5}  # the performance issue's ratios


def state_bytes(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """A model's resident bytes between steps: its parameters and buffers and its optimizer's state."""
    n = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    for st in optimizer.state.values():
        n += sum(v.numel() * v.element_size() for v in st.values() if isinstance(v, torch.Tensor))
    return n


class Disagreement(RuntimeError):
    """Ours, with the official weights, does not give the official fp32 loss: no ratio of this workload."""


def same_numbers(ours, theirs, imgs: torch.Tensor, mask_ratio: float) -> tuple[float, float]:
    """fp32 losses of both models on the same masking noise (no autocast, no step); they must agree."""
    ours.load_state_dict(theirs.state_dict(), strict=True)
    with torch.no_grad():
        torch.manual_seed(0)
        lo = float(ours(imgs, mask_ratio)[0])
        torch.manual_seed(0)
        lt = float(theirs(imgs, mask_ratio=mask_ratio)[0])
    if abs(lo - lt) > 1e-3 * max(1.0, abs(lt)):
        raise Disagreement(f"the two models disagree before timing: ours {lo:.6f}, official {lt:.6f}")
    return lo, lt


def timed_block(step, steps: int, device: torch.device) -> tuple[float, float]:
    """(ms per step, peak bytes above what was allocated at the start) over ``steps`` steps."""
    sync(device)
    cuda = device.type == "cuda"
    if cuda:
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    ms = (time.perf_counter() - t0) * 1e3 / steps
    extra = torch.cuda.max_memory_allocated(device) - base if cuda else 0.0
    return ms, extra


def compare(name: str, opts: Options, mode: str, official_dir: str, rounds: int) -> dict:
    w = WORKLOADS[name]
    if w.kind != "model" or w.family not in VIEWS:
        raise UsageError(f"workload {name!r} is not an MAE or LC-MAE model; choose from "
                         f"{', '.join(k for k, v in WORKLOADS.items() if v.kind == 'model' and v.family in VIEWS)}")
    mod = import_official(official_dir)
    device = opts.device
    # a fresh dynamo: graphs compiled for an earlier workload's shapes would make this one's batch size dynamic
    # (all the objectives share nn.Module's call), and their models would hold memory
    fresh(device)
    ours = prepare_model(w, mode, opts)
    mae_cfg = ours.cfg if w.family == "mae" else None
    kwargs = run_model_kwargs(ours.cfg)
    kwargs.setdefault("norm_pix_loss", True)
    torch.manual_seed(0)
    theirs = official_model(mod, kwargs).to(device).train()
    g = torch.Generator(device="cpu").manual_seed(0)
    S = ours.img_size
    imgs = torch.randn(ours.batch, 3, S, S, generator=g).to(device)
    check = None
    if mae_cfg is not None:  # the same model: ours takes the official weights and must give the same loss
        check = same_numbers(ours.model, theirs, imgs[: min(8, ours.batch)], mae_cfg.mask_ratio)
    lr = ours.cfg.optim.absolute_lr()
    official = OfficialStep(theirs, official_optimizer(theirs, lr), imgs, lr, ours.cfg.mask_ratio,
                            views=VIEWS[w.family])
    arms = {"ours": ours.step, "official": official}
    for arm in ("official", "ours"):  # warm-up (ours compiles here), then the resident states exist
        for _ in range(opts.warmup):
            arms[arm]()
    own = {"ours": state_bytes(ours.model, ours.optimizer), "official": state_bytes(theirs, official.optimizer)}
    ms: dict[str, list[float]] = {"ours": [], "official": []}
    peak: dict[str, float] = {"ours": 0.0, "official": 0.0}
    for r in range(rounds):
        for arm in (("ours", "official") if r % 2 == 0 else ("official", "ours")):
            t, extra = timed_block(arms[arm], opts.steps, device)
            ms[arm].append(t)
            peak[arm] = max(peak[arm], extra)
    med = {k: statistics.median(v) for k, v in ms.items()}
    ips = {k: ours.batch * 1e3 / v for k, v in med.items()}
    ratio = ips["ours"] / ips["official"]
    per_round = statistics.median(o / u for o, u in zip(ms["official"], ms["ours"]))
    rec = {
        "workload": name, "comparison": "official_ratio", "mode_ours": mode,
        "mode_official": "fb/mae loop: fp16 autocast + GradScaler" if device.type == "cuda" else "fb/mae loop: fp32",
        "batch": ours.batch, "img_size": S, "family": w.family, "views_official": VIEWS[w.family],
        "steps": opts.steps, "warmup": opts.warmup, "rounds": rounds,
        "ms_ours": round(med["ours"], 3), "ms_official": round(med["official"], 3),
        "img_per_s_ours": round(ips["ours"], 1), "img_per_s_official": round(ips["official"], 1),
        "ratio": round(ratio, 3), "ratio_median_of_rounds": round(per_round, 3), "target": TARGETS.get(name),
        "ms_blocks": {k: [round(x, 3) for x in v] for k, v in ms.items()},
        "compile_ours": ours.compile_mode or ("default" if MODES[mode][1] else "eager"),
        "cuda_graphs_ours": ours.cuda_graphs,  # asked for (--cuda-graphs) and in effect: a compiled mode on CUDA
        # fb/mae was published on timm 0.3.2, whose attention is explicit; a timm of today runs its Block's
        # attention through F.scaled_dot_product_attention: faster than published, so the ratio is the smaller
        "timm": timm.__version__, "official_attention": ("fused (scaled_dot_product_attention)" if getattr(
            theirs.blocks[0].attn, "fused_attn", False) else "explicit (as published)"),
    }
    if device.type == "cuda":
        rec["peak_mem_gib_ours"] = round((peak["ours"] + own["ours"]) / 1024**3, 3)
        rec["peak_mem_gib_official"] = round((peak["official"] + own["official"]) / 1024**3, 3)
    if check is not None:
        rec["loss_fp32_before"] = {"ours": check[0], "official": check[1]}
    if ours.notes:
        rec["notes"] = "; ".join(ours.notes)
    return rec


@interruptible
def main(argv=None) -> int:
    ap = OneLineParser(prog="official_ratio.py", description=__doc__.splitlines()[0])
    ap.add_argument("--official-dir", required=True, help="a checkout of facebookresearch/mae (models_mae.py, util/)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    ap.add_argument("--workloads", default=DEFAULT_WORKLOADS, help=f"comma-separated (default {DEFAULT_WORKLOADS})")
    ap.add_argument("--mode", default="bf16_compile", help=f"ours: one of {', '.join(MODES)} (default bf16_compile)")
    ap.add_argument("--batch", type=int, default=None, help="override the workloads' batch sizes")
    ap.add_argument("--cuda-graphs", action="store_true",
                    help="ours under CUDA graphs (torch.compile mode reduce-overhead); fb/mae's loop as published")
    ap.add_argument("--steps", type=int, default=20, help="steps per timed block (default 20)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps of each model first (default 5)")
    ap.add_argument("--rounds", type=int, default=4, help="timed blocks of each model, alternating (default 4)")
    ap.add_argument("--out", default=None, help="JSONL file (default bench/results/<device>_torch<v>_<date>.jsonl)")
    args = ap.parse_args(argv)
    names = parse_list(args.workloads, WORKLOADS, "workload")
    if args.mode not in MODES:
        raise UsageError(f"unknown mode {args.mode!r}; choose one of {', '.join(MODES)}")
    for flag in ("steps", "rounds"):
        if getattr(args, flag) < 1:
            raise UsageError(f"--{flag} must be at least 1")
    if args.warmup < 1:
        raise UsageError("--warmup must be at least 1 (the resident states exist after the first step)")
    device = resolve_device(args.device)
    opts = Options(device=device, steps=args.steps, warmup=args.warmup, batch=args.batch, progress=False,
                   flops=False, cuda_graphs=args.cuda_graphs)
    out = args.out or results_path(device)
    command = " ".join(["python", *[os.path.relpath(sys.argv[0]) if sys.argv else "bench/official_ratio.py"],
                        *(argv if argv is not None else sys.argv[1:])])
    failed = 0
    for name in names:
        head = {"command": command, "device": device_name(device), "torch": torch.__version__,
                "date": time.strftime("%Y-%m-%dT%H:%M:%S")}
        try:
            rec = {**head, **compare(name, opts, args.mode, args.official_dir, args.rounds)}
        except (UsageError, KeyboardInterrupt):
            raise
        except Exception as e:  # noqa: BLE001 - recorded; the other workloads still run
            failed += 1
            rec = {**head, "workload": name, "comparison": "official_ratio", "error": error_text(e)}
            write_jsonl(out, [rec])
            print(f"{name}: FAILED: {rec['error']}", file=sys.stderr, flush=True)
            continue
        write_jsonl(out, [rec])
        target = f" (target >= {rec['target']}x)" if rec["target"] else ""
        print(f"{name}: ours {rec['img_per_s_ours']:.0f} img/s, official {rec['img_per_s_official']:.0f} img/s, "
              f"ratio {rec['ratio']:.2f}x{target}, median of rounds {rec['ratio_median_of_rounds']:.2f}x", flush=True)
    print(f"appended to {out}" + (f"; {failed} workload(s) failed" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
