"""Shared critic: soft min-backup bootstraps through truncation, stops at termination; Polyak;
the distributional value heads (C51 projection, HL-Gauss histogram) against brute force."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mjx_smfp import critic
from mjx_smfp.agents.base import Transition


def _const_q(values):
    """A fake twin critic: head i returns values[i] everywhere (params ignored)."""
    return lambda params, obs, action: jnp.asarray(values)[:, None] * jnp.ones((1, obs.shape[0]))


def test_target_bootstraps_through_truncation_and_stops_at_termination():
    batch = Transition(obs=jnp.zeros((3, 2)), action=jnp.zeros((3, 1)), reward=jnp.array([1.0, 1.0, 1.0]),
                       next_obs=jnp.zeros((3, 2)), terminated=jnp.array([0.0, 1.0, 0.0]),
                       truncated=jnp.array([0.0, 0.0, 1.0]))
    next_logp = jnp.array([0.5, 0.5, 0.5])
    y = critic.soft_target(None, batch, jnp.zeros((3, 1)), next_logp, temperature=0.2, gamma=0.9,
                           apply_fn=_const_q([3.0, 2.0]))
    soft_next = 2.0 - 0.2 * 0.5  # min over heads, minus temperature * log pi
    np.testing.assert_allclose(np.asarray(y), [1 + 0.9 * soft_next, 1.0, 1 + 0.9 * soft_next], rtol=1e-6)
    y_no_entropy = critic.soft_target(None, batch, jnp.zeros((3, 1)), next_logp, 0.2, 0.9, _const_q([3.0, 2.0]),
                                      entropy_in_backup=False)
    np.testing.assert_allclose(np.asarray(y_no_entropy)[0], 1 + 0.9 * 2.0, rtol=1e-6)


def test_critic_loss_is_zero_at_the_target_and_its_gradient_moves_q_toward_it():
    def apply_fn(params, obs, action):
        return jnp.stack([params["w"][0] * jnp.ones(obs.shape[0]), params["w"][1] * jnp.ones(obs.shape[0])])

    batch = Transition(obs=jnp.zeros((4, 2)), action=jnp.zeros((4, 1)), reward=jnp.ones(4), next_obs=jnp.zeros((4, 2)),
                       terminated=jnp.ones(4), truncated=jnp.zeros(4))
    y = critic.soft_target({"w": jnp.zeros(2)}, batch, jnp.zeros((4, 1)), jnp.zeros(4), 0.1, 0.99, apply_fn)
    loss, metrics = critic.critic_loss({"w": jnp.array([1.0, 1.0])}, batch, y, apply_fn)
    assert float(loss) == 0.0 and float(metrics["target_q_mean"]) == 1.0
    grads = jax.grad(lambda p: critic.critic_loss(p, batch, y, apply_fn)[0])({"w": jnp.array([3.0, -1.0])})
    assert float(grads["w"][0]) > 0 > float(grads["w"][1])


def test_polyak_moves_targets_by_tau():
    out = critic.polyak({"a": jnp.zeros(3)}, {"a": jnp.ones(3)}, 0.25)
    np.testing.assert_allclose(np.asarray(out["a"]), 0.25)


def test_critic_loss_is_the_sum_over_heads_of_each_heads_batch_mean():
    batch = Transition(obs=jnp.zeros((4, 2)), action=jnp.zeros((4, 1)), reward=jnp.zeros(4),
                       next_obs=jnp.zeros((4, 2)), terminated=jnp.ones(4), truncated=jnp.zeros(4))
    # Targets are 0 (terminal, zero reward); heads sit at 1 and 3: 0.5 * 1 + 0.5 * 9 = 5.
    y = critic.soft_target(None, batch, jnp.zeros((4, 1)), jnp.zeros(4), 0.0, 0.9, _const_q([1.0, 3.0]))
    loss, _ = critic.critic_loss(None, batch, y, _const_q([1.0, 3.0]))
    np.testing.assert_allclose(float(loss), 5.0, rtol=1e-6)


# -- distributional value heads ----------------------------------------------------------------
C51 = critic.ValueHead(kind="c51", num_atoms=11, value_min=-5.0, value_max=5.0)
HL_GAUSS = critic.ValueHead(kind="hl_gauss", num_atoms=11, value_min=-5.0, value_max=5.0, hl_gauss_sigma=0.75)


def _const_logits(logits):
    """A fake distributional twin critic: head i has logits[i] ([N]) for every row."""
    logits = jnp.asarray(logits, jnp.float32)
    return lambda params, obs, action: jnp.broadcast_to(logits[:, None, :], (logits.shape[0], obs.shape[0],
                                                                             logits.shape[1]))


def _project_brute_force(positions, probs, z):
    """C51's projection written as the classic per-atom loop (Bellemare et al. 2017, Alg. 1)."""
    out = np.zeros(len(z))
    dz = z[1] - z[0]
    for x, p in zip(positions, probs):
        b = (min(max(x, z[0]), z[-1]) - z[0]) / dz
        lo, hi = int(np.floor(b)), int(np.ceil(b))
        if lo == hi:
            out[lo] += p
        else:
            out[lo] += p * (hi - b)
            out[hi] += p * (b - lo)
    return out


def test_c51_target_is_the_brute_force_projection_of_the_lowest_mean_head_shifted_by_the_backup():
    z = np.linspace(-5.0, 5.0, 11)
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 11)) * 2.0
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    low = int(np.argmin(probs @ z))  # the head with the smaller mean bootstraps ("min of means")
    # rows: plain; big reward (atoms past value_max); terminal (all mass at r); very negative
    # reward (atoms below value_min); an n-step row with its own discount; reward on an atom.
    reward = np.array([0.3, 4.0, 1.7, -12.0, 0.55, 2.0], np.float32)
    terminated = np.array([0, 0, 1, 0, 0, 1], np.float32)
    discount = np.array([0.9, 0.9, 0.9, 0.9, 0.9 ** 3, 0.9], np.float32)
    next_logp = rng.normal(size=6).astype(np.float32)
    batch = Transition(obs=jnp.zeros((6, 2)), action=jnp.zeros((6, 1)), reward=jnp.asarray(reward),
                       next_obs=jnp.zeros((6, 2)), terminated=jnp.asarray(terminated), truncated=jnp.zeros(6),
                       discount=jnp.asarray(discount))
    target = critic.soft_target(None, batch, jnp.zeros((6, 1)), jnp.asarray(next_logp), temperature=0.2, gamma=0.9,
                                apply_fn=_const_logits(logits), head=C51)
    for i in range(6):
        positions = reward[i] + discount[i] * (1 - terminated[i]) * (z - 0.2 * next_logp[i])
        expected = _project_brute_force(positions, probs[low], z)
        np.testing.assert_allclose(np.asarray(target[i]), expected, atol=1e-5, err_msg=f"row {i}")
    np.testing.assert_allclose(np.asarray(target.sum(1)), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(target[2, 6:8]), [0.3, 0.7], atol=1e-5)  # terminal: r = 1.7 alone
    np.testing.assert_allclose(float(target[5, 7]), 1.0, atol=1e-6)  # terminal on an atom (z = 2)
    np.testing.assert_allclose(float(target[3, 0]), 1.0, atol=1e-6)  # every atom below the support: z_1


def test_hl_gauss_probabilities_are_the_normal_mass_of_each_bin_by_erf():
    import math

    ys = [0.0, 1.234, -4.9, 5.0, 12.0, -0.5]  # inside, near the edges, past the top (clipped), on a bin edge
    probs = np.asarray(critic.hl_gauss_probs(jnp.asarray(ys, jnp.float32), HL_GAUSS))
    w, sigma = 1.0, 0.75 * 1.0
    for row, y in zip(probs, ys):
        y = min(max(y, -5.0), 5.0)
        cdf = [0.5 * (1 + math.erf((-5.5 + k * w - y) / (math.sqrt(2) * sigma))) for k in range(12)]
        expected = np.diff(cdf) / (cdf[-1] - cdf[0])
        np.testing.assert_allclose(row, expected, atol=1e-6, err_msg=f"y={y}")
        if abs(y) < 3:  # away from the support's ends (which cut the tails) the histogram's mean is y
            assert abs(float(row @ np.linspace(-5, 5, 11)) - y) < 1e-3, y


def test_hl_gauss_target_is_the_scalar_soft_backup_of_the_heads_expectations():
    logits = np.random.default_rng(1).normal(size=(2, 11))
    means = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)) @ np.linspace(-5, 5, 11)
    batch = Transition(obs=jnp.zeros((2, 2)), action=jnp.zeros((2, 1)), reward=jnp.array([1.0, 1.0]),
                       next_obs=jnp.zeros((2, 2)), terminated=jnp.array([0.0, 1.0]), truncated=jnp.zeros(2))
    y = critic.soft_target(None, batch, jnp.zeros((2, 1)), jnp.zeros(2), 0.0, 0.9, _const_logits(logits),
                           head=HL_GAUSS)
    np.testing.assert_allclose(np.asarray(y), [1 + 0.9 * means.min(), 1.0], rtol=1e-5)


@pytest.mark.parametrize("head", [C51, HL_GAUSS], ids=["c51", "hl_gauss"])
def test_distributional_loss_pulls_the_heads_expectation_to_the_target(head):
    """Free logits per head, plain gradient descent on the cross-entropy: both heads' means go
    from the support's centre to the target value 2.3."""
    batch = Transition(obs=jnp.zeros((4, 2)), action=jnp.zeros((4, 1)), reward=jnp.full(4, 2.3),
                       next_obs=jnp.zeros((4, 2)), terminated=jnp.ones(4), truncated=jnp.zeros(4))
    apply_fn = lambda params, obs, action: jnp.broadcast_to(params[:, None], (2, obs.shape[0], 11))  # noqa: E731
    target = critic.soft_target(jnp.zeros((2, 11)), batch, jnp.zeros((4, 1)), jnp.zeros(4), 0.0, 0.9, apply_fn,
                                head=head)  # terminal rows: the target is r = 2.3 itself

    @jax.jit
    def train(params):
        loss = lambda p: critic.critic_loss(p, batch, target, apply_fn, head)[0]  # noqa: E731
        return jax.lax.fori_loop(0, 300, lambda _, p: p - 1.0 * jax.grad(loss)(p), params)

    params = jnp.zeros((2, 11))
    _, before = critic.critic_loss(params, batch, target, apply_fn, head)
    params = train(params)
    loss, after = critic.critic_loss(params, batch, target, apply_fn, head)
    assert abs(float(before["q_mean"])) < 1e-5 and float(before["td_abs_mean"]) > 2.0
    np.testing.assert_allclose(np.asarray(head.expectation(params)), 2.3, atol=0.05)
    np.testing.assert_allclose(float(after["target_q_mean"]), 2.3, rtol=1e-5)
    assert float(after["td_abs_mean"]) < 0.05


def test_distributional_config_needs_a_support_and_names_the_bad_field():
    from mjx_smfp.agents.sac import SAC

    with pytest.raises(ValueError, match="critic_type='c52' is not valid"):
        SAC.Config(critic_type="c52")
    with pytest.raises(ValueError, match="value_min=None must be a finite number"):
        SAC.Config(critic_type="c51", value_max=10.0)
    with pytest.raises(ValueError, match="value_min=3.0 must be < value_max=1.0"):
        SAC.Config(critic_type="hl_gauss", value_min=3.0, value_max=1.0)
    with pytest.raises(ValueError, match="num_atoms=1 must be >= 2"):
        SAC.Config(critic_type="c51", num_atoms=1, value_min=-1.0, value_max=1.0)
    with pytest.raises(ValueError, match="hl_gauss_sigma=0.0 must be finite and > 0"):
        SAC.Config(critic_type="hl_gauss", value_min=-1.0, value_max=1.0, hl_gauss_sigma=0.0)
    SAC.Config(num_atoms=1)  # "mse" ignores the support fields


# -- head combination -------------------------------------------------------------------------
def test_the_target_combines_heads_by_min_or_mean_for_scalar_and_distributional_heads():
    batch = Transition(obs=jnp.zeros((2, 2)), action=jnp.zeros((2, 1)), reward=jnp.array([1.0, 1.0]),
                       next_obs=jnp.zeros((2, 2)), terminated=jnp.zeros(2), truncated=jnp.zeros(2))
    args = (jnp.zeros((2, 1)), jnp.zeros(2), 0.0, 0.5)
    for how, expected in (("min", 2.0), ("mean", 3.0)):
        y = critic.soft_target(None, batch, *args, _const_q([4.0, 2.0]), combine=how)
        np.testing.assert_allclose(np.asarray(y), 1 + 0.5 * expected, rtol=1e-6)
    # two C51 heads, one-hot at z = 4 and z = 0: "min" bootstraps from the lower head only, "mean"
    # from their average distribution (half the mass each), i.e. the mean of the heads' means.
    logits = jnp.where(jnp.arange(11)[None] == jnp.array([[9], [5]]), 30.0, -30.0)
    low = critic.soft_target(None, batch, *args, _const_logits(logits), head=C51, combine="min")
    mixed = critic.soft_target(None, batch, *args, _const_logits(logits), head=C51, combine="mean")
    z = np.linspace(-5, 5, 11)
    np.testing.assert_allclose(np.asarray(low @ z), 1.0 + 0.5 * 0.0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(mixed @ z), 1.0 + 0.5 * 2.0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(mixed[0, [6, 8]]), [0.5, 0.5], atol=1e-5)  # 1 + 0.5 z at z = 0, 4
    with pytest.raises(ValueError, match="head combination 'max' is not valid"):
        critic.combine_heads(jnp.zeros((2, 3)), "max")


def test_scatter_add_projection_equals_the_dense_hat_kernel_form_on_and_off_the_support():
    """The C51 projection by two scatter-adds (issue 34) gives the dense [B, M, N] form's result,
    atoms on support points, between them, at both ends and beyond them (clipped) included."""
    head = critic.ValueHead("c51", num_atoms=101, value_min=-10.0, value_max=10.0)
    atoms = 9.0 * jax.random.normal(jax.random.PRNGKey(0), (256, 101))
    atoms = atoms.at[0, :6].set(jnp.array([-10.0, 10.0, 0.0, 0.2, -25.0, 40.0]))  # ends, points, beyond
    probs = jax.nn.softmax(jax.random.normal(jax.random.PRNGKey(1), (256, 101)), axis=-1)
    scatter = critic.categorical_projection(atoms, probs, head)
    np.testing.assert_allclose(np.asarray(scatter), np.asarray(critic.categorical_projection_dense(atoms, probs, head)),
                               atol=1e-5)
    np.testing.assert_allclose(np.asarray(scatter.sum(-1)), 1.0, atol=1e-5)
    one = critic.categorical_projection(jnp.array([[0.2, 10.0, 55.0]]), jnp.array([[0.5, 0.25, 0.25]]), head)
    assert float(one[0, 51]) == pytest.approx(0.5) and float(one[0, 100]) == pytest.approx(0.5)  # a point; the top


def test_the_c51_target_reports_the_mass_the_support_clips_to_its_ends():
    head = critic.ValueHead("c51", num_atoms=11, value_min=-5.0, value_max=5.0)
    batch = Transition(obs=jnp.zeros((2, 1)), action=jnp.zeros((2, 1)), reward=jnp.array([0.0, 100.0]),
                       next_obs=jnp.zeros((2, 1)), terminated=jnp.ones(2), truncated=jnp.zeros(2))
    out = jnp.zeros((2, 2, 11))  # uniform logits: terminal rows put all mass on the reward
    target = critic.soft_target(None, batch, jnp.zeros((2, 1)), jnp.zeros(2), 0.0, 0.99, lambda p, o, a: out,
                                head=head)
    _, metrics = critic.critic_loss(None, batch, target, lambda p, o, a: out, head)
    assert float(metrics["target_end_mass"]) == pytest.approx(0.5)  # the row at reward 100 is clipped to 5
