"""What a policy class costs, measured in one run: network evaluations per action (NFE), ms per
batched action at 1, 256 and 4096 envs, and ms per gradient update at batch 256 and 8192, for
every agent at identical actor/critic widths, timed in interleaved rounds (benchmarks/throughput.py
`agent_costs`: median over rounds, so a slow phase of a shared machine hits every agent alike).

    python -m benchmarks.policy_cost --env halfcheetah --agents sac,smfp,sacflow,dime

Writes benchmarks/results/policy_cost_<env>.{csv,json} and, with --write_results_md, a row per
agent to the "Cost of a policy class" table in benchmarks/RESULTS.md.
"""
from __future__ import annotations

import argparse
import os
import time

from benchmarks import machine
from benchmarks.outputs import write_rows
from benchmarks.throughput import RESULTS_DIR, agent_costs

SECTION = "## Cost of a policy class (NFE, ms per action, ms per update)"
# The table's columns: every row has a cell for each (a "-" where a run measured a subset).
ACT_COLUMNS, BATCH_COLUMNS = (1, 256, 4096), (256, 8192)
HEADER = ("Same actor/critic widths for every agent; interleaved rounds, median per cell, so ratios within one "
          "run are comparable even on a loaded machine (absolute ms are not: the load average is in the JSON).\n\n"
          "| date | env | agent | NFE | ms/action @1 | @256 | @4096 | ms/update @256 | @8192 | update / SAC | "
          "action@4096 / SAC | machine |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")


def measure(names: list[str], obs_size: int, action_size: int, hidden: tuple, act_envs: tuple, batches: tuple,
            repeats: int, rounds: int, critic_hidden: tuple | None = None) -> list[dict]:
    """One row per agent: NFE, ms per action at each of `act_envs`, ms per update at each of `batches`
    (actor widths `hidden`, critic widths `critic_hidden`, default the same, for every agent)."""
    from mjx_smfp import agents
    from mjx_smfp import config as config_lib

    net = dict(actor_hidden=hidden, critic_hidden=critic_hidden or hidden)
    costs = {b: agent_costs(names, net, obs_size, action_size, b, act_envs if i == 0 else (), repeats, rounds)
             for i, b in enumerate(batches)}
    rows = []
    for name in names:
        cls = agents.get_class(name)
        policy = agents.make(name, config_lib.make_config(cls.Config, net), obs_size, action_size).policy
        row = {"agent": name, "nfe": policy.network_calls}
        row.update({f"act_{n}_ms": costs[batches[0]][f"{name}_act_{n}_ms"] for n in act_envs})
        row.update({f"update_{b}_ms": costs[b][f"{name}_update_ms"] for b in batches})
        rows.append(row)
    base = next((r for r in rows if r["agent"] == "sac"), rows[0])
    for r in rows:
        r["update_over_sac"] = r[f"update_{batches[0]}_ms"] / base[f"update_{batches[0]}_ms"]
        r["act_over_sac"] = r[f"act_{act_envs[-1]}_ms"] / base[f"act_{act_envs[-1]}_ms"]
    return rows


def markdown_rows(rows: list[dict], env: str, date: str, mach: str) -> str:
    """One table row per agent under HEADER's fixed columns ("-" for a size this run did not time).
    The ratios are at the first batch and the largest action batch the run timed (named in the JSON)."""
    lines, mach = [], mach.replace(" | ", ", ")
    cell = lambda r, key, fmt: format(r[key], fmt) if key in r else "-"  # noqa: E731
    for r in rows:
        acts = " | ".join(cell(r, f"act_{n}_ms", ".3f") for n in ACT_COLUMNS)
        updates = " | ".join(cell(r, f"update_{b}_ms", ".2f") for b in BATCH_COLUMNS)
        lines.append(f"| {date} | {env} | {r['agent']} | {r['nfe']} | {acts} | {updates} | "
                     f"**{r['update_over_sac']:.2f}x** | **{r['act_over_sac']:.2f}x** | {mach} |")
    return "\n".join(lines) + "\n"


def write_results_md(rows_md: str, path: str) -> None:
    """Append rows to our table in RESULTS.md (creating the section at the end if needed)."""
    text = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    if SECTION not in text:
        text = text.rstrip("\n") + f"\n\n{SECTION}\n\n" + HEADER
    head, _, tail = text.partition(SECTION)
    nxt = tail.find("\n## ")
    table, rest = (tail, "") if nxt < 0 else (tail[:nxt + 1], tail[nxt + 1:])
    with open(path, "w") as f:
        f.write(head + SECTION + table.rstrip("\n") + "\n" + rows_md + ("\n" + rest if rest else ""))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="halfcheetah", help="task whose obs/action sizes are used")
    parser.add_argument("--agents", default="sac,smfp,sacflow,dime")
    parser.add_argument("--hidden", default="256,256", help="actor and critic widths (identical for all)")
    parser.add_argument("--act_envs", default="1,256,4096")
    parser.add_argument("--batches", default="256,8192")
    parser.add_argument("--repeats", type=int, default=5, help="calls per timed block")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--out", default=RESULTS_DIR)
    parser.add_argument("--write_results_md", action="store_true")
    args = parser.parse_args(argv)
    from mjx_smfp import compile_cache

    compile_cache.configure()  # XLA:CPU flags (and $JAX_COMPILATION_CACHE_DIR) before any computation
    import envs

    task = envs.make(args.env)
    ints = lambda s: tuple(int(x) for x in s.split(",") if x.strip())  # noqa: E731
    act_envs, batches, hidden = ints(args.act_envs), ints(args.batches), ints(args.hidden)
    names = [a.strip() for a in args.agents.split(",") if a.strip()]
    mach, date = machine.summary(), time.strftime("%Y-%m-%d")
    print(f"[cost] {mach}; {args.env}: obs {task.observation_size}, action {task.action_size}; nets {hidden}",
          flush=True)
    rows = measure(names, task.observation_size, task.action_size, hidden, act_envs, batches, args.repeats,
                   args.rounds)
    table = markdown_rows(rows, args.env, date, mach)
    print(HEADER + table, flush=True)
    write_rows(os.path.join(args.out, f"policy_cost_{args.env}"), rows, machine=machine.describe(), date=date,
               env=args.env, hidden=hidden)
    if args.write_results_md:
        write_results_md(table, os.path.join(os.path.dirname(__file__), "RESULTS.md"))
    return rows


if __name__ == "__main__":
    main()
