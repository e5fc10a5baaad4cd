"""Network building blocks shared by every agent: MLPs and the twin LayerNorm critic."""
from __future__ import annotations

from typing import Callable, Sequence

import flax.linen as nn
import jax.numpy as jnp


class MLP(nn.Module):
    """Plain MLP; optional LayerNorm after each hidden Dense (stabilises off-policy critics)."""

    hidden: Sequence[int]
    out: int
    layer_norm: bool = False
    activation: Callable = nn.relu
    kernel_init_scale_out: float = 1.0

    @nn.compact
    def __call__(self, x):
        for width in self.hidden:
            x = nn.Dense(width)(x)
            if self.layer_norm:
                x = nn.LayerNorm()(x)
            x = self.activation(x)
        init = nn.initializers.variance_scaling(self.kernel_init_scale_out, "fan_avg", "uniform")
        return nn.Dense(self.out, kernel_init=init)(x)


class TwinQ(nn.Module):
    """n independent Q(s, a) heads (default 2) evaluated in one vmapped call -> shape [n, batch]."""

    hidden: Sequence[int] = (256, 256, 256)
    num_heads: int = 2
    layer_norm: bool = True

    @nn.compact
    def __call__(self, obs, action):
        x = jnp.concatenate([obs, action], axis=-1)
        heads = nn.vmap(
            MLP,
            variable_axes={"params": 0},
            split_rngs={"params": True},
            in_axes=None,
            out_axes=0,
            axis_size=self.num_heads,
        )(hidden=self.hidden, out=1, layer_norm=self.layer_norm)
        return heads(x)[..., 0]

