"""The paper protocol on the CPU (config preset `paper`: 1 env per seed, UTD 1, batch 256, 5K env
steps of random actions, 10 deterministic evaluation episodes every 5K env steps) at 100K env steps
per seed, beside the published returns at ~1M (SMFP.md §8). Final = the mean of each seed's last 10
evaluations (55K-100K at this budget). `paper_level` starts SAC at SMFP's initial temperature;
`paper_ab` holds the method A/Bs of SMFP, each variant against the default seed for seed."""
from __future__ import annotations

import dataclasses

from benchmarks.harness.spec import Against, Group, Study

# The protocol at a 100K budget: the ring holds the whole run, a checkpoint every 10K.
PAPER = dict(preset="paper", seed=0, total_env_steps=100_000, replay_capacity=100_000, checkpoint_interval=10_000,
             keep_checkpoints=2)
# Published returns at ~1M env steps (Gym v4; SMFP.md §8): task -> {method: return}.
PUBLISHED = {
    "ant": {"SMFP": 7520, "DIME": 7100, "SAC Flow": 5850},
    "halfcheetah": {"SMFP": 15800, "DIME": 13500, "SAC Flow": 14900},
    "swimmer": {"SMFP": 137.2, "DIME": 118.8, "SAC Flow": 101.5},
    "humanoid": {"SAC (reference impl.)": 5000},
    "walker2d": {"SAC (reference impl.)": 4800},
    "hopper": {"SAC (reference impl.)": 3200},
}

CPU = Study(name="paper_cpu", doc=__doc__, tasks=("halfcheetah", "hopper", "walker2d"), agents=("smfp", "sac"),
            seeds=4, base=PAPER, groups=(Group(against=(Against("agent", "sac"),)),), published=PUBLISHED)
LEVEL = dataclasses.replace(CPU, name="paper_level", base={**PAPER, "init_temperature": 0.1})
AB = Study(name="paper_ab", doc=__doc__, tasks=("halfcheetah", "hopper"), agents=("smfp",), seeds=3, base=PAPER,
           variants={"default": {}, "anchor_flow": {"meanflow_target": "anchor_flow"},
                     "power_0.2": {"meanflow_weight_power": 0.2}, "one_step_0.25": {"one_step_fraction": 0.25},
                     "default_family25": {}},  # the default again, on another CPU (AMD family 25)
           groups=(Group(select=lambda r, _: r["variant"] != "default_family25",
                         against=(Against("variant", "default", ("agent",), paired=True),)),
                   Group("same machine as the rerun", lambda r, _: r["variant"] in ("default_family25", "power_0.2",
                                                                                 "one_step_0.25"),
                         (Against("variant", "default_family25", ("agent",), paired=True),)),
                   Group("the default and its rerun on the other CPU", lambda r, _: r["variant"].startswith("default"),
                         (Against("variant", "default", ("agent",), paired=True),))))
