"""Log-densities shared by the policies: the standard normal and the tanh squashing correction."""
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
