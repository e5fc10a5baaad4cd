"""Entropic mirror descent pieces (SMFP.md §5): the anchor policy pi_k, the shared-noise
KL upper bound, and the md_coef (beta) dual update.

Anchor pi_k: a frozen copy of the actor parameters, refreshed either by a hard copy every
`period` gradient steps ("hard", MDPO-style) or by an exponential moving average
("ema"). The agent calls `update_anchor` once per actor step.

KL bound. Feed the SAME (eps, xi) to pi_theta and pi_k. Both pre-squash actions are
Gaussian given eps, y ~ N(x(eps), sigma^2), and tanh is a shared bijection, so by the
chain rule / data-processing inequality

    KL(pi_theta(.|s) || pi_k(.|s)) <= E_eps KL(N(x_theta, sigma_theta^2) || N(x_k, sigma_k^2))
      = E_eps sum_j [ log(sigma_k/sigma_theta) + (sigma_theta^2 + (x_theta - x_k)^2)/(2 sigma_k^2) - 1/2 ]

— one extra forward pass of the frozen network per state.

md_coef beta: fixed, or dual-tuned toward a target KL delta. The dual step is taken on
log beta (like the temperature), i.e. gradient descent on beta * stop_grad(delta - KL):
beta grows while KL_hat > delta and shrinks otherwise.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

ANCHOR_UPDATES = ("hard", "ema")


def shared_noise_kl(x: jax.Array, log_sigma: jax.Array, anchor_x: jax.Array, anchor_log_sigma: jax.Array) -> jax.Array:
    """Per-state upper bound on KL(pi_theta || pi_k) for one shared noise draw; [B, d] -> [B].

    Average over draws (the batch) for the bound on E_s KL (SMFP.md §5).
    """
    var_ratio = jnp.exp(2.0 * (log_sigma - anchor_log_sigma))
    mean_term = jnp.square(x - anchor_x) * jnp.exp(-2.0 * anchor_log_sigma)
    return jnp.sum(anchor_log_sigma - log_sigma + 0.5 * (var_ratio + mean_term) - 0.5, axis=-1)


def update_anchor(anchor_params, params, step: jax.Array, *, mode: str = "hard", period: int = 1000,
                  ema_rate: float = 0.005):
    """pi_k after actor step number `step` (1-based count of actor steps taken so far).

    "hard": anchor := params when step % period == 0, else unchanged.
    "ema":  anchor := anchor + ema_rate * (params - anchor).
    """
    if mode == "hard":
        refresh = (step % period) == 0
        return jax.tree_util.tree_map(lambda a, p: jnp.where(refresh, p, a), anchor_params, params)
    if mode == "ema":
        return jax.tree_util.tree_map(lambda a, p: a + ema_rate * (p - a), anchor_params, params)
    raise ValueError(f"anchor update {mode!r} is not one of {ANCHOR_UPDATES}")


def md_coef_loss(log_md_coef: jax.Array, kl_hat: jax.Array, target_kl: float) -> jax.Array:
    """beta * stop_grad(delta - KL_hat): minimising it in log beta is the dual ascent step (§5)."""
    return jnp.exp(log_md_coef) * jax.lax.stop_gradient(target_kl - kl_hat)


def closed_form_target_log_density(anchor_log_prob: jax.Array, q: jax.Array, temperature, md_coef) -> jax.Array:
    """Unnormalised log pi*(a|s) = beta/(alpha+beta) log pi_k(a|s) + Q(s,a)/(alpha+beta) (SMFP.md §1)."""
    total = temperature + md_coef
    return (md_coef * anchor_log_prob + q) / total


def particle_weights(q: jax.Array, anchor_log_prob: jax.Array, temperature, md_coef, axis: int = 0) -> jax.Array:
    """Self-normalised importance weights of pi* / pi_k for particles drawn from pi_k (§6 "weighted").

    pi*/pi_k ∝ exp((Q - alpha log pi_k) / (alpha + beta)); softmax over `axis` (the particles),
    gradient stopped.
    """
    logits = (q - temperature * anchor_log_prob) / (temperature + md_coef)
    return jax.lax.stop_gradient(jax.nn.softmax(logits, axis=axis))
