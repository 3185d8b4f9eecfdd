"""What each page of the book trains and measures, named once.

``PAGE_RUNS[notebook](study)`` asks a ``Study`` for every run a page needs, per seed, and returns them in a
nested dict. The notebook calls it to get its runs; ``lcmae_core.plan`` calls the same function on a planning
study to list every run of a build before any notebook starts, and trains them in parallel. The two cannot
disagree, since they are one function.

The measurement helpers turn runs into what the claim functions (``lcmae_core.claims``) take: one value per seed,
the arms of a comparison paired by seed, and the same measurement on the random-init model of each seed (the
null control):

- ``arm``: a configuration's accuracies per seed (linear probe, kNN, finetuning) and seed 0's per-image hits;
- ``probe_text``: which linear probe the numbers come from, from the runs' records;
- ``accuracy_table``: the page's table, mean and 95% half-width over seeds, with the raw-pixel reference rows;
- ``encoder_measures`` / ``decoder_measures``: attention distance and entropy per layer, trained and at init.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os

import numpy as np
import torch

from . import configs, scales, stats, verdicts
from . import data as data_mod
from .analysis import attention_stats_curves, decoder_attention_measures, uniform_attention_distance
from .analysis.geometry import grid_size_of, patch_size_of
from .analysis.controls import raw_pixel_baselines as raw_pixel_controls
from .analysis.identities import term_sizes
from .train.monitors import lcmae_collapse
from .atomic import atomic_write_json
from .configs import from_dict
from .experiments import FIG5_NAMES, Study, describe
from .masking import MASK_RATIO
from .models import TABLE1_SETTINGS
from .models.decoders import DECODERS
from .reference_models import (DEIT_TIMM, DINO_TIMM, MAE_ENCODER_FILES, file_record, load_decoder_mae, load_deit, load_dino,
                               load_semantic_reference, mae_encoder_as_vit)
from .runs import Run, resolve_root
from .stats import prose_number
from .train.common import eval_dataset
from .train.engine import unpack_correct
from .train.pretrain import collapse_batch



# ---------------------------------------------------------------------------------------------------------------
# the runs of each page
def _with_evaluations(study: Study, pretrained: dict) -> dict:
    return {"pretrained": pretrained, "evals": {k: study.evaluations(v) for k, v in pretrained.items()}}


def runs_eq2_eq4(study: Study) -> dict:
    return {"mae": study.per_seed(lambda s: study.mae(seed=s))}


def runs_table1(study: Study, settings=None) -> dict:
    """The settings of Table 1 (default: all seven, ``models.TABLE1_SETTINGS``; b is the MAE baseline) and random
    init, each pretrained and evaluated per seed."""
    settings = settings or tuple(TABLE1_SETTINGS)
    pre = {st: study.per_seed(lambda s, st=st: study.mae(seed=s) if st == "b" else study.lcmae(st, seed=s))
           for st in settings}
    pre["random"] = study.per_seed(lambda s: None)
    return _with_evaluations(study, pre)


def runs_table2(study: Study, decoders=None) -> dict:
    """Table 2's decoders (default: all three, ``models.decoders.DECODERS``, the transformer first) and random init,
    each pretrained and evaluated per seed."""
    decoders = decoders or DECODERS
    pre = {d: study.per_seed(lambda s, d=d: study.mae(decoder=d, seed=s)) for d in decoders}
    pre["random"] = study.per_seed(lambda s: None)
    return _with_evaluations(study, pre)


def runs_decoder(study: Study) -> dict:
    """Figs. 2-4: the attention pages' MAE per seed (``Study.for_attention``), and Eq. 8's reference (the
    supervised ViT)."""
    a = study.for_attention()
    return {"mae": a.per_seed(lambda s: a.attention_mae(seed=s)),
            "reference": a.per_seed(lambda s: a.supervised(seed=s))}


def runs_fig4(study: Study) -> dict:
    a = study.for_attention()
    return {"mae": a.per_seed(lambda s: a.attention_mae(seed=s))}


def runs_fig5(study: Study) -> dict:
    """The attention pages' MAE, the global contrastive model (SimCLR-style InfoNCE on the CLS token) and the
    supervised ViT, per seed."""
    a = study.for_attention()
    return {"mae": a.per_seed(lambda s: a.attention_mae(seed=s)),
            "contrastive": a.per_seed(lambda s: a.contrastive(seed=s)),
            "supervised": a.per_seed(lambda s: a.supervised(seed=s))}


def fig5_models(study: Study, mae_checkpoint: str = "", dino: str = "", deit: str = "") -> dict:
    """Fig. 5's three encoders and the evidence that they learned: {"names", "models", "inits" ({key: {replicate:
    model}}), "supervised" (the ``verdicts.f5_comparison_models`` argument: name, top-1 per seed, the better
    raw-pixel top-1; None for a published model), "supervised_check" (for the page's record), "checkpoints" (file
    records)}. Published checkpoints where the scale reads them (``scales.Scale.published_models``: fb/mae's MAE,
    DINO, DeiT; files or official names), else this scale's runs (the attention pages' MAE, SimCLR, the supervised
    ViT, which must beat the raw pixels of its own labelled set)."""
    if study.record.published_models:
        files = {"mae": mae_checkpoint or MAE_ENCODER_FILES[0], "dino": dino or DINO_TIMM,
                 "deit": deit or DEIT_TIMM}
        loaded = {"mae": mae_encoder_as_vit(files["mae"]), "contrastive": load_dino(files["dino"]),
                  "supervised": load_deit(files["deit"])}
        return {"names": {"mae": "MAE", "contrastive": "DINO", "supervised": "DeiT"},
                "models": {k: {0: m} for k, m in loaded.items()},
                "inits": {k: {0: random_init_like(m, 0)} for k, m in loaded.items()}, "supervised": None,
                "supervised_check": {"supervised_top1": "published with the checkpoint",
                                     "raw_pixels_best": "not computed",
                                     "text": "the comparison models are published checkpoints: "
                                             + ", ".join(f"{k} {f}" for k, f in files.items())},
                "checkpoints": {k: file_record(f) for k, f in files.items()}}
    runs = runs_fig5(study)
    sup = runs["supervised"]
    sup_data = next(iter(sup.values())).config["data"]["dataset"]
    raw = raw_pixel_baselines(study, sup_data)
    top1, best = [r.metrics["top1"] for r in sup.values()], max(raw["knn"], raw["logreg"])
    return {"names": dict(FIG5_NAMES),
            "models": {k: {s: study.model(r) for s, r in rs.items()} for k, rs in runs.items()},
            "inits": {k: {s: study.init_model(r) for s, r in rs.items()} for k, rs in runs.items()},
            "supervised": (FIG5_NAMES["supervised"], top1, best),
            "supervised_check": {"supervised_top1": f"{mean_pm(top1)}%", "raw_pixels_best": f"{best:.1f}%",
                                 "supervised_data": sup_data,
                                 "text": f"supervised ViT on {sup_data}: {mean_pm(top1)}% on its val split; raw "
                                         f"pixels: logistic regression {raw['logreg']:.1f}%, kNN {raw['knn']:.1f}%"},
            "checkpoints": {}}


def runs_fig6(study: Study, mask_ratios=None) -> dict:
    """One attention-page MAE per pretraining mask ratio (default: the scale's) and seed."""
    a = study.for_attention()
    mask_ratios = mask_ratios or a.fig6_mask_ratios
    return {r: a.per_seed(lambda s, r=r: a.attention_mae(mask_ratio=r, seed=s)) for r in mask_ratios}


def runs_table3(study: Study, block_multiples=None) -> dict:
    """Table 3: MAE, the autoencoders AE(b) for b in ``block_multiples`` patches (default: the scale's) and random
    init, pretrained and evaluated per seed on the labelled set; Figs. 7 and A.1 ("attention"): the same block
    sizes pretrained for the attention pages (``Study.for_attention``; the same runs where that is the study
    itself), with their MAE, where the scale affords them (``scales.Scale.attention_autoencoders``), else Table 3's."""
    block_multiples = block_multiples or study.ae_block_multiples
    pre = {"random": study.per_seed(lambda s: None), "mae": study.per_seed(lambda s: study.mae(seed=s))}
    pre.update({f"ae{m}": study.per_seed(lambda s, m=m: study.ae(m, seed=s)) for m in block_multiples})
    a = autoencoder_attention_study(study)
    if a is not study:
        att = {"mae": a.per_seed(lambda s: a.attention_mae(seed=s))}
        att.update({f"ae{m}": a.per_seed(lambda s, m=m: a.ae(m, seed=s)) for m in a.ae_block_multiples})
    else:  # the cost of the attention pages' autoencoders is out of this scale's reach: Table 3's own runs
        att = {k: v for k, v in pre.items() if k != "random"}
    return {**_with_evaluations(study, pre), "attention": att}


def autoencoder_attention_study(study: Study) -> Study:
    """The study of Figs. 7 and A.1's autoencoders: the attention pages' (``Study.for_attention``) where the scale
    affords them (``scales.Scale.attention_autoencoders``), else the study itself (Table 3's runs)."""
    return study.for_attention() if study.record.attention_autoencoders else study


def runs_tableA1(study: Study, image: str = "astronaut", epochs: int | None = None) -> dict:
    pre = {"single": study.per_seed(lambda s: study.single_image(image=image, epochs=epochs, seed=s)),
           "imagenet": study.per_seed(lambda s: study.mae(seed=s)), "random": study.per_seed(lambda s: None)}
    return _with_evaluations(study, pre)


def runs_explorer(study: Study) -> dict:
    a = study.for_attention()
    return {"mae": {a.seeds[0]: a.attention_mae(seed=a.seeds[0])}}


def runs_appendix_cpu_scale(study: Study) -> dict:
    """The calibration's candidates that the appendix trains itself where the scale calibrates as the page runs (the
    smoke scale's two tiny ones; ``scales.Scale.calibrates_live``); elsewhere the table is the script's output
    (``lcmae_core.calibration``)."""
    if not study.record.calibrates_live:
        return {}
    return {name: study.run(configs.apply_overrides(cfg, {"device": study.device}))
            for name, (_, cfg) in configs.calibration_candidates(study.scale).items()}


def runs_appendix_statistics(study: Study) -> dict:
    """The statistics appendix's comparison of the two probes on the same frozen features: for the first seed's
    random-init encoder and MAE baseline, the scale's probe and fb/mae's LARS head ({probe: {"random", "mae"}});
    nothing at the scales that do not cache features (the comparison would cost a training run there)."""
    if not study.record.lars_comparison:  # where fb/mae's LARS head on the cached features costs seconds
        return {}
    s = study.seeds[0]
    pre = {"random": None, "mae": study.mae(seed=s)}
    return {probe: {k: study.linprobe(r, {"seed": s, **({"probe": "lars"} if probe == "lars" else {})})
                    for k, r in pre.items()} for probe in ("scale", "lars")}


PAGE_RUNS = {
    "eq2_eq4_local_contrastive": runs_eq2_eq4,
    "table1_lcmae_ablation": runs_table1,
    "fig2_fig3_decoder_position_semantics": runs_decoder,
    "fig4_figB1_decoder_attention_maps": runs_fig4,
    "table2_decoders": runs_table2,
    "fig5_attention_distance_pretraining": runs_fig5,
    "fig6_attention_distance_mask_ratio": runs_fig6,
    "table3_fig7_figA1_autoencoders": runs_table3,
    "tableA1_single_image": runs_tableA1,
    "explorer": runs_explorer,
    "appendix_cpu_scale": runs_appendix_cpu_scale,
    "appendix_statistics": runs_appendix_statistics,
}


# the notebook parameters that choose a page's runs, beside the study's own ("seeds", "dataset"): the planner
# (``lcmae_core.plan``) calls the page's run function with the same values the notebook receives
RUN_PARAMETERS = {"table1_lcmae_ablation": ("settings",), "table2_decoders": ("decoders",),
                  "fig6_attention_distance_mask_ratio": ("mask_ratios",),
                  "table3_fig7_figA1_autoencoders": ("block_multiples",), "tableA1_single_image": ("image", "epochs")}
STUDY_PARAMETERS = ("seeds", "dataset")


def page_runs(name: str, study: Study, params: dict | None = None) -> dict:
    """The runs of a page (``PAGE_RUNS``) for the notebook parameters ``params`` (its ``-p`` values): the study's
    seeds and dataset, and the page's own choices (``RUN_PARAMETERS``); an empty value means the scale's default, as
    in the notebooks."""
    params = params or {}
    changes = {"seeds": tuple(params["seeds"]) or None} if "seeds" in params else {}
    if "dataset" in params:
        changes["dataset"] = params["dataset"] or None
    if changes:
        study = dataclasses.replace(study, **changes)
    return PAGE_RUNS[name](study, **{k: params[k] for k in RUN_PARAMETERS.get(name, ()) if params.get(k)})


# ---------------------------------------------------------------------------------------------------------------
# accuracy
def arm(name: str, evals: dict[int, dict[str, Run]]) -> verdicts.Arm:
    """One configuration's accuracies over its seeds, by metric: the linear probe's top-1 and its kNN per seed,
    finetuning's per seed where the scale finetunes, and seed 0's per-image hits of each (for McNemar)."""
    seeds = sorted(evals)
    values, correct = {}, {}
    for metric, key in (("lp", "top1"), ("knn", "knn_top1"), ("ft", "top1")):
        run_key = "ft" if metric == "ft" else "lp"
        got = [evals[s][run_key].metrics.get(key) for s in seeds if run_key in evals[s]]
        if got and None not in got:
            values[metric] = [float(v) for v in got]
    for metric, key in (("lp", "correct"), ("ft", "correct")):
        m = evals[seeds[0]].get(metric)
        if m is not None and key in m.metrics:
            correct[metric] = unpack_correct(m.metrics[key], m.metrics["val_num_samples"])
    return verdicts.Arm(name, values, correct)


def arm_means(arms: dict[str, verdicts.Arm], metric: str, digits: int = 1) -> dict[str, float]:
    """{configuration: its mean over seeds on ``metric``}, for the configurations that measure it (the pages' prose)."""
    return {k: round(float(np.mean(a.of(metric))), digits) for k, a in arms.items() if a.of(metric)}


def reconstruction_summary(val_loss: dict[str, list], zero_loss: list, reference: str = "transformer") -> dict:
    """Table 2's losses for its prose: each decoder's and the zero prediction's mean validation loss, the reference
    decoder's gain over the zero prediction (1 - reference / zero) and the share of that gain each other decoder loses
    ((decoder - reference) / (zero - reference)), means over seeds, three decimals."""
    t, z = np.asarray(val_loss[reference], dtype=float), np.asarray(zero_loss, dtype=float)
    r3 = lambda v: round(float(np.mean(v)), 3)  # noqa: E731
    return {"val_loss_mean": {d: r3(v) for d, v in val_loss.items()}, "zero_loss_mean": r3(z),
            "gain_over_zero": r3(1 - t / z),
            "gain_lost": {d: r3((np.asarray(v, dtype=float) - t) / (z - t)) for d, v in val_loss.items() if d != reference}}


def pixels_text(arms: dict[str, verdicts.Arm], baselines: dict) -> str:
    """Where the encoders stand against the same probe on the raw pixels (``baselines``, from
    ``raw_pixel_baselines``), in one sentence for the page's prose. Below the pixels the claims still compare the
    encoders with one another and with random initialisation (``verdicts``: raw pixels are a reference, not a gate),
    but the reader should know."""
    best = max(((k, float(np.mean(a.of("lp")))) for k, a in arms.items() if a.of("lp")), key=lambda x: x[1])
    name, top, pix = arms[best[0]].name, prose_number(best[1]), prose_number(float(baselines["logreg"]))
    if best[1] >= baselines["logreg"]:
        return f"The best encoder, {name}, linearly probes above the raw pixels ({top}% against {pix}%)."
    return (f"Every encoder is below the raw pixels on the same probe: the best, {name}, reaches {top}% against the "
            f"pixels' {pix}%. The encoders lose information the pixels carry, and the comparisons read how much each "
            f"keeps.")


def heldout_where(probe_metrics: list[dict]) -> str:
    """Where the probe runs (their metrics) chose their L2 strength, for the prose (``train.probe``)."""
    if probe_metrics and all(m.get("probe_heldout_by") == "region" for m in probe_metrics):
        return ("on crops of a region of the training images that the fit did not see (the training region cut again "
                "as training and validation are)")
    return "on a held-out fifth of the training split"


def probe_text(evals: dict[str, dict]) -> str:
    """Which probe the page's linear-probe numbers come from, from the runs' own records: the converged logistic
    regression (its chosen C and convergence over the runs) or fb/mae's LARS head."""
    runs = [ev[s]["lp"].metrics for ev in evals.values() for s in ev]
    if not runs or any(m.get("probe") != "logreg" for m in runs):
        return ("Linear probe: fb/mae's BatchNorm + linear head trained by LARS on the frozen [CLS] feature (the paper "
                "scale's protocol).")
    cs = sorted({m["probe_C"] for m in runs})
    stuck = sum(not m["probe_converged"] for m in runs)
    edge = sum(bool(m.get("probe_C_at_edge")) for m in runs)
    tied = sum(m.get("probe_C_ties", 1) > 1 for m in runs)
    return (f"Linear probe: a multinomial logistic regression on the frozen [CLS] feature (standardised), solved to "
            f"convergence, its L2 strength chosen per run {heldout_where(runs)} (never the validation split): "
            f"C = {', '.join(f'{c:g}' for c in cs)} over the {len(runs)} probe runs; "
            + ("every fit converged" if not stuck else f"{stuck} fit(s) did not converge")
            + (f"; {edge} chose C at the edge of its grid" if edge else "")
            + (f"; in {tied} the held-out accuracy tied at its best over several strengths (the strongest of them "
               f"chosen)" if tied else "") + ".")


def mean_pm(values, digits: int = 1) -> str:
    """'67.2 ± 1.3': the mean over seeds and the half-width of its 95% t-interval ('67.2' for one seed)."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return f"{v.mean():.{digits}f}"
    return f"{v.mean():.{digits}f} ± {stats.compare(v).half_width:.{digits}f}"


def accuracy_table(evals: dict[str, dict], names: dict[str, str], paper_ft: dict | None = None,
                   baselines: dict | None = None):
    """The accuracy table of a page: per configuration the linear probe and kNN (mean ± 95% half-width over
    seeds), finetuning (the mean over its seeds: seed 0 alone at the small scales), and the paper's finetuning;
    raw-pixel kNN and logistic regression as reference rows (``baselines``, from ``raw_pixel_baselines``)."""
    import pandas as pd  # lazy: the book's tables only (requirements.txt), not the library core (pyproject)

    rows = []
    for key, ev in evals.items():
        seeds = sorted(ev)
        lp = [ev[s]["lp"].metrics["top1"] for s in seeds]
        knn = [ev[s]["lp"].metrics.get("knn_top1", math.nan) for s in seeds]
        ft = [ev[s]["ft"].metrics["top1"] for s in seeds if "ft" in ev[s]]
        rows.append({"pretraining": names.get(key, key), "LP": mean_pm(lp), "kNN": mean_pm(knn),
                     "FT": mean_pm(ft) if ft else "", "FT seeds": len(ft),
                     "FT paper": (paper_ft or {}).get(key, "")})
    if baselines:
        for k, label in (("knn", "raw pixels, kNN"), ("logreg", "raw pixels, logistic regression")):
            rows.append({"pretraining": label, "LP": f"{baselines[k]:.1f}" if k == "logreg" else "",
                         "kNN": f"{baselines[k]:.1f}" if k == "knn" else "", "FT": "", "FT seeds": 0,
                         "FT paper": ""})
    return pd.DataFrame(rows).set_index("pretraining")


def raw_pixel_baselines(study: Study, dataset: str | None = None) -> dict:
    """kNN and logistic regression on the raw pixels of the study's labelled split (or ``dataset``'s)
    (``analysis.controls``), cached in the run store (they depend only on the data)."""
    cfg = study.config("linprobe", {"data.dataset": dataset or study.classifier_dataset()})
    regions = data_mod.probe_splits(cfg.data.dataset)  # C chosen where the encoders' probe chooses it
    key = {"dataset": cfg.data.dataset, "img_size": cfg.model.img_size, "limit": cfg.data.limit,
           "val_limit": cfg.data.val_limit, "k": cfg.knn_k, "t": cfg.knn_t,
           "probe": "logreg-region-C" if regions else "logreg-heldout-C"}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    path = os.path.join(resolve_root(study.run_root), "baselines", f"raw-pixels-{digest}.json")
    if os.path.exists(path):
        with open(path) as f:
            out = json.load(f)
    else:
        selection = [eval_dataset(cfg, cfg.data.dataset, s) for s in regions] or None
        res = raw_pixel_controls(eval_dataset(cfg, cfg.data.dataset, "train"),
                                 eval_dataset(cfg, cfg.data.dataset, "val"), k=cfg.knn_k, temperature=cfg.knn_t,
                                 selection_sets=selection)
        out = {**key, "knn": res["knn"], "logreg": res["logreg"], "logreg_C": res["logreg_C"]}
        atomic_write_json(path, out)
    return out


# ---------------------------------------------------------------------------------------------------------------
# attention
def _stack(xs) -> np.ndarray:
    return np.stack([np.asarray(x, dtype=float) for x in xs])


def encoder_measures(study: Study, runs: dict[int, Run], images, device=None) -> dict:
    """``encoder_models_measures`` of each seed's run and its random-init model, on ``device`` (default: the
    study's, so that a gpu-scale page measures on its GPU)."""
    return encoder_models_measures({s: study.model(r) for s, r in runs.items()},
                                   {s: study.init_model(r) for s, r in runs.items()}, images,
                                   device or study.torch_device)


def replicates(models: dict, images, n_groups: int = 8) -> tuple[dict, str]:
    """What a measurement replicates over, and the images of each replicate: ({replicate: images}, unit).

    One model per seed: every seed sees all the images, and the seeds are the replicates. One model (a released
    checkpoint): the images are split into ``n_groups`` groups, and the groups are the replicates (``unit`` "image
    groups"): each group's statistic estimates the same quantity, and their spread is the noise of the images."""
    if len(models) > 1 or n_groups < 2:
        return {r: images for r in models}, "seeds"
    groups = [g for g in images.tensor_split(n_groups) if len(g)]
    return dict(enumerate(groups)), "image groups"


def per_replicate(d: dict, keys) -> dict:
    """A {seed: model} dict laid over replicates: the one model of a checkpoint repeated for every image group."""
    return {k: d[k] for k in keys} if set(keys) <= set(d) else {k: next(iter(d.values())) for k in keys}


def encoder_models_measures(models: dict, inits: dict, images, device=None) -> dict:
    """Each seed's encoder attention on whole images (mask ratio 0), trained and at initialisation:
    {"distance", "entropy", "distance_init", "entropy_init"}: (seeds, layers) means over heads (pixels; fraction of
    the maximum entropy); "heads": (seeds, layers, heads) distances of the trained models (the figures'
    dots); "n_keys": patch tokens; "uniform": uniform attention's distance from every patch (pixels), the null of
    locality. images: shared, or {replicate: images} (``replicates``)."""
    out = {k: [] for k in ("distance", "entropy", "distance_init", "entropy_init", "heads")}
    for s in sorted(models):
        imgs = images[s] if isinstance(images, dict) else images
        for tag, model in (("", models[s]), ("_init", inits[s])):
            c = {k: v.cpu() for k, v in attention_stats_curves(model, imgs, "encoder", device=device).items()}
            out["distance" + tag].append(c["distance"].mean(-1))
            out["entropy" + tag].append(c["entropy"].mean(-1))
            if not tag:
                out["heads"].append(c["distance"])
    first = next(iter(models.values()))
    return {**{k: _stack(v) for k, v in out.items()}, "n_keys": _num_patches(first),
            "uniform": uniform_attention_distance(grid_size_of(first), patch_size_of(first))}


def decoder_measures(models: dict[int, object], inits: dict[int, object], images, mask, device=None) -> dict:
    """Each seed's decoder, with one mask shared by every image: Eq. 7 and its flatness-free S^c per layer, and
    the mask tokens' attention distance and entropy per layer (means over heads), trained and at initialisation:
    {"s_attn", "s_attn_centered", "distance", "entropy"} and the same with "_init", each (seeds, layers); "n_keys".
    images: shared, or {replicate: images} (``replicates``)."""
    out = {}
    for tag, ms in (("", models), ("_init", inits)):
        rows = {"s_attn": [], "s_attn_centered": [], "distance": [], "entropy": []}
        for s in sorted(ms):
            m, imgs = ms[s], images[s] if isinstance(images, dict) else images
            c = decoder_attention_measures(m, imgs, mask, device=device)
            rows["s_attn"].append(c["s_attn"].cpu())
            rows["s_attn_centered"].append(c["s_attn_centered"].cpu())
            rows["distance"].append(c["distance"].mean(-1).cpu())
            rows["entropy"].append(c["entropy"].mean(-1).cpu())
        out.update({k + tag: _stack(v) for k, v in rows.items()})
    out["n_keys"] = _num_patches(next(iter(models.values())))
    return out


def alignment_terms(model, images, mask_ratio: float, seed: int = 0) -> dict[str, float]:
    """The two local-contrastive readings of Sec. 3.2 for one model (``analysis.identities.term_sizes``): "alignment", the
    Eq. 2 contrastive term over the distance between two patches' predictions, and "eq4_vs_constant", the Eq. 4
    contrastive term over a constant prediction's (||x_i - x_j||^2)."""
    t = term_sizes(model, images, mask_ratio, seed)
    return {"alignment": t["eq2_contrastive"] / t["pair_distance"],
            "eq4_vs_constant": t["eq4_contrastive"] / t["target_pair_distance"]}


def random_init_like(model, seed: int = 0):
    """A copy of a checkpoint's model, re-initialised as its class initialises itself, from ``seed``: the random-
    init null control of a model that is not one of this project's runs (an official MAE, DINO, DeiT)."""
    m = copy.deepcopy(model)
    torch.manual_seed(seed)
    if hasattr(m, "initialize_weights"):  # the MAE family (fb/mae's initialisation)
        m.initialize_weights()
    elif hasattr(m, "init_weights"):  # a timm VisionTransformer
        m.init_weights()
    else:
        raise ValueError(f"cannot re-initialise a {type(m).__name__}")
    return m.eval()


def run_text(run: Run) -> str:
    return f"{run.name} ({describe(from_dict(run.config))})"


def decoder_models(study: Study, runs: dict[int, Run] | None, mae_checkpoint: str = "") -> tuple[dict, dict, str]:
    """Figs. 2-4's MAE per seed, its random-init twin per seed, and a description: ({seed: model}, {seed: init},
    text). mae_checkpoint: an official fb/mae file with its decoder (one model, seed 0, and a random-init model of
    its shape); "" means the deep-decoder MAE runs (``runs``)."""
    if mae_checkpoint:
        model, text = load_decoder_mae(mae_checkpoint)
        return {0: model}, {0: random_init_like(model, 0)}, text
    models = {s: study.model(r) for s, r in runs.items()}
    inits = {s: study.init_model(r) for s, r in runs.items()}
    return models, inits, "; ".join(f"seed {s}: {run_text(r)}" for s, r in runs.items())


def semantic_references(study: Study, runs: dict[int, Run] | None, reference: str = "",
                        seeds=None) -> tuple[dict, dict, str]:
    """Eq. 8's reference per seed and its random-init twin: ({seed: model}, {seed: init}, text). ``reference`` (or
    the paper scale, or no runs): DINO from ``reference_models.load_semantic_reference``, one model for every seed
    of ``seeds`` (default: the study's); else the supervised ViT trained here per seed (``runs``), which sees the
    whole image: a weaker semantic reference than DINO."""
    if reference or study.record.published_models or runs is None:
        model, text = load_semantic_reference(reference or DINO_TIMM)
        init = random_init_like(model, 0)
        seeds = study.seeds if seeds is None else seeds
        return {s: model for s in seeds}, {s: init for s in seeds}, text
    models = {s: study.model(r) for s, r in runs.items()}
    inits = {s: study.init_model(r) for s, r in runs.items()}
    return models, inits, "the supervised ViT trained here: " + "; ".join(f"seed {s}: {run_text(r)}"
                                                                         for s, r in runs.items())


def collapse_measures(study: Study, runs: dict[int, Run]) -> dict:
    """An LC-MAE setting's collapse monitors per seed, as fractions of 1/sqrt(D): {"h", "v"} at the end of training
    (the run's held-out batch) and {"h_init", "v_init"} of its random-init model on the same batch and masks."""
    out = {"h": [], "v": [], "h_init": [], "v_init": []}
    for s in sorted(runs):
        run = runs[s]
        m = run.metrics
        out["h"].append(m["final_hidden_feature_std"] / m["final_hidden_uniform_std"])
        out["v"].append(m["final_feature_std"] / m["final_uniform_std"])
        cfg = configs.from_dict(run.config)
        imgs = collapse_batch(cfg, eval_dataset(cfg, cfg.data.eval_dataset or cfg.data.dataset, "val"))
        init = lcmae_collapse(study.init_model(run), imgs, run.config["mask_ratio"], run.config["seed"])
        out["h_init"].append(init["hidden_feature_std"] / init["hidden_uniform_std"])
        out["v_init"].append(init["feature_std"] / init["uniform_std"])
    return out


def _num_patches(model) -> int:
    n = getattr(model, "num_patches", None)
    return int(n if n is not None else model.patch_embed.num_patches)


def layer_table(curves: dict[str, np.ndarray], digits: int = 3):
    """{name: (seeds, layers)} -> a table of mean ± 95% half-width over seeds per layer (rows: layers)."""
    import pandas as pd  # lazy: the book's tables only (requirements.txt), not the library core (pyproject)

    depth = next(iter(curves.values())).shape[1]
    return pd.DataFrame({name: [mean_pm(c[:, l], digits) for l in range(depth)] for name, c in curves.items()},
                        index=pd.RangeIndex(1, depth + 1, name="layer"))


def seeds_text(study: Study) -> str:
    return f"{len(study.seeds)} seed(s) ({', '.join(map(str, study.seeds))})"


def revision_numbers(loaded: dict, probes: dict | None = None) -> dict:
    """The numbers behind the statistics appendix's "readings revised after the cpu audit", from this build:
    ``loaded``, the pages' records (``results.load_all``); ``probes``, ``runs_appendix_statistics``' runs.

    {"probe": {"lars"|"logreg": {"random", "mae"}: top-1, "C": {"random", "mae"}} (where compared),
    "probe_sentence": the appendix's sentence on it, "t2": {"gain_over_zero"},
    "f5": {"mae", "uniform", "entropy"}, "f23": {"s_attn", "s_c", "entropy_per_seed"}}: what each page needs is
    read from its record, so a page missing from the build is a KeyError naming it."""
    def page(name):
        if name not in loaded:
            raise KeyError(f"the statistics appendix reads the {name} page's record, which this build lacks; run it "
                           f"first (python -m lcmae_core batch --only {name})")
        return loaded[name]["metrics"]["metrics"]

    out = {}
    if probes:
        top = {p: {k: prose_number(float(r.metrics["top1"])) for k, r in runs.items()} for p, runs in probes.items()}
        C = {k: r.metrics.get("probe_C") for k, r in probes["scale"].items()}
        out["probe"] = {"lars": top["lars"], "logreg": top["scale"], "C": C}
        out["probe_sentence"] = (
            f"On the same frozen features of the first seed, the LARS head gives the random-init encoder "
            f"{top['lars']['random']}% and the MAE baseline {top['lars']['mae']}%, where a multinomial logistic "
            f"regression solved to convergence, its L2 strength chosen "
            f"{heldout_where([r.metrics for r in probes['scale'].values()])}, "
            f"gives {top['scale']['random']}% and {top['scale']['mae']}% (C = {C['random']:g} and {C['mae']:g}).")
    else:
        where = [name for name, rec in scales.SCALES.items() if rec.lars_comparison]
        out["probe_sentence"] = (f"The two probes are compared on the same features at the {' and '.join(where)} "
                                 f"scales, where it costs seconds.")
    t2, f5, f23 = page("table2_decoders"), page("fig5_attention_distance_pretraining"), \
        page("fig2_fig3_decoder_position_semantics")
    out["t2"] = {"gain_over_zero": t2["gain_over_zero"]}
    out["null_margin"] = verdicts.NULL_MARGIN
    out["f5"] = {"mae": f5["mean_distance"]["mae"], "uniform": f5["uniform_distance"], "entropy": f5["entropy_mae"]}
    out["f23"] = {"s_attn": f23["s_attn"], "s_c": f23["s_c"], "entropy_per_seed": f23["entropy_per_seed"],
                  "entropy_layer2": ", ".join(f"{v:.3f}" for v in f23["entropy_per_seed"].get("2", []))}
    return out


def nearest_ratio(ratios, default: float = MASK_RATIO) -> float:
    """Of Fig. 6's pretraining mask ratios, the default one (whose encoder Figs. 2-5 read), or the nearest."""
    return min(ratios, key=lambda r: abs(float(r) - default))


def fig6_text(mean_distance: dict[float, float], entropy: float) -> str:
    """Fig. 6's closing sentence from its measurements: {mask ratio: mean distance in pixels over seeds}, and the
    encoders' mean attention entropy (fraction of its maximum). Numbers as the prose shows them."""
    ratios = sorted(mean_distance, reverse=True)
    px = {r: prose_number(float(mean_distance[r])) for r in ratios}
    ent = prose_number(float(entropy))
    if len(ratios) == 1:
        r = ratios[0]
        return (f"At this scale only the shared baseline is pretrained, at mask ratio {r:g} (the verdicts above say "
                f"why): averaged over the seeds, its encoder attends over {px[r]} pixels on average, with an attention "
                f"entropy of {ent} of its maximum.")
    parts = [f"the encoder pretrained at mask ratio {r:g} attends over {px[r]} pixels" if i == 0
             else f"the one at {r:g} over {px[r]} pixels" for i, r in enumerate(ratios)]
    span = prose_number(float(max(mean_distance.values()) - min(mean_distance.values())))
    return (f"At this scale, averaged over the seeds, {', '.join(parts[:-1])} and {parts[-1]} on average: the means "
            f"span {span} pixels. The encoders' attention entropy averages {ent} of its maximum.")


__all__ = ["PAGE_RUNS", "RUN_PARAMETERS", "STUDY_PARAMETERS", "page_runs", "fig5_models", "arm", "arm_means",
           "probe_text", "pixels_text", "reconstruction_summary", "nearest_ratio", "revision_numbers", "alignment_terms",
           "replicates", "per_replicate", "random_init_like", "decoder_models", "semantic_references",
           "collapse_measures", "accuracy_table", "mean_pm", "raw_pixel_baselines", "encoder_measures", "fig6_text",
           "encoder_models_measures", "decoder_measures", "layer_table"]
