"""Running observation normaliser (mean / variance with Chan's parallel update).

Replay stores raw observations; the loop normalises with the current statistics both
when acting and when sampling a batch for `agent.update`, so stored data never goes stale.
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
