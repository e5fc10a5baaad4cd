"""The multi-step baselines' policies (policies/chains.py), checked against the maths of their
reference code: SAC Flow's path log-density is a normalised density (importance sampling in 1-D),
uses one sigma(s) for every step and the gated Euler step y + dt z (h - y) with the gate open at
init; DIME's log pi_hat is a normalised path ratio (importance sampling over the action alone), its
step sizes are the learned cosine schedule whose last step is small, not a fixed VP floor; the
deterministic action is the zero-noise chain, and each action costs its stated network calls; SAC Flow's opt-in
marginal estimate matches the exact density by quadrature and costs nothing when only the action is used."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mjx_smfp.networks import ActorNetworkConfig
from mjx_smfp.policies import chains
from mjx_smfp.policies.chains import DiffusionConfig, DiffusionPolicy, FlowChainConfig, FlowChainPolicy
from mjx_smfp.policies.densities import standard_normal_logpdf


@pytest.mark.parametrize("velocity", ["mlp", "gated"])
def test_sac_flow_path_log_density_integrates_to_the_box_volume_in_1d(velocity):
    """With K = 1 and d = 1 a draw is the path (y_0, a = tanh(y_1)) and log pi its joint density, so
    E[1_B(path) / pi(path)] = |B|. B = [-1, 1] x [-tanh 1, tanh 1]: |B| = 4 tanh(1) ~ 3.05.
    (log sigma is squeezed into [-0.1, 0.1] so that the weights have a small variance.)"""
    config = FlowChainConfig(flow_steps=1, velocity=velocity, out_scale=1.0)
    policy = FlowChainPolicy(1, ActorNetworkConfig((32, 32), log_std_min=-0.1, log_std_max=0.1), config)
    params = policy.init(jax.random.PRNGKey(0), 2)
    n = 400_000
    obs = jnp.ones((n, 2))
    y0, _ = policy.noise(jax.random.PRNGKey(1), n)
    action, logp = jax.jit(lambda: policy.sample(params, obs, jax.random.PRNGKey(1)))()
    inside = (jnp.abs(y0[:, 0]) <= 1.0) & (jnp.abs(action[:, 0]) <= np.tanh(1.0))
    estimate = float(jnp.mean(jnp.where(inside, jnp.exp(-logp), 0.0)))
    assert abs(estimate - 4 * np.tanh(1.0)) < 0.05 * 4 * np.tanh(1.0), estimate


def test_sac_flow_steps_are_gated_euler_steps_with_one_state_noise_for_all_steps():
    """Replays the chain by hand from the network's outputs: y_{k+1} = y_k + (1/K) sigmoid(g) (h - y_k)
    + sigma(s) xi_k with sigma(s) the same at every k, and log pi of the path = log N(y_0) +
    sum_k log N(xi_k) - K sum log sigma(s). At init the gate is sigmoid(5) for every input."""
    k, d = 3, 2
    policy = FlowChainPolicy(d, ActorNetworkConfig((16, 16)), FlowChainConfig(flow_steps=k, out_scale=1.0))
    params = policy.init(jax.random.PRNGKey(0), 3)
    obs = jax.random.normal(jax.random.PRNGKey(1), (5, 3))
    y0, noise = policy.noise(jax.random.PRNGKey(2), 5)
    y_k, logp = policy._run(params, obs, y0, noise)

    log_std = policy.log_std(params, obs)
    assert log_std.shape == (5, d) and bool(jnp.all((log_std >= -5.0) & (log_std <= 2.0)))
    y = y0
    for step in range(k):
        gate, candidate = policy.network.apply(params["velocity"], obs, y, jnp.asarray([step / k]))
        np.testing.assert_allclose(np.asarray(jax.nn.sigmoid(gate)), 1 / (1 + np.exp(-5.0)), rtol=1e-6)
        y = y + jax.nn.sigmoid(gate) * (candidate - y) / k + jnp.exp(log_std) * noise[step]
    np.testing.assert_allclose(np.asarray(y_k), np.asarray(y), rtol=1e-5, atol=1e-5)
    expected = standard_normal_logpdf(y0) + sum(standard_normal_logpdf(xi) for xi in noise) - k * log_std.sum(-1)
    np.testing.assert_allclose(np.asarray(logp), np.asarray(expected), rtol=1e-5, atol=1e-4)


def test_sac_flow_marginal_estimate_is_the_action_density_by_quadrature_in_1d():
    """The opt-in "marginal" log pi: with K = 1 and d = 1, p(y_1) = int N(y_0) N(y_1; m(y_0), sigma^2) dy_0
    exactly, integrated here on a fine grid of y_0. The estimate from M = 20000 more chains (the own
    chain's term weighs 1/20001) matches it at points across the spread (a mis-shaped tile/reshape, a
    missing sigma normaliser or the last step's noise left in the means would not), and sample()
    returns that estimate, own last noise included, minus log|tanh'|."""
    config = FlowChainConfig(flow_steps=1, out_scale=1.0, entropy_estimator="marginal", marginal_chains=20_000)
    policy = FlowChainPolicy(1, ActorNetworkConfig((32, 32), log_std_min=-1.0, log_std_max=-0.5), config)
    params = policy.init(jax.random.PRNGKey(0), 2)
    obs = jnp.ones((1, 2))
    grid = jnp.linspace(-8.0, 8.0, 8001)[:, None]
    means, _ = policy._run(params, jnp.ones((grid.shape[0], 2)), grid, jnp.zeros((1,) + grid.shape))
    std = float(jnp.exp(policy.log_std(params, obs))[0, 0])
    ys = jnp.linspace(float(means.min()) - std, float(means.max()) + std, 7)
    kernel = jnp.exp(-0.5 * ((ys[None, :] - means) / std) ** 2) / (std * np.sqrt(2 * np.pi))
    exact = jnp.log(jnp.sum(jnp.exp(standard_normal_logpdf(grid))[:, None] * kernel, axis=0) * (grid[1, 0] - grid[0, 0]))
    estimate = jax.jit(lambda y: jax.vmap(lambda yi: policy.marginal_log_density(
        params, obs, yi[None, None], jnp.zeros((1, 1)), jax.random.PRNGKey(3))[0])(y))(ys)
    np.testing.assert_allclose(np.asarray(estimate), np.asarray(exact), atol=0.03)
    k_action, k_others = jax.random.split(jax.random.PRNGKey(4))
    action, logp = policy.sample(params, obs, jax.random.PRNGKey(4))
    y = jnp.arctanh(action)
    last_noise = policy.noise(k_action, 1)[1][-1]
    expected = policy.marginal_log_density(params, obs, y, last_noise, k_others) - jnp.log1p(-action[:, 0] ** 2)
    np.testing.assert_allclose(np.asarray(logp), np.asarray(expected), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("steps", [2, 16])
def test_dime_log_pi_hat_is_a_normalised_path_ratio(steps):
    """log pi_hat = log p(x_{0:N}) - log q(x_{0:N-1} | x_N) - log|tanh'|, and q(. | x_N) is a normalised
    density of the rest of the path, so E_p[1_B(a) / pi_hat] = |B| for a box B in ACTION space alone:
    B = [-tanh 1, tanh 1]^2, |B| = 4 tanh(1)^2. Wrong normalisers, a kernel evaluated at the wrong
    point or a missing prior term would all break it. Random (large) control: a non-trivial sampler."""
    policy = DiffusionPolicy(2, ActorNetworkConfig((16, 16)), DiffusionConfig(diffusion_steps=steps, out_scale=1.0))
    params = policy.init(jax.random.PRNGKey(0), 3)
    n = 200_000
    obs = jnp.tile(jax.random.normal(jax.random.PRNGKey(1), (1, 3)), (n, 1))
    action, logp = jax.jit(lambda: policy.sample(params, obs, jax.random.PRNGKey(2)))()
    inside = jnp.all(jnp.abs(action) <= np.tanh(1.0), axis=-1)
    estimate = float(jnp.mean(jnp.where(inside, jnp.exp(-logp), 0.0)))
    assert abs(estimate - 4 * np.tanh(1.0) ** 2) < 0.05 * 4 * np.tanh(1.0) ** 2, estimate


def test_dime_step_sizes_are_learned_on_a_cosine_schedule_that_ends_small():
    """eta_n = softplus(dt) c(n) / softplus(gamma): 0.1 c(n) at init, c(0) ~ 1 shrinking to ~0.01 at the
    last step, so the last step's noise std sqrt(2 eta) ~ 0.05, far below the old fixed VP schedule's
    sqrt(b_1) ~ 0.21; and dt and the per-dimension friction receive gradients (they are learned)."""
    policy = DiffusionPolicy(2, ActorNetworkConfig((16, 16)))
    params = policy.init(jax.random.PRNGKey(0), 3)
    c = policy.schedule()
    assert c.shape == (16,) and c[0] == pytest.approx(1.0, abs=1e-3) and np.all(np.diff(c) < 0)
    assert 0.001 < c[-1] < 0.02
    eta = np.asarray(policy.step_sizes(params))
    np.testing.assert_allclose(eta, 0.1 * c[:, None] * np.ones((1, 2)), rtol=1e-5)
    assert np.sqrt(2 * eta[-1]).max() < 0.06

    obs = jax.random.normal(jax.random.PRNGKey(1), (64, 3))
    grads = jax.grad(lambda p: jnp.mean(policy.sample(p, obs, jax.random.PRNGKey(2))[1]))(params)
    assert float(jnp.abs(grads["step_size"])) > 0 and bool(jnp.all(jnp.abs(grads["friction"]) > 0))

    zeros = (jnp.zeros((64, 2)), jnp.zeros((16, 64, 2)))
    np.testing.assert_allclose(np.asarray(policy.deterministic(params, obs)),
                               np.tanh(np.asarray(policy._run(params, obs, *zeros)[0])), rtol=1e-6)


@pytest.mark.parametrize("policy, calls", [(FlowChainPolicy(3, ActorNetworkConfig((8, 8))), 4),
                                           (DiffusionPolicy(3, ActorNetworkConfig((8, 8))), 16)])
def test_one_action_costs_the_stated_number_of_network_calls(policy, calls, monkeypatch):
    params = policy.init(jax.random.PRNGKey(0), 5)
    count = []
    forward = chains.StepNetwork.__call__
    monkeypatch.setattr(chains.StepNetwork, "__call__", lambda self, *a: (count.append(1), forward(self, *a))[1])
    with jax.disable_jit():
        action, logp = policy.sample(params, jnp.zeros((7, 5)), jax.random.PRNGKey(1))
    assert len(count) == calls == policy.network_calls
    assert action.shape == (7, 3) and logp.shape == (7,) and bool(jnp.all(jnp.abs(action) < 1))


def test_sac_flow_marginal_estimate_costs_nothing_when_only_the_action_is_used():
    """Acting needs no log pi: with `entropy_estimator="marginal"` the M more chains feed only log pi,
    so XLA drops them from a compiled act and it costs the path estimator's flops; log pi costs ~M+1 x."""
    def flops(estimator, fn):
        policy = FlowChainPolicy(2, ActorNetworkConfig((32, 32)), FlowChainConfig(entropy_estimator=estimator))
        params = policy.init(jax.random.PRNGKey(0), 3)
        compiled = jax.jit(fn(policy)).lower(params, jnp.zeros((64, 3)), jax.random.PRNGKey(1)).compile()
        analysis = compiled.cost_analysis()
        return (analysis[0] if isinstance(analysis, list) else analysis)["flops"]

    act = lambda policy: lambda p, o, k: policy.sample(p, o, k)[0]  # noqa: E731
    assert flops("marginal", act) == pytest.approx(flops("path", act), rel=0.01)  # (one more key split)
    log_pi = lambda policy: lambda p, o, k: policy.sample(p, o, k)[1]  # noqa: E731
    assert flops("marginal", log_pi) > 5 * flops("path", log_pi)
