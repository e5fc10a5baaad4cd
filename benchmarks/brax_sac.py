"""brax's own SAC and replay buffer, timed beside ours (benchmarks/speed.py `loop --brax`, `--replay N`;
the GPU check's `brax` phase): the same task object, envs, batch, updates per step, replay capacity and
network widths."""
from __future__ import annotations

import functools
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np


def _keep_metric_keys(env):
    """brax's EvalWrapper adds metrics['reward'] and expects `step` to keep the incoming metric keys (its
    own envs update state.metrics in place); pass them through for tasks that rebuild the dict each step."""
    from brax.envs.base import Wrapper

    class KeepMetricKeys(Wrapper):
        def step(self, state, action):
            nstate = self.env.step(state, action)
            return nstate.replace(metrics={**state.metrics, **nstate.metrics})

    return KeepMetricKeys(env)


def _ensure_device_put_replicated() -> None:
    """brax 0.14.2's SAC calls `jax.device_put_replicated`, which jax >= 0.10 removed (brax issue #671):
    where missing, define it here as what it returned, `len(devices)` stacked copies of `x` sharded
    along the new leading axis over `devices`. Only this benchmark sets it; the project never calls it."""
    if hasattr(jax, "device_put_replicated"):
        return

    def device_put_replicated(x, devices):
        mesh = jax.sharding.Mesh(np.asarray(devices), ("replica",))
        sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("replica"))
        return jax.tree_util.tree_map(lambda a: jax.device_put(jnp.stack([a] * len(devices)), sharding), x)

    jax.device_put_replicated = device_put_replicated


def brax_sac(env, cfg, agent_cfg, calls: int) -> float:
    """Env-steps/s of brax's SAC at the same scale (its own `training/sps`, median over epochs after
    the first, which compiles); its epochs = our host calls (the same iterations each)."""
    _ensure_device_put_replicated()
    from brax.training.agents.sac import networks as sac_networks
    from brax.training.agents.sac import train as sac_train

    sps = []
    epochs = calls + 1  # the first epoch includes compilation
    prefill = cfg.learning_starts
    prefill_env_steps = -(-prefill // cfg.num_envs) * cfg.num_envs
    num_timesteps = prefill_env_steps + epochs * cfg.iterations_per_call * cfg.num_envs

    def progress(step, metrics):
        if "training/sps" in metrics:
            sps.append(float(metrics["training/sps"]))

    sac_train.train(
        environment=_keep_metric_keys(env), num_timesteps=num_timesteps, episode_length=cfg.episode_length,
        num_envs=cfg.num_envs, num_eval_envs=1, batch_size=cfg.batch_size, num_evals=epochs + 1,
        normalize_observations=cfg.normalize_obs, min_replay_size=prefill, max_replay_size=cfg.replay_capacity,
        grad_updates_per_step=cfg.updates_per_step, learning_rate=agent_cfg.critic_lr,
        discounting=agent_cfg.gamma, tau=agent_cfg.tau, seed=cfg.seed, progress_fn=progress,
        network_factory=functools.partial(sac_networks.make_sac_networks,
                                          hidden_layer_sizes=tuple(agent_cfg.critic_hidden),
                                          q_network_layer_norm=agent_cfg.critic_layer_norm),
    )
    return statistics.median(sps[1:] if len(sps) > 1 else sps)


def _ms_per_call(fn, carry, repeats: int):
    """(ms per call of `carry = fn(carry)` over `repeats` calls after an untimed, compiling one; the last carry)."""
    carry = jax.block_until_ready(fn(carry))
    t = time.time()
    for _ in range(repeats):
        carry = fn(carry)
    jax.block_until_ready(carry)
    return (time.time() - t) / repeats * 1e3, carry


def replay_costs(capacity: int, obs_size: int, action_size: int, num_envs: int, batch_size: int,
                 repeats: int = 20) -> dict:
    """ms per insert of `num_envs` rows and per sample of `batch_size` rows into a FULL ring:
    ours (scatter at the write index, donated) vs brax's UniformSamplingQueue (rolls when full)."""
    from brax.training import replay_buffers

    from mjx_smfp import replay
    from mjx_smfp.types import Transition

    rows = Transition(obs=jnp.ones((num_envs, obs_size)), action=jnp.ones((num_envs, action_size)),
                      reward=jnp.ones(num_envs), next_obs=jnp.ones((num_envs, obs_size)),
                      terminated=jnp.zeros(num_envs), truncated=jnp.zeros(num_envs))
    ours = replay.init(capacity, obs_size, action_size).replace(size=jnp.asarray(capacity, jnp.int32))  # full
    ours_insert, ours = _ms_per_call(jax.jit(lambda b: replay.insert(b, rows), donate_argnums=0), ours, repeats)
    sample = jax.jit(lambda b, k: replay.sample(b, k, batch_size))
    ours_sample, _ = _ms_per_call(lambda _: sample(ours, jax.random.PRNGKey(0)), None, repeats)
    del ours

    queue = replay_buffers.UniformSamplingQueue(max_replay_size=capacity, dummy_data_sample=jax.tree_util.tree_map(
        lambda x: x[0], rows), sample_batch_size=batch_size)
    qstate = queue.init(jax.random.PRNGKey(0)).replace(insert_position=jnp.asarray(capacity, jnp.int32))  # full
    brax_insert, qstate = _ms_per_call(jax.jit(lambda b: queue.insert(b, rows), donate_argnums=0), qstate, repeats)
    bsample = jax.jit(queue.sample, donate_argnums=0)  # as in brax's loop: the state is threaded through
    brax_sample, _ = _ms_per_call(lambda c: bsample(c[0]), (qstate,), repeats)
    return {"replay_capacity": capacity, "replay_obs_size": obs_size, "ours_insert_ms": ours_insert,
            "brax_insert_ms": brax_insert, "ours_sample_ms": ours_sample, "brax_sample_ms": brax_sample}
