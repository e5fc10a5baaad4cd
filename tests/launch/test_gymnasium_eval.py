"""launch.gymnasium_eval: our policies in Gymnasium's own MuJoCo envs, checked against the MJX task."""
import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from launch import gymnasium_eval

EPISODES, SEED, HORIZON = 3, 7, 60
ACTIONS = (0.0, 0.3)  # constant actions in [-1, 1]: a wrong ctrlrange mapping changes how fast the pole falls


def pd_policy(obs):
    """Balances Gymnasium's inverted pendulum (pole angle, its velocity, cart position and velocity)."""
    return np.clip([3.0 * obs[1] + 0.5 * obs[3] + 0.1 * obs[0] + 0.1 * obs[2]], -1.0, 1.0)


def mjx_returns(start_states, actions):
    """Returns [actions, episodes] of our MJX inverted pendulum from Gymnasium's start states
    under each constant action, over HORIZON steps (every episode here ends well before):
    one compiled call for all of them."""
    env = envs.make("inverted_pendulum")

    def episode(qpos, qvel, action):
        data = env.state_from_qpos_qvel(qpos, qvel)
        state = env.reset(jax.random.PRNGKey(0)).replace(pipeline_state=data, obs=env.observation(data))

        def step(carry, _):
            state, alive = carry
            state = env.step(state, jnp.full((env.action_size,), action, jnp.float32))
            return (state, alive * (1.0 - state.done)), alive * state.reward

        _, rewards = jax.lax.scan(step, (state, jnp.float32(1.0)), None, length=HORIZON)
        return rewards.sum()

    qpos, qvel = (np.stack(x) for x in zip(*start_states))
    grid = [np.repeat(qpos[None], len(actions), 0), np.repeat(qvel[None], len(actions), 0),
            np.repeat(np.asarray(actions, np.float32)[:, None], len(start_states), 1)]
    flat = [jnp.asarray(x.reshape(-1, *x.shape[2:]), jnp.float32) for x in grid]
    return np.asarray(jax.jit(jax.vmap(episode))(*flat)).reshape(len(actions), len(start_states))


def gymnasium_start_states():
    """(qpos, qvel) of the first EPISODES resets of the seeded env, as rollout_gymnasium sees them."""
    env = gymnasium.make("InvertedPendulum-v5")
    starts = []
    for i in range(EPISODES):
        env.reset(seed=SEED if i == 0 else None)
        data = env.unwrapped.data
        starts.append((data.qpos.copy(), data.qvel.copy()))
    return starts


@pytest.fixture(scope="module")
def mjx_by_action():
    return dict(zip(ACTIONS, mjx_returns(gymnasium_start_states(), ACTIONS)))


@pytest.mark.parametrize("action", ACTIONS)
def test_constant_action_returns_match_the_mjx_task_from_the_same_start_states(action, mjx_by_action):
    theirs = gymnasium_eval.rollout_gymnasium("inverted_pendulum", {"physics": "fast"}, lambda obs: np.full(1, action),
                                              episodes=EPISODES, seed=SEED)
    assert theirs.shape == (EPISODES,) and np.all(np.isfinite(theirs))
    assert np.all((theirs > 2) & (theirs < HORIZON))  # the pole falls within the horizon
    np.testing.assert_allclose(mjx_by_action[action], theirs, atol=1.0)  # same physics: same step of falling, +-1


def test_a_pd_policy_balances_for_the_whole_time_limit_and_options_reach_gymnasium():
    returns = gymnasium_eval.rollout_gymnasium("inverted_pendulum", {"reset_noise_scale": 0.05}, pd_policy,
                                               episodes=2, seed=0, episode_length=300)
    np.testing.assert_array_equal(returns, [300.0, 300.0])
    env = gymnasium_eval.make_env("inverted_pendulum", {"reset_noise_scale": 0.05, "physics": "gymnasium"})
    assert env.unwrapped._reset_noise_scale == 0.05


def test_tasks_and_options_gymnasium_lacks_are_clear_errors():
    with pytest.raises(ValueError, match="'multimodal' has no Gymnasium counterpart"):
        gymnasium_eval.make_env("multimodal", {})
    with pytest.raises(ValueError, match="Hopper-v5 does not accept"):
        gymnasium_eval.make_env("hopper", {"no_such_option": 1})


def test_video_of_the_first_episode_or_a_clear_gl_message(tmp_path):
    path = str(tmp_path / "episode.gif")  # GIF: written by Pillow, no ffmpeg plugin needed
    try:
        returns = gymnasium_eval.rollout_gymnasium("inverted_pendulum", {}, lambda obs: np.zeros(1), episodes=1,
                                                   video=path)
    except RuntimeError as err:  # a machine without any OpenGL backend
        assert "MUJOCO_GL" in str(err)
        return
    assert returns[0] > 2
    import imageio

    assert len(imageio.mimread(path)) == int(returns[0]) + 2  # the reset frame + every step
