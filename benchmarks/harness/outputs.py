"""What every benchmark writes beside its records: rows as CSV and strict JSON, the manifest saying how
each file was made, curve plots, and RESULTS.md's generated blocks, assembled from the reports."""
from __future__ import annotations

import csv
import functools
import json
import math
import os
import re
import subprocess
import time

from mjx_smfp import rundir

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULTS = os.path.join(REPO, "benchmarks", "results")
RESULTS_MD = os.path.join(REPO, "benchmarks", "RESULTS.md")
MANIFEST = "manifest.json"
# A generated block of RESULTS.md: the named report's text, between these two lines.
BLOCK = re.compile(r"(<!-- generated from (\S+) .*?-->\n)(.*?)(<!-- end generated -->)", re.S)


def jsonable(x):
    """x with NaN/inf as None and numpy values as Python ones (strict JSON)."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if hasattr(x, "tolist") and not isinstance(x, (str, bytes)):
        return jsonable(x.tolist())
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    return x


def write_rows(stem: str, rows: list[dict], **meta) -> None:
    """STEM.csv (one row per measurement, lists as JSON) and STEM.json (`meta` and the rows)."""
    os.makedirs(os.path.dirname(stem) or ".", exist_ok=True)
    if rows:
        with open(stem + ".csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for row in rows for k in row)))
            writer.writeheader()
            writer.writerows([{k: json.dumps(jsonable(v)) if isinstance(v, (list, dict)) else v for k, v in r.items()}
                              for r in rows])
    with open(stem + ".json", "w") as f:
        json.dump(jsonable(dict(meta, rows=rows)), f, indent=1, allow_nan=False)


@functools.lru_cache(maxsize=None)
def commit() -> str:
    """The commit checked out when this process first asked (at import): the code it runs, even when
    the checkout moves on before a long run writes its files."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


commit()


def note_manifest(out: str, name: str, command: str, files: list[str], regenerate: str = "") -> None:
    """Record in OUT/manifest.json how `name` was generated (command, commit, machine, date) and the
    command that remakes it from what was saved (`regenerate`; default: the command)."""
    from benchmarks import machine

    path = os.path.join(out, MANIFEST)
    manifest = rundir.read_json(path) or {}
    manifest[name] = {"command": command, "commit": commit(), "machine": machine.summary(),
                      "date": time.strftime("%Y-%m-%d %H:%M"), "files": sorted(files),
                      "regenerate": regenerate or command}
    rundir.write_json(path, manifest)


def plot(record_paths: list[str], out: str, title: str) -> list[str]:
    """`launch.plot`'s curves of the records against env steps and, where recorded, run clock."""
    from launch import plot as plot_lib

    written = [plot_lib.plot(record_paths, "steps", out=os.path.join(out, f"{title}.png"))]
    if any(p.get("wall_s") is not None for path in record_paths for c in rundir.read_json(path)["curves"] for p in c):
        written.append(plot_lib.plot(record_paths, "time", out=os.path.join(out, f"{title}_clock.png")))
    return written


def assemble(text: str, root: str = REPO) -> tuple[str, list[str]]:
    """RESULTS.md text with every generated block replaced by the report it names, and those that changed."""
    changed = []

    def fill(m: re.Match) -> str:
        with open(os.path.join(root, m.group(2))) as f:
            body = f.read().rstrip("\n") + "\n"
        if body != m.group(3):
            changed.append(m.group(2))
        return m.group(1) + body + m.group(4)

    return BLOCK.sub(fill, text), changed


def plot_panels(records: list[dict], path: str, metrics=("return",), x: str = "env_steps", dashed=()) -> str:
    """One panel per task (columns) and metric (rows): each run's mean over seeds with its Student-t 95 %
    interval as a band, against env steps or run clock (`wall_s`, in minutes); runs of `dashed` as context."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from benchmarks import stats
    from benchmarks.harness.report import label
    from launch.plot import aggregate

    tasks = list(dict.fromkeys(r["task"] for r in records))
    colours = {name: f"C{i}" for i, name in enumerate(dict.fromkeys(label(r) for r in records))}  # one per run
    fig, axes = plt.subplots(len(metrics), len(tasks), figsize=(4.5 * len(tasks), 3.4 * len(metrics)), squeeze=False)
    for (i, metric), (j, task) in ((m, t) for m in enumerate(metrics) for t in enumerate(tasks)):
        ax = axes[i, j]
        for record in (r for r in records if r["task"] == task):
            points = [[(p[x], p[metric]) for p in c if p.get(x) is not None and p.get(metric) is not None]
                      for c in record["curves"]]
            curves = [tuple(np.array(list(zip(*c)), float)) for c in points if c]
            if not curves:
                continue
            grid, mean, sd = aggregate(curves)
            half = stats.t_quantile(0.95, len(curves) - 1) * sd / np.sqrt(len(curves)) if len(curves) > 1 else 0 * sd
            grid = grid / 60.0 if x == "wall_s" else grid
            name = label(record)
            ax.plot(grid, mean, "--" if name in dashed else "-", color=colours[name],
                    label=f"{name}{' (context)' if name in dashed else ''} (n = {len(curves)})")
            ax.fill_between(grid, mean - half, mean + half, color=colours[name], alpha=0.2)
        ax.set(title=task if i == 0 else "", ylabel=metric if j == 0 else "",
               xlabel="env steps per seed" if x == "env_steps" else "run clock (min; compile and warm-up counted)")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(fig)
    return path
