"""The multimodal bandit: equal optimal value at every mode, penalised centre, one-step episodes,
mode classification — the properties the SMFP-vs-Gaussian tests rely on."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs.multimodal import MultimodalBandit
from envs.wrappers import wrap_for_training


@pytest.fixture(scope="module")
def bandit():
    return envs.make("multimodal")


def test_default_has_four_modes_at_plus_minus_0_6(bandit):
    assert isinstance(bandit, MultimodalBandit)
    assert bandit.num_modes == 4 and bandit.action_size == 2 and bandit.observation_size == 4
    np.testing.assert_allclose(np.sort(np.abs(bandit.centres), 0), 0.6, atol=1e-6)
    assert len({tuple(np.sign(c)) for c in bandit.centres}) == 4  # one centre per quadrant


def test_optimal_value_is_equal_at_every_centre_and_nowhere_higher(bandit):
    at_centres = bandit.reward(jnp.asarray(bandit.centres))
    np.testing.assert_allclose(at_centres, bandit.optimal_value, rtol=1e-6)
    grid = jnp.stack(jnp.meshgrid(jnp.linspace(-1, 1, 81), jnp.linspace(-1, 1, 81)), -1).reshape(-1, 2)
    assert float(bandit.reward(grid).max()) <= bandit.optimal_value + 1e-6


def test_origin_and_midpoints_between_modes_are_penalised(bandit):
    assert float(bandit.reward(jnp.zeros(2))) < 1e-3
    mids = jnp.array([[0.0, 0.6], [0.6, 0.0], [0.0, -0.6], [-0.6, 0.0]])
    assert float(bandit.reward(mids).max()) < 0.05
    # The mean of a policy spread evenly over the four modes is the origin: a bad action.
    assert float(bandit.reward(jnp.mean(jnp.asarray(bandit.centres), 0))) < 1e-3


def test_every_step_terminates_and_reward_matches(bandit):
    state = jax.jit(bandit.reset)(jax.random.PRNGKey(0))
    assert state.obs.shape == (4,) and float(state.done) == 0.0
    nxt = jax.jit(bandit.step)(state, jnp.array([-0.6, 0.6]))
    assert float(nxt.done) == 1.0
    np.testing.assert_allclose(nxt.reward, 1.0, rtol=1e-5)
    assert float(nxt.metrics["mode"]) == 1.0


def test_mode_of_classifies_centres_neighbourhoods_and_gaps(bandit):
    centres = jnp.asarray(bandit.centres)
    np.testing.assert_array_equal(bandit.mode_of(centres), np.arange(4))
    np.testing.assert_array_equal(bandit.mode_of(centres + 0.1), np.arange(4))
    gaps = jnp.array([[0.0, 0.0], [0.0, 0.6], [-0.6, 0.0], [1.0, -0.0]])
    np.testing.assert_array_equal(bandit.mode_of(gaps), -1)
    # Batched shapes, and mass per mode.
    assert bandit.mode_of(jnp.zeros((3, 5, 2))).shape == (3, 5)
    acts = jnp.concatenate([jnp.tile(centres[:1], (3, 1)), centres[1:2], jnp.zeros((4, 2))])
    np.testing.assert_allclose(bandit.mode_masses(acts), [3 / 8, 1 / 8, 0, 0])


def test_single_mode_variant_and_extra_action_dims():
    one = envs.make("multimodal", num_modes=1)
    assert one.num_modes == 1
    np.testing.assert_allclose(one.reward(jnp.array([0.6, 0.6])), 1.0, rtol=1e-6)
    assert float(one.reward(jnp.array([-0.6, -0.6]))) < 1e-3  # no other mode anywhere
    wide = envs.make("multimodal", action_size=4)
    assert wide.action_size == 4
    np.testing.assert_allclose(wide.reward(jnp.asarray(wide.centres)), 1.0, rtol=1e-6)
    off = jnp.asarray(wide.centres).at[:, 3].set(0.5)  # extra dims away from 0 cost reward
    assert float(wide.reward(off).max()) < 0.1
    np.testing.assert_array_equal(wide.mode_of(jnp.asarray(wide.centres)), np.arange(4))


def test_random_context_differs_per_reset_and_reward_ignores_it():
    env = envs.make("multimodal", random_context=True)
    s = jax.vmap(env.reset)(jax.random.split(jax.random.PRNGKey(1), 3))
    assert len(np.unique(np.asarray(s.obs[:, 0]))) == 3
    out = jax.vmap(env.step)(s, jnp.tile(jnp.asarray(env.centres[2]), (3, 1)))
    np.testing.assert_allclose(out.reward, 1.0, rtol=1e-5)


def test_training_wrapper_resets_the_bandit_after_every_step(bandit):
    wrapped = wrap_for_training(bandit, 8, episode_length=1000)
    s = jax.jit(wrapped.reset)(jax.random.PRNGKey(2))
    s = jax.jit(wrapped.step)(s, jnp.tile(jnp.asarray(bandit.centres[0]), (8, 1)))
    np.testing.assert_array_equal(s.done, 1.0)
    np.testing.assert_array_equal(s.info["terminated"], 1.0)
    np.testing.assert_array_equal(s.info["truncated"], 0.0)
    np.testing.assert_allclose(s.info["completed_return"], 1.0, rtol=1e-5)


@pytest.mark.parametrize("kwargs", [dict(num_modes=0), dict(action_size=1), dict(mode_width=0.0)])
def test_invalid_options_fail_with_the_option_named(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        MultimodalBandit(**kwargs)
