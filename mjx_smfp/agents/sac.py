"""Gaussian SAC: tanh-Gaussian actor, twin LayerNorm Q with min soft backup, automatic
temperature to a target entropy, Polyak targets, grad-norm clipping and policy delay.

The policy (policies/gaussian.py) samples and scores actions; this module owns the
objective. The critic loss and Polyak update are the shared ones in mjx_smfp/critic.py.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import jax
import jax.numpy as jnp
import optax
from flax import struct

from mjx_smfp import critic as critic_lib
from mjx_smfp.agents.base import Metrics, Transition
from mjx_smfp.agents.soft_actor_critic import SoftActorCriticAgent, SoftActorCriticConfig
from mjx_smfp.policies.gaussian import TanhGaussianPolicy


@struct.dataclass
class SACState:
    actor_params: dict
    critic_params: dict
    target_critic_params: dict
    log_temperature: jax.Array
    actor_opt_state: optax.OptState
    critic_opt_state: optax.OptState
    temperature_opt_state: optax.OptState
    step: jax.Array  # number of update() calls so far (drives the policy delay)


class SAC(SoftActorCriticAgent):
    """Soft actor-critic (Haarnoja et al. 2018) with the twin-Q / auto-temperature recipe."""

    @dataclasses.dataclass(frozen=True)
    class Config(SoftActorCriticConfig):
        pass

    def __init__(self, config: "SAC.Config" = None):
        super().__init__(config if config is not None else SAC.Config())
        self.policy: Optional[TanhGaussianPolicy] = None

    # -- Agent interface ---------------------------------------------------------------
    def init(self, rng: jax.Array, obs_size: int, action_size: int) -> SACState:
        self.action_size = action_size
        self.policy = TanhGaussianPolicy(action_size=action_size, hidden=tuple(self.config.actor_hidden))
        k_actor, k_critic = jax.random.split(rng)
        actor_params = self.policy.init(k_actor, obs_size)
        critic_params = self.critic_net.init(k_critic, jnp.zeros((1, obs_size)), jnp.zeros((1, action_size)))
        log_temperature = jnp.asarray(jnp.log(self.config.init_temperature), jnp.float32)
        c = self.config
        return SACState(
            actor_params=actor_params,
            critic_params=critic_params,
            target_critic_params=critic_params,
            log_temperature=log_temperature,
            actor_opt_state=self._optimizer(c.actor_lr).init(actor_params),
            critic_opt_state=self._optimizer(c.critic_lr).init(critic_params),
            temperature_opt_state=optax.adam(c.temperature_lr).init(log_temperature),
            step=jnp.zeros((), jnp.int32),
        )

    def act(self, state: SACState, obs: jax.Array, rng: jax.Array) -> jax.Array:
        action, _ = self.policy.sample(state.actor_params, obs, rng)
        return action

    def eval_act(self, state: SACState, obs: jax.Array) -> jax.Array:
        return self.policy.deterministic(state.actor_params, obs)

    def update(self, state: SACState, batch: Transition, rng: jax.Array) -> tuple[SACState, Metrics]:
        c = self.config
        k_next, k_actor = jax.random.split(rng)
        temperature = jnp.exp(state.log_temperature)

        # Critic: soft min-backup (shared with SMFP).
        next_action, next_logp = self.policy.sample(state.actor_params, batch.next_obs, k_next)
        (_, critic_metrics), critic_grads = jax.value_and_grad(critic_lib.critic_loss, has_aux=True)(
            state.critic_params, state.target_critic_params, batch, next_action, next_logp,
            temperature, c.gamma, self._q, c.entropy_in_backup,
        )
        critic_grads = self.reduce(critic_grads)
        critic_updates, critic_opt_state = self._optimizer(c.critic_lr).update(
            critic_grads, state.critic_opt_state, state.critic_params)
        critic_params = optax.apply_updates(state.critic_params, critic_updates)
        target_critic_params = critic_lib.polyak(state.target_critic_params, critic_params, c.tau)

        # Actor: minimise E[temperature * log pi(a|s) - min_i Q_i(s, a)], reparameterised.
        def actor_loss(actor_params):
            action, logp = self.policy.sample(actor_params, batch.obs, k_actor)
            q = self._q(critic_params, batch.obs, action).min(axis=0)
            return jnp.mean(temperature * logp - q), logp

        def actor_and_temperature_step(_):
            (a_loss, logp), actor_grads = jax.value_and_grad(actor_loss, has_aux=True)(state.actor_params)
            actor_grads = self.reduce(actor_grads)
            updates, actor_opt_state = self._optimizer(c.actor_lr).update(
                actor_grads, state.actor_opt_state, state.actor_params)
            actor_params = optax.apply_updates(state.actor_params, updates)
            entropy = -jnp.mean(logp)

            def temperature_loss(log_temperature):
                return jnp.exp(log_temperature) * jax.lax.stop_gradient(entropy - self._target_entropy())

            t_grad = self.reduce(jax.grad(temperature_loss)(state.log_temperature))
            t_updates, temperature_opt_state = optax.adam(c.temperature_lr).update(
                t_grad, state.temperature_opt_state)
            log_temperature = state.log_temperature + (t_updates if c.learn_temperature else 0.0)
            return (actor_params, actor_opt_state, log_temperature, temperature_opt_state,
                    a_loss, entropy, optax.global_norm(actor_grads))

        def skip(_):
            return (state.actor_params, state.actor_opt_state, state.log_temperature,
                    state.temperature_opt_state, jnp.zeros(()), jnp.zeros(()), jnp.zeros(()))

        if c.policy_delay <= 1:
            outs = actor_and_temperature_step(None)
        else:
            outs = jax.lax.cond(state.step % c.policy_delay == 0, actor_and_temperature_step, skip, None)
        actor_params, actor_opt_state, log_temperature, temperature_opt_state, a_loss, entropy, a_gnorm = outs

        new_state = SACState(
            actor_params=actor_params,
            critic_params=critic_params,
            target_critic_params=target_critic_params,
            log_temperature=log_temperature,
            actor_opt_state=actor_opt_state,
            critic_opt_state=critic_opt_state,
            temperature_opt_state=temperature_opt_state,
            step=state.step + 1,
        )
        metrics = dict(critic_metrics)
        metrics.update(
            actor_loss=a_loss,
            entropy=entropy,
            temperature=jnp.exp(log_temperature),
            critic_grad_norm=optax.global_norm(critic_grads),
            actor_grad_norm=a_gnorm,
        )
        return new_state, metrics
