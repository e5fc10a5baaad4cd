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


def _three_saves(directory) -> Checkpointer:
    ckpt = Checkpointer(str(directory))
    for step in (1, 2, 3):
        ckpt.save(step, {"w": jnp.full((64,), float(step)), "t": jnp.float32(step)})
    return ckpt


def _template():
    return jax.eval_shape(lambda: {"w": jnp.zeros((64,)), "t": jnp.float32(0)})


def _array_files(step_dir):
    """The files holding array bytes (orbax's OCDBT data files), largest first."""
    return sorted((f for f in step_dir.rglob("d/*") if f.is_file()), key=lambda f: -f.stat().st_size)


def _overwrite_with_random_bytes(path):
    path.write_bytes(np.random.default_rng(0).integers(0, 256, path.stat().st_size, dtype=np.uint8).tobytes())


def test_resume_falls_back_to_the_newest_intact_checkpoint_naming_the_damaged_step(tmp_path, capsys):
    """Random bytes over the newest checkpoint's array file (same length: orbax alone would restore
    them as wrong numbers) -> the previous checkpoint is restored, with a warning naming step 3,
    which is moved aside so that later saves are not shadowed by it."""
    _three_saves(tmp_path)
    _overwrite_with_random_bytes(_array_files(tmp_path / "3")[0])
    state, step = Checkpointer(str(tmp_path)).restore_intact(_template())
    assert step == 2 and float(state["t"]) == 2.0 and np.all(np.asarray(state["w"]) == 2.0)
    err = capsys.readouterr().err
    assert f"checkpoint {tmp_path / '3'} (env step 3) is damaged" in err and "CRC-32 differs" in err, err
    assert not (tmp_path / "3").exists() and (tmp_path.parent / f"{tmp_path.name}.damaged" / "3").is_dir()
    assert Checkpointer(str(tmp_path)).latest_step() == 2


def test_a_damaged_metadata_file_is_found_too_and_every_damaged_step_is_named(tmp_path, capsys):
    """The issue's case (`_sharding` overwritten: orbax's 'Invalid JSON') in step 3, a truncated
    array file in step 2: step 1 is restored and both are named."""
    _three_saves(tmp_path)
    _overwrite_with_random_bytes(tmp_path / "3" / "default" / "_sharding")
    victim = _array_files(tmp_path / "2")[0]
    victim.write_bytes(victim.read_bytes()[:-10])
    state, step = Checkpointer(str(tmp_path)).restore_intact(_template())
    assert step == 1 and float(state["t"]) == 1.0
    err = capsys.readouterr().err
    assert "(env step 3) is damaged: file default/_sharding" in err and "(env step 2) is damaged" in err, err


def test_with_no_intact_checkpoint_resume_is_an_error_naming_the_directory(tmp_path):
    from mjx_smfp.checkpoint import NoIntactCheckpointError

    _three_saves(tmp_path)
    for step in (1, 2, 3):
        _overwrite_with_random_bytes(_array_files(tmp_path / str(step))[0])
    with pytest.raises(NoIntactCheckpointError, match=f"no intact checkpoint in {tmp_path}: all 3"):
        Checkpointer(str(tmp_path)).restore_intact(_template())
    assert all((tmp_path / str(s)).is_dir() for s in (1, 2, 3))  # nothing moved when nothing can be resumed


def test_a_checkpoint_without_manifest_is_restored_when_it_reads(tmp_path):
    """Checkpoints written before manifests existed (or a crash between orbax's commit and the
    manifest) are unverified, not damaged."""
    from mjx_smfp import checkpoint_files

    _three_saves(tmp_path)
    (tmp_path / "3" / checkpoint_files.MANIFEST).unlink()
    state, step = Checkpointer(str(tmp_path)).restore_intact(_template())
    assert step == 3 and float(state["t"]) == 3.0


def test_a_checkpoint_from_another_process_count_is_refused_naming_both(tmp_path, monkeypatch):
    from mjx_smfp import checkpoint as ckpt_lib

    monkeypatch.setattr(ckpt_lib, "topology", lambda tree: {"processes": 2, "devices": 2})
    Checkpointer(str(tmp_path)).save(5, {"w": jnp.zeros((64,)), "t": jnp.float32(0)})
    monkeypatch.undo()
    with pytest.raises(ckpt_lib.TopologyMismatchError,
                       match=r"written by 2 process\(es\) with 2 device\(s\) in all; this run has 1 process\(es\) "
                             r"with 1 device\(s\).*--num-processes 2"):
        Checkpointer(str(tmp_path)).restore_intact(_template())


SAVER = """
import sys, jax.numpy as jnp
from mjx_smfp.checkpoint import Checkpointer
ckpt = Checkpointer(sys.argv[1])
ckpt.save(1, {"w": jnp.full((1024,), 1.0), "big": jnp.zeros((8,), jnp.float32)})
print("saved 1", flush=True)
ckpt.save(2, {"w": jnp.full((1024,), 2.0), "big": jnp.ones((int(sys.argv[2]),), jnp.float32)})
print("saved 2", flush=True)
"""


def test_a_process_killed_during_a_save_leaves_the_previous_checkpoint_usable(tmp_path):
    """SIGKILL while the second checkpoint (a 200 MB array) is being written: orbax commits a save
    by renaming its temporary directory, so step 1 stays the newest, intact and restorable."""
    import os
    import signal
    import subprocess
    import sys
    import time

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    saver = subprocess.Popen([sys.executable, "-c", SAVER, str(tmp_path), str(48 * 2**20)], cwd=root,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert saver.stdout.readline().strip() == "saved 1"
        deadline = time.time() + 120
        while time.time() < deadline and not any("tmp" in p.name for p in tmp_path.iterdir()):
            time.sleep(0.01)
        in_progress = [p.name for p in tmp_path.iterdir() if "tmp" in p.name]
        saver.send_signal(signal.SIGKILL)
        saver.wait(timeout=30)
    finally:
        saver.kill()
    assert in_progress, "the kill did not land during the save"
    assert saver.returncode == -signal.SIGKILL
    ckpt = Checkpointer(str(tmp_path))
    assert ckpt.latest_step() == 1
    template = jax.eval_shape(lambda: {"w": jnp.zeros((1024,)), "big": jnp.zeros((8,), jnp.float32)})
    state, step = ckpt.restore_intact(template)
    assert step == 1 and np.all(np.asarray(state["w"]) == 1.0)
