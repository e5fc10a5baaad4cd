"""Twin-Q soft-backup critic loss and Polyak target update, shared by SAC and SMFP.

The critic is `networks.TwinQ` (n heads, LayerNorm MLPs); `apply_fn(params, obs, action)`
returns Q-values of shape [num_heads, batch]. The target is SAC's soft (min-over-heads)
backup

    y = r + gamma * (1 - terminated) * (min_i Qbar_i(s', a') - temperature * log pi(a'|s'))

It bootstraps through time-limit truncation (`batch.truncated` is ignored on purpose:
`batch.next_obs` is the true s' before any auto-reset) and cuts only at true termination.
With n-step batches (`replay.sample_n_step`) `batch.reward` is the discounted sum of the m
rewards of the window and `batch.discount` = gamma^m replaces gamma.
The agent supplies `next_action` ~ pi(.|s') and its `next_logp` (SAC: exact tanh-Gaussian
log-prob; SMFP: its entropy surrogate), so this module knows nothing about the policy.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from mjx_smfp.types import Metrics, Transition

QApply = Callable[[object, jax.Array, jax.Array], jax.Array]  # (params, obs, action) -> [heads, B]


def soft_target(
    target_params,
    batch: Transition,
    next_action: jax.Array,
    next_logp: jax.Array,
    temperature: jax.Array,
    gamma: float,
    apply_fn: QApply,
    entropy_in_backup: bool = True,
) -> jax.Array:
    """Soft Bellman target y of shape [B] (gradient stopped)."""
    next_q = apply_fn(target_params, batch.next_obs, next_action).min(axis=0)
    if entropy_in_backup:
        next_q = next_q - temperature * next_logp
    not_terminated = 1.0 - batch.terminated.astype(next_q.dtype)
    discount = gamma if batch.discount is None else batch.discount  # n-step batches: gamma^m per row
    y = batch.reward + discount * not_terminated * next_q
    return jax.lax.stop_gradient(y)


def critic_loss(critic_params, batch: Transition, target: jax.Array, apply_fn: QApply) -> tuple[jax.Array, Metrics]:
    """Sum over the Q heads of each head's batch mean of 0.5 * (Q_i(s, a) - y)^2 (every head is
    regressed with full weight, as in SAC); returns (loss, metrics).

    `target` is y from `soft_target`. Differentiate w.r.t. `critic_params` (argument 0) with
    `jax.value_and_grad(..., has_aux=True)`.
    """
    y = target
    q = apply_fn(critic_params, batch.obs, batch.action)  # [heads, B]
    td = q - y[None]
    loss = jnp.sum(0.5 * jnp.mean(jnp.square(td), axis=1))
    metrics = {
        "critic_loss": loss,
        "q_mean": q.mean(),
        "q_min": q.min(),
        "q_max": q.max(),
        "target_q_mean": y.mean(),
        "td_abs_mean": jnp.abs(td).mean(),
    }
    return loss, metrics


def polyak(target, online, tau: float):
    """target <- (1 - tau) * target + tau * online, leaf by leaf."""
    return jax.tree_util.tree_map(lambda t, o: t + tau * (o - t), target, online)
