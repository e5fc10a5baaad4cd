"""Network building blocks shared by every agent: the one actor-network config every policy takes,
MLPs, the twin LayerNorm critic, and the time embeddings and input layer of the generative policies.

Precision: every block takes a `dtype`, the dtype its matmuls compute in (`MATMUL_DTYPES`:
None = the inputs' float32, or bfloat16 on accelerators, as FastSAC/FastTD3 train). Parameters
stay float32 (flax's `param_dtype`), so optimiser states, targets and losses are float32, and
the network outputs are cast back to float32 before any log-density or loss sees them."""
from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any, Callable, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from mjx_smfp.validation import check

ACTIVATIONS = {"silu": nn.silu, "relu": nn.relu}
INPUT_LAYERS = ("split", "concat")
# Config name -> compute dtype of the matmuls. "float32" is None (flax infers float32 from the
# inputs): exactly the computation of a network built without a dtype.
MATMUL_DTYPES: dict[str, Any] = {"float32": None, "bfloat16": jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class ActorNetworkConfig:
    """What every policy's networks take from its agent's config (`SoftActorCriticConfig.actor_network`),
    under one spelling: hidden widths, hidden activation, matmul compute dtype, and the bounds of the
    policy's log std (the Gaussian actor's log sigma(s), SMFP's boundary log sigma, SAC Flow's one
    sigma(s); DIME's steps have no learned std, so its policy has nothing to bound). Static and
    hashable, like the policies that hold it."""

    hidden: tuple[int, ...] = (256, 256, 256)  # MLP widths
    activation: str = "relu"  # a key of ACTIVATIONS
    matmul_dtype: str = "float32"  # a key of MATMUL_DTYPES
    log_std_min: float = -5.0  # lower bound of the policy's log std
    log_std_max: float = 2.0  # upper bound of the policy's log std

    def __post_init__(self):
        object.__setattr__(self, "hidden", tuple(self.hidden))
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError(f"hidden={self.hidden} must be a non-empty list of widths >= 1")
        check(self, "activation", choices=ACTIVATIONS)
        check(self, "matmul_dtype", choices=MATMUL_DTYPES)
        check(self, "log_std_min", "log_std_max", finite=True)
        if not self.log_std_min < self.log_std_max:
            raise ValueError(f"log_std_min={self.log_std_min} must be < log_std_max={self.log_std_max}")

    @property
    def dtype(self) -> Optional[Any]:
        """The matmul compute dtype (None: float32, the inputs')."""
        return MATMUL_DTYPES[self.matmul_dtype]

    @property
    def act(self) -> Callable:
        """The hidden activation function."""
        return ACTIVATIONS[self.activation]

    def bound_log_std(self, raw: jax.Array) -> jax.Array:
        """raw in R -> log std in [log_std_min, log_std_max], softly (tanh), as SAC implementations do."""
        return self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (jnp.tanh(raw) + 1.0)


def to_float32(x: jax.Array, dtype: Optional[Any]) -> jax.Array:
    """A network output back in float32 when it was computed in a lower precision `dtype`."""
    return x if dtype is None else x.astype(jnp.float32)


class MLP(nn.Module):
    """Plain MLP; optional LayerNorm after each hidden Dense (stabilises off-policy critics).
    With a `dtype` (e.g. bfloat16) the Dense and LayerNorm layers compute in it (LayerNorm keeps
    its statistics in float32), the parameters stay float32 and the output is float32."""

    hidden: Sequence[int]
    out: int
    layer_norm: bool = False
    activation: Callable = nn.relu
    kernel_init_scale_out: float = 1.0
    dtype: Optional[Any] = None  # matmul compute dtype (None: the inputs' dtype)

    @nn.compact
    def __call__(self, x):
        for width in self.hidden:
            x = nn.Dense(width, dtype=self.dtype)(x)
            if self.layer_norm:
                x = nn.LayerNorm(dtype=self.dtype)(x)
            x = self.activation(x)
        init = nn.initializers.variance_scaling(self.kernel_init_scale_out, "fan_avg", "uniform")
        return to_float32(nn.Dense(self.out, kernel_init=init, dtype=self.dtype)(x), self.dtype)


class TwinQ(nn.Module):
    """n independent Q(s, a) heads (default 2) evaluated in one vmapped call -> shape [n, batch],
    or with `num_atoms` > 1 each head's logits over a value support -> [n, batch, num_atoms]
    (the distributional critics of mjx_smfp/critic.py)."""

    hidden: Sequence[int] = (256, 256, 256)
    num_heads: int = 2
    layer_norm: bool = True
    activation: str = "relu"  # a key of ACTIVATIONS
    dtype: Optional[Any] = None  # matmul compute dtype (MLP); Q-values are float32
    num_atoms: int = 1  # outputs per head: 1 = a scalar Q-value, else logits over the atoms

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
        )(hidden=self.hidden, out=self.num_atoms, layer_norm=self.layer_norm, activation=ACTIVATIONS[self.activation],
          dtype=self.dtype)
        out = heads(x)
        return out[..., 0] if self.num_atoms == 1 else out


def sinusoidal_embedding(t: jax.Array, num_frequencies: int, max_frequency: float = 100.0) -> jax.Array:
    """[sin(f_k t), cos(f_k t)] for geometrically spaced f_k in [1, max_frequency]; t: [B] -> [B, 2K]."""
    freqs = jnp.exp(jnp.linspace(0.0, math.log(max_frequency), num_frequencies))
    angles = t[:, None] * freqs[None, :]
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


class TimeEmbedding(nn.Module):
    """Sinusoidal features of a scalar time followed by a 2-layer SiLU MLP (matmuls in `dtype`)."""

    dim: int = 64
    num_frequencies: int = 16
    dtype: Optional[Any] = None  # matmul compute dtype (None: float32)

    @nn.compact
    def __call__(self, t):
        h = sinusoidal_embedding(t, self.num_frequencies)
        h = nn.silu(nn.Dense(self.dim, dtype=self.dtype)(h))
        return nn.Dense(self.dim, dtype=self.dtype)(h)


class InputLayer(nn.Module):
    """First layer of u_theta on the input groups [s, z, emb(t), emb(t - r)]. Groups may have
    different (broadcastable) batch shapes: the time embeddings of the one-step map (r = 0,
    t = 1) are computed once ([1, E]) and their matmul is added as a bias, instead of once per
    sample; the per-sample groups share one matmul on their concatenation.

    "concat": one kernel over the concatenated groups, LeCun-initialised on the total
    fan-in, i.e. exactly Dense(concat(groups)). "split": one kernel per group, each
    LeCun-initialised on its own fan-in (with "concat" the 2 * embed_dim embedding features
    dominate the fan-in and the state enters ~6x weaker than in the Gaussian actor)."""

    features: int
    mode: str = "concat"
    dtype: Optional[Any] = None  # matmul compute dtype (None: the inputs'); kernels stay float32

    @nn.compact
    def __call__(self, *groups):
        sizes = [g.shape[-1] for g in groups]
        init = nn.initializers.lecun_normal()
        if self.mode == "concat":
            kernel = self.param("kernel", init, (sum(sizes), self.features))
            bounds = [0] + list(itertools.accumulate(sizes))
            kernels = [kernel[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:])]
        else:  # "split" (MeanFlowConfig validates the mode)
            kernels = [self.param(f"kernel_{i}", init, (n, self.features)) for i, n in enumerate(sizes)]
        out = self.param("bias", nn.initializers.zeros, (self.features,))
        batch = jnp.broadcast_shapes(*(g.shape[:-1] for g in groups))
        if self.dtype is not None:
            cast = lambda x: x.astype(self.dtype)  # noqa: E731
            groups, kernels, out = list(map(cast, groups)), list(map(cast, kernels)), cast(out)
        # The per-sample groups go through ONE matmul on their concatenation: as a sum of
        # per-group matmuls (which XLA rewrites a dot of a concatenation into, hence the
        # barrier) each narrow group costs a full [B, features] pass (benchmarks/results/speed/profile_notes.md).
        per_sample = [(g, k) for g, k in zip(groups, kernels) if g.shape[:-1] == batch]
        for g, k in zip(groups, kernels):
            if g.shape[:-1] != batch:  # broadcast groups: computed once, added as a bias
                out = out + g @ k
        x = jax.lax.optimization_barrier(jnp.concatenate([g for g, _ in per_sample], axis=-1))
        return x @ jnp.concatenate([k for _, k in per_sample], axis=0) + out
