"""`TrainConfig`: the loop's typed, frozen fields (every one a `--flag`) and what follows from them.
The agent's own fields are its `Config` (mjx_smfp/agents/)."""
from __future__ import annotations

import dataclasses
import json


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    env: str = "inverted_pendulum"  # task name (see the list of envs)
    agent: str = "sac"  # agent name: its Config adds the agent options
    preset: str = "cpu"  # scale preset: auto, cpu, fast or paper (stored resolved, never auto)
    recipe: str = "auto"  # shared learning recipe: classic | parallel | authors (mjx_smfp/recipes.py); auto: the preset's
    env_kwargs: str = "{}"  # JSON object of task constructor options, e.g. '{"num_modes": 4}'
    physics: str = "gymnasium"  # MJX tasks' physics preset: gymnasium (faithful) | gpu (fast preset) | fast (docs/physics.md)
    num_envs: int = 16  # parallel envs stepped together (global over devices)
    episode_length: int = 1000  # time limit of an episode, in env steps
    total_env_steps: int = 100_000  # env steps to train for, rounded up to whole host calls
    batch_size: int = 256  # transitions per gradient update (global unless batch_per_device)
    updates_per_step: int = 4  # G: gradient updates per iteration (one step of all envs)
    n_step: int = 1  # n-step returns: sum up to n rewards of one env (stops at episode ends), bootstrap with gamma^m
    replay_capacity: int = 300_000  # transitions the device-resident replay ring holds
    learning_starts: int = 5_000  # env steps of uniform random actions before any update
    iterations_per_call: int = 100  # iterations per compiled host call (lax.scan length)
    normalize_obs: bool = True  # running mean/variance normalisation of observations
    normalize_reward: bool = False  # divide sampled rewards by max(std(G), max|G| / reward_g_max), G the running return
    reward_g_max: float = 5.0  # with normalize_reward: the largest |return| seen maps to at most this
    eval_interval: int = 20_000  # env steps between evaluations; 0 disables
    eval_episodes: int = 10  # episodes per evaluation (run in parallel on separate envs)
    eval_stochastic: bool = True  # also run eval_episodes episodes of the exploring (stochastic) policy
    checkpoint_interval: int = 50_000  # env steps between checkpoints; 0 = only at the end
    keep_checkpoints: int = 3  # newest checkpoints kept on disk
    checkpoint_replay: bool = True  # save the replay ring too (false: small checkpoints; a resume refills it by a warm-up)
    seed: int = 0  # RNG seed of the run (init, envs, exploration)
    log_dir: str = "runs"  # runs go to <log_dir>/<env>/<agent>/<timestamp>/
    run_dir: str = ""  # explicit run directory (overrides log_dir layout); set on resume
    # Data parallelism over the `data` mesh axis (mjx_smfp/distributed.py): 1 = the plain
    # single-device engine, N > 1 = N devices, 0 = every visible device (all hosts).
    # num_envs and replay_capacity are global (split over devices); batch_size is global
    # (strong scaling) unless batch_per_device (then it is per device, global = N x batch).
    num_devices: int = 1  # devices to train on: 1 = plain single device, N > 1 = N devices, 0 = all
    batch_per_device: bool = False  # batch_size per device (global batch = N x batch_size)
    num_seeds: int = 1  # independent runs in one program (a vmap axis); run k = seed + k; needs num_devices 1

    @property
    def env_options(self) -> dict:
        return json.loads(self.env_kwargs)

    @property
    def warmup_iterations(self) -> int:
        """Iterations of random actions: learning_starts rounded up to whole env batches (>= 1)."""
        return max(1, -(-self.learning_starts // self.num_envs))

    @property
    def train_calls(self) -> int:
        """Host calls of `iterations_per_call` iterations after warm-up (rounded up)."""
        remaining = max(0, self.total_env_steps - self.warmup_iterations * self.num_envs)
        per_call = self.iterations_per_call * self.num_envs
        return -(-remaining // per_call)
