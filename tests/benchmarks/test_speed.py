"""benchmarks/speed.py at tiny sizes on the CPU: every agent's NFE, action and update costs are
measured in one interleaved run; the wrapper's and raw stepping are timed on the same task; the
loop's speed is read off runner.run; a table is remade from its saved JSON alone."""
import json

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
