"""The statistics of the verdicts: exact against scipy, and the error rates of the rule by simulation."""

import math

import numpy as np
import pytest
from scipy import stats as st

from lcmae_core import stats

H, F, U = stats.HOLDS, stats.FAILS, stats.UNTESTABLE
DRAWS = 4000
# a rate estimated from DRAWS draws sits within 3 standard errors of its true value nearly always
SLACK = 3 * math.sqrt(0.05 * 0.95 / DRAWS)


def test_paired_interval_matches_scipy():
    a, b = [71.0, 64.5, 69.0, 66.0], [66.0, 62.0, 65.5, 60.0]
    iv = stats.compare(a, b, paired=True)
    ref = st.ttest_rel(a, b)
    ci = ref.confidence_interval(0.95)
    assert iv.method == "paired t" and iv.n == 4 and iv.df == 3
    assert iv.estimate == pytest.approx(np.mean(np.subtract(a, b)))
    assert (iv.lo, iv.hi, iv.p) == pytest.approx((ci.low, ci.high, ref.pvalue))


def test_welch_interval_matches_scipy():
    a, b = [71.0, 64.5, 69.0], [66.0, 62.0, 65.5, 60.0, 61.0]
    iv = stats.compare(a, b, paired=False)
    ref = st.ttest_ind(a, b, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert iv.method == "Welch t" and iv.n == 3
    assert (iv.lo, iv.hi, iv.p) == pytest.approx((ci.low, ci.high, ref.pvalue))


def test_one_sample_against_a_number_and_text():
    iv = stats.compare([0.2, 0.3, 0.25], 0.1)
    ref = st.ttest_1samp([0.2, 0.3, 0.25], 0.1)
    assert iv.method == "one-sample t" and iv.p == pytest.approx(ref.pvalue)
    assert iv.text().startswith("+0.15 [") and "over 3 seeds, 95%" in iv.text()
    assert stats.decimals(0.04) == 3 and stats.decimals(4.0) == 1 and stats.decimals(40.0) == 0


def test_one_replicate_has_no_interval_and_decides_nothing():
    iv = stats.compare([70.0], [60.0])
    assert iv.lo == -math.inf and iv.hi == math.inf and math.isnan(iv.p)
    assert stats.decide(iv) == U and "±inf" in iv.text()
    assert stats.decide(stats.compare([70.0], [60.0], paired=False)) == U


def test_zero_spread_is_the_point_itself():
    assert stats.decide(stats.compare([2.0, 2.0, 2.0], 0.0)) == H
    assert stats.decide(stats.compare([0.0, 0.0], 0.0)) == U


@pytest.mark.parametrize("values, side, threshold, expected", [
    ([3.0, 4.0, 5.0], ">", 0.0, H),
    ([3.0, 4.0, 5.0], "<", 0.0, F),
    ([-3.0, -4.0, -5.0], ">", 0.0, F),
    ([-3.0, -4.0, -5.0], "<", 0.0, H),
    ([-1.0, 2.0, 0.5], ">", 0.0, U),
    ([3.0, 4.0, 5.0], ">", 10.0, F),  # wholly below a threshold above it
    ([0.05, 0.04, 0.06], "<", 0.1, H),
])
def test_decide_every_branch(values, side, threshold, expected):
    assert stats.decide(stats.compare(values, 0.0), side, threshold) == expected


def test_decide_rejects_an_unknown_side_and_bad_input():
    with pytest.raises(ValueError, match="side"):
        stats.decide(stats.compare([1.0, 2.0]), "=")
    with pytest.raises(ValueError, match="finite"):
        stats.compare([1.0, float("nan")])
    with pytest.raises(ValueError, match="as many"):
        stats.compare([1.0, 2.0], [1.0])


def test_combine():
    assert stats.combine([H, H]) == H
    assert stats.combine([H, F]) == F
    assert stats.combine([H, U]) == U
    assert stats.combine([U, F]) == F
    with pytest.raises(ValueError):
        stats.combine([])


def test_equivalence_branches():
    eq = stats.equivalent([0.1, -0.1, 0.05, 0.0], [0.0] * 4, margin=1.0)
    assert eq.equivalent and not eq.different and stats.decide_equivalence(eq) == H and eq.p < 0.05
    far = stats.equivalent([5.0, 5.5, 4.8], [0.0] * 3, margin=1.0)
    assert far.different and not far.equivalent and stats.decide_equivalence(far) == F
    noisy = stats.equivalent([2.0, -2.0, 0.5], [0.0] * 3, margin=1.0)
    assert stats.decide_equivalence(noisy) == U
    assert "margin ±1" in eq.text()
    with pytest.raises(ValueError, match="margin"):
        stats.equivalent([1.0], [1.0], margin=0.0)


def test_mcnemar_matches_the_exact_binomial():
    rng = np.random.default_rng(0)
    a = rng.random(500) < 0.8
    b = rng.random(500) < 0.7
    iv = stats.mcnemar(a, b)
    n10, n01 = int((a & ~b).sum()), int((~a & b).sum())
    assert iv.p == pytest.approx(st.binomtest(n10, n10 + n01, 0.5).pvalue)
    assert iv.estimate == pytest.approx(100 * (a.mean() - b.mean())) and iv.unit == "images"
    assert iv.lo < iv.estimate < iv.hi
    assert stats.mcnemar(a, a).p == 1.0 and stats.mcnemar(a, a).estimate == 0
    with pytest.raises(ValueError, match="same images"):
        stats.mcnemar(a, b[:10])


# ------------------------------------------------------------------------------------------------------------
# error rates by simulation


def _decisive_rate(draw, decide=stats.decide) -> float:
    return float(np.mean([decide(draw()) != U for _ in range(DRAWS)]))


@pytest.mark.parametrize("n", [2, 3, 5])
def test_no_true_difference_gives_at_most_alpha_decisive_verdicts_paired(n):
    rng = np.random.default_rng(n)
    shared = lambda: rng.normal(size=n)  # noqa: E731 - the seed's own effect, common to both arms
    def draw():
        s = shared()
        return stats.compare(s + rng.normal(size=n), s + rng.normal(size=n), paired=True)
    assert _decisive_rate(draw) <= 0.05 + SLACK


def test_no_true_difference_gives_at_most_alpha_decisive_verdicts_welch():
    rng = np.random.default_rng(1)
    draw = lambda: stats.compare(rng.normal(size=3), rng.normal(scale=2.0, size=4), paired=False)  # noqa: E731
    assert _decisive_rate(draw) <= 0.05 + SLACK


def test_no_true_difference_gives_at_most_alpha_decisive_verdicts_mcnemar():
    rng = np.random.default_rng(2)
    draw = lambda: stats.mcnemar(rng.random(1000) < 0.8, rng.random(1000) < 0.8)  # noqa: E731
    assert _decisive_rate(draw) <= 0.05 + SLACK


def test_equivalence_at_the_margin_is_declared_at_most_alpha_of_the_time():
    rng = np.random.default_rng(3)
    rate = np.mean([stats.equivalent(1.0 + rng.normal(size=4), 0.0, margin=1.0).equivalent for _ in range(DRAWS)])
    assert rate <= 0.05 + SLACK


def test_multi_part_claims_keep_alpha_with_bonferroni():
    rng = np.random.default_rng(4)
    k = 3

    def draw():
        return stats.combine([stats.decide(stats.compare(rng.normal(size=3), 0.0, alpha=0.05 / k))
                              for _ in range(k)])
    rate = np.mean([draw() != U for _ in range(DRAWS)])
    assert rate <= 0.05 + SLACK


def test_a_true_effect_of_four_standard_deviations_holds_in_most_draws_with_three_seeds():
    rng = np.random.default_rng(5)
    holds = np.mean([stats.decide(stats.compare(4.0 + rng.normal(size=3), 0.0)) == H for _ in range(DRAWS)])
    assert holds > 0.5
    assert holds == pytest.approx(stats.power(4.0, 3), abs=3 * math.sqrt(0.25 / DRAWS))


def test_power_and_resolvable_effect():
    assert stats.power(0.0, 3) == pytest.approx(0.025, abs=1e-6)  # only the claimed side counts
    assert stats.power(4.0, 1) == 0.0 and stats.resolvable(1) == math.inf
    assert stats.power(2.0, 10) > stats.power(2.0, 3)
    d = stats.resolvable(3)
    assert stats.power(d, 3) == pytest.approx(0.8, abs=1e-6) and stats.resolvable(10) < d


def test_fisher_z_mean_slope_and_pearson():
    iv = stats.fisher_z_mean([0.9, 0.95, 0.85])
    assert 0.85 < iv.estimate < 0.95 and iv.lo < iv.estimate < iv.hi <= 1.0
    assert stats.slope([0.3, 0.6, 0.9], [1.0, 2.0, 3.0]) == pytest.approx(1 / 0.3)
    assert stats.pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0) and stats.pearson([1, 2], [5, 5]) == 0.0
    with pytest.raises(ValueError):
        stats.slope([1.0, 1.0], [1.0, 2.0])


def test_simulated_rates_are_the_rules_own_verdicts_vectorised():
    """The appendix's error rates: the same draws through compare + decide one by one give the same counts."""
    n, effect, draws = 3, 1.5, 300
    rates = stats.simulated_rates(n, effect, draws, seed=7)
    rng = np.random.default_rng(7)
    shared = rng.normal(size=(draws, n))
    a = effect + shared + rng.normal(size=(draws, n)) / math.sqrt(2)
    b = shared + rng.normal(size=(draws, n)) / math.sqrt(2)
    one_by_one = [stats.decide(stats.compare(a[i], b[i])) for i in range(draws)]
    for v in (stats.HOLDS, stats.FAILS, stats.UNTESTABLE):
        assert rates[v] == pytest.approx(one_by_one.count(v) / draws)
    assert sum(rates.values()) == pytest.approx(1.0)


def test_simulated_rates_agree_with_alpha_and_the_analytic_power():
    draws = 20000
    se = math.sqrt(0.05 * 0.95 / draws)
    null = stats.simulated_rates(3, 0.0, draws, seed=1)
    assert null[stats.HOLDS] + null[stats.FAILS] <= stats.ALPHA + 4 * se
    strong = stats.simulated_rates(3, 4.0, draws, seed=2)
    assert strong[stats.HOLDS] == pytest.approx(stats.power(4.0, 3), abs=0.02)
    assert stats.simulated_rates(1, 4.0, 10)[stats.UNTESTABLE] == 1.0
