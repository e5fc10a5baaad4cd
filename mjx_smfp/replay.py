"""Device-resident replay ring of `Transition`s with O(batch) insert and uniform sampling.

The ring is a pytree of fixed-capacity arrays plus a write index and a fill count.
`insert` scatters the new rows at `(write_index + arange(n)) % capacity`, so its cost
is proportional to the inserted batch; jit the caller with the train state donated and
XLA updates the buffers in place (no copy of the whole ring, unlike brax's replay once
full). `sample` draws indices uniformly from the filled part only.

All functions are per-device pure functions: under data parallelism each device holds
its own ring (its shard) and calls them on it unchanged.

n-step returns belong to sampling (`sample_n_step`), not to the rollout. The loop inserts
one row per env per iteration, always `num_envs` rows at a time in env order, so the k-th
successor of a row (the same env, k iterations later) sits k * num_envs slots further on,
modulo the capacity. A window gathers those successors until the first row that ends an
episode: a termination ends it without bootstrap, a truncation ends it bootstrapping from
that row's stored `next_obs` (the true final observation). Start rows are drawn exactly as
`sample` draws them (uniformly over the filled slots); a window that would run past the
write head stops early at the newest row of its env, i.e. it only uses what exists and
becomes an m-step return (m < n), which is as valid a target as the one-step one. Under
data parallelism the ring of each device holds its own num_envs/num_devices envs, so the
stride is the per-device env count.
"""
from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from mjx_smfp.types import Transition


@struct.dataclass
class ReplayBuffer:
    data: Transition  # every leaf has leading dimension `capacity`
    write_index: jax.Array  # int32: slot the next row goes to
    size: jax.Array  # int32: number of filled slots (<= capacity)

    @property
    def capacity(self) -> int:
        return int(self.data.reward.shape[0])


def transition_spec(obs_size: int, action_size: int, dtype=jnp.float32) -> Transition:
    """Shapes of one stored row (no leading dimension)."""
    vec = lambda n: jax.ShapeDtypeStruct((n,), dtype)  # noqa: E731
    scalar = jax.ShapeDtypeStruct((), dtype)
    return Transition(obs=vec(obs_size), action=vec(action_size), reward=scalar,
                      next_obs=vec(obs_size), terminated=scalar, truncated=scalar)


def nbytes(capacity: int, obs_size: int, action_size: int, dtype=jnp.float32) -> int:
    """Bytes the ring's arrays take on the device."""
    row = sum(int(np.prod(s.shape)) * jnp.dtype(s.dtype).itemsize
              for s in jax.tree_util.tree_leaves(transition_spec(obs_size, action_size, dtype)))
    return capacity * row


def init(capacity: int, obs_size: int, action_size: int, dtype=jnp.float32) -> ReplayBuffer:
    """An empty ring of `capacity` rows."""
    data = jax.tree_util.tree_map(lambda s: jnp.zeros((capacity, *s.shape), s.dtype),
                                  transition_spec(obs_size, action_size, dtype))
    return ReplayBuffer(data=data, write_index=jnp.zeros((), jnp.int32), size=jnp.zeros((), jnp.int32))


def insert(buffer: ReplayBuffer, batch: Transition) -> ReplayBuffer:
    """Write `batch` (leading dim n <= capacity) at the write index, wrapping around."""
    capacity = buffer.capacity
    n = batch.reward.shape[0]
    if n > capacity:
        raise ValueError(f"inserting {n} rows into a replay ring of capacity {capacity}")
    idx = (buffer.write_index + jnp.arange(n, dtype=jnp.int32)) % capacity
    data = jax.tree_util.tree_map(
        lambda buf, x: buf.at[idx].set(x.astype(buf.dtype), mode="promise_in_bounds",
                                       unique_indices=True),
        buffer.data, batch)
    return ReplayBuffer(
        data=data,
        write_index=(buffer.write_index + n) % capacity,
        size=jnp.minimum(buffer.size + n, capacity),
    )


def _sample_slots(buffer: ReplayBuffer, rng: jax.Array, batch_size: int) -> jax.Array:
    """`batch_size` slots drawn uniformly (with replacement) from the filled ones."""
    return jax.random.randint(rng, (batch_size,), 0, jnp.maximum(buffer.size, 1))


def sample(buffer: ReplayBuffer, rng: jax.Array, batch_size: int) -> Transition:
    """`batch_size` rows drawn uniformly (with replacement) from the filled slots."""
    idx = _sample_slots(buffer, rng, batch_size)
    return jax.tree_util.tree_map(lambda buf: jnp.take(buf, idx, axis=0, mode="clip"), buffer.data)


def gather_n_step(buffer: ReplayBuffer, idx: jax.Array, num_envs: int, n_step: int, gamma: float) -> Transition:
    """The n-step transitions starting at slots `idx` [B] (see the module docstring).

    For a start row of env j at iteration t, with m <= n the number of rows summed (m stops at
    the first termination or truncation, at n, or at the newest row of env j):
      reward     = sum_{i<m} gamma^i r_{t+i}
      next_obs   = s'_{t+m-1} (the true next / final observation of the last row summed)
      terminated = terminated_{t+m-1} (then no bootstrap), truncated = truncated_{t+m-1}
      discount   = gamma^m, the factor of the bootstrap value
    obs and action are the start row's. Costs O(B * n) scalar gathers plus one [B, obs] gather
    of next_obs: nothing that scales with the capacity.
    """
    capacity = buffer.capacity
    data = buffer.data
    steps = jnp.arange(n_step, dtype=jnp.int32)
    slots = (idx[:, None] + steps[None, :] * num_envs) % capacity  # [B, n]: the same env, t + i
    # Rows written after each start row (the oldest filled slot is write_index - size): the
    # i-th successor exists iff i * num_envs <= that count. Never read past the write head.
    oldest = (buffer.write_index - buffer.size) % capacity
    newer_rows = buffer.size - 1 - (idx - oldest) % capacity  # [B]
    written = (steps[None, :] * num_envs <= newer_rows[:, None]) | (steps[None, :] == 0)
    take = lambda buf: jnp.take(buf, slots, axis=0, mode="clip")  # noqa: E731
    reward, terminated, truncated = take(data.reward), take(data.terminated), take(data.truncated)
    ended = (terminated > 0) | (truncated > 0)
    ended_before = (jnp.cumsum(ended.astype(jnp.int32), axis=1) - ended.astype(jnp.int32)) > 0
    summed = written & ~ended_before  # [B, n]; column 0 is always summed
    num_summed = summed.sum(axis=1)  # m in [1, n]
    powers = jnp.asarray(gamma, reward.dtype) ** steps.astype(reward.dtype)
    last = jnp.take_along_axis(slots, (num_summed - 1)[:, None], axis=1)[:, 0]
    pick = lambda buf: jnp.take(buf, last, axis=0, mode="clip")  # noqa: E731
    first = lambda buf: jnp.take(buf, idx, axis=0, mode="clip")  # noqa: E731
    return Transition(
        obs=first(data.obs), action=first(data.action),
        reward=jnp.sum(jnp.where(summed, powers[None, :] * reward, 0.0), axis=1),
        next_obs=pick(data.next_obs), terminated=pick(data.terminated), truncated=pick(data.truncated),
        discount=jnp.asarray(gamma, reward.dtype) ** num_summed.astype(reward.dtype))


def sample_n_step(buffer: ReplayBuffer, rng: jax.Array, batch_size: int, num_envs: int, n_step: int,
                  gamma: float) -> Transition:
    """`batch_size` n-step transitions (`gather_n_step`) from start rows drawn as `sample`
    draws them. `num_envs`: rows per insert on this device (the stride between an env's
    successive rows); `gamma`: the agent's discount. The batch carries `discount` = gamma^m."""
    return gather_n_step(buffer, _sample_slots(buffer, rng, batch_size), num_envs, n_step, gamma)


def free_memory_bytes(device=None) -> tuple[int, str]:
    """(free bytes, where measured): accelerator memory_stats when it has them, else host RAM."""
    device = device if device is not None else jax.local_devices()[0]
    stats = None
    try:
        stats = device.memory_stats()
    except Exception:  # noqa: BLE001 - backends without stats raise various errors
        stats = None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0)), f"{device.platform} device memory"
    pages = os.sysconf("SC_AVPHYS_PAGES")
    return int(pages * os.sysconf("SC_PAGE_SIZE")), "host RAM"


def _human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return f"{n:.1f} GiB"


def check_fits(capacity: int, obs_size: int, action_size: int, num_shards: int = 1,
               fraction: float = 0.8, free_bytes: int | None = None) -> int:
    """Raise if a ring of `capacity` rows (split over `num_shards` devices) exceeds `fraction`
    of free memory; the message says its size and the largest capacity that fits. Returns bytes."""
    where = "memory (as given)"
    if free_bytes is None:
        free_bytes, where = free_memory_bytes()
    need = nbytes(capacity, obs_size, action_size) // max(num_shards, 1)
    budget = int(free_bytes * fraction)
    if need > budget:
        row = nbytes(1, obs_size, action_size)
        fits = budget * max(num_shards, 1) // row
        raise ValueError(
            f"replay_capacity={capacity} needs {_human(need)} per device but only "
            f"{_human(free_bytes)} of {where} is free ({fraction:.0%} usable); "
            f"a capacity of at most {fits} fits")
    return need
