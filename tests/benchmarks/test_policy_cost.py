"""benchmarks/policy_cost.py: every agent's NFE, action and update costs are measured in one run
and land in a RESULTS.md table (tiny nets and sizes, CPU)."""
from benchmarks import policy_cost


def test_policy_cost_rows_for_all_four_agents_and_a_results_table(tmp_path):
    rows = policy_cost.measure(["sac", "smfp", "sacflow", "dime"], obs_size=3, action_size=2, hidden=(8, 8),
                               act_envs=(4,), batches=(16,), repeats=1, rounds=1)
    by = {r["agent"]: r for r in rows}
    assert (by["sac"]["nfe"], by["smfp"]["nfe"], by["sacflow"]["nfe"], by["dime"]["nfe"]) == (1, 1, 4, 16)
    assert by["sac"]["update_over_sac"] == 1.0
    assert all(r[k] > 0 for r in rows for k in ("act_4_ms", "update_16_ms"))
    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n\n## Other\n\nkept\n")
    md = policy_cost.markdown_rows(rows, "e", "d", "m", (4,), (16,))
    policy_cost.write_results_md(md, str(path))
    policy_cost.write_results_md(md, str(path))
    text = path.read_text()
    assert text.count(policy_cost.SECTION) == 1 and "kept" in text
    assert sum(line.startswith("| d | e | dime | 16 |") for line in text.splitlines()) == 2
