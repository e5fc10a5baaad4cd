"""Training throughput of our compiled loop vs raw MJX stepping vs brax's own SAC, in one run.

    python -m benchmarks.throughput --env inverted_pendulum --agent sac [--preset cpu]
        [--num_envs 16 --batch_size 256 --updates_per_step 4 --calls 5 --skip_brax]

Measures, at the same num_envs / batch size / updates per step / replay capacity / network
sizes (2x256 actor and critic, LayerNorm critic, for parity with brax's defaults):
  * raw:   `jax.vmap(env.step)` of the bare task inside a `lax.scan` (no wrapper, no agent);
  * ours:  `loop.Engine.train_chunk` (act -> step -> insert -> G updates), steady state;
  * brax:  `brax.training.agents.sac.train` on the same task object (brax's wrappers), its
           own per-epoch `training/sps`, first (compiling) epoch dropped;
  * agent: per-update cost and batched action-sampling throughput of the agent(s) — with
           `--agent smfp` SAC and SMFP side by side.
Prints ratios and writes benchmarks/results/throughput_<env>_<agent>.{csv,json}; append the
table to benchmarks/RESULTS.md with `--write_results_md`.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

RESULTS_DIR = os.path.join(os.path.dirname(__file__), "results")
NET = dict(actor_hidden=(256, 256), critic_hidden=(256, 256))


def machine() -> str:
    dev = jax.devices()[0]
    kind = getattr(dev, "device_kind", dev.platform)
    return f"{platform.node()} | {dev.platform}:{kind} x{jax.device_count()} | {os.cpu_count()} CPU cores | jax {jax.__version__}"


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


def our_loop(cfg, agent, calls: int) -> dict:
    from mjx_smfp.loop import Engine

    engine = Engine(cfg, agent)
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


def brax_sac(env, cfg, agent_cfg, calls: int) -> dict:
    """brax's SAC at the same scale; its epochs = our host calls (same iterations each)."""
    import functools

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


def agent_costs(name: str, agent_cfg_overrides: dict, obs_size: int, action_size: int, batch_size: int,
                num_envs: int, repeats: int = 20) -> dict:
    """Seconds per `update` on one batch and actions/s of batched `act`, jitted, steady state."""
    from mjx_smfp import agents
    from mjx_smfp.agents.base import Transition

    cls = agents.get_class(name)
    fields = {f.name for f in dataclasses.fields(cls.Config)}
    agent = cls(cls.Config(**{k: v for k, v in agent_cfg_overrides.items() if k in fields}))
    state = agent.init(jax.random.PRNGKey(0), obs_size, action_size)
    k = jax.random.split(jax.random.PRNGKey(1), 4)
    batch = Transition(obs=jax.random.normal(k[0], (batch_size, obs_size)),
                       action=jax.random.uniform(k[1], (batch_size, action_size), minval=-1, maxval=1),
                       reward=jnp.ones(batch_size), next_obs=jax.random.normal(k[2], (batch_size, obs_size)),
                       terminated=jnp.zeros(batch_size), truncated=jnp.zeros(batch_size))
    obs = jax.random.normal(k[3], (num_envs, obs_size))

    @jax.jit
    def many_updates(state):
        def body(s, i):
            return agent.update(s, batch, jax.random.PRNGKey(i))[0], None

        return jax.lax.scan(body, state, jnp.arange(repeats))[0]

    @jax.jit
    def many_acts(state):
        def body(c, i):
            return c + agent.act(state, obs, jax.random.PRNGKey(i)).sum(), None

        return jax.lax.scan(body, 0.0, jnp.arange(repeats))[0]

    out = {}
    for label, fn in (("update", many_updates), ("act", many_acts)):
        _block(fn(state))
        t = time.time()
        _block(fn(state))
        out[label] = (time.time() - t) / repeats
    return {"update_ms": 1e3 * out["update"], "updates_per_s": 1 / out["update"],
            "act_ms": 1e3 * out["act"], "actions_per_s": num_envs / out["act"]}


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
    parser.add_argument("--write_results_md", action="store_true")
    args = parser.parse_args(argv)

    import envs
    from mjx_smfp import agents
    from mjx_smfp import config as config_lib

    overrides = {"env": args.env, "agent": args.agent, "preset": args.preset, "replay_capacity": args.replay_capacity,
                 **{k: v for k, v in NET.items() if k in {f.name for f in dataclasses.fields(agents.get_class(args.agent).Config)}}}
    for key in ("num_envs", "batch_size", "updates_per_step", "iterations_per_call", "learning_starts"):
        if getattr(args, key) is not None:
            overrides[key] = getattr(args, key)
    cfg, agent_cfg = config_lib.build(overrides)
    cfg = dataclasses.replace(cfg, eval_episodes=1)
    env = envs.make(cfg.env, **cfg.env_options)
    print(f"[bench] {machine()}")
    print(f"[bench] {cfg.env} / {cfg.agent}: {cfg.num_envs} envs, batch {cfg.batch_size}, G={cfg.updates_per_step}, "
          f"{cfg.iterations_per_call} iterations per call, replay {cfg.replay_capacity:,}", flush=True)

    result = {"machine": machine(), "env": cfg.env, "agent": cfg.agent, "num_envs": cfg.num_envs,
              "batch_size": cfg.batch_size, "updates_per_step": cfg.updates_per_step,
              "iterations_per_call": cfg.iterations_per_call, "replay_capacity": cfg.replay_capacity,
              "networks": "actor 2x256, critic 2x256 + LayerNorm", "date": time.strftime("%Y-%m-%d %H:%M")}
    obs_size, action_size = int(env.observation_size), int(env.action_size)
    if not args.skip_loop:
        raw = raw_stepping(env, cfg.num_envs, args.raw_steps)
        result["raw_env_steps_per_s"] = raw["env_steps_per_s"]
        print(f"[bench] raw MJX stepping: {raw['env_steps_per_s']:,.0f} env-steps/s", flush=True)

        ours = our_loop(cfg, agents.make(cfg.agent, agent_cfg), args.calls)
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
    for name in names:
        costs = agent_costs(name, NET, obs_size, action_size, cfg.batch_size, cfg.num_envs)
        for k, v in costs.items():
            result[f"{name}_{k}"] = v
        print(f"[bench] {name}: {costs['update_ms']:.2f} ms/update (batch {cfg.batch_size}), "
              f"{costs['actions_per_s']:,.0f} actions/s ({cfg.num_envs} envs)", flush=True)

    if "ours_over_raw" in result:
        print(f"[bench] ours / raw stepping = {result['ours_over_raw']:.2f}"
              + (f"; ours / brax SAC = {result['ours_over_brax']:.2f}" if "ours_over_brax" in result else ""))
    os.makedirs(RESULTS_DIR, exist_ok=True)
    stem = os.path.join(RESULTS_DIR, f"throughput_{cfg.env}_{cfg.agent}")
    if os.path.exists(stem + ".json"):  # keep figures of earlier partial runs (e.g. --skip_loop)
        with open(stem + ".json") as f:
            result = {**json.load(f), **result}
    with open(stem + ".json", "w") as f:
        json.dump(result, f, indent=2)
    with open(stem + ".csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["metric", "value"])
        writer.writerows(sorted(result.items()))
    print(f"[bench] wrote {stem}.json/.csv")
    if args.write_results_md and "ours_over_raw" in result:
        write_results_md(result)
    return result


SECTION = "## Training throughput (loop vs raw stepping vs brax SAC)"


def write_results_md(r: dict) -> None:
    """Add or replace this benchmark's row set in our section of benchmarks/RESULTS.md."""
    path = os.path.join(os.path.dirname(__file__), "RESULTS.md")
    text = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    row = (f"| {r['date']} | {r['env']} | {r['agent']} | {r['num_envs']} | {r['batch_size']} | {r['updates_per_step']} | "
           f"{r['raw_env_steps_per_s']:,.0f} | {r['ours_env_steps_per_s']:,.0f} | {r['ours_updates_per_s']:,.0f} | "
           f"{r.get('brax_env_steps_per_s', float('nan')):,.0f} | {r.get('ours_over_brax', float('nan')):.2f} | "
           f"{r['ours_over_raw']:.2f} | {r['machine'].replace(' | ', ', ')} |")
    header = ("\n" + SECTION + "\n\n`python -m benchmarks.throughput --env ENV --agent AGENT` (benchmarks/throughput.py). "
              "Same num_envs, batch, updates per iteration (G), replay capacity and 2x256 networks "
              "(LayerNorm critic) for ours and brax; brax's figure is its own `training/sps`, compile epoch "
              "dropped. Raw = vmapped bare `env.step` in a `lax.scan`.\n\n"
              "| date | env | agent | envs | batch | G | raw env-steps/s | ours env-steps/s | ours updates/s | "
              "brax SAC env-steps/s | ours/brax | ours/raw | machine |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
    if SECTION not in text:
        text = text.rstrip("\n") + "\n" + header
    # Insert the row at the end of the section's first table (notes and other tables follow it).
    lines = text.split("\n")
    first = lines.index(SECTION)
    i = next(j for j in range(first, len(lines)) if lines[j].startswith("| date | env |")) + 1
    while i < len(lines) and lines[i].startswith("|"):
        i += 1
    lines.insert(i, row)
    text = "\n".join(lines)
    with open(path, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
