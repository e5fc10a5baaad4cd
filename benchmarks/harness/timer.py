"""The one timer of every speed figure (compile timed apart, then the median of timed calls, several
programs in interleaved rounds so that a slow phase of a shared machine hits each alike) and what the
speed figures share: THE raw stepping, the training wrapper's stepping, the agents' costs. Training
speed is read off the library's loop (`runner.run`'s per-call `perf/*` scalars), never our own."""
from __future__ import annotations

import math
import statistics
import tempfile
import time
from typing import Any, Callable

import numpy as np


def compile_seconds(fn, *args) -> tuple[Any, float]:
    """(the compiled program, seconds to lower and compile it) of the jitted `fn` at `args`."""
    import jax

    t = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t


def time_calls(calls: dict[str, Callable[[], Any]], rounds: int = 3) -> dict[str, float]:
    """Median seconds per call of each of `calls` over `rounds` interleaved rounds, after one
    untimed call each (compiling or warming up); every result is blocked on."""
    import jax

    for fn in calls.values():
        jax.block_until_ready(fn())
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            t = time.perf_counter()
            jax.block_until_ready(fn())
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(t) for name, t in times.items()}


class Capture:
    """A logger that keeps what the runner writes (brax's `progress_fn`): one dict per write."""

    def __init__(self, on_write: Callable[[int, dict], None] | None = None):
        self.rows: list[dict] = []
        self.on_write = on_write

    def write(self, step: int, scalars: dict) -> None:
        self.rows.append({"step": step, **scalars})
        if self.on_write is not None:
            self.on_write(step, scalars)

    def close(self) -> None:
        pass

    def median_rates(self) -> dict:
        """Median env-steps/s and updates/s of the train calls after the first (which compiles)."""
        per_call = [r for r in self.rows if "perf/env_steps_per_s" in r][1:]
        return {k: statistics.median(r[f"perf/{k}"] for r in per_call) for k in ("env_steps_per_s", "updates_per_s")}


def train_speed(engine, calls: int, target: float | None = None, budget_s: float = math.inf,
                run_dir: str | None = None, **run_kwargs) -> dict:
    """Env-steps/s and updates/s of the compiled loop (all seeds counted): the median over `calls`
    train calls of `runner.run` after a first one, with its warm-up and train-call compile seconds.
    With `target`, it trains on, evaluating after every call, until the deterministic evaluation
    return reaches `target` (after those calls) or `budget_s` seconds of training have passed:
    `time_to_target_s` is the run clock at the first evaluation that reached it, less warm-up and
    compile (None: not reached), and `best_eval_return` the best evaluation. `run_dir`: where it
    checkpoints (processes of one run share it; default a temporary folder)."""
    from mjx_smfp.runner import Schedule, StopFlag, run

    cfg, capture, got = engine.cfg, Capture(), {}
    chunk = cfg.iterations_per_call * cfg.num_envs
    schedule = Schedule(engine.warmup_steps + (calls + 1) * chunk)
    if target is not None:
        stop, got = StopFlag(verbose=False), {"time_to_target_s": None, "best_eval_return": -math.inf}

        def on_eval(evaluation) -> None:
            spent = [r[k] for r in capture.rows for k in ("perf/warmup_seconds", "perf/compile_seconds") if k in r]
            if len(spent) < 2:
                return  # the untrained policy's evaluation after the warm-up
            trained, ret = evaluation.seconds - sum(spent), float(np.mean(evaluation.scalars["return"]))
            got["best_eval_return"] = max(got["best_eval_return"], ret)
            if ret >= target and got["time_to_target_s"] is None:
                got["time_to_target_s"] = trained
            timed = sum("perf/env_steps_per_s" in r for r in capture.rows) >= calls  # this call's row comes next
            stop.requested = timed and (got["time_to_target_s"] is not None or trained > budget_s)

        schedule = Schedule(engine.warmup_steps + 2**50, eval_every=chunk)
        run_kwargs.update(stop=stop, on_eval=on_eval)
    with tempfile.TemporaryDirectory() as scratch:
        run(engine, run_dir or scratch, schedule=schedule, logger=capture, verbose=False, **run_kwargs)
    return {**capture.median_rates(),
            "compile_s": next(r["perf/compile_seconds"] for r in capture.rows if "perf/compile_seconds" in r),
            "warmup_s": next(r["perf/warmup_seconds"] for r in capture.rows if "perf/warmup_seconds" in r), **got}


def env_options(task: str, physics: str | None) -> dict:
    """envs.make's keywords: the physics preset, for a task that has physics options (not the bandit)."""
    import envs

    return {"physics": physics} if physics and hasattr(envs.make(task), "physics") else {}


def random_actions(key, shape):
    import jax

    return jax.random.uniform(key, shape, minval=-1.0, maxval=1.0)


def raw_stepping(env, num_envs: int, steps: int, rounds: int = 2) -> dict:
    """Env-steps/s of the bare task (THE raw stepping): vmapped `env.step` in one jitted scan of
    `steps` steps from reset states, uniform random actions; compile seconds apart."""
    import jax

    states = jax.jit(jax.vmap(env.reset))(jax.random.split(jax.random.PRNGKey(0), num_envs))
    actions = random_actions(jax.random.PRNGKey(1), (steps, num_envs, env.action_size))
    rollout = lambda s, a: jax.lax.scan(lambda s, a: (jax.vmap(env.step)(s, a), None), s, a)[0].obs  # noqa: E731
    compiled, compile_s = compile_seconds(rollout, states, actions)
    seconds = time_calls({"raw": lambda: compiled(states, actions)}, rounds)["raw"]
    return {"raw_steps_per_s": num_envs * steps / seconds, "raw_compile_s": compile_s}


def wrapped_stepping(env, num_envs: int, steps: int, episode_length: int = 1000, rounds: int = 2,
                     reset_cost: bool = True) -> dict:
    """Env-steps/s of the training wrapper (auto-reset, time limit, NaN guard, statistics) as a
    loop runs it, the episodes it ended and the non-finite states it caught; with `reset_cost`, a
    whole-batch reset's cost as a fraction of a wrapped step."""
    import jax

    from envs.wrappers import wrap_for_training

    wrapped = wrap_for_training(env, num_envs, episode_length)
    key = jax.random.PRNGKey(num_envs)
    state = jax.jit(wrapped.reset)(key)

    def run(state, key):
        def body(carry, k):
            state, ended, nonfinite = carry
            state = wrapped.step(state, random_actions(k, (num_envs, env.action_size)))
            return (state, ended + state.done.sum(), nonfinite + state.info["nonfinite"].sum()), None
        return jax.lax.scan(body, (state, 0.0, 0.0), jax.random.split(key, steps))[0]

    compiled, compile_s = compile_seconds(run, state, key)
    seconds = time_calls({"wrapped": lambda: compiled(state, key)}, rounds)["wrapped"]
    _, ended, nonfinite = compiled(state, key)
    out = {"wrapped_steps_per_s": num_envs * steps / seconds, "wrapped_compile_s": compile_s,
           "episodes_ended": float(ended), "nonfinite": float(nonfinite)}
    if reset_cost:
        keys = jax.random.split(key, num_envs)
        reset, _ = compile_seconds(jax.vmap(env.reset), keys)
        out["reset_over_step"] = time_calls({"reset": lambda: reset(keys)}, rounds)["reset"] / (seconds / steps)
    return out


def rolling_scan(fn, obs, repeats: int):
    """jit of state -> the sum of `repeats` calls fn(state, obs, key), the observations rolled after
    each call so that XLA cannot hoist the work out of the loop."""
    import jax
    import jax.numpy as jnp

    return jax.jit(lambda s: jax.lax.scan(lambda c, i: ((c[0] + jnp.sum(fn(s, c[1], jax.random.PRNGKey(i))),
                                                         jnp.roll(c[1], 1, axis=0)), None),
                                          (0.0, obs), jnp.arange(repeats))[0][0])


def agent_costs(names, nets: dict, obs_size: int, action_size: int, batch_size: int, act_envs=(), repeats: int = 20,
                rounds: int = 5) -> dict:
    """ms per `update` on one batch and per batched `act` of each agent (the same network widths),
    timed in interleaved rounds: {"<agent>_update_ms": ..., "<agent>_act_<n>_ms": ...}."""
    import jax
    import jax.numpy as jnp

    from mjx_smfp import agents
    from mjx_smfp import config as config_lib
    from mjx_smfp.types import Transition

    k = jax.random.split(jax.random.PRNGKey(1), 4)
    batch = Transition(obs=jax.random.normal(k[0], (batch_size, obs_size)),
                       action=random_actions(k[1], (batch_size, action_size)), reward=jnp.ones(batch_size),
                       next_obs=jax.random.normal(k[2], (batch_size, obs_size)), terminated=jnp.zeros(batch_size),
                       truncated=jnp.zeros(batch_size))
    calls = {}
    for name in names:
        cls = agents.get_class(name).Config
        fields = config_lib.flat_field_types(cls)
        agent = agents.make(name, config_lib.make_config(cls, {f: v for f, v in nets.items() if f in fields}),
                            obs_size, action_size)
        state = agent.init(jax.random.PRNGKey(0))
        updates = jax.jit(lambda s, agent=agent: jax.lax.scan(
            lambda s, i: (agent.update(s, batch, jax.random.PRNGKey(i))[0], None), s, jnp.arange(repeats))[0])
        calls[f"{name}_update_ms"] = lambda f=updates, s=state: f(s)
        for n in act_envs:
            acts = rolling_scan(agent.act, jax.random.normal(k[3], (n, obs_size)), repeats)
            calls[f"{name}_act_{n}_ms"] = lambda f=acts, s=state: f(s)
    return {name: 1e3 * seconds / repeats for name, seconds in time_calls(calls, rounds).items()}
