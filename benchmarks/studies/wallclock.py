"""SMFP and Gaussian SAC (and the other agents) at equal wall-clock: every run gets the same run
clock, building and compiling counted (cold: the persistent compilation cache off), evaluation
excluded; the final return is each seed's last evaluation, beside the time and env steps each seed
took to first reach a threshold. The runs recorded before the harness trained each seed in its own
process, one after another with the agents' order alternating per seed (their records say so)."""
from __future__ import annotations

import dataclasses

from benchmarks.harness.spec import Study

# The 4-mode bandit's settings of docs/smfp.md ("Choosing defaults"), applied to both agents.
BANDIT_SETTINGS = dict(env_kwargs='{"num_modes": 4}', actor_hidden=(64, 64), critic_hidden=(64, 64), actor_lr=1e-3,
                       critic_lr=1e-3, init_temperature=0.01, batch_size=128)
BANDIT = Study(name="wallclock_bandit", doc=__doc__, tasks=("multimodal",), agents=("smfp", "sac"), seeds=3,
               base=dict(preset="cpu", **BANDIT_SETTINGS), budget="90s", eval_every="4.5s", final_evals=1,
               cuts=("end",), thresholds={"multimodal": 0.8})
# The same before the bandit's task preset took those settings: 3x256 nets, lr 3e-4, alpha0 0.05, batch 256.
BANDIT_DEFAULTS = dataclasses.replace(BANDIT, name="wallclock_bandit_defaults", base=dict(
    preset="cpu", env_kwargs='{"num_modes": 4}', actor_hidden=(256,) * 3, critic_hidden=(256,) * 3, actor_lr=3e-4,
    critic_lr=3e-4, init_temperature=0.05, batch_size=256))
MUJOCO = Study(name="wallclock_mujoco", doc=__doc__, tasks=("inverted_double_pendulum", "halfcheetah"),
               agents=("smfp", "sac"), seeds=2, base=dict(preset="cpu"), budget="6min", eval_every="18s",
               final_evals=1, cuts=("end",), thresholds={"inverted_double_pendulum": 9000.0, "halfcheetah": 1500.0})
AGENTS = dataclasses.replace(MUJOCO, name="wallclock_agents", agents=("smfp", "sac", "sacflow", "dime"),
                             budget="5min", eval_every="15s")
