"""Which lever makes the MAE encoder's attention local? A screen of the attention pages' MAE at a reference scale.

The verdicts' locality precondition (``verdicts.attention_local``: the encoder's mean attention distance below
``LOCAL_FRACTION`` of uniform attention and below its random-init twin) decides whether Figs. 5, 6 and A.1 can be
tested. At the cpu scale no candidate came near it (``bench/results/cpu_scale_calibration.json``: the middle layers
attend *further* than uniform attention). This screen trains the attention pages' MAE of a scale (one seed, cheap)
with one lever moved at a time, and measures every weight snapshot the run keeps, so that one long run also gives
the trend over epochs. It informs which candidates the scale's calibration (``lcmae_core.testability``, 3 seeds and
every precondition) should try; it chooses nothing.

    python bench/locality_screen.py --scale gpu --out bench/results/gpu_locality_screen.json --jobs 2
    python bench/locality_screen.py --scale gpu --only e80 --seed 1 --merge --out bench/results/gpu_locality_screen.json

Per candidate and snapshot: the encoder's distance per layer (pixels, whole images, mask ratio 0) trained and at
initialisation, uniform attention's distance, the encoder's entropy per layer (fraction of its maximum), and the
deep decoder's mask-token entropy per layer; a JSON table, written atomically.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys

import numpy as np

from lcmae_core import analysis, verdicts
from lcmae_core.experiments import Study
from lcmae_core.masking import MASK_RATIO
from lcmae_core.plan import train_runs
from lcmae_core.runs import finished_metrics, run_path
from lcmae_core.reference_models import load_run
from lcmae_core.train.checkpoint import snapshots

import screens  # bench/screens.py, beside this script

# The recipe each scale's screen started from, pinned: a later change of the scale's recipe (which the screen
# informs) leaves the screen's runs, and so its committed table, as they were. The gpu scale's first recipe: one
# rate for encoder and decoder.
PINNED = {"gpu": {"optim.epochs": 40, "optim.warmup_epochs": 4, "optim.base_lr": 4e-3, "optim.decoder_lr_scale": 1.0}}
# name -> (what it changes, overrides on the attention pages' MAE of the scale with PINNED). The first is the pinned
# recipe; the next move one lever each at a quarter of its epochs (its snapshot at that epoch is the comparison).
LEVERS = {
    "recipe": ("the scale's first recipe (40 epochs)", {}),
    "b64": ("batch 64: four times the steps per epoch (the rate scales with the batch)",
            {"optim.epochs": 10, "optim.warmup_epochs": 1, "optim.batch_size": 64}),
    "lr2x": ("twice the rate", {"optim.epochs": 10, "optim.warmup_epochs": 1, "optim.base_lr": "2x"}),
    "mask0.3": ("mask ratio 0.3 (Fig. 6: a smaller ratio, a smaller field)",
                {"optim.epochs": 10, "optim.warmup_epochs": 1, "mask_ratio": 0.3}),
    "pixel": ("raw-pixel loss (no norm-pix)", {"optim.epochs": 10, "optim.warmup_epochs": 1,
                                               "model.norm_pix_loss": False}),
    # the second round, after the first showed the recipe's distance falling from epoch 10 to 30 and no lever at
    # 10 epochs below uniform: the same trend twice as long, and twice the rate at the recipe's length
    "e80": ("80 epochs (twice the recipe's)", {"optim.epochs": 80, "optim.warmup_epochs": 8}),
    "lr2x-e40": ("twice the rate at the recipe's 40 epochs", {"optim.base_lr": "2x"}),
    # the third round, after the second: 80 epochs brought the encoder to 0.851 of uniform but left the deep
    # decoder's last layer unformed; twice the rate formed every decoder layer but left the encoder at uniform
    "e80-lr2x": ("80 epochs at twice the rate", {"optim.epochs": 80, "optim.warmup_epochs": 8, "optim.base_lr": "2x"}),
    # the fourth, after the third: the rate pulled the two mechanisms apart, so a rate between
    "e80-lr1.5x": ("80 epochs at 1.5 times the rate",
                   {"optim.epochs": 80, "optim.warmup_epochs": 8, "optim.base_lr": "1.5x"}),
    # the fifth, after the fourth: no single rate met both, and the decoder formed at the higher rates while the
    # encoder stayed local at the lower one, so each part at its own: the encoder at the recipe's rate, the decoder
    # at twice it (the rate that formed every decoder layer)
    "e80-dec2x": ("80 epochs, the decoder at twice the rate (the encoder at the recipe's)",
                  {"optim.epochs": 80, "optim.warmup_epochs": 8, "optim.decoder_lr_scale": 2.0}),
    # beside it, in case a faster decoder pulls the encoder from locality: the decoder at the rate at which its last
    # layer formed, just (1.5 times: 0.852 of its maximum entropy), the encoder at the recipe's
    "e80-dec1.5x": ("80 epochs, the decoder at 1.5 times the rate (the encoder at the recipe's)",
                    {"optim.epochs": 80, "optim.warmup_epochs": 8, "optim.decoder_lr_scale": 1.5}),
}
N_IMAGES = 128


def study_of(scale: str, name: str, seed: int, run_root, planner=None) -> Study:
    """The attention pages' study of a scale with one lever moved, and the mask ratio to pretrain at."""
    changes = {**PINNED.get(scale, {}), **LEVERS[name][1]}
    rate = changes.get("optim.base_lr")
    if isinstance(rate, str):  # "2x": a multiple of the pinned rate, or of the attention pages' MAE rate at this scale
        base = PINNED.get(scale, {}).get("optim.base_lr")
        if base is None:
            base = Study(scale=scale, verbose=False).for_attention().config("mae").optim.base_lr
        changes["optim.base_lr"] = float(rate.removesuffix("x")) * base
    ratio = changes.pop("mask_ratio", MASK_RATIO)
    study = Study(scale=scale, run_root=run_root, seeds=(seed,), verbose=False, planner=planner).for_attention()
    family = dict(study.family_overrides)
    family["mae"] = {**family.get("mae", {}), **changes}  # after the scale's own MAE overrides, which it moves
    return dataclasses.replace(study, family_overrides=family), ratio


def measure_model(model, images) -> dict:
    enc = analysis.attention_stats_curves(model, images, "encoder")
    mask = analysis.shared_mask(model.num_patches, MASK_RATIO, 0)
    dec = analysis.decoder_attention_measures(model, images, mask)
    return {"encoder_distance": np.round(enc["distance"].mean(-1).numpy(), 2).tolist(),
            "encoder_entropy": np.round(enc["entropy"].mean(-1).numpy(), 3).tolist(),
            "decoder_entropy": np.round(dec["entropy"].mean(-1).numpy(), 3).tolist()}


def row_name(lever: str, seed: int) -> str:
    """A row of the table: the lever at seed 0 (the screen's seed), "lever, seed N" at another seed."""
    return lever if seed == 0 else f"{lever}, seed {seed}"


def main(argv=None) -> int:
    p = screens.parser(__doc__, no_train="measure the snapshots the runs have so far (an unfinished run is marked so)",
                       merge="other levers, other seeds", candidate=False, device=False)
    p.add_argument("--only", nargs="*", default=None, help="the levers to screen (default: all)")
    a = p.parse_args(argv)
    names = a.only or list(LEVERS)
    planner: list = []
    for n in names:
        s, ratio = study_of(a.scale, n, a.seed, a.run_root, planner)
        s.attention_mae(mask_ratio=ratio, seed=a.seed)
    if not a.no_train:
        train_runs(planner, a.run_root, a.jobs, progress=True)
    rows = screens.earlier_rows(a.out, "candidates", a.merge)
    for n, cfg in zip(names, planner):
        s, _ = study_of(a.scale, n, a.seed, a.run_root)
        run_dir = run_path(cfg, a.run_root)
        snaps_at = snapshots(run_dir) if os.path.isdir(run_dir) else {}
        if not snaps_at:  # not trained (--no-train): nothing to measure
            continue
        model, _ = load_run(snaps_at[max(snaps_at)])
        images = s.images(N_IMAGES)
        grid = model.patch_embed.grid_size[0]
        patch = model.patch_embed.patch_size[0]
        snaps = {}
        for epoch, path in sorted(snaps_at.items()):
            m, _ = load_run(path)
            snaps[epoch] = measure_model(m.eval(), images)
        uniform = float(analysis.uniform_attention_distance(grid, patch))
        for v in snaps.values():  # the locality precondition's reading: the mean distance as a fraction of uniform
            v["distance_fraction"] = round(float(np.mean(v["encoder_distance"])) / uniform, 3)
        metrics = finished_metrics(run_dir)
        rows[row_name(n, a.seed)] = {
            "what": LEVERS[n][0], "seed": a.seed, "run": os.path.basename(run_dir), "epochs": cfg.optim.epochs,
            "finished": bool(metrics), "train_time_s": metrics.get("train_time_s"),
            "uniform_distance": round(uniform, 2), "formed_entropy": round(verdicts.formed_entropy(grid * grid), 3),
            "local_fraction": verdicts.LOCAL_FRACTION, "snapshots": snaps}
        print(json.dumps({"event": "measured", "candidate": n, "seed": a.seed,
                          "fraction_of_uniform": {e: v["distance_fraction"] for e, v in snaps.items()}}), flush=True)
    screens.write_table(a.out, a.scale, "candidates", rows, n_images=N_IMAGES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
