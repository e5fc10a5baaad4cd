"""What `--num_seeds N` buys: aggregate env-steps/s of N seeds in one compiled program vs the
same N seeds run one after another.

    python -m benchmarks.seeds_throughput [--env halfcheetah] [--agent sac] [--seeds 1,2,4,8]
        [--rounds 5] [--iterations 200] [--write_results_md] [--field value ...]

Paper-protocol sizes (preset `paper`: 1 env per seed, batch 256, UTD 1, 3x256 actor and critic).
One Engine per N is built, initialised and warmed up (`learning_starts` 256, so updates sample
a partly filled ring, which costs the same as a full one), and its first train chunk (the
compile) is dropped. Then `--rounds` rounds each time one chunk of `--iterations` iterations
of every N in turn (interleaved, so a slow phase of a shared machine hits every N alike).
Aggregate rate of N in one program = N x iterations / chunk time (median over rounds); N seeds
one after another take N chunks of the N = 1 engine, so their aggregate rate IS the N = 1
rate, measured in the same rounds. Speed-up = the ratio. Compile time is reported, not counted.

Writes benchmarks/results/seeds_throughput_<env>_<agent>.{csv,json}; `--write_results_md`
(re)writes its section (one per env and agent) at the end of benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import statistics
import time

from benchmarks import machine
from benchmarks.wallclock_vs_sac import write_results_md

RESULTS_DIR = os.path.join(os.path.dirname(__file__), "results")
SECTION = "## Seeds in one program (`--num_seeds`): aggregate throughput"  # + " — env, agent"


def measure(cfg, agent_cfg, seeds: list[int], rounds: int, say=print) -> list[dict]:
    """One row per N: compile seconds, per-round chunk seconds, median aggregate env-steps/s."""
    import jax

    from mjx_smfp.engine import Engine

    engines, states, rows = {}, {}, {}
    for n in seeds:
        t = time.perf_counter()
        engines[n] = Engine(dataclasses.replace(cfg, num_seeds=n), agent_cfg)
        ts, _ = engines[n].warmup(engines[n].init_state())
        ts, summary = engines[n].train_chunk(ts)
        jax.block_until_ready(summary)
        states[n] = ts
        rows[n] = {"num_seeds": n, "compile_and_first_chunk_s": time.perf_counter() - t, "chunk_s": []}
        say(f"[seeds] N={n}: built, warmed up and compiled in {rows[n]['compile_and_first_chunk_s']:.0f} s")
    for r in range(rounds):
        for n in seeds:
            t = time.perf_counter()
            states[n], summary = engines[n].train_chunk(states[n])
            jax.block_until_ready(summary)
            rows[n]["chunk_s"].append(time.perf_counter() - t)
        say(f"[seeds] round {r + 1}/{rounds}: " + ", ".join(
            f"N={n} {n * cfg.iterations_per_call / rows[n]['chunk_s'][-1]:,.0f}/s" for n in seeds))
    base = cfg.iterations_per_call / statistics.median(rows[seeds[0]]["chunk_s"]) if seeds[0] == 1 else float("nan")
    out = []
    for n in seeds:
        row = rows[n]
        row["median_chunk_s"] = statistics.median(row["chunk_s"])
        row["aggregate_env_steps_per_s"] = n * cfg.iterations_per_call / row["median_chunk_s"]
        row["sequential_env_steps_per_s"] = base
        row["speedup_vs_sequential"] = row["aggregate_env_steps_per_s"] / base
        out.append(row)
    return out


def markdown_table(rows: list[dict]) -> str:
    lines = ["| seeds N | aggregate env-steps/s, one program | N seeds one after another | speed-up | "
             "per-seed env-steps/s | compile + 1st chunk (s) |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['num_seeds']} | {r['aggregate_env_steps_per_s']:,.0f} | {r['sequential_env_steps_per_s']:,.0f} | "
                     f"**{r['speedup_vs_sequential']:.2f}x** | {r['aggregate_env_steps_per_s'] / r['num_seeds']:,.0f} | "
                     f"{r['compile_and_first_chunk_s']:.0f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="halfcheetah")
    parser.add_argument("--agent", default="sac")
    parser.add_argument("--seeds", default="1,2,4,8", help="N values; the first must be 1 (the sequential baseline)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=200, help="iterations (env steps per seed) per timed chunk")
    parser.add_argument("--write_results_md", action="store_true")
    args, rest = parser.parse_known_args(argv)
    from mjx_smfp import cli, compile_cache

    compile_cache.configure()  # XLA:CPU flags (and $JAX_COMPILATION_CACHE_DIR) before any computation
    from mjx_smfp import config as config_lib

    seeds = [int(s) for s in args.seeds.split(",")]
    if seeds[0] != 1:
        raise SystemExit("--seeds must start with 1 (the one-after-another baseline)")
    cfg, agent_cfg = config_lib.build({"env": args.env, "agent": args.agent, "preset": "paper", "learning_starts": 256,
                                       "replay_capacity": 10_000, "iterations_per_call": args.iterations,
                                       **cli.parse_cli_pairs(rest)})
    info = machine.describe()
    print(f"[seeds] {machine.summary(info)}; {args.env}/{args.agent}, preset paper: {cfg.num_envs} env per seed, batch "
          f"{cfg.batch_size}, UTD {cfg.updates_per_step}, actor {agent_cfg.actor_hidden}, critic "
          f"{agent_cfg.critic_hidden}; N = {seeds}, {args.rounds} interleaved rounds of {args.iterations} iterations",
          flush=True)
    t0 = time.time()
    rows = measure(cfg, agent_cfg, seeds, args.rounds, say=lambda m: print(m, flush=True))
    info["load_average_after"] = os.getloadavg()
    table = markdown_table(rows)
    print("\n" + table, flush=True)
    stem = os.path.join(RESULTS_DIR, f"seeds_throughput_{args.env}_{args.agent}")
    os.makedirs(RESULTS_DIR, exist_ok=True)
    with open(stem + ".csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[k for k in rows[0] if k != "chunk_s"])
        w.writeheader()
        w.writerows([{k: v for k, v in r.items() if k != "chunk_s"} for r in rows])
    meta = {"machine": info, "env": args.env, "agent": args.agent, "rounds": args.rounds,
            "iterations_per_chunk": args.iterations, "total_s": time.time() - t0,
            "config": config_lib.to_dict(cfg, agent_cfg)}
    with open(stem + ".json", "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=2)
    print(f"[seeds] wrote {stem}.csv/.json ({(time.time() - t0) / 60:.1f} min)")
    if args.write_results_md:
        cmd = "python -m benchmarks.seeds_throughput " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
        write_results_md(
            f"`{cmd}`: {args.env}, agent {args.agent}, paper-protocol sizes (1 env per seed, batch 256, UTD 1, "
            f"3x256 actor and critic); median of {args.rounds} interleaved rounds of {args.iterations} iterations per "
            f"N, compile excluded. Machine: {machine.summary(info)} (2-core AMD CPU), {info['date']}; load average "
            f"{info['load_average'][0]:.1f} before / {info['load_average_after'][0]:.1f} after — other jobs were "
            f"running on the machine (other engineers' tests and compiles), so read the absolute rates loosely; the "
            f"ratios come from the same interleaved rounds.\n\n{table}\n", heading=f"{SECTION} — {args.env}, {args.agent}")
    return rows


if __name__ == "__main__":
    main()
