"""The Stochastic MeanFlow policy (SMFP.md §3-4): one network call per action.

    eps ~ N(0, I_d), xi ~ N(0, I_d)
    x = eps - u_theta(s, eps, r=0, t=1)          # one-step MeanFlow map g_s(eps)
    y = x + sigma_theta(s) * xi                   # the stochastic boundary
    a = tanh(y)                                   # action in (-1, 1)^d

u_theta(s, z, r, t) is an MLP on [s, z, emb(t), emb(t - r)] with sinusoidal + MLP
embeddings of t and of the interval length t - r; for the one-step map the (constant)
embeddings are computed once per batch, so a draw costs about one Gaussian-actor call.
sigma is a small state-dependent head ("state"), a learnable per-dimension log-std
("per_dim"), or exactly 0 ("zero": the "without entropy" ablation); both learnable forms
start at `sigma_init` (~0.1), and log sigma is clipped to the actor network config's
[log_std_min, log_std_max] (the agent's fields of those names, the same two that bound the
Gaussian actor).
`flow_init_scale` c adds the fixed linear term (1 - c) z to u, so the initial one-step map
is x ~ c * eps (c = 1: x ~ eps, a very broad initial policy; c < 1: a narrower one).

The policy knows how to sample, score (entropy surrogates, §4) and pick best-of-N; the
objective lives in agents/smfp.py, the MeanFlow loss in mjx_smfp/meanflow.py.

Entropy surrogates, i.e. what `log_prob` returns as log pi_hat(a|s):
* "conditional": given eps the action is a squashed Gaussian, so
      log pi_hat = log N(xi; 0, I) - sum log sigma - sum log(1 - a^2),
  whose expectation is -H(A | eps) >= -H(A): the surrogate entropy is a LOWER bound
  (H(Y) >= H(Y | eps)). Free, but it carries no gradient into the flow except via tanh.
* "jacobian": the log-density of x = g_s(eps) by change of variables,
      log pi_hat = log N(eps; 0, I) - log|det dg_s/deps| - sum log(1 - a^2),
  with the d x d Jacobian from `jax.jacfwd` (d forward-mode passes) and `slogdet`.
  For an invertible g_s, y = x + independent noise gives H(Y) >= H(X): a lower bound, tight
  as sigma -> 0, and it carries entropy gradient into the flow. A folding (non-injective)
  g_s counts the density of one preimage instead of the sum over all of them, so it
  UNDER-counts density and OVER-estimates the entropy: no bound there (x = sin(3 eps):
  tested). The tanh term is evaluated at y = x + sigma xi, so sigma does get gradient from it.
* "none": log pi_hat = 0 (no entropy; for the sigma = 0 ablation).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

from mjx_smfp import meanflow as mf
from mjx_smfp.networks import INPUT_LAYERS, MLP, ActorNetworkConfig, InputLayer, TimeEmbedding
from mjx_smfp.policies.densities import (normal_pair, squashed_gaussian_log_prob, standard_normal_logpdf,
                                        tanh_log_det)
from mjx_smfp.validation import check

LOG_SIGMA_MAX = 1.0  # default upper bound of log sigma (SMFP.Config.log_std_max; the Gaussian actor's is 2)
SIGMA_MODES = ("per_dim", "state", "zero")
ENTROPY_SURROGATES = ("conditional", "jacobian", "none")


@dataclasses.dataclass(frozen=True)
class MeanFlowConfig:
    """Every option of the SMFP actor (SMFP.md §3-4), validated once, here; `SMFP.Config.policy`
    nests one. What every agent's networks share (widths, hidden activation, matmul dtype, log sigma
    bounds) are fields of the agent's config, passed to `MeanFlowPolicy` as its `network_config`."""

    time_embed_dim: int = 64  # width of the t and (t - r) embeddings
    sigma_mode: str = "state"  # "state" head | "per_dim" | "zero" (no-entropy ablation); docs/smfp.md
    sigma_init: float = 0.1  # initial boundary noise sigma
    sigma_hidden: int = 64  # width of the state sigma head (small: it sees only s and is pure overhead)
    input_layer: str = "concat"  # first layer of u_theta: "concat" (one Dense) | "split" (per input group)
    flow_init_scale: float = 0.5  # initial map x ~ scale * eps (u gets a fixed (1 - scale) z term)
    out_scale: float = 0.01  # variance scale of u's output layer: u ~ 0 at init
    entropy_surrogate: str = "conditional"  # log pi_hat: "conditional" | "jacobian" | "none"

    def __post_init__(self):
        check(self, "sigma_mode", choices=SIGMA_MODES)
        check(self, "entropy_surrogate", choices=ENTROPY_SURROGATES)
        check(self, "input_layer", choices=INPUT_LAYERS)
        if self.sigma_mode == "zero" and self.entropy_surrogate == "conditional":
            raise ValueError("sigma_mode='zero' has no conditional entropy: set entropy_surrogate to "
                             "'jacobian' or 'none'")
        check(self, "time_embed_dim", "sigma_hidden", at_least=1)
        check(self, "sigma_init", "flow_init_scale", "out_scale", positive=True)


class MeanFlowNetwork(nn.Module):
    """u_theta(s, z, r, t) -> [B, d] and log sigma_theta(s) -> [B, d]; r, t of shape [B] or [1].
    Matmuls compute in `network_config.dtype` (None: float32); u and log sigma are returned in float32."""

    action_size: int
    network_config: ActorNetworkConfig  # widths, hidden activation (u_theta and the sigma head), dtype, bounds
    config: MeanFlowConfig

    def setup(self):
        c, net = self.config, self.network_config
        self.time_embed = TimeEmbedding(c.time_embed_dim, dtype=net.dtype)
        self.gap_embed = TimeEmbedding(c.time_embed_dim, dtype=net.dtype)
        self.inputs = InputLayer(net.hidden[0], c.input_layer, dtype=net.dtype)
        self.trunk = MLP(hidden=net.hidden[1:], out=self.action_size, activation=net.act,
                         kernel_init_scale_out=c.out_scale, dtype=net.dtype)
        if c.sigma_mode == "per_dim":
            self.raw_log_sigma = self.param("log_sigma", nn.initializers.zeros, (self.action_size,))
        elif c.sigma_mode == "state":
            self.sigma_head = MLP(hidden=(c.sigma_hidden,), out=self.action_size, activation=net.act,
                                  kernel_init_scale_out=1e-4, dtype=net.dtype)

    def __call__(self, obs, z, r, t):
        c = self.config
        h = self.network_config.act(self.inputs(obs, z, self.time_embed(t), self.gap_embed(t - r)))
        u = self.trunk(h)
        if c.flow_init_scale != 1.0:  # a fixed linear part of u; the MLP learns the residual
            u = u + (1.0 - c.flow_init_scale) * z
        return u

    def log_sigma(self, obs):
        c = self.config
        shape = obs.shape[:-1] + (self.action_size,)
        if c.sigma_mode == "zero":
            return jnp.full(shape, -jnp.inf, obs.dtype)
        raw = self.raw_log_sigma if c.sigma_mode == "per_dim" else self.sigma_head(obs)
        net = self.network_config
        return jnp.clip(math.log(c.sigma_init) + jnp.broadcast_to(raw, shape), net.log_std_min, net.log_std_max)

    def init_all(self, obs, z, r, t):
        return self(obs, z, r, t), self.log_sigma(obs)


@struct.dataclass
class PolicySample:
    """Every intermediate of one reparameterised draw (all [B, d])."""

    eps: jax.Array  # flow noise
    xi: jax.Array  # boundary noise
    x: jax.Array  # one-step MeanFlow output g_s(eps)
    log_sigma: jax.Array  # log sigma(s) (-inf for sigma_mode "zero")
    y: jax.Array  # pre-squash action x + sigma * xi
    action: jax.Array  # tanh(y)


@dataclasses.dataclass(frozen=True)
class MeanFlowPolicy:
    """Static, hashable description of the SMFP actor (jit-closable, like TanhGaussianPolicy).
    The agent passes what its config shares with every agent as `network_config` (its
    `actor_network()`: widths, hidden activation, matmul dtype and the log sigma bounds)."""

    action_size: int
    network_config: ActorNetworkConfig = ActorNetworkConfig(log_std_max=LOG_SIGMA_MAX)
    config: MeanFlowConfig = MeanFlowConfig()
    network_calls = 1  # network evaluations per action: the one-step map

    @property
    def network(self) -> MeanFlowNetwork:
        return MeanFlowNetwork(action_size=self.action_size, network_config=self.network_config, config=self.config)

    def init(self, rng: jax.Array, obs_size: int):
        z = jnp.zeros((1, self.action_size))
        one = jnp.ones((1,))
        return self.network.init(rng, jnp.zeros((1, obs_size)), z, one * 0, one, method=MeanFlowNetwork.init_all)

    # -- the MeanFlow field and the one-step map ---------------------------------------
    def field(self, params, obs: jax.Array) -> mf.Field:
        """u_fn(z, r, t) = u_theta(obs, z, r, t), the field the MeanFlow loss trains."""
        return lambda z, r, t: self.network.apply(params, obs, z, r, t)

    def flow(self, params, obs: jax.Array, eps: jax.Array) -> jax.Array:
        """x = g_s(eps) = eps - u_theta(s, eps, 0, 1): one network call."""
        return mf.one_step_sample(self.field(params, obs), eps)

    def log_sigma(self, params, obs: jax.Array) -> jax.Array:
        return self.network.apply(params, obs, method=MeanFlowNetwork.log_sigma)

    def forward(self, params, obs: jax.Array, eps: jax.Array, xi: jax.Array) -> PolicySample:
        """The whole map (eps, xi) -> action for given noise (shared-noise KL uses this)."""
        x = self.flow(params, obs, eps)
        log_sigma = self.log_sigma(params, obs)
        y = x if self.config.sigma_mode == "zero" else x + jnp.exp(log_sigma) * xi
        return PolicySample(eps=eps, xi=xi, x=x, log_sigma=log_sigma, y=y, action=jnp.tanh(y))

    def noise(self, rng: jax.Array, batch_shape) -> tuple[jax.Array, jax.Array]:
        """(eps, xi), independent N(0, I) of shape batch_shape + (d,), drawn together (normal_pair)."""
        return normal_pair(rng, tuple(batch_shape) + (self.action_size,))

    def draw(self, params, obs: jax.Array, rng: jax.Array) -> PolicySample:
        eps, xi = self.noise(rng, obs.shape[:-1])
        return self.forward(params, obs, eps, xi)

    # -- entropy surrogates (SMFP.md §4) ----------------------------------------------
    def log_prob(self, params, obs: jax.Array, sample: PolicySample, surrogate: Optional[str] = None) -> jax.Array:
        """log pi_hat(a|s) of a draw under the chosen entropy surrogate; [B]."""
        surrogate = surrogate or self.config.entropy_surrogate
        if surrogate == "conditional":
            return conditional_log_prob(sample.xi, sample.log_sigma, sample.y)
        if surrogate == "jacobian":
            return jacobian_log_prob(lambda o, e: self.flow(params, o, e), obs, sample.eps, sample.y)
        if surrogate == "none":
            return jnp.zeros(sample.y.shape[:-1], sample.y.dtype)
        raise ValueError(f"entropy_surrogate {surrogate!r} is not one of {ENTROPY_SURROGATES}")

    def sample(self, params, obs: jax.Array, rng: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Reparameterised action in (-1, 1) and its surrogate log pi_hat(a|s), [B] (SAC-compatible)."""
        s = self.draw(params, obs, rng)
        return s.action, self.log_prob(params, obs, s)

    def deterministic(self, params, obs: jax.Array) -> jax.Array:
        """eps = 0, xi = 0: a = tanh(-u_theta(s, 0, 0, 1))."""
        zeros = jnp.zeros(obs.shape[:-1] + (self.action_size,), obs.dtype)
        return jnp.tanh(self.flow(params, obs, zeros))

    def best_of_n(self, params, obs: jax.Array, rng: jax.Array, score_fn: Callable, num_samples: int,
                  stochastic: bool = True) -> jax.Array:
        """argmax over `num_samples` draws per state of score_fn(obs, actions) -> [N*B] (e.g. min Q).

        `stochastic=False` draws eps but sets xi = 0 (best-of-N evaluation)."""
        b = obs.shape[0]
        eps, xi = self.noise(rng, (num_samples, b))
        if not stochastic:
            xi = jnp.zeros_like(xi)
        obs_n = jnp.broadcast_to(obs[None], (num_samples,) + obs.shape).reshape(num_samples * b, -1)
        s = self.forward(params, obs_n, eps.reshape(num_samples * b, -1), xi.reshape(num_samples * b, -1))
        scores = score_fn(obs_n, s.action).reshape(num_samples, b)
        best = jnp.argmax(scores, axis=0)
        actions = s.action.reshape(num_samples, b, -1)
        return jnp.take_along_axis(actions, best[None, :, None], axis=0)[0]


def conditional_log_prob(xi: jax.Array, log_sigma: jax.Array, y: jax.Array) -> jax.Array:
    """log N(xi) - sum log sigma - sum log(1 - tanh(y)^2): log-density of a given eps (§4)."""
    return squashed_gaussian_log_prob(xi, log_sigma, y)


def jacobian_log_prob(flow_fn: Callable, obs: jax.Array, eps: jax.Array, y: jax.Array) -> jax.Array:
    """log N(eps) - log|det d flow_fn(s, eps)/d eps| - sum log(1 - tanh(y)^2), per row (§4).

    `flow_fn(obs [B, o], eps [B, d]) -> x [B, d]` acts row-wise; the per-row d x d Jacobian
    comes from `jax.jacfwd` under `vmap` (d forward-mode passes of the network).
    """

    def single(o, e):
        return flow_fn(o[None], e[None])[0]

    jac = jax.vmap(jax.jacfwd(single, argnums=1))(obs, eps)  # [B, d, d]
    _, log_abs_det = jnp.linalg.slogdet(jac)
    return standard_normal_logpdf(eps) - log_abs_det - tanh_log_det(y)
