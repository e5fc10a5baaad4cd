"""MeanFlow maths (SMFP.md §2): path, (r, t) sampler, identity loss, one-step sampling.

Path between a data sample x (t = 0) and noise e (t = 1):

    z_t = (1 - t) x + t e,        conditional velocity v = e - x.

The average velocity u(z_t, r, t) = 1/(t - r) * int_r^t v(z_tau, tau) dtau satisfies the
MeanFlow identity (differentiate (t - r) u in t with r fixed)

    u(z_t, r, t) = v(z_t, t) - (t - r) * d/dt u(z_t, r, t),
    d/dt u = v . d_z u + d_t u,

so the regression target u_tgt = stop_grad(v - (t - r) * du/dt) needs ONE `jax.jvp` of
u_theta at (z, r, t) with tangent (v, 0, 1), which also returns u_theta itself
(`total_derivative`). One-step sampling: x = e - u_theta(e, r=0, t=1).

Every function here is pure and works on a *field* `u_fn(z, r, t) -> u` with z of shape
[B, d] and r, t of shape [B] (or [1], broadcast); agents close the field over their
parameters and the observation (the policy in policies/meanflow.py does exactly that).

Switches (all plain arguments, surfaced as SMFP.Config fields by the agent):
* `variant`: "meanflow" (the identity loss above, arXiv 2505.13447) or "improved"
  (improved MeanFlow, arXiv 2512.02012: the network's own instantaneous velocity
  v_hat = u_theta(z, t, t) is the JVP tangent, and the compound prediction
  V = u + (t - r) * stop_grad(du/dt) is regressed onto e - x).
* adaptive weighting w = 1 / (||delta||^2 + c)^p, applied as stop_grad(w) * ||delta||^2
  (`weight_power` p, `weight_eps` c; p = 0 is the plain squared error).
* the (r, t) sampler's logit-normal mean/std and the fraction of the batch with r = t.
"""
from __future__ import annotations

from typing import Callable, Optional

import jax
import jax.numpy as jnp

Field = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]  # (z [B,d], r [B] or [1], t [B] or [1]) -> u [B,d]

VARIANTS = ("meanflow", "improved")


def sample_times(
    rng: jax.Array,
    batch_size: int,
    *,
    mean: float = -0.4,
    std: float = 1.0,
    equal_fraction: float = 0.75,
    one_step_fraction: float = 0.0,
) -> tuple[jax.Array, jax.Array]:
    """(r, t), each [B], with 0 <= r <= t <= 1 (SMFP.md §2).

    Two logit-normal draws sigmoid(N(mean, std^2)); t is the larger, r the smaller; then
    r := t for a random `equal_fraction` of the batch (those rows are plain flow matching), and
    (r, t) := (0, 1) for a random `one_step_fraction` (the one-step map the policy uses, which
    the logit-normal draws almost never reach: P(t - r > 0.8) ~ 0.02 %; SMFP.md §6).
    """
    if one_step_fraction > 0:
        rng, k_one = jax.random.split(rng)
        r, t = sample_times(rng, batch_size, mean=mean, std=std, equal_fraction=equal_fraction)
        one = jax.random.uniform(k_one, (batch_size,)) < one_step_fraction
        return jnp.where(one, 0.0, r), jnp.where(one, 1.0, t)
    k_a, k_b, k_eq = jax.random.split(rng, 3)
    a = jax.nn.sigmoid(mean + std * jax.random.normal(k_a, (batch_size,)))
    b = jax.nn.sigmoid(mean + std * jax.random.normal(k_b, (batch_size,)))
    t = jnp.maximum(a, b)
    r = jnp.minimum(a, b)
    equal = jax.random.uniform(k_eq, (batch_size,)) < equal_fraction
    return jnp.where(equal, t, r), t


def interpolate(x: jax.Array, e: jax.Array, t: jax.Array) -> jax.Array:
    """z_t = (1 - t) x + t e with t of shape [B] broadcast over the action dims."""
    t = t[:, None]
    return (1.0 - t) * x + t * e


def total_derivative(u_fn: Field, z: jax.Array, r: jax.Array, t: jax.Array,
                     dz_dt: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(u(z, r, t), d/dt u) along the path with dz/dt = `dz_dt`, dr/dt = 0, dt/dt = 1.

    Exactly ONE `jax.jvp` with tangent (dz_dt, 0, 1) (SMFP.md §2); the primal output is
    differentiable w.r.t. whatever `u_fn` closes over (reverse-over-forward).
    """
    return jax.jvp(u_fn, (z, r, t), (dz_dt, jnp.zeros_like(r), jnp.ones_like(t)))


def adaptive_weight(sq_error: jax.Array, power: float, eps: float) -> jax.Array:
    """w = 1 / (||delta||^2 + c)^p, gradient stopped (MeanFlow's adaptive loss weighting)."""
    if power == 0:
        return jnp.ones_like(sq_error)
    return jax.lax.stop_gradient(1.0 / jnp.power(sq_error + eps, power))


def meanflow_residual(u_fn: Field, x: jax.Array, e: jax.Array, r: jax.Array, t: jax.Array,
                      *, variant: str = "meanflow") -> jax.Array:
    """delta = prediction - stop_grad(target), [B, d], for data x, noise e and times (r, t).

    "meanflow": delta = u(z, r, t) - sg(v - (t - r) * du/dt), tangent (v, 0, 1), v = e - x.
    "improved": delta = u(z, r, t) + (t - r) * sg(du/dt) - (e - x), tangent
                (sg(u(z, t, t)), 0, 1)  — one extra forward pass for the tangent.
    """
    z = interpolate(x, e, t)
    v = e - x
    gap = (t - r)[:, None]
    if variant == "meanflow":
        u, du_dt = total_derivative(u_fn, z, r, t, v)
        target = jax.lax.stop_gradient(v - gap * du_dt)
        return u - target
    if variant == "improved":
        v_hat = jax.lax.stop_gradient(u_fn(z, t, t))
        u, du_dt = total_derivative(u_fn, z, r, t, v_hat)
        prediction = u + gap * jax.lax.stop_gradient(du_dt)
        return prediction - jax.lax.stop_gradient(v)
    raise ValueError(f"meanflow variant {variant!r} is not one of {VARIANTS}")


def meanflow_loss(
    u_fn: Field,
    x: jax.Array,
    e: jax.Array,
    r: jax.Array,
    t: jax.Array,
    *,
    variant: str = "meanflow",
    weight_power: float = 1.0,
    weight_eps: float = 1e-3,
    sample_weight: Optional[jax.Array] = None,
) -> tuple[jax.Array, dict]:
    """Mean over the batch of stop_grad(w) * ||delta||^2 (SMFP.md §2); returns (loss, aux).

    `sample_weight` ([B], e.g. the particle weights of the "weighted" actor update, §6)
    multiplies each row's term. aux["meanflow_sq_error"] is the unweighted mean ||delta||^2.
    """
    delta = meanflow_residual(u_fn, x, e, r, t, variant=variant)
    sq = jnp.sum(jnp.square(delta), axis=-1)
    per_sample = adaptive_weight(sq, weight_power, weight_eps) * sq
    if sample_weight is not None:
        per_sample = per_sample * sample_weight
    return jnp.mean(per_sample), {"meanflow_sq_error": jnp.mean(sq)}


def one_step_sample(u_fn: Field, e: jax.Array) -> jax.Array:
    """x = e - u(e, r=0, t=1): noise to data in one network call.

    r and t are passed as shape [1] (broadcast over the batch), so a field that embeds them
    can do so once per call rather than once per sample."""
    return e - u_fn(e, jnp.zeros((1,), e.dtype), jnp.ones((1,), e.dtype))


def multi_step_sample(u_fn: Field, e: jax.Array, num_steps: int) -> jax.Array:
    """z_r = z_t - (t - r) u(z_t, r, t) on a uniform grid from t = 1 to 0 (num_steps calls)."""
    b = e.shape[0]
    grid = jnp.linspace(1.0, 0.0, num_steps + 1)
    z = e
    for i in range(num_steps):
        t = jnp.full((b,), grid[i], e.dtype)
        r = jnp.full((b,), grid[i + 1], e.dtype)
        z = z - (t - r)[:, None] * u_fn(z, r, t)
    return z
