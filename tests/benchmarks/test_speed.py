"""benchmarks/speed.py at tiny sizes on the CPU: every agent's NFE, action and update costs are
measured in one interleaved run; the wrapper's and raw stepping are timed on the same task; the
loop's speed is read off runner.run; a table is remade from its saved JSON alone; a scaling
measurement reaches its threshold (or stops at its budget) through runner.run, its processes get
one coordinator and their share of the GPUs, and efficiency is per kind and mode; the C51
projection's two forms agree."""
import json
import os

import pytest

import envs
from benchmarks import speed

TINY = dict(actor_hidden=(8, 8), critic_hidden=(8, 8))


def test_costs_of_all_four_agents_with_their_network_calls_per_action_and_ratios_to_sac():
    rows = speed.costs_rows("inverted_pendulum", ["sac", "smfp", "sacflow", "dime"], act_envs=(4, 64), batches=(32,),
                            rounds=1, nets=TINY)
    by = {r["agent"]: r for r in rows}
    assert [by[a]["nfe"] for a in ("sac", "smfp", "sacflow", "dime")] == [1, 1, 4, 16]
    assert by["sac"]["update_over_sac"] == 1.0 and by["dime"]["act_over_sac"] > 0
    assert all(r[k] > 0 for r in rows for k in ("act_4_ms", "act_64_ms", "update_32_ms"))
    table = speed.markdown("costs", rows)
    assert "| inverted_pendulum | dime | 16 | " in table and table.count("\n") == 6  # header, rule, 4 agents
    assert "| - |" not in table and " — |" in table  # sizes not timed are marked, every row has every cell


def test_wrapped_and_raw_stepping_of_one_task_and_the_loop_speed_from_the_runner():
    env = envs.make("inverted_pendulum", physics="gpu")
    wrapped, raw = speed.wrapped_stepping(env, 4, 10, rounds=1), speed.raw_stepping(env, 4, 10, rounds=1)
    assert wrapped["wrapped_steps_per_s"] > 0 and raw["raw_steps_per_s"] > 0 and raw["raw_compile_s"] > 0
    assert wrapped["nonfinite"] == 0 and wrapped["reset_over_step"] > 0
    from mjx_smfp import config as config_lib
    from mjx_smfp.engine import Engine
    from benchmarks.harness.timer import train_speed

    cfg, agent_cfg = config_lib.build({"env": "multimodal", "agent": "sac", "preset": "cpu", "num_envs": 4,
                                       "batch_size": 16, "learning_starts": 8, "iterations_per_call": 5, **TINY})
    got = train_speed(Engine(cfg, agent_cfg), calls=2)
    assert got["env_steps_per_s"] > 0 and got["updates_per_s"] > 0 and got["compile_s"] > 0


def test_a_speed_table_is_remade_from_its_saved_json(tmp_path):
    rows = [{"num_seeds": 1, "aggregate_env_steps_per_s": 10.0, "sequential_env_steps_per_s": 10.0,
             "speedup_vs_sequential": 1.0, "compile_and_first_chunk_s": 3.0},
            {"num_seeds": 2, "aggregate_env_steps_per_s": 15.0, "sequential_env_steps_per_s": 10.0,
             "speedup_vs_sequential": 1.5, "compile_and_first_chunk_s": 4.0}]
    (tmp_path / "seeds_x.json").write_text(json.dumps({"kind": "seeds", "rows": rows}))
    assert speed.main(["report", "seeds_x", "--out", str(tmp_path)]) == rows
    assert "| 2 | 15 | 10 | **1.50x** | 8 | 4 |" in (tmp_path / "seeds_x.md").read_text()


BANDIT = {"env_kwargs": '{"num_modes": 1}', "num_envs": "4", "batch_size": "32", "replay_capacity": "1024",
          "learning_starts": "64", "iterations_per_call": "10", "updates_per_step": "2", "eval_episodes": "2",
          "actor_hidden": "32,32", "critic_hidden": "32,32", "actor_lr": "1e-3", "critic_lr": "1e-3",
          "temperature_lr": "1e-3", "init_temperature": "0.01"}


def test_a_scaling_measurement_times_the_loop_to_its_threshold_and_one_all_reduce_with_the_load():
    args, _ = speed.parser().parse_known_args(["scaling", "--child", "weak:devices:1", "--calls", "1",
                                               "--threshold", "0.5", "--budget-s", "60"])
    row = speed.scaling_child(args, BANDIT)
    assert (row["kind"], row["mode"], row["processes"], row["devices"], row["num_envs"]) == ("devices", "weak", 1, 1, 4)
    assert row["env_steps_per_s"] > 0 and row["allreduce_ms"] > 0 and row["load_before"] >= 0
    assert 0 < row["time_to_threshold_s"] < 60 and row["best_eval_return"] >= 0.5 and row["threshold"] == 0.5


def test_a_threshold_not_reached_ends_at_the_budget_after_the_timed_calls():
    from benchmarks.harness.timer import train_speed
    from mjx_smfp import config as config_lib
    from mjx_smfp.engine import Engine

    cfg, agent_cfg = config_lib.build({"env": "multimodal", "agent": "sac", "preset": "cpu", **BANDIT})
    got = train_speed(Engine(cfg, agent_cfg), calls=2, target=2.0, budget_s=0.0)  # the return is at most 1
    assert got["time_to_target_s"] is None and got["best_eval_return"] <= 1.0 and got["env_steps_per_s"] > 0


def test_scaling_processes_share_one_coordinator_and_split_the_gpus_and_devices_are_emulated_without_one():
    from mjx_smfp import distributed

    cpu = speed.scaling_envs("processes", 2, gpus=0)
    assert [e[distributed.PROCESS_ID_VAR] for e in cpu] == ["0", "1"]
    assert len({e[distributed.COORDINATOR_VAR] for e in cpu}) == 1 and all(e["JAX_PLATFORMS"] == "cpu" for e in cpu)
    assert [e["CUDA_VISIBLE_DEVICES"] for e in speed.scaling_envs("processes", 2, gpus=4)] == ["0,1", "2,3"]
    assert distributed.COORDINATOR_VAR not in speed.scaling_envs("processes", 1, gpus=0)[0]
    with pytest.raises(ValueError, match="needs at least 2 GPUs; this machine has 1"):
        speed.scaling_envs("processes", 2, gpus=1)
    assert "device_count=4" in speed.scaling_envs("devices", 4, gpus=0)[0]["XLA_FLAGS"]
    assert speed.scaling_envs("devices", 4, gpus=8) == [dict(os.environ)]  # real GPUs: nothing emulated


def test_scaling_efficiency_is_against_the_fewest_devices_of_the_same_kind_and_mode():
    row = dict(batch_size=8, num_envs=4, updates_per_s=1.0, compile_s=1.0, allreduce_ms=1.0, processes=1,
               threshold=0.8, budget_s=20.0, load_before=1.0, load_after=2.0)
    rows = speed.add_efficiency([
        dict(row, kind="devices", mode="weak", devices=1, env_steps_per_s=100.0, time_to_threshold_s=3.0),
        dict(row, kind="devices", mode="weak", devices=2, env_steps_per_s=150.0, time_to_threshold_s=None),
        dict(row, kind="processes", mode="weak", devices=2, env_steps_per_s=10.0, time_to_threshold_s=None),
        dict(row, kind="processes", mode="weak", devices=4, env_steps_per_s=10.0, time_to_threshold_s=None)])
    assert [(r["speedup"], r["efficiency"]) for r in rows] == [(1.0, 1.0), (1.5, 0.75), (1.0, 1.0), (1.0, 0.5)]
    table = speed.markdown("scaling", rows)
    assert "| devices | weak | 1 | 2 | 4 | 8 | 150 | 1 | 1.50 | 0.75 | not reached | 1 | 1.0 | 1.0 / 2.0 |" in table
    assert "| 1.00 | 1.00 | 3 |" in table and "first reached 0.8, within 20 s." in table


def test_the_c51_projection_by_scatter_add_and_by_the_dense_kernel_agree_and_are_both_timed():
    rows = speed.projection_rows([16, 32], atoms=11, repeats=2)
    assert [r["batch"] for r in rows] == [16, 32]
    assert all(r["max_abs_difference"] < 1e-5 and r["scatter_ms"] > 0 and r["dense_ms"] > 0 and r["load1"] >= 0
               for r in rows)
    assert speed.markdown("projection", rows).count("\n") == 4
