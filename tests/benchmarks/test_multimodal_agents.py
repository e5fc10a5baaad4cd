"""benchmarks/multimodal_agents.py's aggregation on synthetic runs (no training), its labels for agents
with options (the registry's names: no table of display names to keep), and its k-NN entropy against the closed form of a Gaussian."""
import math

import numpy as np

from benchmarks import multimodal_agents as mm


def _run(agent, seed, reward, masses, estimate=-1.0, knn=-2.0):
    masses = np.asarray(masses)
    return dict(agent=agent, seed=seed, seconds=10.0, reward=reward, masses=masses,
                modes_over_10pct=int(np.sum(masses >= 0.1)), entropy_estimate=estimate, knn_entropy=knn)


def test_table_gives_mean_sd_over_seeds_per_agent_and_a_markdown_row_each():
    runs = [_run("smfp", 0, 0.8, [0.25, 0.25, 0.2, 0.2]), _run("smfp", 1, 0.6, [0.5, 0.3, 0.05, 0.05]),
            _run("sac", 0, 0.9, [0.95, 0, 0, 0]), _run("sacflow+entropy_estimator=marginal", 0, 0.7, [1, 0, 0, 0])]
    rows = {r["agent"]: r for r in mm.table(runs)}
    np.testing.assert_allclose(rows["smfp"]["reward_mean"], 0.7)
    np.testing.assert_allclose(rows["smfp"]["reward_sd"], np.std([0.8, 0.6], ddof=1))  # ddof 1, as every table
    np.testing.assert_allclose(rows["smfp"]["top_mode_mass_mean"], 0.375)
    np.testing.assert_allclose(rows["smfp"]["modes_mean"], 3.0)
    assert rows["sac"]["seeds"] == 1 and rows["sac"]["modes_mean"] == 1 and rows["sac"]["modes_sd"] == 0.0
    md = mm.markdown(list(rows.values()))
    assert "| smfp | 2 | 0.70 ± 0.14 | 0.38 ± 0.18 | 3.0 ± 1.4 | -1.0 ± 0.0 | -2.0 ± 0.0 |" in md
    assert "| sac | 1 |" in md and "| sacflow (entropy_estimator=marginal) | 1 |" in md


def test_knn_entropy_matches_a_gaussians_closed_form_in_2d():
    """Kozachenko-Leonenko on 4000 draws of N(0, 0.1^2 I_2): H = log(2 pi e) + 2 log 0.1 = -1.77 nats."""
    x = 0.1 * np.random.default_rng(0).standard_normal((4000, 2))
    assert abs(mm.knn_entropy(x) - (math.log(2 * math.pi * math.e) + 2 * math.log(0.1))) < 0.1
