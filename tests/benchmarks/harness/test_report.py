"""benchmarks/harness/report.py on synthetic records: cuts at equal env steps and equal run clock,
comparisons decided by the exact test only (unpaired and paired), the stratified pooled test,
lost runs and time to a threshold."""
import numpy as np
import pytest

from benchmarks.harness import report
from benchmarks.harness.spec import Against, Group, Study


def _record(task, variant, seeds_points, agent="sac", status="done", study="s"):
    return {"study": study, "task": task, "agent": agent, "variant": variant, "status": status, "updates": 10,
            "machines": ["cpu A"], "curves": [[{"wall_s": w, "env_steps": s, "return": r} for w, s, r in pts]
                                              for pts in seeds_points]}


def _study(**kw):
    base = dict(name="s", doc="d", tasks=("hopper",), agents=("sac", "smfp"), variants={"today": {}, "reference": {}},
                final_evals=3, cuts=("env_steps", "wall_s"))
    return Study(**{**base, **kw})


def test_runs_are_cut_at_the_least_clock_and_fewest_env_steps_any_run_of_the_group_reached():
    # Run A: fast on the clock (100 s, 1000 steps); run B: slower, reached 50 s but 2000 steps.
    a = _record("hopper", "today", [[(0, 0, 0.0), (20, 200, 1.0), (40, 400, 2.0), (60, 600, 3.0), (100, 1000, 9.0)],
                                    [(0, 0, 0.0), (20, 200, 3.0), (40, 400, 4.0), (60, 600, 5.0), (100, 1000, 1.0)]])
    b = _record("hopper", "reference", [[(0, 0, 0.0), (25, 1000, 6.0), (50, 2000, 8.0)],
                                        [(0, 0, 0.0), (25, 1000, 2.0), (50, 2000, 4.0)]], status="running")
    rows = {(r["variant"], r["cut"]): r for r in report.rows(_study(), [a, b])}
    wall_a, steps_a = rows["today", "wall_s"], rows["today", "env_steps"]
    assert wall_a["at"] == 50 and steps_a["at"] == 1000
    # At 50 s, A's evaluations are those at 0, 20, 40 s: final = their mean (the last 3), best = max.
    assert wall_a["final_per_seed"] == [1.0, pytest.approx(7 / 3)] and wall_a["best_per_seed"] == [2.0, 4.0]
    assert wall_a["final_sd"] == pytest.approx(np.std([1.0, 7 / 3], ddof=1)) and wall_a["final_n"] == 2
    assert steps_a["final_per_seed"] == [pytest.approx(14 / 3), pytest.approx(10 / 3)]  # evals at 400, 600, 1000
    assert steps_a["window"] == [400, 1000]
    wall_b, steps_b = rows["reference", "wall_s"], rows["reference", "env_steps"]
    assert wall_b["final_per_seed"] == [pytest.approx(14 / 3), 2.0] and steps_b["final_per_seed"] == [3.0, 1.0]
    md = report.markdown(_study(), list(rows.values()), [])
    assert "final @ 1,000 env steps" in md and "final @ 50 s" in md and "| sac/reference | running | 2 |" in md


def test_an_unpaired_comparison_is_resolved_only_by_the_exact_test():
    smfp = _record("walker2d", "", [[(0, 100_000, v)] for v in (1064.1, 827.7, 617.8, 1892.2)], agent="smfp")
    sac = _record("walker2d", "", [[(0, 100_000, v)] for v in (421.6, 394.4, 378.2, 367.0)])
    study = _study(tasks=("walker2d",), variants={"": {}}, cuts=("env_steps",),
                   groups=(Group(against=(Against("agent", "sac"),)),))
    (versus,) = next(r for r in report.rows(study, [sac, smfp]) if r["agent"] == "smfp")["versus"]
    # Every smfp seed above every sac seed: Mann-Whitney p = 2/70, its floor at 4 vs 4, although the
    # Welch-t interval of the difference holds 0 (Welch p = 0.084).
    assert versus["p"] == pytest.approx(2 / 70) and versus["resolved"] and versus["diff_ci_lo"] < 0
    assert versus["verdict"] == "resolved at 5 %: smfp > sac (Mann-Whitney, exact, two-sided p = 0.029, n = 4 vs 4)"
    line = report.comparison_line(next(r for r in report.rows(study, [sac, smfp]) if r["agent"] == "smfp"), versus)
    assert line.startswith("- smfp vs sac, equal env steps: difference +710.2 [") and "Welch t 95 %, p = 0.084" in line


def test_a_paired_comparison_cuts_at_the_steps_both_reached_and_pairs_seed_k_with_seed_k():
    def curves(offsets, last):
        return [[(0, s, s / 100 + off) for s in range(1000, last + 1, 1000)] for off in offsets]
    base = _record("hopper", "default", curves([0.0, 10.0, 20.0], 30_000), agent="smfp")
    variant = _record("hopper", "power", curves([100.0, 90.0, 130.0], 20_000), agent="smfp")  # unfinished
    study = _study(agents=("smfp",), variants={"default": {}, "power": {}}, final_evals=10, cuts=("env_steps",),
                   groups=(Group(against=(Against("variant", "default", ("agent",), paired=True),)),))
    row = next(r for r in report.rows(study, [base, variant]) if r["variant"] == "power")
    (c,) = row["versus"]
    assert row["at"] == 20_000 and row["window"] == [11_000, 20_000]  # the last 10 evaluations up to 20K
    assert c["diff_per_seed"] == pytest.approx([100.0, 80.0, 110.0]) and c["wins"] == 3
    assert c["p"] == pytest.approx(0.25) and not c["resolved"]  # 3 of 3 one way: the signed-rank floor
    assert "smallest p possible at this n is 0.250" in c["verdict"]


def test_the_pooled_test_ranks_within_each_task_agent_stratum_and_decides_only_below_005():
    def run(task, variant, returns, agent="sac"):
        return _record(task, variant, [[(10, 100, r)] for r in returns], agent=agent)
    records = [run("hopper", "today", [1, 2, 3]), run("hopper", "reference", [4, 5, 6]),
               run("walker2d", "today", [1000, 2000, 3000], agent="smfp"),
               run("walker2d", "reference", [4000, 5000, 6000], agent="smfp"),
               run("ant", "reference", [7, 8, 9])]  # no `today` here: not a stratum
    rule = Against("variant", "today", ("agent",))
    study = _study(tasks=("hopper", "walker2d", "ant"))
    got = {(p["cut"], p["agent"]): p for p in report.pooled(report.rows(study, records), rule)}
    both = got["env_steps", "all"]
    # Reference above today in every seed on two strata whose scales differ by 1000x: the exact
    # stratified p is 2 * (1/20)^2 = 0.005 (each stratum's extreme split has probability 1/20).
    assert both["strata"] == 2 and both["strata_higher"] == 2 and both["p"] == pytest.approx(0.005) and both["resolved"]
    assert got["env_steps", "sac"]["p"] == pytest.approx(0.1) and not got["env_steps", "sac"]["resolved"]
    records += [run("humanoid", "today", [4, 5, 6]), run("humanoid", "reference", [1, 2, 3])]
    mixed = report.pooled(report.rows(_study(tasks=("hopper", "walker2d", "ant", "humanoid")), records), rule)
    worse = next(p for p in mixed if p["cut"] == "env_steps" and p["agent"] == "all")
    assert worse["strata"] == 3 and worse["p"] > 0.05 and not worse["resolved"]
    assert "| reference | equal env steps | all | 3 (" in report.markdown(study, [], mixed)


def test_a_lost_run_is_reported_from_its_per_seed_finals_with_its_source():
    lost = {"study": "s", "task": "hopper", "agent": "smfp", "variant": "", "status": "done", "curves": [],
            "lost": {"source": "per-seed finals from `old.json`", "final_per_seed": [757.9, 542.6, 652.1, 1120.6],
                     "best_per_seed": [1036.4, 709.2, 690.4, 2097.0], "env_steps": 100_000, "window": [55_000, 100_000]}}
    study = _study(variants={"": {}}, cuts=("env_steps",))
    (row,) = report.rows(study, [lost])
    assert row["final_mean"] == pytest.approx(768.3, abs=0.01) and row["seeds"] == 4 and row["at"] == 100_000
    md = report.markdown(study, [row], [])
    assert "| smfp | done | 4 | 768.3 ± 250.8 [" in md and "over 55K-100K" in md and "per-seed finals from `old.json`" in md


def test_time_to_a_threshold_is_each_seeds_first_evaluation_at_or_above_it():
    rec = _record("multimodal", "", [[(10, 0, 0.1), (20, 1000, 0.85), (30, 2000, 0.9)],
                                     [(10, 0, 0.1), (20, 1000, 0.5), (30, 2000, 0.95)], [(10, 0, 0.1)]])
    got = report.to_threshold(rec, 0.8)
    assert got["threshold_reached"] == 2 and got["time_to_threshold"]["mean"] == 25.0
    assert got["steps_to_threshold"]["mean"] == 1500.0
    assert got["time_to_threshold"]["sd"] == pytest.approx(np.std([20, 30], ddof=1))
