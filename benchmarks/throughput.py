"""Training throughput of our compiled loop vs raw MJX stepping vs brax's own SAC, in one run.

    python -m benchmarks.throughput --env inverted_pendulum --agent sac [--preset cpu]
        [--num_envs 16 --batch_size 256 --updates_per_step 4 --calls 5 --skip_brax]

Measures, at the same num_envs / batch size / updates per step / replay capacity / network
sizes (2x256 actor and critic, LayerNorm critic, for parity with brax's defaults):
  * raw:   `jax.vmap(env.step)` of the bare task inside a `lax.scan` (no wrapper, no agent);
  * ours:  `engine.Engine.train_chunk` (act -> step -> insert -> G updates), steady state;
  * brax:  `brax.training.agents.sac.train` on the same task object (brax's wrappers), its
           own per-epoch `training/sps`, first (compiling) epoch dropped;
  * agent: per-update cost and batched action-sampling cost of the agent(s) at num_envs and
           at `--act_envs` (4096) — with `--agent smfp`, SAC and SMFP in interleaved rounds and
           their cost ratios (SMFP.md targets: update <= 1.3x, sampling <= 1.2x SAC).
Prints ratios and writes benchmarks/results/throughput_<env>_<agent>.{csv,json}; append the
table to benchmarks/RESULTS.md with `--write_results_md`.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import machine

RESULTS_DIR = os.path.join(os.path.dirname(__file__), "results")
NET = dict(actor_hidden=(256, 256), critic_hidden=(256, 256))


def _block(tree):
    jax.tree_util.tree_map(lambda x: x.block_until_ready() if hasattr(x, "block_until_ready") else x, tree)


def raw_stepping(env, num_envs: int, steps: int, repeats: int = 3) -> dict:
    """Env-steps/s of the bare task: vmapped step in a lax.scan, constant random actions."""
    reset = jax.jit(jax.vmap(env.reset))
    state = reset(jax.random.split(jax.random.PRNGKey(0), num_envs))
    actions = jax.random.uniform(jax.random.PRNGKey(1), (steps, num_envs, env.action_size), minval=-1, maxval=1)

    @jax.jit
    def rollout(state, actions):
        def body(s, a):
            return jax.vmap(env.step)(s, a), None

        return jax.lax.scan(body, state, actions)[0]

    t = time.time()
    state = rollout(state, actions)
    _block(state)
    compile_s = time.time() - t
    times = []
    for _ in range(repeats):
        t = time.time()
        state = rollout(state, actions)
        _block(state)
        times.append(time.time() - t)
    best = min(times)
    return {"env_steps_per_s": steps * num_envs / best, "compile_s": compile_s}


def our_loop(cfg, agent_cfg, calls: int) -> dict:
    from mjx_smfp.engine import Engine

    engine = Engine(cfg, agent_cfg)
    ts = engine.init_state()
    ts, _ = engine.warmup(ts)
    _block(ts)
    t = time.time()
    ts, summary = engine.train_chunk(ts)
    _block(summary)
    compile_s = time.time() - t
    steps_per_call = cfg.iterations_per_call * cfg.num_envs
    times = []
    for _ in range(calls):
        t = time.time()
        ts, summary = engine.train_chunk(ts)
        _block(summary)
        times.append(time.time() - t)
    dt = statistics.median(times)
    return {"env_steps_per_s": steps_per_call / dt,
            "updates_per_s": cfg.iterations_per_call * cfg.updates_per_step / dt,
            "compile_s": compile_s, "call_s": dt, "engine": engine, "state": ts}


def _keep_metric_keys(env):
    """brax's EvalWrapper adds metrics['reward'] and expects `step` to keep incoming metric keys
    (brax's own envs update state.metrics in place); pass them through for tasks that rebuild
    their metrics dict each step."""
    from brax.envs.base import Wrapper

    class KeepMetricKeys(Wrapper):
        def step(self, state, action):
            nstate = self.env.step(state, action)
            return nstate.replace(metrics={**state.metrics, **nstate.metrics})

    return KeepMetricKeys(env)


def _ensure_device_put_replicated() -> None:
    """Compatibility shim for brax 0.14.2 on jax >= 0.10, which removed `jax.device_put_replicated`
    (brax issue #671; brax's SAC/PPO call it to stack a copy of the training state per device for
    `pmap`). Defines it, if missing, as `jax.device_put` of `len(devices)` stacked copies sharded
    along the new leading axis over those devices: what the removed function returned. Set only
    here, for brax's SAC in this benchmark; the project itself never calls it."""
    if hasattr(jax, "device_put_replicated"):
        return

    def device_put_replicated(x, devices):
        mesh = jax.sharding.Mesh(np.asarray(devices), ("replica",))
        sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("replica"))
        return jax.tree_util.tree_map(
            lambda a: jax.device_put(jnp.stack([a] * len(devices)), sharding), x)

    jax.device_put_replicated = device_put_replicated


def brax_sac(env, cfg, agent_cfg, calls: int) -> dict:
    """brax's SAC at the same scale; its epochs = our host calls (same iterations each)."""
    import functools

    _ensure_device_put_replicated()

    from brax.training.agents.sac import networks as sac_networks
    from brax.training.agents.sac import train as sac_train

    sps, walls = [], []
    epochs = calls + 1  # the first epoch includes compilation
    prefill = cfg.learning_starts
    prefill_env_steps = -(-prefill // cfg.num_envs) * cfg.num_envs
    num_timesteps = prefill_env_steps + epochs * cfg.iterations_per_call * cfg.num_envs

    def progress(step, metrics):
        if "training/sps" in metrics:
            sps.append(float(metrics["training/sps"]))
            walls.append(time.time())

    t0 = time.time()
    sac_train.train(
        environment=_keep_metric_keys(env), num_timesteps=num_timesteps, episode_length=cfg.episode_length,
        num_envs=cfg.num_envs, num_eval_envs=1, batch_size=cfg.batch_size, num_evals=epochs + 1,
        normalize_observations=cfg.normalize_obs, min_replay_size=prefill, max_replay_size=cfg.replay_capacity,
        grad_updates_per_step=cfg.updates_per_step, learning_rate=agent_cfg.critic_lr,
        discounting=agent_cfg.gamma, tau=agent_cfg.tau, seed=cfg.seed, progress_fn=progress,
        network_factory=functools.partial(sac_networks.make_sac_networks,
                                          hidden_layer_sizes=tuple(agent_cfg.critic_hidden),
                                          q_network_layer_norm=agent_cfg.critic_layer_norm),
    )
    steady = sps[1:] if len(sps) > 1 else sps
    env_sps = statistics.median(steady)
    return {"env_steps_per_s": env_sps, "updates_per_s": env_sps / cfg.num_envs * cfg.updates_per_step,
            "total_s": time.time() - t0, "epochs_sps": sps}


def replay_insert_costs(capacity: int, obs_size: int, action_size: int, num_envs: int, batch_size: int,
                        repeats: int = 20) -> dict:
    """ms per insert of `num_envs` rows and per sample of `batch_size` rows into a FULL ring:
    ours (scatter at the write index, donated) vs brax's UniformSamplingQueue (rolls when full)."""
    from brax.training import replay_buffers

    from mjx_smfp import replay
    from mjx_smfp.agents.base import Transition

    rows = Transition(obs=jnp.ones((num_envs, obs_size)), action=jnp.ones((num_envs, action_size)),
                      reward=jnp.ones(num_envs), next_obs=jnp.ones((num_envs, obs_size)),
                      terminated=jnp.zeros(num_envs), truncated=jnp.zeros(num_envs))

    def timed(fn, state):
        state = fn(state)  # compile
        _block(state)
        t = time.time()
        for _ in range(repeats):
            state = fn(state)
        _block(state)
        return (time.time() - t) / repeats * 1e3, state

    ours = replay.init(capacity, obs_size, action_size)
    ours = ours.replace(size=jnp.asarray(capacity, jnp.int32))  # full
    ours_insert, ours = timed(jax.jit(lambda b: replay.insert(b, rows), donate_argnums=0), ours)
    sample = jax.jit(lambda b, k: replay.sample(b, k, batch_size))
    _block(sample(ours, jax.random.PRNGKey(0)))
    t = time.time()
    for i in range(repeats):
        out = sample(ours, jax.random.PRNGKey(i))
    _block(out)
    ours_sample = (time.time() - t) / repeats * 1e3
    del ours

    queue = replay_buffers.UniformSamplingQueue(max_replay_size=capacity, dummy_data_sample=jax.tree_util.tree_map(
        lambda x: x[0], rows), sample_batch_size=batch_size)
    qstate = queue.init(jax.random.PRNGKey(0))
    qstate = qstate.replace(insert_position=jnp.asarray(capacity, jnp.int32))  # full
    brax_insert, qstate = timed(jax.jit(lambda b: queue.insert(b, rows), donate_argnums=0), qstate)
    bsample = jax.jit(queue.sample, donate_argnums=0)  # as in brax's loop: the state is threaded through
    qstate, out = bsample(qstate)
    _block(out)
    t = time.time()
    for _ in range(repeats):
        qstate, out = bsample(qstate)
    _block(out)
    brax_sample = (time.time() - t) / repeats * 1e3
    return {"replay_capacity": capacity, "replay_obs_size": obs_size, "ours_insert_ms": ours_insert,
            "brax_insert_ms": brax_insert, "ours_sample_ms": ours_sample, "brax_sample_ms": brax_sample}


def _agent_timers(name: str, agent_cfg_overrides: dict, obs_size: int, action_size: int, batch_size: int,
                  act_envs: tuple[int, ...], repeats: int):
    """Jitted timers for one agent: {"update": fn, "act_<n>": fn ...}, each running `repeats` calls."""
    from mjx_smfp import agents
    from mjx_smfp import config as config_lib
    from mjx_smfp.agents.base import Transition

    cls = agents.get_class(name).Config
    fields = config_lib.flat_field_types(cls)
    agent_cfg = config_lib.make_config(cls, {k: v for k, v in agent_cfg_overrides.items() if k in fields})
    agent = agents.make(name, agent_cfg, obs_size, action_size)
    state = agent.init(jax.random.PRNGKey(0))
    k = jax.random.split(jax.random.PRNGKey(1), 4)
    batch = Transition(obs=jax.random.normal(k[0], (batch_size, obs_size)),
                       action=jax.random.uniform(k[1], (batch_size, action_size), minval=-1, maxval=1),
                       reward=jnp.ones(batch_size), next_obs=jax.random.normal(k[2], (batch_size, obs_size)),
                       terminated=jnp.zeros(batch_size), truncated=jnp.zeros(batch_size))

    @jax.jit
    def many_updates(state):
        def body(s, i):
            return agent.update(s, batch, jax.random.PRNGKey(i))[0], None

        return jax.lax.scan(body, state, jnp.arange(repeats))[0]

    def many_acts(num_envs):
        obs = jax.random.normal(k[3], (num_envs, obs_size))

        @jax.jit
        def run(state):
            # The observations change every call (rolled), so XLA cannot hoist the network out
            # of the loop (with constant obs, a Gaussian actor's mean would be computed once).
            def body(carry, i):
                acc, o = carry
                return (acc + agent.act(state, o, jax.random.PRNGKey(i)).sum(), jnp.roll(o, 1, axis=0)), None

            return jax.lax.scan(body, (0.0, obs), jnp.arange(repeats))[0][0]

        return run

    timers = {"update": many_updates, **{f"act_{n}": many_acts(n) for n in act_envs}}
    return state, timers


def agent_costs(names: list[str], agent_cfg_overrides: dict, obs_size: int, action_size: int, batch_size: int,
                act_envs: tuple[int, ...], repeats: int = 20, rounds: int = 5) -> dict:
    """ms per `update` on one batch and per batched `act` for each agent, jitted, steady state.

    The agents are timed in interleaved rounds (A B A B ...) and each figure is the median over
    rounds, so a slow phase of a shared machine hits every agent alike."""
    setups = {n: _agent_timers(n, agent_cfg_overrides, obs_size, action_size, batch_size, act_envs, repeats)
              for n in names}
    times = {n: {label: [] for label in timers} for n, (_, timers) in setups.items()}
    for n, (state, timers) in setups.items():  # compile + warm up
        for fn in timers.values():
            _block(fn(state))
    for _ in range(rounds):
        for n, (state, timers) in setups.items():
            for label, fn in timers.items():
                t = time.time()
                _block(fn(state))
                times[n][label].append((time.time() - t) / repeats)
    out = {}
    for n, by_label in times.items():
        out[f"{n}_update_ms"] = 1e3 * statistics.median(by_label["update"])
        out[f"{n}_updates_per_s"] = 1e3 / out[f"{n}_update_ms"]
        for m in act_envs:
            out[f"{n}_act_{m}_ms"] = 1e3 * statistics.median(by_label[f"act_{m}"])
            out[f"{n}_actions_per_s_{m}"] = m * 1e3 / out[f"{n}_act_{m}_ms"]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="inverted_pendulum")
    parser.add_argument("--agent", default="sac")
    parser.add_argument("--preset", default="auto")
    parser.add_argument("--num_envs", type=int)
    parser.add_argument("--batch_size", type=int)
    parser.add_argument("--updates_per_step", type=int)
    parser.add_argument("--iterations_per_call", type=int)
    parser.add_argument("--replay_capacity", type=int, default=100_000)
    parser.add_argument("--learning_starts", type=int)
    parser.add_argument("--calls", type=int, default=5, help="timed host calls / brax epochs")
    parser.add_argument("--raw_steps", type=int, default=200)
    parser.add_argument("--skip_brax", action="store_true")
    parser.add_argument("--skip_loop", action="store_true", help="skip raw/ours/brax training (micro-benchmarks only)")
    parser.add_argument("--replay_micro_capacity", type=int, default=0,
                        help="also time insert/sample into a full ring of this many rows, ours vs brax's queue")
    parser.add_argument("--replay_micro_obs_size", type=int, default=0, help="obs size for that (default: env's)")
    parser.add_argument("--act_envs", type=int, default=4096, help="also time act at this many envs (GPU-sized batch)")
    parser.add_argument("--write_results_md", action="store_true")
    args = parser.parse_args(argv)
    from mjx_smfp import compile_cache

    compile_cache.configure()  # XLA:CPU flags (and $JAX_COMPILATION_CACHE_DIR) before any computation

    import envs
    from mjx_smfp import agents
    from mjx_smfp import config as config_lib

    overrides = {"env": args.env, "agent": args.agent, "preset": args.preset, "replay_capacity": args.replay_capacity,
                 **{k: v for k, v in NET.items() if k in config_lib.flat_field_types(agents.get_class(args.agent).Config)}}
    for key in ("num_envs", "batch_size", "updates_per_step", "iterations_per_call", "learning_starts"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    cfg, agent_cfg = config_lib.build(overrides)
    cfg = dataclasses.replace(cfg, eval_episodes=1)
    env = envs.make(cfg.env, **cfg.env_options)
    print(f"[bench] {machine.summary()}")
    print(f"[bench] {cfg.env} / {cfg.agent}: {cfg.num_envs} envs, batch {cfg.batch_size}, G={cfg.updates_per_step}, "
          f"{cfg.iterations_per_call} iterations per call, replay {cfg.replay_capacity:,}", flush=True)

    result = {"machine": machine.summary(), "env": cfg.env, "agent": cfg.agent, "num_envs": cfg.num_envs,
              "batch_size": cfg.batch_size, "updates_per_step": cfg.updates_per_step,
              "iterations_per_call": cfg.iterations_per_call, "replay_capacity": cfg.replay_capacity,
              "networks": "actor 2x256, critic 2x256 + LayerNorm", "date": time.strftime("%Y-%m-%d %H:%M")}
    obs_size, action_size = int(env.observation_size), int(env.action_size)
    if not args.skip_loop:
        raw = raw_stepping(env, cfg.num_envs, args.raw_steps)
        result["raw_env_steps_per_s"] = raw["env_steps_per_s"]
        print(f"[bench] raw MJX stepping: {raw['env_steps_per_s']:,.0f} env-steps/s", flush=True)

        ours = our_loop(cfg, agent_cfg, args.calls)
        result.update(ours_env_steps_per_s=ours["env_steps_per_s"], ours_updates_per_s=ours["updates_per_s"],
                      ours_compile_s=ours["compile_s"])
        print(f"[bench] ours ({cfg.agent}): {ours['env_steps_per_s']:,.0f} env-steps/s, {ours['updates_per_s']:,.0f} "
              f"updates/s (compile {ours['compile_s']:.0f} s)", flush=True)
        result["ours_over_raw"] = ours["env_steps_per_s"] / raw["env_steps_per_s"]
        del ours

        if not args.skip_brax:
            sac_cfg = agent_cfg if cfg.agent == "sac" else agents.get_class("sac").Config(**NET)
            brax = brax_sac(env, cfg, sac_cfg, args.calls)
            result.update(brax_env_steps_per_s=brax["env_steps_per_s"], brax_updates_per_s=brax["updates_per_s"],
                          brax_total_s=brax["total_s"])
            result["ours_over_brax"] = result["ours_env_steps_per_s"] / brax["env_steps_per_s"]
            print(f"[bench] brax SAC: {brax['env_steps_per_s']:,.0f} env-steps/s, {brax['updates_per_s']:,.0f} updates/s "
                  f"(epochs: {', '.join(f'{s:,.0f}' for s in brax['epochs_sps'])})", flush=True)

    if args.replay_micro_capacity:
        rep = replay_insert_costs(args.replay_micro_capacity, args.replay_micro_obs_size or obs_size, action_size,
                                  cfg.num_envs, cfg.batch_size)
        result.update({f"replay_micro_{k}": v for k, v in rep.items()})
        print(f"[bench] full replay ({rep['replay_capacity']:,} rows, obs {rep['replay_obs_size']}): insert of "
              f"{cfg.num_envs} rows ours {rep['ours_insert_ms']:.3f} ms vs brax {rep['brax_insert_ms']:.3f} ms; "
              f"sample of {cfg.batch_size} ours {rep['ours_sample_ms']:.3f} ms vs brax {rep['brax_sample_ms']:.3f} ms",
              flush=True)

    names = ["sac"] + ([cfg.agent] if cfg.agent != "sac" else [])
    act_envs = tuple(dict.fromkeys((cfg.num_envs, args.act_envs)))
    costs = agent_costs(names, NET, obs_size, action_size, cfg.batch_size, act_envs)
    result.update(costs)
    for name in names:
        print(f"[bench] {name}: {costs[f'{name}_update_ms']:.2f} ms/update (batch {cfg.batch_size}); act "
              + ", ".join(f"{costs[f'{name}_act_{m}_ms']:.3f} ms ({m} envs)" for m in act_envs), flush=True)
    if cfg.agent != "sac":
        a = cfg.agent
        result[f"{a}_over_sac_update"] = costs[f"{a}_update_ms"] / costs["sac_update_ms"]
        for m in act_envs:
            result[f"{a}_over_sac_act_{m}"] = costs[f"{a}_act_{m}_ms"] / costs[f"sac_act_{m}_ms"]
        print(f"[bench] {a} / sac cost: update {result[f'{a}_over_sac_update']:.2f}x; act "
              + ", ".join(f"{result[f'{a}_over_sac_act_{m}']:.2f}x ({m} envs)" for m in act_envs), flush=True)

    if "ours_over_raw" in result:
        print(f"[bench] ours / raw stepping = {result['ours_over_raw']:.2f}"
              + (f"; ours / brax SAC = {result['ours_over_brax']:.2f}" if "ours_over_brax" in result else ""))
    os.makedirs(RESULTS_DIR, exist_ok=True)
    stem = os.path.join(RESULTS_DIR, f"throughput_{cfg.env}_{cfg.agent}")
    merged = result
    if os.path.exists(stem + ".json"):  # keep figures of earlier partial runs (e.g. --skip_loop) in the files
        with open(stem + ".json") as f:
            merged = {**json.load(f), **result}
    with open(stem + ".json", "w") as f:
        json.dump(merged, f, indent=2)
    with open(stem + ".csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["metric", "value"])
        writer.writerows(sorted(merged.items()))
    print(f"[bench] wrote {stem}.json/.csv")
    if args.write_results_md:
        write_results_md(result)  # only what THIS run measured
    return result


SECTION = "## Training throughput (loop vs raw stepping vs brax SAC)"


COST_SECTION = "## SMFP vs Gaussian SAC: cost per update and per action"


def _cell(r: dict, key: str, fmt: str) -> str:
    return format(r[key], fmt) if key in r else "—"


def _insert_row(text: str, section: str, header: str, row: str) -> str:
    """Append `row` to the first table of `section` in `text`, creating the section if missing."""
    if section not in text:
        text = text.rstrip("\n") + "\n\n" + section + "\n\n" + header
    lines = text.split("\n")
    first = lines.index(section)
    i = next(j for j in range(first, len(lines)) if lines[j].startswith("| date |")) + 1
    while i < len(lines) and lines[i].startswith("|"):
        i += 1
    lines.insert(i, row)
    return "\n".join(lines)


def write_results_md(r: dict, path: str | None = None) -> None:
    """Add this run's rows to our sections of benchmarks/RESULTS.md (or `path`): the
    loop-throughput row (when the loop was timed) and, for a non-SAC agent, the cost-ratio row."""
    path = path or os.path.join(os.path.dirname(__file__), "RESULTS.md")
    text = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    mach = r["machine"].replace(" | ", ", ")
    if "ours_over_raw" in r:
        row = (f"| {r['date']} | {r['env']} | {r['agent']} | {r['num_envs']} | {r['batch_size']} | "
               f"{r['updates_per_step']} | {r['raw_env_steps_per_s']:,.0f} | {r['ours_env_steps_per_s']:,.0f} | "
               f"{r['ours_updates_per_s']:,.0f} | {_cell(r, 'brax_env_steps_per_s', ',.0f')} | "
               f"{_cell(r, 'ours_over_brax', '.2f')} | {r['ours_over_raw']:.2f} | {mach} |")
        header = ("`python -m benchmarks.throughput --env ENV --agent AGENT` (benchmarks/throughput.py). "
                  "Same num_envs, batch, updates per iteration (G), replay capacity and 2x256 networks "
                  "(LayerNorm critic) for ours and brax; brax's figure is its own `training/sps`, compile epoch "
                  "dropped. Raw = vmapped bare `env.step` in a `lax.scan`.\n\n"
                  "| date | env | agent | envs | batch | G | raw env-steps/s | ours env-steps/s | ours updates/s | "
                  "brax SAC env-steps/s | ours/brax | ours/raw | machine |\n"
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
        text = _insert_row(text, SECTION, header, row)
    a = r["agent"]
    if f"{a}_over_sac_update" in r:
        acts = sorted(int(k.rsplit("_", 1)[1]) for k in r if k.startswith(f"{a}_over_sac_act_"))
        act_cells = "; ".join(f"{r[f'sac_act_{m}_ms']:.3f} / {r[f'{a}_act_{m}_ms']:.3f} = "
                               f"**{r[f'{a}_over_sac_act_{m}']:.2f}x** ({m} envs)" for m in acts)
        row = (f"| {r['date']} | {r['env']} | {a} | {r['batch_size']} | {r['sac_update_ms']:.2f} / "
               f"{r[f'{a}_update_ms']:.2f} = **{r[f'{a}_over_sac_update']:.2f}x** | {act_cells} | {mach} |")
        header = ("`python -m benchmarks.throughput --env ENV --agent smfp` (benchmarks/throughput.py): one jitted "
                  "`update` on a batch, and one batched `act`, for SAC and SMFP with the same 2x256 actor and "
                  "critic, timed in interleaved rounds (median of 5). Targets (issue 4): update <= 1.3x, "
                  "sampling <= 1.2x.\n\n"
                  "| date | env | agent | batch | ms/update SAC / agent = ratio | ms/act SAC / agent = ratio | machine |\n"
                  "|---|---|---|---|---|---|---|\n")
        text = _insert_row(text, COST_SECTION, header, row)
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
