"""benchmarks/smfp_profile.py: every part it profiles runs (tiny sizes) and its table reads them."""
from benchmarks import smfp_profile


def test_every_profiled_part_runs_and_the_table_gives_the_smfp_over_sac_ratios():
    ms = smfp_profile.time_parts(envs=8, batch=8, repeats=1, rounds=1)
    assert {"act: SAC", "act: SMFP", "update: SAC", "update: SMFP", "head width: MLP n = 6",
            "noise: SMFP, normal_pair"} <= set(ms)
    assert all(v > 0 for v in ms.values())
    results = {"xla_default": {"ms": ms, "physics_env_steps_per_s": 100.0},
               "reduce": {"ms": {k: 2 * v for k, v in ms.items()}, "physics_env_steps_per_s": 50.0}}
    meta = dict(machine="m", date="d", envs=8, batch=8, repeats=1, rounds=1, fusion_types="reduce")
    table = smfp_profile.markdown(results, meta)
    ratio = ms["act: SMFP"] / ms["act: SAC"]
    assert f"| act: SMFP / SAC | {ratio:.2f}x | {ratio:.2f}x |" in table  # doubling both keeps the ratio
    assert "only `reduce` fusions" in table and "--fusion_types reduce" in table and "| 100 | 50 |" in table
