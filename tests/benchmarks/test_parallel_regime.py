"""benchmarks/parallel_regime.py: recipes as parts of the reference, the cuts at equal wall-clock
and equal env steps on synthetic records, and one smoke run end to end on the bandit (train with
2 seeds in one program, interrupted, resumed with its clock carried over, skipped when done,
refusal of another configuration, tables and PNGs)."""
import json
import time

import numpy as np
import pytest

from benchmarks import parallel_regime as pr


def test_ablations_are_the_reference_minus_or_today_plus_exactly_one_part():
    reference = pr.RECIPES["reference"]
    assert pr.RECIPES["today"] == {}
    assert reference == {k: v for part in pr.REFERENCE_PARTS.values() for k, v in part.items()}
    for part, fields in pr.REFERENCE_PARTS.items():
        minus = pr.RECIPES[f"reference-minus-{part}"]
        assert set(reference) - set(minus) == set(fields) and all(minus[k] == reference[k] for k in minus)
        assert pr.RECIPES[f"today-plus-{part}"] == fields
    # The parts do not share fields, so "minus one part" leaves that part at today's values.
    names = [k for fields in pr.REFERENCE_PARTS.values() for k in fields]
    assert len(names) == len(set(names))


def test_a_recipe_needing_fields_this_checkout_lacks_is_refused_naming_them(monkeypatch, tmp_path):
    monkeypatch.setitem(pr.RECIPES, "future", {"tau": 0.1, "no_such_field": 1, "nor_this": "x"})
    with pytest.raises(ValueError, match=r"recipe 'future' needs config fields .*: no_such_field, nor_this \("):
        pr.build_config("multimodal", "sac", "future", "cpu", 2, {}, str(tmp_path))
    assert "future: needs no_such_field, nor_this (not on this checkout)" in pr.list_recipes("sac")
    # The reference recipe either builds or is refused naming exactly what it still needs.
    missing = pr.missing_fields(pr.RECIPES["reference"], "sac")
    if missing:
        with pytest.raises(ValueError, match=": " + ", ".join(missing) + r" \("):
            pr.build_config("halfcheetah", "sac", "reference", "cpu", 3, {}, str(tmp_path))
    else:
        _, agent_cfg = pr.build_config("halfcheetah", "sac", "reference", "cpu", 3, {}, str(tmp_path))
        assert agent_cfg.tau == 0.1 and agent_cfg.grad_clip == 0.0


def test_every_committed_record_still_resolves_to_its_configuration():
    # A recipe names every field the reference sets (today's values where it leaves a part out), so
    # records made before SMFP's `fast` preset took the reference recipe still mean the same run.
    import glob
    import os

    from benchmarks.paper_table import config_changes
    from mjx_smfp import config as config_lib

    paths = sorted(glob.glob(os.path.join(pr.DEFAULT_OUT, "records", "*.json")))
    assert any("smfp_today" in p for p in paths)
    for path in paths:
        record = pr.read_json(path)
        cfg, agent_cfg = pr.build_config(record["task"], record["agent"], record["recipe"], record["scale"],
                                         record["seeds"], {}, "/nonexistent")
        assert config_changes(record["config"], config_lib.to_dict(cfg, agent_cfg)) == [], path


def test_the_cpu_scale_keeps_the_fast_presets_shape():
    gpu, _ = pr.build_config("halfcheetah", "sac", "today", "gpu", 1, {}, "/nonexistent")
    cpu, agent_cfg = pr.build_config("halfcheetah", "sac", "today", "cpu", 1, {}, "/nonexistent")
    samples = lambda c: c.updates_per_step * c.batch_size / c.num_envs  # noqa: E731 - gradient samples per transition
    assert (gpu.num_envs, gpu.batch_size, gpu.updates_per_step) == (4096, 8192, 8)
    assert samples(cpu) == samples(gpu) == 16 and cpu.batch_size >= 2 * cpu.num_envs
    assert cpu.physics == gpu.physics == "gpu"
    assert cpu.replay_capacity // cpu.num_envs == gpu.replay_capacity // gpu.num_envs == 1024
    assert agent_cfg.critic_hidden == pr.SCALES["cpu"][1]["critic_hidden"]


def _record(task, recipe, seeds_points, status="done", agent="sac"):
    return {"task": task, "agent": agent, "recipe": recipe, "status": status, "scale": "cpu", "budget_s": 100.0,
            "updates": 10, "machines": ["cpu A"], "curves": [[{"wall_s": w, "env_steps": s, "return": r}
                                                              for w, s, r in pts] for pts in seeds_points]}


def test_cuts_at_equal_wall_clock_and_equal_env_steps(monkeypatch):
    monkeypatch.setattr(pr, "INTERVAL", None)
    monkeypatch.setattr(pr, "TEST", None)
    # Run A: fast on the clock (100 s, 1000 steps); run B: slower, reached 50 s but 2000 steps.
    a = _record("hopper", "today", [[(0, 0, 0.0), (20, 200, 1.0), (40, 400, 2.0), (60, 600, 3.0), (100, 1000, 9.0)],
                                    [(0, 0, 0.0), (20, 200, 3.0), (40, 400, 4.0), (60, 600, 5.0), (100, 1000, 1.0)]])
    b = _record("hopper", "reference", [[(0, 0, 0.0), (25, 1000, 6.0), (50, 2000, 8.0)],
                                        [(0, 0, 0.0), (25, 1000, 2.0), (50, 2000, 4.0)]], status="running")
    rows = {(r["recipe"], r["cut"]): r for r in pr.summarise([a, b])}
    wall_a, steps_a = rows["today", "wall_s"], rows["today", "env_steps"]
    assert wall_a["at"] == 50 and steps_a["at"] == 1000  # the least clock / fewest steps any run reached
    # At 50 s, A's evaluations are those at 0, 20, 40 s: final = their mean (the last 3), best = max.
    assert wall_a["final_per_seed"] == [1.0, pytest.approx(7 / 3)] and wall_a["best_per_seed"] == [2.0, 4.0]
    assert wall_a["final_mean"] == pytest.approx((1.0 + 7 / 3) / 2)
    assert wall_a["final_sd"] == pytest.approx(np.std([1.0, 7 / 3], ddof=1)) and wall_a["final_n"] == 2
    assert steps_a["final_per_seed"] == [pytest.approx(14 / 3), pytest.approx(10 / 3)]  # evals at 400, 600, 1000
    assert steps_a["best_per_seed"] == [9.0, 5.0]
    wall_b, steps_b = rows["reference", "wall_s"], rows["reference", "env_steps"]
    assert wall_b["final_per_seed"] == [pytest.approx(14 / 3), 2.0] and wall_b["best_per_seed"] == [8.0, 4.0]
    assert steps_b["final_per_seed"] == [3.0, 1.0] and steps_b["best_per_seed"] == [6.0, 2.0]
    assert wall_a["final_ci"] is None and "final_p" not in wall_b  # no statistics without the stats.py hook
    # An ablation that got less far cuts its own group (beside today and the reference), not the main one.
    short = _record("hopper", "reference-minus-clip", [[(0, 0, 0.0), (10, 200, 1.0)]] * 2, status="running")
    with_ablation = pr.summarise([a, b, short])
    assert {r["at"] for r in with_ablation if r["group"] == "main" and r["cut"] == "env_steps"} == {1000}
    assert {r["at"] for r in with_ablation if r["group"] == "ablations" and r["cut"] == "env_steps"} == {200}
    assert {r["recipe"] for r in with_ablation if r["group"] == "ablations"} == {"today", "reference",
                                                                                 "reference-minus-clip"}
    md = pr.markdown(pr.summarise([a, b]), {"machine": "cpu C", "date": "d"})
    assert "final @ 50 s" in md and "final @ 1,000 steps" in md and "hook `INTERVAL`/`TEST` unset" in md


def test_the_reference_critic_support_comes_from_the_tasks_reward_scale_and_gamma(tmp_path):
    cfg, agent_cfg = pr.build_config("halfcheetah", "sac", "reference", "cpu", 3, {}, str(tmp_path))
    assert agent_cfg.critic_type == "c51"
    assert (agent_cfg.value_min, agent_cfg.value_max) == pytest.approx((-1500.0, 1500.0))  # 15 / (1 - 0.99)
    cfg, agent_cfg = pr.build_config("halfcheetah", "sac", "reference", "cpu", 3, {"value_max": 50.0}, str(tmp_path))
    assert agent_cfg.value_max == 50.0  # an explicit bound wins


def test_the_stats_hook_fills_intervals_and_tests_against_today(monkeypatch):
    monkeypatch.setattr(pr, "INTERVAL", lambda v: (min(v), max(v)))
    monkeypatch.setattr(pr, "TEST", lambda x, y: float(np.mean(y) > np.mean(x)))
    a = _record("hopper", "today", [[(0, 0, 1.0)], [(0, 0, 3.0)]])
    b = _record("hopper", "reference", [[(0, 0, 5.0)], [(0, 0, 7.0)]])
    rows = {(r["recipe"], r["cut"]): r for r in pr.summarise([a, b])}
    assert rows["today", "wall_s"]["final_ci"] == [1.0, 3.0] and rows["reference", "env_steps"]["final_p"] == 1.0
    assert "final_p" not in rows["today", "wall_s"]
    # An ablation (the reference minus one part) is tested against today and against the reference,
    # and is left out of the pooled recipe-vs-today test.
    c = _record("hopper", "reference-minus-clip", [[(0, 0, 2.0)], [(0, 0, 4.0)]])
    rows = {(r["recipe"], r["cut"]): r for r in pr.summarise([a, b, c])}
    ablation = rows["reference-minus-clip", "env_steps"]
    assert ablation["final_p"] == 1.0 and ablation["final_p_vs_reference"] == 0.0
    assert "final_p_vs_reference" not in rows["reference", "env_steps"]
    assert {r["recipe"] for r in pr.pooled(pr.summarise([a, b, c]))} == {"reference"}
    assert "(vs reference: p 0)" in pr.markdown(pr.summarise([a, b, c]), {"machine": "m", "date": "d"})


SMOKE = ["--task", "multimodal", "--agent", "sac", "--recipe", "today", "--seeds", "2", "--budget-minutes", "10",
         "--eval-every-s", "0.01", "--checkpoint-every-minutes", "0", "--compile-cache",
         "--actor_hidden", "32,32", "--critic_hidden", "32,32", "--num_envs", "16", "--batch_size", "64",
         "--replay_capacity", "4096", "--learning_starts", "64", "--iterations_per_call", "5", "--eval_episodes", "4",
         "--total_env_steps", "544"]  # 64 warm-up steps, then 6 chunks of 80


def test_pooled_test_ranks_within_each_task_agent_stratum_and_decides_only_below_005():
    # Three seeds each, one evaluation per seed at the same clock and step, so final = that return.
    def run(task, recipe, returns, agent="sac"):
        return _record(task, recipe, [[(10, 100, r)] for r in returns], agent=agent)
    # Reference above today in every seed on two strata whose scales differ by 1000x: the exact
    # stratified p is 2 * (1/20)^2 = 0.005 (each stratum's extreme split has probability 1/20).
    records = [run("hopper", "today", [1, 2, 3]), run("hopper", "reference", [4, 5, 6]),
               run("walker2d", "today", [1000, 2000, 3000], agent="smfp"),
               run("walker2d", "reference", [4000, 5000, 6000], agent="smfp"),
               run("ant", "reference", [7, 8, 9])]  # no `today` here: not a stratum
    got = {(r["cut"], r["agent"]): r for r in pr.pooled(pr.summarise(records)) if r["recipe"] == "reference"}
    both = got["env_steps", "all"]
    assert both["strata"] == 2 and both["strata_higher"] == 2 and both["direction"] == "higher"
    assert both["p"] == pytest.approx(0.005) and both["resolved"]
    assert got["env_steps", "sac"]["p"] == pytest.approx(0.1) and not got["env_steps", "sac"]["resolved"]
    # A third stratum going the other way all the way cancels one of them: p rises above 0.05.
    records += [run("humanoid", "today", [4, 5, 6]), run("humanoid", "reference", [1, 2, 3])]
    mixed = {(r["cut"], r["agent"]): r for r in pr.pooled(pr.summarise(records)) if r["recipe"] == "reference"}
    assert mixed["env_steps", "all"]["strata"] == 3 and mixed["env_steps", "all"]["strata_higher"] == 2
    assert mixed["env_steps", "all"]["p"] > 0.05 and not mixed["env_steps", "all"]["resolved"]
    assert "not resolved" in pr.pooled_markdown(pr.pooled(pr.summarise(records)))


def test_smoke_run_is_interrupted_resumed_with_its_clock_skipped_refused_and_reported(tmp_path, capsys):
    argv = SMOKE + ["--out", str(tmp_path)]
    pr.main(argv, max_chunks=2)  # interrupted after 2 chunks, as by a signal
    path = tmp_path / "records" / "multimodal_sac_today.json"
    first = json.loads(path.read_text())
    assert first["status"] == "stopped" and first["env_steps"] == 64 + 2 * 80 and len(first["curves"]) == 2
    assert [p["env_steps"] for p in first["curves"][0]] == [64, 144, 224]
    assert first["compile_and_warmup_s"] > 0 and first["config"]["train"]["num_seeds"] == 2
    t = time.perf_counter()
    pr.main(argv)  # re-running the same command continues from the checkpoint
    elapsed = time.perf_counter() - t
    rec = json.loads(path.read_text())
    assert rec["status"] == "done" and rec["reason"] == "total_env_steps" and rec["env_steps"] == 544
    (resume,) = rec["resumes"]
    assert resume["at_env_steps"] == 224 and resume["at_wall_s"] == pytest.approx(first["wall_s"], abs=0.5)
    for before, after in zip(first["curves"], rec["curves"]):
        assert after[:3] == before  # the evaluations up to the checkpoint are kept
        steps, walls = [p["env_steps"] for p in after], [p["wall_s"] for p in after]
        assert steps == [64 + 80 * k for k in range(7)] and walls == sorted(walls)
        assert walls[3] >= resume["at_wall_s"]  # the clock carried over, not restarted
    # The restart's restore and recompile are not on the clock: it grew by less than this call took.
    assert 0 < rec["wall_s"] - resume["at_wall_s"] < elapsed - resume["overhead_s"] + 0.5
    assert all(np.isfinite(p["return"]) for c in rec["curves"] for p in c)
    pr.main(argv)
    assert "done already (total_env_steps" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"multimodal/sac/today run of another configuration .*eval_episodes: 4 -> 3"):
        pr.main(argv + ["--eval_episodes", "3"])
    rows = pr.main(["--report", "--out", str(tmp_path)])
    steps_cut = next(r for r in rows if r["cut"] == "env_steps")
    assert steps_cut["at"] == 544 and steps_cut["final_n"] == 2
    assert steps_cut["final_per_seed"] == [pytest.approx(np.mean([p["return"] for p in c[-3:]])) for c in rec["curves"]]
    for name in ("parallel_regime.md", "parallel_regime.csv", "parallel_regime.json", "multimodal.png"):
        assert (tmp_path / name).stat().st_size > 0


def test_sacflow_and_dime_form_an_agents_group_at_each_fast_recipe_tested_against_smfp(monkeypatch):
    """SAC Flow and DIME runs cut no SAC/SMFP comparison short: they go with every agent's `fast`
    recipe (SMFP's is the reference since issue 23, SAC's today) into their own group, where each
    agent is tested against SMFP."""
    monkeypatch.setattr(pr, "TEST", lambda x, y: float(np.mean(y) > np.mean(x)))
    pts = lambda r, steps: [[(0, 0, 0.0), (50, steps, r)], [(0, 0, 0.0), (50, steps, r + 1)]]  # noqa: E731
    runs = [_record("hopper", "today", pts(1.0, 1000)), _record("hopper", "reference", pts(2.0, 1000)),
            _record("hopper", "reference", pts(5.0, 1000), agent="smfp"),
            _record("hopper", "today", pts(9.0, 1000), agent="smfp"),
            _record("hopper", "today", pts(3.0, 100), agent="dime")]
    rows = pr.summarise(runs)
    main = [r for r in rows if r["group"] == "main"]
    assert {r["at"] for r in main if r["cut"] == "env_steps"} == {1000} and {r["agent"] for r in main} == {"sac", "smfp"}
    agents = {(r["agent"], r["recipe"]): r for r in rows if r["group"] == "agents" and r["cut"] == "wall_s"}
    assert set(agents) == {("sac", "today"), ("smfp", "reference"), ("dime", "today")}
    assert agents["dime", "today"]["final_p_vs_smfp"] == 0.0 and agents["sac", "today"]["final_p_vs_smfp"] == 0.0
    assert "final_p_vs_smfp" not in agents["smfp", "reference"] and "final_p" not in agents["dime", "today"]
    assert {r["at"] for r in rows if r["group"] == "agents" and r["cut"] == "env_steps"} == {100}
    assert "four agents" in pr.markdown(rows, {"machine": "m", "date": "d"})
