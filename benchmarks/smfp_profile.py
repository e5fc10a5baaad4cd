"""Where SMFP's extra cost per action and per update over SAC goes, on the CPU: a profile by parts.

    python -m benchmarks.smfp_profile [--envs 4096] [--batch 256] [--fusion_types dot,reduce,eltwise] [--out DIR]

Each part is timed (jitted, `--repeats` calls per timed block, median over interleaved rounds,
as benchmarks/throughput.agent_costs) in two fresh processes: XLA:CPU's defaults, and the flags
`mjx_smfp.compile_cache.configure()` sets (YNNPACK fusion off), and one more per `--fusion_types`
value (only that kind of YNNPACK fusion on: which kind costs what). Parts, at HalfCheetah's sizes
(obs 17, |A| 6) and 256-wide nets (benchmarks.policy_cost's):
  act / update     the whole SAC and SMFP `act` at `--envs` envs and `update` at `--batch`, timed
                   by benchmarks.throughput.agent_costs (policy_cost's harness: state threaded
                   through the scan, so no part of an update is dead code);
  net              SAC's actor MLP (17-256-256-12), SMFP's flow u(s, eps) and its sigma head;
  head width       an MLP 17-256-256-n at n = 1 ... 16 (SMFP's flow head has |A| outputs,
                   SAC's Gaussian head 2|A|);
  first layer      a flow-shaped MLP [s, eps]-256-256-6 whose first layer is a sum of
                   per-group matmuls (networks.InputLayer before 2026-12-06) vs one matmul on
                   the concatenation (InputLayer now);
  noise            two jax.random.normal draws of [envs, |A|] (eps, xi; as before) vs
                   densities.normal_pair (now), and SAC's one draw;
  physics          raw MJX HalfCheetah stepping, 256 envs (benchmarks.throughput.raw_stepping),
                   in env-steps/s: the XLA flags must not slow the simulator down.
Writes DIR/smfp_profile.{json,md} (default benchmarks/results/policy_cost/).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from benchmarks import machine

OUT = os.path.join(os.path.dirname(__file__), "results", "policy_cost")
OBS, ACT, HIDDEN = 17, 6, (256, 256)
MODES = {"xla_default": "XLA:CPU defaults (YNNPACK fusion on)", "configured": "compile_cache.configure() (fusion off)"}
FUSION_FLAG = "--xla_cpu_experimental_ynn_fusion_type"  # --fusion_types: one more column per value


NET = dict(actor_hidden=HIDDEN, critic_hidden=HIDDEN)


def parts(envs: int) -> dict:
    """The parts below act/update: name -> (fn(state, obs, key) -> array, state), each jitted inside
    a scan by `time_parts`."""
    import jax
    import jax.numpy as jnp

    from mjx_smfp import agents
    from mjx_smfp import config as config_lib
    from mjx_smfp.policies.densities import normal_pair

    made = {}
    for name in ("sac", "smfp"):
        agent = agents.make(name, config_lib.make_config(agents.get_class(name).Config, NET), OBS, ACT)
        made[name] = agent, agent.init(jax.random.PRNGKey(0))
    (sac, sac_state), (smfp, smfp_state) = made["sac"], made["smfp"]
    k = jax.random.split(jax.random.PRNGKey(1), 8)

    def mlp(n):
        w = (jax.random.normal(k[3], (OBS, 256)) * 0.1, jax.random.normal(k[4], (256, 256)) * 0.06,
             jax.random.normal(k[5], (256, n)) * 0.06)
        return lambda p, o, key: jax.nn.relu(jax.nn.relu(o @ p[0]) @ p[1]) @ p[2], w

    first = (jax.random.normal(k[6], (OBS, 256)) * 0.1, jax.random.normal(k[7], (ACT, 256)) * 0.1, jnp.ones(256),
             jax.random.normal(k[4], (256, 256)) * 0.06, jax.random.normal(k[5], (256, ACT)) * 0.06)
    trunk = lambda p, h: jax.nn.relu(jax.nn.relu(h) @ p[3]) @ p[4]  # noqa: E731
    eps = lambda o: o[:, :ACT]  # noqa: E731  (per-sample, so nothing is hoisted out of the scan)
    two_normals = lambda key: [jax.random.normal(kk, (envs, ACT)) for kk in jax.random.split(key)]  # noqa: E731
    return {
        "net: SAC actor MLP": (lambda s, o, key: sac.policy.network.apply(s.actor_params, o), sac_state),
        "net: SMFP flow u(s, eps)": (lambda s, o, key: smfp.policy.flow(s.actor_params, o, eps(o)), smfp_state),
        "net: SMFP sigma head": (lambda s, o, key: smfp.policy.log_sigma(s.actor_params, o), smfp_state),
        **{f"head width: MLP n = {n}": mlp(n) for n in (1, 3, 6, 8, 12, 16)},
        "first layer: sum of matmuls": (lambda p, o, key: trunk(p, o @ p[0] + eps(o) @ p[1] + p[2]), first),
        "first layer: one matmul on concat": (
            lambda p, o, key: trunk(p, jax.lax.optimization_barrier(jnp.concatenate([o, eps(o)], -1))
                                    @ jnp.concatenate(p[:2], 0) + p[2]), first),
        "noise: SAC, one jax.random.normal": (lambda s, o, key: jax.random.normal(key, (envs, ACT)), None),
        "noise: SMFP, two jax.random.normal": (lambda s, o, key: sum(two_normals(key)), None),
        "noise: SMFP, normal_pair": (lambda s, o, key: sum(normal_pair(key, (envs, ACT))), None),
    }


def time_parts(envs: int, batch: int, repeats: int, rounds: int) -> dict:
    """ms per call of SAC's and SMFP's act and update (benchmarks.throughput.agent_costs, the harness
    of benchmarks.policy_cost) and of every part, median over `rounds` interleaved rounds of
    `repeats` calls."""
    import jax
    import jax.numpy as jnp

    from benchmarks.throughput import agent_costs

    costs = agent_costs(["sac", "smfp"], NET, OBS, ACT, batch, (envs,), repeats, rounds)
    ms = {f"{what}: {label}": costs[f"{name}_{what}_ms" if what == "update" else f"{name}_act_{envs}_ms"]
          for what in ("act", "update") for name, label in (("sac", "SAC"), ("smfp", "SMFP"))}

    obs0 = jax.random.normal(jax.random.PRNGKey(3), (envs, OBS))

    def scanned(fn):
        @jax.jit
        def run(state):
            def body(carry, i):  # the observations roll, so nothing is hoisted out of the loop
                acc, o = carry
                out = fn(state, o, jax.random.PRNGKey(i))
                return (acc + jnp.sum(out), jnp.roll(o, 1, axis=0)), None

            return jax.lax.scan(body, (0.0, obs0), jnp.arange(repeats))[0][0]

        return run

    runs = {name: (scanned(fn), state) for name, (fn, state) in parts(envs).items()}
    for run, state in runs.values():
        run(state).block_until_ready()
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, (run, state) in runs.items():
            t0 = time.perf_counter()
            run(state).block_until_ready()
            times[name].append(1e3 * (time.perf_counter() - t0) / repeats)
    return {**ms, **{name: statistics.median(t) for name, t in times.items()}}


def child(mode: str, args) -> None:
    if mode not in MODES:
        os.environ["XLA_FLAGS"] = f"{FUSION_FLAG}={mode}"
    elif mode == "configured":
        from mjx_smfp import compile_cache

        compile_cache.configure()
    import envs
    from benchmarks.throughput import raw_stepping

    ms = time_parts(args.envs, args.batch, args.repeats, args.rounds)
    physics = raw_stepping(envs.make("halfcheetah"), 256, 100)["env_steps_per_s"]
    print(json.dumps({"flags": os.environ.get("XLA_FLAGS", ""), "ms": ms, "physics_env_steps_per_s": physics}))


def markdown(results: dict, meta: dict) -> str:
    label = lambda m: MODES.get(m, f"only `{m}` fusions")  # noqa: E731
    names = list(next(iter(results.values()))["ms"])
    lines = [f"# SMFP's cost over SAC's, by parts ({meta['machine']}, {meta['date']})", "",
             f"`python -m benchmarks.smfp_profile --envs {meta['envs']} --batch {meta['batch']}"
             + (f" --fusion_types {meta['fusion_types']}" if meta["fusion_types"] else "") + "`: ms per call "
             f"(act and noise at {meta['envs']} envs, update at batch {meta['batch']}; HalfCheetah sizes, 256-wide "
             f"nets), median of {meta['rounds']} interleaved rounds of {meta['repeats']} calls, each column in its "
             "own process.", "",
             "| part | " + " | ".join(label(m) for m in results) + " |", "|---|" + "---|" * len(results)]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(f"{r['ms'][name]:.3f}" for r in results.values()) + " |")
    lines += ["", "| ratio | " + " | ".join(label(m) for m in results) + " |", "|---|" + "---|" * len(results)]
    lines.append("| physics: raw MJX HalfCheetah, 256 envs, env-steps/s | " + " | ".join(
        f"{r['physics_env_steps_per_s']:,.0f}" for r in results.values()) + " |")
    for what in ("act", "update"):
        lines.append(f"| {what}: SMFP / SAC | " + " | ".join(
            f"{r['ms'][f'{what}: SMFP'] / r['ms'][f'{what}: SAC']:.2f}x" for r in results.values()) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", type=int, default=4096, help="batch of observations for act and the noise")
    parser.add_argument("--batch", type=int, default=256, help="update batch")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", default=OUT)
    parser.add_argument("--fusion_types", default="", help=f"comma-separated values of {FUSION_FLAG}, a column each")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child, args)
    results = {}
    for mode in list(MODES) + [m for m in args.fusion_types.split(",") if m]:
        env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
        cmd = [sys.executable, "-m", "benchmarks.smfp_profile", "--child", mode] + [
            f"--{k}={getattr(args, k)}" for k in ("envs", "batch", "repeats", "rounds")]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True,
                             cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"[profile] {mode}: done", flush=True)
    meta = dict(machine=machine.summary(), date=time.strftime("%Y-%m-%d"), envs=args.envs, batch=args.batch,
                repeats=args.repeats, rounds=args.rounds, fusion_types=args.fusion_types)
    table = markdown(results, meta)
    print(table, flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "smfp_profile.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=2)
    with open(os.path.join(args.out, "smfp_profile_table.md"), "w") as f:
        f.write(table)


if __name__ == "__main__":
    main()
