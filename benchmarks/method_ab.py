"""Method A/Bs from paper-table runs: each variant's run against the default's, seed for seed.

    python -m benchmarks.method_ab --base benchmarks/results/paper_ab/default
        --variants benchmarks/results/paper_ab/anchor_flow,benchmarks/results/paper_ab/power_0.2
        --tasks halfcheetah,hopper [--agent smfp] [--out DIR]

Each side is a `benchmarks.paper_table` --out folder (run dirs or committed records) of the same
protocol and seeds; what a variant changed is read from the runs' saved configurations and named
in the table. Both sides are compared at the env steps both have reached, so unfinished runs
compare fairly: final return = mean of each seed's last 10 evaluations up to there. Seed k of both
sides saw the same warm-up data and start states, so the table also gives the paired per-seed
difference (variant - default), its mean with a Student-t 95 % interval over seeds, the exact
two-sided Wilcoxon signed-rank p (`benchmarks.stats`), and how many seeds the variant won. A pair is
"resolved" only when that p < 0.05, which needs at least 6 paired seeds: with 3 the smallest
possible p is 0.25 (3 of 3 one way), so a 3-seed A/B can show a direction, never resolve it. Where the two sides trained on different machines (named in the records),
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

from benchmarks import machine, stats
from benchmarks.paper_table import (LEVEL, _reached, _steps, _window, config_changes, final_return, load_run,
                                    plot_task, saved_config, summarise_run)

def changed_fields(base: dict | None, variant: dict | None) -> list[str]:
    """What the variant's saved configuration changed from the default's."""
    if not base or not variant:
        return ["(configuration not saved)"]
    return config_changes(base, variant) or ["(nothing: the same configuration)"]


def up_to(curves: list, step: int) -> list:
    """Each seed's evaluations at env steps <= `step`."""
    return [[(s, r) for s, r in c if s <= step] for c in curves]


def compare(base: list, variant: list, level: float = LEVEL) -> dict:
    """Both sides summarised at the env steps both reached, and the paired per-seed difference
    (variant - default) with its Student-t interval and the exact Wilcoxon signed-rank test
    (`benchmarks.stats.compare`, paired)."""
    step = min(_reached(base), _reached(variant))
    base, variant = up_to(base, step), up_to(variant, step)
    a, b = summarise_run(base, level), summarise_run(variant, level)
    pairs = [(final_return(x), final_return(y)) for x, y in zip(base, variant) if x and y]  # seed k with seed k
    diff = [y - x for x, y in pairs]
    c = stats.compare([y for _, y in pairs], [x for x, _ in pairs], paired=True, level=level)
    return {"env_steps": step, "base": a, "variant": b, "diff_per_seed": diff,
            "diff_mean": c["diff_mean"], "diff_ci_lo": c["diff_ci_lo"], "diff_ci_hi": c["diff_ci_hi"],
            "interval": f"Student-t {100 * level:g} %", "test": c["test"], "p": c["p"], "min_p": c["min_p"],
            "resolved": c["resolved"], "level": level, "wins": sum(d > 0 for d in diff), "paired_seeds": len(diff)}


def verdict(c: dict) -> str:
    """Plain words: the exact paired test's verdict (it alone decides "resolved"), whether the
    paired interval holds 0, and how many seeds the variant won."""
    if not c["paired_seeds"]:
        return "not compared yet (no evaluations on one side)"
    test = {k: c[k] for k in ("level", "diff_mean", "p", "min_p", "test", "resolved")}
    test.update(paired=True, n=f"{c['paired_seeds']} pairs")
    holds = c["diff_ci_lo"] <= 0 <= c["diff_ci_hi"] if np.isfinite(c["diff_ci_lo"]) else True
    return (f"{stats.describe(test, ('variant', 'default'))}; the paired {c['interval']} interval "
            f"{'holds' if holds else 'excludes'} 0; the variant won {c['wins']}/{c['paired_seeds']} seeds, "
            f"at {_steps(c['env_steps'])} steps")


def machines_note(trained_on: dict) -> str:
    """A warning when the two sides trained on different machines: seed k of both still shares its
    keys (init, warm-up data, start states), not its float rounding."""
    base, variant = ("; then ".join(trained_on[side]) or "not recorded" for side in ("default", "variant"))
    return "" if base == variant else (f" The sides trained on different machines (default: {base}; variant: "
                                       f"{variant}): seeds pair by key, not bit for bit.")


def _cell(row: dict) -> str:
    return (f"{row['final_mean']:,.0f} ± {row['final_sd']:,.0f} [{row['final_ci_lo']:,.0f}, {row['final_ci_hi']:,.0f}] "
            f"over {_window(row)}")


def markdown(results: list[dict], meta: dict) -> str:
    level = meta.get("level", LEVEL)
    lines = [f"Default: `{meta['base']}`. Final return = mean of each seed's last 10 evaluations up to the "
             f"env steps both sides reached, over the env steps shown; cells: mean ± s.d. over the n seeds "
             f"[Student-t {100 * level:g} % interval of the mean]; paired = variant - default, seed for seed, "
             f"with its Student-t {100 * level:g} % interval; test: exact two-sided Wilcoxon signed-rank on the "
             f"paired seeds, \"resolved\" only when p < {1 - level:.2g} (with 3 pairs p cannot go below 0.25, "
             f"with 5 below 0.0625). {meta['machine']}; {meta['date']}.", "",
             "| task | variant | changed | env steps | n | default | variant | paired difference | p | per seed |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        c = r["comparison"]
        if not c["paired_seeds"]:
            lines.append(f"| {r['task']} | {r['variant']} | {'; '.join(r['changed'])} | — | 0 | — | — | — | — | — |")
            continue
        per_seed = ", ".join(f"{d:+,.0f}" for d in c["diff_per_seed"])
        lines.append(f"| {r['task']} | {r['variant']} | {'; '.join(r['changed'])} | {_steps(c['env_steps'])} | "
                     f"{c['paired_seeds']} | {_cell(c['base'])} | {_cell(c['variant'])} | {c['diff_mean']:+,.0f} "
                     f"[{c['diff_ci_lo']:+,.0f}, {c['diff_ci_hi']:+,.0f}] | {stats.format_p(c['p'])} | {per_seed} |")
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
    from mjx_smfp import compile_cache

    compile_cache.configure()  # XLA:CPU flags (and $JAX_COMPILATION_CACHE_DIR) before any computation
    variants = [v.rstrip("/") for v in args.variants.split(",") if v]
    out = args.out or os.path.dirname(os.path.normpath(args.base))
    for folder in [args.base, *variants]:
        if not os.path.isdir(folder):
            raise SystemExit(f"error: {folder}: no such paper_table --out folder")
    os.makedirs(out, exist_ok=True)
    meta = {"base": args.base, "agent": args.agent, "machine": machine.summary(), "date": time.strftime("%Y-%m-%d %H:%M"),
            "level": LEVEL, "interval": f"Student-t {100 * LEVEL:g} %", "test": "Wilcoxon signed-rank, exact, two-sided",
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
