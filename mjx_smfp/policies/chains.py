"""Multi-step generative policies made of Gaussian steps, the baselines SMFP is compared with
(docs/baselines.md): SAC Flow's noise-augmented K-step flow and DIME's diffusion sampler.

Both draw a pre-squash action y by a chain of K Gaussian steps from y_K-or-y_0 ~ N(0, I), each
step one call of a network f(s, y, t) on [s, y, emb(t)] (the time embedding is computed once
per step, not per sample), and return a = tanh(y). Because every step is Gaussian given the
previous one, the log-density of the sampled PATH is exact and cheap; each policy turns it
into its log pi estimate:

* `FlowChainPolicy` (SAC Flow, arXiv 2509.25756): y_{k+1} = y_k + dt v(s, y_k, t_k) + sigma_k xi_k,
  t_k = k / K, with v and log sigma_k from one network (Flow-G: dt v = sigmoid(g) (h - y_k)). log pi = log N(y_0) + sum_k log N(y_{k+1};
  y_k + dt v, sigma_k^2) - sum log(1 - a^2): the joint density of the noise-augmented path,
  which SAC Flow uses as the policy's log-likelihood.
* `DiffusionPolicy` (DIME, arXiv 2502.02316): a fixed variance-preserving noising process
  q(y_n | y_{n-1}) = N(sqrt(1 - b_n) y_{n-1}, b_n I) and a learned denoising sampler
  p(y_{n-1} | y_n) = N(sqrt(1 - b_n) y_n + b_n f(s, y_n, t_n), b_n I) from y_N ~ N(0, I).
  log pi_hat = log p(y_{0:N}) - log q(y_{1:N} | y_0) - sum log(1 - a^2); its expectation
  upper-bounds E log pi(y_0) (KL of the path measures >= 0), so -E log pi_hat is DIME's
  lower bound on the entropy.

Deterministic actions (evaluation) run the same chain with every noise set to 0.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mjx_smfp.networks import ACTIVATIONS, MLP, InputLayer, TimeEmbedding
from mjx_smfp.policies.densities import standard_normal_logpdf, tanh_log_det
from mjx_smfp.validation import check

LOG_STD_MIN = -5.0
LOG_STD_MAX = 0.0
VELOCITIES = ("mlp", "gated")


class StepNetwork(nn.Module):
    """f(s, y, t) -> [B, out] on [s, y, emb(t)], t of shape [1] (one time for the whole batch)."""

    hidden: Sequence[int]
    out: int
    time_embed_dim: int
    activation: str
    out_scale: float

    @nn.compact
    def __call__(self, obs, y, t):
        act = ACTIVATIONS[self.activation]
        h = act(InputLayer(self.hidden[0])(obs, y, TimeEmbedding(self.time_embed_dim)(t)))
        return MLP(hidden=tuple(self.hidden[1:]), out=self.out, activation=act,
                   kernel_init_scale_out=self.out_scale)(h)


class GaussianChain:
    """What both chains share: init, the noise draw, reparameterised and deterministic actions.
    A subclass gives `network`, `network_calls` and `_run(params, obs, start, noise) -> (y, log pi of y)`."""

    def init(self, rng: jax.Array, obs_size: int):
        return self.network.init(rng, jnp.zeros((1, obs_size)), jnp.zeros((1, self.action_size)), jnp.zeros((1,)))

    def noise(self, rng: jax.Array, batch: int) -> tuple[jax.Array, jax.Array]:
        """(start of the chain [B, d], per-step noises [steps, B, d]), all standard normal."""
        k0, k1 = jax.random.split(rng)
        d = self.action_size
        return jax.random.normal(k0, (batch, d)), jax.random.normal(k1, (self.network_calls, batch, d))

    def sample(self, params, obs: jax.Array, rng: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Reparameterised action in (-1, 1) and the chain's log pi estimate of it, [B]."""
        y, logp = self._run(params, obs, *self.noise(rng, obs.shape[0]))
        return jnp.tanh(y), logp - tanh_log_det(y)

    def deterministic(self, params, obs: jax.Array) -> jax.Array:
        """The chain with every noise set to 0."""
        start, noise = jax.tree_util.tree_map(jnp.zeros_like, self.noise(jax.random.PRNGKey(0), obs.shape[0]))
        return jnp.tanh(self._run(params, obs, start, noise)[0])


@dataclasses.dataclass(frozen=True)
class FlowChainConfig:
    """SAC Flow's K-step noise-augmented flow. Velocity: the GRU-style gated step (Flow-G, the
    default: the plain MLP velocity did not learn the bandit, as the paper reports for plain
    flows) or a plain MLP; the Transformer variant (Flow-T) is not implemented (docs/baselines.md)."""

    flow_steps: int = 4  # K: network calls per action
    velocity: str = "gated"  # "gated": y moves sigmoid(g) of the way to h, GRU-style (Flow-G) | "mlp": v = f(s, y, t)
    time_embed_dim: int = 32  # width of the step-time embedding
    flow_noise_init: float = 0.1  # initial per-step noise sigma_k (learned, state- and step-dependent)
    out_scale: float = 0.01  # variance scale of the output layer: v ~ 0 at init

    def __post_init__(self):
        check(self, "flow_steps", "time_embed_dim", at_least=1)
        check(self, "flow_noise_init", "out_scale", positive=True)
        check(self, "velocity", choices=VELOCITIES)


@dataclasses.dataclass(frozen=True)
class FlowChainPolicy(GaussianChain):
    """SAC Flow's policy: y_0 ~ N(0, I), K noisy Euler steps of a learned velocity, a = tanh(y_K)."""

    action_size: int
    hidden: Sequence[int] = (256, 256, 256)
    config: FlowChainConfig = FlowChainConfig()
    activation: str = "relu"  # hidden activation of the velocity network (the agent's `activation`)

    @property
    def network(self) -> StepNetwork:
        c = self.config
        outputs = (3 if c.velocity == "gated" else 2) * self.action_size  # [gate,] velocity/candidate, log sigma
        return StepNetwork(tuple(self.hidden), outputs, c.time_embed_dim, self.activation, c.out_scale)

    @property
    def network_calls(self) -> int:
        return self.config.flow_steps

    def _run(self, params, obs, y0, noise):
        """The chain from y_0 with step noises `noise` [K, B, d]; returns (y_K, sum of step log-densities)."""
        k = self.config.flow_steps
        log_init = math.log(self.config.flow_noise_init)

        def step(carry, xs):
            y, logp = carry
            t, xi = xs
            out = self.network.apply(params, obs, y, t[None])
            if self.config.velocity == "gated":  # the step moves y a gated fraction of the way to h
                gate, h, raw = jnp.split(out, 3, axis=-1)
                v = jax.nn.sigmoid(gate) * (h - y) * k
            else:
                v, raw = jnp.split(out, 2, axis=-1)
            log_std = jnp.clip(log_init + raw, LOG_STD_MIN, LOG_STD_MAX)
            y = y + v / k + jnp.exp(log_std) * xi
            return (y, logp + standard_normal_logpdf(xi) - jnp.sum(log_std, axis=-1)), None

        times = jnp.arange(k, dtype=y0.dtype) / k
        (y, logp), _ = jax.lax.scan(step, (y0, standard_normal_logpdf(y0)), (times, noise))
        return y, logp


@dataclasses.dataclass(frozen=True)
class DiffusionConfig:
    """DIME's diffusion sampler: N denoising steps under a variance-preserving schedule."""

    diffusion_steps: int = 16  # N: network calls per action
    time_embed_dim: int = 32  # width of the step-time embedding
    beta_min: float = 0.1  # VP schedule b(t) = beta_min + t (beta_max - beta_min), t in [0, 1]
    beta_max: float = 20.0  # noise rate at t = 1 of the VP schedule (>= beta_min)
    out_scale: float = 0.01  # variance scale of the drift's output layer: f ~ 0 at init

    def __post_init__(self):
        check(self, "diffusion_steps", "time_embed_dim", at_least=1)
        check(self, "beta_min", "beta_max", "out_scale", positive=True)
        if self.beta_max < self.beta_min:
            raise ValueError(f"beta_max={self.beta_max} must be >= beta_min={self.beta_min}")


@dataclasses.dataclass(frozen=True)
class DiffusionPolicy(GaussianChain):
    """DIME's policy: y_N ~ N(0, I), N learned Gaussian denoising steps, a = tanh(y_0)."""

    action_size: int
    hidden: Sequence[int] = (256, 256, 256)
    config: DiffusionConfig = DiffusionConfig()
    activation: str = "relu"  # hidden activation of the drift network (the agent's `activation`)

    @property
    def network(self) -> StepNetwork:
        c = self.config
        return StepNetwork(tuple(self.hidden), self.action_size, c.time_embed_dim, self.activation, c.out_scale)

    @property
    def network_calls(self) -> int:
        return self.config.diffusion_steps

    def betas(self) -> np.ndarray:
        """b_1..b_N: the per-step noise of the discretised VP SDE, 1 - exp(-integral of b(t) over step n)."""
        c = self.config
        t = np.linspace(0.0, 1.0, c.diffusion_steps + 1)
        integral = c.beta_min * t + 0.5 * (c.beta_max - c.beta_min) * t ** 2
        return (1.0 - np.exp(-np.diff(integral))).astype(np.float32)

    def _run(self, params, obs, y_last, noise):
        """Denoise from y_N with step noises `noise` [N, B, d]; returns (y_0, log p(y_{0:N}) - log q(y_{1:N}|y_0))."""
        betas = jnp.asarray(self.betas())
        times = jnp.arange(1, self.config.diffusion_steps + 1, dtype=y_last.dtype) / self.config.diffusion_steps

        def step(carry, xs):
            y, log_ratio = carry  # y = y_n
            beta, t, xi = xs
            keep, scale = jnp.sqrt(1.0 - beta), jnp.sqrt(beta)
            prev = keep * y + beta * self.network.apply(params, obs, y, t[None]) + scale * xi  # y_{n-1}
            forward = (y - keep * prev) / scale  # y_n given y_{n-1} under the noising process
            # Both transitions have covariance b_n I: their log-normaliser terms cancel in the ratio.
            return (prev, log_ratio + standard_normal_logpdf(xi) - standard_normal_logpdf(forward)), None

        (y0, log_ratio), _ = jax.lax.scan(step, (y_last, standard_normal_logpdf(y_last)),
                                          (betas, times, noise), reverse=True)
        return y0, log_ratio
