"""Orbax checkpoints of the FULL train state (params, optimiser states, targets,
temperature, normaliser, replay ring, env states, RNG, counters).

The state is saved as its flat list of leaves and restored into the tree structure of a
template (a concrete or `jax.eval_shape` state built from the same config), so any pytree
(flax, brax, mjx dataclasses) round-trips without per-type serialisation code. Saving is
synchronous: the loop donates the state to its next call, so the save must be complete
before the buffers are reused.
"""
from __future__ import annotations

import math
import os
from typing import Any, Optional

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp


def _flat(tree) -> dict[str, Any]:
    """Leaves by index; zero-size leaves (e.g. empty contact arrays of an mjx.Data) are left
    out (orbax cannot save them) and rebuilt from the template on restore."""
    return {f"leaf_{i:05d}": leaf for i, leaf in enumerate(jax.tree_util.tree_leaves(tree)) if leaf.size > 0}


class Checkpointer:
    """Numbered checkpoints (by env step) under `directory`, keeping the newest `max_to_keep`."""

    def __init__(self, directory: str, max_to_keep: int = 3):
        self.directory = os.path.abspath(directory)
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                                 enable_async_checkpointing=False),
        )

    def save(self, step: int, state) -> str:
        self._manager.save(int(step), args=ocp.args.StandardSave(_flat(state)), force=True)
        self._manager.wait_until_finished()
        return self.path(step)

    def latest_step(self) -> Optional[int]:
        self._manager.reload()
        return self._manager.latest_step()

    def path(self, step: int) -> str:
        return os.path.join(self.directory, str(int(step)))

    def latest_path(self) -> Optional[str]:
        step = self.latest_step()
        return None if step is None else self.path(step)

    def restore(self, template, step: Optional[int] = None):
        """The saved state at `step` (latest by default) in `template`'s tree structure."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint under {self.directory}")
        leaves, treedef = jax.tree_util.tree_flatten(template)
        sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        abstract = {
            f"leaf_{i:05d}": jax.ShapeDtypeStruct(leaf.shape, leaf.dtype,
                                                  sharding=getattr(leaf, "sharding", None) or sharding)
            for i, leaf in enumerate(leaves) if math.prod(leaf.shape) > 0
        }
        restored = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
        out = [restored[f"leaf_{i:05d}"] if f"leaf_{i:05d}" in restored else jnp.zeros(leaf.shape, leaf.dtype)
               for i, leaf in enumerate(leaves)]
        return jax.tree_util.tree_unflatten(treedef, out)

    def close(self):
        self._manager.close()
