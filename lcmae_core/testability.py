"""Choosing the recipe of a reference scale: candidates trained at several seeds, judged by the verdicts' own
preconditions, so that the record made at the chosen recipe can test the paper's claims.

A candidate (the scale record's ``reference_candidates``) is the scale's recipe with some levers moved: epochs, image
size, depth, rate. For each candidate and each of ``seeds`` this trains what the preconditions read (``runs_of``):
the attention pages' MAE with its deep decoder, Fig. 5's contrastive and supervised models, and the MAE baseline and
random initialisation under the linear probe; and measures them as the pages do (``measure``).

**The rule, declared before any candidate was measured** (``choose``): the cheapest candidate (the sum of its runs'
training seconds) in which, in every seed,

1. the deep decoder's attention formed in every layer (``verdicts.attention_formed``, mask-token queries): Figs. 2-4;
2. the MAE encoder's attention is local (``verdicts.attention_local``): Figs. 5, 6 and A.1;
3. Fig. 5's comparison models moved from initialisation and the supervised one beat the raw pixels of its task
   (``verdicts.f5_comparison_models``);
4. pretraining helps under the converged probe (``verdicts.pretraining_helps``: the MAE baseline above random
   initialisation, paired over the seeds): Tables 1, 2, 3 and A.1.

Where no candidate meets all four, the one meeting the most is chosen (the cheapest among them), the record is made at
it, and the table shows how close each came: the preconditions it missed are the record's "precondition unmet".

``python -m lcmae_core.testability --scale gpu --out bench/results/gpu_scale_calibration.json`` trains what is missing
(in parallel worker processes, ``--jobs``) and writes the table.
"""

from __future__ import annotations

import json
import math
import os
import sys

import numpy as np

from . import pages, scales, verdicts
from .analysis import shared_mask
from .atomic import atomic_write_text
from .calibration import committed_path
from .configs import from_dict
from .errors import OneLineParser, interruptible
from .experiments import Study
from .masking import MASK_RATIO
from .plan import check_jobs, cost, default_jobs, train_runs
from .projection import PROJECTION_MARGIN, fits, next_part, project
from .runs import ROOT_HELP
from .train.trainer import recorded_epoch_times

N_IMAGES = 128
PRECONDITIONS = ("decoder_formed", "encoder_local", "comparisons_learned", "pretraining_helps")


def candidate_study(scale: str, name: str, seeds=None, run_root: str | None = None, planner: list | None = None,
                    device: str = "auto") -> Study:
    """The study of one candidate: the scale's recipe with the candidate's overrides, on its families."""
    rec = scales.get(scale)
    if name not in rec.reference_candidates:
        raise ValueError(f"unknown candidate {name!r} of the {scale} scale; choose from "
                         f"{', '.join(rec.reference_candidates)}")
    _, changes, families = rec.reference_candidates[name]
    family_overrides = {f: dict(changes) for f in families} if families else {}
    return Study(scale=scale, run_root=run_root, seeds=seeds, device=device, verbose=False, planner=planner,
                 overrides={} if families else dict(changes), family_overrides=family_overrides)


def runs_of(study: Study) -> dict:
    """What the four preconditions read, per seed: Fig. 5's models (the attention pages' MAE, the contrastive and the
    supervised ones) and the linear probes of the MAE baseline and of random initialisation."""
    fig5 = pages.runs_fig5(study)
    probes = {s: {"mae": study.linprobe(study.mae(seed=s), {"seed": s}), "random": study.linprobe(None, {"seed": s})}
              for s in study.seeds}
    return {**fig5, "probes": probes}


def measure(study: Study, runs: dict, n_images: int = N_IMAGES) -> dict:
    """The four preconditions of one candidate, each with its text, and its cost."""
    images = study.for_attention().images(n_images)
    f5 = pages.fig5_models(study)
    em = {k: pages.encoder_models_measures(f5["models"][k], f5["inits"][k], images, study.torch_device)
          for k in f5["models"]}
    maes = f5["models"]["mae"]
    mask = shared_mask(next(iter(maes.values())).num_patches, MASK_RATIO, 0)
    dm = pages.decoder_measures(maes, f5["inits"]["mae"], images, mask, study.torch_device)
    arms = {k: verdicts.Arm(k, {"lp": [float(runs["probes"][s][k].metrics["top1"]) for s in study.seeds]})
            for k in ("mae", "random")}
    pre = {
        "decoder_formed": verdicts.attention_formed("decoder (mask-token queries)", dm["entropy"],
                                                    dm["entropy_init"], dm["n_keys"]),
        "encoder_local": verdicts.attention_local("MAE encoder", em["mae"]["distance"], em["mae"]["distance_init"],
                                                 em["mae"]["uniform"]),
        "comparisons_learned": verdicts.f5_comparison_models(
            {f5["names"][k]: (em[k]["entropy"], em[k]["entropy_init"]) for k in ("contrastive", "supervised")},
            f5["supervised"]),
        "pretraining_helps": verdicts.pretraining_helps(arms["mae"], arms["random"]),
    }
    trained = [r for k in ("mae", "contrastive", "supervised") for r in runs[k].values()]
    trained += [r for p in runs["probes"].values() for r in p.values()]
    seconds = [r.metrics.get("train_time_s") or 0.0 for r in trained]
    return {"met": {k: bool(p.met) for k, p in pre.items()}, "text": {k: p.text for k, p in pre.items()},
            "encoder_distance": np.round(em["mae"]["distance"].mean(1), 2).tolist(),
            "uniform_distance": round(em["mae"]["uniform"], 2),
            "decoder_entropy": np.round(dm["entropy"], 3).tolist(), "formed_entropy":
                round(verdicts.formed_entropy(dm["n_keys"]), 3),
            "probe": {k: a.of("lp") for k, a in arms.items()}, "train_s": round(sum(seconds), 1),
            # each run's training seconds and its planned relative cost, for ``project``; its first epoch's and the
            # others' median (``trainer.epoch_times``: on a GPU their difference is the compiling), where it trained
            "runs": {r.name: {"family": r.config["family"], "seconds": round(t, 2),
                              "cost": round(cost(from_dict(r.config)), 3),
                              **recorded_epoch_times(r.metrics)}
                     for r, t in zip(trained, seconds)}}


def choose(rows: dict[str, dict]) -> tuple[str | None, str]:
    """The rule of the module docstring: (chosen candidate, why)."""
    if not rows:
        return None, "no candidate was measured"
    met = {n: sum(r["met"].values()) for n, r in rows.items()}
    best = max(met.values())
    pick = min((n for n in rows if met[n] == best), key=lambda n: rows[n]["train_s"])
    if best == len(PRECONDITIONS):
        return pick, "the cheapest candidate meeting every precondition in every seed"
    missed = [k for k, v in rows[pick]["met"].items() if not v]
    return pick, (f"no candidate met every precondition; the cheapest of those meeting the most ({best} of "
                  f"{len(PRECONDITIONS)}), which misses {', '.join(missed)}")


def calibrate(scale: str, run_root: str | None = None, seeds=(0, 1, 2), names=None, jobs: int | None = None,
              n_images: int = N_IMAGES, device: str = "auto", progress: bool = True) -> dict:
    """Train every candidate's runs in parallel (``plan.train_runs``), measure each, choose: {"candidates": {name:
    row}, "chosen", "why", "seeds", "n_images"}."""
    rec = scales.get(scale)
    names = list(names or rec.reference_candidates)
    planner: list = []
    for n in names:
        runs_of(candidate_study(scale, n, seeds, run_root, planner, device))
    train_runs(planner, run_root, jobs or default_jobs(scale), progress=progress)
    rows = {}
    for n in names:
        study = candidate_study(scale, n, seeds, run_root, device=device)
        rows[n] = {"what": rec.reference_candidates[n][0], **measure(study, runs_of(study), n_images)}
    chosen, why = choose(rows)
    return {"scale": scale, "seeds": list(seeds), "n_images": n_images, "candidates": rows, "chosen": chosen,
            "why": why, "preconditions": list(PRECONDITIONS)}


def summary(table: dict):
    """One row per candidate, cheapest first: what it changes, its cost, and each precondition met or not, with
    the numbers behind the nearest misses (pandas DataFrame)."""
    import pandas as pd  # lazy: the book's tables only (requirements.txt), not the library core (pyproject)

    rows = []
    for name, r in sorted(table["candidates"].items(), key=lambda kv: kv[1].get("train_s", math.inf)):
        rows.append({"candidate": name, "what": r["what"], "training s": r["train_s"],
                     **{k.replace("_", " "): "yes" if r["met"][k] else "no" for k in PRECONDITIONS},
                     "encoder distance px (uniform)": f"{', '.join(f'{d:.1f}' for d in r['encoder_distance'])} "
                                                      f"({r['uniform_distance']:.1f})",
                     "probe: MAE / random init": f"{np.mean(r['probe']['mae']):.1f} / "
                                                 f"{np.mean(r['probe']['random']):.1f}",
                     "chosen": name == table["chosen"]})
    return pd.DataFrame(rows).set_index("candidate")


def table_path(scale: str = "gpu") -> str:
    """``bench/results/<scale>_scale_calibration.json`` of this repository: the committed table of a scale."""
    return committed_path(f"{scale}_scale_calibration.json")


def _read_committed(path: str, valid, what: str, maker: str) -> dict | None:
    """A committed JSON table, or None where none was made yet; one line naming the file and the command that
    rewrites it where ``valid(table)`` is false."""
    try:
        with open(path) as f:
            table = json.load(f)
    except FileNotFoundError:
        return None
    if not valid(table):
        raise ValueError(f"{path} is not {what}; rewrite it with {maker}")
    return table


def read_table(path: str) -> dict | None:
    """A committed testability table, or None where none was made yet (the appendix then says how to make it)."""
    return _read_committed(path, lambda t: {"candidates", "chosen", "why", "seeds"} <= set(t),
                           "a testability table", "python -m lcmae_core.testability")


def page_text(table: dict | None, scale: str = "gpu") -> str:
    """The appendix's sentence on a reference scale's calibration: what it chose and why, or how to make it."""
    if table is None:
        return (f"The {scale} scale's calibration has not been run yet: it needs a GPU (its candidates at 3 seeds each "
                f"take minutes on one, hours on 2 CPU cores). bench/gpu_record.sh runs it, then makes the record; "
                f"until then the scale's recipe is its first one, not a calibrated choice.")
    n = len(table["candidates"])
    full = sum(all(r["met"].values()) for r in table["candidates"].values())
    return (f"Of {n} candidates trained at {len(table['seeds'])} seeds each, {full} met every precondition in every "
            f"seed. The rule chose {table['chosen']}: {table['why']}.")


def screen_path(scale: str = "gpu") -> str:
    """``bench/results/<scale>_locality_screen.json``: the committed screen of a scale's levers
    (``bench/locality_screen.py``, one seed), which informed its candidates."""
    return committed_path(f"{scale}_locality_screen.json")


def read_screen(path: str) -> dict | None:
    """A committed locality screen, or None where none was made."""
    return _read_committed(path, lambda t: "candidates" in t and all("snapshots" in r
                                                                    for r in t["candidates"].values()),
                           "a locality screen", "bench/locality_screen.py")


def screen_summary(screen: dict):
    """One row per lever of a locality screen: what it changes, the encoder's mean attention distance as a fraction of
    uniform attention at every measured epoch, and at its last epoch whether the encoder reads as local (at most
    ``verdicts.LOCAL_FRACTION`` of uniform and below its own initialisation) and in how many decoder layers the
    mask-token attention formed (``verdicts.formed_entropy``), each at the one seed it ran (pandas DataFrame)."""
    import pandas as pd  # lazy: the book's tables only

    rows = []
    for name, r in screen["candidates"].items():
        snaps = {int(e): v for e, v in r["snapshots"].items()}
        last, init = snaps[max(snaps)], snaps[0]
        local = (last["distance_fraction"] <= r["local_fraction"]
                 and np.mean(last["encoder_distance"]) < np.mean(init["encoder_distance"]))
        formed = sum(h <= r["formed_entropy"] for h in last["decoder_entropy"])
        rows.append({"lever": name, "what": r["what"], "seed": r.get("seed", screen.get("seed", 0)),
                     "epochs": r["epochs"] if r["finished"] else f"{max(snaps)} of {r['epochs']} (unfinished)",
                     "distance / uniform, by epoch": ", ".join(f"{e}: {v['distance_fraction']:.3f}"
                                                              for e, v in sorted(snaps.items())),
                     "encoder local at the end": "yes" if local else "no",
                     "decoder layers formed at the end": f"{formed} of {len(last['decoder_entropy'])}"})
    return pd.DataFrame(rows).set_index("lever")


def screen_text(screen: dict | None, scale: str = "gpu") -> str:
    """The appendix's sentence on a scale's locality screen."""
    if screen is None:
        return (f"No locality screen of the {scale} scale is committed; bench/locality_screen.py makes one on any "
                f"machine.")
    frame = screen_summary(screen)
    local = [n for n in frame.index if frame.loc[n, "encoder local at the end"] == "yes"]
    seeds = sorted(set(frame["seed"]))
    at = f"seed {seeds[0]}" if len(seeds) == 1 else "seeds " + ", ".join(map(str, seeds))
    return (f"{len(frame)} runs screened (one lever moved at a time, {at}) on {screen['n_images']} held-out crops; "
            f"the encoder read as local at the end in {len(local)} of them"
            + (f" ({', '.join(local)})" if local else "")
            + ". A screen informs the candidates; it decides nothing (the calibration runs 3 seeds).")


def comparison_screen_path(scale: str = "gpu") -> str:
    """``bench/results/<scale>_comparison_screen.json``: the committed screen of Fig. 5's comparison models at a scale
    (``bench/comparison_screen.py``)."""
    return committed_path(f"{scale}_comparison_screen.json")


def read_comparison_screen(path: str) -> dict | None:
    """A committed comparison screen, or None where none was made."""
    return _read_committed(path, lambda t: "rows" in t and all({"snapshots", "init"} <= set(r)
                                                              for r in t["rows"].values()),
                           "a comparison screen", "bench/comparison_screen.py")


def _layers_below(row: dict) -> int:
    """In how many layers a screened model's attention entropy at its last kept epoch lies below its random-init
    twin's."""
    snaps = {int(e): v for e, v in row["snapshots"].items()}
    return sum(t < i for t, i in zip(snaps[max(snaps)]["entropy"], row["init"]["entropy"]))


def comparison_summary(screen: dict):
    """One row per comparison model and seed of a comparison screen: the encoder's attention entropy (fraction of its
    maximum, mean over layers) at every kept epoch beside its random-init twin's, whether at the last epoch every
    layer lay below the twin's (a point reading of one seed: the verdict, ``verdicts.attention_moved``, reads a paired
    interval over seeds), the mean attention distance at the last epoch beside the twin's, and for the supervised
    model its top-1 against the better raw-pixel baseline of its task (``verdicts.task_learned``) (pandas DataFrame)."""
    import pandas as pd  # lazy: the book's tables only

    rows = []
    for name, r in screen["rows"].items():
        snaps, init = {int(e): v for e, v in r["snapshots"].items()}, r["init"]
        last = snaps[max(snaps)]
        row = {"model": name, "what": r["what"], "seed": r["seed"],
               "epochs": r["epochs"] if r["finished"] else f"{max(snaps)} of {r['epochs']} (unfinished)",
               "entropy by epoch (random init)": ", ".join(f"{e}: {np.mean(v['entropy']):.3f}"
                                                           for e, v in sorted(snaps.items()))
                                                 + f" ({np.mean(init['entropy']):.3f})",
               "layers below random init at the end": f"{_layers_below(r)} of {len(init['entropy'])}",
               # Fig. 5's own quantity: how far the attention reaches, beside the random-init twin's
               "mean distance px at the end (random init)": (
                   f"{np.mean(last['distance']):.1f} ({np.mean(init['distance']):.1f})"
                   if "distance" in init and "distance" in last else ""),
               "top-1 % (best raw pixels)": ""}
        if "top1" in r:
            raw = max(r["raw_pixels"].values())
            row["top-1 % (best raw pixels)"] = ("not finished" if r["top1"] is None
                                                else f"{r['top1']:.1f} ({raw:.1f})")
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def comparison_text(screen: dict | None, scale: str = "gpu") -> str:
    """The appendix's sentence on a scale's comparison screen."""
    if screen is None:
        return (f"No screen of Fig. 5's comparison models at the {scale} scale is committed; "
                f"bench/comparison_screen.py makes one on any machine.")
    frame = comparison_summary(screen)
    moved = [n for n, r in screen["rows"].items() if _layers_below(r) == len(r["init"]["entropy"])]
    learned = [n for n, r in screen["rows"].items()
               if r.get("top1") is not None and r["top1"] > max(r["raw_pixels"].values())]
    supervised = [n for n, r in screen["rows"].items() if "top1" in r]
    seeds = sorted({r["seed"] for r in screen["rows"].values()})
    return (f"{len(frame)} comparison models screened (seed{'s' if len(seeds) > 1 else ''} "
            f"{', '.join(map(str, seeds))}); at the end the attention of {len(moved)} of them lay below its "
            f"random-init twin's in every layer" + (f" ({'; '.join(moved)})" if moved else "")
            + (f", and {len(learned)} of {len(supervised)} supervised run{'s' if len(supervised) > 1 else ''} beat "
               f"the raw pixels of {'their' if len(supervised) > 1 else 'its'} task"
               if supervised else "")
            + ". Point readings of single seeds: the calibration decides, on paired intervals over 3.")


def probe_screen_path(scale: str = "gpu") -> str:
    """``bench/results/<scale>_probe_screen.json``: the committed screen of the pretraining gate at a scale
    (``bench/probe_screen.py``)."""
    return committed_path(f"{scale}_probe_screen.json")


def read_probe_screen(path: str) -> dict | None:
    """A committed probe screen, or None where none was made."""
    return _read_committed(path, lambda t: "rows" in t and all({"snapshots", "random"} <= set(r)
                                                              for r in t["rows"].values()),
                           "a probe screen", "bench/probe_screen.py")


def _probe_gain(row: dict) -> float:
    """A probe screen row's gain of the MAE at its last kept epoch over random initialisation, in points."""
    snaps = {int(e): v for e, v in row["snapshots"].items()}
    return snaps[max(snaps)]["top1"] - row["random"]["top1"]


def probe_summary(screen: dict):
    """One row per seed of a probe screen: the converged probe's top-1 on the MAE at every kept epoch (epoch 0: the
    MAE's own initialisation), on the random-init classifier the gate compares with, the MAE's gain over it at the
    last kept epoch (a point reading of one seed: the gate, ``verdicts.pretraining_helps``, reads a paired interval
    over seeds), the kNN on the same features, and the L2 strength each probe chose (pandas DataFrame)."""
    import pandas as pd  # lazy: the book's tables only

    rows = []
    for name, r in screen["rows"].items():
        snaps = {int(e): v for e, v in r["snapshots"].items()}
        last = snaps[max(snaps)]
        rows.append({"seed": name, "candidate": r["candidate"],
                     "epochs": r["epochs"] if r["finished"] else f"{max(snaps)} of {r['epochs']} (unfinished)",
                     "MAE probe top-1 % by epoch": ", ".join(f"{e}: {v['top1']:.1f}" for e, v in sorted(snaps.items())),
                     "random init top-1 %": f"{r['random']['top1']:.1f}",
                     "gain at the end, pt": f"{_probe_gain(r):+.1f}",
                     "kNN top-1 % at the end (random init)": f"{last['knn_top1']:.1f} ({r['random']['knn_top1']:.1f})",
                     "probe C at the end (random init)": f"{last['C']:g} ({r['random']['C']:g})"})
    return pd.DataFrame(rows).set_index("seed")


def probe_text(screen: dict | None, scale: str = "gpu") -> str:
    """The appendix's sentence on a scale's probe screen."""
    if screen is None:
        return (f"No screen of the pretraining gate at the {scale} scale is committed; bench/probe_screen.py makes one "
                f"on any machine.")
    rows = screen["rows"]
    gains = [_probe_gain(r) for r in rows.values()]
    ahead = sum(g > 0 for g in gains)
    seeds = sorted({r["seed"] for r in rows.values()})
    return (f"{len(rows)} seed{'s' if len(rows) > 1 else ''} screened (seed{'s' if len(seeds) > 1 else ''} "
            f"{', '.join(map(str, seeds))}); at its last "
            f"kept epoch the MAE's converged probe was above random initialisation's in {ahead} of them "
            f"({', '.join(f'{g:+.1f}' for g in gains)} pt). Point readings of single seeds: the gate decides, on a "
            f"paired interval over the calibration's 3.")


def recipe_candidate(scale: str) -> str | None:
    """The candidate that is the scale's recipe as it stands (no changes), or None."""
    return next((n for n, (_, changes, _) in scales.get(scale).reference_candidates.items() if not changes), None)


def _screen_rows(screen: dict | None, key: str) -> dict:
    """A screen's finished rows by the run each read."""
    return {} if screen is None else {r["run"]: r for r in screen[key].values() if r["finished"]}


def _end_and_init(row: dict, field: str, init: str | None = None) -> tuple[list, list]:
    """A screened run's ``field`` at its last kept epoch, and at initialisation (snapshot 0, or ``row[init]``)."""
    snaps = {int(e): v for e, v in row["snapshots"].items()}
    return snaps[max(snaps)][field], (row[init] if init else snaps[0])[field]


def screened(scale: str, name: str, locality: dict | None, comparison: dict | None, probe: dict | None) -> dict:
    """The four preconditions of candidate ``name`` read from the committed screens instead of a calibration run:
    the screens' rows of the very runs the candidate's calibration trains (``runs_of``, matched by run name; the probe
    screen's by the MAE's and both probes' names), finished, at every seed where all three screens hold them, through
    the verdicts' functions as ``measure`` calls them, on the same images (``N_IMAGES``) and mask. The screens keep
    their readings rounded (distances to 0.01 px, entropies to 0.001), so an interval may differ from a calibration's
    in its last digit. {"candidate", "seeds" (complete), "missing" ({seed: what is not screened}), "met", "text"
    (None where fewer than 2 seeds are complete: no paired interval)}."""
    rows = {"locality": _screen_rows(locality, "candidates"), "comparison": _screen_rows(comparison, "rows"),
            "probe": _screen_rows(probe, "rows")}
    seeds = tuple(sorted({r.get("seed", 0) for rs in rows.values() for r in rs.values()}))
    out = {"candidate": name, "seeds": [], "missing": {}, "met": None, "text": None}
    if not seeds:
        return out
    study = candidate_study(scale, name, seeds, None, [])  # a planner: the runs are named, not trained
    runs = runs_of(study)
    got = {}
    for s in seeds:
        probes = runs["probes"][s]
        pr = rows["probe"].get(study.mae(seed=s).name)
        if pr is not None and (pr.get("probe_run_names") != {k: r.name for k, r in probes.items()}
                               or None in pr["probe_runs"].values()):
            pr = None  # a row of other probes (stale), or of probes that had not finished
        got[s] = {"mae": rows["locality"].get(runs["mae"][s].name), "probe": pr,
                  **{k: rows["comparison"].get(runs[k][s].name) for k in ("contrastive", "supervised")}}
        lacking = [k for k, v in got[s].items() if v is None]
        if lacking:
            out["missing"][s] = lacking
    complete = [s for s in seeds if s not in out["missing"]]
    out["seeds"] = complete
    if len(complete) < 2:
        return out
    g = [got[s] for s in complete]
    mae_cfg = runs["mae"][complete[0]].config["model"]
    n_keys = (mae_cfg["img_size"] // mae_cfg["patch_size"]) ** 2
    dec = [_end_and_init(x["mae"], "decoder_entropy") for x in g]
    dist = [_end_and_init(x["mae"], "encoder_distance") for x in g]
    ent = {k: [_end_and_init(x[k], "entropy", "init") for x in g] for k in ("contrastive", "supervised")}
    raw_best = max(g[0]["supervised"]["raw_pixels"].values())
    lp = {k: [float(x["probe"]["probe_runs"][k]) for x in g] for k in ("mae", "random")}
    pre = {
        "decoder_formed": verdicts.attention_formed("decoder (mask-token queries)", [e for e, _ in dec],
                                                    [i for _, i in dec], n_keys),
        "encoder_local": verdicts.attention_local("MAE encoder", [d for d, _ in dist], [i for _, i in dist],
                                                 g[0]["mae"]["uniform_distance"]),
        "comparisons_learned": verdicts.f5_comparison_models(
            {pages.FIG5_NAMES[k]: ([e for e, _ in v], [i for _, i in v]) for k, v in ent.items()},
            (pages.FIG5_NAMES["supervised"], [x["supervised"]["top1"] for x in g], raw_best)),
        "pretraining_helps": verdicts.pretraining_helps(verdicts.Arm("mae", {"lp": lp["mae"]}),
                                                        verdicts.Arm("random", {"lp": lp["random"]})),
    }
    out.update(met={k: bool(p.met) for k, p in pre.items()}, text={k: p.text for k, p in pre.items()})
    return out


def screened_summary(reading: dict):
    """One row per precondition of a ``screened`` reading: met or not, and what the verdict read (pandas
    DataFrame)."""
    import pandas as pd  # lazy: the book's tables only

    return pd.DataFrame([{"precondition": k.replace("_", " "), "met": "yes" if reading["met"][k] else "no",
                          "what the verdict read": reading["text"][k]} for k in PRECONDITIONS]
                        ).set_index("precondition")


def screened_text(reading: dict, scale: str = "gpu") -> str:
    """The appendix's sentence on the preconditions read from the screens."""
    name, seeds = reading["candidate"], reading["seeds"]
    lacking = "; ".join(f"seed {s}: {', '.join(v)}" for s, v in sorted(reading["missing"].items()))
    if reading["met"] is None:
        return (f"The screens hold {len(seeds)} complete seed{'' if len(seeds) == 1 else 's'} of the {scale} "
                f"recipe ({name}), too few for a paired interval" + (f" (not screened: {lacking})" if lacking else "")
                + ".")
    met = [k.replace("_", " ") for k in PRECONDITIONS if reading["met"][k]]
    return (f"Read from the screens at seeds {', '.join(map(str, seeds))}, the {scale} recipe ({name}) meets "
            f"{len(met)} of the {len(PRECONDITIONS)} preconditions" + (f" ({', '.join(met)})" if met else "")
            + (f"; not screened: {lacking}" if lacking else "")
            + ". The same verdict functions on the same runs as the calibration, on the screens' rounded readings; "
              "the calibration, which tries the other candidates too, decides.")


@interruptible
def main(argv=None) -> int:
    candidates = [n for n, r in scales.SCALES.items() if r.reference_candidates]
    p = OneLineParser(prog="python -m lcmae_core.testability", description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", default="gpu", choices=candidates)
    p.add_argument("--out", required=True, help="the JSON table to write")
    p.add_argument("--seeds", type=int, default=3, help="seeds per candidate (0 .. N-1; default 3)")
    p.add_argument("--only", nargs="*", default=None, help="candidate names (default: all)")
    p.add_argument("--run-root", default=None, help=ROOT_HELP + "; with --project, the runs finished there count as "
                   "trained (default: the calibration's own)")
    p.add_argument("--jobs", type=int, default=None, help="worker processes (default: the scale's)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto (default)")
    p.add_argument("--n-images", type=int, default=N_IMAGES)
    p.add_argument("--project", action="store_true",
                   help="train nothing: read the table at --out and estimate how long the record at the scale would "
                        "train on the machine that made it, with --jobs workers (``project``)")
    p.add_argument("--within", type=float, default=None, metavar="SECONDS",
                   help="with --project: exit 3, with one line, unless the projected record fits SECONDS "
                        f"(x {PROJECTION_MARGIN:g}, ``fits``)")
    p.add_argument("--pages", nargs="+", default=None, metavar="NOTEBOOK",
                   help="with --project: the record's part of these pages alone (record --only)")
    p.add_argument("--next-part", default=None, metavar="RECORD",
                   help="with --project and --within: choose the record's next part, the pages not in the record "
                        "folder RECORD (which need not exist yet) whose training fits, and print them on a last "
                        "line 'next part: PAGE ...' (``next_part``); exit 3 where none fits")
    a = p.parse_args(argv)
    if a.project:
        table = read_table(a.out)
        if table is None:
            p.error(f"no calibration table at {a.out}; calibrate first (without --project)")
        if a.pages:
            from .batch import BatchError, list_notebooks, select  # lazy: the batch's own imports
            try:
                select(list_notebooks(), a.pages)
            except BatchError as e:
                p.error(f"--pages: {e}")
        jobs = check_jobs(a.jobs) or default_jobs(a.scale)
        try:
            projection = project(table, a.scale, jobs, a.pages, a.run_root)
        except ValueError as e:
            p.error(str(e))
        print(json.dumps({"event": "projected", "scale": a.scale, **projection}))
        if a.next_part is not None:
            if a.within is None:
                p.error("--next-part needs --within SECONDS (the time the part may take)")
            from .batch import LAST, list_notebooks  # lazy: records and the batch import much
            from .records import RecordError, read_record
            try:
                held = read_record(a.next_part).provenance["pages"] if os.path.isdir(a.next_part) else {}
            except RecordError as e:
                p.error(str(e))
            part, got = next_part(table, a.scale, jobs, a.within, held, a.run_root)
            if not part and got is None and all(n in held for n in list_notebooks() if n not in LAST):
                print(f"stopped: nothing left to record: {a.next_part} holds every page", file=sys.stderr)
                return 3
            if not part:
                print(f"stopped: no page left to record ({len(held)} held) has its projected training fit the "
                      f"{a.within:.0f} s left, x {PROJECTION_MARGIN:g}", file=sys.stderr)
                return 3
            print(json.dumps({"event": "next_part", "pages": part, **got}))
            print("next part: " + " ".join(part))
            return 0
        if a.within is not None:
            ok, why = fits(projection, a.within)
            print(why, file=sys.stdout if ok else sys.stderr)
            return 0 if ok else 3
        return 0
    if a.seeds < 2:
        p.error(f"--seeds must be at least 2 (a paired interval needs two), got {a.seeds}")
    a.jobs = check_jobs(a.jobs)
    try:
        table = calibrate(a.scale, a.run_root, tuple(range(a.seeds)), a.only, a.jobs, a.n_images, a.device)
    except ValueError as e:
        p.error(str(e))
    atomic_write_text(a.out, json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(json.dumps({"event": "calibrated", "out": a.out, "chosen": table["chosen"], "why": table["why"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["PRECONDITIONS", "candidate_study", "runs_of", "measure", "choose", "calibrate", "summary", "table_path",
           "read_table", "page_text", "screen_path", "read_screen",
           "screen_summary", "screen_text", "comparison_screen_path", "read_comparison_screen", "comparison_summary",
           "comparison_text", "probe_screen_path", "read_probe_screen", "probe_summary", "probe_text"]
