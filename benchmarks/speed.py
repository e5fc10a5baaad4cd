"""Every speed figure of the project, one subcommand each, with one timer and one definition of raw
stepping (benchmarks/harness/timer.py):

    python -m benchmarks.speed env [--tasks a,b] [--num-envs 16,128] [--steps 200] [--physics P]  # wrapped vs raw
    python -m benchmarks.speed loop [--tasks a] [--agents sac,smfp] [--preset cpu] [--brax] [--replay 300000]
    python -m benchmarks.speed seeds [--tasks halfcheetah] [--agents sac] [--num-seeds 1,2,4,8]
    python -m benchmarks.speed scaling [--tasks multimodal] [--agents sac] [--devices 1,2,4] [--processes 1,2]
        [--modes strong,weak] [--threshold 0.8 --budget-s 120] [--field value ...]
    python -m benchmarks.speed costs [--tasks halfcheetah] [--agents sac,smfp,sacflow,dime]  # NFE, ms/act, ms/update
    python -m benchmarks.speed profile [--fusion-types dot,reduce]    # SMFP's cost by parts, per XLA:CPU flag set
    python -m benchmarks.speed projection [--batches 1024,8192] [--atoms 101] [--repeats 20]  # C51: scatter vs dense
    python -m benchmarks.speed report NAME                            # NAME.md from NAME.json

`loop --replay N` also times an insert and a sample in a full ring of N rows, ours against brax's
queue; `seeds` sets N seeds in one program against N runs one after another (the N = 1 rate).
Each writes benchmarks/results/speed/<name>.{json,csv,md} (`--out`; scaling also a .png) and notes in
manifest.json how. README ("Scaling", "Benchmarks") and benchmarks/RESULTS.md say what each measures.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

from benchmarks.harness import outputs
from benchmarks.harness.cli import common_flags, split
from benchmarks.harness.timer import (agent_costs, env_options, raw_stepping, rolling_scan, time_calls, train_speed,
                                      wrapped_stepping)

OUT = os.path.join(outputs.RESULTS, "speed")
NET = dict(actor_hidden=(256, 256), critic_hidden=(256, 256))
# `scaling`'s configuration (the cpu preset's networks; `--field value` overrides any); weak scaling
# multiplies the SCALED fields by the devices.
SCALING = {"num_envs": 64, "batch_size": 256, "replay_capacity": 65_536, "iterations_per_call": 50, "updates_per_step": 2}
SCALED = ("num_envs", "batch_size", "replay_capacity")
CONVENTIONS = ("strong: global envs and batch fixed, split over the devices; weak: envs and batch per device fixed, "
               "so the global batch grows with the devices")


def env_rows(tasks, num_envs, steps: int, physics: str | None) -> list[dict]:
    import envs

    rows = []
    for task in tasks:
        env = envs.make(task, **env_options(task, physics))
        for n in num_envs:
            row = {"task": task, "physics": getattr(getattr(env, "physics", None), "solver", "none"), "num_envs": n,
                   "steps": steps, **wrapped_stepping(env, n, steps), **raw_stepping(env, n, steps)}
            row["ratio"] = row["wrapped_steps_per_s"] / row["raw_steps_per_s"]
            rows.append(row)
            print(f"[speed] {task} {n} envs: wrapped {row['wrapped_steps_per_s']:,.0f}/s, raw "
                  f"{row['raw_steps_per_s']:,.0f}/s", flush=True)
    return rows


def loop_row(task: str, agent: str, preset: str, calls: int, brax: bool, replay: int, overrides: dict) -> dict:
    """Our loop against raw stepping (and brax's SAC) at one task's config, and the agents' costs."""
    import envs
    from mjx_smfp import agents
    from mjx_smfp import config as config_lib
    from mjx_smfp.engine import Engine

    fields = config_lib.flat_field_types(agents.get_class(agent).Config)
    cfg, agent_cfg = config_lib.build({"env": task, "agent": agent, "preset": preset, "eval_episodes": 1,
                                       **{k: v for k, v in NET.items() if k in fields}, **overrides})
    engine = Engine(cfg, agent_cfg)
    ours = train_speed(engine, calls)
    row = {"task": task, "agent": agent, "num_envs": cfg.num_envs, "batch_size": cfg.batch_size,
           "updates_per_step": cfg.updates_per_step, **{f"ours_{k}": v for k, v in ours.items()},
           **raw_stepping(engine.task, cfg.num_envs, cfg.iterations_per_call)}
    row["ours_over_raw"] = row["ours_env_steps_per_s"] / row["raw_steps_per_s"]
    if brax:
        from benchmarks.brax_sac import brax_sac

        row["brax_env_steps_per_s"] = brax_sac(envs.make(task, **cfg.env_options), cfg, agent_cfg, calls)
        row["ours_over_brax"] = row["ours_env_steps_per_s"] / row["brax_env_steps_per_s"]
    if replay:
        from benchmarks.brax_sac import replay_costs

        row.update(replay_costs(replay, engine.obs_size, engine.action_size, cfg.num_envs, cfg.batch_size))
    names = list(dict.fromkeys(["sac", agent]))
    costs = agent_costs(names, NET, engine.obs_size, engine.action_size, cfg.batch_size, (cfg.num_envs, 4096))
    row.update(costs)
    for key in [k for k in costs if k.startswith(f"{agent}_") and agent != "sac"]:
        row[key.replace("_ms", "_over_sac")] = costs[key] / costs[key.replace(agent, "sac", 1)]
    return row


def seeds_rows(task: str, agent: str, num_seeds, calls: int, overrides: dict) -> list[dict]:
    """Aggregate env-steps/s of N seeds in one program (paper-protocol sizes) against N after one another."""
    from mjx_smfp import config as config_lib
    from mjx_smfp.engine import Engine

    rows = []
    for n in num_seeds:
        cfg, agent_cfg = config_lib.build({"env": task, "agent": agent, "preset": "paper", "learning_starts": 256,
                                           "replay_capacity": 10_000, "num_seeds": n, "iterations_per_call": 200,
                                           **overrides})
        got = train_speed(Engine(cfg, agent_cfg), calls)
        rows.append({"num_seeds": n, "aggregate_env_steps_per_s": got["env_steps_per_s"],
                     "compile_and_first_chunk_s": got["compile_s"]})
    base = rows[0]["aggregate_env_steps_per_s"] if num_seeds[0] == 1 else float("nan")
    for row in rows:
        row.update(sequential_env_steps_per_s=base, speedup_vs_sequential=row["aggregate_env_steps_per_s"] / base)
    return rows


def costs_rows(task: str, names, act_envs=(1, 256, 4096), batches=(256, 8192), rounds: int = 3,
               nets: dict = NET) -> list[dict]:
    """NFE, ms per action at each of `act_envs` and per update at each of `batches`, per agent."""
    import envs
    from mjx_smfp import agents
    from mjx_smfp import config as config_lib

    env = envs.make(task)
    obs, act = int(env.observation_size), int(env.action_size)
    costs = {b: agent_costs(names, nets, obs, act, b, act_envs if i == 0 else (), 5, rounds) for i, b in enumerate(batches)}
    rows = []
    for name in names:
        policy = agents.make(name, config_lib.make_config(agents.get_class(name).Config, nets), obs, act).policy
        rows.append({"task": task, "agent": name, "nfe": policy.network_calls,
                     **{f"act_{n}_ms": costs[batches[0]][f"{name}_act_{n}_ms"] for n in act_envs},
                     **{f"update_{b}_ms": costs[b][f"{name}_update_ms"] for b in batches}})
    base = next((r for r in rows if r["agent"] == "sac"), rows[0])
    for r in rows:
        r["update_over_sac"] = r[f"update_{batches[0]}_ms"] / base[f"update_{batches[0]}_ms"]
        r["act_over_sac"] = r[f"act_{act_envs[-1]}_ms"] / base[f"act_{act_envs[-1]}_ms"]
    return rows


def children(sub: str, child: str, extra: list[str], envs: list[dict], timeout: float = 1800) -> dict:
    """`python -m benchmarks.speed SUB --child CHILD EXTRA`, one process per environment of `envs`, all
    at once (the processes of one jax.distributed run); the JSON row the first prints last."""
    cmd = [sys.executable, "-m", "benchmarks.speed", sub, "--child", child, *extra]
    logs = [(tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")) for _ in envs]  # a full pipe would block
    procs = [subprocess.Popen(cmd, env=env, cwd=outputs.REPO, stdout=o, stderr=e, text=True)
             for env, (o, e) in zip(envs, logs)]
    try:
        codes = [p.wait(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            p.kill()
    said = [(o.seek(0) or o.read(), e.seek(0) or e.read()) for o, e in logs]  # (stdout, stderr) from the start
    if any(codes):
        raise RuntimeError(f"speed {sub} {child} failed (exit {codes}):\n" + "\n".join(e[-3000:] for _, e in said))
    return json.loads(said[0][0].strip().splitlines()[-1])


def scaling_envs(kind: str, n: int, gpus: int) -> list[dict]:
    """The environments of one scaling measurement's processes: `devices`, one process with n
    devices (emulated on the CPU when there is no GPU); `processes`, n processes joined by
    jax.distributed on localhost (one CPU device each, or an even share of the GPUs)."""
    from mjx_smfp import distributed

    if kind == "devices":
        return [dict(os.environ) if gpus else dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=(
            f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={n}").strip())]
    if 0 < gpus < n:  # NCCL allows one process per GPU
        raise ValueError(f"--processes {n} needs at least {n} GPUs; this machine has {gpus}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        coordinator = f"127.0.0.1:{s.getsockname()[1]}"
    envs = []
    for i in range(n):
        env = dict(os.environ)
        if n > 1:
            env.update({distributed.COORDINATOR_VAR: coordinator, distributed.NUM_PROCESSES_VAR: str(n),
                        distributed.PROCESS_ID_VAR: str(i)})
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in range(i * (gpus // n), (i + 1) * (gpus // n)))
        else:
            env.update(JAX_PLATFORMS="cpu", XLA_FLAGS=" ".join(f for f in env.get("XLA_FLAGS", "").split()
                                                                if "device_count" not in f))
        envs.append(env)
    return envs


def scaling_rows(args, rest: list[str]) -> list[dict]:
    """Every (mode, kind, count) of the command, each in its own process(es); with efficiency."""
    from benchmarks import machine

    gpus = machine.nvidia_gpus()[0]
    flags = rest + [f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
                    if k in ("tasks", "agents", "calls", "preset", "threshold", "budget_s") and v]
    rows = []
    for mode in split(args.modes, ("strong", "weak")):
        for kind, counts in (("devices", args.devices), ("processes", args.processes)):
            for n in split(counts, ()):
                t = time.time()
                with tempfile.TemporaryDirectory() as run_dir:  # the processes' checkpoints (collective)
                    rows.append(children("scaling", f"{mode}:{kind}:{n}", [*flags, f"--run-dir={run_dir}"],
                                         scaling_envs(kind, int(n), gpus)))
                r = rows[-1]
                print(f"[speed] scaling {mode} {n} {kind}: {r['env_steps_per_s']:,.0f} env-steps/s, time to target "
                      f"{_fmt(r['time_to_threshold_s'], '.0f')} s, all-reduce {r['allreduce_ms']:.1f} ms, load "
                      f"{r['load_before']:.1f}->{r['load_after']:.1f} ({time.time() - t:.0f} s)", flush=True)
    return add_efficiency(rows)


def add_efficiency(rows: list[dict]) -> list[dict]:
    """Speed-up (env-steps/s over that of the fewest devices of the same kind and mode) and
    efficiency (speed-up over the ratio of devices) on every row."""
    for row in rows:
        base = min((r for r in rows if (r["kind"], r["mode"]) == (row["kind"], row["mode"])), key=lambda r: r["devices"])
        row["speedup"] = row["env_steps_per_s"] / base["env_steps_per_s"]
        row["efficiency"] = row["speedup"] / (row["devices"] / base["devices"])
    return rows


def scaling_child(args, overrides: dict) -> dict:
    """One scaling measurement (args.child = MODE:KIND:N), in this process or, for `processes`, in
    each of them: the loop's rates (and time to the threshold) off runner.run and one all-reduce of
    the agent state, with the load average before and after."""
    import jax

    from mjx_smfp import config as config_lib
    from mjx_smfp import distributed
    from mjx_smfp.engine import Engine

    mode, kind, n = args.child.split(":")
    distributed.initialize_from_env()  # the MJX_SMFP_* variables scaling_envs set, for 2 or more processes
    n = jax.device_count() if kind == "processes" else int(n)
    load_before, scale = os.getloadavg()[0], 1 if mode == "strong" else n
    cfg, agent_cfg = config_lib.build({
        "env": (split(args.tasks, ()) or ["multimodal"])[0], "agent": (split(args.agents, ()) or ["sac"])[0],
        "preset": args.preset or "cpu", "num_devices": 0 if kind == "processes" else n, "eval_interval": 0,
        **{k: int(v) * scale if k in SCALED else v for k, v in {**SCALING, **overrides}.items()}})
    engine = Engine(cfg, agent_cfg)
    threshold, budget_s = (float(args.threshold) if args.threshold else None), float(args.budget_s or 120)
    got = train_speed(engine, int(args.calls or 3), threshold, budget_s, args.run_dir or None)
    got["time_to_threshold_s"] = got.pop("time_to_target_s", None)
    allreduce = jax.jit(jax.shard_map(lambda p: jax.lax.pmean(p, distributed.DATA_AXIS),
                                      mesh=distributed.make_data_mesh(n), in_specs=jax.sharding.PartitionSpec(),
                                      out_specs=jax.sharding.PartitionSpec()))
    state = engine.init_state().agent
    return {"kind": kind, "mode": mode, "processes": jax.process_count(), "devices": n, "num_envs": cfg.num_envs,
            "batch_size": cfg.batch_size, **got, "threshold": threshold, "budget_s": budget_s if threshold is not None else None,
            "allreduce_ms": 1e3 * time_calls({"allreduce": lambda: allreduce(state)}, 5)["allreduce"],
            "platform": jax.devices()[0].platform, "load_before": load_before, "load_after": os.getloadavg()[0]}


def profile_parts(envs: int) -> dict:
    """SMFP's act below the agent, by part: name -> (fn(state, obs, key), state), each timed in a scan."""
    import jax

    from mjx_smfp import agents
    from mjx_smfp import config as config_lib
    from mjx_smfp.policies.densities import normal_pair

    obs_size, act = 17, 6  # HalfCheetah's sizes
    made = {n: agents.make(n, config_lib.make_config(agents.get_class(n).Config, NET), obs_size, act)
            for n in ("sac", "smfp")}
    states = {n: a.init(jax.random.PRNGKey(0)) for n, a in made.items()}
    k = jax.random.split(jax.random.PRNGKey(1), 4)

    def mlp(n):
        w = (jax.random.normal(k[0], (obs_size, 256)) * 0.1, jax.random.normal(k[1], (256, 256)) * 0.06,
             jax.random.normal(k[2], (256, n)) * 0.06)
        return lambda p, o, key: jax.nn.relu(jax.nn.relu(o @ p[0]) @ p[1]) @ p[2], w

    eps = lambda o: o[:, :act]  # noqa: E731  (per sample, so nothing is hoisted out of the scan)
    return {"net: SAC actor MLP": (lambda s, o, key: made["sac"].policy.network.apply(s.actor_params, o), states["sac"]),
            "net: SMFP flow u(s, eps)": (lambda s, o, key: made["smfp"].policy.flow(s.actor_params, o, eps(o)),
                                        states["smfp"]),
            "net: SMFP sigma head": (lambda s, o, key: made["smfp"].policy.log_sigma(s.actor_params, o), states["smfp"]),
            **{f"head width: MLP n = {n}": mlp(n) for n in (1, 3, 6, 8, 12, 16)},
            "noise: SAC, one jax.random.normal": (lambda s, o, key: jax.random.normal(key, (envs, act)), None),
            "noise: SMFP, normal_pair": (lambda s, o, key: sum(normal_pair(key, (envs, act))), None)}


def profile_child(mode: str, envs: int, batch: int, rounds: int) -> dict:
    """One XLA:CPU flag set (in its own process): SAC's and SMFP's act and update, every part, and raw stepping."""
    import jax

    import envs as envs_lib

    costs = agent_costs(["sac", "smfp"], NET, 17, 6, batch, (envs,), 20, rounds)
    obs = jax.random.normal(jax.random.PRNGKey(3), (envs, 17))
    parts = time_calls({name: lambda f=rolling_scan(fn, obs, 20), s=state: f(s)
                        for name, (fn, state) in profile_parts(envs).items()}, rounds)
    return {"mode": mode, "flags": os.environ.get("XLA_FLAGS", ""),
            "ms": {**{f"{w}: {a.upper()}": costs[f"{a}_{w}_ms" if w == "update" else f"{a}_act_{envs}_ms"]
                      for w in ("act", "update") for a in ("sac", "smfp")},
                   **{name: 1e3 * s / 20 for name, s in parts.items()}},
            "physics_env_steps_per_s": raw_stepping(envs_lib.make("halfcheetah"), 256, 100)["raw_steps_per_s"]}


def projection_rows(batches, atoms: int = 101, repeats: int = 20) -> list[dict]:
    """The C51 target projection of B x N shifted atoms (a soft backup's shape) onto the N-atom
    support, by scatter-add (`critic.categorical_projection`) and by the dense [B, N, N] hat kernel
    (`categorical_projection_dense`): median ms of `repeats` interleaved warm calls each, the
    largest difference between their results, and the 1-minute load average after."""
    import jax
    import jax.numpy as jnp

    from mjx_smfp import critic

    head, rows = critic.ValueHead("c51", atoms, -10.0, 10.0), []
    forms = {"scatter": jax.jit(lambda a, p: critic.categorical_projection(a, p, head)),
             "dense": jax.jit(lambda a, p: critic.categorical_projection_dense(a, p, head))}
    for batch in batches:
        k1, k2 = jax.random.split(jax.random.PRNGKey(batch))
        shifted = 0.3 + 0.99 * head.support()[None] + 0.5 * jax.random.normal(k1, (batch, atoms))
        probs = jax.nn.softmax(jax.random.normal(k2, (batch, atoms)), axis=-1)
        s = time_calls({name: lambda f=f: f(shifted, probs) for name, f in forms.items()}, repeats)
        diff = jnp.max(jnp.abs(forms["scatter"](shifted, probs) - forms["dense"](shifted, probs)))
        rows.append({"batch": batch, "atoms": atoms, "repeats": repeats, "scatter_ms": 1e3 * s["scatter"],
                     "dense_ms": 1e3 * s["dense"], "dense_over_scatter": s["dense"] / s["scatter"],
                     "max_abs_difference": float(diff), "load1": os.getloadavg()[0]})
        print(f"[speed] projection {batch}: scatter {rows[-1]['scatter_ms']:.2f} ms, dense {rows[-1]['dense_ms']:.2f} ms",
              flush=True)
    return rows


def _fmt(x, spec: str) -> str:
    return "—" if x is None or x != x else format(x, spec)


MARKDOWN = {
    "env": (("task", "envs", "wrapped steps/s", "raw steps/s", "wrapped/raw", "compile wrapped / raw (s)",
             "batch reset / step", "episodes ended", "non-finite"),
            lambda r: (r["task"], r["num_envs"], _fmt(r["wrapped_steps_per_s"], ",.0f"), _fmt(r["raw_steps_per_s"], ",.0f"),
                       _fmt(r["ratio"], ".2f"), f"{r['wrapped_compile_s']:.0f} / {_fmt(r['raw_compile_s'], '.0f')}",
                       _fmt(r["reset_over_step"], ".2f"), f"{r['episodes_ended']:.0f}", f"{r['nonfinite']:.0f}")),
    "loop": (("task", "agent", "envs", "batch", "G", "raw env-steps/s", "ours env-steps/s", "ours updates/s",
              "brax SAC env-steps/s", "ours/brax", "ours/raw"),
             lambda r: (r["task"], r["agent"], r["num_envs"], r["batch_size"], r["updates_per_step"],
                        *(_fmt(r.get(k), ",.0f") for k in ("raw_steps_per_s", "ours_env_steps_per_s", "ours_updates_per_s",
                                                           "brax_env_steps_per_s")),
                        _fmt(r.get("ours_over_brax"), ".2f"), _fmt(r.get("ours_over_raw"), ".2f"))),
    "seeds": (("seeds N", "aggregate env-steps/s, one program", "N seeds one after another", "speed-up",
               "per-seed env-steps/s", "compile + 1st chunk (s)"),
              lambda r: (r["num_seeds"], f"{r['aggregate_env_steps_per_s']:,.0f}", f"{r['sequential_env_steps_per_s']:,.0f}",
                         f"**{r['speedup_vs_sequential']:.2f}x**", f"{r['aggregate_env_steps_per_s'] / r['num_seeds']:,.0f}",
                         f"{r['compile_and_first_chunk_s']:.0f}")),
    "scaling": (("kind", "mode", "processes", "devices", "envs (global)", "batch (global)", "env-steps/s", "updates/s",
                 "speed-up", "efficiency", "time to threshold s", "compile s", "all-reduce of the agent state, ms",
                 "load before / after"),
                lambda r: (r.get("kind", "devices"), r["mode"], r.get("processes", 1), r["devices"], r["num_envs"],
                           r["batch_size"], f"{r['env_steps_per_s']:,.0f}", f"{r['updates_per_s']:,.0f}",
                           _fmt(r.get("speedup"), ".2f"), _fmt(r.get("efficiency"), ".2f"),
                           "—" if r.get("threshold") is None else _fmt(r["time_to_threshold_s"], ".0f").replace(
                               "—", "not reached"), f"{r['compile_s']:.0f}", f"{r['allreduce_ms']:.1f}",
                           f"{_fmt(r.get('load_before'), '.1f')} / {_fmt(r.get('load_after'), '.1f')}")),
    "projection": (("batch", "atoms", "scatter-add ms", "dense ms", "dense / scatter", "max abs difference", "load1"),
                   lambda r: (r["batch"], r["atoms"], f"{r['scatter_ms']:.2f}", f"{r['dense_ms']:.2f}",
                              f"**{r['dense_over_scatter']:.1f}x**", f"{r['max_abs_difference']:.1e}",
                              f"{r['load1']:.1f}")),
    "costs": (("env", "agent", "NFE", "ms/action @1", "@256", "@4096", "ms/update @256", "@8192", "update / SAC",
               "action@4096 / SAC"),
              lambda r: (r["task"], r["agent"], r["nfe"], *(_fmt(r.get(f"act_{n}_ms"), ".3f") for n in (1, 256, 4096)),
                         *(_fmt(r.get(f"update_{b}_ms"), ".2f") for b in (256, 8192)),
                         f"**{r['update_over_sac']:.2f}x**", f"**{r['act_over_sac']:.2f}x**")),
}


def markdown(kind: str, rows: list[dict]) -> str:
    """The table of `rows` of one kind (a profile: one column per process, the parts down; scaling:
    the conventions and the threshold below)."""
    if kind == "profile":
        names = list(rows[0]["ms"])
        head = ["part", *(r["mode"] for r in rows)]
        body = [[name, *(f"{r['ms'][name]:.3f}" for r in rows)] for name in names]
        body += [["physics: raw HalfCheetah, 256 envs, env-steps/s", *(f"{r['physics_env_steps_per_s']:,.0f}" for r in rows)]]
        body += [[f"{w}: SMFP / SAC", *(f"{r['ms'][f'{w}: SMFP'] / r['ms'][f'{w}: SAC']:.2f}x" for r in rows)]
                 for w in ("act", "update")]
    else:
        head, cells = MARKDOWN[kind]
        body = [cells(r) for r in rows]
    text = "\n".join(["| " + " | ".join(map(str, head)) + " |", "|" + "---|" * len(head)]
                     + ["| " + " | ".join(map(str, row)) + " |" for row in body]) + "\n"
    if kind == "scaling":
        text += f"\n{CONVENTIONS[0].upper()}{CONVENTIONS[1:]}."
        for threshold, budget in dict.fromkeys((r["threshold"], r["budget_s"]) for r in rows if r.get("threshold")):
            text += (f" Time to threshold: seconds of training, compilation excluded, until the deterministic evaluation "
                     f"return (after every host call) first reached {threshold:g}, within {budget:g} s.")
        text += "\n"
    return text


def plot_scaling(rows: list[dict], path: str) -> None:
    """Speed-up and efficiency against devices, one line per kind and mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for kind, mode in sorted({(r["kind"], r["mode"]) for r in rows}):
        sel = sorted((r for r in rows if (r["kind"], r["mode"]) == (kind, mode)), key=lambda r: r["devices"])
        for ax, key in zip(axes, ("speedup", "efficiency")):
            ax.plot([r["devices"] for r in sel], [r[key] for r in sel], "o-", label=f"{mode}, {kind}")
    devices = sorted({r["devices"] for r in rows})
    axes[0].plot(devices, devices, "k--", lw=0.8, label="ideal")
    for ax, label in zip(axes, ("env-steps/s speed-up", "efficiency (speed-up / devices)")):
        ax.set(xlabel="devices", ylabel=label)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write(name: str, kind: str, rows: list[dict], out: str, command: str, **meta) -> None:
    """OUT/NAME.{json,csv,md} (and a scaling's .png) and the manifest (how it was measured, and how
    NAME.md is remade)."""
    from benchmarks import machine

    stem, files = os.path.join(out, name), [f"{name}.{e}" for e in ("json", "csv", "md")]
    outputs.write_rows(stem, rows, kind=kind, machine=machine.describe(), **meta)
    with open(stem + ".md", "w") as f:
        f.write(markdown(kind, rows))
    if kind == "scaling":
        plot_scaling(rows, stem + ".png")
        files.append(f"{name}.png")
    outputs.note_manifest(out, name, command, files, regenerate=f"python -m benchmarks.speed report {name}")
    print(markdown(kind, rows), flush=True)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="kind", required=True)
    for kind, extra in (("env", ("--num-envs", "--steps", "--physics")),
                        ("loop", ("--preset", "--calls", "--replay")), ("seeds", ("--num-seeds", "--calls")),
                        ("scaling", ("--devices", "--processes", "--modes", "--calls", "--preset", "--threshold",
                                     "--budget-s")), ("costs", ()), ("profile", ("--fusion-types",)),
                        ("projection", ("--batches", "--atoms", "--repeats"))):
        p = sub.add_parser(kind)
        common_flags(p)
        for flag in extra:
            p.add_argument(flag, default="")
        p.add_argument("--name", default="", help="the output's name (default: the kind and its tasks/agents)")
        p.add_argument("--child", help=argparse.SUPPRESS)
    sub.choices["loop"].add_argument("--brax", action="store_true", help="also brax's own SAC on the same task")
    sub.choices["scaling"].set_defaults(devices="1,2,4")
    sub.choices["scaling"].add_argument("--run-dir", default="", help=argparse.SUPPRESS)
    report = sub.add_parser("report")
    report.add_argument("name")
    report.add_argument("--out", default="")
    return top


def measure(args, rest: list[str], overrides: dict) -> list[dict]:
    """The rows of the command's kind, at its flags (each kind's defaults where a flag is not given)."""
    tasks, agents_ = split(args.tasks, ()), split(args.agents, ())
    ints = lambda text, default: [int(x) for x in split(text, default)]  # noqa: E731
    if args.kind == "env":
        return env_rows(tasks or ["inverted_pendulum", "halfcheetah"], ints(args.num_envs, (16, 128)),
                        int(args.steps or 200), args.physics or None)
    if args.kind == "loop":
        return [loop_row(t, a, args.preset or "cpu", int(args.calls or 5), args.brax, int(args.replay or 0), overrides)
                for t in tasks or ["inverted_pendulum"] for a in agents_ or ["sac", "smfp"]]
    if args.kind == "seeds":
        return seeds_rows((tasks or ["halfcheetah"])[0], (agents_ or ["sac"])[0], ints(args.num_seeds, (1, 2, 4, 8)),
                          int(args.calls or 5), overrides)
    if args.kind == "scaling":
        return scaling_rows(args, rest)
    if args.kind == "costs":
        return [r for t in tasks or ["halfcheetah"] for r in costs_rows(t, agents_ or ["sac", "smfp", "sacflow", "dime"])]
    if args.kind == "projection":
        return projection_rows(ints(args.batches, (1024, 8192)), int(args.atoms or 101), int(args.repeats or 20))
    flag = "--xla_cpu_experimental_ynn_fusion_type"
    clean = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    return [children("profile", m, [], [clean if m in ("xla_default", "configured") else dict(clean, XLA_FLAGS=f"{flag}={m}")])
            for m in ["xla_default", "configured", *split(args.fusion_types, ())]]


def main(argv: list[str] | None = None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args, rest = parser().parse_known_args(argv)
    out = getattr(args, "out", "") or OUT
    if args.kind == "report":
        saved = outputs.rundir.read_json(os.path.join(out, args.name + ".json"))
        with open(os.path.join(out, args.name + ".md"), "w") as f:
            f.write(markdown(saved["kind"], saved["rows"]))
        return saved["rows"]
    from mjx_smfp import cli, compile_cache

    overrides = cli.parse_cli_pairs(rest)
    if args.kind != "profile" or args.child in (None, "configured"):  # the other profile columns set their own
        compile_cache.configure()  # XLA:CPU flags (and $JAX_COMPILATION_CACHE_DIR) before any computation
    if args.child is not None:  # one process of `scaling` or `profile`: print its row
        row = scaling_child(args, overrides) if args.kind == "scaling" else profile_child(args.child, 4096, 256, 7)
        print(json.dumps(outputs.jsonable(row)), flush=True)
        if row.get("processes", 1) > 1:
            from mjx_smfp import processes

            processes.finish()  # every process leaves in order (exit 0)
        return None
    rows = measure(args, rest, overrides)
    name = args.name or "_".join([args.kind, *split(args.tasks, ()), *split(args.agents, ())])
    write(name, args.kind, rows, out, "python -m benchmarks.speed " + " ".join(argv))
    return rows


if __name__ == "__main__":
    main()
