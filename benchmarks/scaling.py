"""Scaling study: throughput and time-to-threshold vs device count and process count, strong and weak.

    python -m benchmarks.scaling --env multimodal --agent sac --devices 1,2,4,8
        [--num_envs 64 --batch_size 256 --calls 4 --threshold 0.8 --budget_s 120]
    python -m benchmarks.scaling --processes 1,2 --devices ''    # real jax.distributed processes

Two conventions, each measured (`--modes`):
  * strong scaling: global num_envs and global batch fixed, split over the N devices;
  * weak scaling: num_envs and batch per device fixed (global = N x per device): the batch grows.
Two ways to get N devices:
  * `--devices`: one worker process with N devices (on a CPU-only machine N emulated devices
    through XLA_FLAGS=--xla_force_host_platform_device_count=N, which share the same cores: the
    figures test the machinery, not a speed-up);
  * `--processes`: P worker processes joined by `jax.distributed` on this machine (coordinator on
    localhost): on the CPU one device each and gloo collectives between them; on a GPU machine
    each gets its share of the GPUs (CUDA_VISIBLE_DEVICES) and NCCL collectives. The same command.
Each worker reports env-steps/s and gradient updates/s (steady state, compile excluded), the
time to reach `--threshold` deterministic evaluation return (training, evaluating after every
call, within `--budget_s`), the cost of one all-reduce of the agent's parameters, and the
machine's load average around it; the report adds speed-up and efficiency against the fewest
devices of the same kind and mode. Writes benchmarks/results/scaling_<env>_<agent>[_processes].
{csv,json,png,md}.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time

from benchmarks.outputs import write_rows

RESULTS_DIR = os.path.join(os.path.dirname(__file__), "results")
CONVENTIONS = ("strong: global num_envs and global batch fixed, split over the devices (the batch per device "
               "shrinks); weak: num_envs and batch per device fixed, so the global batch grows with the devices")


def _agreed(flag: bool) -> bool:
    """Process 0's `flag` on every process (a loop over collectives must end on all at once)."""
    import jax
    import numpy as np

    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    return bool(multihost_utils.broadcast_one_to_all(np.int32(flag)))


def _timed_call(engine, ts, jax):
    t = time.time()
    ts, summary = engine.train_chunk(ts)
    jax.block_until_ready(summary)
    return ts, time.time() - t


def _allreduce_ms(ts, n: int) -> float:
    """Milliseconds for one all-reduce (pmean) of the agent state over the n devices."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import PartitionSpec as P

    from mjx_smfp.distributed import DATA_AXIS, make_data_mesh

    allreduce = jax.jit(jax.shard_map(lambda p: jax.lax.pmean(p, DATA_AXIS), mesh=make_data_mesh(n), in_specs=P(),
                                      out_specs=P()))
    params = jax.block_until_ready(allreduce(jax.tree_util.tree_map(jnp.asarray, ts.agent)))
    t = time.time()
    for _ in range(20):
        params = allreduce(params)
    jax.block_until_ready(params)
    return (time.time() - t) / 20 * 1e3


def worker(args) -> dict:
    """One measurement (run in its own process; with MJX_SMFP_* set, one of several processes)."""
    import jax
    import numpy as np

    from mjx_smfp import config as config_lib
    from mjx_smfp import distributed
    from mjx_smfp.engine import Engine

    distributed.initialize_from_env()  # MJX_SMFP_* set by run_processes for 2 or more processes
    n = jax.device_count() if args.kind == "processes" else args.n  # processes: all their devices
    load_before = os.getloadavg()
    scale = 1 if args.mode == "strong" else n
    overrides = dict(env=args.env, agent=args.agent, preset=args.preset,
                     num_devices=0 if args.kind == "processes" else n,
                     num_envs=args.num_envs * scale, batch_size=args.batch_size * scale,
                     replay_capacity=args.replay_capacity * scale, iterations_per_call=args.iterations_per_call,
                     updates_per_step=args.updates_per_step, eval_interval=0, **json.loads(args.overrides))
    cfg, agent_cfg = config_lib.build(overrides)
    engine = Engine(cfg, agent_cfg)
    ts, _ = engine.warmup(engine.init_state())
    ts, compile_s = _timed_call(engine, ts, jax)  # compiles
    times, reached_s, best = [], None, -np.inf
    t_train = time.time()
    for _ in range(args.calls):
        ts, dt = _timed_call(engine, ts, jax)
        times.append(dt)
    per_call = float(np.median(times))
    # Time-to-threshold: keep training (within the budget, process 0's clock), evaluating after every call.
    while _agreed(reached_s is None and time.time() - t_train < args.budget_s):
        returns, _ = engine.evaluate(ts, jax.random.PRNGKey(len(times)))
        best = max(best, float(returns.mean()))
        if best >= args.threshold:
            reached_s = time.time() - t_train  # compile excluded (a warm cache would skew it): compile_s
            continue
        ts, dt = _timed_call(engine, ts, jax)
        times.append(dt)
    steps = cfg.iterations_per_call * cfg.num_envs
    return dict(kind=args.kind, mode=args.mode, processes=jax.process_count(), devices=n,
                num_envs=cfg.num_envs, batch_size=cfg.batch_size, env_steps_per_s=steps / per_call,
                updates_per_s=cfg.iterations_per_call * cfg.updates_per_step / per_call, compile_s=compile_s,
                time_to_threshold_s=reached_s, best_eval_return=best, allreduce_ms=_allreduce_ms(ts, n),
                platform=jax.devices()[0].platform, device_kind=getattr(jax.devices()[0], "device_kind", ""),
                load_before=load_before[0], load_after=os.getloadavg()[0])


def _worker_command(args, mode: str, n: int, kind: str = "devices") -> list[str]:
    cmd = [sys.executable, "-m", "benchmarks.scaling", "--worker", "--mode", mode, "--n", str(n), "--kind", kind]
    for key in ("env", "agent", "preset", "num_envs", "batch_size", "replay_capacity", "iterations_per_call",
                "updates_per_step", "calls", "threshold", "budget_s", "overrides"):
        cmd += [f"--{key}", str(getattr(args, key))]
    return cmd


def run_worker(mode: str, n: int, args) -> dict:
    """One worker process with n devices (emulated on the CPU when `args.emulate`)."""
    env = dict(os.environ)
    if args.emulate:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={n}").strip()
        env["JAX_PLATFORMS"] = "cpu"
    out = subprocess.run(_worker_command(args, mode, n), env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"worker ({mode}, {n} devices) failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gpu_count() -> int:
    """NVIDIA GPUs on this machine (nvidia-smi -L), without starting a JAX backend here: a parent
    holding GPU memory would starve its workers."""
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(line.startswith("GPU ") for line in out.stdout.splitlines()) if out.returncode == 0 else 0


def run_processes(mode: str, p: int, args, timeout: float = 1800) -> dict:
    """P worker processes joined by jax.distributed on localhost; process 0's measurement. On the
    CPU one device each; on a GPU machine GPUs split evenly (CUDA_VISIBLE_DEVICES). One process is
    the plain single-process run on its share (the baseline a user would otherwise run)."""
    from mjx_smfp import distributed

    gpus, coordinator = gpu_count(), f"127.0.0.1:{_free_port()}"
    if 0 < gpus < p:  # NCCL allows one process per GPU
        raise ValueError(f"--processes {p} needs at least {p} GPUs; this machine has {gpus}")
    procs = []
    try:
        for i in range(p):
            env = dict(os.environ)
            if p > 1:
                env.update({distributed.COORDINATOR_VAR: coordinator, distributed.NUM_PROCESSES_VAR: str(p),
                            distributed.PROCESS_ID_VAR: str(i)})
            if gpus:
                share = gpus // p
                env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in range(i * share, (i + 1) * share))
            else:
                env["JAX_PLATFORMS"] = "cpu"
                env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f)
            procs.append(subprocess.Popen(_worker_command(args, mode, p, "processes"), env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True))
        outputs = [proc.communicate(timeout=timeout) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    if any(proc.returncode != 0 for proc in procs):
        raise RuntimeError(f"{p} processes ({mode}) failed: exit {[q.returncode for q in procs]}\n"
                           + "\n".join(err[-2000:] for _, err in outputs))
    return json.loads(outputs[0][0].strip().splitlines()[-1])


def add_efficiency(rows: list[dict]) -> list[dict]:
    """Speed-up (env-steps/s over that of the fewest devices of the same kind and mode) and
    efficiency (speed-up / device ratio) on every row."""
    for row in rows:
        same = [r for r in rows if (r["kind"], r["mode"]) == (row["kind"], row["mode"])]
        base = min(same, key=lambda r: r["devices"])
        row["speedup"] = row["env_steps_per_s"] / base["env_steps_per_s"]
        row["efficiency"] = row["speedup"] / (row["devices"] / base["devices"])
    return rows


def report(rows: list[dict], machine: str, threshold: float, budget_s: float) -> str:
    """The rows as a markdown table, with the conventions and the machine stated."""
    lines = [f"Machine: {machine}. Conventions: {CONVENTIONS}. Time-to-{threshold:g} is the wall time of "
             f"training and of an evaluation after every host call (compilation excluded: it is the compile "
             f"column) until the deterministic evaluation return reached {threshold:g}, within {budget_s:g} s.", "",
             "| kind | mode | processes | devices | envs (global) | batch (global) | env-steps/s | updates/s | "
             f"speed-up | efficiency | time-to-{threshold:g} s | compile s | all-reduce ms | load before/after |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ttt = f"{r['time_to_threshold_s']:.0f}" if r["time_to_threshold_s"] is not None else "not reached"
        lines.append(f"| {r['kind']} | {r['mode']} | {r['processes']} | {r['devices']} | {r['num_envs']} | "
                     f"{r['batch_size']} | {r['env_steps_per_s']:,.0f} | {r['updates_per_s']:,.1f} | "
                     f"{r['speedup']:.2f} | {r['efficiency']:.2f} | {ttt} | {r['compile_s']:.0f} | "
                     f"{r['allreduce_ms']:.1f} | "
                     f"{r['load_before']:.1f}/{r['load_after']:.1f} |")
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for kind, mode in sorted({(r["kind"], r["mode"]) for r in rows}):
        sel = sorted((r for r in rows if (r["kind"], r["mode"]) == (kind, mode)), key=lambda r: r["devices"])
        devs = [r["devices"] for r in sel]
        axes[0].plot(devs, [r["speedup"] for r in sel], "o-", label=f"{mode}, {kind}")
        axes[1].plot(devs, [r["efficiency"] for r in sel], "o-", label=f"{mode}, {kind}")
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


def measure(args) -> list[dict]:
    """Every (mode, device count) and (mode, process count) of `args`, with efficiency; prints a
    line per row. The function a harness calls."""
    rows = []
    for mode in args.modes.split(","):
        for kind, counts, run in (("devices", args.devices, run_worker), ("processes", args.processes, run_processes)):
            for n in (int(c) for c in counts.split(",") if c):
                t = time.time()
                row = run(mode, n, args)
                rows.append(row)
                ttt = row["time_to_threshold_s"]
                print(f"[scaling] {mode:6s} {n} {kind}: {row['env_steps_per_s']:,.0f} env-steps/s, "
                      f"{row['updates_per_s']:,.1f} updates/s, time-to-{args.threshold:g} "
                      f"{'not reached' if ttt is None else f'{ttt:.0f} s'}, all-reduce {row['allreduce_ms']:.1f} ms, "
                      f"load {row['load_before']:.1f}->{row['load_after']:.1f} ({time.time() - t:.0f} s)", flush=True)
    return add_efficiency(rows)


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="multimodal")
    parser.add_argument("--agent", default="sac")
    parser.add_argument("--preset", default="auto")
    parser.add_argument("--devices", default="1,2,4,8", help="device counts of one process ('' for none)")
    parser.add_argument("--processes", default="", help="process counts, e.g. 1,2 (real jax.distributed processes)")
    parser.add_argument("--modes", default="strong,weak")
    parser.add_argument("--num_envs", type=int, default=64, help="global (strong) / per device (weak)")
    parser.add_argument("--batch_size", type=int, default=256, help="global (strong) / per device (weak)")
    parser.add_argument("--replay_capacity", type=int, default=65_536)
    parser.add_argument("--iterations_per_call", type=int, default=50)
    parser.add_argument("--updates_per_step", type=int, default=2)
    parser.add_argument("--calls", type=int, default=4, help="timed host calls per worker")
    parser.add_argument("--threshold", type=float, default=0.8, help="eval return for time-to-threshold")
    parser.add_argument("--budget_s", type=float, default=120.0, help="max training seconds per worker")
    parser.add_argument("--overrides", default="{}", help='more config fields as JSON, e.g. \'{"actor_lr": 1e-3}\'')
    parser.add_argument("--emulate", action=argparse.BooleanOptionalAction, default=None,
                        help="emulate devices on CPU (default: when no GPU is present)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="strong", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="devices", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    from mjx_smfp import compile_cache

    compile_cache.configure()  # XLA:CPU flags (and $JAX_COMPILATION_CACHE_DIR) before any computation
    if args.worker:
        row = worker(args)
        print(json.dumps(row), flush=True)
        if row["processes"] > 1:
            from mjx_smfp import processes

            processes.finish()  # leaves in order (exit 0)
        return None
    args.emulate = gpu_count() == 0 if args.emulate is None else args.emulate
    rows = measure(args)
    from benchmarks import machine

    info = machine.describe()
    stem = os.path.join(RESULTS_DIR, f"scaling_{args.env}_{args.agent}" + ("_processes" if args.processes else ""))
    write_rows(stem, rows, emulated=args.emulate, machine=info, conventions=CONVENTIONS, argv=sys.argv[1:])
    with open(stem + ".md", "w") as f:
        f.write(report(rows, machine.summary(info), args.threshold, args.budget_s))
    plot(rows, stem + ".png")
    if args.emulate and args.devices:
        print("[scaling] NOTE: emulated CPU devices share the same cores; these figures test the machinery.")
    print(f"[scaling] wrote {stem}.json/.csv/.md/.png")
    return rows


if __name__ == "__main__":
    main()
