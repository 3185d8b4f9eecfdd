"""The statistics behind the book's verdicts: intervals over seeds (or images), equivalence, McNemar, and the rule.

Every verdict of the book compares measurements that were repeated: over seeds (each seed a whole pretraining
and evaluation, the arms of a comparison sharing the seed, hence their initialisation, masks and data order) or,
for a fixed pair of released checkpoints, over images. This module turns such repeats into intervals:

- ``compare(a, b, paired=True)``: the mean difference a - b with its two-sided (1 - alpha) t-interval, paired
  over seeds (a[i] and b[i] share seed i) or Welch's when unpaired, and the two-sided p-value. ``b`` may be a
  number (a one-sample interval against it).
- ``equivalent(a, b, margin)``: two one-sided tests (TOST) for the paper's "akin" and "comparable": the
  difference is within +-margin when the (1 - 2 alpha) interval lies inside it.
- ``mcnemar(correct_a, correct_b)``: two classifiers scored on the same images; the exact binomial test on the
  discordant images and an interval for the accuracy difference (percentage points).

**The rule** (``decide``): a directional claim *holds* when the interval lies wholly on the claimed side of the
threshold, *does not hold* when it lies wholly on the other side, and is otherwise *not testable at this scale*;
the page then prints the interval and its half-width, the smallest difference the scale could have resolved.
Under no true difference a decisive verdict comes out at most ``alpha`` of the time (``alpha / 2`` each way);
``tests/test_stats.py`` checks this by simulation. A claim made of several comparisons tests each at
``alpha / k`` (Bonferroni), so the claim as a whole keeps the same bound.

With one replicate there is no interval: the bounds are infinite and every verdict is "not testable".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

ALPHA = 0.05  # two-sided level of every interval in the book

HOLDS = "holds"
FAILS = "does not hold"
UNTESTABLE = "not testable at this scale"
UNFORMED = "not testable: precondition unmet"
VERDICTS = (HOLDS, FAILS, UNTESTABLE, UNFORMED)
SIDES = (">", "<")


def _st():
    """scipy.stats, imported where an interval is first computed: the training workers and the command lines load
    this module through the pages and compute none, and the import costs each process 0.6 s."""
    from scipy import stats  # lazy: 0.6 s of every process that imports the pages, most of which never use it

    return stats


@dataclass(frozen=True)
class Interval:
    """An estimated difference (or mean) with its two-sided (1 - alpha) interval.

    estimate: a - b (mean over replicates); lo, hi: the interval; p: two-sided p-value of "no difference"
    (nan when it cannot be computed); n: replicates (pairs, or the smaller group); df: degrees of freedom;
    method: "paired t", "Welch t", "one-sample t", "McNemar", "TOST"; unit: what was replicated ("seeds",
    "images").
    """

    estimate: float
    lo: float
    hi: float
    p: float
    n: int
    df: float
    alpha: float
    method: str
    unit: str = "seeds"

    @property
    def half_width(self) -> float:
        """Half the interval's width: the smallest difference these replicates could have resolved."""
        return (self.hi - self.lo) / 2

    def text(self, digits: int | None = None, scale: float = 1.0, suffix: str = "") -> str:
        """'+2.1 [+0.5, +3.7] (paired t over 3 seeds, 95%)'; digits default to what the interval supports."""
        d = decimals(self.half_width * scale) if digits is None else digits
        f = lambda x: "±inf" if not math.isfinite(x) else f"{x * scale:+.{d}f}"  # noqa: E731
        level = round(100 * (1 - self.alpha), 2)
        level = int(level) if float(level).is_integer() else level
        return (f"{f(self.estimate)}{suffix} [{f(self.lo)}, {f(self.hi)}] ({self.method} over {self.n} "
                f"{self.unit}, {level}%)")


def decimals(half_width: float, significant: int = 2) -> int:
    """Decimals that keep ``significant`` digits of an interval's half-width (0 to 4; 2 when it is not finite)."""
    if not math.isfinite(half_width) or half_width <= 0:
        return 2
    return int(min(4, max(0, significant - 1 - math.floor(math.log10(half_width)))))


def _values(x) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"measurements must be finite numbers, got {a.tolist()}")
    return a


def _t_interval(mean: float, se: float, df: float, alpha: float) -> tuple[float, float, float]:
    """(lo, hi, p) of a t statistic; a zero standard error gives the point itself and p 0 (or 1 at zero)."""
    if not (df > 0) or not math.isfinite(se):
        return -math.inf, math.inf, math.nan
    if se == 0:
        return mean, mean, (1.0 if mean == 0 else 0.0)
    q = float(_st().t.ppf(1 - alpha / 2, df))
    p = float(2 * _st().t.sf(abs(mean) / se, df))
    return mean - q * se, mean + q * se, p


def compare(a: Sequence[float], b: Sequence[float] | float = 0.0, paired: bool = True, alpha: float = ALPHA,
            unit: str = "seeds") -> Interval:
    """The mean difference a - b, its two-sided (1 - alpha) t-interval and p-value.

    paired: a[i] and b[i] come from the same seed (the same initialisation, masks and data order); the interval
    is over the n differences, with n - 1 degrees of freedom. Otherwise Welch's interval, with the
    Welch-Satterthwaite degrees of freedom. A number ``b`` gives a one-sample interval of a against it.
    """
    a = _values(a)
    if np.ndim(b) == 0:
        d = a - float(b)
        n = len(d)
        if n == 0:
            raise ValueError("no measurements to compare")
        se = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf
        lo, hi, p = _t_interval(float(d.mean()), se, n - 1, alpha)
        return Interval(float(d.mean()), lo, hi, p, n, n - 1, alpha, "one-sample t", unit)
    b = _values(b)
    if paired:
        if len(a) != len(b):
            raise ValueError(f"paired comparison needs as many values on each side, got {len(a)} and {len(b)}")
        iv = compare(a - b, 0.0, alpha=alpha, unit=unit)
        return Interval(iv.estimate, iv.lo, iv.hi, iv.p, iv.n, iv.df, alpha, "paired t", unit)
    if len(a) == 0 or len(b) == 0:
        raise ValueError("no measurements to compare")
    diff = float(a.mean() - b.mean())
    va = a.var(ddof=1) / len(a) if len(a) > 1 else math.inf
    vb = b.var(ddof=1) / len(b) if len(b) > 1 else math.inf
    se = math.sqrt(va + vb)
    if math.isfinite(se) and se > 0:
        df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    else:
        df = float(min(len(a), len(b)) - 1)
    lo, hi, p = _t_interval(diff, se, df, alpha)
    return Interval(diff, lo, hi, p, min(len(a), len(b)), df, alpha, "Welch t", unit)


@dataclass(frozen=True)
class Equivalence:
    """TOST: ``interval`` is the (1 - 2 alpha) interval of a - b; ``p`` the larger of the two one-sided
    p-values; ``equivalent`` when the interval lies inside (-margin, +margin); ``different`` when the (1 - alpha)
    interval lies wholly outside it."""

    interval: Interval
    margin: float
    p: float
    equivalent: bool
    different: bool

    def text(self, scale: float = 1.0, suffix: str = "") -> str:
        d = decimals(self.interval.half_width * scale)
        return f"{self.interval.text(d, scale, suffix)}, margin ±{self.margin * scale:.{d}f}{suffix}"


def equivalent(a: Sequence[float], b: Sequence[float] | float, margin: float, alpha: float = ALPHA,
               paired: bool = True, unit: str = "seeds") -> Equivalence:
    """Two one-sided tests of |a - b| < margin at level alpha: equivalent when the (1 - 2 alpha) interval of
    the difference lies inside (-margin, margin)."""
    if not margin > 0:
        raise ValueError(f"the equivalence margin must be positive, got {margin}")
    iv = compare(a, b, paired=paired, alpha=2 * alpha, unit=unit)
    wide = compare(a, b, paired=paired, alpha=alpha, unit=unit)
    t = _st().t
    se = (iv.hi - iv.lo) / (2 * float(t.ppf(1 - alpha, iv.df))) if iv.df > 0 and math.isfinite(iv.hi) else math.inf
    if se == 0:
        p = 0.0 if abs(iv.estimate) < margin else 1.0
    elif math.isfinite(se):
        p = float(max(t.sf((iv.estimate + margin) / se, iv.df), t.sf((margin - iv.estimate) / se, iv.df)))
    else:
        p = math.nan
    tost = Interval(iv.estimate, iv.lo, iv.hi, p, iv.n, iv.df, 2 * alpha, "TOST", unit)
    return Equivalence(tost, margin, p, bool(-margin < iv.lo and iv.hi < margin),
                       bool(wide.lo > margin or wide.hi < -margin))


def mcnemar(correct_a: Sequence[bool], correct_b: Sequence[bool], alpha: float = ALPHA) -> Interval:
    """Two classifiers on the same images: the accuracy difference a - b in percentage points, its Wald interval
    for paired proportions, and the exact two-sided McNemar p-value (binomial on the discordant images)."""
    a = np.asarray(correct_a, dtype=bool).reshape(-1)
    b = np.asarray(correct_b, dtype=bool).reshape(-1)
    if len(a) != len(b) or len(a) == 0:
        raise ValueError(f"McNemar needs the same images on both sides, got {len(a)} and {len(b)}")
    n = len(a)
    n10, n01 = int((a & ~b).sum()), int((~a & b).sum())
    diff = (n10 - n01) / n
    var = max(n10 + n01 - (n10 - n01) ** 2 / n, 0.0) / n**2
    z = float(_st().norm.ppf(1 - alpha / 2))
    p = 1.0 if n10 + n01 == 0 else float(min(1.0, 2 * _st().binom.cdf(min(n10, n01), n10 + n01, 0.5)))
    se = math.sqrt(var)
    return Interval(100 * diff, 100 * (diff - z * se), 100 * (diff + z * se), p, n, math.inf, alpha, "McNemar",
                    "images")


def decide(iv: Interval, side: str = ">", threshold: float = 0.0) -> str:
    """The rule: HOLDS when the interval lies wholly on the claimed side of the threshold (``side`` ">" means
    the difference is claimed to exceed it), FAILS when it lies wholly on the other side, else UNTESTABLE."""
    if side not in SIDES:
        raise ValueError(f"side must be '>' or '<', got {side!r}")
    above, below = iv.lo > threshold, iv.hi < threshold
    if side == "<":
        above, below = below, above
    return HOLDS if above else FAILS if below else UNTESTABLE


def decide_equivalence(eq: Equivalence) -> str:
    """HOLDS when TOST shows equivalence within the margin, FAILS when the difference lies clearly outside it."""
    return HOLDS if eq.equivalent else FAILS if eq.different else UNTESTABLE


def combine(verdicts: Sequence[str]) -> str:
    """A claim made of several parts, each tested at alpha / k: it holds when every part holds, does not hold
    when any part does not, and is otherwise not testable."""
    if not verdicts:
        raise ValueError("no parts to combine")
    if all(v == HOLDS for v in verdicts):
        return HOLDS
    if any(v == FAILS for v in verdicts):
        return FAILS
    return UNTESTABLE


def simulated_rates(n: int, effect: float, draws: int, seed: int = 0, alpha: float = ALPHA) -> dict[str, float]:
    """How often the rule (``compare`` paired, then ``decide``) says each verdict, by simulation: ``draws``
    experiments of ``n`` paired seeds, each arm a shared seed effect (N(0, 1)) plus its own noise (N(0, 1/2)), the
    first arm shifted by ``effect`` (in standard deviations of one seed's difference, which is 1). Vectorised over
    the draws; the same intervals as ``compare``, tested against it. -> {HOLDS, FAILS, UNTESTABLE: rate}."""
    if n < 2:
        return {HOLDS: 0.0, FAILS: 0.0, UNTESTABLE: 1.0}
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=(draws, n))
    a = effect + shared + rng.normal(size=(draws, n)) / math.sqrt(2)
    b = shared + rng.normal(size=(draws, n)) / math.sqrt(2)
    d = a - b
    mean, se = d.mean(1), d.std(1, ddof=1) / math.sqrt(n)
    q = float(_st().t.ppf(1 - alpha / 2, n - 1))
    lo, hi = mean - q * se, mean + q * se
    holds, fails = float((lo > 0).mean()), float((hi < 0).mean())
    return {HOLDS: holds, FAILS: fails, UNTESTABLE: 1.0 - holds - fails}


def power(effect: float, n: int, alpha: float = ALPHA) -> float:
    """The chance that a paired comparison over ``n`` seeds says "holds" when the true mean difference is
    ``effect`` standard deviations of one seed's difference (noncentral t; 0 for n < 2)."""
    if n < 2:
        return 0.0
    df = n - 1
    q = float(_st().t.ppf(1 - alpha / 2, df))
    return float(_st().nct.sf(q, df, effect * math.sqrt(n)))


def resolvable(n: int, alpha: float = ALPHA, target: float = 0.8) -> float:
    """The true effect, in standard deviations of one seed's difference, that a paired comparison over ``n``
    seeds detects ("holds") with probability ``target`` (inf for n < 2)."""
    if n < 2:
        return math.inf
    lo, hi = 0.0, 1.0
    while power(hi, n, alpha) < target:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if power(mid, n, alpha) < target else (lo, mid)
    return hi


def fisher_z_mean(r: Sequence[float], alpha: float = ALPHA) -> Interval:
    """The mean of per-seed correlations on Fisher's z scale, with its t-interval over seeds, mapped back to r
    (estimate, lo, hi are correlations). |r| = 1 is clipped to 0.9999."""
    z = np.arctanh(np.clip(_values(r), -0.9999, 0.9999))
    iv = compare(z, 0.0, alpha=alpha)
    back = lambda x: float(np.tanh(x)) if math.isfinite(x) else math.copysign(1.0, x)  # noqa: E731
    return Interval(back(iv.estimate), back(iv.lo), back(iv.hi), iv.p, iv.n, iv.df, alpha,
                    "t on Fisher z", iv.unit)


def slope(x: Sequence[float], y: Sequence[float]) -> float:
    """The least-squares slope of y on x."""
    x, y = _values(x), _values(y)
    if len(x) != len(y) or len(x) < 2 or np.ptp(x) == 0:
        raise ValueError("a slope needs two or more distinct x values, one y each")
    xc = x - x.mean()
    return float(xc @ (y - y.mean()) / (xc @ xc))


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's correlation of two sequences (0 when one of them is constant)."""
    x, y = _values(x), _values(y)
    if len(x) != len(y) or len(x) < 2:
        raise ValueError("a correlation needs two sequences of equal length >= 2")
    xc, yc = x - x.mean(), y - y.mean()
    den = math.sqrt(float(xc @ xc) * float(yc @ yc))
    return 0.0 if den == 0 else float(xc @ yc / den)


def prose_number(x: float) -> float:
    """A measured number as the prose shows it: three significant digits (14.3 pixels, 0.449 of the maximum, 93.3%),
    one decimal at 100 and above (238.1 s). A single seed's or image sample's noise is larger than that, so more
    digits would be false precision; the tables keep theirs, with the interval beside them."""
    if not math.isfinite(x) or x == 0:
        return x
    if abs(x) >= 100:
        return round(x, 1)
    return round(x, 2 - int(math.floor(math.log10(abs(x)))))
