"""Learning curves from run directories: `python -m launch.plot RUN_DIR [RUN_DIR ...]
[--x steps|time] [--metric eval/return_mean] [--out curves.png]`.

Reads each run's metrics.jsonl (mjx_smfp/logger.py) and config.json. A RUN_DIR without
metrics.jsonl stands for every run below it (e.g. `runs/humanoid`). Runs whose configs are
equal except for seed and location are one curve: mean ± s.d. over runs, each run linearly
interpolated onto the x values that all of them cover; each seed of a multi-seed run
(`--num_seeds`, logged as `METRIC/seed_k`) counts as one run. One panel per task, one PNG. If no
run of a curve logged the metric, `train/episode_return` is plotted instead (and said so).
`--x time` is the logger's `wall_time` (seconds since the process started logging; a
resumed run continues from where the previous process stopped).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np

from mjx_smfp.logger import seed_indices

FALLBACK_METRIC = "train/episode_return"
NOT_CONFIG = ("seed", "num_seeds", "run_dir", "log_dir")  # fields that differ between repeats of one config


def find_runs(path: str) -> list[str]:
    """`path` itself if it holds metrics.jsonl, else every directory below it that does;
    FileNotFoundError naming `path` if there is none."""
    if os.path.isfile(os.path.join(path, "metrics.jsonl")):
        return [path]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: no such directory")
    runs = sorted(root for root, _, files in os.walk(path) if "metrics.jsonl" in files)
    if not runs:
        raise FileNotFoundError(f"{path}: no metrics.jsonl there or below (not a run directory)")
    return runs


def read_records(run_dir: str) -> list[dict]:
    """The JSON lines of `run_dir/metrics.jsonl` (a torn last line, from a killed run, is dropped)."""
    records = []
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def read_config(run_dir: str) -> dict:
    """config.json flattened to {"train.env": ..., "agent.actor_lr": ...}; {} if absent."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        data = json.load(f)
    return {f"{section}.{k}": v for section, fields in data.items() for k, v in fields.items()}


def series(records: list[dict], metric: str, x: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of the finite values of `metric`; x is `step`, or `wall_time` made cumulative
    over resumes (each new process restarts the logger's clock at 0)."""
    xs, ys, offset, last_time = [], [], 0.0, 0.0
    for record in records:
        if x == "time":
            if record["wall_time"] + offset < last_time:  # a resumed process: continue its clock
                offset = last_time
            last_time = record["wall_time"] + offset
        value = record.get(metric)
        if value is not None and math.isfinite(value):
            xs.append(last_time if x == "time" else record["step"])
            ys.append(value)
    return np.asarray(xs, float), np.asarray(ys, float)


def run_curves(records: list[dict], metric: str, x: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """One (x, y) curve per seed of a multi-seed run (its `metric/seed_k`), else the run's `metric`."""
    seeds = sorted({k for r in records for k in seed_indices(r, metric)})
    return [series(records, f"{metric}/seed_{k}", x) for k in seeds] or [series(records, metric, x)]


def aggregate(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(grid, mean, s.d.) of several (x, y) curves: the grid is every x of any curve inside the
    range all curves cover, each curve linearly interpolated there; s.d. over curves (ddof 0,
    zero for one curve). ValueError if the curves share no x range."""
    lo = max(xs[0] for xs, _ in curves)
    hi = min(xs[-1] for xs, _ in curves)
    if lo > hi:
        raise ValueError(f"the runs share no x range (starts up to {lo:g}, ends from {hi:g})")
    grid = np.unique(np.concatenate([xs[(xs >= lo) & (xs <= hi)] for xs, _ in curves]))
    values = np.stack([np.interp(grid, xs, ys) for xs, ys in curves])
    return grid, values.mean(axis=0), values.std(axis=0)


def group_runs(run_dirs: list[str]) -> dict[tuple, list[str]]:
    """Runs keyed by their config without the NOT_CONFIG fields, in first-seen order."""
    groups: dict[tuple, list[str]] = {}
    for run_dir in run_dirs:
        config = read_config(run_dir)
        key = tuple(sorted((k, json.dumps(v)) for k, v in config.items() if k.split(".")[-1] not in NOT_CONFIG))
        groups.setdefault(key, []).append(run_dir)
    return groups


def label_of(key: tuple, keys: list[tuple]) -> str:
    """'agent' plus the config fields in which this curve differs from the others."""
    config = dict(key)
    differing = sorted(k for k in config if any(dict(other).get(k) != config[k] for other in keys))
    extra = [f"{k.split('.', 1)[1]}={json.loads(config[k])}" for k in differing if k not in ("train.agent", "train.env")]
    agent = json.loads(config.get("train.agent", '"?"'))
    return " ".join([agent, *extra])


def plot(run_dirs: list[str], x: str = "steps", metric: str = "eval/return_mean", out: str = "curves.png") -> str:
    """Draw the curves of `run_dirs` (see the module docstring) into the PNG `out`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = group_runs(run_dirs)
    keys = list(groups)
    tasks = list(dict.fromkeys(json.loads(dict(key).get("train.env", '"?"')) for key in keys))
    fig, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4.5), squeeze=False)
    shown_by_task: dict[str, set] = {task: set() for task in tasks}
    for key, runs in groups.items():
        records = [read_records(run) for run in runs]
        shown = metric
        curves = [c for r in records for c in run_curves(r, shown, x)]
        if all(len(xs) == 0 for xs, _ in curves):
            shown = FALLBACK_METRIC
            curves = [c for r in records for c in run_curves(r, shown, x)]
            print(f"note: {runs[0]}{' (and similar)' if len(runs) > 1 else ''} logged no {metric}; "
                  f"plotting {shown}")
        curves = [c for c in curves if len(c[0])]
        if not curves:
            raise ValueError(f"{runs[0]}: neither {metric} nor {FALLBACK_METRIC} was logged yet")
        grid, mean, std = aggregate(curves)
        if x == "time":
            grid = grid / 60.0
        task = json.loads(dict(key).get("train.env", '"?"'))
        shown_by_task[task].add(shown)
        ax = axes[0, tasks.index(task)]
        label = f"{label_of(key, keys)} ({len(curves)} run{'s' if len(curves) > 1 else ''})"
        if shown != metric:
            label += f" [{shown}]"
        (line,) = ax.plot(grid, mean, label=label)
        ax.fill_between(grid, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    for task, ax in zip(tasks, axes[0]):
        ax.set_title(task)
        ax.set_xlabel("env steps" if x == "steps" else "wall-clock (minutes)")
        ax.set_ylabel(" / ".join(sorted(shown_by_task[task])))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    parser.add_argument("--x", choices=("steps", "time"), default="steps", help="x axis: env steps or wall-clock")
    parser.add_argument("--metric", default="eval/return_mean", help="a name logged in metrics.jsonl")
    parser.add_argument("--out", default="curves.png", help="the PNG to write")
    args = parser.parse_args(argv)
    try:
        run_dirs = [run for path in args.run_dirs for run in find_runs(path)]
        out = plot(run_dirs, args.x, args.metric, args.out)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2)
    print(f"wrote {out} ({len(run_dirs)} run{'s' if len(run_dirs) > 1 else ''})")
    return out


if __name__ == "__main__":
    main()
