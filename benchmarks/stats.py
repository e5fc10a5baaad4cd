"""Intervals and tests over a handful of seeds: the one module every benchmark uses for them.

At 3-5 seeds a percentile bootstrap of the mean under-covers badly (a nominal 95 % covers ~76 % at
n = 3), so intervals here are Student-t and tests exact, by enumeration: Mann-Whitney, Wilcoxon
signed-rank, and van Elteren's stratified rank sum for tasks of different scales. "Resolved" means the
named exact test rejects equality; it is never read off intervals. IQM and probability of improvement
follow rliable (Agarwal et al. 2021), in numpy: rliable's dependencies are missing on the GPU machine.
Non-finite values are dropped before anything is computed.
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
NAN3 = (float("nan"),) * 3


def _finite(x) -> np.ndarray:
    x = np.asarray(x, float).ravel()
    return x[np.isfinite(x)]


@functools.lru_cache(maxsize=256)
def t_quantile(level: float, dof: float) -> float:
    """The two-sided Student-t critical value: P(|T_dof| <= q) = level."""
    return float(_sp.t.ppf(0.5 + level / 2, dof))


def mean_interval(x, level: float = 0.95) -> tuple[float, float]:
    """Student-t interval of the mean of `x`; (nan, nan) for fewer than 2 values."""
    x = _finite(x)
    if x.size < 2:
        return float("nan"), float("nan")
    half = t_quantile(level, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return float(x.mean() - half), float(x.mean() + half)


def summary(x, level: float = 0.95) -> dict:
    """n, mean, s.d. (ddof 1; 0 for one value) and `mean_interval`: one cell over seeds."""
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


def _welch(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """(two-sided p, lo, hi): Welch's t-test and interval of mean(a) - mean(b); nan with < 2 values a side."""
    if a.size < 2 or b.size < 2:
        return NAN3
    diff = float(a.mean() - b.mean())
    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    if va + vb == 0:
        return 0.0 if diff != 0 else 1.0, diff, diff
    dof = (va + vb) ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
    half = t_quantile(level, dof) * math.sqrt(va + vb)
    return float(2 * _sp.t.sf(abs(diff) / math.sqrt(va + vb), dof)), diff - half, diff + half


def welch(a, b) -> float:
    """Welch's t-test (unequal variances), two-sided p; nan when either side has < 2 values."""
    return _welch(_finite(a), _finite(b))[0]


@functools.lru_cache(maxsize=64)
def _splits(n: int, m: int) -> np.ndarray:
    """Every choice of n of the n + m pooled positions, (C(n+m, n), n) indices."""
    return np.array(list(itertools.combinations(range(n + m), n)), dtype=np.int64)


@functools.lru_cache(maxsize=64)
def _sign_patterns(n: int) -> np.ndarray:
    """Every sign pattern of n differences, (2^n, n)."""
    return np.array(list(itertools.product((-1.0, 1.0), repeat=n)))


def _centred_rank_sums(a: np.ndarray, b: np.ndarray, weighted: bool = False) -> tuple[float, np.ndarray]:
    """(observed, every split's) rank sum of the first group minus its null mean (mid-ranks for ties),
    `weighted` by 1 / (N + 1), van Elteren's locally best weights."""
    n, m = a.size, b.size
    ranks = _sp.rankdata(np.concatenate([a, b]))
    centre, weight = n * (n + m + 1) / 2, 1.0 / (n + m + 1) if weighted else 1.0
    return weight * (ranks[:n].sum() - centre), weight * (ranks[_splits(n, m)].sum(axis=1) - centre)


def mann_whitney(a, b) -> float:
    """Exact two-sided Mann-Whitney p, enumerating every split of the pooled values (exact with ties
    too); nan when a side is empty."""
    a, b = _finite(a), _finite(b)
    if a.size == 0 or b.size == 0:
        return float("nan")
    if math.comb(a.size + b.size, a.size) > MAX_EXACT:
        return float(_sp.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic").pvalue)
    observed, sums = _centred_rank_sums(a, b)
    return float(np.mean(np.abs(sums) >= abs(observed) - 1e-9))


def paired_test(a, b) -> float:
    """Exact two-sided Wilcoxon signed-rank p of a - b, enumerating every sign flip (zero differences
    dropped, mid-ranks for ties); 1.0 when no difference is left."""
    d = _pairs(a, b)
    d = d[d != 0]
    if d.size == 0:
        return 1.0
    ranks = _sp.rankdata(np.abs(d))
    observed = abs(np.sum(np.sign(d) * ranks))
    if 2 ** d.size > MAX_EXACT:
        return float(_sp.wilcoxon(d, alternative="two-sided", method="asymptotic").pvalue)
    return float(np.mean(np.abs(_sign_patterns(d.size) @ ranks) >= observed - 1e-9))


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
    """(T, exact two-sided p) of the van Elteren test over `strata`, (a, b) groups: Mann-Whitney ranks
    within each stratum, so a task of large returns does not outweigh one of small; T > 0 when a ranks
    above b. Strata with an empty side are skipped; (nan, nan) when none is left."""
    observed, null, used = 0.0, {0.0: 1.0}, 0
    for a, b in strata:
        a, b = _finite(a), _finite(b)
        if a.size == 0 or b.size == 0:
            continue
        if math.comb(a.size + b.size, a.size) > MAX_EXACT:
            raise ValueError(f"stratum of {a.size} vs {b.size} values is too large for the exact test")
        obs, sums = _centred_rank_sums(a, b, weighted=True)
        observed += obs
        null, used = _convolve(null, sums), used + 1
    if used == 0:
        return float("nan"), float("nan")
    return float(observed), float(sum(prob for total, prob in null.items() if abs(total) >= abs(observed) - TIE))


def stratified_rank_sum(strata) -> float:
    """Exact two-sided van Elteren p over `strata` (`van_elteren`'s p)."""
    return van_elteren(strata)[1]


def van_elteren_power(sds, shifts, n: int = 5, m: int = 5, alpha: float = 0.05, sims: int = 2000,
                      seed: int = 0) -> np.ndarray:
    """Power of the van Elteren test at `alpha` for each shift d: per stratum, n normal draws of s.d.
    sds[s] against m shifted by d * sds[s]; the same draws serve every d (common random numbers)."""
    sds = np.asarray(sds, float)
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(sims, sds.size, n)) * sds[:, None]
    b = rng.normal(size=(sims, sds.size, m)) * sds[:, None]
    null = {0.0: 1.0}
    ranks = np.arange(1.0, n + m + 1)  # untied draws have one exact null
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
    """The smallest shift d, in each stratum's s.d., at which the van Elteren test reaches `power`
    ({"d": nan} when none up to `largest` does); ranks ignore scale, so `sds` only give d's units."""
    grid = np.round(np.arange(0.0, largest + step / 2, step), 6)
    got = van_elteren_power(sds, grid, n, m, alpha, sims, seed)
    hit = np.flatnonzero(got >= power)
    d = float(grid[hit[0]]) if hit.size else float("nan")
    return {"d": d, "power_at_d": float(got[hit[0]]) if hit.size else float("nan"), "size": float(got[0]),
            "in_units": [d * float(s) for s in np.asarray(sds, float)], "sims": sims, "alpha": alpha,
            "target_power": power, "n": n, "m": m}


def min_p(n: int, m: int | None = None) -> float:
    """The smallest p the exact test can give: Mann-Whitney at n vs m, or (m None) signed-rank on n pairs."""
    if m is None:
        return min(1.0, 2.0 / 2 ** n) if n > 0 else 1.0
    return min(1.0, 2.0 / math.comb(n + m, n)) if n > 0 and m > 0 else 1.0


def iqm(x) -> float:
    """Interquartile mean: the mean of the middle 50 % of the values (scipy's trim_mean, as rliable)."""
    x = _finite(x)
    return float(_sp.trim_mean(x, 0.25)) if x.size else float("nan")


def _percentiles(boot: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2
    return float(np.quantile(boot, tail)), float(np.quantile(boot, 1 - tail))


def iqm_interval(scores_by_task: dict, level: float = 0.95, resamples: int = 20_000,
                 seed: int = 0) -> tuple[float, float, float]:
    """(IQM, lo, hi) over every run of every task, with rliable's stratified bootstrap (runs resampled
    within each task); for aggregates over tasks, not one task's seeds (use `mean_interval`)."""
    tasks = [v for v in map(_finite, scores_by_task.values()) if v.size]
    if not tasks:
        return NAN3
    rng = np.random.default_rng(seed)
    pooled = np.concatenate([v[rng.integers(0, v.size, size=(resamples, v.size))] for v in tasks], axis=1)
    pooled.sort(axis=1)
    k = pooled.shape[1]
    cut = int(math.floor(0.25 * k))  # trim_mean's cut: the same number of values off each end
    return (iqm(np.concatenate(tasks)), *_percentiles(pooled[:, cut:k - cut].mean(axis=1), level))


def probability_of_improvement(x_by_task: dict, y_by_task: dict) -> float:
    """rliable's P(X > Y) averaged over the tasks both sides have: per task, the share of (x run, y run)
    pairs with x > y, ties counting one half."""
    per_task = []
    for task in x_by_task:
        x, y = _finite(x_by_task[task]), _finite(y_by_task.get(task, []))
        if x.size and y.size:
            per_task.append(np.mean((x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])))
    return float(np.mean(per_task)) if per_task else float("nan")


def poi_interval(x_by_task: dict, y_by_task: dict, level: float = 0.95, resamples: int = 20_000,
                 seed: int = 0) -> tuple[float, float, float]:
    """(PoI, lo, hi): `probability_of_improvement` with rliable's stratified independent bootstrap
    interval (each side's runs resampled within each task, independently of the other side)."""
    rng = np.random.default_rng(seed)
    tasks = [t for t in x_by_task if _finite(x_by_task[t]).size and _finite(y_by_task.get(t, [])).size]
    if not tasks:
        return NAN3
    boot = np.zeros(resamples)
    for task in tasks:
        x, y = _finite(x_by_task[task]), _finite(y_by_task[task])
        xs, ys = x[rng.integers(0, x.size, (resamples, x.size))], y[rng.integers(0, y.size, (resamples, y.size))]
        diff = xs[:, :, None] - ys[:, None, :]
        boot += ((diff > 0) + 0.5 * (diff == 0)).mean(axis=(1, 2)) / len(tasks)
    return (probability_of_improvement({t: x_by_task[t] for t in tasks}, y_by_task), *_percentiles(boot, level))


def compare(a, b, paired: bool = False, level: float = 0.95) -> dict:
    """One comparison of A's values with B's: the mean difference with its interval (paired: Student-t on
    seed pairs; else Welch's), the exact test's p and smallest possible p, and whether it resolves at 1 - level."""
    a_f, b_f = _finite(a), _finite(b)
    if paired:
        d = _pairs(a, b)
        lo, hi = mean_interval(d, level)
        test, p, n = "Wilcoxon signed-rank, exact", paired_test(a, b), f"{d.size} pairs"
        floor, diff = min_p(int(np.sum(d != 0))), float(d.mean()) if d.size else float("nan")
        welch_p = float("nan")
    else:
        diff = float(a_f.mean() - b_f.mean()) if a_f.size and b_f.size else float("nan")
        welch_p, lo, hi = _welch(a_f, b_f, level)
        test, p, n = "Mann-Whitney, exact", mann_whitney(a_f, b_f), f"{a_f.size} vs {b_f.size}"
        floor = min_p(a_f.size, b_f.size)
    return {"paired": paired, "level": level, "diff_mean": diff, "diff_ci_lo": lo, "diff_ci_hi": hi,
            "interval": "Student-t" if paired else "Welch t", "test": test, "p": p, "min_p": floor, "n": n,
            "welch_p": welch_p, "resolved": bool(np.isfinite(p) and p < 1 - level)}


def format_p(p: float) -> str:
    return "n/a" if not np.isfinite(p) else f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def describe(c: dict, names: tuple[str, str] = ("A", "B")) -> str:
    """The plain-words verdict of a `compare` result: "resolved at 5 %: A > B (test, p, n)" or "not
    resolved at 5 % (test, p, n[; the smallest p possible at this n])"."""
    a, b = names
    if not np.isfinite(c["p"]):
        return f"not compared ({c['n']}: no values on one side)"
    test = f"{c['test']}, two-sided p = {format_p(c['p'])}, n = {c['n']}"
    pct = f"{100 * (1 - c['level']):g} %"
    if c["resolved"]:
        top, low = (a, b) if c["diff_mean"] > 0 else (b, a)
        return f"resolved at {pct}: {top} > {low} ({test})"
    floor = (f"; the smallest p possible at this n is {format_p(c['min_p'])}"
             if c["min_p"] >= 1 - c["level"] else "")
    return f"not resolved at {pct} ({test}{floor})"


def verdict(a, b, names: tuple[str, str] = ("A", "B"), paired: bool = False, level: float = 0.95) -> str:
    """`describe` of `compare(a, b)`."""
    return describe(compare(a, b, paired=paired, level=level), names)
