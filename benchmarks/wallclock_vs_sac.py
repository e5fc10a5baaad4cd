"""SMFP vs Gaussian SAC at equal wall-clock: return vs wall-clock and vs env steps.

    python -m benchmarks.wallclock_vs_sac --env multimodal --seeds 0,1,2 --budget-minutes 1.5
        [--preset cpu] [--threshold 0.8] [--eval-every-s S] [--write-results-md] [--field value ...]

For every seed, trains SMFP and SAC one after the other (order alternates per seed, so slow
phases of a shared machine hit both agents equally) with the SAME resolved preset, recipe
(mjx_smfp/recipes.py; refused if SAC's and SMFP's configs differ beyond their policy classes),
overrides and wall-clock budget per run. Each run drives `engine.Engine` directly (init_state, warmup,
train_chunk, evaluate), so the budget is checked between host calls: a chunk is not started
when the last chunk's duration would take the run past the budget.

The clock of a run starts before the Engine is built and therefore COUNTS compilation
(init, warm-up and the first train chunk, compiled cold: the persistent compilation cache
is switched off unless `--compile-cache`), warm-up and training. It EXCLUDES evaluation
(including the evaluator's own compilation), so evaluation frequency cannot bias the
comparison. Evaluation is deterministic (`agent.eval_act`), `eval_episodes` episodes,
every `--eval-every-s` seconds of run clock (default budget/20), after warm-up and at the end.

`--field value` pairs are TrainConfig or agent Config fields: loop fields and fields both
agents have go to both; a field only one agent has (e.g. `--md_coef`, `--eval_best_of_n`)
goes to that agent only (and is listed in the output). `--env_kwargs '{"num_modes": 4}'`
passes task options.

Writes benchmarks/results/wallclock_<env>.{png,csv (all eval points),_table.csv,_table.json}
and prints a markdown table: time-to-threshold (first eval >= threshold, wall-clock and env
steps; mean ± s.d. over the seeds that reached it), final and best return per agent.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import time

import numpy as np

from benchmarks import machine

RESULTS_DIR = os.path.join(os.path.dirname(__file__), "results")
AGENTS = ("smfp", "sac")  # the default --agents
LABELS = {"smfp": "SMFP", "sac": "Gaussian SAC", "sacflow": "SAC Flow", "dime": "DIME"}
COLOURS = {"smfp": "tab:blue", "sac": "tab:orange", "sacflow": "tab:green", "dime": "tab:red"}
DEFAULT_THRESHOLDS = {"multimodal": 0.8}  # of the bandit's optimum 1.0
SECTION = "## SMFP vs Gaussian SAC (wall-clock)"


# ----------------------------------------------------------------------------------------
# Aggregation (pure numpy; tested on synthetic curves).
# ----------------------------------------------------------------------------------------

def _mean_sd(values) -> tuple[float, float, int]:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], float)
    if v.size == 0:
        return float("nan"), float("nan"), 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size)


def time_to_threshold(points: list[dict], threshold: float) -> tuple[float, float]:
    """(wall_s, env_steps) of the first eval with return >= threshold, or (nan, nan)."""
    for p in points:
        if p["return"] >= threshold:
            return float(p["wall_s"]), float(p["env_steps"])
    return float("nan"), float("nan")


def summarise(runs: list[dict], threshold: float) -> list[dict]:
    """One row per agent: time-to-threshold, final and best return, mean ± s.d. over seeds.

    `runs`: dicts with "agent", "seed", "points" (list of {wall_s, env_steps, return}) and
    optionally "compile_s", "env_steps", "updates"."""
    rows = []
    for agent in dict.fromkeys(r["agent"] for r in runs):
        mine = [r for r in runs if r["agent"] == agent and r["points"]]
        ttt = [time_to_threshold(r["points"], threshold) for r in mine]
        row = {"agent": agent, "seeds": len(mine), "threshold": threshold,
               "reached": sum(1 for t in ttt if np.isfinite(t[0]))}
        for key, vals in (("time_to_threshold_s", [t[0] for t in ttt]),
                          ("steps_to_threshold", [t[1] for t in ttt]),
                          ("final_return", [r["points"][-1]["return"] for r in mine]),
                          ("best_return", [max(p["return"] for p in r["points"]) for r in mine]),
                          ("final_env_steps", [r.get("env_steps", r["points"][-1]["env_steps"]) for r in mine]),
                          ("updates", [r.get("updates", float("nan")) for r in mine]),
                          ("compile_s", [r.get("compile_s", float("nan")) for r in mine]),
                          ("train_s", [r.get("train_s", float("nan")) for r in mine])):
            row[key + "_mean"], row[key + "_sd"], _ = _mean_sd(vals)
        rows.append(row)
    return rows


def curve_on_grid(points: list[dict], x_key: str, grid: np.ndarray, step: bool) -> np.ndarray:
    """One run's eval curve on `grid`: NaN outside [first eval, last eval]; in between either
    the last eval so far (`step`, for wall-clock) or linear interpolation (env steps)."""
    x = np.asarray([p[x_key] for p in points], float)
    y = np.asarray([p["return"] for p in points], float)
    out = np.full(grid.shape, np.nan)
    if x.size == 0:
        return out
    inside = (grid >= x[0]) & (grid <= x[-1])
    if step:
        idx = np.searchsorted(x, grid[inside], side="right") - 1
        out[inside] = y[idx]
    else:
        out[inside] = np.interp(grid[inside], x, y)
    return out


def mean_sd_curves(runs: list[dict], agent: str, x_key: str, grid: np.ndarray, step: bool,
                   all_seeds: bool = False):
    """(mean, s.d., count) over seeds on the grid, where at least one seed (or, with
    `all_seeds`, every seed) has a value."""
    ys = np.stack([curve_on_grid(r["points"], x_key, grid, step) for r in runs if r["agent"] == agent])
    count = np.sum(np.isfinite(ys), axis=0)
    need = ys.shape[0] if all_seeds else 1
    with np.errstate(invalid="ignore"):
        mean = np.where(count >= need, np.nansum(ys, axis=0) / np.maximum(count, 1), np.nan)
        var = np.where(count > 1, np.nansum((ys - mean) ** 2, axis=0) / np.maximum(count - 1, 1), 0.0)
    return mean, np.sqrt(var), count


def _fmt(mean: float, sd: float, digits: int = 2) -> str:
    if not np.isfinite(mean):
        return "—"
    return f"{mean:,.{digits}f} ± {sd:,.{digits}f}"


def markdown_table(rows: list[dict]) -> str:
    lines = ["| agent | reached threshold | time to threshold (s) | env steps to threshold | final return | "
             "best return | env steps in budget | updates | compile+1st chunk (s) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['agent']} | {r['reached']}/{r['seeds']} (≥ {r['threshold']:g}) | "
            f"{_fmt(r['time_to_threshold_s_mean'], r['time_to_threshold_s_sd'], 1)} | "
            f"{_fmt(r['steps_to_threshold_mean'], r['steps_to_threshold_sd'], 0)} | "
            f"{_fmt(r['final_return_mean'], r['final_return_sd'], 3)} | "
            f"{_fmt(r['best_return_mean'], r['best_return_sd'], 3)} | "
            f"{_fmt(r['final_env_steps_mean'], r['final_env_steps_sd'], 0)} | "
            f"{_fmt(r['updates_mean'], r['updates_sd'], 0)} | "
            f"{_fmt(r['compile_s_mean'], r['compile_s_sd'], 1)} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------
# Runs.
# ----------------------------------------------------------------------------------------

def split_overrides(pairs: dict, agent_names=AGENTS) -> dict[str, dict]:
    """Per-agent override dicts: loop fields and shared agent fields to every agent, the rest to
    the agents that have the field; ValueError for a field none has."""
    from mjx_smfp import agents
    from mjx_smfp import config as config_lib
    from mjx_smfp.config import TrainConfig

    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    agent_fields = {a: set(config_lib.flat_field_types(agents.get_class(a).Config)) for a in agent_names}
    per_agent = {a: {} for a in agent_names}
    for key, value in pairs.items():
        if key in ("agent",):
            raise ValueError("--agent is set by this benchmark (use --agents a,b,...)")
        owners = [a for a in agent_names if key in train_fields or key in agent_fields[a]]
        if not owners:
            raise ValueError(f"unknown option --{key} (neither a loop field nor a field of {', '.join(agent_names)})")
        for a in owners:
            per_agent[a][key] = value
    return per_agent


def run_one(cfg, agent_cfg, budget_s: float, eval_every_s: float, label: str, progress) -> dict:
    """Train one agent under a wall-clock budget; returns its eval points and timings."""
    import jax

    from mjx_smfp.engine import Engine

    eval_s = 0.0
    t0 = time.perf_counter()
    clock = lambda: time.perf_counter() - t0 - eval_s  # noqa: E731  (run clock, evaluation excluded)
    engine = Engine(cfg, agent_cfg)
    ts = engine.init_state(cfg.seed)
    ts, _ = engine.warmup(ts)
    jax.block_until_ready(ts.env_steps)
    eval_rng = jax.random.PRNGKey(cfg.seed + 1_000_003)
    points: list[dict] = []

    def evaluate():
        nonlocal eval_s
        t = time.perf_counter()
        wall = clock()
        returns, _ = engine.evaluate(ts, jax.random.fold_in(eval_rng, len(points)))
        steps, updates = int(ts.env_steps), int(ts.updates)
        points.append({"wall_s": wall, "env_steps": steps, "updates": updates,
                       "return": float(returns.mean()), "return_std": float(returns.std())})
        eval_s += time.perf_counter() - t

    evaluate()
    next_eval = eval_every_s
    last_dt, compile_s, chunks = None, float("nan"), 0
    last_print = time.perf_counter()
    while True:
        now = clock()
        if last_dt is not None and now + last_dt > budget_s:
            break
        if now >= budget_s:
            break
        t = time.perf_counter()
        ts, summary = engine.train_chunk(ts)
        summary = jax.device_get(summary)
        last_dt = time.perf_counter() - t
        chunks += 1
        if chunks == 1:
            compile_s = last_dt
        if not bool(summary["all_finite"]):
            progress(label, clock(), points, int(summary["env_steps"]), note="non-finite loss: run stopped")
            break
        if clock() >= next_eval:
            evaluate()
            next_eval = (math.floor(clock() / eval_every_s) + 1) * eval_every_s
        if time.perf_counter() - last_print >= 5.0:
            last_print = time.perf_counter()
            progress(label, clock(), points, int(summary["env_steps"]))
    if points[-1]["env_steps"] != int(ts.env_steps):
        evaluate()
    return {"agent": cfg.agent, "seed": cfg.seed, "points": points, "env_steps": int(ts.env_steps),
            "updates": int(ts.updates), "chunks": chunks, "compile_s": compile_s, "train_s": clock(),
            "eval_s": eval_s}


# ----------------------------------------------------------------------------------------
# Outputs.
# ----------------------------------------------------------------------------------------

def plot(runs: list[dict], path: str, title: str, threshold: float, budget_s: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    max_steps = max(p["env_steps"] for r in runs for p in r["points"])
    # Wall-clock: a run's final policy is what it has at the end of its budget, so its last
    # eval is carried to budget_s. Env steps: runs end at different step counts, so the mean
    # is drawn only where every seed has data (the dots show each eval).
    carried = [{**r, "points": r["points"] + [{**r["points"][-1], "wall_s": max(budget_s, r["points"][-1]["wall_s"])}]}
               for r in runs]
    for ax, x_key, grid, step, xlabel, data, every in (
            (axes[0], "wall_s", np.linspace(0, budget_s, 400), True,
             "wall-clock per run (s; compile included, eval excluded)", carried, False),
            (axes[1], "env_steps", np.linspace(0, max_steps, 400), False,
             "env steps (mean where all seeds have data)", runs, True)):
        for agent in dict.fromkeys(r["agent"] for r in runs):
            mean, sd, count = mean_sd_curves(data, agent, x_key, grid, step, all_seeds=every)
            n = sum(1 for r in runs if r["agent"] == agent)
            ax.plot(grid, mean, color=COLOURS.get(agent), label=f"{LABELS.get(agent, agent)} (mean ± s.d., {n} seeds)")
            ax.fill_between(grid, mean - sd, mean + sd, color=COLOURS.get(agent), alpha=0.2)
            for r in runs:
                if r["agent"] == agent:
                    ax.plot([p[x_key] for p in r["points"]], [p["return"] for p in r["points"]], ".",
                            color=COLOURS.get(agent), alpha=0.35, ms=3)
        ax.axhline(threshold, color="grey", ls="--", lw=0.8, label=f"threshold {threshold:g}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("deterministic eval return")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(runs: list[dict], rows: list[dict], meta: dict, stem: str) -> None:
    os.makedirs(os.path.dirname(stem), exist_ok=True)
    with open(stem + ".csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["agent", "seed", "wall_s", "env_steps", "updates", "return", "return_std"])
        for r in runs:
            for p in r["points"]:
                w.writerow([r["agent"], r["seed"], f"{p['wall_s']:.3f}", p["env_steps"], p["updates"],
                            f"{p['return']:.6g}", f"{p['return_std']:.6g}"])
    with open(stem + "_table.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    with open(stem + "_table.json", "w") as f:
        json.dump({"meta": meta, "table": rows,
                   "runs": [{k: v for k, v in r.items() if k != "points"} for r in runs]}, f, indent=2)


def write_results_md(body: str, path: str | None = None, heading: str = SECTION) -> None:
    """Replace (or append) the `heading` section of benchmarks/RESULTS.md (or `path`) with `body`."""
    path = path or os.path.join(os.path.dirname(__file__), "RESULTS.md")
    text = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    section = heading + "\n\n" + body.strip() + "\n"
    if heading in text:
        start = text.index(heading)
        nxt = text.find("\n## ", start + len(heading))
        text = text[:start] + section + (text[nxt:] if nxt >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(path, "w") as f:
        f.write(text)


def load_runs(stem: str) -> tuple[list[dict], dict]:
    """Runs (with their eval points) and meta back from `stem`.csv / `stem`_table.json."""
    with open(stem + "_table.json") as f:
        saved = json.load(f)
    runs = [dict(r, points=[]) for r in saved["runs"]]
    by_key = {(r["agent"], r["seed"]): r for r in runs}
    with open(stem + ".csv") as f:
        for row in csv.DictReader(f):
            by_key[(row["agent"], int(row["seed"]))]["points"].append(
                {"wall_s": float(row["wall_s"]), "env_steps": int(row["env_steps"]), "updates": int(row["updates"]),
                 "return": float(row["return"]), "return_std": float(row["return_std"])})
    return runs, saved["meta"]


def replot(stem: str, threshold=None):
    runs, meta = load_runs(stem)
    threshold = meta["threshold"] if threshold is None else threshold
    rows = summarise(runs, threshold)
    title = (f"{meta['env']} {meta['env_kwargs']}, preset {meta['preset']}, {meta['budget_s']:.0f} s/run, seeds "
             f"{','.join(map(str, meta['seeds']))} — {meta['machine']} — {meta['date']}")
    plot(runs, stem + ".png", title, threshold, meta["budget_s"])
    print(markdown_table(rows))
    print(f"[wallclock] redrew {stem}.png")
    return runs, rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--agents", default=",".join(AGENTS), help="registered agents to compare, e.g. smfp,sac,sacflow,dime")
    parser.add_argument("--budget-minutes", type=float, required=True, help="wall-clock budget per run")
    parser.add_argument("--preset", default="auto")
    parser.add_argument("--threshold", type=float, default=None,
                        help="return for time-to-threshold (default: 0.8 on multimodal, else 80%% of the best eval)")
    parser.add_argument("--eval-every-s", type=float, default=None, help="eval period in run-clock seconds (budget/20)")
    parser.add_argument("--compile-cache", action="store_true", help="keep JAX's persistent compilation cache on")
    parser.add_argument("--write-results-md", action="store_true", help="(re)write our section of RESULTS.md")
    parser.add_argument("--tag", default="", help="suffix for the output file names")
    parser.add_argument("--replot", action="store_true",
                        help="redraw the PNG and table from an earlier run's CSV/JSON (no training)")
    args, rest = parser.parse_known_args(argv)
    if args.replot:
        return replot(os.path.join(RESULTS_DIR, f"wallclock_{args.env}{args.tag}"), args.threshold)

    import jax

    if not args.compile_cache:
        jax.config.update("jax_enable_compilation_cache", False)
    from mjx_smfp import cli
    from mjx_smfp import config as config_lib
    from mjx_smfp.runner import format_eta

    pairs = cli.parse_cli_pairs(rest)
    names = tuple(a.strip() for a in args.agents.split(",") if a.strip())
    overrides = split_overrides(pairs, names)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    budget_s = 60.0 * args.budget_minutes
    eval_every_s = args.eval_every_s or budget_s / 20
    configs = {}
    for agent, over in overrides.items():
        configs[agent] = config_lib.build({**over, "env": args.env, "agent": agent, "preset": args.preset})
    cfg0 = configs[names[0]][0]
    if {"sac", "smfp"} <= set(configs):  # one recipe for the pair compared (issue 34); others keep their authors'
        differences = config_lib.recipe_differences(configs["sac"], configs["smfp"])
        if differences:
            raise ValueError(f"SAC and SMFP would differ beyond their policy classes: {'; '.join(differences)}")
    shared = set.intersection(*(set(o) for o in overrides.values()))
    only = {a: sorted(set(o) - shared) for a, o in overrides.items()}
    mach = machine.summary()
    print(f"[wallclock] {mach}")
    print(f"[wallclock] {args.env} {cfg0.env_kwargs} preset {cfg0.preset}, recipe "
          f"{', '.join(f'{a} {c.recipe}' for a, (c, _) in configs.items())}: {cfg0.num_envs} envs, batch "
          f"{cfg0.batch_size}, G={cfg0.updates_per_step}, {cfg0.iterations_per_call} iterations/call, "
          f"learning_starts {cfg0.learning_starts}, {cfg0.eval_episodes} eval episodes; budget "
          f"{budget_s:.0f} s/run (compile counted, eval excluded), eval every {eval_every_s:.1f} s; seeds {seeds}"
          + "".join(f"; {a}-only overrides: {', '.join(o)}" for a, o in only.items() if o), flush=True)

    # Agents interleaved, the order rotated per seed, so a slow phase of the machine hits all alike.
    order = [(s, names[(i + j) % len(names)]) for i, s in enumerate(seeds) for j in range(len(names))]
    runs: list[dict] = []
    t_all = time.time()

    def progress(label, now, points, steps, note=""):
        k = len(runs)
        remaining = (len(order) - k - 1) * budget_s + max(0.0, budget_s - now)
        spent = time.time() - t_all
        # Scale by the observed real-time/budget ratio (eval + set-up overheads) once a run is done.
        ratio = spent / (k * budget_s) if k else 1.0
        last = points[-1] if points else None
        print(f"[wallclock] run {k + 1}/{len(order)} {label} | {now:5.1f}/{budget_s:.0f} s | "
              f"{steps:,} env steps | last eval {last['return'] if last else float('nan'):.3f} "
              f"| ETA {format_eta(remaining * max(ratio, 1.0))} {note}", flush=True)

    for seed, agent in order:
        cfg, agent_cfg = configs[agent]
        cfg = dataclasses.replace(cfg, seed=seed)
        label = f"seed {seed} {agent}"
        r = run_one(cfg, agent_cfg, budget_s, eval_every_s, label, progress)
        runs.append(r)
        print(f"[wallclock] done {label}: {r['env_steps']:,} env steps, {r['updates']:,} updates, {r['chunks']} "
              f"chunks, compile+1st chunk {r['compile_s']:.1f} s, final eval {r['points'][-1]['return']:.3f}, "
              f"best {max(p['return'] for p in r['points']):.3f} (eval took {r['eval_s']:.1f} s, not counted)",
              flush=True)

    threshold = args.threshold
    if threshold is None:
        threshold = DEFAULT_THRESHOLDS.get(args.env)
    if threshold is None:
        best = max(p["return"] for r in runs for p in r["points"])
        threshold = 0.8 * best
        print(f"[wallclock] threshold: 80% of the best eval return seen = {threshold:.3g}")
    rows = summarise(runs, threshold)
    stem = os.path.join(RESULTS_DIR, f"wallclock_{args.env}{args.tag}")
    date = time.strftime("%Y-%m-%d %H:%M")
    meta = {"machine": mach, "date": date, "env": args.env, "env_kwargs": cfg0.env_kwargs, "preset": cfg0.preset,
            "seeds": seeds, "budget_s": budget_s, "eval_every_s": eval_every_s, "threshold": threshold,
            "overrides": pairs, "order": order, "compile_cache": bool(args.compile_cache),
            "configs": {a: config_lib.to_dict(*configs[a]) for a in names},
            "total_s": time.time() - t_all}
    try:
        meta["load_average"] = os.getloadavg()
    except OSError:
        pass
    write_outputs(runs, rows, meta, stem)
    title = (f"{args.env} {cfg0.env_kwargs}, preset {cfg0.preset}, {budget_s:.0f} s/run, seeds {args.seeds} — "
             f"{mach} — {date}")
    plot(runs, stem + ".png", title, threshold, budget_s)
    table = markdown_table(rows)
    print()
    print(table)
    print(f"\n[wallclock] wrote {stem}.png, {stem}.csv, {stem}_table.csv/.json "
          f"(total {(time.time() - t_all) / 60:.1f} min)")
    if args.write_results_md:
        cmd = "python -m benchmarks.wallclock_vs_sac " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
        write_results_md(f"`{cmd}` ({date}); machine: {mach}.\n\n{table}\n")
    return runs, rows


if __name__ == "__main__":
    main()
