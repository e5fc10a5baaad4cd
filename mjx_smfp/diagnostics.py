"""Sample-based checks of a policy that do not trust its own density: what an evaluation logs
beside the return (issue 34). Pure jax functions on batches, so the Engine compiles them once.

* `knn_entropy`: the Kozachenko-Leonenko estimate of the differential entropy of samples,
  psi(n) - psi(k) + log V_d + d mean_i log eps_i (eps_i: distance to the k-th nearest other
  sample, V_d: the unit d-ball's volume; Kozachenko & Leonenko 1987), per set of samples. It sees
  the whole policy, so it counts the spread a flow adds over eps that SMFP's conditional surrogate
  H(A | eps) leaves out, and a collapse that no density estimate of the agent's would show.
* `pairwise_spread`: E ||x(eps_1) - x(eps_2)||^2 / 2 over independent noise draws: the spread of
  a generative map's output (0 for a map that ignores its noise).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

KNN_K = 3  # neighbour order of the entropy estimate
MIN_DISTANCE = 1e-10  # floor of a neighbour distance: identical samples give a finite (very low) entropy


def knn_entropy(samples: jax.Array, k: int = KNN_K) -> jax.Array:
    """Entropy estimate (nats) of each set of `samples` [..., n, d] -> [...]."""
    n, d = samples.shape[-2:]
    x = samples.astype(jnp.float32)
    sq = jnp.sum(x * x, axis=-1)
    dist2 = sq[..., :, None] + sq[..., None, :] - 2.0 * jnp.einsum("...id,...jd->...ij", x, x)
    dist2 = jnp.where(jnp.eye(n, dtype=bool), jnp.inf, jnp.maximum(dist2, 0.0))
    kth = -jax.lax.top_k(-dist2, k)[0][..., k - 1]  # k-th smallest squared distance to another sample
    log_eps = 0.5 * jnp.log(jnp.maximum(kth, MIN_DISTANCE**2))
    log_unit_ball = 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1)
    digamma = jax.scipy.special.digamma
    return digamma(float(n)) - digamma(float(k)) + log_unit_ball + d * jnp.mean(log_eps, axis=-1)


def pairwise_spread(x1: jax.Array, x2: jax.Array) -> jax.Array:
    """Mean of ||x1 - x2||^2 / 2 over rows: the spread of a map's output over its noise."""
    return 0.5 * jnp.mean(jnp.sum(jnp.square(x1 - x2), axis=-1))
