"""Cheap checks of every task against Gymnasium v5's definitions (sizes, timing, reset
distribution, physics presets), plus one brax-compatibility check on inverted_pendulum.

Nothing here compiles a physics step except `test_brax_training_wrappers_run_unchanged`.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from envs import parity
from envs.physics import FAST_PHYSICS, PhysicsOptions

TASKS = list(parity.GYMNASIUM_IDS)


@pytest.mark.parametrize("name", TASKS)
def test_sizes_and_timing_match_gymnasium(name):
    env = envs.make(name)
    gym_env = parity.make_gymnasium(name, env)
    assert env.observation_size == gym_env.observation_space.shape[0]
    assert env.action_size == gym_env.action_space.shape[0]
    assert env.dt == pytest.approx(gym_env.dt)
    assert env.frame_skip == gym_env.frame_skip
    assert env.backend == "mjx"
    np.testing.assert_allclose(env.mj_model.actuator_ctrlrange, gym_env.model.actuator_ctrlrange)


def _gymnasium_resets(name, env, n):
    gym_env = parity.make_gymnasium(name, env)
    rows = []
    for seed in range(n):
        gym_env.reset(seed=seed)
        rows.append(np.concatenate([gym_env.data.qpos, gym_env.data.qvel]))
    return np.array(rows)


@pytest.mark.parametrize("name", TASKS)
def test_reset_distribution_matches_gymnasium(name):
    """Per coordinate of (qpos, qvel) at reset: same support, mean and spread as Gymnasium's
    (compares 1000 draws each; fixed coordinates must be equal)."""
    n = 1000
    env = envs.make(name)
    sample = jax.jit(jax.vmap(lambda k: jnp.concatenate(env.reset_qpos_qvel(k))))
    ours = np.asarray(sample(jax.random.split(jax.random.PRNGKey(0), n)), np.float64)
    theirs = _gymnasium_resets(name, env, n)
    assert ours.shape == theirs.shape

    fixed = theirs.std(0) == 0
    np.testing.assert_allclose(ours[:, fixed], theirs[:, fixed], atol=1e-6)
    spread = theirs.std(0)
    np.testing.assert_allclose(ours.std(0)[~fixed], spread[~fixed], rtol=0.1)
    # means agree within ~5 standard errors
    assert np.all((np.abs(ours.mean(0) - theirs.mean(0)) < 5 * spread / np.sqrt(n))[~fixed])
    # same support (bounded noise): ours stays inside Gymnasium's empirical range, widened by 5%
    lo, hi = theirs.min(0), theirs.max(0)
    margin = 0.05 * (hi - lo) + 1e-6
    bounded = ~fixed & (np.abs(theirs - theirs.mean(0)).max(0) < 2.5 * spread)  # uniform, not Gaussian
    assert np.all(ours.min(0)[bounded] >= (lo - margin)[bounded])
    assert np.all(ours.max(0)[bounded] <= (hi + margin)[bounded])


def test_physics_presets_are_named_and_validated():
    env_cls = type(envs.make("inverted_pendulum"))
    assert env_cls.resolve_physics("fast") == FAST_PHYSICS
    assert env_cls.resolve_physics("gymnasium") == PhysicsOptions("newton", 100, 50)
    custom = PhysicsOptions("cg", iterations=3, ls_iterations=5)
    assert env_cls.resolve_physics(custom) is custom
    with pytest.raises(ValueError, match="physics"):
        env_cls.resolve_physics("turbo")
    with pytest.raises(ValueError, match="solver"):
        PhysicsOptions("pgs")
    env = envs.make("halfcheetah", physics="fast")
    assert (env.mj_model.opt.iterations, env.mj_model.opt.ls_iterations) == (FAST_PHYSICS.iterations,
                                                                            FAST_PHYSICS.ls_iterations)


def test_humanoid_gymnasium_preset_replaces_pgs_with_newton():
    env = envs.make("humanoid")
    assert env.mj_model.opt.solver == 2  # mjSOL_NEWTON (Gymnasium's XML says PGS, which MJX lacks)
    assert env.mj_model.opt.iterations == 50


def test_brax_training_wrappers_run_unchanged():
    """brax's own training wrappers accept the env: reset/step jit, metrics keep one structure,
    `done` is float32 and termination comes through."""
    from brax.envs.wrappers import training

    env = envs.make("inverted_pendulum")
    wrapped = training.wrap(env, episode_length=5, action_repeat=1)
    state = jax.jit(wrapped.reset)(jax.random.split(jax.random.PRNGKey(0), 4))
    step = jax.jit(wrapped.step)
    assert state.obs.shape == (4, env.observation_size)
    structure = jax.tree.structure(state.metrics)
    for _ in range(6):  # one episode_length boundary crossed
        state = step(state, jnp.ones((4, env.action_size)))
    assert jax.tree.structure(state.metrics) == structure
    assert state.done.dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(state.obs)))
    assert set(state.metrics) >= {"reward_survive"}


@pytest.mark.parametrize("name", TASKS)
def test_reset_and_step_states_have_one_structure(name):
    """brax's wrappers need `reset` and `step` to return identically structured States
    (same metrics keys, float32 reward/done, obs of observation_size). Traced, not compiled."""
    env = envs.make(name)
    reset = jax.eval_shape(env.reset, jax.random.PRNGKey(0))
    stepped = jax.eval_shape(env.step, reset, jax.ShapeDtypeStruct((env.action_size,), jnp.float32))
    assert jax.tree.structure(reset) == jax.tree.structure(stepped)
    for a, b in zip(jax.tree.leaves(reset), jax.tree.leaves(stepped)):
        assert (a.shape, a.dtype) == (b.shape, b.dtype)
    assert stepped.obs.shape == (env.observation_size,)
    assert stepped.done.dtype == stepped.reward.dtype == jnp.float32
    assert all(v.shape == () for v in stepped.metrics.values())
