"""The paper table: every (task, agent) under the `paper` protocol, all its seeds in ONE process.

    python -m benchmarks.paper_table --tasks humanoid,ant,halfcheetah,hopper,walker2d,swimmer,inverted_double_pendulum
        --agents smfp,sac [--budget 1000000] [--seeds 5] [--out DIR] [--report] [--smoke] [--field value ...]

Protocol (config preset `paper`): 1 env per seed, UTD 1, batch 256, 5K env steps of random
actions, deterministic evaluation of 10 episodes every 5K env steps, `--budget` env steps per
seed. The replay ring holds min(1M, budget) rows (a ring that never wraps is the same as 1M).
The `--seeds` seeds of one (task, agent) are one multi-seed run (`num_seeds`, seeds 0..N-1),
trained by `mjx_smfp.runner.run` in `DIR/runs/<task>/<agent>/` (config.json, metrics.jsonl,
TensorBoard, checkpoints, and machines.json: each machine that trained it, in order).
Re-running the same command continues every run from its latest checkpoint (checkpoints
every min(100K, max(5K, budget/10)) env steps and on SIGINT/SIGTERM) and skips finished
ones (`status.json`); a run whose loss went non-finite is recorded as failed, not retried.
The run dirs (checkpoints, GBs at 1M) are not for git; each run's status, its machines and
per-seed evaluations and configuration are also kept in `DIR/records/<task>_<agent>.json`, small
enough to commit, so a fresh clone still reports and skips the runs an earlier machine finished.
A command whose options differ from a run's saved configuration, finished or not, is refused
with the fields that differ (use another DIR).
`--field value` pairs go to every agent that has the field.
Any registered agent (`mjx_smfp.agents.names()`) can be listed in `--agents`.

Outputs, rewritten after every run and by `--report` (no training): `DIR/<task>.png` (eval
return vs env steps, mean ± s.d. over seeds, one line per agent) and `DIR/paper_table.{md,csv,json}`:
final return (mean of each seed's last 10 evaluations, labelled with the env steps it averages,
e.g. 55K-100K at a 100K budget) and best-so-far return, mean ± s.d. over the n seeds and the
Student-t 95 % interval of the mean (`benchmarks.stats`), beside the published numbers (SMFP.md §8,
~1M steps); each pair of agents at the same steps is compared by the exact Mann-Whitney test
(with the Welch-t interval of the difference), and called resolved only when p < 0.05.
`--lost FILE` takes the per-seed finals of runs that have neither a run dir nor a record from an
older generated paper_table.json (runs lost with a machine before records existed), each only
where that table's command configured its agent as this one does (SAC at another --init_temperature
is left out).
`--smoke` runs the whole path in about a minute (tiny budget and nets,
2 seeds, one cheap task) into a temporary --out unless one is given.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shlex
import sys
import tempfile
import textwrap
import time

import numpy as np

from benchmarks import machine, stats
from benchmarks.wallclock_vs_sac import _mean_sd, mean_sd_curves, split_overrides
from mjx_smfp.logger import seed_indices

DEFAULT_OUT = os.path.join(os.path.dirname(__file__), "results", "paper")
FINAL_EVALS = 10  # the final return is the mean of each seed's last 10 evaluations
LEVEL = 0.95  # intervals and tests: Student-t 95 % intervals, tests at 5 %
PUBLISHED_STEPS = 1_000_000
# Published returns at ~1M env steps (Gym v4; SMFP.md §8): task -> {method: return}.
PUBLISHED = {
    "ant": {"SMFP": 7520, "DIME": 7100, "SAC Flow": 5850},
    "halfcheetah": {"SMFP": 15800, "DIME": 13500, "SAC Flow": 14900},
    "swimmer": {"SMFP": 137.2, "DIME": 118.8, "SAC Flow": 101.5},
    "humanoid": {"SAC (reference impl.)": 5000},
    "walker2d": {"SAC (reference impl.)": 4800},
    "hopper": {"SAC (reference impl.)": 3200},
}
# --smoke: the whole path (train, resume/skip, curves, table) at toy sizes.
# multimodal (a one-step bandit, no physics) keeps it compile-bound, not step-bound.
SMOKE = dict(tasks="multimodal", seeds=2, budget=600,
             overrides=dict(learning_starts=200, iterations_per_call=100, eval_interval=200, eval_episodes=4,
                            actor_hidden="32,32", critic_hidden="32,32"))


# ----------------------------------------------------------------------------------------
# Aggregation (pure numpy; tested on synthetic curves).
# ----------------------------------------------------------------------------------------

def read_curves(run_dir: str) -> list[list[tuple[int, float]]]:
    """Each seed's evaluations [(env_steps, return)] from `run_dir/metrics.jsonl`. A resumed run
    logs again the steps after its last checkpoint: the later record of a step wins."""
    path = os.path.join(run_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return []
    by_step: dict[int, list[float]] = {}
    with open(path) as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:  # a torn last line from a killed run
                continue
            keys = ([f"eval/return_mean/seed_{k}" for k in seed_indices(rec, "eval/return_mean")]
                    or (["eval/return_mean"] if "eval/return_mean" in rec else []))
            if keys:
                by_step[int(rec["step"])] = [np.nan if rec[k] is None else float(rec[k]) for k in keys]
    steps = sorted(by_step)
    num_seeds = max((len(v) for v in by_step.values()), default=0)
    return [[(s, by_step[s][k]) for s in steps if k < len(by_step[s])] for k in range(num_seeds)]


def final_return(curve: list[tuple[int, float]]) -> float:
    """One seed's final return: the mean of its last FINAL_EVALS evaluations."""
    return float(np.nanmean([r for _, r in curve[-FINAL_EVALS:]]))


def summarise_run(curves: list[list[tuple[int, float]]], level: float = LEVEL) -> dict:
    """Final and best-so-far return per seed, then mean, s.d. and Student-t interval of the mean
    over seeds (`benchmarks.stats.mean_interval`); `env_steps` = the fewest any seed reached;
    `final_window` = the env steps the final return averages (the first and last of the seeds'
    last FINAL_EVALS evaluations)."""
    curves = [c for c in curves if c]
    window = ([min(c[-FINAL_EVALS:][0][0] for c in curves), max(c[-1][0] for c in curves)] if curves else [0, 0])
    return summarise_finals([final_return(c) for c in curves], [float(np.nanmax([r for _, r in c])) for c in curves],
                            env_steps=min((c[-1][0] for c in curves), default=0),
                            evaluations=min((len(c) for c in curves), default=0), window=window, level=level)


def summarise_finals(finals: list[float], bests: list[float], env_steps: int, evaluations: int, window: list[int],
                     level: float = LEVEL) -> dict:
    """The row of `summarise_run` from per-seed final and best returns (all a run lost with its
    curves still has, in an older generated table)."""
    row = {"seeds": len(finals), "env_steps": env_steps, "evaluations": evaluations, "final_window": window,
           "interval": f"Student-t {100 * level:g} %"}
    for name, vals in (("final", finals), ("best", bests)):
        row[name + "_mean"], row[name + "_sd"], _ = _mean_sd(vals)
        row[name + "_ci_lo"], row[name + "_ci_hi"] = stats.mean_interval(vals, level)
        row[name + "_per_seed"] = [float(v) for v in vals]
    return row


def lost_rows(path: str | None, overrides: dict[str, dict]) -> dict:
    """(task, agent) -> row of an older generated `paper_table.json` (`--lost`): the per-seed finals
    of runs whose run dirs were lost before records existed. A row stands in only when the older
    table's command gave its agent the configuration this command's options (`overrides`, per
    agent) give it; otherwise (say SAC under another --init_temperature) it is left out, with a note."""
    if not path:
        return {}
    with open(path) as f:
        old = json.load(f)
    command = old.get("meta", {}).get("command")
    then = (split_overrides(parse(shlex.split(command)[3:])[1], sorted({r["agent"] for r in old["rows"]}))
            if command else None)  # per agent, as that command split its options
    kept = {}
    for r in old["rows"]:
        if not r.get("final_per_seed"):
            continue
        if then is not None and r["agent"] in overrides:
            changed = option_changes(r["task"], r["agent"], then[r["agent"]], overrides[r["agent"]])
            if changed:
                print(f"[paper] --lost: {r['task']}/{r['agent']} of {path} not used, its command configured it "
                      f"otherwise ({'; '.join(changed)})", flush=True)
                continue
        kept[(r["task"], r["agent"])] = r
    return kept


def option_changes(task: str, agent: str, then: dict, now: dict) -> list[str]:
    """`config_changes` between the paper-protocol configurations two sets of options give one agent."""
    from mjx_smfp import config as config_lib

    def configured(pairs: dict) -> dict:
        return json.loads(json.dumps(config_lib.to_dict(*config_lib.build({"env": task, "agent": agent,
                                                                             "preset": "paper", **pairs}))))

    return config_changes(configured(then), configured(now))


def _window(row: dict) -> str:
    lo, hi = row.get("final_window") or (row["env_steps"], row["env_steps"])
    return f"{_steps(lo)}-{_steps(hi)}" if lo != hi else _steps(hi)


def _steps(n: float) -> str:
    return f"{n / 1e6:g}M" if n >= 1e6 else f"{n / 1e3:g}K" if n >= 1e3 else f"{n:g}"


def _ms(row: dict, name: str) -> str:
    if not np.isfinite(row.get(name + "_mean", np.nan)):
        return "—"
    where = f"over {_window(row)}" if name == "final" else f"by {_steps(row['env_steps'])}"
    ci = (f" [{row[name + '_ci_lo']:,.1f}, {row[name + '_ci_hi']:,.1f}]" if np.isfinite(row[name + "_ci_lo"])
          else " [n < 2: no interval]")
    return f"{row[name + '_mean']:,.1f} ± {row[name + '_sd']:,.1f}{ci} {where}"


def comparison_notes(task: str, rows: list[dict], level: float = LEVEL) -> list[str]:
    """Plain statements: for each pair of agents at the same env steps, the difference of their
    final returns with its Welch-t interval and the exact Mann-Whitney test, which alone decides
    "resolved" (`benchmarks.stats.compare`); and where each published number falls relative to
    each of our intervals (at our and their budgets)."""
    ours = [r for r in rows if r["task"] == task and np.isfinite(r.get("final_mean", np.nan))]
    notes = []
    for i, a in enumerate(ours):
        for b in ours[i + 1:]:
            if a["env_steps"] != b["env_steps"]:  # finals at different budgets say nothing about the agents
                notes.append(f"{a['agent']} vs {b['agent']}: not compared yet — {a['agent']} is at "
                             f"{_steps(a['env_steps'])} steps, {b['agent']} at {_steps(b['env_steps'])}.")
                continue
            c = stats.compare(a["final_per_seed"], b["final_per_seed"], level=level)
            notes.append(f"{a['agent']} vs {b['agent']}, final return over {_window(a)}: difference "
                         f"{c['diff_mean']:+,.1f} [{c['diff_ci_lo']:+,.1f}, {c['diff_ci_hi']:+,.1f}] (Welch t "
                         f"{100 * level:g} %, p = {stats.format_p(c['welch_p'])}); "
                         f"{stats.describe(c, (a['agent'], b['agent']))}.")
    for method, value in PUBLISHED.get(task, {}).items():
        for r in ours:
            if not np.isfinite(r["final_ci_lo"]):
                continue
            where = ("inside" if r["final_ci_lo"] <= value <= r["final_ci_hi"] else
                     "above" if value > r["final_ci_hi"] else "below")
            budget = ("the same budget" if r["env_steps"] >= PUBLISHED_STEPS
                      else f"{_steps(PUBLISHED_STEPS)} vs our {_steps(r['env_steps'])} steps: not comparable yet")
            notes.append(f"published {method} {value:,g} is {where} the interval of our {r['agent']} ({budget}).")
    return notes


def markdown(rows: list[dict], tasks: list[str], meta: dict) -> str:
    level = meta.get("level", LEVEL)
    lines = [f"Protocol `paper` (1 env per seed, UTD 1, batch 256, 5K random warm-up, 10 deterministic "
             f"evaluation episodes every 5K steps), budget {_steps(meta['budget'])} env steps per seed, "
             f"{meta['seeds']} seeds per run; reported on {meta['machine']}, {meta['date']}. Cells: mean ± s.d. over "
             f"the n seeds [Student-t {100 * level:g} % interval of the mean]. Final = mean of each seed's last "
             f"{FINAL_EVALS} evaluations, over the env steps shown; best = best evaluation by the steps shown. "
             f"Agents are compared on the final return by the exact two-sided Mann-Whitney test: \"resolved\" "
             f"only when p < {1 - level:.2g} (at 4 vs 4 seeds p cannot go below 0.029, at 3 vs 3 below 0.1). "
             f"Published: Gym v4, ~1M steps.", ""]
    for task in tasks:
        lines += [f"### {task}", "", "| agent | status | n (seeds) | final return | best-so-far return |",
                  "|---|---|---|---|---|"]
        for r in (r for r in rows if r["task"] == task):
            lines.append(f"| {r['agent']} | {r['status']} | {r['seeds']} | {_ms(r, 'final')} | {_ms(r, 'best')} |")
        for method, value in PUBLISHED.get(task, {}).items():
            lines.append(f"| {method} (published) | — | — | {value:,g} @ {_steps(PUBLISHED_STEPS)} | — |")
        lines += [""] + [f"- {r['agent']} trained on: {'; then '.join(r['trained_on'])}." for r in rows
                         if r["task"] == task and r["trained_on"]]
        lines += [f"- {r['agent']}: {r['source']}." for r in rows if r["task"] == task and r.get("source")]
        lines += [f"- {n}" for n in comparison_notes(task, rows, level)] + [""]
    return "\n".join(lines)


def plot_task(task: str, curves_by_agent: dict, path: str, title: str) -> None:
    """Eval return vs env steps, mean ± s.d. over seeds (where every seed has data), per agent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [{"agent": agent, "points": [{"env_steps": s, "return": r} for s, r in c]}
            for agent, curves in curves_by_agent.items() for c in curves if c]
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    if runs:
        grid = np.linspace(0, max(p["env_steps"] for r in runs for p in r["points"]), 300)
        for agent in dict.fromkeys(r["agent"] for r in runs):
            mean, sd, _ = mean_sd_curves(runs, agent, "env_steps", grid, step=False, all_seeds=True)
            n = sum(1 for r in runs if r["agent"] == agent)
            (line,) = ax.plot(grid, mean, label=f"{agent} ({n} seeds)")
            ax.fill_between(grid, mean - sd, mean + sd, color=line.get_color(), alpha=0.2)
    ax.set_xlabel("env steps per seed")
    ax.set_ylabel("deterministic eval return")
    ax.set_title(textwrap.fill(title, 90), fontsize=8)  # long machine lines wrap, not clip
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ----------------------------------------------------------------------------------------
# Runs.
# ----------------------------------------------------------------------------------------

def run_dir_of(out: str, task: str, agent: str) -> str:
    return os.path.join(out, "runs", task, agent)


def read_status(run_dir: str) -> dict:
    path = os.path.join(run_dir, "status.json")
    if not os.path.exists(path):
        return {"status": "not started"}
    with open(path) as f:
        return json.load(f)


def write_status(run_dir: str, **status) -> None:
    with open(os.path.join(run_dir, "status.json"), "w") as f:
        json.dump(status, f, indent=2)


def read_machines(run_dir: str) -> list[str]:
    """The machines that trained a run, in order (`machines.json`; [] for a run older than it)."""
    path = os.path.join(run_dir, "machines.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return json.load(f)


def note_machine(run_dir: str) -> None:
    """Add this machine to the run's `machines.json` (the machines that trained it, in order), so
    that a run finished across machines, or an A/B whose sides ran on different CPUs, says so."""
    machines, here = read_machines(run_dir), machine.summary()
    if machines[-1:] != [here]:
        with open(os.path.join(run_dir, "machines.json"), "w") as f:
            json.dump(machines + [here], f, indent=2)


def saved_config(out: str, task: str, agent: str) -> dict | None:
    """The configuration a run was started with: its run dir's config.json, or the copy in its
    record (a fresh clone has no run dirs); None when neither holds one."""
    path = os.path.join(run_dir_of(out, task, agent), "config.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    if os.path.exists(record_path(out, task, agent)):
        with open(record_path(out, task, agent)) as f:
            return json.load(f).get("config")
    return None


def config_changes(before: dict, now: dict) -> list[str]:
    """'part.field: before -> now' for each train/agent field that differs, nested configs field by
    field; fields absent from `before` (added to the code since that run started) and the run's
    location do not count."""
    now = json.loads(json.dumps(now))  # tuples as JSON lists, as saved

    def changes(then: dict, current: dict, prefix: str):
        for k, v in current.items():
            if k not in then or k in ("run_dir", "log_dir"):
                continue
            if isinstance(v, dict) and isinstance(then[k], dict):
                yield from changes(then[k], v, f"{prefix}{k}.")
            elif then[k] != v:
                yield f"{prefix}{k}: {then[k]!r} -> {v!r}"

    return [change for part in ("train", "agent") for change in changes(before[part], now[part], f"{part}.")]


def build_config(task: str, agent: str, seeds: int, budget: int, overrides: dict, out: str):
    """(TrainConfig, agent Config) of one multi-seed paper-protocol run under `out`; ValueError when
    `out` already holds a run of this (task, agent) with a different configuration, finished or not
    (it could not resume, and skipping it would report it as this command's result)."""
    from mjx_smfp import config as config_lib

    run_dir = run_dir_of(out, task, agent)
    cfg, agent_cfg = config_lib.build({
        "env": task, "agent": agent, "preset": "paper", "num_seeds": seeds, "seed": 0, "total_env_steps": budget,
        "replay_capacity": min(1_000_000, budget), "keep_checkpoints": 2,
        "checkpoint_interval": min(100_000, max(5_000, budget // 10)), "run_dir": run_dir, **overrides})
    before = saved_config(out, task, agent)
    if before is not None:
        changed = config_changes(before, config_lib.to_dict(cfg, agent_cfg))
        if changed:
            raise ValueError(f"{out} holds a {task}/{agent} run of another configuration ({'; '.join(changed)}); "
                             "use the same options or another --out")
    return cfg, agent_cfg


def progress_line(runs: list[tuple[str, str]], out: str, budget: int, seeds: int, t0: float, steps0: int) -> str:
    """Overall progress over every (task, agent) run, with an ETA from this invocation's rate."""
    done = [min(budget, last_step(out, t, a)) for t, a in runs]
    total, now = budget * len(runs), sum(done)
    rate = (now - steps0) / max(time.time() - t0, 1e-9)
    from mjx_smfp.runner import format_eta

    eta = format_eta((total - now) / rate if rate > 0 else float("inf"))
    return (f"[paper] overall {now:,}/{total:,} env steps per seed ({100 * now / total:.0f} %, x{seeds} seeds), "
            f"{sum(d >= budget for d in done)}/{len(runs)} runs finished, ETA {eta}")


def last_step(out: str, task: str, agent: str) -> int:
    """The last env step a run logged (0 if none)."""
    status, curves = load_run(out, task, agent)
    return int(status["env_steps"]) if status["status"] == "done" else _reached(curves)


def record_path(out: str, task: str, agent: str) -> str:
    return os.path.join(out, "records", f"{task}_{agent}.json")


def _reached(curves: list) -> int:
    return max((c[-1][0] for c in curves if c), default=0)


def load_run(out: str, task: str, agent: str) -> tuple[dict, list[list[tuple[int, float]]]]:
    """A run's status and per-seed curves: from its run dir, or from its record when the record
    is finished and the run dir is not, or has reached further (a fresh clone has no run dirs)."""
    d = run_dir_of(out, task, agent)
    status, curves = read_status(d), read_curves(d)
    if status["status"] == "not started" and curves:
        status = {"status": "in progress"}  # or stopped; re-run the command to continue it
    status["machines"] = read_machines(d)
    path = record_path(out, task, agent)
    if os.path.exists(path):
        with open(path) as f:
            rec = json.load(f)
        finished = ("done", "failed")
        if (rec["status"] in finished and status["status"] not in finished) or _reached(rec["curves"]) > _reached(curves):
            status = {**{k: rec[k] for k in ("status", "env_steps", "note") if k in rec},
                      "machines": rec.get("machines", []), "record": path}
            curves = [[(int(s), float(r)) for s, r in c] for c in rec["curves"]]
    return status, curves


def write_record(out: str, task: str, agent: str, status: dict, curves: list, config: dict | None = None) -> None:
    """Keep a run's status (with the machines that trained it), per-seed curves and configuration
    in one small committable file."""
    os.makedirs(os.path.dirname(record_path(out, task, agent)), exist_ok=True)
    with open(record_path(out, task, agent), "w") as f:
        json.dump({**status, "curves": curves, **({"config": config} if config else {})}, f)


def train(task: str, agent: str, args, overrides: dict, stop) -> str:
    """Train (or continue) one (task, agent) multi-seed run; returns its status."""
    from mjx_smfp.engine import Engine
    from mjx_smfp.runner import NonFiniteError, count, run

    d = run_dir_of(args.out, task, agent)
    status, _ = load_run(args.out, task, agent)
    cfg, agent_cfg = build_config(task, agent, args.seeds, args.budget, overrides, args.out)
    if status["status"] in ("done", "failed"):
        print(f"[paper] {task}/{agent}: {status['status']} already ({status.get('note', '')}; "
              f"{status.get('record', d)}); skipped", flush=True)
        return "skipped"
    os.makedirs(d, exist_ok=True)
    note_machine(d)
    engine = Engine(cfg, agent_cfg)
    print(f"[paper] {task}/{agent}: {args.seeds} seeds x {engine.final_env_steps:,} env steps in one process -> {d}",
          flush=True)
    try:
        ts = run(engine, d, resume=True, stop=stop)
    except NonFiniteError as err:
        write_status(d, status="failed", note=str(err), env_steps=last_step(args.out, task, agent))
        print(f"[paper] {task}/{agent}: FAILED: {err}", flush=True)
        return "failed"
    steps = count(ts.env_steps)
    if steps >= engine.final_env_steps:
        write_status(d, status="done", env_steps=steps, note=f"{steps:,} env steps per seed")
        return "done"
    return "stopped"


def report(args, tasks: list[str], agent_names: list[str], overrides: dict[str, dict]) -> list[dict]:
    """Rewrite the records, the per-task PNGs and the paper table from the runs under --out."""
    mach = machine.summary()
    date = time.strftime("%Y-%m-%d %H:%M")
    rows, curves, lost = [], {}, lost_rows(args.lost, overrides)
    for task in tasks:
        curves[task] = {}
        for agent in agent_names:
            status, curves[task][agent] = load_run(args.out, task, agent)
            if curves[task][agent]:
                write_record(args.out, task, agent, {k: v for k, v in status.items() if k != "record"},
                             curves[task][agent], saved_config(args.out, task, agent))
            row = {"task": task, "agent": agent, "status": status["status"], "budget": args.budget,
                   "trained_on": status.get("machines", []), **summarise_run(curves[task][agent], args.level)}
            old = lost[(task, agent)] if not curves[task][agent] and (task, agent) in lost else None
            if old:  # a run lost before records existed: its per-seed finals from the older table
                every = old["env_steps"] / max(old["evaluations"], 1)
                window = [int(old["env_steps"] - (min(FINAL_EVALS, old["evaluations"]) - 1) * every), old["env_steps"]]
                row.update(status=old["status"], **summarise_finals(old["final_per_seed"], old["best_per_seed"],
                                                                    old["env_steps"], old["evaluations"], window,
                                                                    args.level),
                           source=f"per-seed finals from `{args.lost}` (its run dir was lost before records "
                                  "existed: no curve, not skipped by a re-run)")
            rows.append(row)
        if any(curves[task].values()):  # a task whose every run was lost keeps no (empty) figure
            plot_task(task, curves[task], os.path.join(args.out, f"{task}.png"),
                      f"{task}, protocol paper, {args.seeds} seeds, budget {_steps(args.budget)} — {mach} — {date}")
    meta = {"machine": mach, "date": date, "budget": args.budget, "seeds": args.seeds, "tasks": tasks,
            "agents": agent_names, "level": args.level, "interval": f"Student-t {100 * args.level:g} %",
            "test": "Mann-Whitney, exact, two-sided", "final": f"mean of each seed's last {FINAL_EVALS} evaluations",
            "published": PUBLISHED, "published_steps": PUBLISHED_STEPS,
            "command": "python -m benchmarks.paper_table " + " ".join(args.argv)}
    table = markdown(rows, tasks, meta)
    with open(os.path.join(args.out, "paper_table.md"), "w") as f:
        f.write(f"# Paper table\n\n`{meta['command']}`\n\n{table}\n")
    flat = [{**{k: v for k, v in r.items() if not k.endswith("_per_seed") and k != "source"},
             "final_window": _window(r), "trained_on": "; then ".join(r["trained_on"])} for r in rows]
    with open(os.path.join(args.out, "paper_table.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(flat[0]))
        w.writeheader()
        w.writerows(flat)
    with open(os.path.join(args.out, "paper_table.json"), "w") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=2)
    print(table, flush=True)
    return rows


def parse(argv: list[str]):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="halfcheetah")
    parser.add_argument("--agents", default="smfp,sac")
    parser.add_argument("--budget", type=int, default=1_000_000, help="env steps per seed")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", default=None, help=f"results folder (default {DEFAULT_OUT}; --smoke: a temporary one)")
    parser.add_argument("--report", action="store_true", help="only rewrite the PNGs and tables (no training)")
    parser.add_argument("--smoke", action="store_true", help="the whole path at toy sizes in about a minute")
    parser.add_argument("--lost", default=None,
                        help="an older generated paper_table.json whose per-seed finals stand in for runs that have "
                             "neither a run dir nor a record (lost before records existed)")
    parser.add_argument("--level", type=float, default=LEVEL, help="interval level; tests are at 1 - level")
    args, rest = parser.parse_known_args(argv)
    args.argv = list(argv)
    overrides = {}
    if args.smoke:
        args.tasks, args.seeds, args.budget = SMOKE["tasks"], SMOKE["seeds"], SMOKE["budget"]
        overrides.update(SMOKE["overrides"])
        args.out = args.out or tempfile.mkdtemp(prefix="paper_smoke_")
    args.out = args.out or DEFAULT_OUT
    from mjx_smfp import cli

    overrides.update(cli.parse_cli_pairs(rest))
    return args, overrides


def main(argv: list[str] | None = None) -> list[dict]:
    args, overrides = parse(sys.argv[1:] if argv is None else argv)
    from mjx_smfp import compile_cache

    compile_cache.configure()  # $JAX_COMPILATION_CACHE_DIR, if set: resumed invocations compile faster
    import envs
    from mjx_smfp import agents
    from mjx_smfp.runner import StopFlag

    tasks = [t for t in args.tasks.split(",") if t]
    agent_names = [a for a in args.agents.split(",") if a]
    for name, given, known in (("task", tasks, envs.names()), ("agent", agent_names, agents.names())):
        unknown = [x for x in given if x not in known]
        if unknown:
            raise SystemExit(f"error: unknown {name}(s) {unknown}; known: {', '.join(known)}")
    per_agent = split_overrides(overrides, agent_names)
    os.makedirs(args.out, exist_ok=True)
    if not args.report:
        runs = [(t, a) for t in tasks for a in agent_names]
        print(f"[paper] {len(runs)} runs ({', '.join(f'{t}/{a}' for t, a in runs)}), {args.seeds} seeds each, "
              f"{args.budget:,} env steps per seed -> {args.out}; {machine.summary()}", flush=True)
        t0, steps0 = time.time(), sum(min(args.budget, last_step(args.out, t, a)) for t, a in runs)
        stop = StopFlag()
        for i, (task, agent) in enumerate(runs):
            print(progress_line(runs, args.out, args.budget, args.seeds, t0, steps0) + f" | next {i + 1}/{len(runs)} "
                  f"{task}/{agent}", flush=True)
            status = train(task, agent, args, per_agent[agent], stop)
            if status != "skipped":
                report(args, tasks, agent_names, per_agent)
            if stop.requested:
                print("[paper] stopped; re-run the same command to continue", flush=True)
                break
        print(progress_line(runs, args.out, args.budget, args.seeds, t0, steps0), flush=True)
    rows = report(args, tasks, agent_names, per_agent)
    print(f"[paper] wrote {args.out}/paper_table.{{md,csv,json}} and one PNG per task", flush=True)
    return rows


if __name__ == "__main__":
    main()
