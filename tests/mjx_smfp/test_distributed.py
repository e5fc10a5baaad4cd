"""Data parallelism over the `data` mesh axis on 1, 2 and 4 emulated CPU devices.

The checks run in ONE subprocess (tests/distributed_checks.py): the emulated device count
must be set (XLA_FLAGS) before jax is imported, and this pytest process already imported
jax with one device. The subprocess prints a JSON report that the tests below assert on.
"""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def report():
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()
    env["JAX_PLATFORMS"] = "cpu"
    out = subprocess.run([sys.executable, "-m", "tests.distributed_checks"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-6000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_four_emulated_devices_are_visible(report):
    assert report["device_count"] == 4


@pytest.mark.parametrize("n", [1, 2, 4])
def test_training_on_n_devices_counts_all_devices_transitions_and_stays_finite(report, n):
    row = next(r for r in report["devices"] if r["devices"] == n)
    assert row["sharded"] and row["mesh_devices"] == n
    assert row["env_steps"] == row["expected_env_steps"]  # global count, not per device
    assert row["updates"] == 1400 and row["all_finite"]


@pytest.mark.parametrize("n", [1, 2, 4])
def test_params_identical_on_every_device_and_each_device_has_its_own_env_and_replay_shard(report, n):
    row = next(r for r in report["devices"] if r["devices"] == n)
    assert row["replicated_equal"]  # each device's copy of params/optimiser/normaliser is equal
    assert row["shards_differ"]  # different actions in each replay shard, different env RNG per shard
    assert row["replay_rows"] == 2048 and row["replay_shard_rows"] == 2048 // n
    assert row["env_shard_rows"] == 16 // n


@pytest.mark.parametrize("n", [1, 2, 4])
def test_sac_learns_the_one_mode_bandit_on_n_devices(report, n):
    row = next(r for r in report["devices"] if r["devices"] == n)
    assert row["eval_return"] >= 0.8, row  # random / untrained policy: ~0.0


def test_one_device_sharded_path_is_bit_identical_to_the_plain_path(report):
    one = report["one_device"]
    assert not one["plain_is_sharded"] and one["leaves"] > 50
    assert one["identical"]


def test_sharded_checkpoint_restore_and_resume_are_bit_identical(report):
    ck = report["checkpoint"]
    assert ck["devices"] == 2 and ck["env_steps"] == ck["straight_env_steps"]
    assert ck["resume_identical"] and ck["restore_identical"] and ck["shardings_kept"]
    assert ck["train_chunk_traces"] == 1


def test_divisibility_and_device_count_errors_name_the_field(report):
    err = report["errors"]
    assert err["num_envs"].startswith("num_envs=18 is not divisible by the device count 4")
    assert err["replay_capacity"].startswith("replay_capacity=2046 is not divisible")
    assert err["batch_size"].startswith("batch_size=66 is not divisible")
    assert err["batch_per_device_ok"] == ""  # batch_size per device need not divide
    assert "num_devices=8" in err["too_many"] and "only 4" in err["too_many"]
    assert err["all_devices"].startswith("num_envs=18")  # num_devices=0 -> all 4 devices
    assert err["negative"].startswith("num_devices=-1")


def test_smfp_trains_on_two_devices_with_identical_params(report):
    smfp = report["smfp"]
    assert smfp["devices"] == 2 and smfp["updates"] == 40
    assert smfp["all_finite"] and smfp["replicated_equal"]
