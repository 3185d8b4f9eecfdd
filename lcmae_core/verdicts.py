"""How a verdict is made: the records (``Claim``, ``Precondition``, ``Part``, ``Control``, ``Arm``), the judge, the
preconditions and the accuracy comparisons that every claim function (``lcmae_core.claims``) is built from.

How a verdict is reached (``judge``):

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
  that still admits broad, non-local attention, so it tests formation, not locality. Judged *per replicate*: a
  layer formed when, in every seed (or image group), it is below that limit and below its own random-init twin.
  (A paired interval over three seeds rejected a decoder layer that had formed in every one: 0.78, 0.85, 0.62
  against about 0.99 at initialisation; the limit itself is already far from initialisation.)
- ``LOCAL_FRACTION = 0.9``: attention is *local* when its mean distance (over layers, heads and queries) is at most
  nine tenths of uniform attention's from the same queries, and below its random-init twin's, in every replicate.
  Concentration is not locality: an encoder can halve its effective keys and still attend farther than uniform
  attention (the cpu audit: entropy 0.71-0.78 of its maximum at 24.9-26.1 px against 24.9 px uniform). A random-
  init ViT sits within about 1% of uniform; a tenth closer is ten times that, which noise cannot reach, and far
  short of how local the paper's MAE is. Claims about receptive fields (Figs. 5, 6, A.1) need it.
- ``AKIN_FRACTION = 0.25``: "akin" and "similar" accuracies are equal within +-25% of the gain of pretraining
  (the MAE arm over random initialisation, on the claim's metric; TOST). The paper's weighted average lost
  0.4 points of a 4.3-point gain (9%) and the paper calls it akin; a quarter keeps "most of what pretraining
  gives" while leaving room for the gain's own noise at small scales. Table 2's "akin" and Table 3's "similar to
  random initialization" both read it.
- ``NULL_MARGIN = 0.1``: a claim judged against a null is testable only where its reference beats the null by a
  declared margin: for Table 2, the transformer decoder's validation loss at least a tenth below the zero
  prediction's (the lower end of the paired interval). A decoder that removes less than a tenth of the error of
  predicting nothing has not learned to reconstruct, and any tolerance on top of it would let the zero prediction
  itself pass (the cpu audit: transformer 0.365 against zero 0.372, 1.9% below).

**The paper's metric.** Each accuracy claim is read on the metric the paper states it on (``PAPER_METRIC``, declared
in its function): finetuning for Tables 1, 2, 3 (its first four claims) and A.1, the linear probe for Table 3's
last. Where a scale does not measure that metric (no finetuning at the cpu scale: a few epochs of it measure how fast
a network trains more than what it learned), the claim is *not testable at this scale*, and the linear probe's
comparison is shown beside it, not decided on.

**The pretraining gate** (``pretraining_helps``) reads the linear probe: below the paper scale a converged,
regularisation-tuned logistic regression on the frozen features (``train.probe``). Raw pixels are a reference row,
not a gate: the claims compare pretrainings with one another and with random initialisation through the same
encoder (a D-dimensional [CLS] feature), and the random-init encoder of the same shape is the reference that shares
that bottleneck; the pixels (784 values on the digits) do not. Where every encoder is below the pixels the pages
say so.

**Readings of a table.** A claim that no sentence of the paper states, but its table's numbers do, says so in
``source`` (TA1-below-full-data).
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
LOCAL_FRACTION = 0.9
AKIN_FRACTION = 0.25
NULL_MARGIN = 0.1
METRIC_NAMES = {"lp": "linear probe", "knn": "kNN", "ft": "finetuning"}
# why a metric can be missing at a scale (the claim is then not testable at this scale)
UNMEASURED_WHY = {
    "ft": "finetuning, the paper's metric for this claim, is not trained at this scale: a few epochs of it on a few "
          "thousand images measure how fast a network trains more than what it learned",
    "lp": "the linear probe, the paper's metric for this claim, was not measured",
}

Values = Sequence[float]
UNFORMED_WHY = "the precondition is unmet, so the comparison says nothing about the claim"


def formed_entropy(n_keys: int, key_fraction: float = FORMED_KEY_FRACTION) -> float:
    """The largest attention entropy, as a fraction of its maximum ln n, at which attention counts as formed:
    exp(entropy) <= key_fraction * n  <=>  fraction <= 1 + ln(key_fraction) / ln(n)."""
    if n_keys < 2:
        raise ValueError(f"attention over {n_keys} key(s) has no entropy to speak of")
    return 1.0 + math.log(key_fraction) / math.log(n_keys)


# ---------------------------------------------------------------------------------------------------------------
# the record
@dataclass
class Claim:
    """One claim of the paper, in the paper's words, with what this run found.

    verdict: one of ``VERDICTS``; why: the reason for it in one sentence; evidence: each comparison with its
    interval; reading: how the claim is measured (and any threshold); precondition: what must have formed for the
    claim to be testable, and whether it did ("none" when nothing need); controls: the null controls' values;
    source: "" for a sentence of the paper, else where the claim comes from (a reading of a table's numbers)."""

    id: str
    text: str
    verdict: str
    evidence: str
    why: str = ""
    reading: str = ""
    precondition: str = "none"
    controls: str = ""
    source: str = ""

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
    """One configuration's accuracies per seed, by metric (the arms of a comparison share the seeds): values
    {"lp": linear probe, "knn": kNN on the probe's features, "ft": finetuning}, a metric the scale does not measure
    absent or empty; correct: {metric: seed 0's per-image hits}, where kept, for McNemar's test."""

    name: str
    values: dict
    correct: dict = field(default_factory=dict)

    def of(self, metric: str) -> list[float]:
        """The arm's accuracies on ``metric``, per seed ([] where the scale does not measure it)."""
        return [float(v) for v in (self.values.get(metric) or [])]


# ---------------------------------------------------------------------------------------------------------------
# the judge
def fmt(x: float, d: int = 3) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{d}f}"


def mean_text(values, d: int | None = None) -> str:
    v = np.asarray(values, dtype=float).reshape(-1)
    if d is None:
        d = stats.decimals(float(v.std(ddof=1)) if len(v) > 1 else float("nan"))
    return f"{v.mean():.{d}f}" + (f" (per replicate {', '.join(f'{x:.{d}f}' for x in v)})" if len(v) > 1 else "")


def judge(cid: str, text: str, reading: str, parts: list[Part], side: str = ">", threshold: float = 0.0,
           precondition: Precondition = NO_PRECONDITION, alpha: float = ALPHA, unit: str = "seeds",
           suffix: str = "", source: str = "") -> Claim:
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
            shown = fmt(float(c.effect)) if np.ndim(c.effect) == 0 else mean_text(c.effect)
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
               f"{fmt(iv_hw, stats.decimals(iv_hw))}{suffix} and no smaller")
        if not math.isfinite(iv_hw):
            why = f"one replicate: no interval ({unit} are needed to measure the noise)"
    if verdict == HOLDS and reproduced:
        verdict = UNTESTABLE
        why = (f"the effect does not beat the null control(s) {', '.join(sorted(set(reproduced)))} by a paired "
               "interval: the measurement cannot tell the mechanism from its absence")
    if precondition.met is False:
        verdict, why = UNFORMED, UNFORMED_WHY
    return Claim(cid, text, verdict, "; ".join(evidence), why, reading, precondition.text, "; ".join(controls),
                 source)


def unformed_or(cid, text, reading, precondition: Precondition, missing: str | None, build) -> Claim:
    """A claim whose measurement needs something the run lacks (a deeper decoder, say): precondition unmet."""
    if missing:
        pre = Precondition(False, f"{missing}" + ("" if precondition.met is None else f"; {precondition.text}"))
        return Claim(cid, text, UNFORMED, "not measured", UNFORMED_WHY, reading, pre.text, "")
    return build()


# ---------------------------------------------------------------------------------------------------------------
# preconditions
def _per_replicate(x) -> np.ndarray:
    return np.atleast_2d(np.asarray(x, dtype=float))


def attention_formed(what: str, trained, init, n_keys: int, layers: Sequence[int] | None = None,
                     unit: str = "seeds") -> Precondition:
    """Did attention form? trained, init: attention entropy as a fraction of its maximum, (replicates, layers)
    (``analysis.attention_entropy_curves`` averaged over heads), for the trained model and the random-init model
    of the same seed. Formed in a layer when, in every replicate, its entropy is at most ``formed_entropy(n_keys)``
    and below that replicate's random-init model's. layers: 0-based layers that must have formed (default: all)."""
    t, i = _per_replicate(trained), _per_replicate(init)
    if t.shape != i.shape:
        raise ValueError(f"trained and init entropies differ in shape: {t.shape} vs {i.shape}")
    limit = formed_entropy(n_keys)
    layers = list(range(t.shape[1])) if layers is None else list(layers)
    bad, rows = [], []
    for l in layers:
        ok = bool(np.all(t[:, l] <= limit) and np.all(t[:, l] < i[:, l]))
        if not ok:
            bad.append(l + 1)
        per = ", ".join(f"{x:.3f}" for x in t[:, l])
        rows.append(f"layer {l + 1} {per} (random init {i[:, l].mean():.3f})")
    head = (f"{what} attention formed in every one of the {len(t)} {unit} (entropy at most {limit:.2f} of its "
            f"maximum, at most half of the {n_keys} keys effectively attended, and below its random-init twin's)")
    outcome = "yes" if not bad else f"no: layer(s) {', '.join(map(str, bad))} too flat, or as flat as at random init"
    return Precondition(not bad, f"{head}: {outcome}; entropy per {unit[:-1]}: {'; '.join(rows)}")


def attention_local(what: str, distance, distance_init, uniform: float, fraction: float = LOCAL_FRACTION,
                    unit: str = "seeds") -> Precondition:
    """Is attention local? distance, distance_init: mean attention distance (pixels), (replicates, layers) or
    (replicates,), of the trained model and its random-init twin; uniform: uniform attention's distance from the
    same queries. Local when, in every replicate, the mean over layers is at most ``fraction`` of ``uniform`` and
    below the twin's. Concentrated attention (``attention_formed``) can still reach as far as uniform attention."""
    d = _per_replicate(distance).mean(1) if np.ndim(distance) > 1 else np.asarray(distance, dtype=float)
    d0 = _per_replicate(distance_init).mean(1) if np.ndim(distance_init) > 1 else np.asarray(distance_init,
                                                                                            dtype=float)
    if d.shape != d0.shape:
        raise ValueError(f"trained and init distances differ in shape: {d.shape} vs {d0.shape}")
    if not uniform > 0:
        raise ValueError(f"uniform attention's distance must be positive, got {uniform}")
    limit = fraction * uniform
    ok = bool(np.all(d <= limit) and np.all(d < d0))
    per = ", ".join(f"{x:.2f}" for x in d)
    return Precondition(ok, f"{what} attention local in every one of the {len(d)} {unit} (mean distance at most "
                            f"{fraction:g} of uniform attention's {uniform:.2f} px, i.e. {limit:.2f} px, and below "
                            f"its random-init twin's): {'yes' if ok else 'no'}; distance per {unit[:-1]} {per} px "
                            f"(random init {', '.join(f'{x:.2f}' for x in d0)} px)")


def reference_beats_null(what: str, reference, null, margin: float = NULL_MARGIN, alpha: float = ALPHA,
                         unit: str = "seeds") -> Precondition:
    """A null control can only discriminate where the reference beats it materially. reference, null: a loss per
    replicate (lower is better). Met when the paired interval of the reference's relative gain,
    1 - reference / null, lies above ``margin``."""
    r, z = np.asarray(reference, dtype=float), np.asarray(null, dtype=float)
    gain = 1.0 - r / z
    iv = stats.compare(gain, alpha=alpha, unit=unit)
    ok = stats.decide(iv, ">", margin) == HOLDS
    return Precondition(ok, f"{what} beats the null by at least {margin:g} of its loss (relative gain "
                            f"1 - reference / null above {margin:g}): {'yes' if ok else 'no'}, "
                            f"{iv.text()}")


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
    ivs = [stats.compare(t[:, l], i[:, l], alpha=alpha, unit=unit) for l in range(t.shape[1])]
    bad = [l + 1 for l, iv in enumerate(ivs) if stats.decide(iv, "<") != HOLDS]
    outcome = "yes" if not bad else f"no: layer(s) {', '.join(map(str, bad))} as flat as at random init"
    # how close such a layer came: its entropy per replicate beside its twin's, and the interval that decided (the
    # two that came closest, where more missed)
    shown = sorted(sorted(bad, key=lambda l: ivs[l - 1].hi)[:2])
    close = "".join(f"; layer {l}: {', '.join(f'{x:.3f}' for x in t[:, l - 1])} (random init "
                    f"{', '.join(f'{x:.3f}' for x in i[:, l - 1])}), difference {ivs[l - 1].text()}" for l in shown)
    if len(bad) > len(shown):
        close += f"; {len(bad) - len(shown)} more such layer(s)"
    return Precondition(not bad, f"{what} attention moved from initialisation (entropy below the random-init "
                                 f"model's in every layer): {outcome}{close}; entropy {mean_text(t.mean(1), 3)} "
                                 f"(random init {mean_text(i.mean(1), 3)})")


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
    the MAE baseline beats random initialisation on the linear probe (interval above 0), below the paper scale a
    converged, tuned logistic regression on the frozen features (``train.probe``)."""
    iv = stats.compare(mae.of("lp"), random.of("lp"), alpha=alpha)
    ok = stats.decide(iv) == HOLDS
    return Precondition(ok, f"pretraining helps at this scale ({mae.name} above {random.name} on the linear "
                            f"probe): {'yes' if ok else 'no'}, {iv.text(suffix=' pt')}")


def decoder_deep_enough(depth: int, need: int) -> str | None:
    """None, or why a decoder of ``depth`` layers cannot show a claim about ``need`` layers."""
    return None if depth >= need else f"the decoder has {depth} layer(s); the claim needs at least {need}"


# ---------------------------------------------------------------------------------------------------------------
# accuracy parts
def _accuracy_part(a: Arm, b: Arm, metric: str) -> Part:
    """a - b on ``metric``, with the other measured metrics of the same pair as notes (not decided on)."""
    notes = []
    for other in ("lp", "knn", "ft"):
        if other != metric and a.of(other) and b.of(other) and len(a.of(other)) == len(b.of(other)):
            notes.append(f"{METRIC_NAMES[other]} {stats.compare(a.of(other), b.of(other)).text(suffix=' pt')}")
    ca, cb = a.correct.get(metric), b.correct.get(metric)
    if ca is not None and cb is not None:
        mc = stats.mcnemar(ca, cb)
        notes.append(f"McNemar on seed 0's images {mc.text(suffix=' pt')}, p = {mc.p:.2g}")
    return Part(f"{a.name} minus {b.name} ({METRIC_NAMES[metric]})", a.of(metric), b.of(metric), notes=notes)


def midpoint(x: Arm, y: Arm, name: str) -> Arm:
    """The per-seed midpoint of two arms, on every metric both measure."""
    both = {m: ((np.asarray(x.of(m)) + np.asarray(y.of(m))) / 2).tolist() for m in x.values
            if x.of(m) and len(x.of(m)) == len(y.of(m))}
    return Arm(name, both)


def unmeasured(arms: Sequence[Arm], metric: str) -> str | None:
    """None, or why the arms lack ``metric`` at this scale."""
    return None if all(a.of(metric) for a in arms) else UNMEASURED_WHY[metric]


def not_measured(cid, text, reading, why: str, pairs, gate: Precondition, source: str = "") -> Claim:
    """An accuracy claim whose metric this scale does not measure: not testable at this scale, with the linear
    probe's comparison of the same pairs shown beside it (not decided on)."""
    shown = [f"{a.name} minus {b.name}: {stats.compare(a.of('lp'), b.of('lp')).text(suffix=' pt')}"
             for a, b in pairs if a.of("lp") and len(a.of("lp")) == len(b.of("lp"))]
    evidence = ("not measured" + (f"; the linear probe, shown and not decided on: {'; '.join(shown)}" if shown
                                  else ""))
    return Claim(cid, text, UNTESTABLE, evidence, why, reading, gate.text, "", source)


def accuracy_claim(cid, text, reading, pairs: list[tuple[Arm, Arm]], gate: Precondition, metric: str = "ft",
               side: str = ">", source: str = "") -> Claim:
    """A directional accuracy claim on ``metric``, the paper's for it, paired over seeds."""
    reading = reading + f" Read on the {METRIC_NAMES[metric]} top-1 accuracy (the paper's metric), paired over seeds."
    why = unmeasured([x for p in pairs for x in p], metric)
    if why:
        return not_measured(cid, text, reading, why, pairs, gate, source)
    parts = [_accuracy_part(a, b, metric) for a, b in pairs]
    return judge(cid, text, reading, parts, side, precondition=gate, suffix=" pt", source=source)


def within_gain(cid, text, reading, pairs: list[tuple[Arm, Arm]], top: Arm, random: Arm, gate: Precondition,
                 metric: str = "ft", fraction: float = AKIN_FRACTION) -> Claim:
    """An equivalence claim ("akin", "similar"): each pair's difference on ``metric`` within +-``fraction`` of the
    gain of pretraining (``top`` over ``random``, mean over seeds), by TOST paired over seeds."""
    reading = (reading + f" Equal within +-{fraction:g} of the gain of {top.name} over {random.name} (TOST, paired "
               f"over seeds) on the {METRIC_NAMES[metric]} top-1 accuracy (the paper's metric).")
    why = unmeasured([top, random] + [x for p in pairs for x in p], metric)
    if why:
        return not_measured(cid, text, reading, why, pairs, gate)
    gain = float(np.mean(np.asarray(top.of(metric)) - np.asarray(random.of(metric))))
    if gate.met is False or not gain > 0:
        pre = gate if gate.met is False else Precondition(False, f"{top.name} gains {gain:.2f} pt over {random.name}"
                                                                 f" on the {METRIC_NAMES[metric]}")
        return Claim(cid, text, UNFORMED, f"gain of {top.name} over {random.name} {gain:.2f} pt", UNFORMED_WHY,
                     reading, pre.text, "")
    margin = fraction * gain
    verdicts, evidence = [], []
    for a, b in pairs:
        eq = stats.equivalent(a.of(metric), b.of(metric), margin, alpha=ALPHA / len(pairs))
        verdicts.append(stats.decide_equivalence(eq))
        evidence.append(f"{a.name} minus {b.name}: {eq.text(suffix=' pt')}")
    verdict = stats.combine(verdicts)
    why = {HOLDS: "every difference is shown to lie within the margin",
           FAILS: "a difference lies clearly outside the margin",
           UNTESTABLE: "an interval reaches beyond the margin without lying outside it"}[verdict]
    return Claim(cid, text, verdict, "; ".join(evidence), why, reading, gate.text,
                 f"random init ({random.name}): {mean_text(random.of(metric), 1)} pt; the margin, {fraction:g} of "
                 f"the gain of {top.name}: {margin:.2f} pt")


__all__ = ["Claim", "Precondition", "Part", "Control", "Arm", "NO_PRECONDITION", "ALPHA", "FORMED_KEY_FRACTION",
           "LOCAL_FRACTION", "AKIN_FRACTION", "NULL_MARGIN", "METRIC_NAMES", "UNMEASURED_WHY", "UNFORMED_WHY",
           "formed_entropy", "attention_formed", "attention_local", "attention_moved", "task_learned",
           "f5_comparison_models", "reference_beats_null", "pretraining_helps", "decoder_deep_enough", "all_of",
           "judge", "unformed_or", "unmeasured", "accuracy_claim", "within_gain", "not_measured", "midpoint", "mean_text", "fmt",
           "HOLDS", "FAILS", "UNTESTABLE", "UNFORMED", "VERDICTS"]
