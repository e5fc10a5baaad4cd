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
`fori_loop`, reduced to a few scalars on device: each metric is averaged over the updates that
computed it (a `Gated` actor metric over the actor's steps only, not diluted by the policy
delay). Warm-up is `warmup_iterations` steps of uniform random actions, no updates; the first
warm-up also fixes `probe_obs`, the held-out states the evaluation's diagnostics read.

Reward scale (`cfg.normalize_reward`, normalizer.py): the loop keeps the running discounted
return of every env and divides each sampled batch's (n-step) rewards by
max(std(G), max|G| / `reward_g_max`) (SimbaV2 / FlashSAC), so the critic's values, and with
them the temperature and SMFP's mirror-descent coefficient, have one scale on every task.

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
from mjx_smfp.types import Gated, Metrics, Transition
from mjx_smfp.config import TrainConfig

PROBE_STATES = 64  # held-out states (from the first warm-up's replay rows) the diagnostics read


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
    reward_scale: norm_lib.RewardScaleState  # running discounted-return statistics (normalize_reward)
    probe_obs: jax.Array  # [PROBE_STATES, obs] raw held-out states of this device, fixed at the first warm-up


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


def metric_totals(metrics: Metrics) -> dict:
    """{name: (sum, count)} of update metrics stacked on a leading axis: a `Gated` metric counts
    only the steps that computed it, any other every step."""
    out = {}
    for name, m in metrics.items():
        if isinstance(m, Gated):
            out[name] = (jnp.sum(m.value * m.weight, axis=0), jnp.sum(m.weight, axis=0))
        else:
            out[name] = (jnp.sum(m, axis=0), jnp.asarray(m.shape[0], m.dtype))
    return out


def summarise(stats: dict, metrics: Optional[dict], axis: Optional[str] = None) -> dict:
    """Reduce scan outputs to scalars on device (the only thing the host fetches): stats summed,
    `metrics` ({name: (sum, count)}, `metric_totals`) averaged, NaN where no step computed one.
    With `axis`, sums and counts are psum-ed over the devices (one small collective per host
    call, not per update). `all_finite` checks the sums, so a metric no step computed is no error."""
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
        if axis is not None:
            metrics = jax.lax.psum(metrics, axis)
        out.update({name: jnp.where(n > 0, total / jnp.maximum(n, 1), jnp.nan) for name, (total, n) in metrics.items()})
        all_finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(total)) for total, _ in metrics.values()]))
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
    stride is this device's env count, the rows `collect` inserts per iteration; with
    `normalize_reward` its (n-step) rewards, sums of raw rewards, divided by the reward scale."""
    if ctx.cfg.n_step == 1:  # today's path, bit for bit: no discount field, the critic's gamma
        batch = replay_lib.sample(ts.replay, key, ctx.batch_size)
    else:
        batch = replay_lib.sample_n_step(ts.replay, key, ctx.batch_size, num_envs=ts.env_state.obs.shape[0],
                                         n_step=ctx.cfg.n_step, gamma=ctx.agent.config.gamma)
    if ctx.cfg.normalize_reward:
        batch = batch.replace(reward=batch.reward / norm_lib.reward_scale(ts.reward_scale, ctx.cfg.reward_g_max))
    return batch


def zero_outputs(iteration: Callable, ts: TrainState, axis: Optional[str]):
    """Zeros shaped like one iteration's outputs (the chunk loop's initial sums); with a data axis
    marked device-varying, as the per-device stats and metrics they accumulate are."""
    _, outputs = jax.eval_shape(iteration, ts)
    zeros = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), outputs)
    return zeros if axis is None else jax.tree_util.tree_map(lambda z: jax.lax.pcast(z, axis, to="varying"), zeros)


def probe_states(ts: TrainState, first: jax.Array) -> jax.Array:
    """After the first warm-up (`first`), PROBE_STATES rows spread evenly over this device's
    replay (the held-out states of the diagnostics); afterwards the ones fixed then."""
    rows = (jnp.arange(PROBE_STATES) * ts.replay.size) // PROBE_STATES
    return jnp.where(first, jnp.take(ts.replay.data.obs, rows, axis=0, mode="clip"), ts.probe_obs)


def fold_rewards(ctx: StepContext, scale: norm_lib.RewardScaleState, env_state) -> norm_lib.RewardScaleState:
    """The reward scale with this step's rewards folded in (normalize_reward; else unchanged)."""
    if not ctx.cfg.normalize_reward:
        return scale
    return norm_lib.update_reward_scale(scale, env_state.reward, env_state.done, ctx.agent.config.gamma,
                                        pmean_axis=ctx.axis)


def check_discount(ctx: StepContext) -> None:
    """n-step returns and the reward scale need the agent's discount; ValueError naming the field."""
    for name, on in (("n_step", ctx.cfg.n_step > 1), ("normalize_reward", ctx.cfg.normalize_reward)):
        if on and not hasattr(ctx.agent.config, "gamma"):
            raise ValueError(f"{name}={getattr(ctx.cfg, name)} needs an agent with a discount `gamma` in its config")


def init_state(ctx: StepContext, rng: jax.Array, device_key: Callable) -> TrainState:
    """A fresh train state of this device (`device_key` folds in the device index when sharded)."""
    agent = ctx.agent
    k_agent, k_env, k_loop = jax.random.split(rng, 3)
    return TrainState(agent=agent.init(k_agent), normalizer=norm_lib.init(agent.obs_size),
                      replay=replay_lib.init(ctx.replay_capacity, agent.obs_size, agent.action_size),
                      env_state=ctx.env.reset(device_key(k_env)), rng=k_loop,
                      env_steps=jnp.zeros((), jnp.int32), updates=jnp.zeros((), jnp.int32),
                      reward_scale=norm_lib.init_reward_scale(ctx.env.num_envs),
                      probe_obs=jnp.zeros((PROBE_STATES, agent.obs_size), jnp.float32))


def make_steps(ctx: StepContext, trace_counts: Optional[collections.Counter] = None) -> Steps:
    """The per-device step functions for `ctx`. `trace_counts` counts the traces of the two
    chunk phases (a Python side effect: tests assert that each compiles once)."""
    agent, env, cfg, axis = ctx.agent, ctx.env, ctx.cfg, ctx.axis
    counts = collections.Counter() if trace_counts is None else trace_counts
    check_discount(ctx)

    def device_key(key: jax.Array) -> jax.Array:
        return key if axis is None else jax.random.fold_in(key, jax.lax.axis_index(axis))

    def init(rng: jax.Array) -> TrainState:
        return init_state(ctx, rng, device_key)

    def collect(ts: TrainState, random_actions: bool) -> tuple[TrainState, dict]:
        """Act in all local envs, step them, insert (s, a, r, s', terminated, truncated) into replay,
        fold the rewards into the reward scale (normalize_reward)."""
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
                        rng=rng, env_steps=ts.env_steps + obs.shape[0] * ctx.num_shards,
                        reward_scale=fold_rewards(ctx, ts.reward_scale, env_state))
        return ts, collect_stats(env_state, obs)

    def update(ts: TrainState) -> tuple[TrainState, dict]:
        """One gradient update on a uniformly sampled, normalised batch of this device's replay."""
        rng, k_sample, k_update = jax.random.split(ts.rng, 3)
        batch = sample_batch(ctx, ts, device_key(k_sample))
        if cfg.normalize_obs:
            batch = batch.replace(obs=norm_lib.normalize(ts.normalizer, batch.obs),
                                  next_obs=norm_lib.normalize(ts.normalizer, batch.next_obs))
        agent_state, metrics = agent.update(ts.agent, batch, device_key(k_update))
        if cfg.normalize_reward:
            metrics = dict(metrics, reward_scale=norm_lib.reward_scale(ts.reward_scale, cfg.reward_g_max))
        return ts.replace(agent=agent_state, rng=rng, updates=ts.updates + 1), metrics

    def iteration(ts: TrainState):
        """collect then G updates; returns (ts, (collect stats, update metric totals))."""
        ts, stats = collect(ts, random_actions=False)
        ts, metrics = jax.lax.scan(lambda s, _: update(s), ts, None, length=cfg.updates_per_step)
        return ts, (stats, metric_totals(metrics))

    jitted_iteration = jax.jit(iteration)  # traced once: eval_shape below and the loop body share it

    def train_chunk(ts: TrainState, iterations: jax.Array):
        """`iterations` (traced, 1..iterations_per_call) iterations in one `fori_loop`, stats and
        metric totals summed in the carry; (ts, scalar summary). A run-time trip count lets the
        runner shorten its host calls (its unit of response to a stop signal) without a recompile."""
        counts["train_chunk"] += 1
        zeros = zero_outputs(jitted_iteration, ts, axis)

        def body(_, carry):
            ts, sums = carry
            ts, outputs = jitted_iteration(ts)
            return ts, jax.tree_util.tree_map(jnp.add, sums, outputs)

        ts, (stat_sums, metric_sums) = jax.lax.fori_loop(0, iterations, body, (ts, zeros))
        return ts, dict(summarise(stat_sums, metric_sums, axis), env_steps=ts.env_steps, updates=ts.updates)

    def warmup_chunk(ts: TrainState):
        """`warmup_iterations` steps of uniform random actions, no updates; the first warm-up of a
        run (nothing collected before it) fixes `probe_obs`."""
        counts["warmup"] += 1
        first = ts.env_steps == 0
        ts, stats = jax.lax.scan(lambda s, _: collect(s, random_actions=True), ts, None,
                                 length=cfg.warmup_iterations)
        return ts.replace(probe_obs=probe_states(ts, first)), dict(summarise(stats, None, axis), env_steps=ts.env_steps)

    return Steps(init=init, collect=collect, update=update, iteration=iteration, train_chunk=train_chunk,
                 warmup_chunk=warmup_chunk)
