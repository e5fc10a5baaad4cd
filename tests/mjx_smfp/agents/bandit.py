"""The 4-mode bandit every agent is trained on the same way in tests, and the train helper."""
import dataclasses

from mjx_smfp.config import TrainConfig
from mjx_smfp.engine import Engine

# One-step bandit, 4 equal modes at (+-0.6, +-0.6): 8k env steps, ~2k gradient steps.
MULTIMODAL = TrainConfig(env="multimodal", env_kwargs='{"num_modes": 4}', num_envs=16, episode_length=1,
                         total_env_steps=8_000, batch_size=128, updates_per_step=4, replay_capacity=20_000,
                         learning_starts=256, iterations_per_call=50, eval_interval=0, eval_episodes=16,
                         checkpoint_interval=0, normalize_obs=False)
# What all agents share on the bandit ("trained the same way"): gamma = 0 (one-step task),
# rewards in [0, 1] so a small temperature, and faster learning rates for the short budget.
BANDIT = dict(actor_hidden=(64, 64), critic_hidden=(64, 64), gamma=0.0, actor_lr=1e-3, critic_lr=1e-3,
              init_temperature=0.01)


def train(agent: str, agent_config, cfg: TrainConfig, seed: int = 0, task=None):
    """Build an Engine for `agent` and run warm-up plus every train call; returns (engine, state)."""
    engine = Engine(dataclasses.replace(cfg, agent=agent), agent_config, task=task)
    ts = engine.init_state(seed)
    ts, _ = engine.warmup(ts)
    for _ in range(cfg.train_calls):
        ts, _ = engine.train_chunk(ts)
    return engine, ts
