"""The aggregation of benchmarks/wallclock_vs_sac.py on synthetic curves (no training)."""
import json
import math

import numpy as np

from benchmarks import wallclock_vs_sac as wc


def _run(agent, seed, walls, steps, returns, **extra):
    pts = [{"wall_s": w, "env_steps": s, "updates": s // 4, "return": r, "return_std": 0.0}
           for w, s, r in zip(walls, steps, returns)]
    return {"agent": agent, "seed": seed, "points": pts, **extra}


RUNS = [
    _run("smfp", 0, [10, 20, 30], [0, 1000, 2000], [0.1, 0.85, 0.9], compile_s=5.0),
    _run("smfp", 1, [10, 20, 30], [0, 1000, 2000], [0.1, 0.5, 0.95], compile_s=7.0),
    _run("sac", 0, [8, 16, 24, 32], [0, 1500, 3000, 4500], [0.0, 0.2, 0.3, 0.25], compile_s=3.0),
    _run("sac", 1, [8, 16, 24, 32], [0, 1500, 3000, 4500], [0.0, 0.1, 0.2, 0.1], compile_s=3.0),
]


def test_time_to_threshold_first_crossing_or_nan():
    assert wc.time_to_threshold(RUNS[0]["points"], 0.8) == (20.0, 1000.0)
    assert wc.time_to_threshold(RUNS[1]["points"], 0.8) == (30.0, 2000.0)
    assert all(math.isnan(v) for v in wc.time_to_threshold(RUNS[2]["points"], 0.8))


def test_summarise_mean_sd_over_seeds():
    rows = {r["agent"]: r for r in wc.summarise(RUNS, 0.8)}
    smfp, sac = rows["smfp"], rows["sac"]
    assert smfp["reached"] == 2 and sac["reached"] == 0 and smfp["seeds"] == 2
    assert smfp["time_to_threshold_s_mean"] == 25.0
    np.testing.assert_allclose(smfp["time_to_threshold_s_sd"], np.std([20, 30], ddof=1))
    np.testing.assert_allclose(smfp["final_return_mean"], 0.925)
    np.testing.assert_allclose(smfp["best_return_mean"], 0.925)
    np.testing.assert_allclose(sac["best_return_mean"], 0.25)
    np.testing.assert_allclose(sac["final_return_mean"], 0.175)
    assert math.isnan(sac["time_to_threshold_s_mean"])
    assert smfp["compile_s_mean"] == 6.0
    json.dumps(rows)  # JSON-able
    table = wc.markdown_table(list(rows.values()))
    assert "| smfp | 2/2 (≥ 0.8) | 25.0 ± 7.1 |" in table and "| sac | 0/2 (≥ 0.8) | — |" in table


def test_curves_on_grid_step_and_interp():
    grid = np.array([0.0, 10, 15, 20, 30, 40])
    step = wc.curve_on_grid(RUNS[0]["points"], "wall_s", grid, step=True)
    np.testing.assert_allclose(step, [np.nan, 0.1, 0.1, 0.85, 0.9, np.nan])
    lin = wc.curve_on_grid(RUNS[0]["points"], "env_steps", np.array([500.0, 2500]), step=False)
    np.testing.assert_allclose(lin, [0.475, np.nan])
    mean, sd, count = wc.mean_sd_curves(RUNS, "smfp", "wall_s", np.array([20.0, 35]), step=True)
    np.testing.assert_allclose(mean, [0.675, np.nan])
    np.testing.assert_allclose(sd[0], np.std([0.85, 0.5], ddof=1))
    assert list(count) == [2, 0]


def test_split_overrides_routes_agent_only_fields_to_any_list_of_agents():
    out = wc.split_overrides({"batch_size": "128", "actor_lr": "1e-3", "md_coef": "0.02", "flow_steps": "2"},
                             ("smfp", "sac", "sacflow", "dime"))
    assert out["smfp"] == {"batch_size": "128", "actor_lr": "1e-3", "md_coef": "0.02"}
    assert out["sac"] == out["dime"] == {"batch_size": "128", "actor_lr": "1e-3"}
    assert out["sacflow"] == {"batch_size": "128", "actor_lr": "1e-3", "flow_steps": "2"}


def test_results_md_section_replaced(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n\n## Other\n\nkeep\n")
    wc.write_results_md("first", str(path))
    wc.write_results_md("second", str(path))
    text = path.read_text()
    assert text.count(wc.SECTION) == 1 and "second" in text and "first" not in text and "keep" in text
