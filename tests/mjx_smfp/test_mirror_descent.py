"""Mirror-descent pieces (mjx_smfp/mirror_descent.py): the shared-noise KL bound against the
true KL, the anchor refresh rules, the md_coef dual step, and the pi*/pi_k particle weights."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mjx_smfp import mirror_descent as md
from tests.flow_policies import flow_policy

OBS_ROW = jnp.array([0.3, -0.5, 1.0])


def _density_1d(policy, params, sigma, y_grid):
    """p_Y on `y_grid` by quadrature over eps (no use of the bound's algebra)."""
    eps = jnp.linspace(-7.0, 7.0, 4001)
    w = jnp.exp(-0.5 * eps**2) / math.sqrt(2 * math.pi) * (eps[1] - eps[0])
    g = policy.flow(params, jnp.broadcast_to(OBS_ROW, (eps.shape[0], 3)), eps[:, None])[:, 0]
    kern = jnp.exp(-0.5 * ((y_grid[:, None] - g[None]) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    return jnp.sum(w[None] * kern, axis=1)


def _set_sigma(params, sigma):
    p = jax.tree_util.tree_map(lambda x: x, params)
    p["params"]["log_sigma"] = jnp.full_like(p["params"]["log_sigma"], math.log(sigma) - math.log(0.1))
    return p


@pytest.mark.parametrize("sigma_theta, sigma_k", [(0.3, 0.3), (0.2, 0.4), (0.5, 0.25)])
def test_shared_noise_bound_upper_bounds_the_true_kl_between_two_policies(sigma_theta, sigma_k):
    """Two different nonlinear 1-D policies; true KL(pi_theta || pi_k) by quadrature on a y grid
    (tanh is a shared bijection, so the KL of the pre-squash y equals that of the actions)."""
    policy = flow_policy(1, (64, 64), time_embed_dim=16, out_scale=30.0)
    theta = _set_sigma(policy.init(jax.random.PRNGKey(1), 3), sigma_theta)
    anchor = _set_sigma(policy.init(jax.random.PRNGKey(2), 3), sigma_k)
    y = jnp.linspace(-9.0, 9.0, 6001)
    p, q = _density_1d(policy, theta, sigma_theta, y), _density_1d(policy, anchor, sigma_k, y)
    true_kl = float(jnp.sum(p * (jnp.log(p + 1e-30) - jnp.log(q + 1e-30))) * (y[1] - y[0]))

    n = 50_000
    obs = jnp.broadcast_to(OBS_ROW, (n, 3))
    eps, xi = policy.noise(jax.random.PRNGKey(3), (n,))
    a, b = policy.forward(theta, obs, eps, xi), policy.forward(anchor, obs, eps, xi)
    per_state = md.shared_noise_kl(a.x, a.log_sigma, b.x, b.log_sigma)
    bound = float(per_state.mean())
    stderr = float(per_state.std()) / math.sqrt(n)
    assert true_kl > 0.01  # the two policies really differ
    assert bound >= true_kl - 3 * stderr, (bound, true_kl)
    # and the bound is zero for identical policies
    same = md.shared_noise_kl(a.x, a.log_sigma, a.x, a.log_sigma)
    np.testing.assert_allclose(np.asarray(same), 0.0, atol=1e-6)


def test_shared_noise_bound_upper_bounds_the_closed_form_kl_in_2d():
    """x = A eps + b: y ~ N(b, A A^T + sigma^2 I) in closed form, for both policies."""
    rng = np.random.default_rng(0)
    a1, a2 = rng.normal(size=(2, 2)) * 0.6, rng.normal(size=(2, 2)) * 0.6
    b1, b2 = np.array([0.2, -0.1]), np.array([-0.3, 0.4])
    s1, s2 = np.array([0.3, 0.2]), np.array([0.25, 0.4])
    c1, c2 = a1 @ a1.T + np.diag(s1**2), a2 @ a2.T + np.diag(s2**2)
    c2_inv = np.linalg.inv(c2)
    true_kl = 0.5 * (np.trace(c2_inv @ c1) + (b2 - b1) @ c2_inv @ (b2 - b1) - 2
                     + np.log(np.linalg.det(c2) / np.linalg.det(c1)))
    eps = rng.normal(size=(200_000, 2))
    x1, x2 = eps @ a1.T + b1, eps @ a2.T + b2
    bound = md.shared_noise_kl(jnp.asarray(x1), jnp.log(jnp.asarray(s1))[None], jnp.asarray(x2),
                               jnp.log(jnp.asarray(s2))[None])
    assert float(bound.mean()) > true_kl > 0.1


def test_hard_anchor_copies_exactly_every_period_and_ema_moves_a_fraction():
    anchor = {"w": jnp.zeros(3)}
    for step in range(1, 8):
        params = {"w": jnp.full(3, float(step))}
        anchor = md.update_anchor(anchor, params, jnp.asarray(step), mode="hard", period=3)
        expected = 3.0 * (step // 3)  # last multiple of 3 reached
        np.testing.assert_array_equal(np.asarray(anchor["w"]), expected)
    ema = md.update_anchor({"w": jnp.zeros(3)}, {"w": jnp.ones(3)}, jnp.asarray(1), mode="ema", ema_rate=0.1)
    np.testing.assert_allclose(np.asarray(ema["w"]), 0.1)
    with pytest.raises(ValueError, match="anchor update"):
        md.update_anchor(anchor, anchor, jnp.asarray(1), mode="copy")


def test_md_coef_dual_step_raises_beta_above_the_target_kl_and_lowers_it_below():
    grad = jax.grad(md.md_coef_loss)
    assert float(grad(jnp.log(0.1), 0.5, 0.05)) < 0  # KL too large -> descent raises log beta
    assert float(grad(jnp.log(0.1), 0.01, 0.05)) > 0


def test_particle_weights_reweight_anchor_samples_to_the_closed_form_target():
    """pi_k = N(0, 1), Q(a) = 2a: pi* ∝ pi_k^(beta/(alpha+beta)) exp(Q/(alpha+beta)) is
    N(2/beta, (alpha+beta)/beta). Self-normalised weights on pi_k samples recover its moments."""
    alpha, beta = 0.5, 2.0
    a = jax.random.normal(jax.random.PRNGKey(0), (400_000,))
    log_pk = -0.5 * a**2 - 0.5 * math.log(2 * math.pi)
    w = md.particle_weights(2.0 * a, log_pk, alpha, beta)
    mean = float(jnp.sum(w * a))
    var = float(jnp.sum(w * (a - mean) ** 2))
    assert abs(mean - 2.0 / beta) < 0.02 and abs(var - (alpha + beta) / beta) < 0.03
    # the same target via the unnormalised closed-form log density
    logits = md.closed_form_target_log_density(log_pk, 2.0 * a, alpha, beta) - log_pk
    np.testing.assert_allclose(np.asarray(jax.nn.softmax(logits)), np.asarray(w), rtol=1e-3, atol=1e-9)
