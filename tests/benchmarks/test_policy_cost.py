"""benchmarks/policy_cost.py: every agent's NFE, action and update costs are measured in one run
and land in a RESULTS.md table (tiny nets and sizes, CPU)."""
from benchmarks import policy_cost


def test_policy_cost_rows_for_all_four_agents_and_a_results_table(tmp_path):
    rows = policy_cost.measure(["sac", "smfp", "sacflow", "dime"], obs_size=3, action_size=2, hidden=(8, 8),
                               act_envs=(4, 256), batches=(256,), repeats=1, rounds=1)
    by = {r["agent"]: r for r in rows}
    assert (by["sac"]["nfe"], by["smfp"]["nfe"], by["sacflow"]["nfe"], by["dime"]["nfe"]) == (1, 1, 4, 16)
    assert by["sac"]["update_over_sac"] == 1.0
    assert all(r[k] > 0 for r in rows for k in ("act_4_ms", "act_256_ms", "update_256_ms"))
    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n\n## Other\n\nkept\n")
    md = policy_cost.markdown_rows(rows, "e", "d", "m")
    policy_cost.write_results_md(md, str(path))
    policy_cost.write_results_md(md, str(path))
    text = path.read_text()
    assert text.count(policy_cost.SECTION) == 1 and "kept" in text
    assert sum(line.startswith("| d | e | dime | 16 |") for line in text.splitlines()) == 2
    # Cells stay under their headers when a run timed a subset of the sizes: @256 action and update
    # filled, @1, @4096 and @8192 marked "-"; every row has the header's number of cells.
    header = next(line for line in text.splitlines() if line.startswith("| date |"))
    sac = next(line for line in text.splitlines() if line.startswith("| d | e | sac |")).split(" | ")
    assert len(sac) == len(header.split(" | "))
    assert (sac[4], sac[6], sac[8]) == ("-", "-", "-") and sac[5] != "-" and sac[7] != "-"
