"""Tanh-Gaussian policy: actions in (-1, 1) and log-probs equal to the change-of-variables density."""
import jax
import numpy as np

from mjx_smfp.networks import ActorNetworkConfig
from mjx_smfp.policies.gaussian import TanhGaussianPolicy


def test_log_prob_matches_squashed_gaussian_density():
    policy = TanhGaussianPolicy(action_size=2, network_config=ActorNetworkConfig(hidden=(8,)))
    params = policy.init(jax.random.PRNGKey(0), 3)
    obs = jax.random.normal(jax.random.PRNGKey(1), (64, 3))
    action, logp = policy.sample(params, obs, jax.random.PRNGKey(2))
    mean, log_std = policy.distribution(params, obs)
    u = np.arctanh(np.clip(np.asarray(action, np.float64), -1 + 1e-12, 1 - 1e-12))
    std = np.exp(np.asarray(log_std, np.float64))
    gauss = -0.5 * ((u - np.asarray(mean)) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
    expected = (gauss - np.log(1 - np.tanh(u) ** 2)).sum(-1)
    np.testing.assert_allclose(np.asarray(logp), expected, rtol=2e-3, atol=2e-3)
    assert np.all(np.abs(np.asarray(action)) < 1)
    np.testing.assert_allclose(np.asarray(policy.deterministic(params, obs)), np.tanh(np.asarray(mean)), rtol=1e-6)
