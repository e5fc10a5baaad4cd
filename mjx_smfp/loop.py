"""The compiled rollout-and-update engine and the host loop around it.

One *iteration* = sample actions for all envs (one batched network call) -> step all envs
-> insert the transitions into the replay ring -> G = `updates_per_step` gradient updates
on uniformly sampled batches (`lax.scan` over G). A *host call* runs
`iterations_per_call` iterations in one `lax.scan` inside one `jax.jit` with the train
state donated, so XLA updates the replay ring and parameters in place. Warm-up (uniform
random actions, no updates) is a separate compiled phase run once. The host only logs,
evaluates, checkpoints and prints between calls, after one small device->host transfer.

Per-device logic lives in the pure functions `collect_step`, `update_step`, `iteration`
and `train_chunk`, which take the local shard of the train state; data parallelism wraps
them in `shard_map` over `distributed.DATA_AXIS` without changing them.
"""
from __future__ import annotations

import collections
import json
import math
import os
import signal
import time
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mjx_smfp import normalizer as norm_lib
from mjx_smfp import replay as replay_lib
from mjx_smfp.agents.base import Agent, Transition
from mjx_smfp.config import TrainConfig

# Python-side trace counters: incremented while JAX traces, so tests can assert that each
# phase compiles exactly once over a run.
TRACE_COUNTS: collections.Counter = collections.Counter()


@struct.dataclass
class TrainState:
    """Everything a run needs to continue, as one pytree (checkpoint = save this)."""

    agent: Any
    normalizer: norm_lib.NormalizerState
    replay: replay_lib.ReplayBuffer
    env_state: Any
    rng: jax.Array
    env_steps: jax.Array  # int32 total env transitions collected
    updates: jax.Array  # int32 total gradient updates


class NonFiniteError(RuntimeError):
    """A loss or metric became NaN/inf; the message names the last good checkpoint."""


# ----------------------------------------------------------------------------------------
# Per-device pure functions (the hot path).
# ----------------------------------------------------------------------------------------

def _norm(ts_normalizer, obs, normalize_obs: bool):
    return norm_lib.normalize(ts_normalizer, obs) if normalize_obs else obs


def collect_step(agent: Agent, env, ts: TrainState, *, random_actions: bool, normalize_obs: bool,
                 action_size: int) -> tuple[TrainState, dict]:
    """Act in all envs, step them, insert (s, a, r, s', terminated, truncated) into replay."""
    rng, k_act = jax.random.split(ts.rng)
    obs = ts.env_state.obs
    normalizer = norm_lib.update(ts.normalizer, obs) if normalize_obs else ts.normalizer
    if random_actions:
        action = jax.random.uniform(k_act, (obs.shape[0], action_size), minval=-1.0, maxval=1.0)
    else:
        action = agent.act(ts.agent, _norm(normalizer, obs, normalize_obs), k_act)
    env_state = env.step(ts.env_state, action)
    info = env_state.info
    transition = Transition(obs=obs, action=action, reward=env_state.reward, next_obs=info["final_obs"],
                            terminated=info["terminated"], truncated=info["truncated"])
    replay = replay_lib.insert(ts.replay, transition)
    stats = {
        "reward_sum": env_state.reward.sum(),
        "transitions": jnp.asarray(obs.shape[0], jnp.float32),
        "episodes": env_state.done.sum(),
        "completed_return_sum": info["completed_return"].sum(),
        "completed_length_sum": info["completed_length"].sum(),
        "terminations": info["terminated"].astype(jnp.float32).sum(),
        "nonfinite_physics": info["nonfinite"].astype(jnp.float32).sum(),
    }
    ts = ts.replace(normalizer=normalizer, replay=replay, env_state=env_state, rng=rng,
                    env_steps=ts.env_steps + obs.shape[0])
    return ts, stats


def update_step(agent: Agent, ts: TrainState, *, batch_size: int, normalize_obs: bool) -> tuple[TrainState, dict]:
    """One gradient update of the agent on a uniformly sampled, normalised replay batch."""
    rng, k_sample, k_update = jax.random.split(ts.rng, 3)
    batch = replay_lib.sample(ts.replay, k_sample, batch_size)
    if normalize_obs:
        batch = batch.replace(obs=norm_lib.normalize(ts.normalizer, batch.obs),
                              next_obs=norm_lib.normalize(ts.normalizer, batch.next_obs))
    agent_state, metrics = agent.update(ts.agent, batch, k_update)
    return ts.replace(agent=agent_state, rng=rng, updates=ts.updates + 1), metrics


def iteration(agent: Agent, env, cfg: TrainConfig, action_size: int, ts: TrainState):
    """collect_step then G update_steps; returns (ts, (collect stats, mean update metrics))."""
    ts, stats = collect_step(agent, env, ts, random_actions=False, normalize_obs=cfg.normalize_obs,
                             action_size=action_size)

    def one_update(ts, _):
        return update_step(agent, ts, batch_size=cfg.batch_size, normalize_obs=cfg.normalize_obs)

    ts, metrics = jax.lax.scan(one_update, ts, None, length=cfg.updates_per_step)
    return ts, (stats, jax.tree_util.tree_map(jnp.mean, metrics))


def _summarise(stats: dict, metrics: Optional[dict]) -> dict:
    """Reduce scan outputs to scalars on device (the only thing the host fetches)."""
    totals = jax.tree_util.tree_map(jnp.sum, stats)
    episodes = totals["episodes"]
    out = {
        "episodes": episodes,
        "episode_return": jnp.where(episodes > 0, totals["completed_return_sum"] / jnp.maximum(episodes, 1), jnp.nan),
        "episode_length": jnp.where(episodes > 0, totals["completed_length_sum"] / jnp.maximum(episodes, 1), jnp.nan),
        "reward_mean": totals["reward_sum"] / totals["transitions"],
        "terminations": totals["terminations"],
        "nonfinite_physics": totals["nonfinite_physics"],
    }
    if metrics is not None:
        means = jax.tree_util.tree_map(jnp.mean, metrics)
        out.update(means)
        out["all_finite"] = jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in jax.tree_util.tree_leaves(metrics)]))
    return out


def train_chunk(agent: Agent, env, cfg: TrainConfig, action_size: int, ts: TrainState,
                counter: collections.Counter = TRACE_COUNTS):
    """`iterations_per_call` iterations in one lax.scan; returns (ts, scalar summary)."""
    counter["train_chunk"] += 1
    ts, (stats, metrics) = jax.lax.scan(lambda s, _: iteration(agent, env, cfg, action_size, s), ts, None,
                                        length=cfg.iterations_per_call)
    summary = _summarise(stats, metrics)
    summary["env_steps"] = ts.env_steps
    summary["updates"] = ts.updates
    return ts, summary


def warmup_chunk(env, cfg: TrainConfig, action_size: int, ts: TrainState,
                 counter: collections.Counter = TRACE_COUNTS):
    """The warm-up phase: `warmup_iterations` steps of uniform random actions, no updates."""
    counter["warmup"] += 1

    def body(s, _):
        return collect_step(None, env, s, random_actions=True, normalize_obs=cfg.normalize_obs,
                            action_size=action_size)

    ts, stats = jax.lax.scan(body, ts, None, length=cfg.warmup_iterations)
    summary = _summarise(stats, None)
    summary["env_steps"] = ts.env_steps
    return ts, summary


def evaluate_episodes(agent: Agent, eval_env, episode_length: int, normalize_obs: bool,
                      agent_state, normalizer, rng, counter: collections.Counter = TRACE_COUNTS
                      ) -> tuple[jax.Array, jax.Array]:
    """Deterministic (eval_act) returns and lengths of one episode on each eval env copy."""
    counter["evaluate"] += 1
    state = eval_env.reset(rng)
    n = state.obs.shape[0]

    def body(carry, _):
        state, ret, length, finished = carry
        action = agent.eval_act(agent_state, _norm(normalizer, state.obs, normalize_obs))
        state = eval_env.step(state, action)
        live = 1.0 - finished
        ret = ret + live * state.reward
        length = length + live
        finished = jnp.maximum(finished, state.done.astype(jnp.float32))
        return (state, ret, length, finished), None

    zeros = jnp.zeros((n,), jnp.float32)
    (_, ret, length, _), _ = jax.lax.scan(body, (state, zeros, zeros, zeros), None, length=episode_length)
    return ret, length


# ----------------------------------------------------------------------------------------
# The compiled engine for one configuration.
# ----------------------------------------------------------------------------------------

def make_envs(cfg: TrainConfig):
    """(raw task, batched training env, batched eval env) from the registry and wrappers."""
    import envs
    from envs.wrappers import wrap_for_training

    raw = envs.make(cfg.env, **cfg.env_options)
    return (raw, wrap_for_training(raw, cfg.num_envs, cfg.episode_length),
            wrap_for_training(raw, cfg.eval_episodes, cfg.episode_length))


class Engine:
    """The compiled phases for one (config, agent, env): init, warm-up, train chunk, evaluate.

    Each phase is jitted once (train state donated); build one Engine per run and share it
    (tests share one across cases to pay compilation once).
    """

    def __init__(self, cfg: TrainConfig, agent: Agent, env=None, eval_env=None, *,
                 obs_size: Optional[int] = None, action_size: Optional[int] = None):
        raw = None
        if env is None:
            raw, env, eval_env = make_envs(cfg)
            obs_size, action_size = raw.observation_size, raw.action_size
        self.raw_env = raw
        self.cfg, self.agent, self.env, self.eval_env = cfg, agent, env, eval_env
        self.obs_size = int(obs_size if obs_size is not None else env.observation_size)
        self.action_size = int(action_size if action_size is not None else env.action_size)
        # Traces of each phase by this engine (a Python side effect: counts compilations).
        self.trace_counts: collections.Counter = collections.Counter()
        counts = self.trace_counts
        self.init = jax.jit(self._init)
        self.warmup = jax.jit(lambda ts: warmup_chunk(env, cfg, self.action_size, ts, counts), donate_argnums=0)
        self.train_chunk = jax.jit(lambda ts: train_chunk(agent, env, cfg, self.action_size, ts, counts),
                                   donate_argnums=0)
        if raw is not None:
            # The wrappers' evaluator: separate unbatched copies, stops when all episodes ended.
            from envs.wrappers import make_evaluator

            def policy_fn(params, obs):
                counts["evaluate"] += 1
                agent_state, normalizer = params
                return agent.eval_act(agent_state, _norm(normalizer, obs, cfg.normalize_obs))

            evaluator = make_evaluator(raw, policy_fn, cfg.eval_episodes, cfg.episode_length)
            self._evaluate = lambda a, n, r: (lambda res: (res.returns, res.lengths))(evaluator((a, n), r))
        else:
            self._evaluate = jax.jit(lambda a, n, r: evaluate_episodes(agent, eval_env, cfg.episode_length,
                                                                       cfg.normalize_obs, a, n, r, counts))

    def _init(self, rng: jax.Array) -> TrainState:
        k_agent, k_env, k_loop = jax.random.split(rng, 3)
        return TrainState(
            agent=self.agent.init(k_agent, self.obs_size, self.action_size),
            normalizer=norm_lib.init(self.obs_size),
            replay=replay_lib.init(self.cfg.replay_capacity, self.obs_size, self.action_size),
            env_state=self.env.reset(k_env),
            rng=k_loop,
            env_steps=jnp.zeros((), jnp.int32),
            updates=jnp.zeros((), jnp.int32),
        )

    def init_state(self, seed: Optional[int] = None) -> TrainState:
        """Fresh train state (after checking that the replay ring fits in memory)."""
        replay_lib.check_fits(self.cfg.replay_capacity, self.obs_size, self.action_size)
        return self.init(jax.random.PRNGKey(self.cfg.seed if seed is None else seed))

    def evaluate(self, ts: TrainState, rng: jax.Array) -> tuple[np.ndarray, np.ndarray]:
        """Returns and lengths of `eval_episodes` deterministic episodes (host numpy)."""
        ret, length = self._evaluate(ts.agent, ts.normalizer, rng)
        return np.asarray(ret), np.asarray(length)

    @property
    def warmup_steps(self) -> int:
        return self.cfg.warmup_iterations * self.cfg.num_envs

    @property
    def final_env_steps(self) -> int:
        return self.warmup_steps + self.cfg.train_calls * self.cfg.iterations_per_call * self.cfg.num_envs


# ----------------------------------------------------------------------------------------
# Host loop.
# ----------------------------------------------------------------------------------------

class StopFlag:
    """SIGINT handler: the first Ctrl-C asks the loop to checkpoint and stop after the
    current host call; a second one interrupts immediately."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __call__(self, signum=None, frame=None):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\n[train] interrupt: saving a checkpoint after this host call (Ctrl-C again to abort)", flush=True)

    def install(self):
        try:
            self._previous = signal.signal(signal.SIGINT, self)
        except ValueError:  # not in the main thread
            self._previous = None
        return self

    def uninstall(self):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


def _format_eta(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _crossed(before: int, after: int, interval: int) -> bool:
    return interval > 0 and after // interval > before // interval


def run(engine: Engine, run_dir: str, *, resume: bool = False, stop: Optional[StopFlag] = None,
        logger=None, max_calls: Optional[int] = None, verbose: bool = True) -> TrainState:
    """Train to `total_env_steps` (or `max_calls` host calls), logging, evaluating and
    checkpointing into `run_dir`; with `resume`, continue from its latest checkpoint.

    Returns the final train state. Raises NonFiniteError if a loss goes non-finite.
    """
    from mjx_smfp import checkpoint as ckpt_lib
    from mjx_smfp import config as config_lib
    from mjx_smfp.logger import Logger

    cfg = engine.cfg
    os.makedirs(run_dir, exist_ok=True)
    checkpointer = ckpt_lib.Checkpointer(os.path.join(run_dir, "checkpoints"), max_to_keep=cfg.keep_checkpoints)
    own_logger = logger is None
    logger = logger or Logger(run_dir)
    with open(os.path.join(run_dir, "config.json"), "w") as f:
        json.dump(config_lib.to_dict(cfg, engine.agent.config), f, indent=2)
    stop = (stop or StopFlag()).install()

    if resume and checkpointer.latest_step() is not None:
        replay_lib.check_fits(cfg.replay_capacity, engine.obs_size, engine.action_size)
        ts = checkpointer.restore(jax.eval_shape(engine.init, jax.random.PRNGKey(cfg.seed)))
    else:
        ts = engine.init_state()
    if resume:
        if verbose and checkpointer.latest_step() is not None:
            print(f"[train] resumed from {checkpointer.latest_path()} at env step {int(ts.env_steps)}", flush=True)

    eval_rng = jax.random.PRNGKey(cfg.seed + 1_000_003)
    last_eval = float("nan")
    try:
        if int(ts.env_steps) < engine.warmup_steps:
            t0 = time.time()
            ts, summary = engine.warmup(ts)
            summary = jax.device_get(summary)
            logger.write(int(summary["env_steps"]), {"train/" + k: v for k, v in summary.items() if k != "env_steps"}
                         | {"perf/warmup_seconds": time.time() - t0})
        steps, updates = int(ts.env_steps), int(ts.updates)
        start_steps, t_start, calls = steps, time.time(), 0
        last_print = 0.0
        while steps < engine.final_env_steps and (max_calls is None or calls < max_calls):
            t0 = time.time()
            ts, summary = engine.train_chunk(ts)
            summary = jax.device_get(summary)
            dt = time.time() - t0
            calls += 1
            prev_steps, steps = steps, int(summary["env_steps"])
            prev_updates, updates = updates, int(summary["updates"])
            if not bool(summary["all_finite"]):
                good = checkpointer.latest_path()
                raise NonFiniteError(
                    f"non-finite loss/metric between env steps {prev_steps} and {steps}; "
                    f"last good checkpoint: {good or 'none saved yet'}")
            scalars = {"train/" + k: float(v) for k, v in summary.items()
                       if k not in ("env_steps", "updates", "all_finite")}
            scalars["perf/env_steps_per_s"] = (steps - prev_steps) / dt
            scalars["perf/updates_per_s"] = (updates - prev_updates) / dt
            if _crossed(prev_steps, steps, cfg.eval_interval) or steps >= engine.final_env_steps:
                returns, lengths = engine.evaluate(ts, jax.random.fold_in(eval_rng, steps))
                last_eval = float(returns.mean())
                scalars.update({"eval/return_mean": last_eval, "eval/return_std": float(returns.std()),
                                "eval/length_mean": float(lengths.mean())})
            logger.write(steps, scalars)
            if _crossed(prev_steps, steps, cfg.checkpoint_interval) or stop.requested:
                checkpointer.save(steps, ts)
            if verbose and (time.time() - last_print > 5.0 or steps >= engine.final_env_steps or stop.requested):
                last_print = time.time()
                rate = (steps - start_steps) / max(time.time() - t_start, 1e-9)
                eta = (engine.final_env_steps - steps) / rate if rate > 0 else float("inf")
                first = " (first call: includes compilation)" if calls == 1 else ""
                print(f"[train] steps {steps:,}/{engine.final_env_steps:,} | {scalars['perf/env_steps_per_s']:,.0f} "
                      f"env-steps/s | {scalars['perf/updates_per_s']:,.0f} updates/s | ETA {_format_eta(eta)} | "
                      f"eval return {last_eval:.2f}{first}", flush=True)
            if stop.requested:
                if verbose:
                    print(f"[train] stopped; checkpoint saved to {checkpointer.latest_path()}", flush=True)
                break
        else:
            if checkpointer.latest_step() != steps:
                checkpointer.save(steps, ts)
    finally:
        stop.uninstall()
        if own_logger:
            logger.close()
        checkpointer.close()
    return ts
