"""Replay ring: wrap-around order, sampling only filled slots, in-place insert, memory check."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mjx_smfp import replay
from mjx_smfp.agents.base import Transition


def _batch(start, n, obs_size=2, action_size=1):
    ids = jnp.arange(start, start + n, dtype=jnp.float32)
    return Transition(obs=jnp.repeat(ids[:, None], obs_size, 1), action=jnp.repeat(ids[:, None], action_size, 1),
                      reward=ids, next_obs=jnp.repeat(ids[:, None] + 0.5, obs_size, 1),
                      terminated=(ids % 2), truncated=1 - (ids % 2))


def test_insert_wraps_around_and_overwrites_oldest_rows():
    buf = replay.init(10, 2, 1)
    insert = jax.jit(replay.insert)
    for k in range(4):  # 4 batches of 3 = 12 rows into capacity 10
        buf = insert(buf, _batch(3 * k, 3))
    rewards = np.asarray(buf.data.reward)
    # rows 10, 11 overwrote slots 0, 1; slots 2..9 hold rows 2..9.
    np.testing.assert_array_equal(rewards, [10, 11, 2, 3, 4, 5, 6, 7, 8, 9])
    assert int(buf.write_index) == 2 and int(buf.size) == 10
    np.testing.assert_array_equal(np.asarray(buf.data.next_obs[:, 0]), rewards + 0.5)
    np.testing.assert_array_equal(np.asarray(buf.data.terminated), rewards % 2)
    np.testing.assert_array_equal(np.asarray(buf.data.truncated), 1 - rewards % 2)


def test_sample_draws_only_filled_slots_and_covers_them():
    buf = replay.insert(replay.init(100, 2, 1), _batch(1, 7))  # rewards 1..7 in slots 0..6
    batch = jax.jit(replay.sample, static_argnums=2)(buf, jax.random.PRNGKey(0), 4096)
    values = set(np.asarray(batch.reward).tolist())
    assert values == set(range(1, 8)), values  # never an empty (zero) slot, every filled one seen
    # each row stays a consistent transition
    np.testing.assert_array_equal(np.asarray(batch.obs[:, 0]), np.asarray(batch.reward))


def test_insert_updates_the_donated_ring_in_place():
    """With the buffer donated, XLA writes into the same device memory (no whole-ring copy)."""
    buf = replay.init(4096, 8, 4)
    insert = jax.jit(replay.insert, donate_argnums=0)
    buf = insert(buf, _batch(0, 16, 8, 4))  # first call compiles
    before = buf.data.obs.unsafe_buffer_pointer()
    buf = insert(buf, _batch(16, 16, 8, 4))
    assert buf.data.obs.unsafe_buffer_pointer() == before
    assert int(buf.size) == 32


def test_memory_check_reports_size_and_a_capacity_that_fits():
    need = replay.nbytes(1_000_000, 10, 2)
    assert need == 1_000_000 * (10 + 2 + 1 + 10 + 1 + 1) * 4
    with pytest.raises(ValueError, match=r"replay_capacity=1000000 needs .* a capacity of at most 10000 fits"):
        replay.check_fits(1_000_000, 10, 2, free_bytes=10 * 100 * 1000, fraction=1.0)
    assert replay.check_fits(1000, 10, 2) == replay.nbytes(1000, 10, 2)  # real free memory: fits
