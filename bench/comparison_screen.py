"""Did Fig. 5's comparison models learn at a reference scale? A screen of the contrastive and supervised models.

Fig. 5 compares the MAE encoder's attention with a contrastive and a supervised model's; its verdict is testable
only where those learned (``verdicts.f5_comparison_models``: each encoder's attention entropy below its random-init
twin's in every layer, and the supervised model's top-1 above the raw pixels of its task). At the cpu scale they
stopped at 2 epochs and the contrastive one did not move. This screen trains exactly the runs that a candidate of the
scale's calibration (``lcmae_core.testability``) trains for them, at the seeds asked for (cheap: one seed), and
measures every weight snapshot they keep, so that one run also gives the trend over epochs. Like the locality screen
it informs; it decides nothing (one seed has no interval; the calibration reads 3).

    python bench/comparison_screen.py --scale gpu --candidate e80-dec2x --seed 0 \
        --out bench/results/gpu_comparison_screen.json --merge

Per model and seed: the encoder's attention entropy per layer (fraction of its maximum) and mean distance per layer
(pixels), at every snapshot and at initialisation (the random-init twin the verdict compares with); for the supervised
model its top-1 on its task's held-out split and the raw-pixel baselines there. A JSON table, written atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from lcmae_core import analysis, pages, testability
from lcmae_core.atomic import atomic_write_text
from lcmae_core.experiments import Study
from lcmae_core.plan import train_runs
from lcmae_core.runs import finished_metrics
from lcmae_core.reference_models import load_run
from lcmae_core.train.checkpoint import snapshots

N_IMAGES = testability.N_IMAGES
# the comparison models of Fig. 5 below the paper scale: (row name, what it is, the study's method)
MODELS = (("contrastive", "SimCLR (InfoNCE on the CLS token)", "contrastive"),
          ("supervised", "supervised ViT (finetuned from random initialisation)", "supervised"))


def encoder_reading(model, images) -> dict:
    """The encoder's attention on whole images (mask ratio 0): entropy per layer and mean distance per layer."""
    c = analysis.attention_stats_curves(model.eval(), images, "encoder")
    return {"entropy": [round(float(v), 3) for v in c["entropy"].mean(-1)],
            "distance": [round(float(v), 2) for v in c["distance"].mean(-1)]}


def study_of(scale: str, candidate: str | None, seed: int, run_root, device: str, planner=None) -> Study:
    """The attention pages' study of the scale's recipe, or of one calibration candidate, at one seed."""
    if candidate:
        study = testability.candidate_study(scale, candidate, (seed,), run_root, planner, device)
    else:
        study = Study(scale=scale, run_root=run_root, seeds=(seed,), device=device, verbose=False, planner=planner)
    return study.for_attention()


def row_name(model: str, seed: int) -> str:
    return f"{model}, seed {seed}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", default="gpu")
    p.add_argument("--candidate", default=None,
                   help="a calibration candidate of the scale (default: the scale's recipe, no candidate's changes)")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--run-root", default=None)
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-train", action="store_true", help="train nothing: measure what the runs have so far")
    p.add_argument("--merge", action="store_true",
                   help="keep the rows --out already holds (other seeds) and add or replace these")
    a = p.parse_args(argv)
    planner: list = []
    attention = study_of(a.scale, a.candidate, a.seed, a.run_root, a.device, planner)
    planned = {key: getattr(attention, method)(seed=a.seed) for key, _, method in MODELS}
    if not a.no_train:
        train_runs(planner, a.run_root, a.jobs, progress=True)
    study = study_of(a.scale, a.candidate, a.seed, a.run_root, a.device)
    images = study.images(N_IMAGES)
    rows = {}
    if a.merge and os.path.exists(a.out):
        with open(a.out) as f:
            rows = json.load(f)["rows"]
    for key, what, _ in MODELS:
        run = planned[key]
        run_dir = run.dir
        snaps_at = snapshots(run_dir) if os.path.isdir(run_dir) else {}
        metrics, epochs = finished_metrics(run_dir), run.config["optim"]["epochs"]
        if metrics and epochs not in snaps_at:  # a finished run without snapshots (finetuning): its last weights
            snaps_at[epochs] = run.checkpoint
        if not snaps_at:  # not trained (--no-train): nothing to measure
            continue
        snaps = {e: encoder_reading(load_run(path)[0], images) for e, path in sorted(snaps_at.items())}
        init = encoder_reading(study.init_model(run), images)
        row = {"what": what, "seed": a.seed, "candidate": a.candidate or "the recipe", "run": os.path.basename(run_dir),
               "epochs": epochs, "finished": bool(metrics),
               "train_time_s": metrics.get("train_time_s"), "init": init, "snapshots": snaps}
        if key == "supervised":
            raw = pages.raw_pixel_baselines(study, run.config["data"]["dataset"])
            row.update({"top1": metrics.get("top1"), "raw_pixels": {"knn": raw["knn"], "logreg": raw["logreg"]}})
        rows[row_name(key, a.seed)] = row
        print(json.dumps({"event": "measured", "model": key, "seed": a.seed,
                          "entropy_end": snaps[max(snaps)]["entropy"], "entropy_init": init["entropy"]}), flush=True)
    seeds = sorted({r["seed"] for r in rows.values()})
    atomic_write_text(a.out, json.dumps({"scale": a.scale, "seeds": seeds, "n_images": N_IMAGES, "rows": rows},
                                        indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
