"""Checkpoints are keyed by tree path: a round trip is exact (zero-size leaves included), and a
checkpoint whose structure differs from the run's state is an error naming the first path."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from mjx_smfp.checkpoint import Checkpointer, CheckpointMismatchError, leaf_paths


@struct.dataclass
class Old:
    params: dict
    temperature: jax.Array
    md_coef: jax.Array


@struct.dataclass
class New:  # one field added before two same-shape scalars: an index-keyed restore would swap them
    params: dict
    extra: jax.Array
    temperature: jax.Array
    md_coef: jax.Array


def _old():
    return Old(params={"w": jnp.arange(6.0).reshape(2, 3), "empty": jnp.zeros((4, 0))},
               temperature=jnp.float32(0.1), md_coef=jnp.float32(0.01))


def test_leaves_are_named_by_their_tree_path():
    assert [p for p, _ in leaf_paths(_old())] == ["params.empty", "params.w", "temperature", "md_coef"]


def test_round_trip_is_exact_and_zero_size_leaves_come_back(tmp_path):
    ckpt = Checkpointer(str(tmp_path))
    ckpt.save(7, _old())
    restored = Checkpointer(str(tmp_path)).restore(jax.eval_shape(_old))
    for a, b in zip(jax.tree_util.tree_leaves(_old()), jax.tree_util.tree_leaves(restored)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        assert a.shape == b.shape


def test_a_changed_state_structure_is_an_error_naming_the_missing_path(tmp_path):
    Checkpointer(str(tmp_path)).save(7, _old())
    new = jax.eval_shape(lambda: New(params=_old().params, extra=jnp.float32(0), temperature=jnp.float32(0),
                                     md_coef=jnp.float32(0)))
    with pytest.raises(CheckpointMismatchError, match="missing 'extra'"):
        Checkpointer(str(tmp_path)).restore(new)


def test_a_skipped_subtree_is_not_written_and_comes_back_as_zeros(tmp_path):
    Checkpointer(str(tmp_path)).save(7, _old(), skip=("params",))
    restored = Checkpointer(str(tmp_path)).restore(jax.eval_shape(_old), skip=("params",))
    assert float(restored.temperature) == np.float32(0.1)
    np.testing.assert_array_equal(np.asarray(restored.params["w"]), np.zeros((2, 3)))
    with pytest.raises(CheckpointMismatchError, match="missing 'params.w'"):  # a full restore names what is absent
        Checkpointer(str(tmp_path)).restore(jax.eval_shape(_old))



def _bytes_under(directory) -> int:
    return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())


def test_arrays_are_saved_uncompressed_and_older_compressed_checkpoints_still_restore(tmp_path):
    """A zero array of 1 MiB stays >= 1 MiB on disk (zstd would shrink it to bytes): saves skip the
    compression that made a humanoid replay ring's save too slow for a stop signal's grace."""
    import orbax.checkpoint as ocp

    state = {"w": jnp.zeros((512, 512), jnp.float32), "t": jnp.float32(0.5)}
    Checkpointer(str(tmp_path / "new")).save(1, state)
    assert _bytes_under(tmp_path / "new") >= 512 * 512 * 4
    # A checkpoint as the previous version wrote it (StandardCheckpointHandler, zstd) restores exactly.
    old = ocp.CheckpointManager(str(tmp_path / "old"), item_handlers=ocp.StandardCheckpointHandler(),
                                options=ocp.CheckpointManagerOptions(create=True, enable_async_checkpointing=False))
    old.save(3, args=ocp.args.StandardSave(state))
    old.wait_until_finished()
    assert _bytes_under(tmp_path / "old") < 512 * 512  # it was compressed
    restored = Checkpointer(str(tmp_path / "old")).restore(jax.eval_shape(lambda: state))
    np.testing.assert_array_equal(restored["w"], state["w"])
    assert float(restored["t"]) == 0.5
