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

import json
import os
import sys

from lcmae_core import analysis, pages, testability
from lcmae_core.experiments import Study
from lcmae_core.plan import train_runs
from lcmae_core.runs import finished_metrics
from lcmae_core.reference_models import load_run
from lcmae_core.train.checkpoint import snapshots

import screens  # bench/screens.py, beside this script

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
    a = screens.parser(__doc__, no_train="measure what the runs have so far", merge="other seeds").parse_args(argv)
    planner: list = []
    attention = study_of(a.scale, a.candidate, a.seed, a.run_root, a.device, planner)
    planned = {key: getattr(attention, method)(seed=a.seed) for key, _, method in MODELS}
    if not a.no_train:
        train_runs(planner, a.run_root, a.jobs, progress=True)
    study = study_of(a.scale, a.candidate, a.seed, a.run_root, a.device)
    images = study.images(N_IMAGES)
    rows = screens.earlier_rows(a.out, "rows", a.merge)
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
    screens.write_table(a.out, a.scale, "rows", rows, n_images=N_IMAGES)
    return 0


if __name__ == "__main__":
    sys.exit(main())
