"""n-step sampling from the replay ring against a brute-force reference on a recorded trajectory:
episode ends of both kinds (termination: no bootstrap; truncation: bootstrap from the stored
final observation), the ring's wrap-around, the write head, and no window crossing envs."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mjx_smfp import critic, replay
from mjx_smfp.types import Transition

NUM_ENVS, CAPACITY, N_STEP, GAMMA = 3, 20, 4, 0.9  # 20 is no multiple of 3: slots drift per lap


def _trajectory(iterations=9, seed=0):
    """Per-iteration batches of NUM_ENVS rows; obs = (global row index, env), next_obs = obs + 0.5,
    a termination and truncations placed so that windows meet both, the wrap and the head."""
    rng = np.random.default_rng(seed)
    reward = rng.normal(size=(iterations, NUM_ENVS)).astype(np.float32)
    terminated = np.zeros((iterations, NUM_ENVS), np.float32)
    truncated = np.zeros((iterations, NUM_ENVS), np.float32)
    terminated[5, 0] = terminated[2, 1] = 1.0
    truncated[6, 1] = truncated[3, 0] = truncated[4, 2] = 1.0  # env 2 reaches the head unended
    batches = []
    for t in range(iterations):
        g = (t * NUM_ENVS + np.arange(NUM_ENVS)).astype(np.float32)
        obs = np.stack([g, np.arange(NUM_ENVS, dtype=np.float32)], axis=1)
        batches.append(Transition(obs=jnp.asarray(obs), action=jnp.asarray(g[:, None]), reward=jnp.asarray(reward[t]),
                                  next_obs=jnp.asarray(obs + 0.5), terminated=jnp.asarray(terminated[t]),
                                  truncated=jnp.asarray(truncated[t])))
    return batches, reward, terminated, truncated


def _reference(g, iterations, reward, terminated, truncated):
    """Brute force for global row g: walk the env's rows one iteration at a time."""
    t, env = divmod(g, NUM_ENVS)
    total, m = 0.0, 0
    while m < N_STEP and t + m < iterations:  # rows of iterations >= `iterations` are not written yet
        total += GAMMA ** m * float(reward[t + m, env])
        m += 1
        if terminated[t + m - 1, env] or truncated[t + m - 1, env]:
            break
    last = (t + m - 1) * NUM_ENVS + env
    return dict(reward=total, discount=GAMMA ** m, terminated=float(terminated[t + m - 1, env]),
                truncated=float(truncated[t + m - 1, env]), next_obs=[last + 0.5, env + 0.5], obs=[g, env])


@functools.lru_cache(maxsize=None)
def _gather():
    return jax.jit(functools.partial(replay.gather_n_step, num_envs=NUM_ENVS, n_step=N_STEP, gamma=GAMMA))


@pytest.mark.parametrize("iterations", [4, 9], ids=["filling-write-head", "wrapped-ring"])
def test_n_step_windows_match_a_brute_force_walk_of_each_envs_rows(iterations):
    batches, reward, terminated, truncated = _trajectory()
    buf = replay.init(CAPACITY, 2, 1)
    for b in batches[:iterations]:  # the write head sits after iteration `iterations - 1`
        buf = replay.insert(buf, b)
    written = iterations * NUM_ENVS
    slots = np.arange(int(buf.size))
    out = jax.tree_util.tree_map(np.asarray, _gather()(buf, jnp.asarray(slots, jnp.int32)))
    kinds = set()
    for i, slot in enumerate(slots):
        g = int(out.obs[i, 0])  # the slot's global row, read back from the ring
        assert g % CAPACITY == slot and written - CAPACITY <= g < written
        ref = _reference(g, iterations, reward, terminated, truncated)
        np.testing.assert_allclose(out.reward[i], ref["reward"], rtol=1e-5, atol=1e-6, err_msg=f"row {g}")
        np.testing.assert_allclose(out.discount[i], ref["discount"], rtol=1e-6, err_msg=f"row {g}")
        np.testing.assert_array_equal(out.next_obs[i], ref["next_obs"], err_msg=f"row {g}")  # same env, right row
        np.testing.assert_array_equal(out.obs[i], ref["obs"])
        np.testing.assert_array_equal(out.action[i, 0], g)
        assert out.terminated[i] == ref["terminated"] and out.truncated[i] == ref["truncated"], g
        m = round(np.log(ref["discount"]) / np.log(GAMMA))
        kinds.add("terminated" if ref["terminated"] else "truncated" if ref["truncated"] else
                  "full" if m == N_STEP else "head")
    assert kinds == {"terminated", "truncated", "full", "head"}, kinds  # every kind of window was checked


def test_one_step_sampling_is_the_plain_sample_with_discount_gamma():
    batches, *_ = _trajectory()
    buf = replay.init(CAPACITY, 2, 1)
    for b in batches:
        buf = replay.insert(buf, b)
    key = jax.random.PRNGKey(3)
    plain = replay.sample(buf, key, 64)
    one = replay.sample_n_step(buf, key, 64, num_envs=NUM_ENVS, n_step=1, gamma=GAMMA)
    assert plain.discount is None
    for name in ("obs", "action", "reward", "next_obs", "terminated", "truncated"):
        np.testing.assert_array_equal(np.asarray(getattr(one, name)), np.asarray(getattr(plain, name)), err_msg=name)
    np.testing.assert_allclose(np.asarray(one.discount), GAMMA, rtol=1e-7)


def test_the_target_bootstraps_with_the_rows_discount_and_one_step_rows_keep_gamma():
    q = lambda params, obs, action: jnp.full((2, obs.shape[0]), 10.0)  # noqa: E731 - both heads 10
    base = dict(obs=jnp.zeros((3, 1)), action=jnp.zeros((3, 1)), reward=jnp.array([1.0, 1.0, 1.0]),
                next_obs=jnp.zeros((3, 1)), terminated=jnp.array([0.0, 1.0, 0.0]), truncated=jnp.zeros(3))
    zero = (None, jnp.zeros((3, 1)), jnp.zeros(3), 0.0, 0.9)
    y = critic.soft_target(zero[0], Transition(**base, discount=jnp.array([0.81, 0.9, 0.729])), *zero[1:], q)
    np.testing.assert_allclose(np.asarray(y), [1 + 0.81 * 10, 1.0, 1 + 0.729 * 10], rtol=1e-6)
    y1 = critic.soft_target(zero[0], Transition(**base), *zero[1:], q)
    np.testing.assert_allclose(np.asarray(y1), [1 + 0.9 * 10, 1.0, 1 + 0.9 * 10], rtol=1e-6)


def test_the_compiled_loop_trains_on_n_step_c51_batches_with_mean_heads():
    """The whole path in one small engine: n-step windows sampled in `update` (stride: this
    device's env count), a C51 critic, mean head combination for targets and actor."""
    from mjx_smfp.agents.sac import SAC
    from mjx_smfp.config import TrainConfig
    from mjx_smfp.engine import Engine
    from tests.dummy_envs import DummyTask

    cfg = TrainConfig(env="multimodal", num_envs=4, episode_length=6, total_env_steps=200, batch_size=16,
                      updates_per_step=1, replay_capacity=64, learning_starts=40, iterations_per_call=10,
                      eval_interval=0, n_step=3)
    agent_cfg = SAC.Config(actor_hidden=(16,), critic_hidden=(16,), gamma=0.9, critic_type="c51", num_atoms=11,
                           value_min=-2.0, value_max=12.0, q_target_combine="mean", q_actor_combine="mean")
    engine = Engine(cfg, agent_cfg, task=DummyTask())
    ts, _ = engine.warmup(engine.init_state())
    for _ in range(2):  # 20 iterations of 4 rows into 64 slots: the ring wraps
        ts, summary = engine.train_chunk(ts)
    assert int(ts.updates) == 20 and bool(summary["all_finite"])
    assert 0.0 < float(summary["q_mean"]) < 12.0 and float(summary["critic_loss"]) > 0
