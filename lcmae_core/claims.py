"""The paper's claims, one function each: measured values in, a ``Claim`` with its verdict out.

Every verdict of the book is made here, never in a notebook. A claim function takes what the page measured, one
value per replicate (per seed, the arms of a comparison sharing the seed; or per image, for fixed checkpoints),
and returns a ``Claim``: the paper's words, the verdict, the evidence (each comparison with its interval), the
precondition and its outcome, and the null controls' values. The machinery (the judge, the preconditions, the declared general thresholds) is ``lcmae_core.verdicts``.

**The thresholds of single claims, declared before any run is read** (each with its reason):

- ``COLLAPSE_STD = 0.1``: a representation has collapsed "into a constant point" when the standard deviation of
  its unit features across tokens is below a tenth of ``1/sqrt(D)``, the value of features spread evenly over
  the sphere (``train.monitors.collapse_stats``): nine tenths of the spread gone. Read on the projector output
  v = p(h) that the contrastive losses act on (Eq. 5), the paper's "output feature vectors"; the decoder's hidden
  state h is shown beside it.
- ``LOSS_GAIN_FRACTION = 0.25``: local features "suffice to reconstruct" when a local decoder loses at most a
  quarter of the transformer decoder's gain over the zero prediction: (local - transformer) / (zero - transformer)
  below 0.25 (the zero prediction loses all of it, 1, by construction). The same quarter as ``AKIN_FRACTION``.
- ``TENTH_BAND = (0.05, 0.2)``: "about one-tenth" (Table 3's linear probe, 5.6% against 55.4%) is a ratio within
  a factor of two of 1/10 either way. The ratio is of the accuracies above chance, (AE - chance) / (MAE - chance),
  so that tasks with different class counts read alike; on ImageNet-1K it is the paper's 0.10.
- ``STRONG_R = 0.7``: the conventional threshold of a strong correlation, read on the mean of per-seed
  correlations (Fisher z) with its interval, so that chance alone does not reach it (one seed's five-point
  Spearman rho reached 0.7 by chance 12% of the time).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from . import stats
from .stats import FAILS, HOLDS, UNFORMED, UNTESTABLE
from .verdicts import (ALPHA, AKIN_FRACTION, NO_PRECONDITION, NULL_MARGIN, UNFORMED_WHY, Arm, Claim, Control, Part,
                       Precondition, Values, accuracy_claim, decoder_deep_enough, judge, mean_text, midpoint,
                       not_measured, reference_beats_null, unformed_or, unmeasured, within_gain)

COLLAPSE_STD = 0.1
LOSS_GAIN_FRACTION = 0.25
TENTH_BAND = (0.05, 0.2)
STRONG_R = 0.7
TABLE_READING = "a reading of {table}'s numbers: no sentence of the paper states it"


# ---------------------------------------------------------------------------------------------------------------
# Sec. 3.2: the local contrastive form (Eqs. 2 and 4)
def s32_aligns(ratio_trained: Values, ratio_init: Values) -> Claim:
    """ratio: the Eq. 2 contrastive term ||h(x,m_a)_j - h(x,m_b)_j||^2 (one patch, two masks) divided by the
    distance ||h_i - h_j||^2 between the predictions for two different patches, per seed, after training and at
    initialisation (the random-init model of the same seed)."""
    return judge(
        "S32-aligns", "MAE implicitly aligns local features [the first term of Eq. 2: the predictions for one patch "
        "under two masks agree].",
        "Alignment is the Eq. 2 contrastive term relative to the distance between the predictions for two different "
        "patches; training must lower it below its value at initialisation (the identity itself holds for any "
        "model and is a unit test, not evidence).",
        [Part("trained minus random init (ratio)", ratio_trained, ratio_init)], side="<")


def s32_eq4_term(q_trained: Values, q_init: Values) -> Claim:
    """q: the Eq. 4 contrastive term ||(h_i - h_j) - (x_i - x_j)||^2 divided by ||x_i - x_j||^2, the term of a
    constant prediction (h_i = h_j), per seed, after training and at initialisation."""
    return judge(
        "S32-eq4-term", "The difference between the decoder outputs at positions i and j [...] should approximate "
        "their pixel difference (x_i - x_j).",
        "The Eq. 4 contrastive term relative to a constant prediction's (h_i = h_j, the null): below 1 means the "
        "output differences follow the pixel differences; it must also fall below the random-init model's.",
        [Part("trained term / constant prediction's, minus 1", q_trained, 1.0,
              controls=[Control("random init", np.asarray(q_init, dtype=float) - 1.0)])], side="<")


# ---------------------------------------------------------------------------------------------------------------
# Table 1
def t1_a_beats_b(a: Arm, b: Arm, gate: Precondition) -> Claim:
    return accuracy_claim("T1-a-vs-b", "Setting (a) [...] showing a slight improvement compared to Setting (b), i.e., "
                      "the original MAE.", "(a) above (b).", [(a, b)], gate)


def t1_recon_helps(a: Arm, g: Arm, f: Arm, d: Arm, gate: Precondition) -> Claim:
    return accuracy_claim("T1-recon-helps", "The reconstruction loss consistently improves performance, with gains of "
                      "0.5% in setting (a) versus (g), and 0.6% in setting (f) versus (d).",
                      "Both gains positive: (a) above (g) and (f) above (d).", [(a, g), (f, d)], gate)


def t1_cross_helps(g: Arm, d: Arm, a: Arm, f: Arm, gate: Precondition) -> Claim:
    return accuracy_claim("T1-cross-helps", "The cross-view loss leads to performance gains of 0.3% in setting (g) "
                      "versus (d), and 0.2% in setting (a) versus (f).",
                      "Both gains positive: (g) above (d) and (a) above (f).", [(g, d), (a, f)], gate)


def t1_in_view_declines(e: Arm, a: Arm, b: Arm, f: Arm, gate: Precondition) -> Claim:
    return accuracy_claim("T1-in-view-declines", "The in-view loss leads to a slight performance decline of 0.1%.",
                      "Adding L_in lowers accuracy in both pairs that differ only by it: (a) below (e) and (f) "
                      "below (b).", [(e, a), (b, f)], gate)


def t1_g_close_to_mae(g: Arm, b: Arm, random: Arm, gate: Precondition) -> Claim:
    mid = midpoint(b, random, "the midpoint of MAE and random init")
    return accuracy_claim("T1-g-close-to-mae", "Setting (g), even without the use of reconstruction loss, still achieves "
                      "a finetuning accuracy of 82.5% [close to MAE's 82.9%].",
                      "(g) closer to MAE (b) than to random initialisation: above their midpoint, per seed.",
                      [(g, mid)], gate)


def _h_note(what: str, h) -> list[str]:
    return [] if h is None else [f"{what} decoder hidden state h (the projector's input): std x sqrt(D) "
                                 f"{mean_text(h, 3)}"]


def t1_c_collapses(c_v: Values, c_v_init: Values, c_h: Values | None = None) -> Claim:
    """c_v: setting (c)'s projector output v = p(h) feature std as a fraction of 1/sqrt(D), per seed, at the end of
    training (held-out batch); c_v_init: the same at initialisation; c_h: the decoder hidden state's, shown."""
    return judge(
        "T1-c-collapse", "Using only the cross-view loss (setting (c) in Table 1) leads to collapse into a constant "
        "point.",
        f"(c)'s output vectors v = p(h), on which L_cross acts (Eq. 5), end with a feature std below {COLLAPSE_STD} "
        "of 1/sqrt(D), and below their value at initialisation (training caused the collapse).",
        [Part(f"(c) v std x sqrt(D), minus {COLLAPSE_STD:g}", c_v, COLLAPSE_STD, notes=_h_note("(c)", c_h),
              controls=[Control("random init", np.asarray(c_v_init, dtype=float) - COLLAPSE_STD)])], side="<")


def t1_e_g_no_collapse(e_v: Values, g_v: Values, e_h: Values | None = None, g_h: Values | None = None) -> Claim:
    """e_v, g_v: settings (e) and (g)'s projector output feature std as a fraction of 1/sqrt(D), per seed; e_h,
    g_h: their decoder hidden states', shown."""
    return judge(
        "T1-e-g-no-collapse", "When the model is equipped with the in-view loss (setting (g)) or reconstruction loss "
        "(setting (e)), it is able to avoid collapsed solutions.",
        f"Both (e) and (g) end with output vectors v = p(h) whose feature std is above {COLLAPSE_STD} of 1/sqrt(D).",
        [Part(f"(e) v std x sqrt(D), minus {COLLAPSE_STD:g}", e_v, COLLAPSE_STD, notes=_h_note("(e)", e_h)),
         Part(f"(g) v std x sqrt(D), minus {COLLAPSE_STD:g}", g_v, COLLAPSE_STD, notes=_h_note("(g)", g_h))],
        side=">")


# ---------------------------------------------------------------------------------------------------------------
# Table 2
def t2_akin(local: dict[str, Arm], transformer: Arm, random: Arm, gate: Precondition,
            fraction: float = AKIN_FRACTION) -> Claim:
    return within_gain("T2-akin", "As the decoder, single-layer convolution and weighted average exhibit effects akin "
                        "to the transformer.", "Each local decoder's encoder as accurate as the transformer MAE's.",
                        [(arm, transformer) for arm in local.values()], transformer, random, gate, fraction=fraction)


def t2_local_enough(local_loss: dict[str, Values], transformer_loss: Values, zero_loss: Values,
                    fraction: float = LOSS_GAIN_FRACTION, margin: float = NULL_MARGIN) -> Claim:
    """local_loss: {decoder: its validation reconstruction loss per seed}; transformer_loss, zero_loss: the
    transformer decoder's and the zero prediction's (the null) per seed, on the same images and masks."""
    t, z = np.asarray(transformer_loss, dtype=float), np.asarray(zero_loss, dtype=float)
    pre = reference_beats_null("the transformer decoder", t, z, margin)
    lost = {name: (np.asarray(v, dtype=float) - t) / (z - t) for name, v in local_loss.items()}
    # the null is inside the reading: the zero prediction loses the whole gain (1) by construction, and the
    # precondition makes sure that gain is material, so no separate control can reproduce a pass
    parts = [Part(f"{name}: fraction of the transformer's gain over the zero prediction lost", v, fraction)
             for name, v in lost.items()]
    return judge(
        "T2-local-enough", "Local features within a limited region is sufficient for the decoder to reconstruct the "
        "image.", f"Each local decoder's validation reconstruction loss (same images, same masks) keeps most of the "
        f"transformer decoder's gain over the zero prediction: (local - transformer) / (zero - transformer) below "
        f"{fraction:g}. Testable where the transformer itself beats the zero prediction by at least {margin:g} of "
        f"its loss.", parts, side="<", precondition=pre)


# ---------------------------------------------------------------------------------------------------------------
# Figs. 2, 3 and 4: the decoder
def layer_effect(curves, fn) -> np.ndarray:
    return np.array([fn(np.asarray(c, dtype=float)) for c in np.atleast_2d(np.asarray(curves, dtype=float))])


FLATNESS_FREE = ("Read on S^c, Eq. 7 on the maps minus uniform attention (A - 1/n): a uniform layer has Eq. 7's S^attn "
                 "exactly 1 and would be 'most alike' with no pattern at all, while its S^c is 0; Eq. 7 as the paper "
                 "defines it is shown beside it.")


def _s_attn_claim(cid: str, text: str, reading: str, label: str, fn, need: int, s_c, s_c_init,
                  pre: Precondition, unit: str = "seeds", s_attn=None) -> Claim:
    """A Fig. 2 claim: ``fn`` maps one replicate's similarity per layer to the effect, measured on the trained
    decoder's S^c (flatness-free), its random-init twin's and uniform attention's (S^c 0 in every layer, so every
    layer difference is 0). s_attn: Eq. 7 as the paper defines it, (replicates, layers), shown beside it."""
    depth = np.atleast_2d(s_c).shape[1]
    notes = [] if s_attn is None else [f"Eq. 7's S^attn (the paper's reading): "
                                       f"{stats.compare(layer_effect(s_attn, fn), unit=unit).text()}"]
    return unformed_or(cid, text, reading + " " + FLATNESS_FREE, pre, decoder_deep_enough(depth, need),
                        lambda: judge(cid, text, reading + " " + FLATNESS_FREE,
                                       [Part(label, layer_effect(s_c, fn), 0.0, notes=notes,
                                             controls=[Control("random init", layer_effect(s_c_init, fn)),
                                                       Control("uniform attention", 0.0)])],
                                       precondition=pre, unit=unit))


def f2_first_highest(s_c, s_c_init, pre: Precondition, unit: str = "seeds", s_attn=None) -> Claim:
    """s_c, s_c_init: the flatness-free Eq. 7 per decoder layer, (replicates, layers), trained and at
    initialisation (``analysis.decoder_attention_measures``' "s_attn_centered"); s_attn: Eq. 7 itself, shown."""
    return _s_attn_claim(
        "F2-first-highest", "The average attention map similarity across all images is the highest at the first "
        "decoder layer (up to 0.9).", "The similarity of layer 1 minus the highest of the other layers, above 0.",
        "S^c layer 1 minus the highest other", lambda c: c[0] - c[1:].max(), 2, s_c, s_c_init, pre, unit, s_attn)


def f2_first_two(s_c, s_c_init, pre: Precondition, unit: str = "seeds", s_attn=None) -> Claim:
    return _s_attn_claim(
        "F2-first-two", "The average cosine similarity of the first two layers is significantly higher than that of "
        "the subsequent layers.", "The lower similarity of layers 1 and 2 minus the highest later layer's, above 0.",
        "S^c min(layers 1-2) minus max(later)", lambda c: c[:2].min() - c[2:].max(), 3, s_c, s_c_init, pre, unit,
        s_attn)


def f2_lowest_third(s_c, s_c_init, pre: Precondition, unit: str = "seeds", s_attn=None) -> Claim:
    return _s_attn_claim(
        "F2-lowest-third", "[The average attention map similarity is] lowest at the third layer.",
        "The lowest similarity of the other layers minus layer 3's, above 0.", "S^c min(other layers) minus layer 3",
        lambda c: np.delete(c, 2).min() - c[2], 3, s_c, s_c_init, pre, unit, s_attn)


def _deep_minus_shallow(c: np.ndarray) -> float:
    half = len(c) // 2
    return float(c[len(c) - half:].mean() - c[:half].mean())


def f3_deeper_semantic(s_sim, s_sim_random_reference, s_sim_positions, pre: Precondition = NO_PRECONDITION,
                       unit: str = "seeds") -> Claim:
    """s_sim: Eq. 8 per decoder layer against the semantic reference, (replicates, layers); the same against the
    random-init reference (same shape and seed) and against the decoder's position embeddings alone. pre: the
    decoder's attention formed: S^sim compares what the decoder's layers computed, and a decoder whose attention is
    as flat as at initialisation routes no content between positions (its affinities follow its architecture)."""
    text = "The similarity [S^sim] is lower for the shallow layers and higher for deep layers."
    reading = ("The mean S^sim of the deeper half of the decoder minus the shallower half's (the middle layer of an "
               "odd depth in neither), above 0, and above the same rise against references without semantics.")
    depth = np.atleast_2d(s_sim).shape[1]
    return unformed_or("F3-deeper-semantic", text, reading, pre, decoder_deep_enough(depth, 2),
                        lambda: judge("F3-deeper-semantic", text, reading, [Part(
                            "S^sim deep half minus shallow half", layer_effect(s_sim, _deep_minus_shallow), 0.0,
                            controls=[Control("random-init reference", layer_effect(s_sim_random_reference,
                                                                                     _deep_minus_shallow)),
                                      Control("position embeddings alone", layer_effect(s_sim_positions,
                                                                                         _deep_minus_shallow))])],
                            precondition=pre, unit=unit))


def f4_layer1_alike(per_query, per_query_init, pre: Precondition, unit: str = "seeds", per_query_eq7=None) -> Claim:
    """per_query, per_query_init: one query's flatness-free cross-image similarity (S^c for that query) per decoder
    layer, (replicates, queries, layers), trained and at initialisation; per_query_eq7: Eq. 7's, shown beside."""
    def fn(q):  # (queries, layers) -> mean over queries of layer 1 minus the highest other layer
        q = np.atleast_2d(q)
        return float((q[:, 0] - q[:, 1:].max(1)).mean())
    eff = lambda x: np.array([fn(np.asarray(s, dtype=float)) for s in np.asarray(x, dtype=float)])  # noqa: E731
    text = ("In the first decoder layer [...] the attention maps exhibit very similar patterns for the very "
            "different images.")
    reading = ("For the shown query positions, the cross-image similarity of layer 1 minus the highest other "
               "layer's, averaged over the queries, above 0. " + FLATNESS_FREE)
    depth = np.asarray(per_query).shape[-1]
    notes = [] if per_query_eq7 is None else [f"Eq. 7's similarity (the paper's reading): "
                                              f"{stats.compare(eff(per_query_eq7), unit=unit).text()}"]
    return unformed_or("F4-layer1-alike", text, reading, pre, decoder_deep_enough(depth, 2), lambda: judge(
        "F4-layer1-alike", text, reading,
        [Part("query similarity layer 1 minus the highest other", eff(per_query), 0.0, notes=notes,
              controls=[Control("random init", eff(per_query_init)), Control("uniform attention", 0.0)])],
        precondition=pre, unit=unit))


def f4_nearby(distance, distance_init, uniform: float, pre: Precondition, unit: str = "seeds") -> Claim:
    """distance, distance_init: the mask tokens' attention distance per decoder layer (pixels), (seeds, layers);
    uniform: the distance of uniform attention from the same query positions."""
    d = np.atleast_2d(np.asarray(distance, dtype=float)).mean(1)
    d0 = np.atleast_2d(np.asarray(distance_init, dtype=float)).mean(1)
    return judge(
        "F4-nearby", "The attention maps of mask tokens tend to focus more on nearby tokens.",
        "The mask tokens' attention distance, averaged over the decoder's layers, below uniform attention's, and "
        "below the random-init model's.",
        [Part("distance minus uniform attention's", d, uniform, controls=[Control("random init", d0 - uniform)])],
        side="<", precondition=pre, suffix=" px", unit=unit)


# ---------------------------------------------------------------------------------------------------------------
# Figs. 5, 6 and A.1: the encoder's attention distance
def f5_mae_local(mae: Values, others: dict[str, Values], mae_init: Values, others_init: dict[str, Values],
                 pre: Precondition, unit: str = "seeds") -> Claim:
    """mae, others: mean encoder attention distance (pixels) over layers and heads, per replicate; *_init: the
    same for the random-init models."""
    m0 = np.asarray(mae_init, dtype=float)
    parts = [Part(f"{name} minus MAE", v, mae, controls=[Control("random init", np.asarray(others_init[name]) - m0)])
             for name, v in others.items()]
    return judge("F5-mae-local", "The attention distance of MAE is significantly lower than that of the contrastive "
                  "learning method DINO and supervised pretrained DeiT.",
                  "MAE's mean encoder attention distance below each other model's.", parts, precondition=pre,
                  unit=unit, suffix=" px")


def _per_seed_slopes(ratios, dist) -> np.ndarray:
    """dist (seeds, ratios) -> each seed's least-squares slope over the ratios."""
    return np.array([stats.slope(ratios, row) for row in np.atleast_2d(np.asarray(dist, dtype=float))])


def _too_few_ratios(ratios: Sequence[float], need: int) -> str | None:
    """None, or why ``ratios`` cannot show a claim that needs ``need`` distinct pretraining mask ratios."""
    n = len(set(float(r) for r in ratios))
    if n >= need:
        return None
    what = ("a trend needs at least two" if need <= 2 else
            "a correlation over two ratios is +1 or -1 by construction" if n == 2 else
            "a correlation needs at least three")
    return (f"{n} pretraining mask ratio(s) at this scale and the claim needs {need} ({what}); the page's "
            f"mask_ratios parameter adds others")


def _not_at_this_scale(cid: str, text: str, reading: str, why: str, pre: Precondition) -> Claim:
    return Claim(cid, text, UNTESTABLE, "not measured", why, reading, pre.text, "")


def f6_strong_correlation(ratios: Sequence[float], dist, dist_init, pre: Precondition,
                          threshold: float = STRONG_R) -> Claim:
    """dist, dist_init: mean encoder attention distance per pretraining mask ratio, (seeds, ratios)."""
    text = "The mask ratio and attention distance exhibit a strong correlation."
    reading = (f"Each seed's Pearson correlation between mask ratio and mean attention distance, averaged on "
               f"Fisher's z; its interval above {threshold:g}, the conventional threshold of a strong correlation.")
    few = _too_few_ratios(ratios, 3)
    if few:
        return _not_at_this_scale("F6-strong-correlation", text, reading, few, pre)
    r = [stats.pearson(ratios, row) for row in np.atleast_2d(np.asarray(dist, dtype=float))]
    r0 = [stats.pearson(ratios, row) for row in np.atleast_2d(np.asarray(dist_init, dtype=float))]
    iv = stats.fisher_z_mean(r)
    verdict = stats.decide(iv, ">", threshold)
    ctrl = f"random init: r {mean_text(r0, 2)} (the encoders start identical at every mask ratio)"
    why = {HOLDS: f"the interval lies above {threshold:g}", FAILS: f"the interval lies below {threshold:g}",
           UNTESTABLE: f"the interval straddles {threshold:g}"}[verdict]
    if verdict == HOLDS and stats.decide(stats.fisher_z_mean(r0), ">", threshold) != FAILS:
        verdict, why = UNTESTABLE, "the random-init control shows the correlation as well"
    if pre.met is False:
        verdict, why = UNFORMED, UNFORMED_WHY
    return Claim("F6-strong-correlation", text, verdict, f"mean r {iv.text(2)}; per seed "
                 + ", ".join(f"{x:.2f}" for x in r), why, reading, pre.text, ctrl)


def f6_larger_ratio_larger_field(ratios: Sequence[float], dist, dist_init, pre: Precondition) -> Claim:
    text = "A larger mask ratio results in a larger effective receptive field."
    reading = "Each seed's least-squares slope of the mean attention distance on the mask ratio, above 0."
    few = _too_few_ratios(ratios, 2)
    if few:
        return _not_at_this_scale("F6-larger-ratio-larger-field", text, reading, few, pre)
    s, s0 = _per_seed_slopes(ratios, dist), _per_seed_slopes(ratios, dist_init)
    return judge("F6-larger-ratio-larger-field", text, reading,
                  [Part("slope (px per unit of mask ratio)", s, 0.0, controls=[Control("random init", s0)])],
                  precondition=pre, suffix=" px")


def f6_deeper_layers(ratios: Sequence[float], layer_dist, pre: Precondition) -> Claim:
    """layer_dist: (seeds, ratios, layers) mean distance over heads per encoder layer."""
    ld = np.asarray(layer_dist, dtype=float)
    text = ("The impact of mask ratio on attention distance [is] more pronounced in the deeper layers of the "
            "network.")
    reading = ("Per seed, the slope of each layer's distance on the mask ratio; the deeper half's mean slope minus "
               "the shallower half's, above 0 (signed slopes: the paper's direction, larger ratio larger distance).")
    depth = ld.shape[-1]
    few = _too_few_ratios(ratios, 2)
    if few:
        return _not_at_this_scale("F6-deeper-layers", text, reading, few, pre)

    def effect(seed_rows):  # (ratios, layers)
        slopes = np.array([stats.slope(ratios, seed_rows[:, l]) for l in range(depth)])
        return _deep_minus_shallow(slopes)
    return unformed_or("F6-deeper-layers", text, reading, pre,
                        None if depth >= 2 else f"the encoder has {depth} layer(s); the claim needs at least 2",
                        lambda: judge("F6-deeper-layers", text, reading, [Part(
                            "deep minus shallow slope", [effect(s) for s in ld], 0.0)], precondition=pre,
                            suffix=" px"))


# ---------------------------------------------------------------------------------------------------------------
# Table 3 and Fig. A.1: autoencoders
def t3_no_mask_drop(mae: Arm, ae1: Arm, gate: Precondition) -> Claim:
    return accuracy_claim("T3-no-mask-drop", "When random masking is simply removed, the finetuning accuracy of MAE "
                      "drops from 82.9% to 78.7%.", f"MAE above {ae1.name}.", [(mae, ae1)], gate)


def t3_like_random(ae1: Arm, random: Arm, mae: Arm, gate: Precondition, fraction: float = AKIN_FRACTION) -> Claim:
    return within_gain("T3-like-random", "[AE without masking reaches 78.7%,] which is similar to random "
                        "initialization.", f"{ae1.name} as accurate as random init.", [(ae1, random)], mae, random,
                        gate, fraction=fraction)


def t3_block_size(ae_small: Arm, ae_large: Arm, gate: Precondition) -> Claim:
    return accuracy_claim("T3-block-size", "When we enlarge the size of the target image block, the finetuning accuracy "
                      "dramatically increases.", f"{ae_large.name} above {ae_small.name}.", [(ae_large, ae_small)],
                      gate)


def t3_steady_rise(aes: Sequence[Arm], gate: Precondition) -> Claim:
    """aes: the autoencoders in increasing block size."""
    return accuracy_claim("T3-steady-rise", "[The finetuning accuracy] dramatically increases to 81.2% and peaks with a "
                      "block size of 112, reaching 81.8%.", "Every larger block above the next smaller one: "
                      + " < ".join(a.name for a in aes) + ".",
                      [(aes[i + 1], aes[i]) for i in range(len(aes) - 1)], gate)


def t3_linprobe_gap(mae: Arm, aes: Sequence[Arm], gate: Precondition, chance: float,
                    band: tuple[float, float] = TENTH_BAND) -> Claim:
    """mae, aes: linear-probe accuracies per seed; chance: the accuracy of guessing (100 / classes, in %)."""
    text = ("The linear probing performance of all the autoencoders is poor, amounting to only about one-tenth of that "
            "achieved by the MAE.")
    lo, hi = band
    reading = (f"Each autoencoder's linear-probe accuracy above chance ({chance:.3g}%) as a fraction of MAE's, "
               f"(AE - chance) / (MAE - chance) per seed, within {lo:g} to {hi:g}: a factor of two either side of "
               "one tenth (the paper's 5.6 / 55.4 = 0.10). Read on the linear probe (the paper's metric).")
    why = unmeasured([mae, *aes], "lp")
    if why:
        return not_measured("T3-linprobe-gap", text, reading, why, [(mae, a) for a in aes], gate)
    m = np.asarray(mae.of("lp")) - chance
    ratios = {a.name: (np.asarray(a.of("lp")) - chance) / m for a in aes}
    k = len(aes)
    verdicts, evidence = [], []
    for name, r in ratios.items():
        iv = stats.compare(r, alpha=ALPHA / k)
        inside = stats.decide(iv, ">", lo) == HOLDS and stats.decide(iv, "<", hi) == HOLDS
        outside = stats.decide(iv, ">", hi) == HOLDS or stats.decide(iv, "<", lo) == HOLDS
        verdicts.append(HOLDS if inside else FAILS if outside else UNTESTABLE)
        evidence.append(f"{name} / MAE above chance: {iv.text()}")
    verdict = stats.combine(verdicts)
    why = {HOLDS: f"every ratio's interval lies within {lo:g} to {hi:g}",
           FAILS: f"a ratio's interval lies wholly outside {lo:g} to {hi:g}",
           UNTESTABLE: f"an interval reaches beyond {lo:g} to {hi:g} without lying outside it"}[verdict]
    if gate.met is False:
        verdict, why = UNFORMED, UNFORMED_WHY
    return Claim("T3-linprobe-gap", text, verdict, "; ".join(evidence), why, reading, gate.text, "")


def fa1_ae_smallest(ae1: Values, others: dict[str, Values], ae1_init: Values, others_init: dict[str, Values],
                    pre: Precondition, name: str = "AE(p)") -> Claim:
    """Mean encoder attention distance (pixels) per seed of AE(p) and of every other model, trained and at init."""
    a0 = np.asarray(ae1_init, dtype=float)
    parts = [Part(f"{k} minus {name}", v, ae1, controls=[Control("random init", np.asarray(others_init[k]) - a0)])
             for k, v in others.items()]
    return judge("FA1-ae16-smallest", "The attention distance of the autoencoder with a prediction size of 16 [the "
                  "patch size] is significantly smaller than that of other models.",
                  f"{name}'s mean encoder attention distance below every other model's.", parts, precondition=pre,
                  suffix=" px")


def fa1_block_expands(ae_small: Values, ae_large: Values, small_init: Values, large_init: Values,
                      pre: Precondition, names: tuple[str, str] = ("AE(p)", "AE(7p)")) -> Claim:
    ctrl = np.asarray(large_init, dtype=float) - np.asarray(small_init, dtype=float)
    return judge("FA1-block-expands", "By controlling the size of image blocks, the effective receptive field of the "
                  "autoencoder can be effectively expanded.",
                  f"{names[1]}'s mean encoder attention distance above {names[0]}'s.",
                  [Part(f"{names[1]} minus {names[0]}", ae_large, ae_small, controls=[Control("random init", ctrl)])],
                  precondition=pre, suffix=" px")


def _front_loading(layers: np.ndarray) -> float:
    """(layers,) -> the mean distance of layers 1-2 minus that of the later layers."""
    return float(layers[:2].mean() - layers[2:].mean())


def fa1_ae_shallow_wider(mae_layers, ae_layers: dict[str, object], mae_init_layers, ae_init_layers: dict[str, object],
                         pre: Precondition) -> Claim:
    """*_layers: mean encoder distance per layer, (seeds, layers)."""
    text = ("The attention distance of each layer in MAE is more stable, while autoencoders tend to learn a larger "
            "receptive field in the first two layers.")
    reading = ("How much more an autoencoder's first two layers attend than its later layers, averaged over the "
               "autoencoders, minus the same for MAE, above 0.")
    depth = np.atleast_2d(np.asarray(mae_layers)).shape[1]

    def effect(mae_l, aes):
        m = np.atleast_2d(np.asarray(mae_l, dtype=float))
        a = [np.atleast_2d(np.asarray(v, dtype=float)) for v in aes.values()]
        return [float(np.mean([_front_loading(x[s]) for x in a]) - _front_loading(m[s])) for s in range(len(m))]
    return unformed_or("FA1-ae-shallow-wider", text, reading, pre,
                        None if depth >= 3 else f"the encoder has {depth} layer(s); the claim needs at least 3",
                        lambda: judge("FA1-ae-shallow-wider", text, reading, [Part(
                            "front-loading, autoencoders minus MAE", effect(mae_layers, ae_layers), 0.0,
                            controls=[Control("random init", effect(mae_init_layers, ae_init_layers))])],
                            precondition=pre, suffix=" px"))


# ---------------------------------------------------------------------------------------------------------------
# Table A.1
def ta1_single_beats_random(single: Arm, random: Arm) -> Claim:
    return accuracy_claim("TA1-single-beats-random", "Even when pretrained using a single image for 5 epochs, MAE achieves "
                      "a finetuning accuracy of 81.8%, which is significantly higher than random initialization.",
                      "The single-image MAE above random init.", [(single, random)], NO_PRECONDITION)


def ta1_below_full_data(full: Arm, single: Arm, gate: Precondition) -> Claim:
    return accuracy_claim("TA1-below-full-data", "MAE pretrained on a single image finetunes below MAE pretrained on the "
                      "whole dataset (Table A.1: 81.8 against 82.9).", "The full-data MAE above the single-image "
                      "MAE.", [(full, single)], gate, source=TABLE_READING.format(table="Table A.1"))


# every claim function of the paper, by page (tests check that each is reached in every branch)
PAGES = {
    "eq2_eq4_local_contrastive": (s32_aligns, s32_eq4_term),
    "table1_lcmae_ablation": (t1_a_beats_b, t1_recon_helps, t1_cross_helps, t1_in_view_declines, t1_g_close_to_mae,
                              t1_c_collapses, t1_e_g_no_collapse),
    "fig2_fig3_decoder_position_semantics": (f2_first_highest, f2_first_two, f2_lowest_third, f3_deeper_semantic),
    "fig4_figB1_decoder_attention_maps": (f4_layer1_alike, f4_nearby),
    "table2_decoders": (t2_akin, t2_local_enough),
    "fig5_attention_distance_pretraining": (f5_mae_local,),
    "fig6_attention_distance_mask_ratio": (f6_strong_correlation, f6_larger_ratio_larger_field, f6_deeper_layers),
    "table3_fig7_figA1_autoencoders": (t3_no_mask_drop, t3_like_random, t3_block_size, t3_steady_rise,
                                       t3_linprobe_gap, fa1_ae_smallest, fa1_block_expands, fa1_ae_shallow_wider),
    "tableA1_single_image": (ta1_single_beats_random, ta1_below_full_data),
}

__all__ = ["PAGES", "COLLAPSE_STD", "LOSS_GAIN_FRACTION", "TENTH_BAND", "STRONG_R", "TABLE_READING"]
