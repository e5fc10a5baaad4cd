"""Scaling study: throughput and time-to-threshold vs device count, strong and weak.

    python -m benchmarks.scaling --env multimodal --agent sac --devices 1,2,4,8
        [--num_envs 64 --batch_size 256 --calls 4 --threshold 0.8 --budget_s 120]

For each device count N it runs one worker process (on CPU, N emulated devices through
XLA_FLAGS=--xla_force_host_platform_device_count=N) training with the data-parallel engine:
  * strong scaling: global num_envs and global batch fixed, split over N devices;
  * weak scaling: num_envs and batch per device fixed (global = N x per device).
Each worker reports env-steps/s and gradient updates/s (steady state, compile excluded),
time-to-threshold of the deterministic evaluation return, and the measured cost of one
all-reduce (pmean) of the agent's parameter pytree. Writes benchmarks/results/scaling_<env>_<agent>.
{csv,json,png}. On emulated CPU devices the figures test the machinery, not speed: all
"devices" share the same cores. The same command on an N-GPU machine is the real study.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time

RESULTS_DIR = os.path.join(os.path.dirname(__file__), "results")


def worker(args) -> dict:
    """One measurement at `args.n` devices (run in its own process)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from mjx_smfp import config as config_lib
    from mjx_smfp.distributed import DATA_AXIS, make_data_mesh
    from mjx_smfp.engine import Engine

    n = args.n
    scale = 1 if args.mode == "strong" else n
    overrides = dict(env=args.env, agent=args.agent, preset=args.preset, num_devices=n,
                     num_envs=args.num_envs * scale, batch_size=args.batch_size * scale,
                     replay_capacity=args.replay_capacity * scale, iterations_per_call=args.iterations_per_call,
                     updates_per_step=args.updates_per_step, eval_interval=0)
    cfg, agent_cfg = config_lib.build(overrides)
    engine = Engine(cfg, agent_cfg)
    ts = engine.init_state()
    ts, _ = engine.warmup(ts)
    t = time.time()
    ts, summary = engine.train_chunk(ts)  # compiles
    jax.block_until_ready(summary)
    compile_s = time.time() - t
    times, reached_s, best = [], None, -np.inf
    t_train = time.time()
    for call in range(args.calls):
        t = time.time()
        ts, summary = engine.train_chunk(ts)
        jax.block_until_ready(summary)
        times.append(time.time() - t)
    per_call = float(np.median(times))
    # Time-to-threshold: keep training (within the budget), evaluating after every call.
    while reached_s is None and time.time() - t_train < args.budget_s:
        returns, _ = engine.evaluate(ts, jax.random.PRNGKey(len(times)))
        best = max(best, float(returns.mean()))
        if best >= args.threshold:
            reached_s = time.time() - t_train + compile_s
            break
        t = time.time()
        ts, summary = engine.train_chunk(ts)
        jax.block_until_ready(summary)
        times.append(time.time() - t)

    # Cost of one all-reduce of the agent's parameters across the N devices.
    mesh = make_data_mesh(n)
    from jax.sharding import PartitionSpec as P

    params = jax.tree_util.tree_map(jnp.asarray, ts.agent)
    allreduce = jax.jit(jax.shard_map(lambda p: jax.lax.pmean(p, DATA_AXIS), mesh=mesh, in_specs=P(), out_specs=P()))
    jax.block_until_ready(allreduce(params))
    t = time.time()
    for _ in range(20):
        params = allreduce(params)
    jax.block_until_ready(params)
    allreduce_ms = (time.time() - t) / 20 * 1e3
    steps = cfg.iterations_per_call * cfg.num_envs
    return dict(mode=args.mode, devices=n, num_envs=cfg.num_envs, batch_size=cfg.batch_size,
                env_steps_per_s=steps / per_call,
                updates_per_s=cfg.iterations_per_call * cfg.updates_per_step / per_call,
                compile_s=compile_s, time_to_threshold_s=reached_s, best_eval_return=best,
                allreduce_ms=allreduce_ms, platform=jax.devices()[0].platform,
                device_kind=getattr(jax.devices()[0], "device_kind", ""))


def run_worker(mode: str, n: int, args) -> dict:
    env = dict(os.environ)
    if args.emulate:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={n}").strip()
        env["JAX_PLATFORMS"] = "cpu"
    cmd = [sys.executable, "-m", "benchmarks.scaling", "--worker", "--mode", mode, "--n", str(n)]
    for key in ("env", "agent", "preset", "num_envs", "batch_size", "replay_capacity", "iterations_per_call",
                "updates_per_step", "calls", "threshold", "budget_s"):
        cmd += [f"--{key}", str(getattr(args, key))]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"worker ({mode}, {n} devices) failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for mode in ("strong", "weak"):
        sel = sorted((r for r in rows if r["mode"] == mode), key=lambda r: r["devices"])
        if not sel:
            continue
        base = sel[0]["env_steps_per_s"]
        devs = [r["devices"] for r in sel]
        speedup = [r["env_steps_per_s"] / base for r in sel]
        axes[0].plot(devs, speedup, "o-", label=f"{mode} scaling")
        axes[1].plot(devs, [s / d for s, d in zip(speedup, devs)], "o-", label=f"{mode} scaling")
    devs = sorted({r["devices"] for r in rows})
    axes[0].plot(devs, devs, "k--", lw=0.8, label="ideal")
    axes[0].set(xlabel="devices", ylabel="env-steps/s speed-up", title="speed-up vs devices")
    axes[1].set(xlabel="devices", ylabel="efficiency (speed-up / devices)", title="efficiency", ylim=(0, 1.2))
    for ax in axes:
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="multimodal")
    parser.add_argument("--agent", default="sac")
    parser.add_argument("--preset", default="auto")
    parser.add_argument("--devices", default="1,2,4,8")
    parser.add_argument("--modes", default="strong,weak")
    parser.add_argument("--num_envs", type=int, default=64, help="global (strong) / per device (weak)")
    parser.add_argument("--batch_size", type=int, default=256, help="global (strong) / per device (weak)")
    parser.add_argument("--replay_capacity", type=int, default=65_536)
    parser.add_argument("--iterations_per_call", type=int, default=50)
    parser.add_argument("--updates_per_step", type=int, default=2)
    parser.add_argument("--calls", type=int, default=4, help="timed host calls per worker")
    parser.add_argument("--threshold", type=float, default=0.8, help="eval return for time-to-threshold")
    parser.add_argument("--budget_s", type=float, default=120.0, help="max training seconds per worker")
    parser.add_argument("--emulate", action=argparse.BooleanOptionalAction, default=None,
                        help="emulate devices on CPU (default: when no accelerator is present)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="strong", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from mjx_smfp import compile_cache

    compile_cache.configure()  # XLA:CPU flags (and $JAX_COMPILATION_CACHE_DIR) before any computation
    if args.worker:
        print(json.dumps(worker(args)))
        return None
    if args.emulate is None:
        import jax

        args.emulate = jax.default_backend() == "cpu"
    rows = []
    for mode in args.modes.split(","):
        for n in (int(d) for d in args.devices.split(",")):
            t = time.time()
            row = run_worker(mode, n, args)
            rows.append(row)
            print(f"[scaling] {mode:6s} {n} device(s): {row['env_steps_per_s']:,.0f} env-steps/s, "
                  f"{row['updates_per_s']:,.0f} updates/s, time-to-{args.threshold:g} "
                  f"{row['time_to_threshold_s'] if row['time_to_threshold_s'] is not None else 'not reached'} s, "
                  f"all-reduce {row['allreduce_ms']:.3f} ms ({time.time() - t:.0f} s)", flush=True)
    if args.emulate:
        print("[scaling] NOTE: emulated CPU devices share the same cores; these figures test the "
              "machinery, not the speed-up a multi-GPU machine gives.")
    os.makedirs(RESULTS_DIR, exist_ok=True)
    stem = os.path.join(RESULTS_DIR, f"scaling_{args.env}_{args.agent}")
    with open(stem + ".json", "w") as f:
        json.dump({"emulated": args.emulate, "rows": rows}, f, indent=2)
    with open(stem + ".csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, stem + ".png")
    print(f"[scaling] wrote {stem}.json/.csv/.png")
    return rows


if __name__ == "__main__":
    main()
