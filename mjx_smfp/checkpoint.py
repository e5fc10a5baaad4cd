"""Orbax checkpoints of the FULL train state (params, optimiser states, targets,
temperature, normaliser, replay ring, env states, RNG, counters).

Leaves are saved under their tree path ("agent.actor_params.params.Dense_0.kernel",
"replay.data.obs", ...) and restored into a template (the Engine's `abstract_state()`), so
any pytree (flax, brax, mjx dataclasses) round-trips without per-type code, adding a field
never shifts the others, and a checkpoint whose structure differs from the template is an
error naming the first missing or extra path. Zero-size leaves (e.g. empty contact arrays of
an mjx.Data) are not saved (orbax cannot) and are rebuilt from the template. Saving is
synchronous: the loop donates the state to its next call, so the save must be complete
before the buffers are reused. Arrays are stored uncompressed: zstd made a humanoid replay ring's
save take ~17 s instead of ~2 s on 2 cores (random-valued floats barely compress), too slow for a
save between a stop signal and SLURM's SIGKILL; compressed checkpoints of older runs still restore.
"""
from __future__ import annotations

import math
import os
from typing import Any, Optional

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp


def _key_name(entry) -> str:
    for attr in ("name", "key", "idx"):
        if hasattr(entry, attr):
            return str(getattr(entry, attr))
    return str(entry)


def leaf_paths(tree) -> list[tuple[str, Any]]:
    """(dotted tree path, leaf) for every leaf of `tree`, in tree order."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return [(".".join(_key_name(e) for e in path), leaf) for path, leaf in flat]


def _saved(tree, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The leaves that are stored: every non-empty leaf, by its path, except those under `skip`
    (path prefixes, e.g. "replay.data" to leave the replay ring out)."""
    return {path: leaf for path, leaf in leaf_paths(tree)
            if math.prod(leaf.shape) > 0 and not any(path == s or path.startswith(s + ".") for s in skip)}


class CheckpointMismatchError(ValueError):
    """The checkpoint's tree paths differ from the state the run expects."""


class Checkpointer:
    """Numbered checkpoints (by env step) under `directory`, keeping the newest `max_to_keep`."""

    def __init__(self, directory: str, max_to_keep: int = 3):
        self.directory = os.path.abspath(directory)
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                                 enable_async_checkpointing=False),
            item_handlers=ocp.PyTreeCheckpointHandler(use_compression=False),  # so metadata reads before any save
        )

    def save(self, step: int, state, skip: tuple[str, ...] = ()) -> str:
        """Save `state` at `step`, leaving out the subtrees whose paths start with `skip`."""
        self._manager.save(int(step), args=ocp.args.PyTreeSave(_saved(state, skip)), force=True)
        self._manager.wait_until_finished()
        return self.path(step)

    def latest_step(self) -> Optional[int]:
        self._manager.reload()
        return self._manager.latest_step()

    def all_steps(self) -> tuple[int, ...]:
        """The steps of every checkpoint kept on disk."""
        self._manager.reload()
        return tuple(self._manager.all_steps())

    def path(self, step: int) -> str:
        return os.path.join(self.directory, str(int(step)))

    def latest_path(self) -> Optional[str]:
        step = self.latest_step()
        return None if step is None else self.path(step)

    def restore(self, template, step: Optional[int] = None, skip: tuple[str, ...] = ()):
        """The saved state at `step` (latest by default) in `template`'s tree structure; leaves
        under `skip` (not saved) come back as zeros."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint under {self.directory}")
        expected = _saved(template, skip)
        metadata = self._manager.item_metadata(step)
        stored = set(getattr(metadata, "tree", metadata).keys())
        missing, extra = sorted(set(expected) - stored), sorted(stored - set(expected))
        if missing or extra:
            what = f"missing {missing[0]!r}" if missing else f"unexpected {extra[0]!r}"
            raise CheckpointMismatchError(
                f"checkpoint {self.path(step)} does not match this run's state: {what} "
                f"({len(missing)} missing, {len(extra)} extra paths); was it written by another version or config?")
        default = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        abstract = {path: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=getattr(leaf, "sharding", None) or default)
                    for path, leaf in expected.items()}
        restored = self._manager.restore(step, args=ocp.args.PyTreeRestore(
            abstract, restore_args=ocp.checkpoint_utils.construct_restore_args(abstract)))
        leaves = [restored[path] if path in restored
                  else jnp.zeros(leaf.shape, leaf.dtype, device=getattr(leaf, "sharding", None))
                  for path, leaf in leaf_paths(template)]
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(template), leaves)

    def close(self):
        self._manager.close()
