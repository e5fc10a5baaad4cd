"""Entropy control on one scale (issue 34): SAC and SMFP on the shared `parallel` recipe
(mjx_smfp/recipes.py) at the parallel regime's CPU shape, 3 seeds x 30 minutes of run clock, an
evaluation every 90 s of it.

The criterion, fixed before these runs: the agent's own entropy estimate on its training batches
(`train_entropy`, -E log pi over the actor's steps of the host call before each evaluation) is within
1 nat of its target (`train_entropy_target`) at EVERY evaluation from 25 % of the run clock on. Beside
it, whether SMFP stays stochastic: the k-NN entropy of its actions and its flow's spread on 64 held-out
states (mjx_smfp/diagnostics.py) at the first evaluation after training started, at 25 % and at the end.
Variant `parallel` is the recipe as it is now: the temperature stepped by 3e-3 x its entropy gap, the
backup's entropy term centred on the target (`temperature_rule`, `entropy_backup_centred`) and SMFP's
anchor following its actor by EMA (`anchor_update`). Earlier forms, kept with their records:
`adam_temperature` (the first runs: Adam on alpha at 1e-2, the plain backup, the hard anchor) and
`proportional_3e-3` (the recipe now with SMFP's hard anchor: SAC's runs are the same configuration and are
variant `parallel`). Pilots: `md_coef_0.03`, SMFP with the bandit's mirror-descent coefficient (stopped
early: it stalled); `temperature_lr_0.03`, a 3x faster Adam against SAC's Humanoid swings (stopped: larger
swings); `temperature_proportional`, the proportional temperature with the plain backup (stopped at
~1,000 s); `proportional_1e-2`, the recipe now at 1e-2 x the gap (stopped at 455 s: it diverged). The
Humanoid SMFP run of `parallel` began as a pilot of the EMA anchor, the same configuration, renamed when the
recipe took it.

    python -m benchmarks.harness run entropy_control --tasks halfcheetah --agents smfp --variants parallel
    python -m benchmarks.harness report entropy_control
"""
from __future__ import annotations

import math
import os

from benchmarks.harness import outputs
from benchmarks.harness.spec import Study
from benchmarks.studies import parallel_regime

WITHIN, AFTER = 1.0, 0.25  # nats; share of the run clock


def seed_summary(points: list[dict], budget_s: float) -> dict:
    """The criterion and the diagnostics of one seed's evaluation points."""
    gaps = [(p["wall_s"], p["train_entropy"] - p["train_entropy_target"]) for p in points
            if p.get("train_entropy") is not None and p.get("train_entropy_target") is not None]
    late = [g for t, g in gaps if t >= AFTER * budget_s]
    start = points[1] if len(points) > 1 else points[0]  # the first evaluation after training started
    quarter = min(points, key=lambda p: abs(p["wall_s"] - AFTER * budget_s))
    out = {"first_within_s": next((t for t, g in gaps if abs(g) <= WITHIN), math.nan),
           "late_within": sum(abs(g) <= WITHIN for g in late), "late_points": len(late),
           "late_max_abs_gap": max((abs(g) for g in late), default=math.nan),
           "holds": bool(late) and all(abs(g) <= WITHIN for g in late)}
    out.update({f"{name}_{tag}": p.get(name) for name in ("knn_entropy", "flow_spread")
                for tag, p in (("start", start), ("quarter", quarter), ("end", points[-1]))})
    # what a step alive is worth to the critic, late in the run: the evaluation's reward per step in the
    # critic's (normalised) units, and the backup's entropy term at the target, alpha x H_target (< 0 for a
    # negative target: past -reward it makes ending the episode pay)
    late_points = [p for p in points if p["wall_s"] >= AFTER * budget_s and p.get("train_temperature") is not None]
    out["reward_per_step_late"] = _mean([p["return"] / max(p["length"], 1.0) / (p.get("train_reward_scale") or 1.0)
                                         for p in late_points])
    out["entropy_term_per_step_late"] = _mean([p["train_temperature"] * p["train_entropy_target"] for p in late_points])
    end = points[-1]
    return dict(out, return_end=end["return"], stochastic_return_end=end.get("stochastic_return_mean"),
                forward_velocity_end=end.get("forward_velocity"), env_steps_end=end["env_steps"])


def _mean(xs: list) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def _fmt(x, digits: int = 2) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:,.{digits}f}"


def table(records: list[dict]) -> tuple[list[str], list[dict]]:
    """The criterion per run and seed: markdown lines and rows."""
    rows = [{"task": r["task"], "agent": r["agent"], "variant": r["variant"], "seed": k,
             **seed_summary(points, r["schedule"]["seconds"])}
            for r in records for k, points in enumerate(r["curves"]) if points]
    lines = ["| task | agent (variant) | seed | first within 1 nat (s) | holds from 25 % (points) | max gap late "
             "(nats) | k-NN entropy start → 25 % → end | flow spread start → 25 % → end | return end (stochastic) "
             "| forward velocity end | env steps | per step, late: reward / α·H_target (critic units) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['agent']} ({r['variant']}) | {r['seed']} | {_fmt(r['first_within_s'], 0)} | "
            f"{'yes' if r['holds'] else 'NO'} ({r['late_within']}/{r['late_points']}) | {_fmt(r['late_max_abs_gap'])} | "
            + " → ".join(_fmt(r[f"knn_entropy_{t}"], 1) for t in ("start", "quarter", "end")) + " | "
            + " → ".join(_fmt(r[f"flow_spread_{t}"], 3) for t in ("start", "quarter", "end")) + " | "
            f"{_fmt(r['return_end'], 0)} ({_fmt(r['stochastic_return_end'], 0)}) | {_fmt(r['forward_velocity_end'])} | "
            f"{r['env_steps_end']:,} | {_fmt(r['reward_per_step_late'], 3)} / {_fmt(r['entropy_term_per_step_late'], 3)} |")
    return lines, rows


def analysis(study, rows, pooled, records, context, out: str, plots: bool = True):
    """(markdown, data, files): the criterion table and the diagnostics' curves, before the return tables."""
    lines, summary = table(records)
    held = [f"{r['task']}/{r['agent']}: {sum(s['holds'] for s in summary if (s['task'], s['agent'], s['variant']) == k)}"
            f" of {sum((s['task'], s['agent'], s['variant']) == k for s in summary)} seeds"
            for r in records for k in [(r["task"], r["agent"], r["variant"])] if r["variant"] == "parallel"]
    head = [f"**The criterion** (within {WITHIN:g} nat of the target at every evaluation from {AFTER:.0%} of the run "
            f"clock on) holds for {'; '.join(held) or 'no run yet'}.", "", *lines, ""]
    files = ["entropy_control_diagnostics.png"] if records else []
    for name in files:  # the text names the figure whether or not this call draws it (--no-plots)
        head += [f"Curves over the run clock (mean over seeds, band: Student-t 95 % interval): `{name}`.", ""]
        if plots:
            outputs.plot_panels([r for r in records if r["variant"] == "parallel"], os.path.join(out, name),
                                metrics=("train_entropy", "knn_entropy", "flow_spread", "forward_velocity", "return"),
                                x="wall_s")
    return "\n".join(head), {"criterion": summary}, files


# The recipe as its first runs had it (until 2026-12-07 evening): Adam on alpha at 1e-2, the plain backup,
# SMFP's anchor a hard copy every 1,000 actor steps.
ADAM = {"recipe": "parallel", "temperature_rule": "adam", "temperature_lr": 1e-2, "entropy_backup_centred": False,
        "anchor_update": "hard"}
# The recipe of the second runs (2026-12-07 night): the proportional rule at 3e-3, the centred backup, the hard anchor.
PROPORTIONAL_3E3 = {"recipe": "parallel", "temperature_lr": 3e-3, "anchor_update": "hard"}

ENTROPY_CONTROL = Study(
    name="entropy_control", doc=__doc__, tasks=("halfcheetah", "walker2d", "humanoid"), agents=("sac", "smfp"),
    variants={"parallel": {"recipe": "parallel"}, "adam_temperature": ADAM,
              "md_coef_0.03": {**ADAM, "md_coef": 0.03}, "temperature_lr_0.03": {**ADAM, "temperature_lr": 0.03},
              "proportional_3e-3": PROPORTIONAL_3E3,
              "temperature_proportional": {**PROPORTIONAL_3E3, "entropy_backup_centred": False},
              "proportional_1e-2": {"recipe": "parallel", "temperature_lr": 1e-2, "anchor_update": "ema"}},
    seeds=3, base=parallel_regime.CPU.base, budget="30min", eval_every="90s", checkpoint_every="5min", final_evals=3,
    cuts=("env_steps", "wall_s"), analysis=analysis)
