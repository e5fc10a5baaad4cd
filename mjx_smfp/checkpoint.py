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

Several processes: saves and restores are collective (every process calls them); orbax writes
each process's addressable shards (replicated leaves once). Each checkpoint records the topology
that wrote it (processes, devices); a resume on another one is refused naming both, since the
replay ring and env states are laid out per device.
Damage: a save is committed by orbax with a rename (a crash mid-save leaves only a temporary
directory, ignored), then gets a manifest of its files (mjx_smfp/checkpoint_files.py).
`restore_intact` (what `--resume` uses) checks the newest checkpoint, falls back to the newest
intact one with a warning naming the damaged step (moved aside to `<directory>.damaged/`), and
with none intact raises NoIntactCheckpointError naming the directory.
"""
from __future__ import annotations

import math
import os
import sys
from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

from mjx_smfp import checkpoint_files


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


class CheckpointError(ValueError):
    """A checkpoint cannot be used; the message says which and why."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint's tree paths differ from the state the run expects."""


class TopologyMismatchError(CheckpointError):
    """The checkpoint was written by another number of processes or devices."""


class NoIntactCheckpointError(CheckpointError):
    """Every checkpoint of the directory is damaged."""


def topology(tree) -> dict:
    """{"processes", "devices"} of a (possibly abstract) state: the process count, and the most
    devices any leaf is laid out over (1 without shardings)."""
    devices = [len(s.device_set) for s in (getattr(leaf, "sharding", None) for leaf in jax.tree_util.tree_leaves(tree))
               if s is not None]
    return {"processes": jax.process_count(), "devices": max(devices, default=1)}


def _on_every_process(flag: bool, all_of: bool = False) -> bool:
    """`flag` as process 0 has it (one decision for all), or with `all_of` true only where it
    is true on every process (a single process: `flag`)."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    if all_of:
        return bool(np.all(multihost_utils.process_allgather(np.int32(flag))))
    return bool(multihost_utils.broadcast_one_to_all(np.int32(flag)))


def _warn(message: str) -> None:
    if jax.process_index() == 0:
        print(f"warning: {message}", file=sys.stderr, flush=True)


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
        """Save `state` at `step` (collective), leaving out the subtrees whose paths start with
        `skip`, with its topology; then (process 0) the manifest of its files."""
        self._manager.save(int(step), args=ocp.args.PyTreeSave(_saved(state, skip)), force=True,
                           custom_metadata={"topology": topology(state)})
        self._manager.wait_until_finished()
        if jax.process_index() == 0:
            checkpoint_files.write_manifest(self.path(step))
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
        default = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        abstract = {path: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=getattr(leaf, "sharding", None) or default)
                    for path, leaf in expected.items()}
        restored = self._manager.restore(step, args=ocp.args.PyTreeRestore(
            abstract, restore_args=ocp.checkpoint_utils.construct_restore_args(abstract)))
        leaves = [restored[path] if path in restored
                  else jnp.zeros(leaf.shape, leaf.dtype, device=getattr(leaf, "sharding", None))
                  for path, leaf in leaf_paths(template)]
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(template), leaves)

    def check_topology(self, step: int, template) -> None:
        """TopologyMismatchError naming both when checkpoint `step` was written by another
        number of processes or devices than `template` is laid out over (none recorded: older
        checkpoints, accepted)."""
        written = (self._manager.metadata(step).custom_metadata or {}).get("topology")
        here = topology(template)
        if written and (written.get("processes"), written.get("devices")) != (here["processes"], here["devices"]):
            raise TopologyMismatchError(
                f"checkpoint {self.path(step)} was written by {written.get('processes')} process(es) with "
                f"{written.get('devices')} device(s) in all; this run has {here['processes']} process(es) with "
                f"{here['devices']} device(s). Resume with the same process count (launch.multihost "
                f"--num-processes {written.get('processes')}) and devices per process")

    def _problem(self, step: int, template, skip: tuple[str, ...]) -> tuple[Any, Optional[str]]:
        """(restored state, None), or (None, what is damaged) for checkpoint `step`; the same
        verdict on every process. A topology or structure mismatch raises (not damage)."""
        problem = checkpoint_files.damage(self.path(step)) if jax.process_index() == 0 else None
        if not _on_every_process(problem is None):
            return None, problem or "found damaged by process 0"
        try:
            self.check_topology(step, template)
            state, problem = self.restore(template, step, skip), None
        except CheckpointError:
            raise
        except Exception as err:  # noqa: BLE001 - orbax/tensorstore report damage in many types
            state, problem = None, f"it cannot be read: {type(err).__name__}: {str(err).strip()[:200]}"
        if not _on_every_process(problem is None, all_of=True):
            return None, problem or "another process could not read it"
        return state, None

    def restore_intact(self, template, skip: tuple[str, ...] = ()) -> tuple[Any, int]:
        """(state, step) of the newest checkpoint that is intact (its files match their manifest
        and it restores), warning on stderr about each newer damaged one, which is then moved to
        `<directory>.damaged/`. NoIntactCheckpointError (naming the directory) when none is."""
        self._manager.reload()
        steps = sorted(self._manager.all_steps(), reverse=True)
        if not steps:
            raise FileNotFoundError(f"no checkpoint under {self.directory}")
        damaged = []
        for step in steps:
            state, problem = self._problem(step, template, skip)
            if problem is None:
                self._set_aside(damaged, step)
                return state, step
            damaged.append(step)
            _warn(f"checkpoint {self.path(step)} (env step {step:,}) is damaged: {problem}")
        raise NoIntactCheckpointError(
            f"no intact checkpoint in {self.directory}: all {len(steps)} ({', '.join(map(str, steps))}) are damaged "
            f"(see the warnings above); start a new run, or restore the files from a backup")

    def _set_aside(self, damaged: list[int], resumed: int) -> None:
        """Move the damaged checkpoints (newer than the one resumed) aside, on process 0, then reload."""
        if not damaged:
            return
        if jax.process_index() == 0:
            for step in damaged:
                where = checkpoint_files.set_aside(self.path(step), self.directory + ".damaged")
                _warn(f"the damaged checkpoint of env step {step:,} was moved to {where}; resuming from the "
                      f"newest intact one, {self.path(resumed)}")
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices(f"mjx_smfp:set_aside:{resumed}")
        self._manager.reload()

    def close(self):
        self._manager.close()
