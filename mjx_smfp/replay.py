"""Device-resident replay ring of `Transition`s with O(batch) insert and uniform sampling.

The ring is a pytree of fixed-capacity arrays plus a write index and a fill count.
`insert` scatters the new rows at `(write_index + arange(n)) % capacity`, so its cost
is proportional to the inserted batch; jit the caller with the train state donated and
XLA updates the buffers in place (no copy of the whole ring, unlike brax's replay once
full). `sample` draws indices uniformly from the filled part only.

All functions are per-device pure functions: under data parallelism each device holds
its own ring (its shard) and calls them on it unchanged.
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


def sample(buffer: ReplayBuffer, rng: jax.Array, batch_size: int) -> Transition:
    """`batch_size` rows drawn uniformly (with replacement) from the filled slots."""
    idx = jax.random.randint(rng, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    return jax.tree_util.tree_map(lambda buf: jnp.take(buf, idx, axis=0, mode="clip"), buffer.data)


def free_memory_bytes(device=None) -> tuple[int, str]:
    """(free bytes, where measured): accelerator memory_stats when it has them, else host RAM."""
    device = device if device is not None else jax.devices()[0]
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
