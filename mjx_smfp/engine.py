"""Room 2 of the engine: the compiled phases of one run — init, warm-up, train chunk, evaluate —
and how the train state is laid out over devices. A train chunk runs a number of iterations
chosen per call (at most `iterations_per_call`) by one compiled program, so the runner can keep
its host calls short on a slow machine without recompiling.

`Engine(cfg, agent_config)` builds the task, the agent (with its sizes and mesh axis), the
per-device step functions (mjx_smfp/steps.py), wraps them in `shard_map` when data
parallel, and jits each once with the train state donated, so XLA updates the replay ring
and parameters in place. It knows nothing of logging, schedules or checkpoints (that is the
runner, mjx_smfp/runner.py).

Data parallelism: with `cfg.num_devices != 1`, several processes (`jax.distributed`), or an
explicit `mesh` (e.g. a 1-device `make_data_mesh(1)` to run the sharded path on one device) the
steps run under `jax.shard_map` over `DATA_AXIS` (mjx_smfp/sharded.py): agent state, normaliser,
RNG, counters and the replay write index/size replicated (P()), env states and replay rows
sharded on their leading axis (P(DATA_AXIS)). Inputs from the host (init keys, iteration counts)
are handed over as replicated global arrays, so the same code runs on a mesh spanning processes.
With `num_devices == 1`, one process and no mesh this is the plain single-device engine.

Seeds (`cfg.num_seeds = N > 1`): N independent runs in one program. Every phase is the same
per-device step function under `jax.vmap`, so each leaf of the train state gains a leading
seed axis (own agent, normaliser, replay ring, envs, key and counters) and the summary holds
per-seed vectors; run k starts from `PRNGKey(cfg.seed + k)`, the key of a single run with
`--seed cfg.seed+k`. With N == 1 nothing is vmapped (the plain path, bit for bit). Seeds are
not sharded over devices yet: N > 1 needs the plain single-device engine.
"""
from __future__ import annotations

import collections
import inspect
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from mjx_smfp import normalizer as norm_lib
from mjx_smfp import replay as replay_lib
from mjx_smfp.config import TrainConfig, check_seeds, check_sharding
from mjx_smfp.distributed import DATA_AXIS, make_data_mesh, replicated, use_mesh_settings, uses_mesh
from mjx_smfp.sharded import shard_steps
from mjx_smfp.steps import StepContext, TrainState, make_steps


def make_task(cfg: TrainConfig):
    """The single-env task of `cfg` from the registry, with `cfg.physics` for tasks that simulate
    (an explicit "physics" in `env_kwargs` wins); bad `env_kwargs` give a ValueError that lists
    the task's options."""
    import envs

    cls = envs.get_class(cfg.env)
    options = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    kwargs = cfg.env_options
    if "physics" in options:
        kwargs.setdefault("physics", cfg.physics)
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ValueError(f"env_kwargs={cfg.env_kwargs} does not fit task {cfg.env!r} ({err}); "
                         f"its options: {', '.join(options)}") from None


class Engine:
    """The compiled phases for one (config, agent config, task); build one per run and share it
    (tests share one across cases to pay compilation once).

    `task`: a single-env brax `Env` (default: `envs.make(cfg.env, **cfg.env_options)`); it is
    batched with `wrap_for_training` like every real task. `make_agent(obs_size, action_size,
    axis)`: how to build the agent (default: the registry's `cfg.agent` with `agent_config`).
    """

    def __init__(self, cfg: TrainConfig, agent_config=None, *, task=None, mesh=None,
                 make_agent: Optional[Callable] = None):
        from envs.wrappers import make_evaluator, wrap_for_training
        from mjx_smfp import agents

        check_seeds(cfg.num_seeds, cfg.num_devices)
        if mesh is None and uses_mesh(cfg.num_devices):  # several devices, or several processes
            mesh = make_data_mesh(cfg.num_devices)
        if mesh is not None and cfg.num_seeds > 1:
            raise ValueError(f"num_seeds={cfg.num_seeds} needs the plain single-device engine (no device mesh)")
        self.num_seeds = cfg.num_seeds
        self.mesh = mesh
        if mesh is not None:
            use_mesh_settings()
        self.num_shards = n = 1 if mesh is None else int(mesh.shape[DATA_AXIS])
        envs_per, capacity_per, batch_per = check_sharding(cfg, n)
        # Collectives and per-device keys only with more than one device: 1 device is bit-identical.
        axis = DATA_AXIS if n > 1 else None
        self.cfg = cfg
        self.task = task if task is not None else make_task(cfg)
        self.obs_size, self.action_size = int(self.task.observation_size), int(self.task.action_size)
        if make_agent is None:
            self.agent = agents.make(cfg.agent, agent_config, self.obs_size, self.action_size, axis)
        else:
            self.agent = make_agent(self.obs_size, self.action_size, axis)
        self.env = wrap_for_training(self.task, envs_per, cfg.episode_length)
        # Traces of each phase by this engine (a Python side effect: counts compilations).
        self.trace_counts: collections.Counter = collections.Counter()
        steps = make_steps(StepContext(agent=self.agent, env=self.env, cfg=cfg, replay_capacity=capacity_per,
                                       batch_size=batch_per, axis=axis, num_shards=n), self.trace_counts)
        init_fn, warmup_fn, train_fn = steps.init, steps.warmup_chunk, steps.train_chunk
        if mesh is not None:
            # check_vma proves that the P() outputs (params, normaliser, counters, summary) really
            # are replicated. On 1 device there are no collectives (bit-identity with the plain
            # path), so the varying-axes types cannot be made to match; replication is trivial there.
            # MJX tasks (they have `physics`) run unchecked too: the constraint solver's line search
            # (mujoco-mjx 3.17) is a lax.cond whose branches differ in varying-ness, untypable under it.
            vma = n > 1 and not hasattr(self.task, "physics")
            init_fn, warmup_fn, train_fn = shard_steps(init_fn, warmup_fn, train_fn, mesh, self.state_specs(), vma)
        if self.num_seeds > 1:  # a leading seed axis on the state, the keys and the summary
            init_fn, warmup_fn = jax.vmap(init_fn), jax.vmap(warmup_fn)
            train_fn = jax.vmap(train_fn, in_axes=(0, None))  # one iteration count for every seed
        self.init = jax.jit(init_fn)
        self.warmup = jax.jit(warmup_fn, donate_argnums=0)
        # (ts, int32 count) -> (ts, summary), the state donated; `train_chunk` is its checked front.
        self.train_iterations = jax.jit(train_fn, donate_argnums=0)

        n_eval = cfg.eval_episodes
        halves = 2 if cfg.eval_stochastic else 1

        def policy_fn(params, obs, key):
            """The first `eval_episodes` envs act deterministically (`eval_act`), the rest (with
            eval_stochastic) by the exploring policy (`act`), all in one program."""
            self.trace_counts["evaluate"] += 1
            agent_state, normalizer = params
            if cfg.normalize_obs:
                obs = norm_lib.normalize(normalizer, obs)
            action = self.agent.eval_act(agent_state, obs[:n_eval])
            if halves == 1:
                return action
            return jnp.concatenate([action, self.agent.act(agent_state, obs[n_eval:], key)])

        def reset_keys(rng):  # the deterministic episodes start where they did before eval_stochastic existed
            keys = jax.random.split(rng, n_eval)
            return keys if halves == 1 else jnp.concatenate([keys, jax.random.split(jax.random.fold_in(rng, 1), n_eval)])

        # Separate unbatched copies of the task, stopping once every first episode has ended.
        self._evaluator = make_evaluator(self.task, policy_fn, halves * n_eval, cfg.episode_length, reset_keys)
        # Every seed's policy in one call (traced on first use, so single-seed runs never pay it).
        self._seeds_evaluator = jax.jit(jax.vmap(self._evaluator))

        def diagnose(params, rng):
            agent_state, normalizer, probe_obs = params
            obs = norm_lib.normalize(normalizer, probe_obs) if cfg.normalize_obs else probe_obs
            return self.agent.diagnostics(agent_state, obs, rng)

        self._diagnose = jax.jit(diagnose)
        self._seeds_diagnose = jax.jit(jax.vmap(diagnose))

    def train_chunk(self, ts: TrainState, iterations: Optional[int] = None) -> tuple[TrainState, dict]:
        """One host call of training: `iterations` iterations (default and maximum:
        `cfg.iterations_per_call`), the state donated; returns (state, summary on device).

        The count is an argument of ONE compiled program (a loop with a run-time trip count), so
        the runner can shorten its calls on a slow machine without a recompile: a host call is
        the runner's unit of response to a stop signal (mjx_smfp/runner.py)."""
        limit = self.cfg.iterations_per_call
        iterations = limit if iterations is None else int(iterations)
        if not 1 <= iterations <= limit:
            raise ValueError(f"iterations={iterations} must be in [1, iterations_per_call={limit}]")
        return self.train_iterations(ts, self._count(iterations))

    def compile_train(self, ts: TrainState) -> None:
        """Compile the train call now (the same argument types as `train_chunk`'s: one trace)."""
        self.train_iterations.lower(ts, self._count(self.cfg.iterations_per_call)).compile()

    def _count(self, iterations: int):
        """An iteration count as the train call takes it: always int32, replicated over a mesh."""
        count = np.int32(iterations)
        return count if self.mesh is None else replicated(self.mesh, count)

    def state_specs(self) -> TrainState:
        """PartitionSpecs of the train state (a pytree prefix of it): replicated except the
        env states and the replay rows, sharded on their leading axis over DATA_AXIS."""
        from jax.sharding import PartitionSpec as P

        return TrainState(agent=P(), normalizer=P(),
                          replay=replay_lib.ReplayBuffer(data=P(DATA_AXIS), write_index=P(), size=P()),
                          env_state=P(DATA_AXIS), rng=P(), env_steps=P(), updates=P(),
                          reward_scale=norm_lib.RewardScaleState(returns=P(DATA_AXIS), mean=P(), var=P(), count=P(),
                                                                 max_abs=P()),
                          probe_obs=P(DATA_AXIS))

    def abstract_state(self) -> TrainState:
        """Shapes/dtypes of the (global) train state, with NamedShardings when sharded: the
        one restore template for checkpoints (jax.eval_shape alone carries no shardings)."""
        shapes = jax.eval_shape(self.init, self.init_keys(self.cfg.seed))
        if self.mesh is None:
            return shapes
        from jax.sharding import NamedSharding, PartitionSpec as P

        return jax.tree_util.tree_map(
            lambda spec, sub: jax.tree_util.tree_map(
                lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=NamedSharding(self.mesh, spec)), sub),
            self.state_specs(), shapes, is_leaf=lambda x: isinstance(x, P))

    def check_fits(self) -> None:
        """ValueError (naming the sizes) if the replay rings (one per seed) do not fit in device memory."""
        try:
            replay_lib.check_fits(self.cfg.replay_capacity * self.num_seeds, self.obs_size, self.action_size,
                                  self.num_shards)
        except ValueError as err:
            if self.num_seeds == 1:
                raise
            raise ValueError(f"num_seeds={self.num_seeds} rings of replay_capacity={self.cfg.replay_capacity} rows "
                             f"each (counted together below): {err}") from None

    def init_keys(self, seed: int) -> jax.Array:
        """The init key(s): `PRNGKey(seed)`, or with several seeds `PRNGKey(seed + k)` stacked."""
        if self.num_seeds == 1:
            return jax.random.PRNGKey(seed)
        return jax.vmap(jax.random.PRNGKey)(seed + jnp.arange(self.num_seeds))

    def init_state(self, seed: Optional[int] = None) -> TrainState:
        """Fresh train state (after checking that the replay rings fit in memory)."""
        self.check_fits()
        keys = self.init_keys(self.cfg.seed if seed is None else seed)
        return self.init(keys if self.mesh is None else replicated(self.mesh, keys))

    def seed_state(self, ts: TrainState, seed: int) -> TrainState:
        """Run `seed` (0 <= seed < num_seeds) of a train state, without the seed axis (e.g. to
        evaluate or render one seed of a multi-seed checkpoint); `ts` itself when single-seed."""
        if not 0 <= seed < self.num_seeds:
            raise ValueError(f"seed={seed} is not a run of this state (num_seeds={self.num_seeds}: 0..{self.num_seeds - 1})")
        return ts if self.num_seeds == 1 else jax.tree_util.tree_map(lambda x: x[seed], ts)

    def evaluate(self, ts: TrainState, rng: jax.Array, seed: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
        """Returns and lengths of `eval_episodes` deterministic episodes (host numpy); sharded
        runs evaluate on this process's first device with its copy of the replicated params.

        Several seeds: shape (num_seeds, eval_episodes), all seeds in one call, seed k with
        key `fold_in(rng, k)`; with `seed=k` only that seed, the same episodes as row k."""
        evaluator, params, keys = self._evaluation(ts, rng, seed)
        result = evaluator(params, keys)
        n = self.cfg.eval_episodes
        return np.asarray(result.returns)[..., :n], np.asarray(result.lengths)[..., :n]

    def evaluation(self, ts: TrainState, rng: jax.Array) -> dict[str, np.ndarray]:
        """Everything an evaluation reports, per seed (a leading seed axis with several seeds):
        the deterministic episodes' mean `return`, `return_std`, mean `length` and
        `forward_velocity` (the task's mean x velocity, NaN where it has none), the stochastic
        policy's `stochastic_return_mean` (eval_stochastic), and the agent's `diagnostics` on the
        held-out states (`probe_obs`: k-NN entropy of its actions, its own entropy estimate, ...)."""
        evaluator, params, keys = self._evaluation(ts, rng, None)
        result = jax.device_get(evaluator(params, keys))
        n = self.cfg.eval_episodes
        out = {"return": result.returns[..., :n].mean(-1), "return_std": result.returns[..., :n].std(-1),
               "length": result.lengths[..., :n].mean(-1), "forward_velocity": result.forward_velocity[..., :n].mean(-1)}
        if self.cfg.eval_stochastic:
            out["stochastic_return_mean"] = result.returns[..., n:].mean(-1)
            out["stochastic_forward_velocity"] = result.forward_velocity[..., n:].mean(-1)
        probe = ts.probe_obs if self.mesh is None else ts.probe_obs.addressable_data(0)
        diagnose = self._seeds_diagnose if self.num_seeds > 1 else self._diagnose
        key = jax.random.fold_in(rng, 0xD1A6)
        keys = key if self.num_seeds == 1 else jax.random.split(key, self.num_seeds)
        out.update(jax.device_get(diagnose((params[0], params[1], probe), keys)))
        return {k: np.asarray(v) for k, v in out.items()}

    def compile_evaluate(self, ts: TrainState, seed: Optional[int] = None) -> None:
        """Compile the program `evaluate(ts, rng, seed)` runs, without running an episode (a
        no-op once compiled). The runner calls it before training whenever no warm-up evaluation
        compiled it (a resume, eval_interval 0), so that a later evaluation never holds a stop
        signal back behind a compilation while trained progress waits to be saved."""
        evaluator, params, keys = self._evaluation(ts, jax.random.PRNGKey(0), seed)
        evaluator.lower(params, keys).compile()

    def _evaluation(self, ts: TrainState, rng: jax.Array, seed: Optional[int]):
        """(jitted evaluator, its params, its key or keys) for `evaluate`."""
        if self.num_seeds > 1 and seed is None:
            keys = jax.vmap(jax.random.fold_in, (None, 0))(rng, jnp.arange(self.num_seeds))
            return self._seeds_evaluator, (ts.agent, ts.normalizer), keys
        if seed is not None:
            ts = self.seed_state(ts, seed)
            rng = rng if self.num_seeds == 1 else jax.random.fold_in(rng, seed)
        params = (ts.agent, ts.normalizer)
        if self.mesh is not None:
            params = jax.tree_util.tree_map(lambda x: x.addressable_data(0), params)
        return self._evaluator, params, rng

    def eval_key(self, seed: int) -> jax.Array:
        """The evaluation key of a run with `seed`: every evaluation folds its env step into it, so
        evaluations use start states of their own, not the training envs'."""
        return jax.random.PRNGKey(seed + 1_000_003)

    @property
    def warmup_steps(self) -> int:
        return self.cfg.warmup_iterations * self.cfg.num_envs

    @property
    def final_env_steps(self) -> int:
        return self.warmup_steps + self.cfg.train_calls * self.cfg.iterations_per_call * self.cfg.num_envs
