"""benchmarks/throughput.py: the SMFP-vs-SAC cost comparison runs and is recorded (tiny nets, CPU)."""
from benchmarks import throughput

TINY = dict(actor_hidden=(16, 16), critic_hidden=(16, 16), time_embed_dim=8)


def test_agent_costs_times_both_agents_and_results_md_gets_a_ratio_row(tmp_path):
    costs = throughput.agent_costs(["sac", "smfp"], TINY, obs_size=3, action_size=2, batch_size=32,
                                   act_envs=(4, 64), repeats=2, rounds=1)
    for name in ("sac", "smfp"):
        assert costs[f"{name}_update_ms"] > 0 and costs[f"{name}_act_64_ms"] > 0
        assert abs(costs[f"{name}_actions_per_s_64"] - 64e3 / costs[f"{name}_act_64_ms"]) < 1e-6 * costs[
            f"{name}_actions_per_s_64"]
    result = {"date": "d", "env": "e", "agent": "smfp", "batch_size": 32, "machine": "m | cpu", **costs,
              "smfp_over_sac_update": costs["smfp_update_ms"] / costs["sac_update_ms"],
              "smfp_over_sac_act_64": costs["smfp_act_64_ms"] / costs["sac_act_64_ms"]}
    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n\n## Other\n\nkept\n")
    throughput.write_results_md(result, str(path))
    throughput.write_results_md(result, str(path))  # a second run appends a row to the same table
    text = path.read_text()
    assert text.count(throughput.COST_SECTION) == 1 and "kept" in text
    rows = [line for line in text.splitlines() if line.startswith("| d | e | smfp |")]
    assert len(rows) == 2 and f"**{result['smfp_over_sac_update']:.2f}x**" in rows[0]
    assert throughput.SECTION not in text  # no loop figures, no loop row
