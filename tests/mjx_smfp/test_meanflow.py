"""MeanFlow maths (mjx_smfp/meanflow.py) against closed forms, finite differences, and a fit.

The closed-form case: data x ~ N(m, s^2 I), noise e ~ N(0, I), z_t = (1-t) x + t e. The
marginal z_t ~ N(mu_t, sd_t^2) with mu_t = (1-t) m, sd_t^2 = (1-t)^2 s^2 + t^2; the flow
of the marginal velocity field is the affine monotone map z_r = mu_r + (sd_r/sd_t)(z_t - mu_t),
so the true average velocity is u(z, r, t) = (z - z_r) / (t - r) and the instantaneous
(marginal) velocity is v(z, t) = -m + sd_t'/sd_t (z - mu_t), sd_t' = (t - (1-t) s^2)/sd_t.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mjx_smfp import meanflow as mf
from tests.flow_policies import flow_policy

M = jnp.array([0.7, -1.3])


def gaussian_fields(m, s):
    """(true average velocity u(z, r, t), marginal velocity v(z, t)) for data N(m, s^2 I)."""

    def mu(t):
        return (1.0 - t)[:, None] * m

    def sd(t):
        return jnp.sqrt((1.0 - t) ** 2 * s**2 + t**2)[:, None]

    def v(z, t):
        dsd = (t[:, None] - (1.0 - t[:, None]) * s**2) / sd(t)
        return -m + dsd / sd(t) * (z - mu(t))

    def u(z, r, t):
        gap = (t - r)[:, None]
        equal = gap < 1e-6
        safe_gap = jnp.where(equal, 1.0, gap)
        z_r = mu(r) + sd(r) / sd(t) * (z - mu(t))
        return jnp.where(equal, v(z, t), (z - z_r) / safe_gap)

    return u, v


def draw(rng, n, m, s, equal_fraction=0.75):
    k_x, k_e, k_t = jax.random.split(rng, 3)
    x = m + s * jax.random.normal(k_x, (n, m.shape[0]))
    e = jax.random.normal(k_e, (n, m.shape[0]))
    r, t = mf.sample_times(k_t, n, equal_fraction=equal_fraction)
    return x, e, r, t


def test_sample_times_orders_r_below_t_with_the_requested_equal_fraction():
    r, t = mf.sample_times(jax.random.PRNGKey(0), 20_000, equal_fraction=0.75)
    assert bool(jnp.all((0 < r) & (r <= t) & (t < 1)))
    assert abs(float(jnp.mean(r == t)) - 0.75) < 0.02
    # t is the max of two logit-normal(-0.4, 1) draws: P(logit t < -0.4) = 1/4.
    assert abs(float(jnp.mean(jnp.log(t / (1 - t)) < -0.4)) - 0.25) < 0.02


def test_true_average_velocity_satisfies_the_meanflow_identity_through_one_jvp():
    """u = v - (t - r)(v . d_z u + d_t u), with d/dt from `total_derivative`, for s > 0."""
    u, v = gaussian_fields(M, 0.5)
    rng = jax.random.PRNGKey(1)
    x, e, _, _ = draw(rng, 4096, M, 0.5)
    r, t = mf.sample_times(jax.random.PRNGKey(2), 4096, equal_fraction=0.0)
    keep = (t - r) > 0.05
    z = mf.interpolate(x, e, t)
    u_val, du_dt = mf.total_derivative(u, z, r, t, v(z, t))
    residual = u_val - (v(z, t) - (t - r)[:, None] * du_dt)
    scale = jnp.abs(u_val).max()
    assert float(jnp.abs(jnp.where(keep[:, None], residual, 0.0)).max()) < 1e-4 * float(scale) + 1e-5


def test_jvp_equals_central_finite_difference_on_the_network():
    """The ONE-jvp total derivative of the actual policy network matches (u(z+hv, t+h) - u(z-hv, t-h))/2h."""
    policy = flow_policy(2, (32, 32), time_embed_dim=16, out_scale=1.0)
    params = policy.init(jax.random.PRNGKey(0), obs_size=3)
    obs = jax.random.normal(jax.random.PRNGKey(1), (64, 3))
    field = policy.field(params, obs)
    z = jax.random.normal(jax.random.PRNGKey(2), (64, 2))
    v = jax.random.normal(jax.random.PRNGKey(3), (64, 2))
    r, t = mf.sample_times(jax.random.PRNGKey(4), 64, equal_fraction=0.0)
    t = jnp.clip(t, 0.05, 0.95)
    r = jnp.minimum(r, t)
    _, du_dt = mf.total_derivative(field, z, r, t, v)
    with jax.default_matmul_precision("highest"):
        h = 1e-3
        fd = (field(z + h * v, r, t + h) - field(z - h * v, r, t - h)) / (2 * h)
    np.testing.assert_allclose(np.asarray(du_dt), np.asarray(fd), rtol=2e-2, atol=1e-2)
    assert float(jnp.abs(du_dt).mean()) > 1e-2  # not trivially zero


@pytest.mark.parametrize("variant", mf.VARIANTS)
def test_loss_is_zero_at_the_true_field_for_point_mass_data(variant):
    """With s = 0 the conditional velocity equals the marginal one, so the loss at the truth is ~0.

    (Here u is constant along each conditional path, so du/dt = 0: this pins the sign and
    stop-gradient plumbing, not the JVP term; the gradient test below covers that.)"""
    u, _ = gaussian_fields(M, 0.0)
    x, e, r, t = draw(jax.random.PRNGKey(5), 4096, M, 0.0)
    loss, aux = mf.meanflow_loss(u, x, e, r, t, variant=variant, weight_power=0.0)
    assert float(aux["meanflow_sq_error"]) < 1e-6
    # ... and clearly not at a wrong field (u shifted by 0.1 per dim).
    wrong, _ = mf.meanflow_loss(lambda z, r, t: u(z, r, t) + 0.1, x, e, r, t, variant=variant, weight_power=0.0)
    assert float(wrong) > 0.015


@pytest.mark.parametrize("variant", mf.VARIANTS)
def test_loss_gradient_vanishes_in_expectation_at_the_true_field(variant):
    """For s > 0 the loss has irreducible conditional variance, but its target is unbiased:
    the gradient w.r.t. an affine correction u_true + a + b*z is ~0 at (a, b) = 0 and not
    ~0 at (a, b) = (0.2, 0.1)."""
    u, _ = gaussian_fields(M, 0.5)
    x, e, r, t = draw(jax.random.PRNGKey(6), 200_000, M, 0.5)

    def loss(theta):
        field = lambda z, r, t: u(z, r, t) + theta[0] + theta[1] * z  # noqa: E731
        return mf.meanflow_loss(field, x, e, r, t, variant=variant, weight_power=0.0)[0]

    g0 = jax.grad(loss)(jnp.zeros(2))
    g1 = jax.grad(loss)(jnp.array([0.2, 0.1]))
    assert float(jnp.abs(g0).max()) < 0.05 * float(jnp.abs(g1).max())


def test_adaptive_weight_makes_each_term_sq_over_sq_plus_c_to_the_p():
    u, _ = gaussian_fields(M, 0.0)
    x, e, r, t = draw(jax.random.PRNGKey(7), 256, M, 0.0)
    field = lambda z, r, t: u(z, r, t) + 0.3  # noqa: E731  delta = 0.3 per dim -> ||delta||^2 = 0.18
    loss, aux = mf.meanflow_loss(field, x, e, r, t, weight_power=0.5, weight_eps=0.01)
    np.testing.assert_allclose(float(aux["meanflow_sq_error"]), 0.18, rtol=1e-3)
    np.testing.assert_allclose(float(loss), 0.18 / (0.18 + 0.01) ** 0.5, rtol=1e-3)
    # stop_grad(w): the gradient is w * d||delta||^2, not d(||delta||^2 / (||delta||^2 + c)^p).
    g = jax.grad(lambda a: mf.meanflow_loss(lambda z, r, t: u(z, r, t) + a, x, e, r, t,
                                            weight_power=0.5, weight_eps=0.01)[0])(jnp.full((2,), 0.3))
    np.testing.assert_allclose(np.asarray(g), 2 * 0.3 / (0.19**0.5), rtol=1e-3)


@pytest.mark.parametrize("power, low, high", [(0.0, 0.49, 0.51), (0.2, 0.70, 0.75), (1.0, 0.99, 1.0)])
def test_adaptive_weight_moves_the_stationary_field_toward_the_majority_target_as_p_grows(power, low, high):
    """Targets v = +1 (3 rows) and -1 (1 row), a constant field theta at r = t: the stationary
    theta of stop_grad(w) * (theta - v)^2 solves theta = sum w v / sum w. p = 0 gives the mean
    0.5 (the conditional mean MeanFlow wants); p = 0.2 gives ~0.73 and p = 1 (the default) ~1,
    the majority target: mode-seeking on asymmetric data (issue 11's review point, docs/smfp.md)."""
    v = jnp.array([[1.0], [1.0], [1.0], [-1.0]])
    x, e, r = -v, jnp.zeros_like(v), jnp.full((4,), 0.5)  # v = e - x; r = t: no (t - r) du/dt term

    def loss(theta):
        return mf.meanflow_loss(lambda z, r, t: jnp.broadcast_to(theta, z.shape), x, e, r, r,
                                weight_power=power)[0]

    def step(theta, _):  # fixed-point iteration: theta -= grad / (2 mean w), w at the current theta
        w = mf.adaptive_weight(jnp.square(theta - v[:, 0]), power, 1e-3)
        return theta - jax.grad(loss)(theta) / (2 * jnp.mean(w)), None

    theta, _ = jax.lax.scan(step, jnp.zeros(()), None, length=200)
    assert low <= float(theta) <= high, float(theta)


CENTERS = 1.2 * jnp.array([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])


def test_one_step_samples_reproduce_a_four_mode_mixture():
    """Train the policy's network with the MeanFlow loss alone on a 4-Gaussian 2-D mixture
    (modes at (+-1.2, +-1.2), std 0.15); ONE-step samples give each mode 25% +- 10% of the
    mass and most samples lie within 3 std of a mode."""
    policy = flow_policy(2, (128, 128, 128), time_embed_dim=32)
    params = policy.init(jax.random.PRNGKey(0), obs_size=1)
    batch, steps = 256, 2500
    obs = jnp.zeros((batch, 1))
    opt = optax.adam(1e-3)

    def loss(p, rng):
        k_idx, k_x, k_e, k_t = jax.random.split(rng, 4)
        x = CENTERS[jax.random.randint(k_idx, (batch,), 0, 4)] + 0.15 * jax.random.normal(k_x, (batch, 2))
        e = jax.random.normal(k_e, (batch, 2))
        r, t = mf.sample_times(k_t, batch)
        return mf.meanflow_loss(policy.field(p, obs), x, e, r, t)[0]

    @jax.jit
    def train(p, rng):
        def body(carry, k):
            p, o = carry
            g = jax.grad(loss)(p, k)
            upd, o = opt.update(g, o)
            return (optax.apply_updates(p, upd), o), None

        (p, _), _ = jax.lax.scan(body, (p, opt.init(p)), jax.random.split(rng, steps))
        return p

    params = train(params, jax.random.PRNGKey(1))
    n = 4000
    x = policy.flow(params, jnp.zeros((n, 1)), jax.random.normal(jax.random.PRNGKey(2), (n, 2)))
    dist = jnp.linalg.norm(x[:, None] - CENTERS[None], axis=-1)
    mode = jnp.argmin(dist, axis=1)
    masses = np.array([float(jnp.mean(mode == i)) for i in range(4)])
    near = float(jnp.mean(dist.min(axis=1) < 0.45))
    assert np.all(np.abs(masses - 0.25) < 0.10), masses
    assert near > 0.7, near
    # Multi-step sampling of the same field is at least as good (the field is a valid MeanFlow).
    x4 = mf.multi_step_sample(policy.field(params, jnp.zeros((n, 1))),
                              jax.random.normal(jax.random.PRNGKey(2), (n, 2)), 4)
    assert float(jnp.mean(jnp.linalg.norm(x4[:, None] - CENTERS[None], axis=-1).min(axis=1) < 0.45)) > near - 0.02


def test_one_step_fraction_puts_that_share_of_rows_at_the_one_step_point():
    r, t = mf.sample_times(jax.random.PRNGKey(0), 20_000, one_step_fraction=0.3)
    at_one_step = np.asarray((r == 0.0) & (t == 1.0))
    assert abs(at_one_step.mean() - 0.3) < 0.02
    # the other rows are the logit-normal draws, which essentially never reach (0, 1)
    assert float(jnp.max((t - r)[~at_one_step])) < 0.999
