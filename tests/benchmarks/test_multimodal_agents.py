"""benchmarks/multimodal_agents.py's aggregation on synthetic runs (no training)."""
import numpy as np

from benchmarks import multimodal_agents as mm


def _run(agent, seed, reward, masses):
    masses = np.asarray(masses)
    return dict(agent=agent, seed=seed, seconds=10.0, reward=reward, masses=masses,
                modes_over_10pct=int(np.sum(masses >= 0.1)))


def test_table_gives_mean_sd_over_seeds_per_agent_and_a_markdown_row_each():
    runs = [_run("smfp", 0, 0.8, [0.25, 0.25, 0.2, 0.2]), _run("smfp", 1, 0.6, [0.5, 0.3, 0.05, 0.05]),
            _run("sac", 0, 0.9, [0.95, 0, 0, 0])]
    rows = {r["agent"]: r for r in mm.table(runs)}
    np.testing.assert_allclose(rows["smfp"]["reward_mean"], 0.7)
    np.testing.assert_allclose(rows["smfp"]["top_mode_mass_mean"], 0.375)
    np.testing.assert_allclose(rows["smfp"]["modes_mean"], 3.0)
    assert rows["sac"]["seeds"] == 1 and rows["sac"]["modes_mean"] == 1
    md = mm.markdown(list(rows.values()))
    assert "| SMFP | 2 | 0.70 ± 0.10 | 0.38 ± 0.12 | 3.0 ± 1.0 |" in md and "| Gaussian SAC | 1 |" in md
