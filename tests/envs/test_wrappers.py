"""Training/evaluation wrappers: batching, truncation vs termination, final obs, NaN guard, stats.

A tiny dummy brax Env (a 1-D point mass) keeps every compile well under a second; one optional
test runs the real `inverted_pendulum` task when it exists.
"""
import importlib.util

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from brax.envs.base import Env, State

import envs
from envs.wrappers import evaluate, make_evaluator, wrap_for_training

NUM_ENVS = 4
DT = 0.1


class PointMass(Env):
    """1-D point mass: obs (pos, vel); terminates when |pos| > 1; reward -pos^2.

    The reset draws pos ~ U(-0.1, 0.1) and vel ~ U(0.5, 1.0) (so a zero-action episode drifts and
    its final obs differs from any reset obs). `pipeline_state["hidden"]` is a float that is not
    part of the observation, to check non-finite physics is found outside the observation."""

    observation_size = 2
    action_size = 1
    backend = "mjx"

    def reset(self, rng):
        k1, k2 = jax.random.split(rng)
        pos = jax.random.uniform(k1, (), minval=-0.1, maxval=0.1)
        vel = jax.random.uniform(k2, (), minval=0.5, maxval=1.0)
        ps = {"pos": pos, "vel": vel, "hidden": jnp.zeros(()), "contacts": jnp.zeros((), jnp.int32)}
        zero = jnp.zeros(())
        return State(ps, self._obs(ps), zero, zero, metrics={"pos": pos}, info={"visits": zero})

    def step(self, state, action):
        ps = state.pipeline_state
        vel = ps["vel"] + DT * action[0]
        pos = ps["pos"] + DT * vel
        hidden = ps["hidden"] * 2.0
        ps = dict(ps, pos=pos, vel=vel, hidden=hidden)
        done = (jnp.abs(pos) > 1.0).astype(jnp.float32)
        info = dict(state.info, visits=state.info["visits"] + 1.0)
        return state.replace(pipeline_state=ps, obs=self._obs(ps), reward=-pos ** 2, done=done,
                             metrics={"pos": pos}, info=info)

    @staticmethod
    def _obs(ps):
        return jnp.stack([ps["pos"], ps["vel"]])


def _run(wrapped, state, actions):
    """Scan `wrapped.step` over actions [T, num_envs, act]; returns (last state, all states)."""

    def body(s, a):
        s = wrapped.step(s, a)
        return s, s

    return jax.lax.scan(body, state, actions)


@pytest.fixture(scope="module")
def env():
    return PointMass()


@pytest.fixture(scope="module")
def wrapped(env):
    return wrap_for_training(env, NUM_ENVS, episode_length=3)


@pytest.fixture(scope="module")
def jit_fns(wrapped):
    return jax.jit(wrapped.reset), jax.jit(wrapped.step)


def test_batched_reset_and_step_have_env_leading_axis(wrapped, jit_fns):
    reset, step = jit_fns
    s0 = reset(jax.random.PRNGKey(0))
    s1 = step(s0, jnp.zeros((NUM_ENVS, 1)))
    for s in (s0, s1):
        assert s.obs.shape == (NUM_ENVS, 2)
        assert s.info["final_obs"].shape == (NUM_ENVS, 2)
        for k in ("terminated", "truncated", "episode_return", "episode_length",
                  "completed_return", "completed_length", "nonfinite"):
            assert s.info[k].shape == (NUM_ENVS,) and s.info[k].dtype == jnp.float32, k
        assert s.reward.shape == s.done.shape == (NUM_ENVS,)
        assert s.pipeline_state["pos"].shape == (NUM_ENVS,)
    # Envs are independent draws, not copies of one reset.
    assert len(np.unique(np.asarray(s0.obs[:, 1]))) == NUM_ENVS
    assert wrapped.observation_size == 2 and wrapped.action_size == 1


def test_invalid_sizes_are_refused(env):
    for kwargs in (dict(num_envs=0), dict(episode_length=0)):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            wrap_for_training(env, **{**dict(num_envs=NUM_ENVS, episode_length=3), **kwargs})


def test_time_limit_is_truncation_not_termination(jit_fns):
    reset, step = jit_fns
    s = reset(jax.random.PRNGKey(1))
    a = jnp.zeros((NUM_ENVS, 1))
    for t in range(1, 4):
        s = step(s, a)
        expect = float(t == 3)
        np.testing.assert_array_equal(s.done, expect)
        np.testing.assert_array_equal(s.info["truncated"], expect)
        np.testing.assert_array_equal(s.info["terminated"], 0.0)
    # After the truncation the episode counters restarted.
    np.testing.assert_array_equal(s.info["episode_length"], 0.0)


def test_termination_is_not_truncation_even_at_the_time_limit(env, jit_fns):
    reset, step = jit_fns
    s = reset(jax.random.PRNGKey(2))
    push = jnp.array([[0.0], [0.0], [200.0], [0.0]])  # env 2 leaves |pos| <= 1 on step 1
    s = step(s, push)
    np.testing.assert_array_equal(s.info["terminated"], [0, 0, 1, 0])
    np.testing.assert_array_equal(s.info["truncated"], 0.0)
    np.testing.assert_array_equal(s.done, [0, 0, 1, 0])
    # A termination on the last allowed step is a termination, not a truncation.
    s = step(s, jnp.zeros((NUM_ENVS, 1)))
    s = step(s, jnp.array([[200.0], [0.0], [0.0], [0.0]]))
    np.testing.assert_array_equal(s.info["terminated"], [1, 0, 0, 0])
    np.testing.assert_array_equal(s.info["truncated"], [0, 1, 0, 1])  # env 2 restarted at step 1


def test_final_obs_is_the_raw_next_obs_and_obs_is_a_fresh_reset(env, jit_fns):
    reset, step = jit_fns
    s = reset(jax.random.PRNGKey(3))
    a = jnp.zeros((NUM_ENVS, 1))
    s = step(step(s, a), a)
    # What the raw env returns from the pre-final state, env by env.
    raw_inner = s.replace(info={"visits": s.info["visits"]}, done=jnp.zeros(NUM_ENVS))
    raw_next = jax.vmap(env.step)(raw_inner, a)
    s = step(s, a)  # third step: every env truncates
    assert np.all(np.asarray(s.done) == 1.0)
    np.testing.assert_allclose(s.info["final_obs"], raw_next.obs, rtol=1e-6)
    np.testing.assert_allclose(s.reward, raw_next.reward, rtol=1e-6)
    # The obs to act on is a reset obs, not s'.
    assert np.all(np.abs(np.asarray(s.obs[:, 0])) <= 0.1)
    gap = np.abs(np.asarray(s.info["final_obs"]) - np.asarray(s.obs))
    assert np.all(gap.max(axis=1) > 1e-3), "final_obs was overwritten by the reset obs"
    # The wrapped env's own info was reset with the state.
    np.testing.assert_array_equal(s.info["visits"], 0.0)
    # Where no episode ended, final_obs is just the next obs.
    s2 = step(s, a)
    np.testing.assert_array_equal(s2.info["final_obs"], s2.obs)


def test_auto_reset_draws_fresh_noise_each_time(jit_fns):
    reset, step = jit_fns
    s = reset(jax.random.PRNGKey(4))
    a = jnp.zeros((NUM_ENVS, 1))
    reset_obs = [s.obs]
    for _ in range(2):
        for _ in range(3):
            s = step(s, a)
        reset_obs.append(s.obs)
    v = np.stack([np.asarray(o[:, 1]) for o in reset_obs])  # [3 resets, envs] initial velocities
    assert len(np.unique(v)) == v.size, "a reset state was re-used"


def test_nonfinite_physics_in_one_env_is_contained(jit_fns):
    reset, step = jit_fns
    s = reset(jax.random.PRNGKey(5))
    s = step(s, jnp.zeros((NUM_ENVS, 1)))
    ps = dict(s.pipeline_state, hidden=s.pipeline_state["hidden"].at[1].set(jnp.nan))
    s_bad = s.replace(pipeline_state=ps)  # not in the obs: only the physics is poisoned
    s_ok = step(s, jnp.zeros((NUM_ENVS, 1)))
    out = step(s_bad, jnp.zeros((NUM_ENVS, 1)))

    np.testing.assert_array_equal(out.info["nonfinite"], [0, 1, 0, 0])
    np.testing.assert_array_equal(out.info["terminated"], [0, 1, 0, 0])
    np.testing.assert_array_equal(out.done, [0, 1, 0, 0])
    for leaf in jax.tree.leaves(out):
        if jnp.issubdtype(leaf.dtype, jnp.inexact):
            assert np.all(np.isfinite(np.asarray(leaf))), "non-finite value escaped the wrapper"
    # The bad env was reset and its transition replaced by finite stand-ins.
    assert abs(float(out.obs[1, 0])) <= 0.1 and float(out.pipeline_state["hidden"][1]) == 0.0
    assert float(out.reward[1]) == 0.0
    np.testing.assert_array_equal(out.info["final_obs"][1], s.obs[1])
    assert float(out.info["episode_length"][1]) == 0.0
    # The other envs are exactly what they would have been without the NaN.
    keep = np.array([0, 2, 3])
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(s_ok)):
        np.testing.assert_array_equal(np.asarray(a)[keep], np.asarray(b)[keep])


def test_nonfinite_reward_or_action_is_contained(jit_fns):
    reset, step = jit_fns
    s = reset(jax.random.PRNGKey(6))
    out = step(s, jnp.array([[0.0], [0.0], [0.0], [jnp.inf]]))
    np.testing.assert_array_equal(out.info["nonfinite"], [0, 0, 0, 1])
    assert np.all(np.isfinite(np.asarray(out.obs))) and np.all(np.isfinite(np.asarray(out.reward)))
    assert np.all(np.isfinite(np.asarray(out.metrics["pos"])))


def test_episode_statistics_sum_the_episode(jit_fns):
    reset, step = jit_fns
    s = reset(jax.random.PRNGKey(7))
    a = jnp.zeros((NUM_ENVS, 1))
    rewards = []
    for t in range(3):
        s = step(s, a)
        rewards.append(np.asarray(s.reward))
        if t < 2:
            np.testing.assert_allclose(s.info["episode_return"], np.sum(rewards, 0), rtol=1e-6)
            np.testing.assert_array_equal(s.info["episode_length"], t + 1)
            np.testing.assert_array_equal(s.info["completed_return"], 0.0)
            np.testing.assert_array_equal(s.info["completed_length"], 0.0)
    np.testing.assert_allclose(s.info["completed_return"], np.sum(rewards, 0), rtol=1e-6)
    np.testing.assert_array_equal(s.info["completed_length"], 3.0)
    np.testing.assert_array_equal(s.info["episode_return"], 0.0)
    assert np.all(np.asarray(s.info["completed_return"]) < 0)


def test_auto_reset_inside_scan_resets_exactly_the_ended_envs(env):
    """Across a scan with one env ending alone and three ending together, every ended env (and
    only those) restarts from a fresh reset, and the others run on untouched."""
    wrapped = wrap_for_training(env, NUM_ENVS, episode_length=5)
    # Env 0 terminates at step 2, envs 1-3 truncate together at step 5, then again in lock-step.
    actions = jnp.zeros((12, NUM_ENVS, 1)).at[1, 0, 0].set(300.0)
    _, traj = jax.jit(_run, static_argnums=0)(wrapped, wrapped.reset(jax.random.PRNGKey(8)), actions)
    done = np.asarray(traj.done)
    np.testing.assert_array_equal(done.sum(1), [0, 1, 0, 0, 3, 0, 1, 0, 0, 3, 0, 1])
    length = np.asarray(traj.info["episode_length"])
    np.testing.assert_array_equal(length[done == 1], 0.0)
    np.testing.assert_array_equal(length[1:][done[1:] == 0], length[:-1][done[1:] == 0] + 1)
    # Ended envs restart near the origin; running envs keep drifting.
    pos = np.asarray(traj.obs[..., 0])
    assert np.all(np.abs(pos[done == 1]) <= 0.1)
    assert np.all(np.abs(pos[4, :1] - pos[3, :1]) > 0.01)  # env 0 was mid-episode at step 5


def test_evaluate_counts_only_the_first_episode(env):
    # Envs that start fast are pushed out within a few steps; the others drift out much later,
    # so envs end at different times and the early ones must stop accumulating reward.
    def policy(obs):
        return jnp.where(obs[..., 1:2] > 0.75, 50.0, 0.0)

    n = 6
    res = evaluate(env, policy, jax.random.PRNGKey(9), num_envs=n, episode_length=100)
    assert res.returns.shape == (n,)
    assert len(np.unique(np.asarray(res.lengths))) > 1, "test needs envs ending at different times"
    # Recompute every env's first episode by hand with the raw env.
    for i, key in enumerate(jax.random.split(jax.random.PRNGKey(9), n)):
        s, total, length = env.reset(key), 0.0, 0
        while length < 100:
            s = env.step(s, policy(s.obs))
            total, length = total + float(s.reward), length + 1
            if float(s.done):
                break
        np.testing.assert_allclose(res.returns[i], total, rtol=1e-5)
        assert float(res.lengths[i]) == length
    np.testing.assert_allclose(res.mean_return, np.mean(np.asarray(res.returns)), rtol=1e-6)


def test_make_evaluator_takes_params_and_stops_at_the_time_limit(env):
    run = make_evaluator(env, lambda gain, obs, key: -gain * obs[:, :1], num_envs=2, episode_length=7)
    res = run(jnp.float32(1.0), jax.random.PRNGKey(10))
    np.testing.assert_array_equal(res.lengths, 7.0)
    assert np.all(np.asarray(res.returns) < 0)


class PointMassWithVelocity(PointMass):
    """The point mass reporting its velocity as the locomotion tasks' `x_velocity` metric."""

    def reset(self, rng):
        state = super().reset(rng)
        return state.replace(metrics={"x_velocity": state.pipeline_state["vel"]})

    def step(self, state, action):
        state = super().step(state, action)
        return state.replace(metrics={"x_velocity": state.pipeline_state["vel"]})


def test_the_evaluator_reports_each_episodes_mean_forward_velocity():
    """Forward velocity = mean over the episode's steps of the task's x_velocity (NaN for a task
    without it)."""

    def policy(params, obs, key):
        return jnp.zeros((obs.shape[0], 1))

    res = make_evaluator(PointMassWithVelocity(), policy, num_envs=3, episode_length=4)(None, jax.random.PRNGKey(1))
    start = np.asarray(jax.vmap(PointMassWithVelocity().reset)(jax.random.split(jax.random.PRNGKey(1), 3)).metrics[
        "x_velocity"])
    np.testing.assert_allclose(np.asarray(res.forward_velocity), start, rtol=1e-5)  # zero force: constant velocity
    assert np.all(np.isnan(np.asarray(make_evaluator(PointMass(), policy, 3, 4)(None, jax.random.PRNGKey(1))
                                      .forward_velocity)))


@pytest.mark.skipif(importlib.util.find_spec("envs.tasks.inverted_pendulum") is None,
                    reason="inverted_pendulum task not written yet")
def test_inverted_pendulum_runs_wrapped_in_scan():
    task = envs.make("inverted_pendulum")
    wrapped = wrap_for_training(task, 2, episode_length=20)
    actions = jnp.ones((25, 2, task.action_size))  # full push: the pole falls (termination)
    state = jax.jit(wrapped.reset)(jax.random.PRNGKey(0))
    _, traj = jax.jit(_run, static_argnums=0)(wrapped, state, actions)
    assert traj.obs.shape == (25, 2, task.observation_size)
    assert float(traj.info["terminated"].sum()) >= 2
    assert np.all(np.isfinite(np.asarray(traj.reward)))
    np.testing.assert_array_equal(traj.info["nonfinite"], 0.0)  # healthy MJX data is all finite
