"""The reward scale (SimbaV2 / FlashSAC): the running discounted return per env, its spread and
largest magnitude, the divisor they give, and that a paper-level return then fits the parallel
recipe's C51 support unclipped on every task (issue 34)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mjx_smfp import critic, normalizer, recipes


def _run(rewards, dones, gamma):
    state = normalizer.init_reward_scale(rewards.shape[1])
    step = jax.jit(lambda s, r, d: normalizer.update_reward_scale(s, r, d, gamma))
    for r, d in zip(rewards, dones):
        state = step(state, jnp.asarray(r), jnp.asarray(d))
    return state


def test_the_return_restarts_after_an_episode_ends_and_its_moments_and_max_are_exact():
    gamma = 0.9
    rewards = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]])
    dones = np.array([[0.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    state = _run(rewards, dones, gamma)
    seen = np.array([1.0, 2.0, 1.9, 2.0, 2.71, 3.8])  # env 0: 1, 1.9, 2.71; env 1: 2 (ends), 2, 3.8
    np.testing.assert_allclose(np.asarray(state.returns), [2.71, 3.8], rtol=1e-6)
    assert float(state.mean) == pytest.approx(seen.mean(), rel=1e-5)
    assert float(state.var) == pytest.approx(seen.var(), rel=1e-4)
    assert float(state.max_abs) == pytest.approx(3.8)
    divisor = float(normalizer.reward_scale(state, g_max=5.0))
    assert divisor == pytest.approx(max(np.sqrt(seen.var()), 3.8 / 5.0), rel=1e-4)


@pytest.mark.parametrize("task, reward_per_step", [("halfcheetah", 15.8), ("humanoid", 12.6), ("hopper", 4.0)])
def test_a_paper_level_q_is_not_clipped_by_the_parallel_recipes_support(task, reward_per_step):
    """A policy earning the best published return (SMFP.md §8: HalfCheetah 15.8K, FlashSAC Humanoid
    12.6K over 1,000 steps) has Q ~ r / (1 - gamma); after the reward scale it sits inside +-value_max
    with room to spare, and its C51 target puts no mass on the support's ends."""
    gamma, steps, envs = 0.99, 1000, 4
    rewards = np.full((steps, envs), reward_per_step, np.float32)
    dones = np.zeros((steps, envs), np.float32)
    dones[-1] = 1.0
    state = _run(rewards, dones, gamma)
    scale = float(normalizer.reward_scale(state, recipes.PARALLEL["reward_g_max"]))
    q = reward_per_step / (1 - gamma) / scale
    assert q <= recipes.PARALLEL["reward_g_max"] + 1e-3 < recipes.PARALLEL["value_max"]
    head = critic.ValueHead("c51", 101, recipes.PARALLEL["value_min"], recipes.PARALLEL["value_max"])
    atoms = jnp.full((1, 101), q) + 0.5 * (head.support() - q)[None]  # a spread around Q, all inside
    target = critic.categorical_projection(atoms, jnp.full((1, 101), 1 / 101), head)
    assert float(target[0, 0] + target[0, -1]) < 1e-6
