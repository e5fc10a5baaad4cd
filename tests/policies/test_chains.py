"""The multi-step baselines' policies (policies/chains.py): SAC Flow's path log-density is a
normalised density (checked by importance sampling in 1-D), DIME's log pi_hat is exact where
it must be (a zero drift makes the sampler the time reversal of the noising process), the
deterministic action is the zero-noise chain, and each action costs its stated network calls."""
import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mjx_smfp.policies import chains
from mjx_smfp.policies.chains import DiffusionConfig, DiffusionPolicy, FlowChainConfig, FlowChainPolicy
from mjx_smfp.policies.densities import standard_normal_logpdf, tanh_log_det


@pytest.mark.parametrize("velocity", ["mlp", "gated"])
def test_sac_flow_path_log_density_integrates_to_the_box_volume_in_1d(velocity):
    """With K = 1 and d = 1 a draw is the path (y_0, a = tanh(y_1)) and log pi its joint density, so
    E[1_B(path) / pi(path)] = |B|. B = [-1, 1] x [-tanh 1, tanh 1]: |B| = 4 tanh(1) ~ 3.05."""
    policy = FlowChainPolicy(1, (32, 32), FlowChainConfig(flow_steps=1, velocity=velocity, flow_noise_init=1.0,
                                                          out_scale=1.0))
    params = policy.init(jax.random.PRNGKey(0), 2)
    n = 400_000
    obs = jnp.ones((n, 2))
    y0, noise = policy.noise(jax.random.PRNGKey(1), n)
    action, logp = jax.jit(lambda: policy.sample(params, obs, jax.random.PRNGKey(1)))()
    inside = (jnp.abs(y0[:, 0]) <= 1.0) & (jnp.abs(action[:, 0]) <= np.tanh(1.0))
    estimate = float(jnp.mean(jnp.where(inside, jnp.exp(-logp), 0.0)))
    assert abs(estimate - 4 * np.tanh(1.0)) < 0.05 * 4 * np.tanh(1.0), estimate


def _zero_output_layer(params):
    """Zero the drift network's last Dense (kernel and bias): f(s, y, t) = 0."""
    flat = flax.traverse_util.flatten_dict(flax.core.unfreeze(params))
    last = max(k[-2] for k in flat if k[-2].startswith("Dense_") and len(k) == 4)
    flat = {k: (jnp.zeros_like(v) if len(k) == 4 and k[-2] == last else v) for k, v in flat.items()}
    return flax.traverse_util.unflatten_dict(flat)


def test_dime_log_pi_hat_is_exact_when_the_sampler_reverses_the_noising_process():
    """A zero drift makes each denoising step the noising kernel itself; from the stationary N(0, I)
    that AR(1) chain is reversible, so the path ratio equals log N(y_0) exactly (the bound is tight)."""
    policy = DiffusionPolicy(2, (16, 16), DiffusionConfig(diffusion_steps=8))
    params = _zero_output_layer(policy.init(jax.random.PRNGKey(0), 3))
    obs = jax.random.normal(jax.random.PRNGKey(1), (256, 3))
    start, noise = policy.noise(jax.random.PRNGKey(2), 256)
    y0, log_ratio = policy._run(params, obs, start, noise)
    np.testing.assert_allclose(np.asarray(log_ratio), np.asarray(standard_normal_logpdf(y0)), rtol=1e-4, atol=1e-4)
    action, logp = policy.sample(params, obs, jax.random.PRNGKey(2))
    np.testing.assert_allclose(np.asarray(logp), np.asarray(standard_normal_logpdf(y0) - tanh_log_det(y0)),
                               rtol=1e-4, atol=1e-4)
    assert float(jnp.std(y0)) == pytest.approx(1.0, abs=0.1)  # the stationary law survives N steps


def test_dime_schedule_ends_near_pure_noise_and_the_deterministic_action_is_the_zero_noise_chain():
    policy = DiffusionPolicy(2, (16, 16))
    betas = policy.betas()
    assert betas.shape == (16,) and np.all((betas > 0) & (betas < 1))
    assert np.prod(1 - betas) < 1e-3  # y_N carries almost nothing of y_0
    params = policy.init(jax.random.PRNGKey(0), 3)
    obs = jax.random.normal(jax.random.PRNGKey(1), (4, 3))
    zeros = (jnp.zeros((4, 2)), jnp.zeros((16, 4, 2)))
    np.testing.assert_allclose(np.asarray(policy.deterministic(params, obs)),
                               np.tanh(np.asarray(policy._run(params, obs, *zeros)[0])), rtol=1e-6)


@pytest.mark.parametrize("policy, calls", [(FlowChainPolicy(3, (8, 8)), 4), (DiffusionPolicy(3, (8, 8)), 16)])
def test_one_action_costs_the_stated_number_of_network_calls(policy, calls, monkeypatch):
    params = policy.init(jax.random.PRNGKey(0), 5)
    count = []
    forward = chains.StepNetwork.__call__
    monkeypatch.setattr(chains.StepNetwork, "__call__", lambda self, *a: (count.append(1), forward(self, *a))[1])
    with jax.disable_jit():
        action, logp = policy.sample(params, jnp.zeros((7, 5)), jax.random.PRNGKey(1))
    assert len(count) == calls == policy.network_calls
    assert action.shape == (7, 3) and logp.shape == (7,) and bool(jnp.all(jnp.abs(action) < 1))
