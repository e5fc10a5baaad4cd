"""Running normalisers of the loop: observations (mean / variance with Chan's parallel update)
and the reward scale (SimbaV2 / FlashSAC: rewards divided by the spread of the discounted return).

Replay stores raw observations and raw rewards; the loop normalises with the current statistics
both when acting and when sampling a batch for `agent.update`, so stored data never goes stale.
Under data parallelism, pass `pmean_axis` so every device keeps identical statistics.
"""
from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class NormalizerState:
    mean: jax.Array
    var: jax.Array
    count: jax.Array  # float32 number of observations folded in


def init(obs_size: int) -> NormalizerState:
    return NormalizerState(mean=jnp.zeros((obs_size,), jnp.float32), var=jnp.ones((obs_size,), jnp.float32),
                           count=jnp.zeros((), jnp.float32))


def update(state: NormalizerState, obs: jax.Array, pmean_axis: Optional[str] = None) -> NormalizerState:
    """Fold a batch [n, obs_size] into the running statistics."""
    batch_mean = obs.mean(axis=0)
    batch_var = obs.var(axis=0)
    if pmean_axis is not None:  # equal-size shards: averaging moments gives the global ones
        batch_sq = jax.lax.pmean(batch_var + batch_mean**2, pmean_axis)
        batch_mean = jax.lax.pmean(batch_mean, pmean_axis)
        batch_var = batch_sq - batch_mean**2
        n = obs.shape[0] * jax.lax.psum(1, pmean_axis)
    else:
        n = obs.shape[0]
    n = jnp.asarray(n, jnp.float32)
    total = state.count + n
    delta = batch_mean - state.mean
    mean = state.mean + delta * n / total
    m2 = state.var * state.count + batch_var * n + delta**2 * state.count * n / total
    return NormalizerState(mean=mean, var=m2 / total, count=total)


def normalize(state: NormalizerState, obs: jax.Array, clip: float = 10.0) -> jax.Array:
    """(obs - mean) / std, clipped; identity statistics before any update."""
    std = jnp.sqrt(jnp.maximum(state.var, 1e-8))
    return jnp.clip((obs - state.mean) / std, -clip, clip)


@struct.dataclass
class RewardScaleState:
    """Statistics of the running discounted return G_t = r_t + gamma (1 - done_{t-1}) G_{t-1} of
    every env (SimbaV2 `scale_rl/agents/wrappers/normalization.py` RewardNormalizer; FlashSAC
    `flash_rl/agents/utils/reward_normalization.py`): its running mean/variance over all envs and
    steps, and the largest |G| seen."""

    returns: jax.Array  # G of each of this device's envs [num_envs]
    mean: jax.Array
    var: jax.Array
    count: jax.Array
    max_abs: jax.Array


def init_reward_scale(num_envs: int) -> RewardScaleState:
    zero = jnp.zeros((), jnp.float32)
    return RewardScaleState(returns=jnp.zeros((num_envs,), jnp.float32), mean=zero, var=jnp.ones((), jnp.float32),
                            count=zero, max_abs=zero)


def update_reward_scale(state: RewardScaleState, reward: jax.Array, done: jax.Array, gamma: float,
                        pmean_axis: Optional[str] = None) -> RewardScaleState:
    """Fold one step of all envs in: G <- r + gamma G (G restarts after an episode ends), then the
    moments of the batch of G and the running max of |G| (pmax over devices with `pmean_axis`)."""
    returns = reward + gamma * state.returns
    moments = update(NormalizerState(mean=state.mean[None], var=state.var[None], count=state.count),
                     returns[:, None], pmean_axis=pmean_axis)
    max_abs = jnp.max(jnp.abs(returns))
    if pmean_axis is not None:
        max_abs = jax.lax.pmax(max_abs, pmean_axis)
    return RewardScaleState(returns=jnp.where(done > 0, 0.0, returns), mean=moments.mean[0], var=moments.var[0],
                            count=moments.count, max_abs=jnp.maximum(state.max_abs, max_abs))


def reward_scale(state: RewardScaleState, g_max: float, eps: float = 1e-8) -> jax.Array:
    """The divisor of rewards, max(std(G), max|G| / g_max): a return of typical size becomes ~1 and
    the largest seen becomes at most `g_max` in magnitude (so a value support of +-g_max or wider
    holds every return). 1 before any statistics."""
    return jnp.maximum(jnp.sqrt(state.var + eps), state.max_abs / g_max)
