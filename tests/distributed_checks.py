"""Data-parallel checks run in a SUBPROCESS by tests/mjx_smfp/test_distributed.py, because the emulated
device count (XLA_FLAGS=--xla_force_host_platform_device_count=4) must be set before jax is
imported. Prints one JSON object (the last stdout line) that the tests assert on.

    XLA_FLAGS=--xla_force_host_platform_device_count=4 JAX_PLATFORMS=cpu \
        python -m tests.distributed_checks
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time

import jax
import numpy as np

from mjx_smfp import checkpoint as ckpt_lib
from mjx_smfp import compile_cache
from mjx_smfp import config as config_lib
from mjx_smfp.distributed import make_data_mesh
from mjx_smfp.engine import Engine
from mjx_smfp.runner import run

# multimodal with one mode: a one-step bandit, reward exp(-|a - (0.6, 0.6)|^2 / 0.08) (max 1).
BASE = dict(env="multimodal", env_kwargs='{"num_modes": 1}', agent="sac", preset="cpu", num_envs=16,
            batch_size=64, replay_capacity=2048, learning_starts=128, iterations_per_call=25,
            updates_per_step=4, eval_episodes=32, eval_interval=0, checkpoint_interval=0,
            actor_hidden="64,64", critic_hidden="64,64", init_temperature=0.01, actor_lr=1e-3,
            critic_lr=1e-3, temperature_lr=1e-3)
TRAIN_CALLS = 14  # 1,400 updates: the deterministic policy reaches ~0.98 after ~1,100 (1 device)
COMPARE_CALLS = 2  # host calls after which the forced 1-device sharded run is compared with the plain one


def build(**overrides):
    cfg, agent_cfg = config_lib.build({**BASE, **overrides})
    return cfg, agent_cfg


def leaves(tree):
    """Host copies (the engine donates the state to its next call)."""
    return [np.array(x, copy=True) for x in jax.tree_util.tree_leaves(tree)]


def error_of(fn) -> str:
    try:
        fn()
    except ValueError as err:
        return str(err)
    return ""


def shards(x) -> list[np.ndarray]:
    return [np.asarray(s.data) for s in sorted(x.addressable_shards, key=lambda s: s.device.id)]


def check_devices(n: int) -> tuple[dict, Engine, list]:
    """Train on n devices (n == 1: the sharded path forced on a 1-device mesh); replicated params
    identical on every device, env/replay shards differ, task learned. Also returns the engine
    and the state after COMPARE_CALLS calls."""
    t = time.time()
    cfg, agent_cfg = build(num_devices=n)
    engine = Engine(cfg, agent_cfg, mesh=make_data_mesh(1) if n == 1 else None)
    ts = engine.init_state()
    ts, _ = engine.warmup(ts)
    early = None
    for call in range(TRAIN_CALLS):
        ts, summary = engine.train_chunk(ts)
        if call + 1 == COMPARE_CALLS:
            early = leaves(ts)
    summary = jax.device_get(summary)
    params = jax.tree_util.tree_leaves((ts.agent, ts.normalizer))
    replicated_equal = all(all(np.array_equal(s, shards(p)[0]) for s in shards(p)) and len(shards(p)) == n
                           for p in params)
    action_shards = shards(ts.replay.data.action)
    key_shards = shards(ts.env_state.info["reset_rng"])
    shards_differ = n == 1 or all(not np.array_equal(action_shards[0], a) for a in action_shards[1:]) and all(
        not np.array_equal(key_shards[0], k) for k in key_shards[1:])
    returns, _ = engine.evaluate(ts, jax.random.PRNGKey(7))
    return dict(devices=n, sharded=engine.mesh is not None, mesh_devices=int(engine.num_shards), env_steps=int(summary["env_steps"]),
                expected_env_steps=engine.warmup_steps + TRAIN_CALLS * cfg.iterations_per_call * cfg.num_envs,
                updates=int(summary["updates"]), all_finite=bool(summary["all_finite"]),
                replicated_equal=bool(replicated_equal), shards_differ=bool(shards_differ),
                replay_shard_rows=int(action_shards[0].shape[0]), replay_rows=int(ts.replay.data.action.shape[0]),
                env_shard_rows=int(key_shards[0].shape[0]), eval_return=float(returns.mean()),
                seconds=time.time() - t), engine, early


def check_plain_equals(sharded_early: list) -> dict:
    """The plain single-device engine == the shard_map path forced on a 1-device mesh, bit for bit."""
    t = time.time()
    cfg, agent_cfg = build(num_devices=1)
    engine = Engine(cfg, agent_cfg)
    ts = engine.init_state()
    ts, _ = engine.warmup(ts)
    for _ in range(COMPARE_CALLS):
        ts, _ = engine.train_chunk(ts)
    plain = leaves(ts)
    return dict(plain_is_sharded=engine.mesh is not None, leaves=len(plain),
                identical=len(plain) == len(sharded_early) and all(
                    np.array_equal(x, y) for x, y in zip(plain, sharded_early)),
                seconds=time.time() - t)


def check_checkpoint_resume(engine: Engine) -> dict:
    """Sharded save/restore round trip, and resume == straight run (same device count)."""
    t = time.time()
    n = engine.num_shards
    with tempfile.TemporaryDirectory() as tmp:
        straight = run(engine, os.path.join(tmp, "a"), max_calls=3, verbose=False)
        run(engine, os.path.join(tmp, "b"), max_calls=2, verbose=False)
        resumed = run(engine, os.path.join(tmp, "b"), resume=True, max_calls=1, verbose=False)
        restored = ckpt_lib.Checkpointer(os.path.join(tmp, "b", "checkpoints")).restore(engine.abstract_state())
    same = all(np.array_equal(x, y) for x, y in zip(leaves(straight), leaves(resumed)))
    roundtrip = all(np.array_equal(x, y) for x, y in zip(leaves(resumed), leaves(restored)))
    specs_kept = all(x.sharding == y.sharding for x, y in zip(jax.tree_util.tree_leaves(resumed),
                                                                jax.tree_util.tree_leaves(restored)))
    return dict(devices=n, env_steps=int(resumed.env_steps), straight_env_steps=int(straight.env_steps),
                resume_identical=bool(same), restore_identical=bool(roundtrip), shardings_kept=bool(specs_kept),
                train_chunk_traces=engine.trace_counts["train_chunk"], seconds=time.time() - t)


def check_smfp(n: int) -> dict:
    """SMFP under the sharded engine (check_vma on): finite, params identical on every device."""
    t = time.time()
    cfg, agent_cfg = config_lib.build({**{k: v for k, v in BASE.items() if k not in (
        "init_temperature", "actor_lr", "critic_lr", "temperature_lr")}, "agent": "smfp", "num_devices": n,
        "iterations_per_call": 10, "updates_per_step": 2})
    engine = Engine(cfg, agent_cfg)
    ts = engine.init_state()
    ts, _ = engine.warmup(ts)
    for _ in range(2):
        ts, summary = engine.train_chunk(ts)
    replicated_equal = all(all(np.array_equal(s, shards(p)[0]) for s in shards(p))
                           for p in jax.tree_util.tree_leaves(ts.agent))
    return dict(devices=n, all_finite=bool(summary["all_finite"]), updates=int(summary["updates"]),
                replicated_equal=bool(replicated_equal), seconds=time.time() - t)


def check_errors() -> dict:
    return dict(
        num_envs=error_of(lambda: build(num_devices=4, num_envs=18)),
        replay_capacity=error_of(lambda: build(num_devices=4, replay_capacity=2046)),
        batch_size=error_of(lambda: build(num_devices=4, batch_size=66)),
        batch_per_device_ok=error_of(lambda: build(num_devices=4, batch_size=66, batch_per_device=True)),
        too_many=error_of(lambda: Engine(*build(num_devices=8))),
        all_devices=error_of(lambda: Engine(*build(num_devices=0, num_envs=18))),
        negative=error_of(lambda: build(num_devices=-1)),
    )


def main(argv: list[str]) -> None:
    compile_cache.configure()  # the cache of $JAX_COMPILATION_CACHE_DIR, silent on warm loads
    out = {"device_count": jax.device_count(), "errors": check_errors(), "devices": []}
    engines = {}
    for n in (1, 2, 4):
        row, engines[n], early = check_devices(n)
        out["devices"].append(row)
        if n == 1:
            out["one_device"] = check_plain_equals(early)
    out["checkpoint"] = check_checkpoint_resume(engines[2])
    out["smfp"] = check_smfp(2)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
