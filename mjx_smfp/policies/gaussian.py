"""Tanh-squashed diagonal Gaussian policy: sample with log-prob, deterministic action.

The policy knows only how to sample and score actions; the SAC objective lives in
agents/sac.py. Actions are tanh(u) with u ~ N(mu(s), sigma(s)^2), so they lie in (-1, 1).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import jax
import jax.numpy as jnp

from mjx_smfp.networks import ACTIVATIONS, MATMUL_DTYPES, MLP
from mjx_smfp.policies.densities import squashed_gaussian_log_prob

LOG_STD_MIN = -5.0  # default bounds of log sigma (SoftActorCriticConfig.log_std_min/max)
LOG_STD_MAX = 2.0


@dataclass(frozen=True)
class TanhGaussianPolicy:
    """mu, log sigma = MLP(s); a = tanh(mu + sigma * eps). Static and hashable (jit-closable).
    The agent builds it from its config: widths, hidden `activation`, `matmul_dtype` (the MLP's
    compute dtype; mu, log sigma and everything after are float32) and the log sigma bounds."""

    action_size: int
    hidden: Sequence[int] = (256, 256, 256)
    activation: str = "relu"  # a key of networks.ACTIVATIONS
    matmul_dtype: str = "float32"  # a key of networks.MATMUL_DTYPES
    log_std_min: float = LOG_STD_MIN
    log_std_max: float = LOG_STD_MAX

    @property
    def network(self) -> MLP:
        return MLP(hidden=tuple(self.hidden), out=2 * self.action_size, activation=ACTIVATIONS[self.activation],
                   kernel_init_scale_out=0.01, dtype=MATMUL_DTYPES[self.matmul_dtype])

    network_calls = 1  # network evaluations per action

    def init(self, rng: jax.Array, obs_size: int):
        return self.network.init(rng, jnp.zeros((1, obs_size)))

    def distribution(self, params, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(mean, log_std) of the pre-squash Gaussian; log_std softly bounded to [log_std_min, log_std_max]."""
        out = self.network.apply(params, obs)
        mean, raw = jnp.split(out, 2, axis=-1)
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (jnp.tanh(raw) + 1.0)
        return mean, log_std

    def sample(self, params, obs: jax.Array, rng: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Reparameterised action in (-1, 1) and its log-density log pi(a|s), shape [B]."""
        mean, log_std = self.distribution(params, obs)
        eps = jax.random.normal(rng, mean.shape, mean.dtype)
        u = mean + jnp.exp(log_std) * eps
        return jnp.tanh(u), squashed_gaussian_log_prob(eps, log_std, u)

    def deterministic(self, params, obs: jax.Array) -> jax.Array:
        """tanh(mean): the mode-ish action used for evaluation."""
        mean, _ = self.distribution(params, obs)
        return jnp.tanh(mean)
