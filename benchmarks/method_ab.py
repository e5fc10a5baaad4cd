"""Method A/Bs from paper-table runs: each variant's run against the default's, seed for seed.

    python -m benchmarks.method_ab --base benchmarks/results/paper_ab/default
        --variants benchmarks/results/paper_ab/anchor_flow,benchmarks/results/paper_ab/power_0.2
        --tasks halfcheetah,hopper [--agent smfp] [--out DIR]

Each side is a `benchmarks.paper_table` --out folder (run dirs or committed records) of the same
protocol and seeds; what a variant changed is read from the runs' saved configurations and named
in the table. Both sides are compared at the env steps both have reached, so unfinished runs
compare fairly: final return = mean of each seed's last 10 evaluations up to there. Seed k of both
sides saw the same warm-up data and start states, so the table also gives the paired per-seed
difference (variant - default), its mean with a 95 % bootstrap interval over seeds, and how many
seeds the variant won. With 3 seeds that interval is coarse (10 distinct resamples): read it with
the per-seed numbers. Where the two sides trained on different machines (named in the records),
the table says so: their seeds then pair by key, not bit for bit. Writes DIR/method_ab.{md,json}
and DIR/<task>_ab.png (default DIR: the parent of --base).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from benchmarks import machine
from benchmarks.paper_table import (_reached, _steps, bootstrap_ci, config_changes, final_return, load_run, plot_task,
                                    saved_config, summarise_run)

def changed_fields(base: dict | None, variant: dict | None) -> list[str]:
    """What the variant's saved configuration changed from the default's."""
    if not base or not variant:
        return ["(configuration not saved)"]
    return config_changes(base, variant) or ["(nothing: the same configuration)"]


def up_to(curves: list, step: int) -> list:
    """Each seed's evaluations at env steps <= `step`."""
    return [[(s, r) for s, r in c if s <= step] for c in curves]


def compare(base: list, variant: list) -> dict:
    """Both sides summarised at the env steps both reached, and the paired per-seed difference."""
    step = min(_reached(base), _reached(variant))
    base, variant = up_to(base, step), up_to(variant, step)
    a, b = summarise_run(base), summarise_run(variant)
    diff = [final_return(y) - final_return(x) for x, y in zip(base, variant) if x and y]  # seed k with seed k
    lo, hi = bootstrap_ci(diff)
    return {"env_steps": step, "base": a, "variant": b, "diff_per_seed": diff,
            "diff_mean": float(np.mean(diff)) if diff else float("nan"), "diff_ci_lo": lo, "diff_ci_hi": hi,
            "wins": sum(d > 0 for d in diff), "paired_seeds": len(diff)}


def verdict(c: dict) -> str:
    """Plain words: do the two means' intervals overlap, and does the paired interval hold 0."""
    a, b = c["base"], c["variant"]
    if not c["paired_seeds"]:
        return "not compared yet (no evaluations on one side)"
    overlap = max(a["final_ci_lo"], b["final_ci_lo"]) <= min(a["final_ci_hi"], b["final_ci_hi"])
    excludes_zero = c["diff_ci_lo"] > 0 or c["diff_ci_hi"] < 0
    means = ("the intervals of the two means overlap" if overlap else "the intervals of the two means do not overlap "
             f"(the variant is {'higher' if b['final_mean'] > a['final_mean'] else 'lower'})")
    paired = (f"the paired interval excludes 0 ({'higher' if c['diff_mean'] > 0 else 'lower'})" if excludes_zero
              else "the paired interval holds 0")
    return (f"{means}; {paired}; the variant won {c['wins']}/{c['paired_seeds']} seeds — "
            f"{'resolved' if excludes_zero and not overlap else 'not resolved'} at {_steps(c['env_steps'])} steps")


def machines_note(trained_on: dict) -> str:
    """A warning when the two sides trained on different machines: seed k of both still shares its
    keys (init, warm-up data, start states), not its float rounding."""
    base, variant = ("; then ".join(trained_on[side]) or "not recorded" for side in ("default", "variant"))
    return "" if base == variant else (f" The sides trained on different machines (default: {base}; variant: "
                                       f"{variant}): seeds pair by key, not bit for bit.")


def _cell(row: dict) -> str:
    return f"{row['final_mean']:,.0f} ± {row['final_sd']:,.0f} [{row['final_ci_lo']:,.0f}, {row['final_ci_hi']:,.0f}]"


def markdown(results: list[dict], meta: dict) -> str:
    lines = [f"Default: `{meta['base']}`. Final return = mean of each seed's last 10 evaluations up to the "
             f"env steps both sides reached; cells: mean ± s.d. over seeds [95 % bootstrap interval of the mean]; "
             f"paired = variant - default, seed for seed. {meta['machine']}; {meta['date']}.", "",
             "| task | variant | changed | env steps | default | variant | paired difference | per seed |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        c = r["comparison"]
        if not c["paired_seeds"]:
            lines.append(f"| {r['task']} | {r['variant']} | {'; '.join(r['changed'])} | — | — | — | — | — |")
            continue
        per_seed = ", ".join(f"{d:+,.0f}" for d in c["diff_per_seed"])
        lines.append(f"| {r['task']} | {r['variant']} | {'; '.join(r['changed'])} | {_steps(c['env_steps'])} | "
                     f"{_cell(c['base'])} | {_cell(c['variant'])} | {c['diff_mean']:+,.0f} "
                     f"[{c['diff_ci_lo']:+,.0f}, {c['diff_ci_hi']:+,.0f}] | {per_seed} |")
    lines += [""] + [f"- {r['task']}, {r['variant']}: {verdict(r['comparison'])}.{machines_note(r['trained_on'])}"
                     for r in results]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="the default's paper_table --out folder")
    parser.add_argument("--variants", required=True, help="comma-separated paper_table --out folders")
    parser.add_argument("--tasks", default="halfcheetah,hopper")
    parser.add_argument("--agent", default="smfp")
    parser.add_argument("--out", default=None, help="where the table and PNGs go (default: the parent of --base)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    variants = [v.rstrip("/") for v in args.variants.split(",") if v]
    out = args.out or os.path.dirname(os.path.normpath(args.base))
    for folder in [args.base, *variants]:
        if not os.path.isdir(folder):
            raise SystemExit(f"error: {folder}: no such paper_table --out folder")
    os.makedirs(out, exist_ok=True)
    meta = {"base": args.base, "agent": args.agent, "machine": machine.summary(), "date": time.strftime("%Y-%m-%d %H:%M"),
            "command": "python -m benchmarks.method_ab " + " ".join(sys.argv[1:] if argv is None else argv)}
    results = []
    for task in [t for t in args.tasks.split(",") if t]:
        base_status, base = load_run(args.base, task, args.agent)
        base_config = saved_config(args.base, task, args.agent)
        shown = {"default": base}
        for folder in variants:
            name = os.path.basename(folder)
            status, curves = load_run(folder, task, args.agent)
            shown[name] = curves
            results.append({"task": task, "variant": name, "folder": folder,
                            "changed": changed_fields(base_config, saved_config(folder, task, args.agent)),
                            "comparison": compare(base, curves),
                            "trained_on": {"default": base_status["machines"], "variant": status["machines"]}})
        plot_task(task, shown, os.path.join(out, f"{task}_ab.png"),
                  f"{task}, {args.agent}: method A/Bs vs the default — {meta['machine']} — {meta['date']}")
    table = markdown(results, meta)
    with open(os.path.join(out, "method_ab.md"), "w") as f:
        f.write(f"# Method A/Bs\n\n`{meta['command']}`\n\n{table}\n")
    with open(os.path.join(out, "method_ab.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=2)
    print(table, flush=True)
    print(f"[ab] wrote {out}/method_ab.{{md,json}} and one PNG per task", flush=True)
    return results


if __name__ == "__main__":
    main()
