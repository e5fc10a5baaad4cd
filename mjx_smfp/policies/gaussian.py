"""Tanh-squashed diagonal Gaussian policy: sample with log-prob, deterministic action.

The policy knows only how to sample and score actions; the SAC objective lives in
agents/sac.py. Actions are tanh(u) with u ~ N(mu(s), sigma(s)^2), so they lie in (-1, 1).
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp

from mjx_smfp.networks import MLP, ActorNetworkConfig
from mjx_smfp.policies.densities import squashed_gaussian_log_prob


@dataclass(frozen=True)
class TanhGaussianPolicy:
    """mu, log sigma = MLP(s); a = tanh(mu + sigma * eps). Static and hashable (jit-closable).
    The agent builds it from its config's `actor_network()`: widths, hidden activation, matmul
    dtype (the MLP's compute dtype; mu, log sigma and everything after are float32) and the
    log sigma bounds."""

    action_size: int
    network_config: ActorNetworkConfig = ActorNetworkConfig()

    @property
    def network(self) -> MLP:
        c = self.network_config
        return MLP(hidden=c.hidden, out=2 * self.action_size, activation=c.act, kernel_init_scale_out=0.01,
                   dtype=c.dtype)

    network_calls = 1  # network evaluations per action

    def init(self, rng: jax.Array, obs_size: int):
        return self.network.init(rng, jnp.zeros((1, obs_size)))

    def distribution(self, params, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(mean, log_std) of the pre-squash Gaussian; log_std softly bounded to [log_std_min, log_std_max]."""
        out = self.network.apply(params, obs)
        mean, raw = jnp.split(out, 2, axis=-1)
        return mean, self.network_config.bound_log_std(raw)

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
