"""Shared critic: soft min-backup bootstraps through truncation, stops at termination; Polyak."""
import jax
import jax.numpy as jnp
import numpy as np

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
    args = (batch, jnp.zeros((4, 1)), jnp.zeros(4), 0.1, 0.99, apply_fn)
    loss, metrics = critic.critic_loss({"w": jnp.array([1.0, 1.0])}, {"w": jnp.zeros(2)}, *args)
    assert float(loss) == 0.0 and float(metrics["target_q_mean"]) == 1.0
    grads = jax.grad(lambda p: critic.critic_loss(p, {"w": jnp.zeros(2)}, *args)[0])({"w": jnp.array([3.0, -1.0])})
    assert float(grads["w"][0]) > 0 > float(grads["w"][1])


def test_polyak_moves_targets_by_tau():
    out = critic.polyak({"a": jnp.zeros(3)}, {"a": jnp.ones(3)}, 0.25)
    np.testing.assert_allclose(np.asarray(out["a"]), 0.25)


def test_critic_loss_is_the_sum_over_heads_of_each_heads_batch_mean():
    batch = Transition(obs=jnp.zeros((4, 2)), action=jnp.zeros((4, 1)), reward=jnp.zeros(4),
                       next_obs=jnp.zeros((4, 2)), terminated=jnp.ones(4), truncated=jnp.zeros(4))
    # Targets are 0 (terminal, zero reward); heads sit at 1 and 3: 0.5 * 1 + 0.5 * 9 = 5.
    loss, _ = critic.critic_loss(None, None, batch, jnp.zeros((4, 1)), jnp.zeros(4), 0.0, 0.9,
                                 _const_q([1.0, 3.0]))
    np.testing.assert_allclose(float(loss), 5.0, rtol=1e-6)
