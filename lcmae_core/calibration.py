"""Choosing the cpu scale of the attention pages: candidate MAE recipes on natural-image crops, measured.

The paper's mechanisms are attention patterns: an encoder whose attention is local (Figs. 5, 6, A.1) and a
decoder whose first layer attends by position (Figs. 2, 4). A recipe can only test them where they formed. This
module trains a few candidate recipes (the scale record's ``calibration_candidates``: MAE with the attention pages' deep
decoder, on crops of the bundled pretraining photos, seed 0), measures on crops of the held-out photos, per layer, what the verdicts'
preconditions read, beside the random-init model of the same seed and uniform attention, and chooses.

Measured per candidate (``measure``):

- the encoder's attention entropy (fraction of its maximum) and attention distance (pixels) per layer, on whole
  images, trained and at initialisation, and the distance of uniform attention;
- the decoder's mask-token attention entropy and distance per layer, and Eq. 7's S^attn per layer, trained and at
  initialisation, with one shared mask (ratio 0.75, seed 0);
- the training time (the run's CPU seconds on one thread).

**The choice, declared before any candidate was measured** (``choose``): the cheapest candidate whose encoder
attention formed in every layer with a margin of ``ENCODER_MARGIN`` below ``verdicts.formed_entropy`` (the
precondition of Figs. 5, 6 and A.1) and whose first decoder layer is measurably position-dependent: its
mask-token entropy is formed (the precondition of Figs. 2 and 4) and its attention distance is at most
``DECODER_LOCAL_RATIO`` of the random-init model's. Where no candidate's encoder forms, the cheapest candidate whose
decoder passes is chosen, and the encoder pages stay *not testable* at the cpu scale with the table's numbers as
the reason. The thresholds: a margin of 0.02 of the maximum entropy is about four times the spread of one
layer's entropy over the seeds of the cpu pilot (0.004-0.006), so that a candidate passing here passes with the
book's other seeds; a tenth closer than random init is a difference no image sample of 128 crops produces by chance
(the pilot's random-init distances varied by under 1% over image samples).

``python -m lcmae_core.calibration --out FILE --jobs 2`` trains what is missing (run store: ``--run-root``) and
writes the table as JSON (atomically); the book's appendix "Choosing the cpu scale" reads it.
"""

from __future__ import annotations

import json
import math
import os
import sys

from . import analysis, configs, scales, verdicts
from .atomic import atomic_write_text
from .errors import OneLineParser, interruptible
from .experiments import Study
from .masking import MASK_RATIO
from .plan import check_jobs, train_runs
from .reference_models import load_run, load_run_init
from .runs import ROOT_HELP, run_or_load

ENCODER_MARGIN = 0.02
DECODER_LOCAL_RATIO = 0.9
N_IMAGES = 128


def measure(run, n_images: int = N_IMAGES) -> dict:
    """The numbers of one candidate run (see the module docstring), as plain lists and floats."""
    cfg = configs.from_dict(run.config)
    model, _ = load_run(run.checkpoint)
    init = load_run_init(run.dir)
    img_size = cfg.model.img_size
    study = Study(scale=cfg.scale if cfg.scale in scales.NAMES else "cpu", dataset="photos", verbose=False,
                  overrides={"model.img_size": img_size, "data.photo_short_side": cfg.data.photo_short_side})
    images = study.images(n_images)
    out = {"run": run.name, "train_cpu_time_s": run.metrics.get("train_cpu_time_s"),
           "train_time_s": run.metrics.get("train_time_s"), "epochs": cfg.optim.epochs,
           "grid": img_size // cfg.model.patch_size, "img_size": img_size}
    for tag, m in (("", model.eval()), ("_init", init.eval())):
        enc = analysis.attention_stats_curves(m, images, "encoder")
        out["encoder_entropy" + tag] = enc["entropy"].mean(-1).tolist()
        out["encoder_distance" + tag] = enc["distance"].mean(-1).tolist()
        mask = analysis.shared_mask(m.num_patches, MASK_RATIO, 0)
        dec = analysis.decoder_attention_measures(m, images, mask)
        out["decoder_entropy" + tag] = dec["entropy"].mean(-1).tolist()
        out["decoder_distance" + tag] = dec["distance"].mean(-1).tolist()
        out["decoder_s_attn" + tag] = [float(v) for v in dec["s_attn"]]
    grid = img_size // cfg.model.patch_size
    out["uniform_distance"] = analysis.uniform_attention_distance(grid, cfg.model.patch_size)
    out["n_keys"] = grid * grid
    out["formed_entropy"] = verdicts.formed_entropy(grid * grid)
    return out


def passes(row: dict) -> dict:
    """Whether a candidate's encoder and first decoder layer pass the declared thresholds (module docstring)."""
    limit = row["formed_entropy"]
    enc = all(t <= limit - ENCODER_MARGIN and t < i for t, i in zip(row["encoder_entropy"],
                                                                   row["encoder_entropy_init"]))
    d1, d1_init = row["decoder_distance"][0], row["decoder_distance_init"][0]
    dec = row["decoder_entropy"][0] <= limit and d1 <= DECODER_LOCAL_RATIO * d1_init
    return {"encoder_formed": enc, "decoder_layer1_positional": dec}


def choose(rows: dict[str, dict]) -> tuple[str | None, str]:
    """The chosen candidate and why (the rule of the module docstring); (None, why) when no decoder passes."""
    def cost(name):
        t = rows[name].get("train_cpu_time_s")
        return math.inf if t is None else t

    ok = {n: passes(r) for n, r in rows.items()}
    both = sorted((n for n, v in ok.items() if v["encoder_formed"] and v["decoder_layer1_positional"]), key=cost)
    if both:
        return both[0], "the cheapest candidate whose encoder attention and first decoder layer both formed"
    dec = sorted((n for n, v in ok.items() if v["decoder_layer1_positional"]), key=cost)
    if dec:
        return dec[0], ("no candidate's encoder attention formed with the margin; the cheapest whose first decoder "
                        "layer is position-dependent")
    return None, "no candidate formed either mechanism"


def calibrate(scale: str = "cpu", run_root: str | None = None, jobs: int = 1, names=None,
              n_images: int = N_IMAGES, progress: bool = True) -> dict:
    """Train the missing candidate runs (``plan.train_runs``) and measure each: {"candidates": {name: row},
    "chosen", "why", thresholds}."""
    cands = configs.calibration_candidates(scale)
    if names:
        unknown = sorted(set(names) - set(cands))
        if unknown:
            raise ValueError(f"unknown candidate(s) {', '.join(unknown)}; choose from {', '.join(cands)}")
        cands = {n: cands[n] for n in names}
    train_runs([c for _, c in cands.values()], run_root, jobs=jobs, progress=progress)
    rows = {}
    for name, (text, cfg) in cands.items():
        run = run_or_load(cfg, root=run_root)
        rows[name] = {"what": text, "config": configs.to_dict(cfg), **measure(run, n_images)}
        rows[name].update(passes(rows[name]))
    chosen, why = choose(rows)
    return {"scale": scale, "candidates": rows, "chosen": chosen, "why": why, "encoder_margin": ENCODER_MARGIN,
            "decoder_local_ratio": DECODER_LOCAL_RATIO, "n_images": n_images, "mask_ratio": MASK_RATIO}


def committed_path(name: str) -> str:
    """``bench/results/<name>`` of this repository (beside the ``lcmae_core`` package): the cpu scale's committed
    tables (this calibration's, and ``lcmae_core.budget``'s)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench", "results", name)


def read_committed(path: str, what: str, command: str, keys: set) -> dict:
    """A committed JSON table, with one-line errors: missing (naming the command that writes it) or foreign (no
    ``keys``)."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no {what} at {path}; write it with {command} --out {path}")
    with open(path) as f:
        table = json.load(f)
    missing = keys - set(table)
    if missing:
        raise ValueError(f"{path} is not a {what} (no {', '.join(sorted(missing))}); rewrite it with {command}")
    return table


def default_table_path() -> str:
    return committed_path("cpu_scale_calibration.json")


def page_table(scale: str, run_root: str | None = None, path: str | None = None) -> dict:
    """The appendix's table at a scale: calibrated as the page runs where the scale does so (its few tiny candidates;
    ``scales.Scale.calibrates_live``), else the committed one (``path``, default ``default_table_path``)."""
    if scales.get(scale).calibrates_live:
        return calibrate(scale, run_root, jobs=1, n_images=16, progress=False)
    return read_table(path)


def recipe_check(table: dict, scale: str) -> tuple[bool | None, str]:
    """``recipe_agrees`` at the scale the committed tables describe; elsewhere (None, why not)."""
    if not scales.get(scale).committed_tables:
        return None, "not checked at this scale"
    return recipe_agrees(table, scale)


def read_table(path: str | None = None) -> dict:
    """The calibration table a ``calibrate`` run wrote; a one-line error naming the command when it is missing."""
    return read_committed(path or default_table_path(), "calibration table",
                          "python -m lcmae_core.calibration",
                          {"candidates", "chosen", "why"})


def summary(table: dict):
    """One row per candidate, cheapest first: what it changes, its cost and, per mechanism, trained vs random
    init (pandas DataFrame)."""
    import pandas as pd  # lazy: the book's tables only (requirements.txt), not the library core (pyproject)

    def fmt(v, d=3):
        return ", ".join(f"{x:.{d}f}" for x in v)

    rows = []
    for name, r in sorted(table["candidates"].items(), key=lambda kv: kv[1].get("train_cpu_time_s") or math.inf):
        rows.append({
            "candidate": name, "what": r["what"], "grid": f"{r['grid']}x{r['grid']}", "epochs": r["epochs"],
            "train CPU s": r.get("train_cpu_time_s"),
            "encoder entropy per layer (init)": f"{fmt(r['encoder_entropy'])} ({fmt(r['encoder_entropy_init'])})",
            "formed at most": round(r["formed_entropy"] - table.get("encoder_margin", ENCODER_MARGIN), 3),
            "encoder distance px (init; uniform)": f"{fmt(r['encoder_distance'], 1)} "
                                                   f"({fmt(r['encoder_distance_init'], 1)}; "
                                                   f"{r['uniform_distance']:.1f})",
            "decoder entropy per layer (init)": f"{fmt(r['decoder_entropy'])} ({fmt(r['decoder_entropy_init'])})",
            "decoder layers formed": sum(t <= r["formed_entropy"] for t in r["decoder_entropy"]),
            "decoder layer 1 distance / init": round(r["decoder_distance"][0] / r["decoder_distance_init"][0], 3),
            "decoder S_attn per layer (init)": f"{fmt(r['decoder_s_attn'])} ({fmt(r['decoder_s_attn_init'])})",
            "encoder formed": r["encoder_formed"], "decoder layer 1 positional": r["decoder_layer1_positional"],
            "chosen": name == table["chosen"]})
    return pd.DataFrame(rows).set_index("candidate")


def choice_text(table: dict) -> str:
    """What the table chose and what that candidate measured, in a sentence (the appendix glues it)."""
    chosen = table.get("chosen")
    n = len(table["candidates"])
    n_enc = sum(bool(r.get("encoder_formed")) for r in table["candidates"].values())
    n_dec = sum(bool(r.get("decoder_layer1_positional")) for r in table["candidates"].values())
    head = (f"Of {n} candidates, {n_enc} formed encoder attention in every layer with the margin and {n_dec} a "
            f"position-dependent first decoder layer.")
    if chosen is None:
        return f"{head} None formed either, so no recipe was chosen: {table['why']}."
    r = table["candidates"][chosen]
    return (f"{head} The rule chose {chosen} ({r['what']}): {table['why']}. Its flattest encoder layer has "
            f"{max(r['encoder_entropy']):.3f} of the maximum entropy (formed means at most "
            f"{r['formed_entropy']:.3f}), its first decoder layer's mask-token attention distance is "
            f"{r['decoder_distance'][0] / r['decoder_distance_init'][0]:.3f} of the random-init model's, and "
            f"{sum(t <= r['formed_entropy'] for t in r['decoder_entropy'])} of its {len(r['decoder_entropy'])} "
            f"decoder layers formed; it trained in {r['train_cpu_time_s']:.0f} CPU seconds on one thread.")


def trend_text(table: dict) -> str:
    """What the candidates share, from their numbers: where the decoder's attention concentrated, and how far the
    encoder's distances moved from the random-init model's."""
    rows = list(table["candidates"].values())
    first = sum(r["decoder_entropy"][0] <= min(r["decoder_entropy"][1:]) for r in rows if len(r["decoder_entropy"]) > 1)
    formed_all = sum(all(t <= r["formed_entropy"] for t in r["decoder_entropy"]) for r in rows)
    shifts = [abs(sum(r["encoder_distance"]) / sum(r["encoder_distance_init"]) - 1) for r in rows]
    below = sum(max(r["encoder_entropy"]) < min(r["encoder_entropy_init"]) for r in rows)
    return (f"In {first} of {len(rows)} candidates the first decoder layer was the most concentrated one, and in "
            f"{formed_all} every decoder layer formed. The encoder's entropy fell below the random-init model's in "
            f"every layer in {below} of them, while its mean attention distance stayed within "
            f"{100 * max(shifts):.0f}% of the random-init model's in all: its attention concentrated without coming "
            f"closer.")


def recipe_agrees(table: dict, scale: str = "cpu") -> tuple[bool, str]:
    """Does the book's attention recipe (the scale record's ``attention`` and the MAE's epochs in its
    ``attention_family``) train what the table chose? (ok, one line saying what differs)."""
    chosen = table.get("chosen")
    if chosen is None:
        return False, "the calibration chose no candidate"
    want = table["candidates"][chosen]["config"]
    planner: list = []
    Study(scale=scale, verbose=False, planner=planner).for_attention().attention_mae()
    have = configs.to_dict(planner[-1])
    keys = {"": ("mask_ratio",),
            "model": ("img_size", "patch_size", "embed_dim", "depth", "num_heads", "decoder_embed_dim",
                      "decoder_depth", "norm_pix_loss"),
            "data": ("dataset", "photo_short_side", "samples_per_epoch", "crop_scale"),
            "optim": ("epochs", "base_lr", "batch_size")}
    def get(d, g, k):
        return d[k] if not g else d[g][k]

    diff = [f"{g + '.' if g else ''}{k}: book {get(have, g, k)!r}, chosen {get(want, g, k)!r}"
            for g, ks in keys.items() for k in ks if get(have, g, k) != get(want, g, k)]
    if diff:
        return False, f"the book's recipe differs from the chosen candidate {chosen!r}: " + "; ".join(diff)
    return True, f"the book's attention recipe is the chosen candidate {chosen!r}"


@interruptible
def main(argv=None) -> int:
    p = OneLineParser(prog="python -m lcmae_core.calibration", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="the JSON table to write")
    p.add_argument("--scale", default="cpu", choices=[n for n, r in scales.SCALES.items() if r.calibration_candidates])
    p.add_argument("--run-root", default=None, help=ROOT_HELP)
    p.add_argument("--jobs", type=int, default=1, help="candidate runs trained at once (one thread each)")
    p.add_argument("--only", nargs="*", default=None, help="candidate names (default: all)")
    p.add_argument("--n-images", type=int, default=N_IMAGES)
    a = p.parse_args(argv)
    a.jobs = check_jobs(a.jobs)
    table = calibrate(a.scale, a.run_root, a.jobs, a.only, a.n_images)
    atomic_write_text(a.out, json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(json.dumps({"event": "calibrated", "out": a.out, "chosen": table["chosen"], "why": table["why"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
