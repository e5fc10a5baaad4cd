"""The critic shared by every soft actor-critic agent: twin-head soft backup with one of two kinds
of value head (a scalar regressed by MSE, or a distribution over a fixed support trained by
cross-entropy), the combination of the heads, and the Polyak target update.

The network is `networks.TwinQ` (n heads, LayerNorm MLPs); `apply_fn(params, obs, action)`
returns its raw output: Q-values [num_heads, B] for "mse", logits [num_heads, B, num_atoms]
for the distributional kinds. `ValueHead.expectation` reads either as Q-values [num_heads, B]:
that expectation is all an actor loss ever sees (SMFP's mirror-descent terms are untouched).

The target is SAC's soft backup over the combined heads (`combine`: "min", clipped double Q,
or "mean"),

    y = r + gamma * (1 - terminated) * (combine_i Qbar_i(s', a') - temperature * log pi(a'|s'))

It bootstraps through time-limit truncation (`batch.truncated` is ignored on purpose:
`batch.next_obs` is the true s' before any auto-reset) and cuts only at true termination.
With n-step batches (`replay.sample_n_step`) `batch.reward` is the discounted sum of the m
rewards of the window and `batch.discount` = gamma^m replaces gamma.

Value heads (`ValueHead.kind`), one support z_1..z_N = linspace(value_min, value_max, N):
- "mse": y as above; loss 0.5 (Q_i - y)^2 per head (today's critic, bit for bit).
- "c51" (Bellemare et al. 2017): the next-state distribution's atoms are moved to
  r + gamma^m (1 - terminated) (z_j - temperature log pi) and projected back onto the support
  (each shifted atom's mass split linearly between its two neighbours, atoms outside the
  support clipped to its ends); loss: cross-entropy of each head's logits to that projection.
- "hl_gauss" (Imani & White 2018; Farebrother et al. 2024): the scalar y above, clipped to the
  support, becomes the histogram of N(y, sigma^2) over N bins centred on the atoms (width
  w = (value_max - value_min)/(N - 1), sigma = hl_gauss_sigma * w), renormalised to the bins'
  span; loss: cross-entropy of each head's logits to it.
Heads combine on their expectations for both kinds ("min of means"): "min" bootstraps each row
from the distribution of the head whose expectation is the smallest (so the scalar target of
"hl_gauss" and the mean of the "c51" target are exactly the min of the heads' means); "mean"
bootstraps from the heads' average distribution (its mean is the mean of the heads' means).
The agent supplies `next_action` ~ pi(.|s') and its `next_logp` (SAC: exact tanh-Gaussian
log-prob; SMFP: its entropy surrogate), so this module knows nothing about the policy.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import jax
import jax.numpy as jnp

from mjx_smfp.types import Metrics, Transition

QApply = Callable[[object, jax.Array, jax.Array], jax.Array]  # (params, obs, action) -> raw critic output
CRITIC_TYPES = ("mse", "c51", "hl_gauss")
HEAD_COMBINES = ("min", "mean")


@dataclasses.dataclass(frozen=True)
class ValueHead:
    """How a critic head's output is read as a value and trained (see the module docstring).
    "mse" ignores the support fields."""

    kind: str = "mse"  # one of CRITIC_TYPES
    num_atoms: int = 1  # N atoms of the support (distributional kinds)
    value_min: float = 0.0  # z_1
    value_max: float = 0.0  # z_N
    hl_gauss_sigma: float = 0.75  # HL-Gauss sigma in units of the bin width

    @property
    def distributional(self) -> bool:
        return self.kind != "mse"

    @property
    def num_outputs(self) -> int:
        """Outputs per head of the network: 1 (a Q-value) or N logits."""
        return self.num_atoms if self.distributional else 1

    @property
    def bin_width(self) -> float:
        return (self.value_max - self.value_min) / (self.num_atoms - 1)

    def support(self) -> jax.Array:
        """The atoms z_1..z_N (float32)."""
        return jnp.linspace(self.value_min, self.value_max, self.num_atoms, dtype=jnp.float32)

    def expectation(self, out: jax.Array) -> jax.Array:
        """Q-values [..., B] from the raw output: itself ("mse") or sum_j softmax(logits)_j z_j."""
        if not self.distributional:
            return out
        return jax.nn.softmax(out, axis=-1) @ self.support()


def combine_heads(q: jax.Array, how: str) -> jax.Array:
    """[num_heads, B] -> [B]: the min over the heads (clipped double Q) or their mean."""
    if how == "min":
        return q.min(axis=0)
    if how == "mean":
        return q.mean(axis=0)
    raise ValueError(f"head combination {how!r} is not valid; choose one of {', '.join(HEAD_COMBINES)}")


def categorical_projection(atoms: jax.Array, probs: jax.Array, head: ValueHead) -> jax.Array:
    """Project the distribution with masses `probs` [B, M] at positions `atoms` [B, M] onto the
    support [N] (C51): atoms are clipped to [value_min, value_max], and each one's mass goes to
    its two neighbouring support points in proportion to closeness (all of it to a point it
    sits on). Two scatter-adds of B x M masses at the floor and floor + 1 indices (FlashSAC
    `update.py`, FastTD3 `fast_td3.py` `projection`): O(B M), where the hat-kernel form
    (`categorical_projection_dense`, the same result) builds a [B, M, N] tensor. Returns [B, N]."""
    n = head.num_atoms
    position = (jnp.clip(atoms, head.value_min, head.value_max) - head.value_min) / head.bin_width  # in [0, N-1]
    lower = jnp.clip(jnp.floor(position), 0, n - 1).astype(jnp.int32)
    upper_share = position - lower  # 0 on a support point; the top point has lower = N-1, share 0
    upper = jnp.minimum(lower + 1, n - 1)
    rows = jnp.broadcast_to(jnp.arange(atoms.shape[0])[:, None], atoms.shape)
    out = jnp.zeros((atoms.shape[0], n), probs.dtype)
    out = out.at[rows, lower].add(probs * (1.0 - upper_share), mode="promise_in_bounds")
    return out.at[rows, upper].add(probs * upper_share, mode="promise_in_bounds")


def categorical_projection_dense(atoms: jax.Array, probs: jax.Array, head: ValueHead) -> jax.Array:
    """`categorical_projection` written as the hat kernel max(0, 1 - |atom - z_j| / w): a dense
    [B, M, N] product (the form before 2026-12-07; kept as the reference the scatter form is
    tested and timed against)."""
    z = head.support()
    clipped = jnp.clip(atoms, head.value_min, head.value_max)
    weights = jnp.clip(1.0 - jnp.abs(clipped[..., :, None] - z) / head.bin_width, 0.0, 1.0)  # [B, M, N]
    return jnp.sum(probs[..., :, None] * weights, axis=-2)


def hl_gauss_probs(y: jax.Array, head: ValueHead) -> jax.Array:
    """HL-Gauss target histogram [B, N] of scalars `y` [B]: the mass of N(clip(y), sigma^2) in
    each bin [z_j - w/2, z_j + w/2], divided by the mass of all bins together."""
    w = head.bin_width
    edges = head.value_min - 0.5 * w + w * jnp.arange(head.num_atoms + 1, dtype=jnp.float32)
    y = jnp.clip(y, head.value_min, head.value_max)
    sigma = head.hl_gauss_sigma * w
    cdf = 0.5 * (1.0 + jax.scipy.special.erf((edges - y[..., None]) / (math.sqrt(2.0) * sigma)))
    return (cdf[..., 1:] - cdf[..., :-1]) / (cdf[..., -1:] - cdf[..., :1])


def soft_target(
    target_params,
    batch: Transition,
    next_action: jax.Array,
    next_logp: jax.Array,
    temperature: jax.Array,
    gamma: float,
    apply_fn: QApply,
    entropy_in_backup: bool = True,
    head: ValueHead = ValueHead(),
    combine: str = "min",
) -> jax.Array:
    """The soft Bellman target (gradient stopped): the scalar y [B] for "mse" and "hl_gauss",
    the projected target distribution [B, N] for "c51"."""
    out = apply_fn(target_params, batch.next_obs, next_action)
    discount = gamma if batch.discount is None else batch.discount  # n-step batches: gamma^m per row
    if head.kind == "c51":
        probs = jax.nn.softmax(out, axis=-1)  # [heads, B, N]
        if combine == "min":  # the distribution of the head with the smallest mean, per row
            lowest = jnp.argmin(head.expectation(out), axis=0)
            probs = jnp.take_along_axis(probs, lowest[None, :, None], axis=0)[0]
        elif combine == "mean":
            probs = probs.mean(axis=0)
        else:
            raise ValueError(f"head combination {combine!r} is not valid; choose one of {', '.join(HEAD_COMBINES)}")
        values = jnp.broadcast_to(head.support(), probs.shape)
        if entropy_in_backup:
            values = values - (temperature * next_logp)[:, None]
        not_terminated = 1.0 - batch.terminated.astype(values.dtype)
        atoms = batch.reward[:, None] + (discount * not_terminated)[..., None] * values
        return jax.lax.stop_gradient(categorical_projection(atoms, probs, head))
    next_q = combine_heads(head.expectation(out), combine)
    if entropy_in_backup:
        next_q = next_q - temperature * next_logp
    not_terminated = 1.0 - batch.terminated.astype(next_q.dtype)
    y = batch.reward + discount * not_terminated * next_q
    return jax.lax.stop_gradient(y)


def critic_loss(critic_params, batch: Transition, target: jax.Array, apply_fn: QApply,
                head: ValueHead = ValueHead()) -> tuple[jax.Array, Metrics]:
    """Sum over the Q heads of each head's batch-mean loss (every head is trained with full
    weight, as in SAC): 0.5 * (Q_i(s, a) - y)^2 for "mse", the cross-entropy of the head's
    logits to the target distribution ("c51": `target` itself; "hl_gauss": `hl_gauss_probs(y)`)
    otherwise. Returns (loss, metrics); the Q metrics are of the expectations.

    `target` comes from `soft_target`. Differentiate w.r.t. `critic_params` (argument 0) with
    `jax.value_and_grad(..., has_aux=True)`.
    """
    out = apply_fn(critic_params, batch.obs, batch.action)
    q = head.expectation(out)  # [heads, B]
    extra = {}
    if head.distributional:
        target_probs = target if head.kind == "c51" else hl_gauss_probs(target, head)
        y = target_probs @ head.support() if head.kind == "c51" else target
        cross_entropy = -jnp.sum(target_probs[None] * jax.nn.log_softmax(out, axis=-1), axis=-1)  # [heads, B]
        loss = jnp.sum(jnp.mean(cross_entropy, axis=1))
        td = q - y[None]
        # Where the support clips: the target's mass on its two end atoms (values beyond it land there).
        extra["target_end_mass"] = jnp.mean(target_probs[:, 0] + target_probs[:, -1])
    else:
        y = target
        td = q - y[None]
        loss = jnp.sum(0.5 * jnp.mean(jnp.square(td), axis=1))
    metrics = {
        "critic_loss": loss,
        "q_mean": q.mean(),
        "q_min": q.min(),
        "q_max": q.max(),
        "target_q_mean": y.mean(),
        "td_abs_mean": jnp.abs(td).mean(),
        **extra,
    }
    return loss, metrics


def polyak(target, online, tau: float):
    """target <- (1 - tau) * target + tau * online, leaf by leaf."""
    return jax.tree_util.tree_map(lambda t, o: t + tau * (o - t), target, online)
