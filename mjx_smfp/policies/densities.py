"""Log-densities shared by the policies (the standard normal and the tanh squashing correction),
and the draw of two independent standard normal arrays at the cost of one."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def standard_normal_logpdf(v: jax.Array) -> jax.Array:
    """sum_j log N(v_j; 0, 1); [B, d] -> [B]."""
    return jnp.sum(-0.5 * jnp.square(v) - 0.5 * math.log(2 * math.pi), axis=-1)


def tanh_log_det(y: jax.Array) -> jax.Array:
    """sum_j log(1 - tanh(y_j)^2) = sum_j 2 (log 2 - y_j - softplus(-2 y_j)), numerically stable; [B, d] -> [B]."""
    return jnp.sum(2.0 * (jnp.log(2.0) - y - jax.nn.softplus(-2.0 * y)), axis=-1)


def squashed_gaussian_log_prob(noise: jax.Array, log_std: jax.Array, pre_squash: jax.Array) -> jax.Array:
    """log-density of a = tanh(y), y = mean + exp(log_std) * noise, at the draw `noise`; [B].

    log N(noise) - sum log_std - sum log(1 - tanh(y)^2): the tanh-Gaussian's exact log pi, and
    SMFP's conditional entropy surrogate given the flow noise (SMFP.md §4)."""
    return standard_normal_logpdf(noise) - jnp.sum(log_std, axis=-1) - tanh_log_det(pre_squash)


def normal_pair(rng: jax.Array, shape) -> tuple[jax.Array, jax.Array]:
    """Two independent float32 N(0, I) arrays of `shape` from one threefry2x32 hash per element.

    jax.random.normal hashes one counter per number and keeps 32 of the 64 bits the hash
    makes; a policy that needs two noises per action dimension (SMFP's eps and xi) uses both
    halves here, so its noise costs what SAC's one noise costs in hashing (on the CPU the hash
    was half of a normal draw; docs: benchmarks/results/speed/profile_notes.md). Each
    32-bit word becomes a normal exactly as jax.random.normal does it (a uniform on (-1, 1),
    then sqrt(2) erfinv). A key of another PRNG implementation takes two jax.random.normal
    draws instead."""
    size = math.prod(shape)
    key = jax.random.key_data(rng) if jax.dtypes.issubdtype(rng.dtype, jax.dtypes.prng_key) else rng
    if key.shape != (2,) or size == 0:
        k1, k2 = jax.random.split(rng)
        return jax.random.normal(k1, shape), jax.random.normal(k2, shape)
    from jax.extend.random import threefry_2x32

    counters = jnp.arange(size, dtype=jnp.uint32)
    bits = threefry_2x32(key, jnp.concatenate([jnp.zeros_like(counters), counters]))
    return _bits_to_normal(bits[:size]).reshape(shape), _bits_to_normal(bits[size:]).reshape(shape)


def _bits_to_normal(bits: jax.Array) -> jax.Array:
    """uint32 words -> N(0, 1): jax.random.uniform's mantissa trick on (-1, 1), then sqrt(2) erfinv."""
    one = jnp.asarray(1.0, jnp.float32).view(jnp.uint32)
    floats = jax.lax.bitcast_convert_type((bits >> 9) | one, jnp.float32) - 1.0  # [0, 1)
    lo = jnp.nextafter(jnp.float32(-1.0), jnp.float32(0.0))
    return jnp.sqrt(jnp.float32(2.0)) * jax.lax.erf_inv(jnp.maximum(lo, floats * (1.0 - lo) + lo))
