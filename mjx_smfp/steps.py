"""Room 1 of the engine: the pure per-device step functions of the hot path.

`make_steps(context)` builds, once, closures over one frozen `StepContext` (agent, batched
env, config, per-device sizes, mesh axis): `init`, `collect`, `update`, `iteration`,
`train_chunk` and `warmup_chunk`. Each takes and returns this device's `TrainState` and
touches nothing else: no host, no sharding, no jit — the Engine (mjx_smfp/engine.py) wraps
them in `shard_map`/`jit`, and the runner (mjx_smfp/runner.py) drives them.

One *iteration* = sample actions for all envs (one batched network call) -> step all envs
-> insert the transitions into the replay ring -> G = `updates_per_step` gradient updates on
uniformly sampled batches (`lax.scan` over G; n-step windows when `n_step` > 1, see replay.py).
A *train chunk* is up to `iterations_per_call` iterations (a run-time count) in one
`fori_loop`, reduced to a few scalars on device; warm-up is `warmup_iterations` steps of
uniform random actions, no updates.

Data parallelism (`axis` set, `num_shards` devices): `rng` is replicated and folded with the
device index, the normaliser averages its moments over `axis`, the agent averages its
gradients over it (it was built with the axis), summaries are psum-ed / pmean-ed, and
`env_steps` counts every device's transitions. With one device `axis` is None: no
collectives, no key folding, so the sharded path on one device is bit-identical to the plain one.
"""
from __future__ import annotations

import collections
import dataclasses
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
from flax import struct

from mjx_smfp import normalizer as norm_lib
from mjx_smfp import replay as replay_lib
from mjx_smfp.agents.base import Agent
from mjx_smfp.types import Transition
from mjx_smfp.config import TrainConfig


@struct.dataclass
class TrainState:
    """Everything a run needs to continue, as one pytree (checkpoint = save this)."""

    agent: Any
    normalizer: norm_lib.NormalizerState
    replay: replay_lib.ReplayBuffer
    env_state: Any
    rng: jax.Array
    env_steps: jax.Array  # int32 total env transitions collected (all devices)
    updates: jax.Array  # int32 total gradient updates


@dataclasses.dataclass(frozen=True)
class StepContext:
    """What every per-device step closes over; built once per run by the Engine."""

    agent: Agent
    env: Any  # this device's batched training env (envs.wrappers.wrap_for_training)
    cfg: TrainConfig
    replay_capacity: int  # replay rows on this device
    batch_size: int  # rows per device per gradient update
    axis: Optional[str] = None  # the data-parallel mesh axis (None: one device)
    num_shards: int = 1


class Steps(NamedTuple):
    init: Callable  # rng -> TrainState
    collect: Callable  # (ts, random_actions) -> (ts, stats)
    update: Callable  # ts -> (ts, metrics)
    iteration: Callable  # ts -> (ts, (stats, metrics))
    train_chunk: Callable  # (ts, iterations) -> (ts, summary)
    warmup_chunk: Callable  # ts -> (ts, summary)


def summarise(stats: dict, metrics: Optional[dict], axis: Optional[str] = None) -> dict:
    """Reduce scan outputs to scalars on device (the only thing the host fetches); with `axis`,
    counts and sums are psum-ed and metric means pmean-ed over the devices (one small
    collective per host call, not per update)."""
    totals = jax.tree_util.tree_map(jnp.sum, stats)
    if axis is not None:
        totals = jax.lax.psum(totals, axis)
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
        if axis is not None:
            means = jax.lax.pmean(means, axis)
        out.update(means)
        all_finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(v)) for v in jax.tree_util.tree_leaves(metrics)]))
        if axis is not None:  # finite on every device
            all_finite = jax.lax.psum(jnp.logical_not(all_finite).astype(jnp.int32), axis) == 0
        out["all_finite"] = all_finite
    return out


def collect_stats(env_state, obs: jax.Array) -> dict:
    """What one collect step adds to a host call's summary (sums over this device's envs)."""
    info = env_state.info
    return {"reward_sum": env_state.reward.sum(), "transitions": jnp.asarray(obs.shape[0], jnp.float32),
            "episodes": env_state.done.sum(), "completed_return_sum": info["completed_return"].sum(),
            "completed_length_sum": info["completed_length"].sum(),
            "terminations": info["terminated"].astype(jnp.float32).sum(),
            "nonfinite_physics": info["nonfinite"].astype(jnp.float32).sum()}


def sample_batch(ctx: StepContext, ts: TrainState, key: jax.Array) -> Transition:
    """A batch of this device's replay: one-step rows, or n-step windows (`cfg.n_step` > 1) whose
    stride is this device's env count, the rows `collect` inserts per iteration."""
    if ctx.cfg.n_step == 1:  # today's path, bit for bit: no discount field, the critic's gamma
        return replay_lib.sample(ts.replay, key, ctx.batch_size)
    return replay_lib.sample_n_step(ts.replay, key, ctx.batch_size, num_envs=ts.env_state.obs.shape[0],
                                    n_step=ctx.cfg.n_step, gamma=ctx.agent.config.gamma)


def zero_outputs(iteration: Callable, ts: TrainState, axis: Optional[str]):
    """Zeros shaped like one iteration's outputs (the chunk loop's initial sums); with a data axis
    marked device-varying, as the per-device stats and metrics they accumulate are."""
    _, outputs = jax.eval_shape(iteration, ts)
    zeros = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), outputs)
    return zeros if axis is None else jax.tree_util.tree_map(lambda z: jax.lax.pcast(z, axis, to="varying"), zeros)


def make_steps(ctx: StepContext, trace_counts: Optional[collections.Counter] = None) -> Steps:
    """The per-device step functions for `ctx`. `trace_counts` counts the traces of the two
    chunk phases (a Python side effect: tests assert that each compiles once)."""
    agent, env, cfg, axis = ctx.agent, ctx.env, ctx.cfg, ctx.axis
    counts = collections.Counter() if trace_counts is None else trace_counts
    if cfg.n_step > 1 and not hasattr(agent.config, "gamma"):
        raise ValueError(f"n_step={cfg.n_step} needs an agent with a discount `gamma` in its config")

    def device_key(key: jax.Array) -> jax.Array:
        return key if axis is None else jax.random.fold_in(key, jax.lax.axis_index(axis))

    def init(rng: jax.Array) -> TrainState:
        k_agent, k_env, k_loop = jax.random.split(rng, 3)
        return TrainState(agent=agent.init(k_agent), normalizer=norm_lib.init(agent.obs_size),
                          replay=replay_lib.init(ctx.replay_capacity, agent.obs_size, agent.action_size),
                          env_state=env.reset(device_key(k_env)), rng=k_loop,
                          env_steps=jnp.zeros((), jnp.int32), updates=jnp.zeros((), jnp.int32))

    def collect(ts: TrainState, random_actions: bool) -> tuple[TrainState, dict]:
        """Act in all local envs, step them, insert (s, a, r, s', terminated, truncated) into replay."""
        rng, k_act = jax.random.split(ts.rng)
        k_act = device_key(k_act)
        obs = ts.env_state.obs
        normalizer = norm_lib.update(ts.normalizer, obs, pmean_axis=axis) if cfg.normalize_obs else ts.normalizer
        if random_actions:
            action = jax.random.uniform(k_act, (obs.shape[0], agent.action_size), minval=-1.0, maxval=1.0)
        else:
            action = agent.act(ts.agent, norm_lib.normalize(normalizer, obs) if cfg.normalize_obs else obs, k_act)
        env_state = env.step(ts.env_state, action)
        info = env_state.info
        transition = Transition(obs=obs, action=action, reward=env_state.reward, next_obs=info["final_obs"],
                                terminated=info["terminated"], truncated=info["truncated"])
        ts = ts.replace(normalizer=normalizer, replay=replay_lib.insert(ts.replay, transition), env_state=env_state,
                        rng=rng, env_steps=ts.env_steps + obs.shape[0] * ctx.num_shards)
        return ts, collect_stats(env_state, obs)

    def update(ts: TrainState) -> tuple[TrainState, dict]:
        """One gradient update on a uniformly sampled, normalised batch of this device's replay."""
        rng, k_sample, k_update = jax.random.split(ts.rng, 3)
        batch = sample_batch(ctx, ts, device_key(k_sample))
        if cfg.normalize_obs:
            batch = batch.replace(obs=norm_lib.normalize(ts.normalizer, batch.obs),
                                  next_obs=norm_lib.normalize(ts.normalizer, batch.next_obs))
        agent_state, metrics = agent.update(ts.agent, batch, device_key(k_update))
        return ts.replace(agent=agent_state, rng=rng, updates=ts.updates + 1), metrics

    def iteration(ts: TrainState):
        """collect then G updates; returns (ts, (collect stats, mean update metrics))."""
        ts, stats = collect(ts, random_actions=False)
        ts, metrics = jax.lax.scan(lambda s, _: update(s), ts, None, length=cfg.updates_per_step)
        return ts, (stats, jax.tree_util.tree_map(jnp.mean, metrics))

    jitted_iteration = jax.jit(iteration)  # traced once: eval_shape below and the loop body share it

    def train_chunk(ts: TrainState, iterations: jax.Array):
        """`iterations` (traced, 1..iterations_per_call) iterations in one `fori_loop`, stats summed and
        metrics averaged in the carry; (ts, scalar summary). A run-time trip count lets the runner
        shorten its host calls (its unit of response to a stop signal) without a recompile."""
        counts["train_chunk"] += 1
        zeros = zero_outputs(jitted_iteration, ts, axis)

        def body(_, carry):
            ts, sums = carry
            ts, outputs = jitted_iteration(ts)
            return ts, jax.tree_util.tree_map(jnp.add, sums, outputs)

        ts, (stat_sums, metric_sums) = jax.lax.fori_loop(0, iterations, body, (ts, zeros))
        metric_means = jax.tree_util.tree_map(lambda m: m / iterations, metric_sums)
        return ts, dict(summarise(stat_sums, metric_means, axis), env_steps=ts.env_steps, updates=ts.updates)

    def warmup_chunk(ts: TrainState):
        """`warmup_iterations` steps of uniform random actions, no updates."""
        counts["warmup"] += 1
        ts, stats = jax.lax.scan(lambda s, _: collect(s, random_actions=True), ts, None,
                                 length=cfg.warmup_iterations)
        return ts, dict(summarise(stats, None, axis), env_steps=ts.env_steps)

    return Steps(init=init, collect=collect, update=update, iteration=iteration, train_chunk=train_chunk,
                 warmup_chunk=warmup_chunk)
