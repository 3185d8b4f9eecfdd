"""The paper's claims, one function each: measured values in, a ``Claim`` with its verdict out.

Every verdict of the book is made here, never in a notebook. A claim function takes what the page measured, one
value per replicate (per seed, the arms of a comparison sharing the seed; or per image, for fixed checkpoints),
and returns a ``Claim``: the paper's words, the verdict, the evidence (each comparison with its interval), the
precondition and its outcome, and the null controls' values.

How a verdict is reached (``_judge``):

1. **The comparison.** Each part of the claim is a difference with its (1 - alpha / k) interval
   (``stats.compare``; k parts, Bonferroni). The claim *holds* when every interval lies on the claimed side,
   *does not hold* when one lies wholly on the other side, and is otherwise *not testable at this scale*.
2. **Null controls.** The same effect measured on a model without the mechanism: the random-init model of the
   same shape and seed, uniform attention, the decoder's position embeddings alone, the zero prediction. A claim
   can only hold when its effect beats every control's (paired interval on the claimed side); a control that
   reproduces the effect makes it *not testable*: the measurement cannot tell the mechanism from its absence.
3. **The precondition.** A claim about a mechanism (local attention, a representation better than random) is
   only testable where the mechanism formed. When it did not, the verdict is *not testable: precondition unmet*,
   whatever the comparison says, and the reason is shown.

**Thresholds and margins, declared before any run is read** (each with its reason):

- ``ALPHA = 0.05``: the two-sided level of every interval.
- ``FORMED_KEY_FRACTION = 0.5``: attention has *formed* when a query's effective number of keys (the exponential
  of its attention entropy) is at most half of the keys, i.e. its entropy is at most ``1 - ln 2 / ln n`` of the
  maximum (``formed_entropy``: 0.82 on a 7x7 grid, 0.86 on 12x12, 0.87 on ImageNet's 14x14). Uniform attention
  uses all n keys (fraction 1) and a random-init ViT nearly all; halving them is an unambiguous concentration
  that still admits broad, non-local attention, so it tests formation, not locality. It must also differ from
  the random-init model's (paired interval).
- ``COLLAPSE_STD = 0.1``: a representation has collapsed "into a constant point" when the standard deviation of
  its unit features across tokens is below a tenth of ``1/sqrt(D)``, the value of features spread evenly over
  the sphere (``monitors.collapse_stats``): nine tenths of the spread gone.
- ``AKIN_FRACTION = 0.25``: a local decoder is "akin" to the transformer when its encoder's accuracy is within
  +-25% of the transformer MAE's gain over random initialisation (TOST). The paper's weighted average lost
  0.4 points of a 4.3-point gain (9%) and the paper calls it akin; a quarter keeps "most of what pretraining
  gives" while leaving room for the gain's own noise at small scales.
- ``LOSS_TOLERANCE = 0.1``: local features "suffice to reconstruct" when a local decoder's validation loss is at
  most 10% above the transformer decoder's, and below the zero prediction's (the null).
- ``STRONG_R = 0.7``: the conventional threshold of a strong correlation, read on the mean of per-seed
  correlations (Fisher z) with its interval, so that chance alone does not reach it (one seed's five-point
  Spearman rho reached 0.7 by chance 12% of the time).
- ``PRIMARY_METRIC``: accuracy claims are read on the linear probe at the smoke and cpu scales, where a few
  epochs of finetuning measure training speed more than the representation (random init 30.5% and MAE 64.5%
  finetuned, while raw-pixel kNN reaches 93.3%), and on finetuning, the paper's metric, at the gpu and paper
  scales. The kNN accuracy, McNemar's test on seed 0's images and finetuning are shown beside it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from . import stats
from .stats import FAILS, HOLDS, UNFORMED, UNTESTABLE, VERDICTS

ALPHA = stats.ALPHA
FORMED_KEY_FRACTION = 0.5
COLLAPSE_STD = 0.1
AKIN_FRACTION = 0.25
LOSS_TOLERANCE = 0.1
STRONG_R = 0.7
PRIMARY_METRIC = {"smoke": "lp", "cpu": "lp", "gpu": "ft", "paper": "ft"}
METRIC_NAMES = {"lp": "linear probe", "knn": "kNN", "ft": "finetuning"}

Values = Sequence[float]
UNFORMED_WHY = "the precondition is unmet, so the comparison says nothing about the claim"


def formed_entropy(n_keys: int, key_fraction: float = FORMED_KEY_FRACTION) -> float:
    """The largest attention entropy, as a fraction of its maximum ln n, at which attention counts as formed:
    exp(entropy) <= key_fraction * n  <=>  fraction <= 1 + ln(key_fraction) / ln(n)."""
    if n_keys < 2:
        raise ValueError(f"attention over {n_keys} key(s) has no entropy to speak of")
    return 1.0 + math.log(key_fraction) / math.log(n_keys)


def primary_metric(scale: str) -> str:
    """The accuracy an accuracy claim is read on at a scale: "lp" (linear probe) or "ft" (finetuning)."""
    if scale not in PRIMARY_METRIC:
        raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(PRIMARY_METRIC)}")
    return PRIMARY_METRIC[scale]


# ---------------------------------------------------------------------------------------------------------------
# the record
@dataclass
class Claim:
    """One claim of the paper, in the paper's words, with what this run found.

    verdict: one of ``VERDICTS``; why: the reason for it in one sentence; evidence: each comparison with its
    interval; reading: how the claim is measured (and any threshold); precondition: what must have formed for the
    claim to be testable, and whether it did ("none" when nothing need); controls: the null controls' values."""

    id: str
    text: str
    verdict: str
    evidence: str
    why: str = ""
    reading: str = ""
    precondition: str = "none"
    controls: str = ""

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Precondition:
    """met: True, False, or None when the claim needs none; text: what was checked, and the numbers."""

    met: bool | None
    text: str


NO_PRECONDITION = Precondition(None, "none")


def all_of(*pres: Precondition) -> Precondition:
    """Several preconditions at once: met when every one is (None ones are skipped)."""
    used = [p for p in pres if p.met is not None]
    if not used:
        return NO_PRECONDITION
    return Precondition(all(p.met for p in used), "; ".join(p.text for p in used))


@dataclass
class Control:
    """A null control: the claim's effect measured on a model without the mechanism. ``effect``: one value per
    replicate (paired with the trained model's), or a number (a fixed model such as uniform attention)."""

    name: str
    effect: Values | float


@dataclass
class Part:
    """One comparison of a claim: a - b (per replicate; b may be a number), claimed to be on ``side`` of
    ``threshold``; controls: the same difference measured on null controls; notes: further evidence (kNN,
    McNemar) shown but not decided on."""

    label: str
    a: Values
    b: Values | float = 0.0
    controls: list[Control] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    paired: bool = True

    def effect(self) -> np.ndarray:
        a = np.asarray(self.a, dtype=float)
        return a - (np.asarray(self.b, dtype=float) if np.ndim(self.b) else float(self.b))


@dataclass(frozen=True)
class Arm:
    """One configuration's accuracy on the primary metric, per seed (the arms of a comparison share the seeds),
    with its kNN accuracy per seed and seed 0's per-image hits, where measured, for the evidence."""

    name: str
    values: Values
    knn: Values | None = None
    correct: np.ndarray | None = None


# ---------------------------------------------------------------------------------------------------------------
# the judge
def _fmt(x: float, d: int = 3) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{d}f}"


def _mean_text(values, d: int | None = None) -> str:
    v = np.asarray(values, dtype=float).reshape(-1)
    if d is None:
        d = stats.decimals(float(v.std(ddof=1)) if len(v) > 1 else float("nan"))
    return f"{v.mean():.{d}f}" + (f" (per replicate {', '.join(f'{x:.{d}f}' for x in v)})" if len(v) > 1 else "")


def _judge(cid: str, text: str, reading: str, parts: list[Part], side: str = ">", threshold: float = 0.0,
           precondition: Precondition = NO_PRECONDITION, alpha: float = ALPHA, unit: str = "seeds",
           suffix: str = "") -> Claim:
    """The decision of every directional claim (see the module docstring): parts, controls, precondition."""
    k = len(parts)
    a_k = alpha / k
    verdicts, evidence, controls = [], [], []
    reproduced = []
    for p in parts:
        iv = stats.compare(p.a, p.b, paired=p.paired, alpha=a_k, unit=unit)
        v = stats.decide(iv, side, threshold)
        verdicts.append(v)
        evidence.append(f"{p.label}: {iv.text(suffix=suffix)}" + "".join(f"; {n}" for n in p.notes))
        for c in p.controls:
            ctrl_effect = c.effect if np.ndim(c.effect) == 0 else np.asarray(c.effect, dtype=float)
            civ = stats.compare(p.effect(), ctrl_effect, paired=True, alpha=a_k, unit=unit)
            beaten = stats.decide(civ, side, 0.0) == HOLDS
            shown = _fmt(float(c.effect)) if np.ndim(c.effect) == 0 else _mean_text(c.effect)
            controls.append(f"{c.name} ({p.label}): {shown}; trained minus control {civ.text(suffix=suffix)}"
                            f" ({'beaten' if beaten else 'not beaten'})")
            if not beaten:
                reproduced.append(c.name)
    verdict = stats.combine(verdicts)
    if verdict == HOLDS:
        why = "every interval lies on the claimed side" if k > 1 else "the interval lies on the claimed side"
    elif verdict == FAILS:
        why = "an interval lies wholly on the other side of the claim"
    else:
        iv_hw = max(stats.compare(p.a, p.b, paired=p.paired, alpha=a_k, unit=unit).half_width for p in parts)
        why = (f"an interval straddles {threshold:g}: this scale resolves differences of about "
               f"{_fmt(iv_hw, stats.decimals(iv_hw))}{suffix} and no smaller")
        if not math.isfinite(iv_hw):
            why = f"one replicate: no interval ({unit} are needed to measure the noise)"
    if verdict == HOLDS and reproduced:
        verdict = UNTESTABLE
        why = (f"the effect does not beat the null control(s) {', '.join(sorted(set(reproduced)))} by a paired "
               "interval: the measurement cannot tell the mechanism from its absence")
    if precondition.met is False:
        verdict, why = UNFORMED, UNFORMED_WHY
    return Claim(cid, text, verdict, "; ".join(evidence), why, reading, precondition.text, "; ".join(controls))


def _unformed_or(cid, text, reading, precondition: Precondition, missing: str | None, build) -> Claim:
    """A claim whose measurement needs something the run lacks (a deeper decoder, say): precondition unmet."""
    if missing:
        pre = Precondition(False, f"{missing}" + ("" if precondition.met is None else f"; {precondition.text}"))
        return Claim(cid, text, UNFORMED, "not measured", UNFORMED_WHY, reading, pre.text, "")
    return build()


# ---------------------------------------------------------------------------------------------------------------
# preconditions
def attention_formed(what: str, trained, init, n_keys: int, layers: Sequence[int] | None = None,
                     alpha: float = ALPHA, unit: str = "seeds") -> Precondition:
    """Did attention form? trained, init: attention entropy as a fraction of its maximum, (replicates, layers)
    (``analysis.attention_entropy_curves`` averaged over heads), for the trained model and the random-init model
    of the same seed. Formed in a layer when its mean entropy is at most ``formed_entropy(n_keys)`` and below the
    random-init model's (paired interval). layers: 0-based layers that must have formed (default: all)."""
    t, i = np.atleast_2d(np.asarray(trained, dtype=float)), np.atleast_2d(np.asarray(init, dtype=float))
    if t.shape != i.shape:
        raise ValueError(f"trained and init entropies differ in shape: {t.shape} vs {i.shape}")
    limit = formed_entropy(n_keys)
    layers = list(range(t.shape[1])) if layers is None else list(layers)
    bad, rows = [], []
    for l in layers:
        iv = stats.compare(t[:, l], i[:, l], alpha=alpha, unit=unit)
        below = stats.decide(iv, "<") == HOLDS
        ok = t[:, l].mean() <= limit and below
        if not ok:
            bad.append(l + 1)
        rows.append(f"layer {l + 1} {t[:, l].mean():.3f} (random init {i[:, l].mean():.3f})")
    head = (f"{what} attention formed (entropy at most {limit:.2f} of its maximum, at most half of the {n_keys} "
            f"keys effectively attended, and below the random-init model's)")
    outcome = "yes" if not bad else f"no: layer(s) {', '.join(map(str, bad))} too flat or as flat as at random init"
    return Precondition(not bad, f"{head}: {outcome}; entropy {', '.join(rows)}")


def attention_moved(what: str, trained, init, alpha: float = ALPHA, unit: str = "seeds") -> Precondition:
    """Did training change a model's attention at all? trained, init: attention entropy as a fraction of its
    maximum, (replicates, layers), for the trained model and the random-init model of the same seed. Met when every
    layer's entropy lies below the random-init model's (paired interval). Weaker than ``attention_formed`` on
    purpose: a model the paper expects to attend globally (a contrastive or supervised one) may keep broad attention,
    so no absolute limit applies; what must not be is attention as flat as at initialisation, whose distance is an
    untrained model's, and "wider than MAE" would then hold for a model that learned nothing."""
    t, i = np.atleast_2d(np.asarray(trained, dtype=float)), np.atleast_2d(np.asarray(init, dtype=float))
    if t.shape != i.shape:
        raise ValueError(f"trained and init entropies differ in shape: {t.shape} vs {i.shape}")
    bad = [l + 1 for l in range(t.shape[1])
           if stats.decide(stats.compare(t[:, l], i[:, l], alpha=alpha, unit=unit), "<") != HOLDS]
    outcome = "yes" if not bad else f"no: layer(s) {', '.join(map(str, bad))} as flat as at random init"
    return Precondition(not bad, f"{what} attention moved from initialisation (entropy below the random-init "
                                 f"model's in every layer): {outcome}; entropy {_mean_text(t.mean(1), 3)} (random "
                                 f"init {_mean_text(i.mean(1), 3)})")


def task_learned(what: str, top1: Values, raw_best: float, alpha: float = ALPHA) -> Precondition:
    """A supervised stand-in learned its task: its top-1 (%, per seed) above the best raw-pixel baseline on the
    same split (kNN or logistic regression), by a one-sample interval. Below it, the model is no better than the
    pixels, and its attention is not a supervised model's."""
    iv = stats.compare(np.asarray(top1, dtype=float), float(raw_best), paired=False, alpha=alpha)
    ok = stats.decide(iv) == HOLDS
    return Precondition(ok, f"{what} learned its task (top-1 above raw pixels' {raw_best:.1f}%): "
                            f"{'yes' if ok else 'no'}, {iv.text(suffix=' pt')}")


def f5_comparison_models(entropies: dict, supervised: tuple | None = None, unit: str = "seeds") -> Precondition:
    """Fig. 5's comparison models must have learned, or "MAE is more local" would compare MAE with untrained
    attention. entropies: {name: (trained, init)} attention entropies (replicates, layers) of each comparison
    model (``attention_moved``); supervised: (name, top-1 per seed, best raw-pixel top-1) where the supervised
    model was trained here (``task_learned``), None where it is a published checkpoint."""
    pres = [attention_moved(f"{name} encoder", t, i, unit=unit) for name, (t, i) in entropies.items()]
    if supervised is not None:
        pres.append(task_learned(*supervised))
    return all_of(*pres)


def pretraining_helps(mae: Arm, random: Arm, alpha: float = ALPHA) -> Precondition:
    """Comparisons between pretraining variants are testable only where pretraining formed a representation:
    the MAE baseline beats random initialisation on the primary metric (interval above 0)."""
    iv = stats.compare(mae.values, random.values, alpha=alpha)
    ok = stats.decide(iv) == HOLDS
    return Precondition(ok, f"pretraining helps at this scale ({mae.name} above {random.name}): "
                            f"{'yes' if ok else 'no'}, {iv.text(suffix=' pt')}")


def decoder_deep_enough(depth: int, need: int) -> str | None:
    """None, or why a decoder of ``depth`` layers cannot show a claim about ``need`` layers."""
    return None if depth >= need else f"the decoder has {depth} layer(s); the claim needs at least {need}"


# ---------------------------------------------------------------------------------------------------------------
# accuracy parts
def _accuracy_part(a: Arm, b: Arm, metric: str) -> Part:
    notes = []
    if a.knn is not None and b.knn is not None:
        notes.append(f"kNN {stats.compare(a.knn, b.knn).text(suffix=' pt')}")
    if a.correct is not None and b.correct is not None:
        mc = stats.mcnemar(a.correct, b.correct)
        notes.append(f"McNemar on seed 0's images {mc.text(suffix=' pt')}, p = {mc.p:.2g}")
    return Part(f"{a.name} minus {b.name} ({METRIC_NAMES[metric]})", a.values, b.values, notes=notes)


def _midpoint(x: Arm, y: Arm, name: str) -> Arm:
    v = (np.asarray(x.values, dtype=float) + np.asarray(y.values, dtype=float)) / 2
    return Arm(name, v.tolist())


def _acc_claim(cid, text, reading, pairs: list[tuple[Arm, Arm]], metric: str, gate: Precondition,
               side: str = ">") -> Claim:
    parts = [_accuracy_part(a, b, metric) for a, b in pairs]
    return _judge(cid, text, reading + f" Read on the {METRIC_NAMES[metric]} top-1 accuracy, paired over seeds.",
                  parts, side, precondition=gate, suffix=" pt")


# ---------------------------------------------------------------------------------------------------------------
# Sec. 3.2: the local contrastive form (Eqs. 2 and 4)
def s32_aligns(ratio_trained: Values, ratio_init: Values) -> Claim:
    """ratio: the Eq. 2 contrastive term ||h(x,m_a)_j - h(x,m_b)_j||^2 (one patch, two masks) divided by the
    distance ||h_i - h_j||^2 between the predictions for two different patches, per seed, after training and at
    initialisation (the random-init model of the same seed)."""
    return _judge(
        "S32-aligns", "MAE implicitly aligns local features [the first term of Eq. 2: the predictions for one patch "
        "under two masks agree].",
        "Alignment is the Eq. 2 contrastive term relative to the distance between the predictions for two different "
        "patches; training must lower it below its value at initialisation (the identity itself holds for any "
        "model and is a unit test, not evidence).",
        [Part("trained minus random init (ratio)", ratio_trained, ratio_init)], side="<")


def s32_eq4_term(q_trained: Values, q_init: Values) -> Claim:
    """q: the Eq. 4 contrastive term ||(h_i - h_j) - (x_i - x_j)||^2 divided by ||x_i - x_j||^2, the term of a
    constant prediction (h_i = h_j), per seed, after training and at initialisation."""
    return _judge(
        "S32-eq4-term", "The difference between the decoder outputs at positions i and j [...] should approximate "
        "their pixel difference (x_i - x_j).",
        "The Eq. 4 contrastive term relative to a constant prediction's (h_i = h_j, the null): below 1 means the "
        "output differences follow the pixel differences; it must also fall below the random-init model's.",
        [Part("trained term / constant prediction's, minus 1", q_trained, 1.0,
              controls=[Control("random init", np.asarray(q_init, dtype=float) - 1.0)])], side="<")


# ---------------------------------------------------------------------------------------------------------------
# Table 1
def t1_a_beats_b(a: Arm, b: Arm, gate: Precondition, metric: str) -> Claim:
    return _acc_claim("T1-a-vs-b", "Setting (a) [...] showing a slight improvement compared to Setting (b), i.e., "
                      "the original MAE.", "(a) above (b).", [(a, b)], metric, gate)


def t1_recon_helps(a: Arm, g: Arm, f: Arm, d: Arm, gate: Precondition, metric: str) -> Claim:
    return _acc_claim("T1-recon-helps", "The reconstruction loss consistently improves performance, with gains of "
                      "0.5% in setting (a) versus (g), and 0.6% in setting (f) versus (d).",
                      "Both gains positive: (a) above (g) and (f) above (d).", [(a, g), (f, d)], metric, gate)


def t1_cross_helps(g: Arm, d: Arm, a: Arm, f: Arm, gate: Precondition, metric: str) -> Claim:
    return _acc_claim("T1-cross-helps", "The cross-view loss leads to performance gains of 0.3% in setting (g) "
                      "versus (d), and 0.2% in setting (a) versus (f).",
                      "Both gains positive: (g) above (d) and (a) above (f).", [(g, d), (a, f)], metric, gate)


def t1_in_view_declines(e: Arm, a: Arm, b: Arm, f: Arm, gate: Precondition, metric: str) -> Claim:
    return _acc_claim("T1-in-view-declines", "The in-view loss leads to a slight performance decline of 0.1%.",
                      "Adding L_in lowers accuracy in both pairs that differ only by it: (a) below (e) and (f) "
                      "below (b).", [(e, a), (b, f)], metric, gate)


def t1_g_close_to_mae(g: Arm, b: Arm, random: Arm, gate: Precondition, metric: str) -> Claim:
    mid = _midpoint(b, random, "the midpoint of MAE and random init")
    return _acc_claim("T1-g-close-to-mae", "Setting (g), even without the use of reconstruction loss, still achieves "
                      "a finetuning accuracy of 82.5% [close to MAE's 82.9%].",
                      "(g) closer to MAE (b) than to random initialisation: above their midpoint, per seed.",
                      [(g, mid)], metric, gate)


def t1_c_collapses(c_std: Values, c_init_std: Values) -> Claim:
    """c_std: setting (c)'s decoder hidden-state feature std as a fraction of 1/sqrt(D), per seed, at the end of
    training (held-out batch); c_init_std: the same at initialisation."""
    return _judge(
        "T1-c-collapse", "Using only the cross-view loss (setting (c) in Table 1) leads to collapse into a constant "
        "point.",
        f"(c)'s decoder hidden state h (the projector's input) ends with a feature std below {COLLAPSE_STD} of "
        "1/sqrt(D), and below its value at initialisation (training caused the collapse).",
        [Part(f"(c) std x sqrt(D), minus {COLLAPSE_STD:g}", c_std, COLLAPSE_STD,
              controls=[Control("random init", np.asarray(c_init_std, dtype=float) - COLLAPSE_STD)])], side="<")


def t1_e_g_no_collapse(e_std: Values, g_std: Values) -> Claim:
    return _judge(
        "T1-e-g-no-collapse", "When the model is equipped with the in-view loss (setting (g)) or reconstruction loss "
        "(setting (e)), it is able to avoid collapsed solutions.",
        f"Both (e) and (g) end with a decoder hidden-state feature std above {COLLAPSE_STD} of 1/sqrt(D).",
        [Part(f"(e) std x sqrt(D), minus {COLLAPSE_STD:g}", e_std, COLLAPSE_STD),
         Part(f"(g) std x sqrt(D), minus {COLLAPSE_STD:g}", g_std, COLLAPSE_STD)], side=">")


# ---------------------------------------------------------------------------------------------------------------
# Table 2
def t2_akin(local: dict[str, Arm], transformer: Arm, random: Arm, gate: Precondition, metric: str,
            fraction: float = AKIN_FRACTION) -> Claim:
    text = "As the decoder, single-layer convolution and weighted average exhibit effects akin to the transformer."
    gain = float(np.mean(np.asarray(transformer.values) - np.asarray(random.values)))
    reading = (f"Each local decoder's encoder within +-{fraction:g} of the transformer MAE's gain over random init "
               f"(TOST, paired over seeds) on the {METRIC_NAMES[metric]} top-1 accuracy.")
    if gate.met is False or not gain > 0:
        pre = gate if gate.met is False else Precondition(False, f"the transformer MAE gains {gain:.2f} pt")
        return Claim("T2-akin", text, UNFORMED, f"gain of the transformer MAE over random init {gain:.2f} pt",
                     UNFORMED_WHY, reading,
                     pre.text, "")
    margin = fraction * gain
    k = len(local)
    verdicts, evidence = [], []
    for arm in local.values():
        eq = stats.equivalent(arm.values, transformer.values, margin, alpha=ALPHA / k)
        verdicts.append(stats.decide_equivalence(eq))
        evidence.append(f"{arm.name} minus {transformer.name}: {eq.text(suffix=' pt')}")
    verdict = stats.combine(verdicts)
    why = {HOLDS: "every difference is shown to lie within the margin",
           FAILS: "a difference lies clearly outside the margin",
           UNTESTABLE: "an interval reaches beyond the margin without lying outside it"}[verdict]
    return Claim("T2-akin", text, verdict, "; ".join(evidence), why, reading, gate.text,
                 f"random init {_mean_text(random.values, 1)} pt")


def t2_local_enough(local_ratio: dict[str, Values], zero_ratio: Values, tolerance: float = LOSS_TOLERANCE) -> Claim:
    """local_ratio: {decoder: its validation reconstruction loss / the transformer decoder's, per seed, on the same
    images and masks}; zero_ratio: the zero prediction's loss / the transformer's, per seed (the null)."""
    z = np.asarray(zero_ratio, dtype=float) - (1 + tolerance)
    parts = [Part(f"{name} loss / transformer's, minus {1 + tolerance:g}", r, 1 + tolerance,
                  controls=[Control("zero prediction", z)]) for name, r in local_ratio.items()]
    return _judge(
        "T2-local-enough", "Local features within a limited region is sufficient for the decoder to reconstruct the "
        "image.", f"Each local decoder's validation reconstruction loss at most {tolerance:g} above the transformer "
        "decoder's (same images, same masks), and below the zero prediction's.", parts, side="<")


# ---------------------------------------------------------------------------------------------------------------
# Figs. 2, 3 and 4: the decoder
def _layer_effect(curves, fn) -> np.ndarray:
    return np.array([fn(np.asarray(c, dtype=float)) for c in np.atleast_2d(np.asarray(curves, dtype=float))])


def _s_attn_claim(cid: str, text: str, reading: str, label: str, fn, need: int, s_attn, s_attn_init,
                  pre: Precondition, unit: str = "seeds") -> Claim:
    """A Fig. 2 claim: ``fn`` maps one seed's S^attn per layer to the effect, measured on the trained decoder, its
    random-init twin and uniform attention (S^attn 1 in every layer, so every layer difference is 0)."""
    depth = np.atleast_2d(s_attn).shape[1]
    return _unformed_or(cid, text, reading, pre, decoder_deep_enough(depth, need), lambda: _judge(
        cid, text, reading,
        [Part(label, _layer_effect(s_attn, fn), 0.0,
              controls=[Control("random init", _layer_effect(s_attn_init, fn)), Control("uniform attention", 0.0)])],
        precondition=pre, unit=unit))


def f2_first_highest(s_attn, s_attn_init, pre: Precondition, unit: str = "seeds") -> Claim:
    """s_attn, s_attn_init: Eq. 7 per decoder layer, (seeds, layers), trained and at initialisation."""
    return _s_attn_claim(
        "F2-first-highest", "The average attention map similarity across all images is the highest at the first "
        "decoder layer (up to 0.9).", "S^attn of layer 1 minus the highest of the other layers, above 0.",
        "S^attn layer 1 minus the highest other", lambda c: c[0] - c[1:].max(), 2, s_attn, s_attn_init, pre, unit)


def f2_first_two(s_attn, s_attn_init, pre: Precondition, unit: str = "seeds") -> Claim:
    return _s_attn_claim(
        "F2-first-two", "The average cosine similarity of the first two layers is significantly higher than that of "
        "the subsequent layers.", "The lower of S^attn's layers 1 and 2 minus the highest later layer, above 0.",
        "S^attn min(layers 1-2) minus max(later)", lambda c: c[:2].min() - c[2:].max(), 3, s_attn, s_attn_init, pre,
        unit)


def f2_lowest_third(s_attn, s_attn_init, pre: Precondition, unit: str = "seeds") -> Claim:
    return _s_attn_claim(
        "F2-lowest-third", "[The average attention map similarity is] lowest at the third layer.",
        "The lowest S^attn of the other layers minus layer 3's, above 0.", "S^attn min(other layers) minus layer 3",
        lambda c: np.delete(c, 2).min() - c[2], 3, s_attn, s_attn_init, pre, unit)


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
    return _unformed_or("F3-deeper-semantic", text, reading, pre, decoder_deep_enough(depth, 2),
                        lambda: _judge("F3-deeper-semantic", text, reading, [Part(
                            "S^sim deep half minus shallow half", _layer_effect(s_sim, _deep_minus_shallow), 0.0,
                            controls=[Control("random-init reference", _layer_effect(s_sim_random_reference,
                                                                                     _deep_minus_shallow)),
                                      Control("position embeddings alone", _layer_effect(s_sim_positions,
                                                                                         _deep_minus_shallow))])],
                            precondition=pre, unit=unit))


def f4_layer1_alike(per_query, per_query_init, pre: Precondition, unit: str = "seeds") -> Claim:
    """per_query, per_query_init: one query's cross-image similarity (Eq. 7 for that query) per decoder layer,
    (seeds, queries, layers), trained and at initialisation."""
    def fn(q):  # (queries, layers) -> mean over queries of layer 1 minus the highest other layer
        q = np.atleast_2d(q)
        return float((q[:, 0] - q[:, 1:].max(1)).mean())
    eff = lambda x: np.array([fn(np.asarray(s, dtype=float)) for s in np.asarray(x, dtype=float)])  # noqa: E731
    text = ("In the first decoder layer [...] the attention maps exhibit very similar patterns for the very "
            "different images.")
    reading = ("For the shown query positions, the cross-image similarity of layer 1 minus the highest other "
               "layer's, averaged over the queries, above 0 (flat maps are alike by construction, hence the "
               "precondition).")
    depth = np.asarray(per_query).shape[-1]
    return _unformed_or("F4-layer1-alike", text, reading, pre, decoder_deep_enough(depth, 2), lambda: _judge(
        "F4-layer1-alike", text, reading,
        [Part("query similarity layer 1 minus the highest other", eff(per_query), 0.0,
              controls=[Control("random init", eff(per_query_init)), Control("uniform attention", 0.0)])],
        precondition=pre, unit=unit))


def f4_nearby(distance, distance_init, uniform: float, pre: Precondition, unit: str = "seeds") -> Claim:
    """distance, distance_init: the mask tokens' attention distance per decoder layer (pixels), (seeds, layers);
    uniform: the distance of uniform attention from the same query positions."""
    d = np.atleast_2d(np.asarray(distance, dtype=float)).mean(1)
    d0 = np.atleast_2d(np.asarray(distance_init, dtype=float)).mean(1)
    return _judge(
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
    return _judge("F5-mae-local", "The attention distance of MAE is significantly lower than that of the contrastive "
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
    ctrl = f"random init: r {_mean_text(r0, 2)} (the encoders start identical at every mask ratio)"
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
    return _judge("F6-larger-ratio-larger-field", text, reading,
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
    return _unformed_or("F6-deeper-layers", text, reading, pre,
                        None if depth >= 2 else f"the encoder has {depth} layer(s); the claim needs at least 2",
                        lambda: _judge("F6-deeper-layers", text, reading, [Part(
                            "deep minus shallow slope", [effect(s) for s in ld], 0.0)], precondition=pre,
                            suffix=" px"))


# ---------------------------------------------------------------------------------------------------------------
# Table 3 and Fig. A.1: autoencoders
def t3_no_mask_drop(mae: Arm, ae1: Arm, gate: Precondition, metric: str) -> Claim:
    return _acc_claim("T3-no-mask-drop", "When random masking is simply removed, the finetuning accuracy of MAE "
                      "drops from 82.9% to 78.7%.", f"MAE above {ae1.name}.", [(mae, ae1)], metric, gate)


def t3_like_random(ae1: Arm, random: Arm, mae: Arm, gate: Precondition, metric: str) -> Claim:
    mid = _midpoint(mae, random, "the midpoint of MAE and random init")
    return _acc_claim("T3-like-random", "[AE without masking reaches 78.7%,] which is similar to random "
                      "initialization.", f"{ae1.name} closer to random init than to MAE: below their midpoint.",
                      [(mid, ae1)], metric, gate)


def t3_block_size(ae_small: Arm, ae_large: Arm, gate: Precondition, metric: str) -> Claim:
    return _acc_claim("T3-block-size", "When we enlarge the size of the target image block, the finetuning accuracy "
                      "dramatically increases.", f"{ae_large.name} above {ae_small.name}.", [(ae_large, ae_small)],
                      metric, gate)


def t3_steady_rise(aes: Sequence[Arm], gate: Precondition, metric: str) -> Claim:
    """aes: the autoencoders in increasing block size."""
    return _acc_claim("T3-steady-rise", "[The finetuning accuracy] dramatically increases to 81.2% and peaks with a "
                      "block size of 112, reaching 81.8%.", "Every larger block above the next smaller one: "
                      + " < ".join(a.name for a in aes) + ".",
                      [(aes[i + 1], aes[i]) for i in range(len(aes) - 1)], metric, gate)


def t3_linprobe_gap(mae: Arm, aes: Sequence[Arm]) -> Claim:
    return _acc_claim("T3-linprobe-gap", "The linear probing performance of all the autoencoders is poor, amounting "
                      "to only about one-tenth of that achieved by the MAE.", "MAE above every autoencoder.",
                      [(mae, a) for a in aes], "lp", NO_PRECONDITION)


def fa1_ae_smallest(ae1: Values, others: dict[str, Values], ae1_init: Values, others_init: dict[str, Values],
                    pre: Precondition, name: str = "AE(p)") -> Claim:
    """Mean encoder attention distance (pixels) per seed of AE(p) and of every other model, trained and at init."""
    a0 = np.asarray(ae1_init, dtype=float)
    parts = [Part(f"{k} minus {name}", v, ae1, controls=[Control("random init", np.asarray(others_init[k]) - a0)])
             for k, v in others.items()]
    return _judge("FA1-ae16-smallest", "The attention distance of the autoencoder with a prediction size of 16 [the "
                  "patch size] is significantly smaller than that of other models.",
                  f"{name}'s mean encoder attention distance below every other model's.", parts, precondition=pre,
                  suffix=" px")


def fa1_block_expands(ae_small: Values, ae_large: Values, small_init: Values, large_init: Values,
                      pre: Precondition, names: tuple[str, str] = ("AE(p)", "AE(7p)")) -> Claim:
    ctrl = np.asarray(large_init, dtype=float) - np.asarray(small_init, dtype=float)
    return _judge("FA1-block-expands", "By controlling the size of image blocks, the effective receptive field of the "
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
    return _unformed_or("FA1-ae-shallow-wider", text, reading, pre,
                        None if depth >= 3 else f"the encoder has {depth} layer(s); the claim needs at least 3",
                        lambda: _judge("FA1-ae-shallow-wider", text, reading, [Part(
                            "front-loading, autoencoders minus MAE", effect(mae_layers, ae_layers), 0.0,
                            controls=[Control("random init", effect(mae_init_layers, ae_init_layers))])],
                            precondition=pre, suffix=" px"))


# ---------------------------------------------------------------------------------------------------------------
# Table A.1
def ta1_single_beats_random(single: Arm, random: Arm, metric: str) -> Claim:
    return _acc_claim("TA1-single-beats-random", "Even when pretrained using a single image for 5 epochs, MAE achieves "
                      "a finetuning accuracy of 81.8%, which is significantly higher than random initialization.",
                      "The single-image MAE above random init.", [(single, random)], metric, NO_PRECONDITION)


def ta1_below_full_data(full: Arm, single: Arm, gate: Precondition, metric: str) -> Claim:
    return _acc_claim("TA1-below-full-data", "[MAE pretrained on a single image finetunes below MAE pretrained on "
                      "the whole dataset] (Table A.1: 81.8 vs 82.9).", "The full-data MAE above the single-image "
                      "MAE.", [(full, single)], metric, gate)


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

__all__ = ["Claim", "Precondition", "Part", "Control", "Arm", "NO_PRECONDITION", "ALPHA", "FORMED_KEY_FRACTION",
           "COLLAPSE_STD", "AKIN_FRACTION", "LOSS_TOLERANCE", "STRONG_R", "PRIMARY_METRIC", "formed_entropy",
           "primary_metric", "attention_formed", "pretraining_helps", "all_of", "PAGES", "HOLDS", "FAILS",
           "UNTESTABLE", "UNFORMED", "VERDICTS"]
