"""One agent's final returns across two paper tables, task by task: e.g. SAC started at alpha0 0.1
(`paper_level`) against SAC started at alpha0 1.0 (`paper_cpu`), everything else equal.

    python -m benchmarks.compare_tables \\
        "benchmarks/results/paper_level/paper_table.json:sac:SAC alpha0 0.1" \\
        "benchmarks/results/paper_cpu/paper_table.json:sac:SAC alpha0 1.0" \\
        --out benchmarks/results/paper_level/sac_alpha0.md

Each side is TABLE.json:AGENT:LABEL. The statistics are the paper table's own (`paper_table.
comparison_notes`): the difference of the finals with its Welch-t 95 % interval, and the exact
two-sided Mann-Whitney test, which alone says "resolved". Tasks only one table has are skipped."""
from __future__ import annotations

import argparse
import json

from benchmarks.paper_table import LEVEL, _window, comparison_notes


def side(spec: str) -> tuple[str, dict]:
    """"TABLE.json:AGENT:LABEL" -> (label, {task: that agent's row, relabelled})."""
    path, agent, label = spec.rsplit(":", 2)
    with open(path) as f:
        rows = json.load(f)["rows"]
    return label, {r["task"]: dict(r, agent=label) for r in rows if r["agent"] == agent and r.get("final_per_seed")}


def report(a_spec: str, b_spec: str) -> str:
    """Markdown: per task, both sides' finals and the comparison."""
    (a_label, a), (b_label, b) = side(a_spec), side(b_spec)
    lines = [f"# {a_label} vs {b_label}", "", f"`python -m benchmarks.compare_tables \"{a_spec}\" \"{b_spec}\"`", "",
             f"Cells: mean ± s.d. over the n seeds [Student-t {100 * LEVEL:g} % interval of the mean] of each seed's "
             "final return (the mean of its last 10 evaluations, over the env steps shown). \"Resolved\" only where "
             "the exact two-sided Mann-Whitney test gives p < 0.05 (at 4 vs 4 seeds p cannot go below 0.029).", ""]
    for task in [t for t in a if t in b]:
        lines += [f"### {task}", "", "| agent | n (seeds) | final return |", "|---|---|---|"]
        for r in (a[task], b[task]):
            lines.append(f"| {r['agent']} | {len(r['final_per_seed'])} | {r['final_mean']:,.1f} ± {r['final_sd']:,.1f} "
                         f"[{r['final_ci_lo']:,.1f}, {r['final_ci_hi']:,.1f}] over {_window(r)} |")
        lines += ["", f"- {comparison_notes(task, [a[task], b[task]])[0]}", ""]
    return "\n".join(lines)


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", help="TABLE.json:AGENT:LABEL")
    parser.add_argument("b", help="TABLE.json:AGENT:LABEL")
    parser.add_argument("--out", help="write the markdown here too")
    args = parser.parse_args(argv)
    md = report(args.a, args.b)
    print(md)
    if args.out:
        with open(args.out, "w") as f:
            f.write(md)
    return md


if __name__ == "__main__":
    main()
