"""benchmarks/stats.py: the intervals cover at 3-5 seeds, the exact tests are exact, the verdict
follows the test. Pure numpy/scipy, a few seconds in all."""
import math

import numpy as np
import pytest
from scipy import stats as sp

from benchmarks import stats

REPS = 4000  # coverage standard error at 95 %: sqrt(.95 * .05 / 4000) = 0.34 %


@pytest.mark.parametrize("n", [3, 4, 5])
def test_student_t_interval_of_a_mean_covers_95_percent_at_3_to_5_seeds(n):
    rng = np.random.default_rng(n)
    true_mean, sd = 100.0, 30.0
    draws = rng.normal(true_mean, sd, size=(REPS, n))
    covered = [lo <= true_mean <= hi for lo, hi in map(stats.mean_interval, draws)]
    assert np.mean(covered) >= 0.93


@pytest.mark.parametrize("n", [3, 4, 5])
def test_paired_interval_covers_95_percent_at_3_to_5_seeds(n):
    rng = np.random.default_rng(10 + n)
    seed_effect = rng.normal(0, 500, size=(REPS, n))  # shared by both sides of a pair: cancels
    a = 1000 + 50 + seed_effect + rng.normal(0, 40, size=(REPS, n))
    b = 1000 + seed_effect + rng.normal(0, 40, size=(REPS, n))
    covered = [lo <= 50.0 <= hi for lo, hi in map(stats.paired_interval, a, b)]
    assert np.mean(covered) >= 0.93


def test_percentile_bootstrap_of_the_mean_under_covers_at_3_seeds():
    """Why the module exists: the interval the tables used before covers far less than 95 %."""
    rng = np.random.default_rng(0)
    draws = rng.normal(0.0, 1.0, size=(2000, 3))
    means = np.take_along_axis(draws, rng.integers(0, 3, size=(2000, 1000, 3)).reshape(2000, -1), 1)
    means = means.reshape(2000, 1000, 3).mean(axis=2)
    lo, hi = np.quantile(means, 0.025, axis=1), np.quantile(means, 0.975, axis=1)
    assert np.mean((lo <= 0) & (0 <= hi)) < 0.85
    t_cover = np.mean([lo <= 0 <= hi for lo, hi in map(stats.mean_interval, draws)])
    assert t_cover >= 0.93


def test_mean_interval_matches_the_textbook_formula_and_handles_small_inputs():
    x = np.array([1064.1, 827.7, 617.8, 1892.2])
    half = sp.t.ppf(0.975, 3) * x.std(ddof=1) / 2
    assert stats.mean_interval(x) == pytest.approx((x.mean() - half, x.mean() + half))
    assert stats.mean_interval([3.0, 3.0]) == (3.0, 3.0)
    assert all(math.isnan(v) for v in stats.mean_interval([5.0]))
    assert stats.mean_interval([1.0, np.nan, 3.0]) == stats.mean_interval([1.0, 3.0])


def test_mann_whitney_is_exact_and_matches_scipy_without_ties():
    assert stats.mann_whitney([5, 6, 7, 8], [1, 2, 3, 4]) == pytest.approx(2 / 70)  # the floor at 4 vs 4
    assert stats.min_p(4, 4) == pytest.approx(2 / 70) and stats.min_p(3, 3) == pytest.approx(0.1)
    rng = np.random.default_rng(3)
    for n, m in [(3, 3), (4, 4), (5, 4), (5, 5)]:
        a, b = rng.normal(size=n), rng.normal(0.8, size=m)
        assert stats.mann_whitney(a, b) == pytest.approx(sp.mannwhitneyu(a, b, method="exact").pvalue)


def test_exact_tests_hold_their_level_under_the_null():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(800, 5)), rng.normal(size=(800, 5))
    assert np.mean([stats.mann_whitney(x, y) < 0.05 for x, y in zip(a, b)]) <= 0.05 + 0.015
    assert np.mean([stats.paired_test(x, y) < 0.25 for x, y in zip(a, b)]) <= 0.25 + 0.04


def test_signed_rank_test_is_exact_and_cannot_resolve_3_to_5_pairs_at_5_percent():
    assert stats.paired_test([3, 2, 1], [0, 0, 0]) == pytest.approx(0.25)  # 3 of 3 one way: 2/8
    assert [stats.min_p(n) for n in (3, 4, 5)] == pytest.approx([0.25, 0.125, 0.0625])
    d = [1.0, 2.0, 3.5, -0.5, 4.0, 6.0]
    assert stats.paired_test(d, [0] * 6) == pytest.approx(sp.wilcoxon(d, method="exact").pvalue)
    assert stats.paired_test([1, 2], [1, 2]) == 1.0


def test_welch_matches_scipy():
    a, b = [1064.1, 827.7, 617.8, 1892.2], [421.6, 394.4, 378.2, 367.0]
    assert stats.welch(a, b) == pytest.approx(sp.ttest_ind(a, b, equal_var=False).pvalue)


def test_iqm_interval_resamples_within_each_task():
    """Stratified: each task keeps its number of runs in every resample, so tasks whose runs agree
    give a degenerate interval; a pooled bootstrap would mix the two tasks' runs and vary."""
    value, lo, hi = stats.iqm_interval({"a": [1.0, 1.0, 1.0, 1.0], "b": [5.0, 5.0, 5.0, 5.0]})
    assert value == lo == hi == 3.0
    rng = np.random.default_rng(5)
    scores = {t: rng.normal(size=5) for t in "abcd"}
    value, lo, hi = stats.iqm_interval(scores, resamples=4000)
    assert value == pytest.approx(sp.trim_mean(np.concatenate(list(scores.values())), 0.25))
    assert lo < value < hi


def test_verdict_says_resolved_only_when_the_exact_test_rejects():
    smfp, sac = [1064.1, 827.7, 617.8, 1892.2], [421.6, 394.4, 378.2, 367.0]
    v = stats.verdict(smfp, sac, names=("smfp", "sac"))
    assert v.startswith("resolved at 5 %: smfp > sac (Mann-Whitney, exact, two-sided p = 0.029, n = 4 vs 4")
    assert stats.verdict(sac, smfp, names=("sac", "smfp")).startswith("resolved at 5 %: smfp > sac")
    assert stats.verdict(smfp, sac, names=("smfp", "sac"), level=0.99).startswith("not resolved at 1 %")
    paired = stats.verdict([3, 2, 1], [0, 0, 0], paired=True)  # 3 of 3 higher: not enough at n = 3
    assert paired.startswith("not resolved at 5 % (Wilcoxon signed-rank, exact, two-sided p = 0.250, n = 3 pairs")
    assert "smallest p possible at this n is 0.250" in paired
    c = stats.compare(smfp, sac)
    assert c["diff_ci_lo"] < 0 < c["diff_ci_hi"] and c["welch_p"] == pytest.approx(0.0843, abs=1e-4)


def _brute_force_van_elteren(strata) -> float:
    """Every combination of one split per stratum, enumerated: the share with |T| >= |T obs|."""
    import itertools
    from scipy import stats as sp

    def centred(a, b, first):
        ranks = sp.rankdata(np.concatenate([a, b]))
        n, big_n = len(a), len(a) + len(b)
        return (ranks[list(first)].sum() - n * (big_n + 1) / 2) / (big_n + 1)

    observed = sum(centred(a, b, range(len(a))) for a, b in strata)
    per = [[centred(a, b, c) for c in itertools.combinations(range(len(a) + len(b)), len(a))] for a, b in strata]
    totals = [sum(t) for t in itertools.product(*per)]
    return float(np.mean(np.abs(totals) >= abs(observed) - 1e-9))


def test_stratified_rank_sum_equals_brute_force_enumeration_with_ties_and_unequal_sizes():
    rng = np.random.default_rng(3)
    for _ in range(20):
        strata = [(rng.normal(size=3) * 100, rng.normal(size=3) * 100 + 50),
                  (rng.integers(0, 3, size=2).astype(float), rng.integers(0, 3, size=4).astype(float)),
                  (rng.normal(size=3), rng.normal(size=2) + 1)]
        assert stats.stratified_rank_sum(strata) == pytest.approx(_brute_force_van_elteren(strata), abs=1e-12)


def test_stratified_rank_sum_pools_strata_one_stratum_cannot_resolve():
    one = [(np.array([4.0, 5, 6]), np.array([1.0, 2, 3]))]
    assert stats.stratified_rank_sum(one) == pytest.approx(stats.mann_whitney(*one[0])) == pytest.approx(0.1)
    # Scales differ by 1,000x between strata; every stratum points the same way: 2 / 20^6.
    six = [(np.array([4.0, 5, 6]) * 10 ** k, np.array([1.0, 2, 3]) * 10 ** k) for k in range(6)]
    assert stats.stratified_rank_sum(six) == pytest.approx(2 / 20 ** 6)
    # Opposite strata cancel.
    assert stats.stratified_rank_sum([six[0], six[1][::-1]]) == pytest.approx(1.0)
    assert np.isnan(stats.stratified_rank_sum([(np.array([]), np.array([1.0]))]))


def test_stratified_rank_sum_holds_its_level_under_the_null():
    rng = np.random.default_rng(0)
    rejections = [stats.stratified_rank_sum([(rng.normal(size=3) * s, rng.normal(size=3) * s) for s in (1, 10, 100, 1000)])
                  < 0.05 for _ in range(400)]
    assert np.mean(rejections) <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 400)


def test_van_elteren_gives_the_side_that_ranks_higher_by_the_sign_of_its_statistic():
    up = [(np.array([4.0, 5, 6]) * 10 ** k, np.array([1.0, 2, 3]) * 10 ** k) for k in range(3)]
    t, p = stats.van_elteren(up)
    assert t > 0 and p == pytest.approx(2 / 20 ** 3) == stats.stratified_rank_sum(up)
    t_down, p_down = stats.van_elteren([(b, a) for a, b in up])
    assert t_down == pytest.approx(-t) and p_down == pytest.approx(p)


def test_probability_of_improvement_is_rliables_mann_whitney_u_over_nm_averaged_over_tasks():
    """rliable `metrics.probability_of_improvement`: per task U / (n m) (scipy's U counts ties as
    one half; identical samples give 0.5), then the mean over tasks."""
    rng = np.random.default_rng(6)
    x = {t: rng.normal(size=5).round(1) for t in "abcd"}
    y = {t: rng.normal(0.3, size=4).round(1) for t in "abcd"}
    expected = np.mean([sp.mannwhitneyu(x[t], y[t], alternative="greater").statistic / 20 for t in "abcd"])
    assert stats.probability_of_improvement(x, y) == pytest.approx(expected)
    assert stats.probability_of_improvement({"a": [1.0, 2.0]}, {"a": [1.0, 2.0]}) == 0.5
    assert stats.probability_of_improvement({"a": [5.0, 6.0]}, {"a": [1.0, 2.0]}) == 1.0


def test_poi_interval_resamples_each_side_within_each_task_and_brackets_the_estimate():
    value, lo, hi = stats.poi_interval({"a": [5.0, 6.0], "b": [7.0, 8.0]}, {"a": [1.0, 2.0], "b": [3.0, 4.0]})
    assert value == lo == hi == 1.0  # every resample keeps every x above every y
    rng = np.random.default_rng(7)
    x, y = {t: rng.normal(size=5) for t in "abcd"}, {t: rng.normal(size=5) for t in "abcd"}
    value, lo, hi = stats.poi_interval(x, y, resamples=4000)
    assert value == pytest.approx(stats.probability_of_improvement(x, y)) and lo < value < hi and 0 <= lo and hi <= 1


def test_van_elteren_power_is_the_exact_tests_rejection_rate_on_the_same_simulated_draws():
    """The vectorised power equals re-running stats.stratified_rank_sum on each simulated experiment."""
    sds, sims, d = np.array([100.0, 3.0]), 300, 1.2
    rng = np.random.default_rng(11)
    a = rng.normal(size=(sims, 2, 4)) * sds[:, None]
    b = rng.normal(size=(sims, 2, 5)) * sds[:, None] + d * sds[:, None]
    brute = np.mean([stats.stratified_rank_sum(list(zip(a[k], b[k]))) < 0.05 for k in range(sims)])
    (power,) = stats.van_elteren_power(sds, [d], n=4, m=5, sims=sims, seed=11)
    assert power == pytest.approx(brute) and 0.2 < power < 1


def test_min_detectable_effect_of_4_tasks_at_5_vs_5_is_about_one_sd_whatever_the_spreads():
    """Ranks ignore each task's scale: the shift in s.d. units is the same at any spreads, and the
    exact test holds its level at d = 0 (a t-test on 20 vs 20 would need ~0.9 s.d.)."""
    wide = stats.min_detectable_effect([2000.0, 500.0, 800.0, 1200.0])
    narrow = stats.min_detectable_effect([1.0, 1.0, 1.0, 1.0])
    assert wide["d"] == narrow["d"] and 0.85 <= wide["d"] <= 1.2 and wide["power_at_d"] >= 0.8
    assert wide["size"] <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 2000)
    assert wide["in_units"] == pytest.approx([wide["d"] * s for s in (2000.0, 500.0, 800.0, 1200.0)])
    below = stats.van_elteren_power([1.0] * 4, [wide["d"] - 0.05])
    assert below[0] < 0.8  # the smallest such d on the grid


def test_van_elteren_reaches_its_floor_when_every_seed_of_four_5_vs_5_tasks_is_higher():
    """The exact null's keys are rounded at each stratum; the observed extreme must still count
    itself: p = 2 / C(10, 5)^4, not 0."""
    four = [(np.arange(5) + 10.0 + k, np.arange(5) * 1.0) for k in range(4)]
    assert stats.van_elteren(four)[1] == pytest.approx(2 / 252 ** 4)
    (power,) = stats.van_elteren_power([1.0] * 4, [0.0], sims=500)
    assert power <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 500)
