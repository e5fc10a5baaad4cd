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
from mjx_smfp.distributed import DATA_AXIS

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


def _device_key(key: jax.Array, axis: Optional[str]) -> jax.Array:
    """This device's key: `key` folded with the device's index on `axis` (None: `key` itself).

    The loop passes `axis` only with more than one device, so 1 device stays bit-identical
    to the plain single-device path."""
    return key if axis is None else jax.random.fold_in(key, jax.lax.axis_index(axis))


def collect_step(agent: Agent, env, ts: TrainState, *, random_actions: bool, normalize_obs: bool,
                 action_size: int, axis: Optional[str] = None, num_shards: int = 1) -> tuple[TrainState, dict]:
    """Act in all (local) envs, step them, insert (s, a, r, s', terminated, truncated) into replay.

    Data-parallel (`axis` = the mesh axis, `num_shards` devices): `ts.rng` is replicated and
    folded per device, the normaliser averages its moments over `axis`, and `env_steps`
    counts the transitions of all devices."""
    rng, k_act = jax.random.split(ts.rng)
    k_act = _device_key(k_act, axis)
    obs = ts.env_state.obs
    normalizer = norm_lib.update(ts.normalizer, obs, pmean_axis=axis) if normalize_obs else ts.normalizer
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
                    env_steps=ts.env_steps + obs.shape[0] * num_shards)
    return ts, stats


def update_step(agent: Agent, ts: TrainState, *, batch_size: int, normalize_obs: bool,
                axis: Optional[str] = None) -> tuple[TrainState, dict]:
    """One gradient update of the agent on a uniformly sampled, normalised replay batch.

    Data-parallel: each device samples `batch_size` rows of its own replay shard with its own
    key; the agent (its `pmean_axis` set) averages gradients over `axis`. Metrics stay
    per device (they are averaged once per host call in `_summarise`)."""
    rng, k_sample, k_update = jax.random.split(ts.rng, 3)
    k_sample, k_update = _device_key(k_sample, axis), _device_key(k_update, axis)
    batch = replay_lib.sample(ts.replay, k_sample, batch_size)
    if normalize_obs:
        batch = batch.replace(obs=norm_lib.normalize(ts.normalizer, batch.obs),
                              next_obs=norm_lib.normalize(ts.normalizer, batch.next_obs))
    agent_state, metrics = agent.update(ts.agent, batch, k_update)
    return ts.replace(agent=agent_state, rng=rng, updates=ts.updates + 1), metrics


def iteration(agent: Agent, env, cfg: TrainConfig, action_size: int, ts: TrainState, *,
              batch_size: Optional[int] = None, axis: Optional[str] = None, num_shards: int = 1):
    """collect_step then G update_steps; returns (ts, (collect stats, mean update metrics)).

    `batch_size`: rows per device per update (default cfg.batch_size)."""
    ts, stats = collect_step(agent, env, ts, random_actions=False, normalize_obs=cfg.normalize_obs,
                             action_size=action_size, axis=axis, num_shards=num_shards)
    batch_size = cfg.batch_size if batch_size is None else batch_size

    def one_update(ts, _):
        return update_step(agent, ts, batch_size=batch_size, normalize_obs=cfg.normalize_obs, axis=axis)

    ts, metrics = jax.lax.scan(one_update, ts, None, length=cfg.updates_per_step)
    return ts, (stats, jax.tree_util.tree_map(jnp.mean, metrics))


def _summarise(stats: dict, metrics: Optional[dict], axis: Optional[str] = None) -> dict:
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


def train_chunk(agent: Agent, env, cfg: TrainConfig, action_size: int, ts: TrainState,
                counter: collections.Counter = TRACE_COUNTS, *, batch_size: Optional[int] = None,
                axis: Optional[str] = None, num_shards: int = 1):
    """`iterations_per_call` iterations in one lax.scan; returns (ts, scalar summary)."""
    counter["train_chunk"] += 1
    ts, (stats, metrics) = jax.lax.scan(
        lambda s, _: iteration(agent, env, cfg, action_size, s, batch_size=batch_size, axis=axis,
                               num_shards=num_shards), ts, None, length=cfg.iterations_per_call)
    summary = _summarise(stats, metrics, axis)
    summary["env_steps"] = ts.env_steps
    summary["updates"] = ts.updates
    return ts, summary


def warmup_chunk(env, cfg: TrainConfig, action_size: int, ts: TrainState,
                 counter: collections.Counter = TRACE_COUNTS, *, axis: Optional[str] = None, num_shards: int = 1):
    """The warm-up phase: `warmup_iterations` steps of uniform random actions, no updates."""
    counter["warmup"] += 1

    def body(s, _):
        return collect_step(None, env, s, random_actions=True, normalize_obs=cfg.normalize_obs,
                            action_size=action_size, axis=axis, num_shards=num_shards)

    ts, stats = jax.lax.scan(body, ts, None, length=cfg.warmup_iterations)
    summary = _summarise(stats, None, axis)
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

def make_envs(cfg: TrainConfig, num_shards: int = 1):
    """(raw task, batched training env, batched eval env) from the registry and wrappers;
    the training env steps this device's `num_envs // num_shards` envs."""
    import envs
    from envs.wrappers import wrap_for_training

    raw = envs.make(cfg.env, **cfg.env_options)
    return (raw, wrap_for_training(raw, cfg.num_envs // num_shards, cfg.episode_length),
            wrap_for_training(raw, cfg.eval_episodes, cfg.episode_length))


class Engine:
    """The compiled phases for one (config, agent, env): init, warm-up, train chunk, evaluate.

    Each phase is jitted once (train state donated); build one Engine per run and share it
    (tests share one across cases to pay compilation once).

    Data parallelism: with `cfg.num_devices != 1` (or an explicit `mesh`, e.g. a 1-device
    `make_data_mesh(1)` to run the sharded path on one device) the per-device functions run
    under `jax.shard_map` over `DATA_AXIS`: agent state, normaliser, RNG, counters and the
    replay write index/size replicated (P()), env states and replay rows sharded on their
    leading axis (P(DATA_AXIS)). A given `env` must then be the PER-DEVICE batched env
    (cfg.num_envs // devices envs). With `num_devices == 1` and no mesh this is the plain
    single-device engine (no shard_map).
    """

    def __init__(self, cfg: TrainConfig, agent: Agent, env=None, eval_env=None, *,
                 obs_size: Optional[int] = None, action_size: Optional[int] = None, mesh=None):
        from mjx_smfp import config as config_lib
        from mjx_smfp.distributed import make_data_mesh

        if mesh is None and cfg.num_devices != 1:
            mesh = make_data_mesh(cfg.num_devices)
        self.mesh = mesh
        self.num_shards = 1 if mesh is None else int(mesh.shape[DATA_AXIS])
        envs_per, capacity_per, batch_per = config_lib.check_sharding(cfg, self.num_shards)
        self.local_num_envs, self.local_replay_capacity, self.local_batch_size = envs_per, capacity_per, batch_per
        # Collectives and per-device keys only with more than one device: 1 device is bit-identical.
        axis = DATA_AXIS if self.num_shards > 1 else None
        if axis is not None:
            agent.pmean_axis = axis  # the agent averages its gradients over the devices
        raw = None
        if env is None:
            raw, env, eval_env = make_envs(cfg, self.num_shards)
            obs_size, action_size = raw.observation_size, raw.action_size
        self.raw_env = raw
        self.cfg, self.agent, self.env, self.eval_env = cfg, agent, env, eval_env
        self.obs_size = int(obs_size if obs_size is not None else env.observation_size)
        self.action_size = int(action_size if action_size is not None else env.action_size)
        # Traces of each phase by this engine (a Python side effect: counts compilations).
        self.trace_counts: collections.Counter = collections.Counter()
        counts = self.trace_counts
        n = self.num_shards

        def warmup_fn(ts):
            return warmup_chunk(env, cfg, self.action_size, ts, counts, axis=axis, num_shards=n)

        def train_fn(ts):
            return train_chunk(agent, env, cfg, self.action_size, ts, counts, batch_size=batch_per,
                               axis=axis, num_shards=n)

        init_fn = lambda rng: self._init(rng, axis)  # noqa: E731
        if mesh is not None:
            from jax.sharding import PartitionSpec as P

            specs = self.state_specs()
            # check_vma proves that the P() outputs (params, normaliser, counters, summary) really
            # are replicated. On 1 device there are no collectives (bit-identity with the plain
            # path), so the varying-axes types cannot be made to match; replication is trivial there.
            vma = n > 1
            init_fn = jax.shard_map(init_fn, mesh=mesh, in_specs=P(), out_specs=specs, check_vma=vma)
            warmup_fn = jax.shard_map(warmup_fn, mesh=mesh, in_specs=(specs,), out_specs=(specs, P()), check_vma=vma)
            train_fn = jax.shard_map(train_fn, mesh=mesh, in_specs=(specs,), out_specs=(specs, P()), check_vma=vma)
        self.init = jax.jit(init_fn)
        self.warmup = jax.jit(warmup_fn, donate_argnums=0)
        self.train_chunk = jax.jit(train_fn, donate_argnums=0)
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

    def state_specs(self) -> TrainState:
        """PartitionSpecs of the train state (a pytree prefix of it): replicated except the
        env states and the replay rows, sharded on their leading axis over DATA_AXIS."""
        from jax.sharding import PartitionSpec as P

        return TrainState(agent=P(), normalizer=P(),
                          replay=replay_lib.ReplayBuffer(data=P(DATA_AXIS), write_index=P(), size=P()),
                          env_state=P(DATA_AXIS), rng=P(), env_steps=P(), updates=P())

    def abstract_state(self) -> TrainState:
        """Shapes/dtypes of the (global) train state, with NamedShardings when sharded: the
        restore template for checkpoints (jax.eval_shape alone carries no shardings)."""
        shapes = jax.eval_shape(self.init, jax.random.PRNGKey(self.cfg.seed))
        if self.mesh is None:
            return shapes
        from jax.sharding import NamedSharding, PartitionSpec as P

        mesh = self.mesh
        return jax.tree_util.tree_map(
            lambda spec, sub: jax.tree_util.tree_map(
                lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=NamedSharding(mesh, spec)), sub),
            self.state_specs(), shapes, is_leaf=lambda x: isinstance(x, P))

    def _init(self, rng: jax.Array, axis: Optional[str] = None) -> TrainState:
        k_agent, k_env, k_loop = jax.random.split(rng, 3)
        return TrainState(
            agent=self.agent.init(k_agent, self.obs_size, self.action_size),
            normalizer=norm_lib.init(self.obs_size),
            replay=replay_lib.init(self.local_replay_capacity, self.obs_size, self.action_size),
            env_state=self.env.reset(_device_key(k_env, axis)),
            rng=k_loop,
            env_steps=jnp.zeros((), jnp.int32),
            updates=jnp.zeros((), jnp.int32),
        )

    def init_state(self, seed: Optional[int] = None) -> TrainState:
        """Fresh train state (after checking that the replay ring fits in memory)."""
        replay_lib.check_fits(self.cfg.replay_capacity, self.obs_size, self.action_size, self.num_shards)
        return self.init(jax.random.PRNGKey(self.cfg.seed if seed is None else seed))

    def evaluate(self, ts: TrainState, rng: jax.Array) -> tuple[np.ndarray, np.ndarray]:
        """Returns and lengths of `eval_episodes` deterministic episodes (host numpy); sharded
        runs evaluate on this process's first device with its copy of the replicated params."""
        agent_state, normalizer = ts.agent, ts.normalizer
        if self.mesh is not None:
            local = lambda x: x.addressable_data(0)  # noqa: E731
            agent_state, normalizer = jax.tree_util.tree_map(local, (agent_state, normalizer))
        ret, length = self._evaluate(agent_state, normalizer, rng)
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


def format_eta(seconds: float) -> str:
    """h:mm:ss for a progress line ("?" while unknown)."""
    if not math.isfinite(seconds):
        return "?"
    seconds = max(0, int(seconds))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _crossed(before: int, after: int, interval: int) -> bool:
    return interval > 0 and after // interval > before // interval


class _NullLogger:
    """The logger of processes other than 0 in a multi-host run: writes nothing."""

    def write(self, step, scalars):
        pass

    def close(self):
        pass


def run(engine: Engine, run_dir: str, *, resume: bool = False, stop: Optional[StopFlag] = None,
        logger=None, max_calls: Optional[int] = None, verbose: bool = True) -> TrainState:
    """Train to `total_env_steps` (or `max_calls` host calls), logging, evaluating and
    checkpointing into `run_dir`; with `resume`, continue from its latest checkpoint.

    Returns the final train state. Raises NonFiniteError if a loss goes non-finite.
    Multi-host: every process runs this (checkpoint saves are collective); only process 0
    writes config.json and logs, and prints.
    """
    from mjx_smfp import checkpoint as ckpt_lib
    from mjx_smfp import config as config_lib
    from mjx_smfp.logger import Logger

    cfg = engine.cfg
    is_main = jax.process_index() == 0
    verbose = verbose and is_main
    os.makedirs(run_dir, exist_ok=True)
    checkpointer = ckpt_lib.Checkpointer(os.path.join(run_dir, "checkpoints"), max_to_keep=cfg.keep_checkpoints)
    own_logger = logger is None
    logger = logger or (Logger(run_dir) if is_main else _NullLogger())
    if is_main:
        with open(os.path.join(run_dir, "config.json"), "w") as f:
            json.dump(config_lib.to_dict(cfg, engine.agent.config), f, indent=2)
    stop = (stop or StopFlag()).install()

    if resume and checkpointer.latest_step() is not None:
        replay_lib.check_fits(cfg.replay_capacity, engine.obs_size, engine.action_size, engine.num_shards)
        ts = checkpointer.restore(engine.abstract_state())
    else:
        ts = engine.init_state()
    if resume:
        if verbose and checkpointer.latest_step() is not None:
            print(f"[train] resumed from {checkpointer.latest_path()} at env step {int(ts.env_steps)}", flush=True)

    eval_rng = jax.random.PRNGKey(cfg.seed + 1_000_003)
    last_eval = float("nan")
    try:
        if int(ts.env_steps) < engine.warmup_steps:
            if verbose:
                print(f"[train] warm-up: {engine.warmup_steps:,} env steps of random actions "
                      "(the first call compiles; minutes on a CPU)", flush=True)
            t0 = time.time()
            ts, summary = engine.warmup(ts)
            summary = jax.device_get(summary)
            if verbose:
                print(f"[train] warm-up done in {time.time() - t0:.0f} s; compiling the training step", flush=True)
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
                      f"env-steps/s | {scalars['perf/updates_per_s']:,.0f} updates/s | ETA {format_eta(eta)} | "
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
