"""Gaussian SAC: tanh-Gaussian actor, twin LayerNorm Q with min soft backup, automatic
temperature to a target entropy, Polyak targets, grad-norm clipping and policy delay.

The policy (policies/gaussian.py) samples and scores actions; this module owns only the
actor objective. The critic, temperature and update steps are the shared ones in
agents/soft_actor_critic.py.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from mjx_smfp.agents.base import Transition
from mjx_smfp.agents.soft_actor_critic import SoftActorCriticAgent, SoftActorCriticConfig
from mjx_smfp.policies.gaussian import TanhGaussianPolicy


class SAC(SoftActorCriticAgent):
    """Soft actor-critic (Haarnoja et al. 2018) with the twin-Q / auto-temperature recipe."""

    @dataclasses.dataclass(frozen=True)
    class Config(SoftActorCriticConfig):
        pass

    def make_policy(self) -> TanhGaussianPolicy:
        return TanhGaussianPolicy(self.action_size, self.config.actor_network())

    def actor_loss(self, actor_params, state, batch: Transition, temperature: jax.Array, rng: jax.Array):
        """E[alpha log pi(a|s) - Q(s, a)], a ~ pi reparameterised; Q = `actor_q` (min or mean of the
        heads). Metrics: the entropy estimate and each term's size (`q_policy`, `entropy_term`)."""
        action, logp = self.policy.sample(actor_params, batch.obs, rng)
        q = self.actor_q(state.critic_params, batch.obs, action)
        return jnp.mean(temperature * logp - q), {"entropy": -jnp.mean(logp), "q_policy": jnp.mean(q),
                                                  "entropy_term": temperature * jnp.mean(logp)}
