"""Environment throughput: env-steps/s of the training wrapper next to raw `mjx.step`.

For each task and batch size this times, inside one jitted `lax.scan` of `--steps` steps and
excluding compilation (reported separately):

* wrapped: `envs.wrappers.wrap_for_training(envs.make(task), num_envs, episode_length).step`
  under uniform random actions in [-1, 1] — i.e. physics + observation/reward + time limit,
  auto-reset with fresh noise, NaN guard and episode statistics, as a training loop runs it;
* raw: `vmap` of `frame_skip` x `mjx.step(env.sys, data)` on the same model and solver options,
  with the same kind of random controls mapped onto the actuator ctrlrange, each step taken
  from a snapshot of the states the wrapped run visited (see `make_raw_run`) — the physics
  floor the wrapper is compared against (ratio = wrapped / raw);
* reset: one `vmap(env.reset)` over the batch (at the largest batch size), as a fraction of one
  wrapped step: the cost an auto-reset that reset the whole batch every step would add.

Figures go to benchmarks/results/env_throughput.{csv,json,png} together with the machine
(CPU model, cores, jax backend, load average), and a markdown table is printed for
benchmarks/RESULTS.md. A task that cannot be built or run is reported and skipped.

    python -m benchmarks.env_throughput                             # CPU scale
    python -m benchmarks.env_throughput --num-envs 1024,2048,4096,8192 --steps 1000   # GPU
"""
from __future__ import annotations

import argparse
import json
import os
import time
import traceback

import jax
import jax.numpy as jnp
import numpy as np

import envs
from benchmarks.machine import describe as describe_machine
from benchmarks.outputs import write_rows
from envs.wrappers import wrap_for_training

RESULTS_DIR = os.path.join(os.path.dirname(__file__), "results")
DEFAULT_TASKS = "inverted_pendulum,halfcheetah,hopper,ant,humanoid,multimodal"


# ----------------------------------------------------------------------------------------------
# What is timed
# ----------------------------------------------------------------------------------------------
def make_wrapped_run(wrapped, steps: int):
    """jit-able (state, key) -> (state, ended, nonfinite): `steps` wrapped steps, random actions."""

    def run(state, key):
        def body(carry, _):
            state, key, ended, nonfinite = carry
            key, sub = jax.random.split(key)
            action = jax.random.uniform(sub, (wrapped.num_envs, wrapped.action_size), minval=-1.0, maxval=1.0)
            state = wrapped.step(state, action)
            return (state, key, ended + state.done.sum(), nonfinite + state.info["nonfinite"].sum()), None

        (state, _, ended, nonfinite), _ = jax.lax.scan(body, (state, key, 0.0, 0.0), None, length=steps)
        return state, ended, nonfinite

    return run


def make_raw_run(env, num_envs: int, steps: int):
    """jit-able (data, key) -> data: `steps` x (`frame_skip` vmapped `mjx.step`), random controls.

    Every step starts again from the batch `data` it was given (a snapshot of the states the
    wrapped run visited), so raw and wrapped physics see the same state distribution: a raw
    batch left running free drifts into states the wrapper would have reset (a fallen
    pendulum pinned at its joint limits, a humanoid on the floor) whose constraint solves cost
    several times more, which would make the ratio measure the states, not the wrapper. The
    restart is a `where` on a data-dependent flag (a NaN check), so XLA cannot hoist the step
    out of the loop; its cost is of the order of the wrapper's own selects."""
    from mujoco import mjx

    low, high = (jnp.asarray(x, jnp.float32) for x in env.mj_model.actuator_ctrlrange.T)
    frame_skip = int(env.frame_skip)

    def one_env(data, action):
        data = data.replace(ctrl=low + (action + 1.0) * 0.5 * (high - low))
        return jax.lax.fori_loop(0, frame_skip, lambda _, d: mjx.step(env.sys, d), data)

    def run(start, key):
        def body(carry, _):
            data, key = carry
            key, sub = jax.random.split(key)
            action = jax.random.uniform(sub, (num_envs, env.action_size), minval=-1.0, maxval=1.0)
            stepped = jax.vmap(one_env)(data, action)
            keep_going = jnp.any(jnp.isnan(stepped.qpos))  # never true on healthy physics
            data = jax.tree.map(lambda a, b: jnp.where(keep_going, a, b), stepped, start)
            return (data, key), None

        (data, _), _ = jax.lax.scan(body, (start, key), None, length=steps)
        return data

    return run


def _compile(fn, *args):
    """(compiled fn, seconds to lower + compile)."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t0


def _time(compiled, args, repeats: int) -> float:
    """Best wall-clock seconds of `repeats` runs after one warm-up (the machine is shared:
    the minimum is the least disturbed measurement)."""
    jax.block_until_ready(compiled(*args))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        best = min(best, time.perf_counter() - t0)
    return best


def bench_task(name: str, num_envs_list: list[int], steps: int, episode_length: int, physics: str | None,
               repeats: int, raw_num_envs: set[int] | None = None) -> list[dict]:
    """All measurements for one task (one row per batch size)."""
    options = {} if physics is None or name == "multimodal" else {"physics": physics}
    env = envs.make(name, **options)
    has_physics = hasattr(env, "sys") and hasattr(env, "mj_model")
    rows = []
    for i, n in enumerate(num_envs_list):
        key = jax.random.PRNGKey(i)
        wrapped = wrap_for_training(env, n, episode_length)
        state = jax.jit(wrapped.reset)(key)
        run, compile_s = _compile(make_wrapped_run(wrapped, steps), state, key)
        seconds = _time(run, (state, key), repeats)
        visited, ended, nonfinite = run(state, key)
        row = dict(
            task=name, physics=getattr(getattr(env, "physics", None), "solver", "none"),
            solver_iterations=getattr(getattr(env, "physics", None), "iterations", 0),
            frame_skip=int(getattr(env, "frame_skip", 1)), num_envs=n, steps=steps,
            episode_length=episode_length,
            wrapped_steps_per_s=n * steps / seconds, wrapped_compile_s=compile_s,
            episodes_ended=float(ended), nonfinite=float(nonfinite),
            raw_steps_per_s=float("nan"), raw_compile_s=float("nan"), ratio=float("nan"),
            reset_ms=float("nan"), reset_over_step=float("nan"),
        )
        if has_physics and (raw_num_envs is None or n in raw_num_envs):
            raw, raw_compile_s = _compile(make_raw_run(env, n, steps), visited.pipeline_state, key)
            raw_seconds = _time(raw, (visited.pipeline_state, key), repeats)
            row.update(raw_steps_per_s=n * steps / raw_seconds, raw_compile_s=raw_compile_s,
                       ratio=(n * steps / seconds) / (n * steps / raw_seconds))
        if i == len(num_envs_list) - 1:
            # Cost of resetting the whole batch once, relative to one wrapped step of the batch.
            keys = jax.random.split(key, n)
            reset, _ = _compile(jax.vmap(env.reset), keys)
            reset_s = _time(reset, (keys,), max(repeats, 3))
            row.update(reset_ms=1e3 * reset_s, reset_over_step=reset_s / (seconds / steps))
        rows.append(row)
        print(f"  {name:>18s} n={n:<5d} wrapped {row['wrapped_steps_per_s']:>10.0f}/s "
              f"raw {row['raw_steps_per_s']:>10.0f}/s ratio {row['ratio']:.2f} "
              f"compile {compile_s:.1f}s/{row['raw_compile_s']:.1f}s ended {ended:.0f} nonfinite {nonfinite:.0f}",
              flush=True)
    return rows


# ----------------------------------------------------------------------------------------------
# Machine, outputs
# ----------------------------------------------------------------------------------------------
def write_outputs(rows: list[dict], skipped: dict, machine: dict, out_dir: str) -> None:
    base = os.path.join(out_dir, "env_throughput")
    write_rows(base, rows, machine=machine, skipped=skipped)
    if rows:
        plot(rows, machine, base + ".png")


def plot(rows: list[dict], machine: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, task in enumerate(dict.fromkeys(r["task"] for r in rows)):
        rs = [r for r in rows if r["task"] == task]
        n = [r["num_envs"] for r in rs]
        colour = f"C{i}"
        ax.plot(n, [r["wrapped_steps_per_s"] for r in rs], "o-", color=colour, label=f"{task} (wrapped)")
        raw = [r for r in rs if not np.isnan(r["raw_steps_per_s"])]
        if raw:
            ax.plot([r["num_envs"] for r in raw], [r["raw_steps_per_s"] for r in raw], "x--", color=colour,
                    alpha=0.6, markersize=9, label=f"{task} (raw mjx.step)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("parallel envs")
    ax.set_ylabel("env-steps / s")
    ax.set_title(f"{machine['jax_backend']}: {machine['cpu_model']} ({machine['cores']} core{'s' * (machine['cores'] != 1)})",
                 fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown_table(rows: list[dict]) -> str:
    lines = ["| task | envs | wrapped steps/s | raw mjx.step steps/s | wrapped/raw | compile wrapped / raw (s) "
             "| batch reset / step | episodes ended | non-finite |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        raw = "—" if np.isnan(r["raw_steps_per_s"]) else f"{r['raw_steps_per_s']:,.0f}"
        ratio = "—" if np.isnan(r["ratio"]) else f"{r['ratio']:.2f}"
        rc = "—" if np.isnan(r["raw_compile_s"]) else f"{r['raw_compile_s']:.0f}"
        reset = "" if np.isnan(r["reset_over_step"]) else f"{r['reset_over_step']:.2f}"
        lines.append(f"| {r['task']} | {r['num_envs']} | {r['wrapped_steps_per_s']:,.0f} | {raw} | {ratio} | "
                     f"{r['wrapped_compile_s']:.0f} / {rc} | {reset} | {r['episodes_ended']:.0f} | {r['nonfinite']:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=DEFAULT_TASKS, help="comma-separated task names")
    parser.add_argument("--num-envs", default="16,64,128", help="comma-separated batch sizes")
    parser.add_argument("--steps", type=int, default=200, help="env steps per timed lax.scan")
    parser.add_argument("--episode-length", type=int, default=1000)
    parser.add_argument("--physics", default=None, help="task physics preset (gymnasium|fast); default: task's")
    parser.add_argument("--raw-num-envs", default="all",
                        help="batch sizes at which to also time raw mjx.step ('all' or a comma list); "
                             "each costs one more compile")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per measurement (best kept)")
    parser.add_argument("--compile-cache", action="store_true",
                        help="allow JAX's persistent compilation cache (off: compile times are cold)")
    parser.add_argument("--out-dir", default=RESULTS_DIR)
    parser.add_argument("--append", action="store_true",
                        help="keep the rows of other tasks already in --out-dir's JSON (rows of the "
                             "tasks run now are replaced): to add or redo some tasks")
    args = parser.parse_args(argv)

    if not args.compile_cache:
        jax.config.update("jax_enable_compilation_cache", False)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    num_envs = [int(n) for n in args.num_envs.split(",")]
    raw_num_envs = None if args.raw_num_envs == "all" else {int(n) for n in args.raw_num_envs.split(",")}
    machine = describe_machine()
    print(f"machine: {machine}", flush=True)

    rows, skipped = [], {}
    previous = os.path.join(args.out_dir, "env_throughput.json")
    if args.append and os.path.exists(previous):
        with open(previous) as f:
            rows = [r for r in json.load(f)["rows"] if r["task"] not in tasks]
    for task in tasks:
        t0 = time.perf_counter()
        try:
            rows += bench_task(task, num_envs, args.steps, args.episode_length, args.physics,
                               args.repeats, raw_num_envs)
        except Exception as err:  # one broken or unwritten task must not stop the others
            skipped[task] = f"{type(err).__name__}: {err}"
            print(f"  {task}: skipped ({skipped[task]})", flush=True)
            traceback.print_exc()
        print(f"  {task}: {time.perf_counter() - t0:.0f}s total", flush=True)
        write_outputs(rows, skipped, machine, args.out_dir)  # keep what is done if interrupted

    machine["load_average_end"] = os.getloadavg()
    write_outputs(rows, skipped, machine, args.out_dir)
    print()
    print(markdown_table(rows))
    if skipped:
        print("\nskipped: " + "; ".join(f"{k} ({v})" for k, v in skipped.items()))


if __name__ == "__main__":
    main()
