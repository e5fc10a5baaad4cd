"""Learning curves from run directories and benchmark records: `python -m launch.plot RUN [RUN ...]
[--x steps|time] [--metric eval/return_mean] [--out curves.png]`.

A RUN is a run directory (its metrics.jsonl, mjx_smfp/logger.py, and config.json) or a benchmark
record (benchmarks/results/<study>/records/<run>.json, benchmarks/harness/store.py); a folder
holding neither stands for every run and record below it (`runs/humanoid`,
`benchmarks/results/parallel_regime`). Runs whose configs are equal except for seed and location
are one curve: mean ± s.d. (ddof 1) over runs, each run linearly interpolated onto the x values that
all of them cover; each seed of a multi-seed run (`--num_seeds`, logged as `METRIC/seed_k`; a
record's per-seed curves) counts as one run. One panel per task, one PNG. If no run of a curve
logged the metric, `train/episode_return` is plotted instead (and said so). A resumed run logs the
steps after its checkpoint again: the later record of a step wins. `--x time` is the run clock
(`perf/run_clock_s`: evaluation and saves left out, carried over a resume); for runs older than
it, the logger's `wall_time` (seconds since the process started logging), continued over resumes.
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


def is_record(path: str) -> bool:
    return path.endswith(".json") and os.path.basename(os.path.dirname(path)) == "records"


def find_runs(path: str) -> list[str]:
    """`path` itself if it is a record or holds metrics.jsonl, else every run directory and record
    below it; FileNotFoundError naming `path` if there is none."""
    if is_record(path) or os.path.isfile(os.path.join(path, "metrics.jsonl")):
        return [path]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{path}: no such directory")
    runs = sorted(root for root, _, files in os.walk(path) if "metrics.jsonl" in files)
    runs += sorted(os.path.join(root, f) for root, _, files in os.walk(path) for f in files  # with a curve to draw
                   if is_record(os.path.join(root, f)) and any(json.load(open(os.path.join(root, f)))["curves"]))
    if not runs:
        raise FileNotFoundError(f"{path}: no metrics.jsonl or records there or below (not a run directory)")
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


def read_config(run: str) -> dict:
    """The run's config flattened to {"train.env": ..., "agent.actor_lr": ...} ({} if absent); a
    record's with its label ("run": agent/variant) and its task."""
    if is_record(run):
        with open(run) as f:
            record = json.load(f)
        config = record.get("config") or {}
        data = {**config, "train": {**config.get("train", {}), "env": record["task"]},
                "run": {"label": "/".join(p for p in (record["agent"], record.get("variant", "")) if p)}}
    else:
        path = os.path.join(run, "config.json")
        if not os.path.exists(path):
            return {}
        with open(path) as f:
            data = json.load(f)
    return {f"{section}.{k}": v for section, fields in data.items() for k, v in fields.items()}


def series(records: list[dict], metric: str, x: str) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of the finite values of `metric`, by step, the later record of a step winning (a
    resumed run logs the steps after its checkpoint again); x is `step`, or the run clock
    (`perf/run_clock_s`, else `wall_time` made cumulative over resumes: each new process restarts
    the logger's clock at 0)."""
    points, offset, last_time = {}, 0.0, 0.0
    for record in records:
        if x == "time":
            clock = record.get("perf/run_clock_s")
            if clock is None and record["wall_time"] + offset < last_time:  # a resumed process: continue its clock
                offset = last_time
            last_time = clock if clock is not None else record["wall_time"] + offset
        value = record.get(metric)
        if value is not None and math.isfinite(value):
            points[record["step"]] = (last_time if x == "time" else record["step"], value)
    xs, ys = zip(*(points[k] for k in sorted(points))) if points else ((), ())
    return np.asarray(xs, float), np.asarray(ys, float)


def record_curves(path: str, metric: str, x: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """A benchmark record's per-seed curves of `metric` ("eval/return_mean" is a point's "return",
    other "eval/NAME" its NAME) against env steps or the run clock (`wall_s`)."""
    with open(path) as f:
        record = json.load(f)
    name = "return" if metric == "eval/return_mean" else metric.removeprefix("eval/")
    key = "env_steps" if x == "steps" else "wall_s"
    out = []
    for curve in record["curves"]:
        pts = [(p[key], p[name]) for p in curve if p.get(key) is not None and p.get(name) is not None]
        out.append((np.asarray([a for a, _ in pts], float), np.asarray([b for _, b in pts], float)))
    return out


def run_curves(records: list[dict], metric: str, x: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """One (x, y) curve per seed of a multi-seed run (its `metric/seed_k`), else the run's `metric`."""
    seeds = sorted({k for r in records for k in seed_indices(r, metric)})
    return [series(records, f"{metric}/seed_{k}", x) for k in seeds] or [series(records, metric, x)]


def curves_of(run: str, metric: str, x: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """The per-seed curves of a run directory or a record."""
    return record_curves(run, metric, x) if is_record(run) else run_curves(read_records(run), metric, x)


def aggregate(curves: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(grid, mean, s.d.) of several (x, y) curves: the grid is every x of any curve inside the
    range all curves cover, each curve linearly interpolated there; s.d. over curves (ddof 1, as
    every table's; zero for one curve). ValueError if the curves share no x range."""
    lo = max(xs[0] for xs, _ in curves)
    hi = min(xs[-1] for xs, _ in curves)
    if lo > hi:
        raise ValueError(f"the runs share no x range (starts up to {lo:g}, ends from {hi:g})")
    grid = np.unique(np.concatenate([xs[(xs >= lo) & (xs <= hi)] for xs, _ in curves]))
    values = np.stack([np.interp(grid, xs, ys) for xs, ys in curves])
    return grid, values.mean(axis=0), values.std(axis=0, ddof=1) if len(curves) > 1 else np.zeros_like(grid)


def group_runs(run_dirs: list[str]) -> dict[tuple, list[str]]:
    """Runs keyed by their config without the NOT_CONFIG fields, in first-seen order."""
    groups: dict[tuple, list[str]] = {}
    for run_dir in run_dirs:
        config = read_config(run_dir)
        key = tuple(sorted((k, json.dumps(v)) for k, v in config.items() if k.split(".")[-1] not in NOT_CONFIG))
        groups.setdefault(key, []).append(run_dir)
    return groups


def label_of(key: tuple, keys: list[tuple]) -> str:
    """A record's label; else 'agent' plus the config fields in which this curve differs from the others."""
    config = dict(key)
    if "run.label" in config:
        return json.loads(config["run.label"])
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
        shown = metric
        curves = [c for run in runs for c in curves_of(run, shown, x)]
        if all(len(xs) == 0 for xs, _ in curves):
            shown = FALLBACK_METRIC
            curves = [c for run in runs for c in curves_of(run, shown, x)]
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
        ax.set_xlabel("env steps" if x == "steps" else "run clock (minutes; evaluation and saves left out)")
        ax.set_ylabel(" / ".join(sorted(shown_by_task[task])))
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(out, dpi=120, metadata={"Software": None})
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+", metavar="RUN", help="run directories, records, or folders of them")
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
