"""Does the temperature hold each agent at its target entropy, and does SMFP stay stochastic? (issue 34)

    python -m benchmarks.entropy_control [--records DIR] [--out DIR] [--within 1.0] [--after 0.25]

Reads parallel-regime records (benchmarks/parallel_regime.py; each evaluation point carries the last
host call's training metrics and the evaluation's diagnostics) and reports, per run and seed:
* the criterion, fixed before the runs: the agent's own entropy estimate on its training batches
  (`train_entropy`, -E log pi over the actor's steps of the call before each evaluation) is within
  `--within` nats of its target at EVERY evaluation from `--after` of the run's budget on (run clock);
  with the first clock at which it came within that distance;
* the k-NN entropy of the actions and (SMFP) the flow's spread on the held-out states at the first
  evaluation after warm-up, at 25 % and at the end: a collapse shows as both falling to the floor;
* the final deterministic and stochastic returns and the forward velocity (locomotion tasks).
Writes OUT/entropy_control.{md,csv,json} and OUT/entropy_control.png (estimate - target, k-NN entropy
and flow spread against the run clock, one panel row per task).
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os

import numpy as np

from benchmarks import outputs

DEFAULT_RECORDS = os.path.join(os.path.dirname(__file__), "results", "entropy_control", "records")


def seed_summary(points: list[dict], budget_s: float, within: float, after: float) -> dict:
    """The criterion and the diagnostics of one seed's evaluation points."""
    gaps = [(p["wall_s"], p["train_entropy"] - p["train_entropy_target"]) for p in points
            if p.get("train_entropy") is not None and p.get("train_entropy_target") is not None]
    late = [g for t, g in gaps if t >= after * budget_s]
    reached = next((t for t, g in gaps if abs(g) <= within), math.nan)
    start = points[1] if len(points) > 1 else points[0]  # the first evaluation after training started
    quarter = min(points, key=lambda p: abs(p["wall_s"] - after * budget_s))
    out = {"first_within_s": reached, "late_points": len(late),
           "late_within": sum(abs(g) <= within for g in late),
           "late_max_abs_gap": max((abs(g) for g in late), default=math.nan),
           "holds": bool(late) and all(abs(g) <= within for g in late)}
    for name in ("knn_entropy", "flow_spread"):
        for tag, p in (("start", start), ("quarter", quarter), ("end", points[-1])):
            out[f"{name}_{tag}"] = p.get(name)
    end = points[-1]
    out.update(return_end=end["return"], stochastic_return_end=end.get("stochastic_return_mean"),
               forward_velocity_end=end.get("forward_velocity"), env_steps_end=end["env_steps"])
    return out


def summarise(records: list[dict], within: float, after: float) -> list[dict]:
    rows = []
    for rec in records:
        for seed, points in enumerate(rec["curves"]):
            if points:
                rows.append({"task": rec["task"], "agent": rec["agent"], "recipe": rec["recipe"], "seed": seed,
                             **seed_summary(points, rec["budget_s"], within, after)})
    return rows


def _fmt(x, digits=2) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.{digits}f}"


def markdown(rows: list[dict], within: float, after: float) -> str:
    lines = [f"Criterion: the training-batch entropy estimate within {within:g} nat of its target at every "
             f"evaluation from {after:.0%} of the run clock on. k-NN entropy and flow spread on the 64 held-out states "
             "at the first evaluation, at 25 % and at the end.", "",
             "| task | agent (recipe) | seed | first within (s) | holds (points) | max gap late (nats) "
             "| k-NN entropy start → 25 % → end | flow spread start → 25 % → end | return end (stochastic) "
             "| forward velocity end | env steps |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['agent']} ({r['recipe']}) | {r['seed']} | {_fmt(r['first_within_s'], 0)} | "
            f"{'yes' if r['holds'] else 'NO'} ({r['late_within']}/{r['late_points']}) | {_fmt(r['late_max_abs_gap'])} | "
            f"{_fmt(r['knn_entropy_start'], 1)} → {_fmt(r['knn_entropy_quarter'], 1)} → {_fmt(r['knn_entropy_end'], 1)} | "
            f"{_fmt(r['flow_spread_start'], 3)} → {_fmt(r['flow_spread_quarter'], 3)} → {_fmt(r['flow_spread_end'], 3)} | "
            f"{_fmt(r['return_end'], 0)} ({_fmt(r['stochastic_return_end'], 0)}) | {_fmt(r['forward_velocity_end'])} | "
            f"{r['env_steps_end']:,} |")
    return "\n".join(lines) + "\n"


def plot(records: list[dict], path: str, within: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({r["task"] for r in records})
    fig, axes = plt.subplots(len(tasks), 3, figsize=(15, 3.6 * len(tasks)), squeeze=False)
    for row, task in zip(axes, tasks):
        for i, rec in enumerate(r for r in records if r["task"] == task):
            colour, label = f"C{i}", f"{rec['agent']} ({rec['recipe']})"
            for seed, points in enumerate(rec["curves"]):
                t = [p["wall_s"] for p in points]
                series = ([(p.get("train_entropy") or math.nan) - (p.get("train_entropy_target") or math.nan)
                           for p in points], [p.get("knn_entropy") for p in points],
                          [p.get("flow_spread") for p in points])
                for ax, ys in zip(row, series):
                    ys = [math.nan if y is None else y for y in ys]
                    if not all(math.isnan(y) for y in ys):
                        ax.plot(t, ys, color=colour, lw=1, alpha=0.8, label=label if seed == 0 else None)
        row[0].axhspan(-within, within, color="grey", alpha=0.15)
        for ax, name in zip(row, ("entropy estimate - target (nats)", "k-NN entropy of actions (nats)",
                                  "flow spread E||x1-x2||^2/2")):
            ax.set_title(f"{task}: {name}", fontsize=9)
            ax.set_xlabel("run clock (s)")
            ax.grid(alpha=0.3)
        row[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", default=DEFAULT_RECORDS)
    parser.add_argument("--out", default=None, help="default: the records' parent directory")
    parser.add_argument("--within", type=float, default=1.0)
    parser.add_argument("--after", type=float, default=0.25)
    args = parser.parse_args(argv)
    out = args.out or os.path.dirname(os.path.abspath(args.records))
    records = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(args.records, "*.json")))]
    rows = summarise(records, args.within, args.after)
    table = markdown(rows, args.within, args.after)
    print(table)
    with open(os.path.join(out, "entropy_control.md"), "w") as f:
        f.write(f"# Entropy control and SMFP's spread (issue 34)\n\n{table}")
    outputs.write_rows(os.path.join(out, "entropy_control"), rows, within=args.within, after=args.after)
    if records:
        plot(records, os.path.join(out, "entropy_control.png"), args.within)
    return rows


if __name__ == "__main__":
    main()
