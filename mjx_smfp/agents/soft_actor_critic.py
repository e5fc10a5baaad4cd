"""What every soft actor-critic agent here shares: the config fields, the state fields, one
gradient-update helper, the critic and temperature steps, the policy delay and `update` itself.

An agent built on `SoftActorCriticAgent` supplies a `Config`, a policy (`make_policy`: it must
offer `init(rng, obs_size)`, `sample(params, obs, rng) -> (action, log pi)` and
`deterministic(params, obs)`) and an `actor_loss`; SAC and SMFP differ only there.
One `update` (below) is, per gradient step:
1. critic: the twin-Q soft backup (mjx_smfp/critic.py; scalar or distributional value heads,
   `q` is always the expectation) with a' ~ pi(.|s') and its log pi; with
   `temperature_every_update` the temperature steps here, on -E log pi(a'|s') (FastSAC
   `fast_sac_agent.py` `_update_main`; SimbaV2 steps it every update too);
2. every `policy_delay` steps, `actor_step`: one optimiser step on `actor_loss`, then (unless
   it stepped with the critic) the temperature toward the target entropy on the actor's
   estimate (subclasses add their own, e.g. SMFP's anchor). The actor's metrics are `Gated`:
   the loop averages them over actor steps only.

The parallel-regime recipe of FastSAC / FastTD3 / FlashSAC (/work/shared/design/PARALLEL.md) is
a set of fields here, so every agent has them: AdamW (`weight_decay`, `adam_b1`, `adam_b2`),
SiLU networks (`activation`), bfloat16 matmuls (`matmul_dtype`), the temperature's target
(`target_entropy` | `target_entropy_per_dim` | `target_std`) and the log-std bounds.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import optax
from flax import struct

from mjx_smfp import critic as critic_lib
from mjx_smfp import diagnostics
from mjx_smfp.agents import temperature as temperature_lib
from mjx_smfp.agents.base import Agent, Metrics, Transition
from mjx_smfp.types import Gated
from mjx_smfp.networks import MATMUL_DTYPES, ActorNetworkConfig, TwinQ
from mjx_smfp.validation import check


TARGET_ENTROPY_FIELDS = ("target_entropy", "target_entropy_per_dim", "target_std")  # at most one is set
DIAGNOSTIC_SAMPLES = 64  # actions drawn per held-out state by `diagnostics`


@dataclasses.dataclass(frozen=True)
class SoftActorCriticConfig:
    actor_hidden: tuple[int, ...] = (256, 256, 256)  # actor MLP widths
    critic_hidden: tuple[int, ...] = (256, 256, 256)  # critic MLP widths (each Q head)
    num_q_heads: int = 2  # Q heads; combined per q_target_combine (targets) and q_actor_combine (actor)
    critic_layer_norm: bool = True  # LayerNorm after each hidden critic layer
    activation: str = "relu"  # hidden activation of every MLP of the agent (critic and actor): relu | silu
    matmul_dtype: str = "float32"  # compute dtype of network matmuls: float32 | bfloat16 (params, losses stay float32)
    critic_type: str = "mse"  # value head: "mse" (scalar Q) | "c51" (categorical projection) | "hl_gauss" (critic.py)
    num_atoms: int = 101  # atoms of the fixed value support (c51, hl_gauss)
    value_min: Optional[float] = None  # lowest atom; required unless critic_type="mse" (e.g. -r_max/(1-gamma))
    value_max: Optional[float] = None  # highest atom; required unless critic_type="mse" (e.g. r_max/(1-gamma))
    hl_gauss_sigma: float = 0.75  # HL-Gauss target std in units of the bin width
    q_target_combine: str = "min"  # heads -> bootstrap value: "min" (clipped double Q) | "mean"
    q_actor_combine: str = "min"  # heads -> the actor's Q: "min" | "mean" (FastSAC: mean)
    actor_lr: float = 3e-4  # Adam learning rate of the actor
    critic_lr: float = 3e-4  # Adam learning rate of the critic
    temperature_lr: float = 3e-4  # Adam learning rate of log alpha
    temperature_b1: float = 0.9  # Adam beta1 of log alpha's optimiser
    temperature_b2: float = 0.999  # Adam beta2 of log alpha's optimiser (FastSAC: 0.95)
    temperature_every_update: bool = False  # step alpha on every critic update (FastSAC), not only on actor steps
    # "adam": Adam on alpha (H - H_target), steps of ~temperature_lr whatever the gap (the references);
    # "proportional": plain gradient steps on log alpha of temperature_lr x (H - H_target) nats, large when
    # far from the target and small near it (damps the swings Adam's fixed-size steps keep up)
    temperature_rule: str = "adam"  # "adam" | "proportional": how log alpha steps toward the target entropy
    weight_decay: float = 0.0  # decoupled (AdamW) weight decay of actor and critic params; 0 = plain Adam
    adam_b1: float = 0.9  # Adam beta1 (first-moment decay) of the actor and critic optimisers
    adam_b2: float = 0.999  # Adam beta2 (second-moment decay) of the actor and critic optimisers
    gamma: float = 0.99  # discount
    tau: float = 0.005  # Polyak rate of the target critic
    grad_clip: float = 1.0  # global-norm clip of actor and critic gradients; <= 0 disables
    init_temperature: float = 1.0  # initial alpha
    target_entropy: Optional[float] = None  # alpha's target entropy, absolute; none of the three -> -action_size
    target_entropy_per_dim: Optional[float] = None  # alpha's target entropy per action dim (target = value x |A|)
    target_std: Optional[float] = None  # target = entropy of N(0, std^2) per dim: |A| (0.5 log(2 pi e) + log std)
    log_std_min: float = -5.0  # lower bound of the actor's log std (SMFP's boundary, SAC Flow's sigma(s); DIME has none)
    log_std_max: float = 2.0  # upper bound of the actor's log std (SMFP's boundary, SAC Flow's sigma(s); DIME has none)
    learn_temperature: bool = True  # tune alpha toward the target entropy
    entropy_in_backup: bool = True  # -alpha log pi(a'|s') in the critic target
    # -alpha (log pi(a'|s') + H_target) instead: zero on average while the temperature holds its target, so a
    # negative target does not make every step alive a cost that ending the episode avoids
    entropy_backup_centred: bool = False  # the backup's entropy term as -alpha (log pi + H_target)
    policy_delay: int = 1  # actor/temperature step every `policy_delay` critic steps

    def __post_init__(self):
        check(self, "actor_lr", "critic_lr", "temperature_lr", positive=True)
        check(self, "init_temperature", "weight_decay", nonneg=True)
        check(self, "gamma", within="[0, 1]")
        check(self, "tau", within="(0, 1]")
        check(self, "grad_clip", finite=True)  # <= 0 disables clipping
        check(self, "num_q_heads", "policy_delay", at_least=1)
        for name in ("actor_hidden", "critic_hidden"):
            if not getattr(self, name) or min(getattr(self, name)) < 1:
                raise ValueError(f"{name}={getattr(self, name)} must be a non-empty list of widths >= 1")
        if self.learn_temperature and self.init_temperature <= 0:
            raise ValueError("learn_temperature=True needs init_temperature > 0 (it is tuned in log space)")
        check(self, "adam_b1", "adam_b2", "temperature_b1", "temperature_b2", within="[0, 1)")
        check(self, "temperature_rule", choices=temperature_lib.TEMPERATURE_RULES)
        self.actor_network()  # activation, matmul_dtype and the log-std bounds, checked where the policies read them
        targets = [name for name in TARGET_ENTROPY_FIELDS if getattr(self, name) is not None]
        if len(targets) > 1:
            raise ValueError(f"{' and '.join(targets)} are both set; "
                             f"set at most one of {', '.join(TARGET_ENTROPY_FIELDS)}")
        check(self, "target_entropy", "target_entropy_per_dim", finite=True, optional=True)
        check(self, "target_std", positive=True, optional=True)
        self._check_critic()

    def actor_network(self) -> ActorNetworkConfig:
        """The actor's networks as every policy takes them: `actor_hidden`, `activation`,
        `matmul_dtype` and the log-std bounds (networks.ActorNetworkConfig)."""
        return ActorNetworkConfig(hidden=tuple(self.actor_hidden), activation=self.activation,
                                  matmul_dtype=self.matmul_dtype, log_std_min=self.log_std_min,
                                  log_std_max=self.log_std_max)

    def _check_critic(self):
        """The critic's fields (critic.py): head combinations, a known value head and, when
        distributional, a support."""
        check(self, "q_target_combine", "q_actor_combine", choices=critic_lib.HEAD_COMBINES)
        check(self, "critic_type", choices=critic_lib.CRITIC_TYPES)
        if self.critic_type == "mse":
            return
        check(self, "num_atoms", at_least=2)
        for name in ("value_min", "value_max"):
            value = getattr(self, name)
            if value is None or not math.isfinite(value):
                raise ValueError(f"{name}={value} must be a finite number for critic_type={self.critic_type!r}: "
                                 "the support is fixed, e.g. +-r_max/(1-gamma) for rewards in [-r_max, r_max]")
        if not self.value_min < self.value_max:
            raise ValueError(f"value_min={self.value_min} must be < value_max={self.value_max}")
        check(self, "hl_gauss_sigma", positive=True)


def make_optimizer(lr: float, weight_decay: float = 0.0, b1: float = 0.9, b2: float = 0.999,
                   grad_clip: float = 0.0) -> optax.GradientTransformation:
    """Adam(lr, b1, b2), AdamW when `weight_decay` > 0 (decoupled: each step also subtracts
    lr * weight_decay * param, of every parameter: biases and LayerNorm scales too), after a
    global-norm clip of the gradients when `grad_clip` > 0. With weight_decay 0 it is plain Adam
    (the same optimiser state as before the field existed, so old checkpoints load)."""
    opt = optax.adamw(lr, b1, b2, weight_decay=weight_decay) if weight_decay > 0 else optax.adam(lr, b1, b2)
    return optax.chain(optax.clip_by_global_norm(grad_clip), opt) if grad_clip > 0 else opt


@struct.dataclass
class SoftActorCriticState:
    """The state every soft actor-critic agent has; agents with more subclass it."""

    actor_params: Any
    critic_params: Any
    target_critic_params: Any
    log_temperature: jax.Array
    actor_opt_state: optax.OptState
    critic_opt_state: optax.OptState
    temperature_opt_state: optax.OptState
    step: jax.Array  # update() calls so far (drives the policy delay)


def gradient_update(loss_fn: Callable, optimizer: optax.GradientTransformation, params, opt_state, *args,
                    axis: Optional[str] = None, name: str = "loss") -> tuple[Any, Any, Metrics]:
    """One optimiser step on `loss_fn(params, *args) -> (loss, aux metrics)`, gradients averaged
    over the mesh axis `axis` (None: one device). Returns (params, opt_state, aux plus
    `{name}_loss` and `{name}_grad_norm`)."""
    (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, *args)
    if axis is not None:
        grads = jax.lax.pmean(grads, axis)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    metrics = dict(aux, **{f"{name}_loss": loss, f"{name}_grad_norm": optax.global_norm(grads)})
    return optax.apply_updates(params, updates), opt_state, metrics


def every(period: int, step: jax.Array, fn: Callable, state):
    """`fn(state) -> (state, metrics)` on steps where `step % period == 0`, else `state` unchanged;
    the metrics come back `Gated` (weight 1 where `fn` ran, 0 where skipped), so the loop averages
    them over the steps that computed them. `fn` is traced once: the skip branch takes the
    metrics' shapes from the same (cached) trace instead of tracing `fn` again."""
    def ran(s):
        s, metrics = fn(s)
        return s, {k: Gated(value=v, weight=jnp.ones((), v.dtype)) for k, v in metrics.items()}

    if period <= 1:
        return ran(state)
    ran = jax.jit(ran)
    metric_shapes = jax.eval_shape(ran, state)[1]

    def skip(s):
        return s, jax.tree_util.tree_map(lambda m: jnp.zeros(m.shape, m.dtype), metric_shapes)

    return jax.lax.cond(step % period == 0, ran, skip, state)


class SoftActorCriticAgent(Agent):
    """The shared update; subclasses give `Config`, `State`, `make_policy` and `actor_loss`."""

    Config = SoftActorCriticConfig
    State = SoftActorCriticState
    follows_recipe = True  # config.build applies the shared recipe (mjx_smfp/recipes.py) to its fields

    def __init__(self, config: SoftActorCriticConfig, obs_size: int, action_size: int, axis: Optional[str] = None):
        super().__init__(config, obs_size, action_size, axis)
        self.value_head = critic_lib.ValueHead(kind=config.critic_type, num_atoms=config.num_atoms,
                                               value_min=config.value_min or 0.0, value_max=config.value_max or 0.0,
                                               hl_gauss_sigma=config.hl_gauss_sigma)
        self.critic_net = TwinQ(hidden=tuple(config.critic_hidden), num_heads=config.num_q_heads,
                                layer_norm=config.critic_layer_norm, activation=config.activation,
                                dtype=MATMUL_DTYPES[config.matmul_dtype], num_atoms=self.value_head.num_outputs)
        self.policy = self.make_policy()
        c = config
        self.actor_optimizer, self.critic_optimizer = (
            make_optimizer(lr, c.weight_decay, c.adam_b1, c.adam_b2, c.grad_clip) for lr in (c.actor_lr, c.critic_lr))
        self.temperature_optimizer, self.temperature_loss = temperature_lib.rule(config)
        self.target_entropy = temperature_lib.resolve_target_entropy(
            config, action_size, default=self.default_target_entropy(config, action_size))

    # -- what subclasses provide -------------------------------------------------------------
    def make_policy(self):
        """The policy for (obs_size, action_size, config): called once, at construction; its networks
        from `self.config.actor_network()`."""
        raise NotImplementedError

    def actor_loss(self, actor_params, state, batch: Transition, temperature: jax.Array, rng: jax.Array):
        """(loss, metrics) of the actor at `actor_params`; metrics must include "entropy"."""
        raise NotImplementedError

    @staticmethod
    def default_target_entropy(config, action_size: int) -> Optional[float]:
        """The agent's own target entropy when none of TARGET_ENTROPY_FIELDS is set (None: -|A|)."""
        return None

    def extra_state(self, actor_params) -> dict:
        """Initial values of the fields a subclass adds to `State`."""
        return {}

    # -- shared pieces -------------------------------------------------------------------------
    def q(self, params, obs, action) -> jax.Array:
        """Q-values of every head, [num_q_heads, B]: the expectation of a distributional head."""
        return self.value_head.expectation(self.critic_net.apply(params, obs, action))

    def actor_q(self, params, obs, action) -> jax.Array:
        """The Q every actor objective (and Q-scored sampling) sees, [B]: the heads' expectations
        combined per `q_actor_combine` (min, or mean as in FastSAC)."""
        return critic_lib.combine_heads(self.q(params, obs, action), self.config.q_actor_combine)

    def temperature(self, state) -> jax.Array:
        return jnp.exp(state.log_temperature)

    def entropy_in_backup(self) -> bool:
        return self.config.entropy_in_backup

    def init(self, rng: jax.Array):
        c = self.config
        k_actor, k_critic = jax.random.split(rng)
        actor_params = self.policy.init(k_actor, self.obs_size)
        critic_params = self.critic_net.init(k_critic, jnp.zeros((1, self.obs_size)), jnp.zeros((1, self.action_size)))
        log_temperature = jnp.asarray(math.log(max(c.init_temperature, 1e-30)), jnp.float32)
        return self.State(
            actor_params=actor_params,
            critic_params=critic_params,
            target_critic_params=critic_params,
            log_temperature=log_temperature,
            actor_opt_state=self.actor_optimizer.init(actor_params),
            critic_opt_state=self.critic_optimizer.init(critic_params),
            temperature_opt_state=self.temperature_optimizer.init(log_temperature),
            step=jnp.zeros((), jnp.int32),
            **self.extra_state(actor_params),
        )

    def act(self, state, obs: jax.Array, rng: jax.Array) -> jax.Array:
        return self.policy.sample(state.actor_params, obs, rng)[0]

    def eval_act(self, state, obs: jax.Array) -> jax.Array:
        return self.policy.deterministic(state.actor_params, obs)

    def policy_state(self, state, keep: tuple[str, ...] = ("actor_params",)):
        """`state` with only the fields `eval_act` reads (the rest None): what a policy file holds."""
        return state.replace(**{f.name: None for f in dataclasses.fields(state) if f.name not in keep})

    def critic_step(self, state, batch: Transition, temperature: jax.Array, rng: jax.Array):
        """One critic step on the soft backup with a' ~ pi(.|s') (critic.py: the value head's
        target and loss on the network's raw output), then the Polyak target."""
        c = self.config
        next_action, next_logp = self.policy.sample(state.actor_params, batch.next_obs, rng)
        backup_logp = next_logp + self.target_entropy if c.entropy_backup_centred else next_logp
        target = critic_lib.soft_target(state.target_critic_params, batch, next_action, backup_logp, temperature,
                                        c.gamma, self.critic_net.apply, self.entropy_in_backup(), self.value_head,
                                        c.q_target_combine)
        params, opt_state, metrics = gradient_update(
            critic_lib.critic_loss, self.critic_optimizer, state.critic_params, state.critic_opt_state, batch,
            target, self.critic_net.apply, self.value_head, axis=self.axis, name="critic")
        state = state.replace(critic_params=params, critic_opt_state=opt_state,
                              target_critic_params=critic_lib.polyak(state.target_critic_params, params, c.tau))
        if c.temperature_every_update:
            next_entropy = -jnp.mean(next_logp)
            state = self.temperature_step(state, next_entropy)
            metrics = dict(metrics, next_entropy=next_entropy)
        return state, metrics

    def temperature_step(self, state, entropy: jax.Array):
        """alpha toward the target entropy; unchanged (optimiser state too) when not learned."""
        if not self.config.learn_temperature:
            return state
        log_t, opt_state, _ = gradient_update(self.temperature_loss, self.temperature_optimizer, state.log_temperature,
                                              state.temperature_opt_state, entropy, self.target_entropy,
                                              axis=self.axis, name="temperature")
        return state.replace(log_temperature=log_t, temperature_opt_state=opt_state)

    def actor_step(self, state, batch: Transition, temperature: jax.Array, rng: jax.Array):
        """One actor step on `actor_loss`, then the temperature step."""
        params, opt_state, metrics = gradient_update(
            self.actor_loss, self.actor_optimizer, state.actor_params, state.actor_opt_state, state, batch,
            temperature, rng, axis=self.axis, name="actor")
        state = state.replace(actor_params=params, actor_opt_state=opt_state)
        if self.config.temperature_every_update:
            return state, metrics
        return self.temperature_step(state, metrics["entropy"]), metrics

    def update(self, state, batch: Transition, rng: jax.Array):
        k_critic, k_actor = jax.random.split(rng)
        temperature = self.temperature(state)
        state, metrics = self.critic_step(state, batch, temperature, k_critic)
        state, actor_metrics = every(self.config.policy_delay, state.step,
                                     lambda s: self.actor_step(s, batch, temperature, k_actor), state)
        state = state.replace(step=state.step + 1)
        return state, dict(metrics, **actor_metrics, temperature=self.temperature(state),
                           entropy_target=jnp.asarray(self.target_entropy, jnp.float32))

    def diagnostics(self, state, obs: jax.Array, rng: jax.Array) -> Metrics:
        """Checks of the policy on held-out states `obs` [S, obs] (normalised), DIAGNOSTIC_SAMPLES
        actions each: `knn_entropy`, the k-NN entropy of the actions per state (averaged over the
        states), beside `entropy_estimate`, the agent's own -E log pi on the same draws."""
        n, s = DIAGNOSTIC_SAMPLES, obs.shape[0]
        obs_n = jnp.broadcast_to(obs[None], (n,) + obs.shape).reshape(n * s, -1)
        actions, logp = self.policy.sample(state.actor_params, obs_n, rng)
        per_state = jnp.swapaxes(actions.reshape(n, s, -1), 0, 1)  # [S, n, d]
        return {"knn_entropy": jnp.mean(diagnostics.knn_entropy(per_state)), "entropy_estimate": -jnp.mean(logp)}
