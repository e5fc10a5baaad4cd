"""benchmarks/compare_tables.py on two synthetic paper tables: one agent's finals per task, side by side,
with the paper table's statistics; tasks only one table has are skipped."""
import json

from benchmarks import compare_tables


def _table(path, rows):
    path.write_text(json.dumps({"meta": {}, "rows": rows}))
    return str(path)


def _row(task, agent, finals):
    mean = sum(finals) / len(finals)
    return dict(task=task, agent=agent, env_steps=100_000, final_window=[55_000, 100_000], final_per_seed=finals,
                final_mean=mean, final_sd=1.0, final_ci_lo=mean - 1, final_ci_hi=mean + 1)


def test_compares_one_agent_across_two_tables_per_shared_task_and_resolves_only_by_the_exact_test(tmp_path):
    a = _table(tmp_path / "a.json", [_row("hopper", "sac", [10.0, 11, 12, 13]), _row("walker2d", "sac", [1.0, 5, 2, 6]),
                                     _row("hopper", "smfp", [0.0, 0, 0, 0]), _row("ant", "sac", [1.0, 2, 3, 4])])
    b = _table(tmp_path / "b.json", [_row("hopper", "sac", [1.0, 2, 3, 4]), _row("walker2d", "sac", [3.0, 4, 0, 7])])
    md = compare_tables.main([f"{a}:sac:SAC new", f"{b}:sac:SAC old", "--out", str(tmp_path / "out.md")])
    assert md == (tmp_path / "out.md").read_text()
    assert "### hopper" in md and "### walker2d" in md and "### ant" not in md
    assert "| SAC new | 4 | 11.5 ± 1.0 [10.5, 12.5] over 55K-100K |" in md
    hopper, walker = md.split("### walker2d")
    assert "resolved at 5 %: SAC new > SAC old (Mann-Whitney, exact, two-sided p = 0.029, n = 4 vs 4)" in hopper
    assert "not resolved at 5 %" in walker
