"""SMFP: Stochastic MeanFlow Policy trained by entropic mirror descent (SMFP.md §5-6).

One gradient step:
1. Critic (shared with SAC, mjx_smfp/critic.py): twin-Q soft backup
       y = r + gamma (1 - terminated) (min_i Qbar_i(s', a') - alpha log pi_hat(a'|s')),
   a' ~ pi_theta(.|s'), log pi_hat the chosen entropy surrogate (§4); `entropy_in_backup`
   switches the -alpha log pi_hat term off.
2. Actor (every `policy_delay` critic steps), `actor_update`:
   * "reparam" (default, §6): reparameterised through the one-step map,
         L(theta) = E_s[ -min_i Q_i(s, a_theta) + alpha log pi_hat(a_theta|s)
                         + beta KL_hat(s) ] + lambda_mf L_MF(theta)
     with KL_hat the shared-noise bound to the anchor pi_k (mirror_descent.py) and L_MF
     the MeanFlow identity loss (meanflow.py) on `meanflow_target` samples: pi_k's
     pre-squash actions ("anchor", SMFP.md), pi_k's flow output without the boundary
     noise ("anchor_flow"), or replay actions atanh(clip(a)) ("replay").
   * "weighted" (§6, FPMD/DPMD style): draw `num_particles` samples from pi_k per state,
     weight them by softmax((Q - alpha log pi_k)/(alpha + beta)) = pi*/pi_k, and minimise
     the weighted MeanFlow loss on their pre-squash actions; sigma (not the flow) is
     trained by the reparameterised -Q + alpha log pi_hat objective with x held fixed.
3. Temperature alpha toward `target_entropy` (default -action_size), as in SAC.
4. md_coef beta: fixed, or dual-tuned toward `target_kl` (mirror_descent.md_coef_loss).
5. Anchor pi_k: hard copy every `anchor_period` actor steps, or EMA (`anchor_update`).

The closed-form target of one step is pi* ∝ pi_k^(beta/(alpha+beta)) exp(Q/(alpha+beta))
(SMFP.md §1); beta = 0 recovers SAC's soft improvement with a MeanFlow actor.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

import jax
import jax.numpy as jnp
import optax
from flax import struct

from mjx_smfp import critic as critic_lib
from mjx_smfp import meanflow as mf
from mjx_smfp import mirror_descent as md
from mjx_smfp.agents.base import Metrics, Transition
from mjx_smfp.agents.soft_actor_critic import SoftActorCriticAgent, SoftActorCriticConfig
from mjx_smfp.policies.meanflow import ACTIVATIONS, ENTROPY_SURROGATES, INPUT_LAYERS, SIGMA_MODES, MeanFlowPolicy

ACTOR_UPDATES = ("reparam", "weighted")
MEANFLOW_TARGETS = ("anchor", "anchor_flow", "replay")


@struct.dataclass
class SMFPState:
    actor_params: dict
    anchor_params: dict  # pi_k, the mirror-descent anchor (frozen between refreshes)
    critic_params: dict
    target_critic_params: dict
    log_temperature: jax.Array
    log_md_coef: jax.Array
    actor_opt_state: optax.OptState
    critic_opt_state: optax.OptState
    temperature_opt_state: optax.OptState
    md_coef_opt_state: optax.OptState
    step: jax.Array  # update() calls so far (drives the policy delay)
    actor_steps: jax.Array  # actor steps so far (drives the hard anchor copy)


class SMFP(SoftActorCriticAgent):
    """Stochastic MeanFlow Policy with entropic mirror descent; see the module docstring."""

    @dataclasses.dataclass(frozen=True)
    class Config(SoftActorCriticConfig):
        # Networks, optimisation and temperature: SoftActorCriticConfig's fields (shared with SAC).
        init_temperature: float = 0.1  # SAC: 1.0; see docs/smfp.md "Inverted pendulum"
        # -- the policy (SMFP.md §3-4) --------------------------------------------------
        time_embed_dim: int = 64
        sigma_mode: str = "state"  # "state" head | "per_dim" | "zero" (no-entropy ablation); docs/smfp.md
        sigma_init: float = 0.1
        sigma_hidden: int = 64  # width of the state sigma head (small: it sees only s and is pure overhead)
        actor_input_layer: str = "concat"  # "split" (per-input first layer) | "concat" (one Dense)
        actor_activation: str = "relu"  # hidden activation of u_theta: "relu" | "silu"
        flow_init_scale: float = 0.5  # initial map x ~ scale * eps (u gets a fixed (1 - scale) z term)
        entropy_surrogate: str = "conditional"  # "conditional" | "jacobian" | "none"
        best_of_n: int = 1  # acting: argmax min-Q over N samples (1 = off)
        eval_best_of_n: int = 1  # evaluation: argmax min-Q over N xi=0 samples (1 = eps = 0)
        # -- the actor objective (§6) ---------------------------------------------------
        actor_update: str = "reparam"  # "reparam" | "weighted"
        num_particles: int = 16  # particles per state for actor_update="weighted"
        meanflow_coef: float = 0.1  # lambda_mf
        meanflow_fraction: float = 0.25  # share of the batch the MeanFlow loss sees (its JVP is the costly part)
        meanflow_target: str = "anchor"  # "anchor" | "anchor_flow" | "replay"
        meanflow_variant: str = "meanflow"  # "meanflow" | "improved"
        meanflow_weight_power: float = 1.0  # p in w = 1/(||delta||^2 + c)^p
        meanflow_weight_eps: float = 1e-3  # c
        time_mean: float = -0.4  # logit-normal (r, t) sampler
        time_std: float = 1.0
        equal_time_fraction: float = 0.75  # fraction of the batch with r = t
        # -- mirror descent (§5) --------------------------------------------------------
        md_coef: float = 0.01  # beta (initial value when learned)
        learn_md_coef: bool = False  # dual-tune beta toward target_kl
        target_kl: float = 0.05
        md_coef_lr: float = 3e-4
        anchor_update: str = "hard"  # "hard" | "ema"
        anchor_period: int = 1000  # K: actor steps between hard copies
        anchor_ema_rate: float = 0.005

        def __post_init__(self):
            choices = dict(sigma_mode=SIGMA_MODES, entropy_surrogate=ENTROPY_SURROGATES, actor_update=ACTOR_UPDATES,
                           meanflow_target=MEANFLOW_TARGETS, meanflow_variant=mf.VARIANTS,
                           anchor_update=md.ANCHOR_UPDATES, actor_input_layer=INPUT_LAYERS,
                           actor_activation=tuple(ACTIVATIONS))
            for name, valid in choices.items():
                if getattr(self, name) not in valid:
                    raise ValueError(f"{name}={getattr(self, name)!r} is not valid; choose one of {', '.join(valid)}")
            if self.sigma_mode == "zero" and self.entropy_surrogate == "conditional":
                raise ValueError("sigma_mode='zero' has no conditional entropy: set entropy_surrogate to "
                                 "'jacobian' or 'none'")
            if self.entropy_surrogate == "none" and self.learn_temperature:
                raise ValueError("entropy_surrogate='none' has no entropy to tune: set learn_temperature=False")
            if self.learn_md_coef and self.md_coef <= 0:
                raise ValueError("learn_md_coef=True needs md_coef > 0 (it is tuned in log space)")
            if self.learn_temperature and self.init_temperature <= 0:
                raise ValueError("learn_temperature=True needs init_temperature > 0 (it is tuned in log space)")
            if not 0.0 < self.meanflow_fraction <= 1.0:
                raise ValueError(f"meanflow_fraction must be in (0, 1], got {self.meanflow_fraction}")
            for name in ("sigma_hidden", "anchor_period", "num_particles", "best_of_n", "eval_best_of_n", "policy_delay"):
                if getattr(self, name) < 1:
                    raise ValueError(f"{name} must be >= 1")

    def __init__(self, config: "SMFP.Config" = None):
        super().__init__(config if config is not None else SMFP.Config())
        self.policy: Optional[MeanFlowPolicy] = None

    # -- helpers -----------------------------------------------------------------------
    def make_policy(self, action_size: int) -> MeanFlowPolicy:
        c = self.config
        return MeanFlowPolicy(action_size=action_size, hidden=tuple(c.actor_hidden), embed_dim=c.time_embed_dim,
                              sigma_mode=c.sigma_mode, sigma_init=c.sigma_init, sigma_hidden=c.sigma_hidden,
                              entropy_surrogate=c.entropy_surrogate,
                              flow_init_scale=c.flow_init_scale, input_layer=c.actor_input_layer,
                              activation=c.actor_activation)

    def _min_q(self, params, obs, action):
        return self._q(params, obs, action).min(axis=0)

    def _temperature(self, state: SMFPState) -> jax.Array:
        if self.config.entropy_surrogate == "none":
            return jnp.zeros(())
        return jnp.exp(state.log_temperature)

    def _kl(self, sample, anchor_sample) -> jax.Array:
        """Shared-noise KL bound (§5); with sigma = 0 it is infinite, so use 0.5 ||x - x_k||^2."""
        anchor_x = jax.lax.stop_gradient(anchor_sample.x)
        if self.config.sigma_mode == "zero":
            return 0.5 * jnp.sum(jnp.square(sample.x - anchor_x), axis=-1)
        return md.shared_noise_kl(sample.x, sample.log_sigma, anchor_x,
                                  jax.lax.stop_gradient(anchor_sample.log_sigma))

    def _meanflow_loss(self, actor_params, obs, data, rng, sample_weight=None):
        c = self.config
        k_e, k_t = jax.random.split(rng)
        e = jax.random.normal(k_e, data.shape, data.dtype)
        r, t = mf.sample_times(k_t, data.shape[0], mean=c.time_mean, std=c.time_std,
                               equal_fraction=c.equal_time_fraction)
        return mf.meanflow_loss(self.policy.field(actor_params, obs), jax.lax.stop_gradient(data), e, r, t,
                                variant=c.meanflow_variant, weight_power=c.meanflow_weight_power,
                                weight_eps=c.meanflow_weight_eps, sample_weight=sample_weight)

    # -- Agent interface ---------------------------------------------------------------
    def init(self, rng: jax.Array, obs_size: int, action_size: int) -> SMFPState:
        c = self.config
        self.action_size = action_size
        self.policy = self.make_policy(action_size)
        k_actor, k_critic = jax.random.split(rng)
        actor_params = self.policy.init(k_actor, obs_size)
        critic_params = self.critic_net.init(k_critic, jnp.zeros((1, obs_size)), jnp.zeros((1, action_size)))
        log_temperature = jnp.asarray(math.log(max(c.init_temperature, 1e-30)), jnp.float32)
        log_md_coef = jnp.asarray(math.log(max(c.md_coef, 1e-30)), jnp.float32)
        return SMFPState(
            actor_params=actor_params,
            anchor_params=actor_params,
            critic_params=critic_params,
            target_critic_params=critic_params,
            log_temperature=log_temperature,
            log_md_coef=log_md_coef,
            actor_opt_state=self._optimizer(c.actor_lr).init(actor_params),
            critic_opt_state=self._optimizer(c.critic_lr).init(critic_params),
            temperature_opt_state=optax.adam(c.temperature_lr).init(log_temperature),
            md_coef_opt_state=optax.adam(c.md_coef_lr).init(log_md_coef),
            step=jnp.zeros((), jnp.int32),
            actor_steps=jnp.zeros((), jnp.int32),
        )

    def act(self, state: SMFPState, obs: jax.Array, rng: jax.Array) -> jax.Array:
        if self.config.best_of_n > 1:
            score = lambda o, a: self._min_q(state.critic_params, o, a)  # noqa: E731
            return self.policy.best_of_n(state.actor_params, obs, rng, score, self.config.best_of_n)
        return self.policy.draw(state.actor_params, obs, rng).action

    def eval_act(self, state: SMFPState, obs: jax.Array) -> jax.Array:
        if self.config.eval_best_of_n > 1:
            score = lambda o, a: self._min_q(state.critic_params, o, a)  # noqa: E731
            return self.policy.best_of_n(state.actor_params, obs, jax.random.PRNGKey(0), score,
                                         self.config.eval_best_of_n, stochastic=False)
        return self.policy.deterministic(state.actor_params, obs)

    def update(self, state: SMFPState, batch: Transition, rng: jax.Array) -> tuple[SMFPState, Metrics]:
        c = self.config
        k_next, k_actor = jax.random.split(rng)
        temperature = self._temperature(state)
        md_coef = jnp.exp(state.log_md_coef) if c.md_coef > 0 else jnp.zeros(())

        # 1. Critic: the shared soft min-backup with the entropy surrogate as log pi.
        next_action, next_logp = self.policy.sample(state.actor_params, batch.next_obs, k_next)
        (_, critic_metrics), critic_grads = jax.value_and_grad(critic_lib.critic_loss, has_aux=True)(
            state.critic_params, state.target_critic_params, batch, next_action, next_logp,
            temperature, c.gamma, self._q, c.entropy_in_backup and c.entropy_surrogate != "none",
        )
        critic_grads = self.reduce(critic_grads)
        critic_updates, critic_opt_state = self._optimizer(c.critic_lr).update(
            critic_grads, state.critic_opt_state, state.critic_params)
        critic_params = optax.apply_updates(state.critic_params, critic_updates)
        target_critic_params = critic_lib.polyak(state.target_critic_params, critic_params, c.tau)

        # 2. Actor: the unified objective (§6) or the weighted-particle alternative.
        actor_loss = self._reparam_loss if c.actor_update == "reparam" else self._weighted_loss

        def actor_step(_):
            (a_loss, aux), grads = jax.value_and_grad(actor_loss, has_aux=True)(
                state.actor_params, state.anchor_params, critic_params, batch, temperature, md_coef, k_actor)
            grads = self.reduce(grads)
            updates, actor_opt_state = self._optimizer(c.actor_lr).update(
                grads, state.actor_opt_state, state.actor_params)
            actor_params = optax.apply_updates(state.actor_params, updates)
            actor_steps = state.actor_steps + 1
            anchor_params = md.update_anchor(state.anchor_params, actor_params, actor_steps, mode=c.anchor_update,
                                             period=c.anchor_period, ema_rate=c.anchor_ema_rate)

            # 3. Temperature toward the target entropy (of the surrogate).
            def temperature_loss(log_t):
                return jnp.exp(log_t) * jax.lax.stop_gradient(aux["entropy"] - self._target_entropy())

            t_grad = self.reduce(jax.grad(temperature_loss)(state.log_temperature))
            t_upd, temperature_opt_state = optax.adam(c.temperature_lr).update(t_grad, state.temperature_opt_state)
            log_temperature = state.log_temperature + (t_upd if c.learn_temperature else 0.0)

            # 4. md_coef toward the target KL.
            b_grad = self.reduce(jax.grad(md.md_coef_loss)(state.log_md_coef, aux["kl"], c.target_kl))
            b_upd, md_coef_opt_state = optax.adam(c.md_coef_lr).update(b_grad, state.md_coef_opt_state)
            log_md_coef = state.log_md_coef + (b_upd if c.learn_md_coef else 0.0)

            aux = dict(aux, actor_loss=a_loss, actor_grad_norm=optax.global_norm(grads))
            return (actor_params, anchor_params, actor_opt_state, log_temperature, temperature_opt_state,
                    log_md_coef, md_coef_opt_state, actor_steps), aux

        if c.policy_delay <= 1:
            actor_out, aux = actor_step(None)
        else:
            aux_shape = jax.eval_shape(actor_step, None)[1]

            def skip(_):
                return ((state.actor_params, state.anchor_params, state.actor_opt_state, state.log_temperature,
                         state.temperature_opt_state, state.log_md_coef, state.md_coef_opt_state,
                         state.actor_steps),
                        jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), aux_shape))

            actor_out, aux = jax.lax.cond(state.step % c.policy_delay == 0, actor_step, skip, None)
        (actor_params, anchor_params, actor_opt_state, log_temperature, temperature_opt_state,
         log_md_coef, md_coef_opt_state, actor_steps) = actor_out

        new_state = SMFPState(
            actor_params=actor_params, anchor_params=anchor_params, critic_params=critic_params,
            target_critic_params=target_critic_params, log_temperature=log_temperature,
            log_md_coef=log_md_coef, actor_opt_state=actor_opt_state, critic_opt_state=critic_opt_state,
            temperature_opt_state=temperature_opt_state, md_coef_opt_state=md_coef_opt_state,
            step=state.step + 1, actor_steps=actor_steps,
        )
        metrics = dict(critic_metrics)
        metrics.update(aux)
        metrics.update(
            temperature=self._temperature(new_state),
            md_coef=jnp.exp(log_md_coef) if c.md_coef > 0 else jnp.zeros(()),
            critic_grad_norm=optax.global_norm(critic_grads),
        )
        return new_state, metrics

    # -- actor objectives (pure in their arguments) ------------------------------------
    def _meanflow_data(self, batch: Transition, anchor_sample):
        """Pre-squash 'data' actions for L_MF, per `meanflow_target` (gradient stopped by the caller)."""
        c = self.config
        if c.meanflow_target == "anchor":
            return anchor_sample.y
        if c.meanflow_target == "anchor_flow":
            return anchor_sample.x
        return jnp.arctanh(jnp.clip(batch.action, -0.999, 0.999))

    def _reparam_loss(self, actor_params, anchor_params, critic_params, batch: Transition, temperature, md_coef,
                      rng):
        """E[-min Q + alpha log pi_hat + beta KL_hat] + lambda_mf L_MF (SMFP.md §6)."""
        c = self.config
        obs = batch.obs
        k_noise, k_mf = jax.random.split(rng)
        eps, xi = self.policy.noise(k_noise, obs.shape[:-1])
        sample = self.policy.forward(actor_params, obs, eps, xi)
        logp = self.policy.log_prob(actor_params, obs, sample)
        q = self._min_q(critic_params, obs, sample.action)
        anchor_sample = jax.tree_util.tree_map(jax.lax.stop_gradient,
                                               self.policy.forward(anchor_params, obs, eps, xi))
        kl = self._kl(sample, anchor_sample)
        loss = jnp.mean(-q + temperature * logp + md_coef * kl)
        aux = {}
        if c.meanflow_coef > 0:
            # The MeanFlow data reuse pi_k's draw above (y_k = x_k + sigma_k xi): the MeanFlow
            # path has its own noise, so sharing (eps, xi) with the KL term biases nothing.
            data = self._meanflow_data(batch, anchor_sample)
            n = max(1, round(c.meanflow_fraction * obs.shape[0]))  # replay rows are i.i.d.: a prefix is a random subset
            mf_loss, mf_aux = self._meanflow_loss(actor_params, obs[:n], data[:n], k_mf)
            loss = loss + c.meanflow_coef * mf_loss
            aux.update(meanflow_loss=mf_loss, **mf_aux)
        aux.update(entropy=-jnp.mean(logp), kl=jnp.mean(kl), q_policy=jnp.mean(q),
                   sigma_mean=jnp.mean(jnp.exp(sample.log_sigma)))
        return loss, aux

    def _weighted_loss(self, actor_params, anchor_params, critic_params, batch: Transition, temperature, md_coef,
                       rng):
        """Weighted MeanFlow loss on pi_k particles, weights pi*/pi_k (§6 "weighted"), plus the
        reparameterised sigma objective with the flow output held fixed.

        The proximity to pi_k is implicit here (the particles come from pi_k and beta enters
        the weights' temperature alpha + beta); the shared-noise KL is reported, not minimised."""
        c = self.config
        obs = batch.obs
        b, n = obs.shape[0], c.num_particles
        k_particles, k_mf, k_sigma = jax.random.split(rng, 3)
        obs_n = jnp.broadcast_to(obs[None], (n,) + obs.shape).reshape(n * b, -1)
        particles = jax.tree_util.tree_map(jax.lax.stop_gradient,
                                           self.policy.draw(anchor_params, obs_n, k_particles))
        anchor_logp = self.policy.log_prob(anchor_params, obs_n, particles)
        q_particles = self._min_q(critic_params, obs_n, particles.action)
        weights = md.particle_weights(q_particles.reshape(n, b), anchor_logp.reshape(n, b), temperature, md_coef,
                                      axis=0) * n  # mean 1 per state
        mf_loss, mf_aux = self._meanflow_loss(actor_params, obs_n, particles.y, k_mf,
                                              sample_weight=weights.reshape(n * b))

        # sigma: reparameterised -Q + alpha log pi_hat with x = g(eps) held fixed.
        eps, xi = self.policy.noise(k_sigma, obs.shape[:-1])
        sample = self.policy.forward(actor_params, obs, eps, xi)
        sample = sample.replace(x=jax.lax.stop_gradient(sample.x))
        if c.sigma_mode != "zero":
            y = sample.x + jnp.exp(sample.log_sigma) * xi
            sample = sample.replace(y=y, action=jnp.tanh(y))
        logp = self.policy.log_prob(actor_params, obs, sample)
        q = self._min_q(critic_params, obs, sample.action)
        anchor_sample = jax.tree_util.tree_map(jax.lax.stop_gradient,
                                               self.policy.forward(anchor_params, obs, eps, xi))
        kl = self._kl(sample, anchor_sample)
        loss = mf_loss + jnp.mean(-q + temperature * logp)
        ess = 1.0 / jnp.mean(jnp.sum(jnp.square(weights / n), axis=0))  # mean effective sample size
        aux = dict(mf_aux, meanflow_loss=mf_loss, entropy=-jnp.mean(logp), kl=jnp.mean(kl), q_policy=jnp.mean(q),
                   sigma_mean=jnp.mean(jnp.exp(sample.log_sigma)), particle_ess=ess)
        return loss, aux
