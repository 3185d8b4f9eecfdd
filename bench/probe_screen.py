"""Does pretraining help under the converged probe at a reference scale? A screen of the pretraining gate.

The accuracy tables (1, 2, 3, A.1) are testable only where MAE pretraining beats random initialisation under the
converged linear probe (``verdicts.pretraining_helps``, the gate; ``train.probe``: a logistic regression solved on the
frozen [CLS] features). At the cpu scale it did not (+0.3 pt [-3.6, +4.3] on digits). This screen trains exactly the
runs the gate reads in a candidate of the scale's calibration (``lcmae_core.testability``): the accuracy tables' MAE
and the linear probes of it and of random initialisation, at the seed asked for (one seed: cheap). It also solves the
same probe on every weight snapshot the MAE keeps, so that one run gives the trend over epochs. Like the locality and
comparison screens it informs; it decides nothing (one seed has no interval; the calibration reads 3, paired).

    python bench/probe_screen.py --scale gpu --candidate e80-dec2x --seed 0 \
        --out bench/results/gpu_probe_screen.json --merge

Per seed: the MAE run, its epochs, whether it finished, its training seconds; the probe's top-1 (and the kNN on the
same features) on random initialisation and at every snapshot of the MAE (epoch 0 is its own initialisation, the
random-init twin at that seed), with the chosen L2 strength; the finished probe runs' top-1 (what the gate reads).
A JSON table, written atomically.
"""

from __future__ import annotations

import json
import os
import sys

import torch

from lcmae_core import testability
from lcmae_core.configs import from_dict
from lcmae_core.experiments import Study
from lcmae_core.plan import train_runs
from lcmae_core.runs import finished_metrics
from lcmae_core.train import checkpoint as ckpt_io
from lcmae_core.train import linprobe
from lcmae_core.train.checkpoint import snapshots
from lcmae_core.train.trainer import seed_all

import screens  # bench/screens.py, beside this script


def study_of(scale: str, candidate: str | None, seed: int, run_root, device: str, planner=None) -> Study:
    """The accuracy tables' study of the scale's recipe, or of one calibration candidate, at one seed."""
    if candidate:
        return testability.candidate_study(scale, candidate, (seed,), run_root, planner, device)
    return Study(scale=scale, run_root=run_root, seeds=(seed,), device=device, verbose=False, planner=planner)


def planned_runs(study: Study, seed: int) -> dict:
    """The runs the gate reads at one seed (as ``testability.runs_of`` plans them): {"mae", "probe_mae",
    "probe_random"}."""
    mae = study.mae(seed=seed)
    return {"mae": mae, "probe_mae": study.linprobe(mae, {"seed": seed}),
            "probe_random": study.linprobe(None, {"seed": seed})}


def solve_probe(probe_config: dict, weights: dict | None, device: torch.device) -> dict:
    """The converged probe of ``probe_config`` (a linear-probe run's config) on an encoder's ``weights`` (a
    pretraining state dict; None: random initialisation at the config's seed), solved here without a run folder:
    {"top1", "knn_top1", "C"}. The same code path as the probe run (``train.linprobe``, its ``solve``)."""
    cfg = from_dict(probe_config)
    if cfg.probe != "logreg":
        raise ValueError(f"the screen solves the converged probe; this scale's probe is {cfg.probe!r}")
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        seed_all(cfg.seed)  # as the run does before building its job: the random encoder is the seed's
        job = linprobe.build(cfg, device, weights)
        fit = job.solve()
        res = job.final_eval()
    finally:
        torch.set_num_threads(threads)
    return {"top1": round(float(res["top1"]), 2), "knn_top1": round(float(res["knn_top1"]), 2),
            "C": fit["probe_C"]}


def measure(study: Study, runs: dict, seed: int, candidate: str | None) -> dict | None:
    """One seed's row, or None where the MAE has no snapshot yet (not trained)."""
    mae_dir = runs["mae"].dir
    snaps = snapshots(mae_dir) if os.path.isdir(mae_dir) else {}
    if not snaps:
        return None
    device = torch.device(study.torch_device)
    probe_cfg = runs["probe_mae"].config
    at = {e: solve_probe(probe_cfg, ckpt_io.load(p)["model"], device) for e, p in snaps.items()}
    random = solve_probe(runs["probe_random"].config, None, device)
    mae_metrics = finished_metrics(mae_dir)
    finished = {k: finished_metrics(runs[k].dir).get("top1") for k in ("probe_mae", "probe_random")}
    last = at[max(at)]
    return {"seed": seed, "candidate": candidate or "the recipe", "run": os.path.basename(mae_dir),
            "epochs": runs["mae"].config["optim"]["epochs"], "finished": bool(mae_metrics),
            "train_time_s": mae_metrics.get("train_time_s"), "random": random,
            "snapshots": {str(e): v for e, v in at.items()},
            "gain_at_end_pt": round(last["top1"] - random["top1"], 2),
            "probe_runs": {"mae": finished["probe_mae"], "random": finished["probe_random"]},
            # the gate's own runs, by name: a reader of this row (``testability.screened``) checks it read them
            "probe_run_names": {"mae": runs["probe_mae"].name, "random": runs["probe_random"].name}}


def main(argv=None) -> int:
    a = screens.parser(__doc__, no_train="measure the snapshots the MAE has so far (an unfinished run is marked so)",
                       merge="other seeds").parse_args(argv)
    planner: list = []
    study = study_of(a.scale, a.candidate, a.seed, a.run_root, a.device, planner)
    runs = planned_runs(study, a.seed)  # planned, not trained: a study with a planner only lists its runs
    if not a.no_train:
        train_runs(planner, a.run_root, a.jobs, progress=True)
    rows = screens.earlier_rows(a.out, "rows", a.merge)
    row = measure(study, runs, a.seed, a.candidate)
    if row is not None:
        rows[f"seed {a.seed}"] = row
        print(json.dumps({"event": "measured", "seed": a.seed, "random": row["random"]["top1"],
                          "mae_by_epoch": {e: v["top1"] for e, v in row["snapshots"].items()}}), flush=True)
    screens.write_table(a.out, a.scale, "rows", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
