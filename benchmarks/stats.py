"""Intervals and tests over a handful of seeds: the one module every benchmark uses for them.

At 3-5 seeds a percentile bootstrap of the mean under-covers badly (a nominal 95 % interval
covers ~76 % of the time at n = 3 and ~80 % at n = 4 on normal data; at n = 3 it is about
[min, max]), so this module gives:

- `mean_interval(x, level)`: Student-t interval of a mean (exact coverage for normal data);
  `summary(x)`: n, mean, s.d. (ddof 1) and that interval, as one cell over seeds.
- `paired_interval(a, b, level)`: Student-t interval of the mean paired difference a - b
  (seed k of `a` with seed k of `b`).
- `welch(a, b)`: Welch's unequal-variance t-test, two-sided p.
- `mann_whitney(a, b)`: exact two-sided Mann-Whitney (Wilcoxon rank-sum) p, by enumerating
  every split of the pooled values (exact with ties too). Two groups, no normality assumed.
- `paired_test(a, b)`: exact two-sided Wilcoxon signed-rank p, by enumerating every sign
  flip of the paired differences (zero differences dropped). Paired seeds.
- `stratified_rank_sum(strata)`: exact two-sided van Elteren test, Mann-Whitney pooled over
  strata (tasks, agents) whose scales differ: ranks are taken within each stratum only, so a
  task with large returns does not outweigh one with small returns. Its null distribution is
  the convolution of the strata's exact rank-sum distributions. At 3 vs 3 seeds one stratum
  cannot go below p = 0.1; six strata pointing the same way give p = 2 / 20^6.
- `min_p(...)`: the smallest p either exact test can give at these sizes. At 4 vs 4 seeds
  Mann-Whitney cannot go below 2/70 = 0.029; with 3 (4, 5) paired seeds the signed-rank test
  cannot go below 0.25 (0.125, 0.0625): no paired A/B at n <= 5 can be resolved at 5 %.
- `iqm(x)`, `iqm_interval(scores_by_task, ...)`: the interquartile mean over all runs of all
  tasks, with a stratified bootstrap interval (runs resampled within each task), after
  rliable (Agarwal et al., "Deep RL at the Edge of the Statistical Precipice", NeurIPS 2021).
  Written here in numpy: the `rliable` package (1.2.0, an sdist only) pulls arch, pandas and
  seaborn, none of which the GPU machine has or can fetch (no network there).
- `probability_of_improvement(x, y)`, `poi_interval(...)`: rliable's average probability of
  improvement over tasks, with its stratified independent bootstrap interval.
- `van_elteren_power(...)`, `min_detectable_effect(...)`: the power of the pooled test by
  simulation at given spreads, and the smallest shift it detects with 80 % power.
- `compare(a, b, paired=..., level=...)` and `verdict(...)`: one comparison as a dict, and
  its plain-words verdict, "resolved at 5 %: A > B (test, p = ...)" or "not resolved ...".
  "Resolved" means exactly that the named exact test rejects equality at 1 - level; it is
  never read off overlapping or non-overlapping intervals.

Pure numpy and scipy (jax depends on scipy, so every supported stack has it). Non-finite
values are dropped before anything is computed.
"""
from __future__ import annotations

import functools
import itertools
import math

import numpy as np
from scipy import stats as _sp

MAX_EXACT = 200_000  # enumerations beyond this fall back to the normal approximation
# Two van Elteren statistics closer than this are one value: the null's keys are rounded to 1e-9 at
# each stratum (so a few strata drift by ~1e-9), while distinct values differ by >= 1 / lcm(2 (N_s + 1)).
TIE = 1e-7


def _finite(x) -> np.ndarray:
    x = np.asarray(x, float).ravel()
    return x[np.isfinite(x)]


@functools.lru_cache(maxsize=256)
def t_quantile(level: float, dof: float) -> float:
    """The two-sided Student-t critical value: P(|T_dof| <= q) = level."""
    return float(_sp.t.ppf(0.5 + level / 2, dof))


def mean_interval(x, level: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean of `x`: mean ± t_{n-1} s / sqrt(n). (nan, nan) for n < 2
    (one value says nothing about its spread); a point for identical values."""
    x = _finite(x)
    if x.size < 2:
        return float("nan"), float("nan")
    half = t_quantile(level, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return float(x.mean() - half), float(x.mean() + half)


def summary(x, level: float = 0.95) -> dict:
    """n, mean, s.d. (ddof 1; 0 for one value) and the Student-t interval of the mean of the finite
    values of `x`: the one description of a cell over seeds every report uses."""
    v = _finite(x)
    lo, hi = mean_interval(v, level)
    return {"n": int(v.size), "mean": float(v.mean()) if v.size else float("nan"),
            "sd": float(v.std(ddof=1)) if v.size > 1 else 0.0 if v.size else float("nan"), "ci": [lo, hi]}


def _pairs(a, b) -> np.ndarray:
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired values need equal lengths, got {a.size} and {b.size}")
    d = a - b
    return d[np.isfinite(d)]


def paired_interval(a, b, level: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean paired difference a - b (seed k of a with seed k of b)."""
    return mean_interval(_pairs(a, b), level)


def welch(a, b) -> float:
    """Welch's t-test (unequal variances), two-sided p; nan when either side has < 2 values."""
    a, b = _finite(a), _finite(b)
    if a.size < 2 or b.size < 2:
        return float("nan")
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    if va + vb == 0:
        return 0.0 if a.mean() != b.mean() else 1.0
    t = (a.mean() - b.mean()) / math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
    return float(2 * _sp.t.sf(abs(t), dof))


def mann_whitney(a, b) -> float:
    """Exact two-sided Mann-Whitney p: the share of all C(n+m, n) ways to split the pooled values
    into groups of n and m whose rank sum is at least as far from its mean as the observed one
    (mid-ranks for ties, so ties are exact too). nan when a side is empty."""
    a, b = _finite(a), _finite(b)
    n, m = a.size, b.size
    if n == 0 or m == 0:
        return float("nan")
    ranks = _sp.rankdata(np.concatenate([a, b]))
    centre = n * (n + m + 1) / 2
    observed = abs(ranks[:n].sum() - centre)
    if math.comb(n + m, n) > MAX_EXACT:
        return float(_sp.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic").pvalue)
    sums = ranks[_splits(n, m)].sum(axis=1)
    return float(np.mean(np.abs(sums - centre) >= observed - 1e-9))


@functools.lru_cache(maxsize=64)
def _splits(n: int, m: int) -> np.ndarray:
    """Every choice of n of the n + m pooled positions, (C(n+m, n), n) indices."""
    return np.array(list(itertools.combinations(range(n + m), n)), dtype=np.int64)


@functools.lru_cache(maxsize=64)
def _sign_patterns(n: int) -> np.ndarray:
    """Every sign pattern of n differences, (2^n, n)."""
    return np.array(list(itertools.product((-1.0, 1.0), repeat=n)))


def paired_test(a, b) -> float:
    """Exact two-sided Wilcoxon signed-rank p of the paired differences a - b: the share of all
    2^n sign patterns whose signed-rank sum is at least as far from 0 as the observed one
    (zero differences dropped, mid-ranks for tied magnitudes). 1.0 when no difference is left."""
    d = _pairs(a, b)
    d = d[d != 0]
    if d.size == 0:
        return 1.0
    ranks = _sp.rankdata(np.abs(d))
    observed = abs(np.sum(np.sign(d) * ranks))
    if 2 ** d.size > MAX_EXACT:
        return float(_sp.wilcoxon(d, alternative="two-sided", method="asymptotic").pvalue)
    signs = _sign_patterns(d.size)
    return float(np.mean(np.abs(signs @ ranks) >= observed - 1e-9))


def _centred_rank_sums(a: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray]:
    """(observed, every split's) rank sum of the first group minus its null mean, weighted by
    1 / (N + 1) (van Elteren's locally best weights), for one stratum; mid-ranks for ties."""
    n, m = a.size, b.size
    ranks = _sp.rankdata(np.concatenate([a, b]))
    centre, weight = n * (n + m + 1) / 2, 1.0 / (n + m + 1)
    return weight * (ranks[:n].sum() - centre), weight * (ranks[_splits(n, m)].sum(axis=1) - centre)


def _convolve(null: dict, sums: np.ndarray) -> dict:
    """The null distribution of T + S, T ~ `null` ({value: probability}) and S uniform over `sums`."""
    values, counts = np.unique(np.round(sums, 9), return_counts=True)
    step: dict = {}
    for total, prob in null.items():
        for v, c in zip(values, counts / sums.size):
            key = round(total + v, 9)
            step[key] = step.get(key, 0.0) + prob * c
    return step


def van_elteren(strata) -> tuple[float, float]:
    """(T, exact two-sided p) of the van Elteren test over `strata`, a sequence of (a, b) value
    groups (one per task/agent): T = sum over strata of w_s (rank sum of a_s - its null mean), ranks
    within the stratum, w_s = 1 / (N_s + 1); T > 0 when a ranks above b. Under H0 (in every stratum
    a and b come from one distribution) the strata are independent, each split equally likely; p is
    the exact share of the convolved null with |T| >= |T observed|. Strata with an empty side are
    skipped; (nan, nan) when none is left."""
    observed, null = 0.0, {0.0: 1.0}
    used = 0
    for a, b in strata:
        a, b = _finite(a), _finite(b)
        if a.size == 0 or b.size == 0:
            continue
        if math.comb(a.size + b.size, a.size) > MAX_EXACT:
            raise ValueError(f"stratum of {a.size} vs {b.size} values is too large for the exact test")
        obs, sums = _centred_rank_sums(a, b)
        observed += obs
        null, used = _convolve(null, sums), used + 1
    if used == 0:
        return float("nan"), float("nan")
    return float(observed), float(sum(prob for total, prob in null.items() if abs(total) >= abs(observed) - TIE))


def stratified_rank_sum(strata) -> float:
    """Exact two-sided van Elteren p over `strata` (`van_elteren`'s p; nan when no stratum has both sides)."""
    return van_elteren(strata)[1]


def van_elteren_power(sds, shifts, n: int = 5, m: int = 5, alpha: float = 0.05, sims: int = 2000,
                      seed: int = 0) -> np.ndarray:
    """Power of the exact two-sided van Elteren test at level `alpha` for each shift d in `shifts`:
    per stratum s (one per entry of `sds`), n normal draws of s.d. sds[s] against m of the same
    s.d. shifted by d * sds[s]; the share of `sims` simulated experiments with p < alpha. The same
    draws serve every d (common random numbers: power rises with d without Monte-Carlo wiggle).
    Untied draws have one exact null, computed once (`_convolve` on the ranks 1..n+m)."""
    sds = np.asarray(sds, float)
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(sims, sds.size, n)) * sds[:, None]
    b = rng.normal(size=(sims, sds.size, m)) * sds[:, None]
    null = {0.0: 1.0}
    ranks = np.arange(1.0, n + m + 1)
    for _ in sds:
        null = _convolve(null, (ranks[_splits(n, m)].sum(axis=1) - n * (n + m + 1) / 2) / (n + m + 1))
    values = np.array(sorted(null, key=abs))
    tail = np.append(np.cumsum([null[v] for v in values[::-1]])[::-1], 0.0)  # P(|T| >= |values[i]|)
    power = []
    for d in shifts:
        r = _sp.rankdata(np.concatenate([a, b + d * sds[:, None]], axis=2), axis=2)[..., :n].sum(axis=2)
        t = np.abs(((r - n * (n + m + 1) / 2) / (n + m + 1)).sum(axis=1))
        power.append(np.mean(tail[np.searchsorted(np.abs(values), t - TIE)] < alpha))
    return np.asarray(power)


def min_detectable_effect(sds, n: int = 5, m: int = 5, alpha: float = 0.05, power: float = 0.8,
                          sims: int = 2000, step: float = 0.05, largest: float = 5.0, seed: int = 0) -> dict:
    """The smallest shift d (in units of each stratum's s.d., on a grid of `step` up to `largest`)
    at which the van Elteren test reaches `power` (`van_elteren_power`); {"d": nan} when none
    does. Ranks are unchanged by a stratum's scale, so d does not depend on `sds`: they only turn d
    into each stratum's units (d * sds[s])."""
    grid = np.round(np.arange(0.0, largest + step / 2, step), 6)
    got = van_elteren_power(sds, grid, n, m, alpha, sims, seed)
    hit = np.flatnonzero(got >= power)
    d = float(grid[hit[0]]) if hit.size else float("nan")
    return {"d": d, "power_at_d": float(got[hit[0]]) if hit.size else float("nan"), "size": float(got[0]),
            "in_units": [d * float(s) for s in np.asarray(sds, float)], "sims": sims, "alpha": alpha,
            "target_power": power, "n": n, "m": m}


def min_p(n: int, m: int | None = None) -> float:
    """The smallest p the exact test can give: Mann-Whitney at n vs m (2 / C(n+m, n)), or, with
    m None, the signed-rank test on n pairs (2 / 2^n). A test whose min_p exceeds the level
    cannot resolve anything, whatever the data."""
    if m is None:
        return min(1.0, 2.0 / 2 ** n) if n > 0 else 1.0
    return min(1.0, 2.0 / math.comb(n + m, n)) if n > 0 and m > 0 else 1.0


def iqm(x) -> float:
    """Interquartile mean: the mean of the middle 50 % of the values (scipy's trim_mean at 25 %,
    as rliable computes it)."""
    x = _finite(x)
    return float(_sp.trim_mean(x, 0.25)) if x.size else float("nan")


def iqm_interval(scores_by_task: dict, level: float = 0.95, resamples: int = 20_000,
                 seed: int = 0) -> tuple[float, float, float]:
    """(IQM, lo, hi) over every run of every task: the IQM of the pooled runs, and a percentile
    interval from a stratified bootstrap that resamples runs with replacement within each task
    (rliable's method). Pass normalised scores when tasks have different scales. With few runs
    per task this interval is still a bootstrap and shares its small-n under-coverage; it is
    meant for aggregates over several tasks, not for one task's seeds (use `mean_interval`)."""
    tasks = [_finite(v) for v in scores_by_task.values()]
    tasks = [v for v in tasks if v.size]
    if not tasks:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    pooled = np.concatenate([v[rng.integers(0, v.size, size=(resamples, v.size))] for v in tasks], axis=1)
    pooled.sort(axis=1)
    k = pooled.shape[1]
    cut = int(math.floor(0.25 * k))  # trim_mean's cut: the same number of values off each end
    boot = pooled[:, cut:k - cut].mean(axis=1)
    tail = (1 - level) / 2
    return iqm(np.concatenate(tasks)), float(np.quantile(boot, tail)), float(np.quantile(boot, 1 - tail))


def probability_of_improvement(x_by_task: dict, y_by_task: dict) -> float:
    """P(X > Y) averaged over tasks (rliable `metrics.probability_of_improvement`, Agarwal et al.
    2021): per task, the share of all (x run, y run) pairs with x > y, ties counting one half (the
    Mann-Whitney U over n m); then the mean over the tasks both sides have."""
    per_task = []
    for task in x_by_task:
        x, y = _finite(x_by_task[task]), _finite(y_by_task.get(task, []))
        if x.size and y.size:
            per_task.append(np.mean((x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])))
    return float(np.mean(per_task)) if per_task else float("nan")


def poi_interval(x_by_task: dict, y_by_task: dict, level: float = 0.95, resamples: int = 20_000,
                 seed: int = 0) -> tuple[float, float, float]:
    """(PoI, lo, hi): `probability_of_improvement` and its percentile interval from rliable's
    stratified independent bootstrap (`library.StratifiedIndependentBootstrap`): each side's runs
    resampled with replacement within each task, independently of the other side."""
    rng = np.random.default_rng(seed)
    tasks = [t for t in x_by_task if _finite(x_by_task[t]).size and _finite(y_by_task.get(t, [])).size]
    if not tasks:
        return float("nan"), float("nan"), float("nan")
    boot = np.zeros(resamples)
    for task in tasks:
        x, y = _finite(x_by_task[task]), _finite(y_by_task[task])
        xs, ys = x[rng.integers(0, x.size, (resamples, x.size))], y[rng.integers(0, y.size, (resamples, y.size))]
        diff = xs[:, :, None] - ys[:, None, :]
        boot += ((diff > 0) + 0.5 * (diff == 0)).mean(axis=(1, 2)) / len(tasks)
    tail = (1 - level) / 2
    return (probability_of_improvement({t: x_by_task[t] for t in tasks}, y_by_task),
            float(np.quantile(boot, tail)), float(np.quantile(boot, 1 - tail)))


def compare(a, b, paired: bool = False, level: float = 0.95) -> dict:
    """One comparison of A's values with B's: the mean difference A - B with its Student-t
    interval (paired: seed k with seed k; else Welch's), the exact test (`paired_test` or
    `mann_whitney`) with its p and the smallest p it could give, and whether it resolves the
    difference at 1 - level."""
    a_f, b_f = _finite(a), _finite(b)
    if paired:
        d = _pairs(a, b)
        lo, hi = mean_interval(d, level)
        test, p, n = "Wilcoxon signed-rank, exact", paired_test(a, b), f"{d.size} pairs"
        floor, diff = min_p(int(np.sum(d != 0))), float(d.mean()) if d.size else float("nan")
        welch_p = float("nan")
    else:
        diff = float(a_f.mean() - b_f.mean()) if a_f.size and b_f.size else float("nan")
        lo, hi = _welch_interval(a_f, b_f, level)
        test, p, n = "Mann-Whitney, exact", mann_whitney(a_f, b_f), f"{a_f.size} vs {b_f.size}"
        floor, welch_p = min_p(a_f.size, b_f.size), welch(a_f, b_f)
    alpha = 1 - level
    return {"paired": paired, "level": level, "diff_mean": diff, "diff_ci_lo": lo, "diff_ci_hi": hi,
            "interval": "Student-t" if paired else "Welch t", "test": test, "p": p, "min_p": floor, "n": n,
            "welch_p": welch_p, "resolved": bool(np.isfinite(p) and p < alpha)}


def _welch_interval(a: np.ndarray, b: np.ndarray, level: float) -> tuple[float, float]:
    if a.size < 2 or b.size < 2:
        return float("nan"), float("nan")
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    if va + vb == 0:
        return float(a.mean() - b.mean()), float(a.mean() - b.mean())
    dof = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
    half = t_quantile(level, dof) * math.sqrt(va + vb)
    return float(a.mean() - b.mean() - half), float(a.mean() - b.mean() + half)


def _pct(level: float) -> str:
    return f"{100 * (1 - level):g} %"


def format_p(p: float) -> str:
    return "n/a" if not np.isfinite(p) else f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def describe(c: dict, names: tuple[str, str] = ("A", "B")) -> str:
    """The plain-words verdict of a `compare` result."""
    a, b = names
    if not np.isfinite(c["p"]):
        return f"not compared ({c['n']}: no values on one side)"
    test = f"{c['test']}, two-sided p = {format_p(c['p'])}, n = {c['n']}"
    if c["resolved"]:
        top, low = (a, b) if c["diff_mean"] > 0 else (b, a)
        return f"resolved at {_pct(c['level'])}: {top} > {low} ({test})"
    floor = (f"; the smallest p possible at this n is {format_p(c['min_p'])}"
             if c["min_p"] >= 1 - c["level"] else "")
    return f"not resolved at {_pct(c['level'])} ({test}{floor})"


def verdict(a, b, names: tuple[str, str] = ("A", "B"), paired: bool = False, level: float = 0.95) -> str:
    """"resolved at 5 %: A > B (test, p, n)" when the exact test rejects equality at 1 - level,
    else "not resolved at 5 % (test, p, n[; the smallest p possible at this n])"."""
    return describe(compare(a, b, paired=paired, level=level), names)
