"""The per-device step functions over a device mesh: `shard_map` with the train state's layout
(mjx_smfp/engine.py `state_specs`), with no zero-size array crossing the map's boundary.

Why the last part: XLA's Shardy partitioner (jaxlib 0.11.2) crashes while compiling a `shard_map`
that takes or returns a zero-size array (segmentation fault in its
ManualComputationUnusedInputsPattern, on 2 CPU devices as on 1 process per device). MJX's data
holds several (e.g. the contact arrays of a model without contacts), so every MJX task crashed
the sharded engine. Zero-size arrays carry no data: the map passes only the others, and each
side rebuilds the empty ones as zeros of their known shape (outside: laid out as the state specs
say, so a resumed state and a fresh one have the same shardings and share one compilation).
"""
from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from mjx_smfp.distributed import DATA_AXIS


def leaf_specs(specs, tree) -> list:
    """One PartitionSpec per leaf of `tree`, from `specs`, a pytree prefix of it."""
    full = jax.tree_util.tree_map(lambda spec, sub: jax.tree_util.tree_map(lambda _: spec, sub), specs, tree,
                                  is_leaf=lambda x: isinstance(x, P))
    return jax.tree_util.tree_leaves(full, is_leaf=lambda x: isinstance(x, P))


class StateBoundary:
    """Packs a train state into its non-empty leaves and back, inside the map (per-device
    shapes) or outside it (global shapes), for a state shaped as `abstract` (global shapes)."""

    def __init__(self, abstract, specs, mesh: Mesh):
        leaves, self.treedef = jax.tree_util.tree_flatten(abstract)
        self.specs = leaf_specs(specs, abstract)
        self.mesh, self.n = mesh, int(mesh.shape[DATA_AXIS])
        self.leaves = [jax.ShapeDtypeStruct(x.shape, x.dtype) for x in leaves]
        self.empty = [math.prod(x.shape) == 0 for x in leaves]
        self.kept_specs = tuple(s for s, e in zip(self.specs, self.empty) if not e)

    def pack(self, ts) -> tuple:
        """The state's non-empty leaves, in tree order."""
        return tuple(x for x, e in zip(jax.tree_util.tree_leaves(ts), self.empty) if not e)

    def _zeros(self, leaf, spec, per_device: bool) -> jax.Array:
        shape = leaf.shape
        if len(spec) and spec[0] == DATA_AXIS and per_device:
            shape = (shape[0] // self.n, *shape[1:])
        zeros = jnp.zeros(shape, leaf.dtype)
        return zeros if per_device else jax.lax.with_sharding_constraint(zeros, NamedSharding(self.mesh, spec))

    def unpack(self, kept, per_device: bool):
        """The state from its non-empty leaves, its empty ones rebuilt as zeros."""
        kept, out = iter(kept), []
        for leaf, spec, empty in zip(self.leaves, self.specs, self.empty):
            out.append(self._zeros(leaf, spec, per_device) if empty else next(kept))
        return jax.tree_util.tree_unflatten(self.treedef, out)


def shard_steps(init: Callable, warmup: Callable, train: Callable, mesh: Mesh, specs, check_vma: bool):
    """(init, warmup, train) over `mesh`: `init(key)` -> state, `warmup(state)` -> (state,
    summary), `train(state, count)` -> (state, summary); keys, counts and summaries replicated,
    the state laid out by `specs`; to be jitted by the caller."""
    def smap(fn, in_specs, out_specs):
        return jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=check_vma)

    key = jax.ShapeDtypeStruct((2,), jnp.uint32)
    b = StateBoundary(jax.eval_shape(smap(init, P(), specs), key), specs, mesh)  # traced, not compiled
    kept = b.kept_specs

    def packed(step):
        """`step` on a packed state (and any further arguments), returning (packed state, summary)."""
        def body(state, *args):
            ts, summary = step(b.unpack(state, per_device=True), *args)
            return b.pack(ts), summary
        return body

    init_map = smap(lambda k: b.pack(init(k)), P(), kept)
    warmup_map = smap(packed(warmup), (kept,), (kept, P()))
    train_map = smap(packed(train), (kept, P()), (kept, P()))

    def sharded_init(k):
        return b.unpack(init_map(k), per_device=False)

    def sharded_warmup(ts):
        state, summary = warmup_map(b.pack(ts))
        return b.unpack(state, per_device=False), summary

    def sharded_train(ts, count):
        state, summary = train_map(b.pack(ts), count)
        return b.unpack(state, per_device=False), summary

    return sharded_init, sharded_warmup, sharded_train
