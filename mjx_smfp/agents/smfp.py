"""SMFP: Stochastic MeanFlow Policy trained by entropic mirror descent (SMFP.md §5-6).

One gradient step:
1. Critic (shared with SAC, mjx_smfp/critic.py): twin-Q soft backup
       y = r + gamma (1 - terminated) (min_i Qbar_i(s', a') - alpha log pi_hat(a'|s')),
   a' ~ pi_theta(.|s'), log pi_hat the chosen entropy surrogate (§4); `entropy_in_backup`
   switches the -alpha log pi_hat term off. (min_i here and below: the default
   `q_target_combine` / `q_actor_combine`; "mean" is the other choice.)
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
     the weighted MeanFlow loss on their flow outputs x; sigma (not the flow) is
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

import jax
import jax.numpy as jnp
import optax
from flax import struct

from mjx_smfp import diagnostics
from mjx_smfp import meanflow as mf
from mjx_smfp import mirror_descent as md
from mjx_smfp.agents.base import Transition
from mjx_smfp.agents.soft_actor_critic import (SoftActorCriticAgent, SoftActorCriticConfig, SoftActorCriticState,
                                               gradient_update)
from mjx_smfp.policies.densities import standard_normal_logpdf
from mjx_smfp.policies.meanflow import MeanFlowConfig, MeanFlowPolicy
from mjx_smfp.validation import check

ACTOR_UPDATES = ("reparam", "weighted")
MEANFLOW_TARGETS = ("anchor", "anchor_flow", "replay")


@struct.dataclass
class SMFPState(SoftActorCriticState):
    anchor_params: dict  # pi_k, the mirror-descent anchor (frozen between refreshes)
    log_md_coef: jax.Array
    md_coef_opt_state: optax.OptState
    actor_steps: jax.Array  # actor steps so far (drives the hard anchor copy)


class SMFP(SoftActorCriticAgent):
    """Stochastic MeanFlow Policy with entropic mirror descent; see the module docstring."""

    @dataclasses.dataclass(frozen=True)
    class Config(SoftActorCriticConfig):
        # Networks, optimisation and temperature: SoftActorCriticConfig's fields (shared with SAC).
        init_temperature: float = 0.1  # initial alpha (SAC: 1.0); see docs/smfp.md "Inverted pendulum"
        log_std_max: float = 1.0  # upper bound of the boundary noise's log sigma (SAC's actor: 2.0)
        policy: MeanFlowConfig = MeanFlowConfig()  # the actor (SMFP.md §3-4)
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
        time_mean: float = -0.4  # mean of the logit-normal (r, t) sampler
        time_std: float = 1.0  # std of the logit-normal (r, t) sampler
        equal_time_fraction: float = 0.75  # fraction of the batch with r = t
        one_step_fraction: float = 0.0  # fraction of MeanFlow rows at exactly (r, t) = (0, 1), the one-step map
        # -- mirror descent (§5) --------------------------------------------------------
        md_coef: float = 0.01  # beta (initial value when learned)
        learn_md_coef: bool = False  # dual-tune beta toward target_kl
        target_kl: float = 0.05  # KL to the anchor that learn_md_coef tunes beta toward
        md_coef_lr: float = 3e-4  # Adam learning rate of log beta (learn_md_coef)
        anchor_update: str = "hard"  # "hard" | "ema"
        anchor_period: int = 1000  # K: actor steps between hard copies
        anchor_ema_rate: float = 0.005  # Polyak rate of the anchor for anchor_update="ema"

        def __post_init__(self):
            super().__post_init__()
            check(self, "actor_update", choices=ACTOR_UPDATES)
            check(self, "meanflow_target", choices=MEANFLOW_TARGETS)
            check(self, "meanflow_variant", choices=mf.VARIANTS)
            check(self, "anchor_update", choices=md.ANCHOR_UPDATES)
            if self.policy.sigma_mode != "zero" and not (
                    self.log_std_min <= math.log(self.policy.sigma_init) <= self.log_std_max):
                bounds = f"[{math.exp(self.log_std_min):.3g}, {math.exp(self.log_std_max):.3g}]"
                raise ValueError(f"sigma_init={self.policy.sigma_init} lies outside [exp(log_std_min), "
                                 f"exp(log_std_max)] = {bounds}")
            if self.policy.entropy_surrogate == "none" and self.learn_temperature:
                raise ValueError("entropy_surrogate='none' has no entropy to tune: set learn_temperature=False")
            if self.learn_md_coef and self.md_coef <= 0:
                raise ValueError("learn_md_coef=True needs md_coef > 0 (it is tuned in log space)")
            check(self, "meanflow_fraction", within="(0, 1]")
            check(self, "equal_time_fraction", "one_step_fraction", "anchor_ema_rate", within="[0, 1]")
            check(self, "meanflow_coef", "md_coef", "target_kl", "meanflow_weight_power", "meanflow_weight_eps",
                  nonneg=True)
            check(self, "md_coef_lr", positive=True)
            check(self, "anchor_period", "num_particles", "best_of_n", "eval_best_of_n", at_least=1)

    State = SMFPState

    def __init__(self, config: "SMFP.Config", obs_size: int, action_size: int, axis=None):
        super().__init__(config, obs_size, action_size, axis)
        self.md_coef_optimizer = optax.adam(config.md_coef_lr)

    # -- helpers -----------------------------------------------------------------------
    def make_policy(self) -> MeanFlowPolicy:
        return MeanFlowPolicy(self.action_size, self.config.actor_network(), self.config.policy)

    def extra_state(self, actor_params) -> dict:
        log_md_coef = jnp.asarray(math.log(max(self.config.md_coef, 1e-30)), jnp.float32)
        return dict(anchor_params=actor_params, log_md_coef=log_md_coef,
                    md_coef_opt_state=self.md_coef_optimizer.init(log_md_coef),
                    actor_steps=jnp.zeros((), jnp.int32))

    def temperature(self, state) -> jax.Array:
        if self.config.policy.entropy_surrogate == "none":
            return jnp.zeros(())
        return jnp.exp(state.log_temperature)

    def md_coef(self, state) -> jax.Array:
        return jnp.exp(state.log_md_coef) if self.config.md_coef > 0 else jnp.zeros(())

    def entropy_in_backup(self) -> bool:
        return self.config.entropy_in_backup and self.config.policy.entropy_surrogate != "none"

    def _kl(self, sample, anchor_sample) -> jax.Array:
        """Shared-noise KL bound (§5); with sigma = 0 it is infinite, so use 0.5 ||x - x_k||^2."""
        anchor_x = jax.lax.stop_gradient(anchor_sample.x)
        if self.config.policy.sigma_mode == "zero":
            return 0.5 * jnp.sum(jnp.square(sample.x - anchor_x), axis=-1)
        return md.shared_noise_kl(sample.x, sample.log_sigma, anchor_x,
                                  jax.lax.stop_gradient(anchor_sample.log_sigma))

    def _meanflow_loss(self, actor_params, obs, data, rng, sample_weight=None):
        c = self.config
        k_e, k_t = jax.random.split(rng)
        e = jax.random.normal(k_e, data.shape, data.dtype)
        r, t = mf.sample_times(k_t, data.shape[0], mean=c.time_mean, std=c.time_std,
                               equal_fraction=c.equal_time_fraction, one_step_fraction=c.one_step_fraction)
        return mf.meanflow_loss(self.policy.field(actor_params, obs), jax.lax.stop_gradient(data), e, r, t,
                                variant=c.meanflow_variant, weight_power=c.meanflow_weight_power,
                                weight_eps=c.meanflow_weight_eps, sample_weight=sample_weight)

    # -- Agent interface ---------------------------------------------------------------
    def act(self, state: SMFPState, obs: jax.Array, rng: jax.Array) -> jax.Array:
        if self.config.best_of_n > 1:
            score = lambda o, a: self.actor_q(state.critic_params, o, a)  # noqa: E731
            return self.policy.best_of_n(state.actor_params, obs, rng, score, self.config.best_of_n)
        return self.policy.draw(state.actor_params, obs, rng).action

    def eval_act(self, state: SMFPState, obs: jax.Array) -> jax.Array:
        if self.config.eval_best_of_n > 1:
            score = lambda o, a: self.actor_q(state.critic_params, o, a)  # noqa: E731
            return self.policy.best_of_n(state.actor_params, obs, jax.random.PRNGKey(0), score,
                                         self.config.eval_best_of_n, stochastic=False)
        return self.policy.deterministic(state.actor_params, obs)

    def diagnostics(self, state: SMFPState, obs: jax.Array, rng: jax.Array):
        """The shared checks plus the flow's own: `flow_spread`, E||x(eps_1) - x(eps_2)||^2 / 2 of
        the one-step map over independent eps (0 once the flow ignores its noise: SMFP reduced to
        a Gaussian around one action), and `sigma_mean`, the boundary noise (SMFP.md §3)."""
        k_shared, k_eps = jax.random.split(rng)
        eps1, eps2 = self.policy.noise(k_eps, obs.shape[:-1])
        x1, x2 = (self.policy.flow(state.actor_params, obs, e) for e in (eps1, eps2))
        return dict(super().diagnostics(state, obs, k_shared), flow_spread=diagnostics.pairwise_spread(x1, x2),
                    sigma_mean=jnp.mean(jnp.exp(self.policy.log_sigma(state.actor_params, obs))))

    def policy_state(self, state: SMFPState, keep: tuple[str, ...] = ("actor_params",)):
        """The actor, plus the critic when evaluation scores samples with it (eval_best_of_n > 1)."""
        return super().policy_state(state, keep + ("critic_params",) * (self.config.eval_best_of_n > 1))

    def actor_loss(self, actor_params, state: SMFPState, batch: Transition, temperature, rng):
        """The unified objective (§6) or the weighted-particle alternative, per `actor_update`."""
        loss = self._reparam_loss if self.config.actor_update == "reparam" else self._weighted_loss
        return loss(actor_params, state.anchor_params, state.critic_params, batch, temperature, self.md_coef(state),
                    rng)

    def actor_step(self, state: SMFPState, batch: Transition, temperature, rng):
        """The shared actor + temperature step, then the anchor refresh (§5) and the md_coef dual step."""
        c = self.config
        state, metrics = super().actor_step(state, batch, temperature, rng)
        actor_steps = state.actor_steps + 1
        state = state.replace(actor_steps=actor_steps, anchor_params=md.update_anchor(
            state.anchor_params, state.actor_params, actor_steps, mode=c.anchor_update, period=c.anchor_period,
            ema_rate=c.anchor_ema_rate))
        if c.learn_md_coef:
            log_md_coef, opt_state, _ = gradient_update(
                lambda b: (md.md_coef_loss(b, metrics["kl"], c.target_kl), {}), self.md_coef_optimizer,
                state.log_md_coef, state.md_coef_opt_state, axis=self.axis, name="md_coef")
            state = state.replace(log_md_coef=log_md_coef, md_coef_opt_state=opt_state)
        return state, metrics

    def update(self, state: SMFPState, batch: Transition, rng: jax.Array):
        state, metrics = super().update(state, batch, rng)
        return state, dict(metrics, md_coef=self.md_coef(state))

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
        """E[-Q + alpha log pi_hat + beta KL_hat] + lambda_mf L_MF (SMFP.md §6), Q = `actor_q`."""
        c = self.config
        obs = batch.obs
        k_noise, k_mf = jax.random.split(rng)
        eps, xi = self.policy.noise(k_noise, obs.shape[:-1])
        sample = self.policy.forward(actor_params, obs, eps, xi)
        logp = self.policy.log_prob(actor_params, obs, sample)
        q = self.actor_q(critic_params, obs, sample.action)
        anchor_sample = jax.tree_util.tree_map(jax.lax.stop_gradient,
                                               self.policy.forward(anchor_params, obs, eps, xi))
        kl = self._kl(sample, anchor_sample)
        loss = jnp.mean(-q + temperature * logp + md_coef * kl)
        aux = {"entropy_term": temperature * jnp.mean(logp), "md_term": md_coef * jnp.mean(kl)}
        if c.meanflow_coef > 0:
            # The MeanFlow data reuse pi_k's draw above (y_k = x_k + sigma_k xi): the MeanFlow
            # path has its own noise, so sharing (eps, xi) with the KL term biases nothing.
            data = self._meanflow_data(batch, anchor_sample)
            n = max(1, round(c.meanflow_fraction * obs.shape[0]))  # replay rows are i.i.d.: a prefix is a random subset
            mf_loss, mf_aux = self._meanflow_loss(actor_params, obs[:n], data[:n], k_mf)
            loss = loss + c.meanflow_coef * mf_loss
            aux.update(meanflow_loss=mf_loss, meanflow_term=c.meanflow_coef * mf_loss, **mf_aux)
        aux.update(entropy=-jnp.mean(logp), kl=jnp.mean(kl), q_policy=jnp.mean(q),
                   sigma_mean=jnp.mean(jnp.exp(sample.log_sigma)))
        return loss, aux

    def _weighted_loss(self, actor_params, anchor_params, critic_params, batch: Transition, temperature, md_coef,
                       rng):
        """Weighted MeanFlow loss on pi_k particles, weights pi*/pi_k (§6 "weighted"), plus the
        reparameterised sigma objective with the flow output held fixed.

        The proximity to pi_k is implicit here (the particles come from pi_k and beta enters
        the weights' temperature alpha + beta); the shared-noise KL is reported, not minimised.
        The weights use log pi_k without the boundary draw's own density log N(xi) (with it, the
        logits carry +alpha/(alpha+beta) ||xi||^2 / 2 and the reweighted law inflates the boundary
        noise by sqrt((alpha+beta)/beta)), and the flow is fit to the particles' flow outputs x,
        not to their noisy y (SMFP.md §6)."""
        c = self.config
        obs = batch.obs
        b, n = obs.shape[0], c.num_particles
        k_particles, k_mf, k_sigma = jax.random.split(rng, 3)
        obs_n = jnp.broadcast_to(obs[None], (n,) + obs.shape).reshape(n * b, -1)
        particles = jax.tree_util.tree_map(jax.lax.stop_gradient,
                                           self.policy.draw(anchor_params, obs_n, k_particles))
        anchor_logp = self.policy.log_prob(anchor_params, obs_n, particles)
        if c.policy.entropy_surrogate == "conditional":  # drop the boundary draw's own density
            anchor_logp = anchor_logp - standard_normal_logpdf(particles.xi)
        q_particles = self.actor_q(critic_params, obs_n, particles.action)
        weights = md.particle_weights(q_particles.reshape(n, b), anchor_logp.reshape(n, b), temperature, md_coef,
                                      axis=0) * n  # mean 1 per state
        mf_loss, mf_aux = self._meanflow_loss(actor_params, obs_n, particles.x, k_mf,
                                              sample_weight=weights.reshape(n * b))

        # sigma: reparameterised -Q + alpha log pi_hat with x = g(eps) held fixed.
        eps, xi = self.policy.noise(k_sigma, obs.shape[:-1])
        sample = self.policy.forward(actor_params, obs, eps, xi)
        sample = sample.replace(x=jax.lax.stop_gradient(sample.x))
        if c.policy.sigma_mode != "zero":
            y = sample.x + jnp.exp(sample.log_sigma) * xi
            sample = sample.replace(y=y, action=jnp.tanh(y))
        # The flow is held fixed here: the "jacobian" surrogate's Jacobian is of the frozen flow too.
        logp = self.policy.log_prob(jax.lax.stop_gradient(actor_params), obs, sample)
        q = self.actor_q(critic_params, obs, sample.action)
        anchor_sample = jax.tree_util.tree_map(jax.lax.stop_gradient,
                                               self.policy.forward(anchor_params, obs, eps, xi))
        kl = self._kl(sample, anchor_sample)
        loss = mf_loss + jnp.mean(-q + temperature * logp)
        ess = jnp.mean(1.0 / jnp.sum(jnp.square(weights / n), axis=0))  # mean over states of each state's ESS
        aux = dict(mf_aux, meanflow_loss=mf_loss, entropy=-jnp.mean(logp), kl=jnp.mean(kl), q_policy=jnp.mean(q),
                   sigma_mean=jnp.mean(jnp.exp(sample.log_sigma)), particle_ess=ess)
        return loss, aux
