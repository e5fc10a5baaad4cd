"""Multi-step generative policies made of Gaussian steps, the baselines SMFP is compared with, as
their authors wrote them (docs/baselines.md cites the reference code line by line): SAC Flow's
noise-augmented K-step flow and DIME's diffusion sampler.

Both draw a pre-squash action y by a chain of Gaussian steps, each step one call of a network
f(s, y, t) on [s, y, emb(t)] (the time embedding is computed once per step, not per sample), and
return a = tanh(y). Because every step is Gaussian given the previous one, the log-density of the
sampled PATH is exact and cheap; each policy turns it into its log pi estimate:

* `FlowChainPolicy` (SAC Flow-G, arXiv 2509.25756; Elessar123/SAC-FLOW `SAC_flow_gru_jax.py`):
  y_0 ~ N(0, I), y_{k+1} = y_k + dt v_k + sigma(s) xi_k with dt = 1/K, t_k = k/K, the gated
  velocity v_k = z (h - y_k), z = sigmoid(g) (gate bias +5 at init: z ~ 0.993) and ONE
  state-dependent sigma(s) shared by all K steps. log pi = log N(y_0) + sum_k log N(y_{k+1};
  y_k + dt v_k, sigma(s)^2) - sum log(1 - a^2): the joint density of the noise-augmented path.
  Sharing sigma(s) is what keeps this honest: noise injected early and then contracted away is
  noise of the same size as the noise that reaches the action, so the estimate cannot be raised
  without raising the action's real spread (per-step sigma_k could: docs/baselines.md). It is
  still the PATH's entropy, H(a) + H(y_0..y_{K-1} | y_K): a trained flow that contracts toward a
  mode forgets y_0 and the non-final noises, and the estimate then reads below H(a) by their
  entropy (3.3 nats below on the trained bandit; docs/baselines.md). Opt-in, ours:
  `entropy_estimator="marginal"` replaces it by a lower bound on H(a) itself from M more chains.
* `DiffusionPolicy` (DIME, arXiv 2502.02316; ALRhub/DIME's DIS sampler): x_0 ~ N(0, s0^2 I)
  (s0 = 2.5), N Euler-Maruyama steps of the overdamped Langevin SDE toward the prior with a
  learned control f:  x_{n+1} = x_n + eta_n (-x_n / s0^2 + f(s, x_n, t_n)) + sqrt(2 eta_n) xi_n,
  eta_n = dt_n / gamma, LEARNED step sizes dt_n = softplus(dt) c(n) (c: a cosine schedule that
  shrinks toward the last step) and a learned per-dimension friction gamma. The noising process
  is the same SDE without control, run backward: q(x_n | x_{n+1}) = N(x_{n+1} - eta_n x_{n+1} /
  s0^2, 2 eta_n). log pi_hat = log p(x_{0:N}) - log q(x_{0:N-1} | x_N) - sum log(1 - a^2); its
  expectation upper-bounds E log pi(x_N) (KL of the path measures >= 0), so -E log pi_hat is
  DIME's lower bound on the entropy.

Deterministic actions (evaluation) run the same chain with every noise set to 0.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mjx_smfp.networks import MLP, ActorNetworkConfig, InputLayer, TimeEmbedding, to_float32
from mjx_smfp.policies.densities import standard_normal_logpdf, tanh_log_det
from mjx_smfp.validation import check

VELOCITIES = ("mlp", "gated")
ENTROPY_ESTIMATORS = ("path", "marginal")
# DIME's cosine step-size schedule c(n) (reference: diffusion/common/scheduler.py get_cosine_schedule,
# configs/sampler/dt_schedule/cosine.yaml): floor, offset s and power.
COSINE_MIN, COSINE_OFFSET, COSINE_POWER = 0.001, 0.008, 2.0


def inverse_softplus(x: float) -> float:
    """The raw value whose softplus is x > 0 (how the reference stores its positive parameters)."""
    return float(x + math.log(-math.expm1(-x)))


class StepNetwork(nn.Module):
    """f(s, y, t) -> [B, out] on [s, y, emb(t)], t of shape [1] (one time for the whole batch), its
    widths, hidden activation and matmul dtype from `network_config` (outputs in float32).
    With `gate_bias` set it returns (gate logits, f): a second output head on the same trunk with a
    zero kernel and this bias, so the gate starts at sigmoid(gate_bias) for every input."""

    network_config: ActorNetworkConfig
    out: int
    time_embed_dim: int
    out_scale: float
    gate_bias: Optional[float] = None

    @nn.compact
    def __call__(self, obs, y, t):
        net = self.network_config
        embedding = TimeEmbedding(self.time_embed_dim, dtype=net.dtype)(t)
        h = net.act(InputLayer(net.hidden[0], dtype=net.dtype)(obs, y, embedding))
        for width in net.hidden[1:]:
            h = net.act(nn.Dense(width, dtype=net.dtype)(h))
        init = nn.initializers.variance_scaling(self.out_scale, "fan_avg", "uniform")
        out = to_float32(nn.Dense(self.out, kernel_init=init, dtype=net.dtype)(h), net.dtype)
        if self.gate_bias is None:
            return out
        gate = nn.Dense(self.out, kernel_init=nn.initializers.zeros, bias_init=nn.initializers.constant(self.gate_bias),
                        dtype=net.dtype, name="gate")(h)
        return to_float32(gate, net.dtype), out


class GaussianChain:
    """What both chains share: the noise draw, reparameterised and deterministic actions.
    A subclass gives `init`, `network_calls` and `_run(params, obs, start, noise) -> (y, log pi of y)`."""

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
    default, as the reference's from-scratch script) or a plain MLP (the paper's naive SAC Flow);
    the Transformer variant (Flow-T) is not implemented (docs/baselines.md)."""

    flow_steps: int = 4  # K: network calls per action (Euler step dt = 1/K)
    velocity: str = "gated"  # "gated": v = sigmoid(g) (h - y), GRU-style (Flow-G) | "mlp": v = f(s, y, t)
    time_embed_dim: int = 32  # width of the step-time embedding
    gate_bias: float = 5.0  # initial gate logit g (zero kernel): the gate starts at sigmoid(5) ~ 0.993
    out_scale: float = 0.01  # variance scale of the velocity / candidate output layer: small at init
    entropy_estimator: str = "path"  # log pi: "path" (authors': the path density) | "marginal" (ours: an H(a) bound)
    marginal_chains: int = 8  # M: more chains per state behind the "marginal" estimate (it costs M + 1 chains)

    def __post_init__(self):
        check(self, "flow_steps", "time_embed_dim", at_least=1)
        check(self, "marginal_chains", at_least=1)
        check(self, "out_scale", positive=True)
        check(self, "velocity", choices=VELOCITIES)
        check(self, "entropy_estimator", choices=ENTROPY_ESTIMATORS)
        check(self, "gate_bias", finite=True)


class StateNoise(nn.Module):
    """log sigma(s) of SAC Flow: a ReLU MLP on the state alone (the reference's; widths and matmul
    dtype from `network_config`), squashed into [log_std_min, log_std_max] by a tanh."""

    network_config: ActorNetworkConfig
    out: int

    @nn.compact
    def __call__(self, obs):
        net = self.network_config
        return net.bound_log_std(MLP(hidden=net.hidden, out=self.out, dtype=net.dtype)(obs))


@dataclasses.dataclass(frozen=True)
class FlowChainPolicy(GaussianChain):
    """SAC Flow's policy: y_0 ~ N(0, I), K noisy Euler steps of a learned velocity with one noise
    scale sigma(s) for all steps, a = tanh(y_K). Params: {"velocity": ..., "log_std": ...}."""

    action_size: int
    network_config: ActorNetworkConfig = ActorNetworkConfig()  # the agent's actor_network(): log sigma(s)'s bounds too
    config: FlowChainConfig = FlowChainConfig()

    @property
    def network(self) -> StepNetwork:
        c = self.config
        gate_bias = c.gate_bias if c.velocity == "gated" else None
        return StepNetwork(self.network_config, self.action_size, c.time_embed_dim, c.out_scale, gate_bias)

    @property
    def noise_network(self) -> StateNoise:
        return StateNoise(self.network_config, self.action_size)

    @property
    def network_calls(self) -> int:
        """Velocity evaluations per action (the state-only sigma(s) network runs once more per action)."""
        return self.config.flow_steps

    def init(self, rng: jax.Array, obs_size: int):
        k_velocity, k_noise = jax.random.split(rng)
        obs = jnp.zeros((1, obs_size))
        return {"velocity": self.network.init(k_velocity, obs, jnp.zeros((1, self.action_size)), jnp.zeros((1,))),
                "log_std": self.noise_network.init(k_noise, obs)}

    def log_std(self, params, obs: jax.Array) -> jax.Array:
        """log sigma(s), [B, d]: the one noise scale of every step."""
        return self.noise_network.apply(params["log_std"], obs)

    def _run(self, params, obs, y0, noise):
        """The chain from y_0 with step noises `noise` [K, B, d]; returns (y_K, log-density of the path)."""
        k = self.config.flow_steps
        log_std = self.log_std(params, obs)
        std = jnp.exp(log_std)

        def step(carry, xs):
            y, logp = carry
            t, xi = xs
            out = self.network.apply(params["velocity"], obs, y, t[None])
            if self.config.velocity == "gated":  # v = z (h - y): y moves toward the candidate h
                gate, candidate = out
                v = jax.nn.sigmoid(gate) * (candidate - y)
            else:
                v = out
            y = y + v / k + std * xi
            return (y, logp + standard_normal_logpdf(xi)), None

        times = jnp.arange(k, dtype=y0.dtype) / k
        (y, logp), _ = jax.lax.scan(step, (y0, standard_normal_logpdf(y0)), (times, noise))
        return y, logp - k * jnp.sum(log_std, axis=-1)

    def sample(self, params, obs: jax.Array, rng: jax.Array) -> tuple[jax.Array, jax.Array]:
        """As GaussianChain.sample; with `entropy_estimator="marginal"` log pi is the marginal estimate."""
        if self.config.entropy_estimator == "path":
            return super().sample(params, obs, rng)
        k_action, k_others = jax.random.split(rng)
        start, noise = self.noise(k_action, obs.shape[0])
        y, _ = self._run(params, obs, start, noise)
        return jnp.tanh(y), self.marginal_log_density(params, obs, y, noise[-1], k_others) - tanh_log_det(y)

    def marginal_log_density(self, params, obs: jax.Array, y: jax.Array, last_noise: jax.Array,
                             rng: jax.Array) -> jax.Array:
        """Estimate of log p(y_K = y | s), [B], for the y a chain drew with last-step noise `last_noise`.

        The last step makes p(y_K | s) = E N(y_K; m(y_{K-1}), sigma(s)^2) over y_{K-1}. The estimate
        averages that kernel over the chain's own mean m_0 = y - sigma(s) last_noise and the means m_j
        of M more chains (their last step run without noise): log 1/(M+1) sum_{j=0..M} N(y; m_j, sigma^2).
        Keeping m_0 in the average makes -E of it a LOWER bound on H(y_K) (H(y_K) = H(sigma xi) +
        I(y_K; y_{K-1}), and this is the contrastive (InfoNCE) bound on I, at most log(M+1)), so an
        actor cannot raise it without raising H(y_K); leaving m_0 out would give an upper bound that an
        actor games by shrinking sigma. Unlike the path density it does not count the noise a
        contracting flow forgets (docs/baselines.md). Costs M more chains per log pi (acting drops them)."""
        m, b = self.config.marginal_chains, obs.shape[0]
        start, noise = self.noise(rng, m * b)
        others, _ = self._run(params, jnp.tile(obs, (m, 1)), start, noise.at[-1].set(0.0))
        log_std = self.log_std(params, obs)
        z = jnp.concatenate([last_noise[None], (y[None] - others.reshape(m, b, -1)) * jnp.exp(-log_std)[None]])
        return jax.nn.logsumexp(standard_normal_logpdf(z), axis=0) - math.log(m + 1) - jnp.sum(log_std, axis=-1)


@dataclasses.dataclass(frozen=True)
class DiffusionConfig:
    """DIME's diffusion sampler (the reference's DIS sampler, configs/sampler/dis.yaml): N Euler-
    Maruyama steps from N(0, prior_std^2 I) with learned step sizes and per-dimension friction."""

    diffusion_steps: int = 16  # N: network calls per action
    time_embed_dim: int = 32  # width of the step-time embedding
    prior_std: float = 2.5  # s0: std of the prior x_0 and stationary std of the uncontrolled SDE
    step_size_init: float = 0.1  # initial dt = softplus(raw); learned; step n uses dt * c(n), c cosine
    friction_init: float = 1.0  # initial per-dimension friction gamma (learned): eta_n = dt_n / gamma
    out_scale: float = 0.01  # variance scale of the control's output layer: f ~ 0 at init

    def __post_init__(self):
        check(self, "diffusion_steps", "time_embed_dim", at_least=1)
        check(self, "prior_std", "step_size_init", "friction_init", "out_scale", positive=True)


@dataclasses.dataclass(frozen=True)
class DiffusionPolicy(GaussianChain):
    """DIME's policy: x_0 ~ N(0, s0^2 I), N learned controlled Langevin steps, a = tanh(x_N).
    Params: {"control": network, "step_size": raw dt (scalar), "friction": raw gamma [d]}. Its step
    noise sqrt(2 eta_n) comes from the learned step sizes and friction, not from a log std, so the
    network config's log-std bounds do not apply here."""

    action_size: int
    network_config: ActorNetworkConfig = ActorNetworkConfig()  # the agent's actor_network() (the control network's)
    config: DiffusionConfig = DiffusionConfig()

    @property
    def network(self) -> StepNetwork:
        c = self.config
        return StepNetwork(self.network_config, self.action_size, c.time_embed_dim, c.out_scale)

    @property
    def network_calls(self) -> int:
        return self.config.diffusion_steps

    def init(self, rng: jax.Array, obs_size: int):
        c = self.config
        control = self.network.init(rng, jnp.zeros((1, obs_size)), jnp.zeros((1, self.action_size)), jnp.zeros((1,)))
        return {"control": control,
                "step_size": jnp.asarray(inverse_softplus(c.step_size_init), jnp.float32),
                "friction": jnp.full((self.action_size,), inverse_softplus(c.friction_init), jnp.float32)}

    def schedule(self) -> np.ndarray:
        """c(n), n = 0..N-1: the reference's cosine schedule, ~1 at the first step, shrinking toward
        the action (COSINE_MIN + a small cosine tail at n = N-1), as host constants."""
        n_steps = self.config.diffusion_steps
        t = (n_steps - np.arange(n_steps)) / n_steps
        offset = 1.0 + COSINE_OFFSET
        c = (1.0 - COSINE_MIN) * np.cos(0.5 * np.pi * (offset - t) / offset) ** COSINE_POWER + COSINE_MIN
        return c.astype(np.float32)

    def step_sizes(self, params) -> jax.Array:
        """eta_n = softplus(dt) c(n) / softplus(gamma), [N, d]: the drift step and half the noise
        variance of step n (noise std sqrt(2 eta_n))."""
        dt = jax.nn.softplus(params["step_size"]) * jnp.asarray(self.schedule())
        return dt[:, None] / jax.nn.softplus(params["friction"])[None, :]

    def _run(self, params, obs, start, noise):
        """From x_0 = s0 start with step noises `noise` [N, B, d]; returns (x_N, log p(x_{0:N}) -
        log q(x_{0:N-1} | x_N)). Both kernels of step n have covariance 2 eta_n: their normalisers
        cancel in the ratio."""
        c = self.config
        inv_var = 1.0 / c.prior_std ** 2
        times = jnp.arange(c.diffusion_steps, dtype=start.dtype) / c.diffusion_steps

        def step(carry, xs):
            x, log_ratio = carry
            eta, t, xi = xs
            scale = jnp.sqrt(2.0 * eta)
            control = self.network.apply(params["control"], obs, x, t[None])
            x_new = x + eta * (control - inv_var * x) + scale * xi  # the sampler (forward) kernel
            back = (x - (x_new - eta * inv_var * x_new)) / scale  # x under the noising (backward) kernel
            return (x_new, log_ratio + standard_normal_logpdf(xi) - standard_normal_logpdf(back)), None

        x0 = c.prior_std * start
        log_prior = standard_normal_logpdf(start) - self.action_size * math.log(c.prior_std)
        (x, log_ratio), _ = jax.lax.scan(step, (x0, log_prior), (self.step_sizes(params), times, noise))
        return x, log_ratio
