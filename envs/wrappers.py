"""Training and evaluation wrappers over any brax `Env` (MJX tasks, the multimodal bandit).

`wrap_for_training(env, num_envs, episode_length)` turns a single-env brax `Env` into a batch of
`num_envs` independent copies stepped with one `vmap`, and adds what an off-policy learner needs
and brax's own wrappers get wrong (see docs/CONTRIBUTING.md, "Env contract"):

* a time limit whose *truncation* is reported apart from *termination*, so the learner can
  bootstrap through a time-limit ending instead of treating it as terminal;
* auto-reset that keeps the true next observation s' of the ending transition in
  `info["final_obs"]` (brax overwrites it with the reset observation);
* fresh reset noise on every auto-reset, drawn from a per-env key kept in `info["reset_rng"]`
  (brax's `AutoResetWrapper` re-uses one cached first state forever);
* containment of non-finite physics: an env whose observation, reward or any float array of its
  `pipeline_state` (qpos, qvel, ... of an `mjx.Data`) is non-finite after a step ends its episode
  as a termination, is reset, and is counted in `info["nonfinite"]`. Its reward is replaced by 0,
  its `final_obs` by the (finite) observation it acted on, and its metrics by 0, so the batch is
  never poisoned; the other envs are untouched;
* running and completed episode return/length statistics.

Everything is a pure function of pytrees with no Python per-env work, so `reset`/`step` can be
jitted and iterated inside `lax.scan`.

Auto-reset cost. A fresh reset costs one `env.reset` (an `mjx.forward` for MJX tasks). `step`
computes one reset of the whole batch, selected with `where` into the envs that ended, and only on
steps where some episode ended (`lax.cond`; tasks without termination such as HalfCheetah then
pay for it once per `episode_length` steps). On 2 CPU cores a batch reset costs a small fraction
of a wrapped step (benchmarks/RESULTS.md). Two "cheaper" variants were measured on
InvertedPendulum under random actions (128 envs, ~16% of episodes ending per step), as the ratio
wrapped / raw `mjx.step` throughput on the same machine: this version 0.75 (compile 49 s);
a none / only-the-ended-envs (gather/scatter) / whole-batch `lax.switch` 0.77 (compile 72 s,
`env.reset` compiled twice); resetting only the ended envs in chunks inside a `while_loop` 0.37.
Resetting fewer envs saves little, presumably because an `mjx.forward` call's CPU cost barely shrinks
with its batch size. On a GPU with thousands of envs a partial reset might pay off; not measured.

`evaluate` / `make_evaluator` run deterministic evaluation episodes on separate env copies with a
`lax.while_loop`, counting only the first episode of each env.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
from brax.envs.base import Env, State, Wrapper

# Keys this wrapper owns in `State.info`; everything else in `info` belongs to the wrapped env.
WRAPPER_INFO_KEYS = (
    "reset_rng",
    "terminated",
    "truncated",
    "final_obs",
    "episode_return",
    "episode_length",
    "completed_return",
    "completed_length",
    "nonfinite",
)


# ----------------------------------------------------------------------------------------------
# Pytree helpers (batched: every leaf has the env axis first)
# ----------------------------------------------------------------------------------------------
def _select(mask: jax.Array, on_true: Any, on_false: Any) -> Any:
    """Per-env `where` over two pytrees of the same structure; `mask` is a bool [num_envs]."""

    def leaf(a, b):
        m = jnp.reshape(mask, mask.shape + (1,) * (jnp.ndim(a) - 1))
        return jnp.where(m, a, b)

    return jax.tree.map(leaf, on_true, on_false)


def _all_finite_per_env(tree: Any, num_envs: int) -> jax.Array:
    """bool [num_envs]: True where every float leaf of `tree` is finite for that env.

    Integer, bool and key leaves are skipped (they cannot hold NaN/inf)."""
    ok = jnp.ones((num_envs,), dtype=bool)
    for x in jax.tree.leaves(tree):
        x = jnp.asarray(x)
        if not jnp.issubdtype(x.dtype, jnp.inexact):
            continue
        ok = ok & jnp.all(jnp.isfinite(jnp.reshape(x, (num_envs, -1))), axis=1)
    return ok


def _split_info(info: dict) -> tuple[dict, dict]:
    """(wrapper-owned info, wrapped env's own info)."""
    ours = {k: v for k, v in info.items() if k in WRAPPER_INFO_KEYS}
    theirs = {k: v for k, v in info.items() if k not in WRAPPER_INFO_KEYS}
    return ours, theirs


def _zero_nonfinite(tree: Any, bad: jax.Array) -> Any:
    """Replace the float leaves of `tree` by 0 for the envs flagged `bad` [num_envs]."""

    def leaf(x):
        if not jnp.issubdtype(jnp.asarray(x).dtype, jnp.inexact):
            return x
        return _select(bad, jnp.zeros_like(x), x)

    return jax.tree.map(leaf, tree)


# ----------------------------------------------------------------------------------------------
# Training wrapper
# ----------------------------------------------------------------------------------------------
class TrainingWrapper(Wrapper):
    """A batch of `num_envs` copies of `env` with time limit, auto-reset, stats and NaN guard.

    `reset(rng)` takes ONE key and returns the batched `State` of all envs; `step(state, actions)`
    takes actions of shape [num_envs, action_size]. Field meanings follow docs/CONTRIBUTING.md:

      obs                       observation to act on next (already reset where an episode ended)
      reward                    reward of this transition, always finite
      done                      1.0 where the episode ended (terminated or truncated)
      info["terminated"]        1.0 on true termination (env's `done`, or non-finite physics)
      info["truncated"]         1.0 where the time limit was reached without termination
      info["final_obs"]         true next observation s' of this transition, before auto-reset
      info["episode_return"]    running return of the current episode (0 right after a reset)
      info["episode_length"]    running length of the current episode (0 right after a reset)
      info["completed_return"]  return of the episode that ended at this step, else 0
      info["completed_length"]  length of the episode that ended at this step, else 0
      info["nonfinite"]         1.0 where this step's physics went non-finite (env was reset)
      info["reset_rng"]         per-env key from which auto-reset noise is drawn
      metrics                   the wrapped env's per-step metrics of this transition

    All of these are float32 [num_envs] (except `final_obs`, shaped like `obs`, and the keys).
    The wrapped env's own `info` entries are carried through and replaced by the reset's where an
    episode ended. The wrapped env's `reset` and `step` must return states of one structure.
    """

    def __init__(self, env: Env, num_envs: int, episode_length: int):
        super().__init__(env)
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if episode_length < 1:
            raise ValueError(f"episode_length must be >= 1, got {episode_length}")
        self.num_envs = int(num_envs)
        self.episode_length = int(episode_length)
        self._reset_batch = jax.vmap(env.reset)
        self._step_batch = jax.vmap(env.step)

    # -- reset ---------------------------------------------------------------------------------
    def reset(self, rng: jax.Array) -> State:
        """Reset all envs from one key; each env gets its own reset key and auto-reset key."""
        keys = jax.random.split(rng, (self.num_envs, 2))
        inner = self._reset_batch(keys[:, 0])
        zeros = jnp.zeros((self.num_envs,), jnp.float32)
        info = dict(inner.info)
        info.update(
            reset_rng=keys[:, 1],
            terminated=zeros,
            truncated=zeros,
            final_obs=inner.obs,
            episode_return=zeros,
            episode_length=zeros,
            completed_return=zeros,
            completed_length=zeros,
            nonfinite=zeros,
        )
        return inner.replace(reward=zeros, done=zeros, info=info)

    # -- step ----------------------------------------------------------------------------------
    def step(self, state: State, action: jax.Array) -> State:
        """Step every env once, then time-limit, NaN-guard, record stats and auto-reset."""
        n = self.num_envs
        ours, theirs = _split_info(state.info)
        inner_state = state.replace(info=theirs, done=jnp.zeros_like(state.done))
        stepped = self._step_batch(inner_state, action)

        # Non-finite physics: a termination, with finite stand-ins for this transition's outputs.
        finite = _all_finite_per_env((stepped.obs, stepped.reward, stepped.pipeline_state), n)
        nonfinite = ~finite
        reward = jnp.where(nonfinite, 0.0, stepped.reward).astype(jnp.float32)
        final_obs = _select(nonfinite, state.obs, stepped.obs)
        metrics = _zero_nonfinite(stepped.metrics, nonfinite)

        # Time limit and episode statistics.
        length = ours["episode_length"] + 1.0
        ret = ours["episode_return"] + reward
        terminated = (stepped.done > 0) | nonfinite
        truncated = (length >= self.episode_length) & ~terminated
        done = terminated | truncated

        # Auto-reset the ended envs from fresh per-env keys.
        keys = jax.vmap(lambda k: jax.random.split(k))(ours["reset_rng"])
        carry_keys, reset_keys = keys[:, 0], keys[:, 1]
        post = stepped.replace(reward=reward, metrics=metrics)
        post = self._auto_reset(post, done, reset_keys)

        donef = done.astype(jnp.float32)
        info = dict(post.info)
        info.update(
            reset_rng=carry_keys,
            terminated=terminated.astype(jnp.float32),
            truncated=truncated.astype(jnp.float32),
            final_obs=final_obs,
            episode_return=jnp.where(done, 0.0, ret),
            episode_length=jnp.where(done, 0.0, length),
            completed_return=jnp.where(done, ret, 0.0),
            completed_length=jnp.where(done, length, 0.0),
            nonfinite=nonfinite.astype(jnp.float32),
        )
        return post.replace(done=donef, info=info)

    def _auto_reset(self, post: State, done: jax.Array, reset_keys: jax.Array) -> State:
        """Replace pipeline_state, obs and the env's own info of ended envs by a fresh reset.

        reward, done and metrics keep the values of the transition that just happened. The
        batch reset is computed only on steps where some episode ended (`lax.cond`)."""

        def kept(s: State):
            return (s.pipeline_state, s.obs, s.info)

        def reset_ended(_):
            return _select(done, kept(self._reset_batch(reset_keys)), kept(post))

        pipeline_state, obs, info = jax.lax.cond(jnp.any(done), reset_ended, lambda _: kept(post), None)
        return post.replace(pipeline_state=pipeline_state, obs=obs, info=info)


def wrap_for_training(env: Env, num_envs: int, episode_length: int) -> TrainingWrapper:
    """Batch `env` into `num_envs` copies with time limit, auto-reset, stats and NaN guard.

    See `TrainingWrapper` for the fields of the returned states."""
    return TrainingWrapper(env, num_envs, episode_length)


# ----------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------
class EvalResult(NamedTuple):
    """Outcome of one evaluation, first episode per env, each [num_envs]: return, length and the
    mean forward velocity over the episode's steps (the task's `x_velocity` metric; NaN for a
    task without one)."""
    mean_return: jax.Array
    returns: jax.Array
    lengths: jax.Array
    forward_velocity: jax.Array


FORWARD_VELOCITY = "x_velocity"  # the locomotion tasks' metric of forward speed (m/s)


def make_evaluator(env: Env, policy_fn: Callable[[Any, jax.Array, jax.Array], jax.Array], num_envs: int,
                   episode_length: int, reset_keys: Optional[Callable] = None) -> Callable[[Any, jax.Array], EvalResult]:
    """Build a jitted `run(params, rng) -> EvalResult` of evaluation episodes.

    `policy_fn(params, obs[num_envs, obs_size], key) -> actions[num_envs, action_size]`: the
    deterministic policy (e.g. `agent.eval_act`, ignoring `key`), or a stochastic one drawing with
    `key` (a fresh key each step). `num_envs` separate copies of `env` (no auto-reset) run until
    every copy's first episode has ended or `episode_length` steps have passed; only each env's
    first episode counts. A non-finite step ends that env's episode with the reward of that step
    dropped. `reset_keys(rng) -> [num_envs] keys` (default: `split(rng, num_envs)`) picks the
    episodes' starts. Taking `params` as an argument (rather than closing over them) lets one
    compiled evaluator serve every evaluation of a run."""
    reset_batch, step_batch = jax.vmap(env.reset), jax.vmap(env.step)
    reset_keys = reset_keys or (lambda rng: jax.random.split(rng, num_envs))

    def run(params, rng):
        state = reset_batch(reset_keys(rng))
        zeros = jnp.zeros((num_envs,), jnp.float32)
        alive = jnp.ones((num_envs,), bool)
        has_velocity = FORWARD_VELOCITY in state.metrics
        policy_key = jax.random.fold_in(rng, 0x5EED)

        def cond(carry):
            t, _, alive, *_ = carry
            return (t < episode_length) & jnp.any(alive)

        def body(carry):
            t, state, alive, returns, lengths, distance = carry
            action = policy_fn(params, state.obs, jax.random.fold_in(policy_key, t))
            nxt = step_batch(state.replace(done=jnp.zeros_like(state.done)), action)
            finite = _all_finite_per_env((nxt.obs, nxt.reward, nxt.pipeline_state), num_envs)
            counted = alive & finite
            returns = returns + jnp.where(alive, jnp.where(finite, nxt.reward, 0.0), 0.0)
            lengths = lengths + alive.astype(jnp.float32)
            if has_velocity:
                distance = distance + jnp.where(counted, nxt.metrics[FORWARD_VELOCITY], 0.0)
            alive = counted & (nxt.done == 0)
            # Stop stepping the envs that ended: keep their last (finite) state.
            state = _select(alive, nxt, state)
            return t + 1, state, alive, returns, lengths, distance

        _, _, _, returns, lengths, distance = jax.lax.while_loop(
            cond, body, (jnp.int32(0), state, alive, zeros, zeros, zeros))
        velocity = distance / jnp.maximum(lengths, 1.0) if has_velocity else jnp.full_like(zeros, jnp.nan)
        return EvalResult(jnp.mean(returns), returns, lengths, velocity)

    return jax.jit(run)


def evaluate(env: Env, policy_fn: Callable[[jax.Array], jax.Array], rng: jax.Array, num_envs: int,
             episode_length: int) -> EvalResult:
    """One deterministic evaluation with a parameter-free `policy_fn(obs) -> actions`.

    Convenience over `make_evaluator`, which a training loop should prefer (it compiles once
    and takes the policy parameters as an argument)."""
    return make_evaluator(env, lambda _, obs, key: policy_fn(obs), num_envs, episode_length)(None, rng)
