"""The head-to-head's report (its rule: benchmarks/studies/head_to_head.py): the verdict first, what it
says, then the secondary results, diagnostics, costs, context runs and curves. A pure function of the
records (the study's and its context's), so the text regenerates identically from a fresh clone."""
from __future__ import annotations

import math
import os

import numpy as np

from benchmarks import stats
from benchmarks.harness import outputs, report
from benchmarks.studies import head_to_head as h2h

NEW, BASE = "smfp", "sac"
NAMES = {"sac": "SAC", "smfp": "SMFP", "sacflow": "SAC Flow", "dime": "DIME"}
NO_RUNS = ("**No runs yet.** No run of `head_to_head` has a record; its rule (benchmarks/studies/head_to_head.py) "
           "was fixed on 2026-12-07. `python -m benchmarks.harness run head_to_head` trains the study and rewrites this report from the "
           "records it commits.\n")
DIAGNOSTICS = (("return", "return"), ("stochastic_return_mean", "stochastic return"),
               ("forward_velocity", "forward velocity"), ("stochastic_forward_velocity", "stochastic fwd velocity"),
               ("knn_entropy", "kNN entropy"), ("entropy_estimate", "entropy estimate"),
               ("flow_spread", "flow spread"), ("sigma_mean", "sigma mean"))


def analysis(study, rows, pooled, records, context, out: str, plots: bool = True):
    """(markdown, data, files): the study's own sections of report.md, before the harness's tables."""
    if not records:
        return NO_RUNS, {"verdict": "no runs yet"}, []
    tasks = rule_tasks(study, records)
    finals = {cut: finals_by_task(rows, tasks, cut) for cut in study.cuts}
    primary = verdict(finals["env_steps"], records, tasks, study.seeds)
    aggregate = normalised(finals["env_steps"], records)
    mde = detectable(finals["env_steps"], study.seeds)
    lines = [headline(primary, study), "", what_this_says(primary, mde), "",
             "### Secondary results (reported, not deciding)", "", *secondary_table(rows, tasks), "",
             *threshold_table(rows, tasks), "", *aggregate_lines(aggregate), "", *mde_lines(mde), "",
             *diagnostics_table(study, rows, records, tasks), "", *cost_table(records, tasks), "",
             *context_table(rows, context, tasks), ""]
    files = figures(records, context, out, tasks, plots)
    if files:
        lines += ["Curves (mean over seeds, band: Student-t 95 % interval of the mean; context dashed): "
                  + ", ".join(f"`{f}`" for f in files) + ".", ""]
    data = {**primary, "iqm": aggregate, "mde": mde}
    return "\n".join(lines), data, files


def rule_tasks(study, records) -> list[str]:
    """The rule's tasks; runs on none of them (a --smoke on the bandit) report their own."""
    if any(r["task"] in study.tasks for r in records):
        return list(study.tasks)
    return list(dict.fromkeys(r["task"] for r in records))


def finals_by_task(rows, tasks, cut) -> dict:
    """{task: {"sac": row, "smfp": row}} of the runs of both agents at `cut` (tasks lacking one left out)."""
    out = {}
    for task in tasks:
        both = {r["agent"]: r for r in rows if r["task"] == task and r["cut"] == cut and r["agent"] in (NEW, BASE)
                and r["final_n"]}
        if len(both) == 2:
            out[task] = both
    return out


def verdict(finals: dict, records, tasks, seeds: int) -> dict:
    """The primary endpoint: the van Elteren test of SMFP's finals against SAC's over the tasks, its
    verdict, and how many of the rule's runs are done at their budget."""
    done = [r for r in records if r["task"] in tasks and r["agent"] in (NEW, BASE) and r["status"] == "done"
            and r.get("reason") == "env_steps"]
    expected = len(tasks) * 2
    t, p = stats.van_elteren([(f[NEW]["final_per_seed"], f[BASE]["final_per_seed"]) for f in finals.values()])
    if len(done) < expected:  # the rule decides at all of its runs; before that the test is only followed
        word = "no verdict yet"
    elif math.isfinite(p) and p < h2h.ALPHA:
        word = "SMFP ahead" if t > 0 else "SAC ahead"
    else:
        word = "not resolved"
    return {"verdict": word, "p": p, "statistic": t, "tasks": list(finals), "complete": len(done) == expected,
            "at_env_steps": {task: f[NEW]["at"] for task, f in finals.items()},
            "episodes": sorted({r["config"]["train"]["eval_episodes"] for r in records if "config" in r}),
            "runs_done": len(done), "runs_expected": expected,
            "seed_runs_done": sum(len(r["curves"]) for r in done), "seed_runs_expected": expected * seeds,
            "higher_mean_in": [task for task, f in finals.items() if f[NEW]["final_mean"] > f[BASE]["final_mean"]]}


def headline(v: dict, study) -> str:
    at = ", ".join(f"{task} {steps:,.0f}" for task, steps in v["at_env_steps"].items())
    episodes = "/".join(map(str, v["episodes"] or [study.base.get("eval_episodes", "?")]))
    if v["verdict"] == "no verdict yet":
        return (f"**No verdict yet**: {v['runs_done']} of {v['runs_expected']} runs ({v['seed_runs_done']} of "
                f"{v['seed_runs_expected']} seed-runs) are done at their budget; the rule decides at all of them. "
                f"Where the runs stand (env steps per seed {at}): the same test gives p = {stats.format_p(v['p'])}, "
                "which decides nothing.")
    return (f"**Verdict: {v['verdict']}**. Exact two-sided van Elteren test of the final returns (mean of each "
            f"seed's last {study.final_evals} deterministic evaluations of {episodes} episodes, at env steps per seed "
            f"{at}), SMFP against SAC, ranks within each task ({len(v['tasks'])}): p = {stats.format_p(v['p'])} "
            f"(alpha {h2h.ALPHA}); SMFP's mean final is the higher in {len(v['higher_mean_in'])} of "
            f"{len(v['tasks'])} tasks.")


def what_this_says(v: dict, mde: dict) -> str:
    scope = ("on these tasks, at these budgets, at the CPU parallel shape, with both agents on the shared `parallel` "
             "recipe")
    if v["verdict"] == "no verdict yet":
        return ("**What this says.** Nothing yet. The tables below are where the runs stand, for following them, "
                "not for reading a difference into.")
    if v["verdict"] == "not resolved":
        size = (f"about {mde['d']:g} s.d. of a task's final returns (" + ", ".join(
            f"{t} {u:,.0f}" for t, u in zip(mde["tasks"], mde["in_units"])) + ")") if math.isfinite(mde["d"]) else "?"
        claim = (f"**What this says.** The rule does not separate SMFP from SAC {scope}. That is not evidence that "
                 f"they are equal: this design detects a shift of {size} with 80 % power; smaller differences go "
                 "unseen.")
    else:
        top, low = ("SMFP", "SAC") if v["verdict"] == "SMFP ahead" else ("SAC", "SMFP")
        claim = (f"**What this says.** {top}'s final returns rank above {low}'s {scope}. That is all the rule "
                 "decides: not by how much (the secondary table), not on which task (the per-task tests are "
                 "secondary), not at equal wall-clock, other budgets, shapes, recipes or tasks.")
        if top == "SAC":
            claim += " The README's results line says so too."
    return claim


def _pm(mean: float, sd: float, digits: int = 0) -> str:
    return f"{mean:,.{digits}f} ± {sd:,.{digits}f}"


def _ms(row: dict) -> str:
    return _pm(row["final_mean"], row["final_sd"]) if row["final_n"] else "—"


def secondary_table(rows, tasks) -> list[str]:
    """Per task, SAC's and SMFP's finals and the exact Mann-Whitney test at equal env steps and at equal run clock."""
    lines = ["Per task: final return, mean ± s.d. over seeds; SMFP − SAC with its Welch 95 % interval; exact "
             "two-sided Mann-Whitney p (5 vs 5: the smallest possible is 0.008).", "",
             "| task | cut | SAC | SMFP | SMFP − SAC | Mann-Whitney p |", "|---|---|---|---|---|---|"]
    for task in tasks:
        for cut in ("env_steps", "wall_s"):
            both = finals_by_task(rows, [task], cut).get(task)
            if not both:
                continue
            c = next((v for v in both[NEW].get("versus", [])), None)
            where = f"{both[NEW]['at']:,.0f} env steps" if cut == "env_steps" else f"{both[NEW]['at']:,.0f} s run clock"
            diff = f"{c['diff_mean']:+,.0f} [{c['diff_ci_lo']:+,.0f}, {c['diff_ci_hi']:+,.0f}]" if c else "—"
            lines.append(f"| {task} | {where} | {_ms(both[BASE])} | {_ms(both[NEW])} | {diff} | "
                         f"{stats.format_p(c['p']) if c else '—'} |")
    return lines


def threshold_table(rows, tasks) -> list[str]:
    lines = ["Time to a return threshold: seeds that reached it, and their env steps and run clock to the first "
             "evaluation at or above it (mean ± s.d.).", "",
             "| task | threshold | SAC | SMFP |", "|---|---|---|---|"]
    for task in tasks:
        both = finals_by_task(rows, [task], "env_steps").get(task)
        if not both or "threshold" not in both[NEW]:
            continue

        def cell(r):
            s, t = r["steps_to_threshold"], r["time_to_threshold"]
            if not r["threshold_reached"]:
                return f"0/{r['seeds']}"
            return (f"{r['threshold_reached']}/{r['seeds']}: {_pm(s['mean'], s['sd'])} steps, "
                    f"{_pm(t['mean'], t['sd'])} s")
        lines.append(f"| {task} | {both[NEW]['threshold']:g} | {cell(both[BASE])} | {cell(both[NEW])} |")
    return lines


def normalised(finals: dict, records) -> dict:
    """IQM of each agent's normalised finals and P(SMFP > SAC), with rliable's bootstrap intervals."""
    scores, refs = {NEW: {}, BASE: {}}, {}
    for task, both in finals.items():
        first = [c[0]["return"] for r in records if r["task"] == task and r["agent"] in (NEW, BASE)
                 for c in r["curves"] if c and c[0].get("return") is not None]
        if task not in h2h.REFERENCE or not first:
            continue
        low, ref = float(np.mean(first)), h2h.REFERENCE[task]
        refs[task] = {"random": low, "reference": ref}
        for agent in (NEW, BASE):
            scores[agent][task] = (np.asarray(both[agent]["final_per_seed"]) - low) / (ref - low)
    out = {"normalisation": refs}
    for agent in (NEW, BASE):
        out[agent] = dict(zip(("iqm", "lo", "hi"), stats.iqm_interval(scores[agent]))) if scores[agent] else {}
    raw = {a: {t: f[a]["final_per_seed"] for t, f in finals.items()} for a in (NEW, BASE)}
    out["poi"] = dict(zip(("value", "lo", "hi"), stats.poi_interval(raw[NEW], raw[BASE])))
    return out


def aggregate_lines(agg: dict) -> list[str]:
    refs = agg["normalisation"]
    lines = ["Aggregates over tasks and seeds (rliable's definitions, Agarwal et al. 2021, in numpy: "
             "`metrics.aggregate_iqm`, `metrics.probability_of_improvement`, stratified bootstrap percentile 95 % "
             "intervals, runs resampled within each task; benchmarks/stats.py):", ""]
    for agent in (BASE, NEW):
        a = agg[agent]
        lines.append(f"- IQM of normalised final returns, {NAMES[agent]}: " + (
            f"{a['iqm']:.3f} [{a['lo']:.3f}, {a['hi']:.3f}]" if a else "— (no task with a reference return)"))
    p = agg["poi"]
    lines.append(f"- Probability of improvement P(SMFP > SAC), averaged over tasks: {p['value']:.3f} "
                 f"[{p['lo']:.3f}, {p['hi']:.3f}] (the same on raw or normalised returns: it uses ranks).")
    if refs:
        lines.append("- Normalisation (R − R_random) / (R_ref − R_random): R_random = the task's mean return at the "
                     "first (untrained) evaluation over all runs (" + ", ".join(
                         f"{t} {v['random']:,.1f}" for t, v in refs.items()) + f"); R_ref = {h2h.REFERENCE_SOURCE}.")
    return lines


def detectable(finals: dict, seeds: int) -> dict:
    """The minimum detectable effect of this design at each task's observed pooled s.d. of the finals."""
    sds = {}
    for task, both in finals.items():
        a, b = (np.asarray(both[x]["final_per_seed"], float) for x in (NEW, BASE))
        if a.size > 1 and b.size > 1:
            sds[task] = math.sqrt(((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2))
    if not sds:
        return {"d": math.nan, "tasks": [], "in_units": [], "sds": []}
    mde = stats.min_detectable_effect(list(sds.values()), n=seeds, m=seeds, alpha=h2h.ALPHA,
                                      sims=h2h.MDE_SIMULATIONS)
    return {**mde, "tasks": list(sds), "sds": list(sds.values())}


def mde_lines(mde: dict) -> list[str]:
    if not mde["tasks"]:
        return ["Minimum detectable effect: not computable yet (no task with two seeds of each agent)."]
    shift = (f"**{mde['d']:g} s.d.** (power {mde['power_at_d']:.2f})" if math.isfinite(mde["d"])
             else f"none up to 5 s.d.")
    return [f"Minimum detectable effect: {mde['n']} vs {mde['m']} normal draws per task at the task's observed pooled "
            f"s.d. of the finals, one agent shifted by d s.d., the exact van Elteren test at {mde['alpha']}, "
            f"{mde['sims']:,} simulations per d (step 0.05): the smallest d with power ≥ {mde['target_power']} is "
            f"{shift}; in return units " + ", ".join(f"{t} {u:,.0f} (s.d. {s:,.0f})" for t, u, s in zip(
                mde["tasks"], mde["in_units"], mde["sds"])) + f". Its rejection rate at d = 0: {mde['size']:.3f}. "
            "Ranks ignore a task's scale, so d itself does not depend on the spreads."]


def _spread(values, digits: int) -> str:
    v = stats.summary(values)
    return _pm(v["mean"], v["sd"], digits) if v["n"] else "—"


def diagnostics_table(study, rows, records, tasks) -> list[str]:
    """Per task and agent, each diagnostic over the evaluations the final return averages: mean ± s.d. over seeds."""
    lines = [f"Diagnostics at the budget, over the evaluations the final return averages (each seed's last "
             f"{study.final_evals}), mean ± s.d. over seeds: the returns and forward velocities of the deterministic "
             "and the stochastic policy, the k-NN estimate of the policy's action entropy on held-out states, the "
             "agent's own entropy estimate, SMFP's flow spread and sigma (— where the agent has none).", "",
             "| task | agent | " + " | ".join(name for _, name in DIAGNOSTICS) + " |",
             "|---|---|" + "---|" * len(DIAGNOSTICS)]
    for task in tasks:
        for agent in (BASE, NEW):
            row = next((r for r in rows if r["task"] == task and r["agent"] == agent and r["cut"] == "env_steps"), None)
            record = next((r for r in records if r["task"] == task and r["agent"] == agent), None)
            if row is None or record is None:
                continue
            cells = [_spread(report.metric_at_cut(record, metric, "env_steps", row["at"], study.final_evals),
                             0 if "return" in metric else 2) for metric, _ in DIAGNOSTICS]
            lines.append(f"| {task} | {NAMES[agent]} | " + " | ".join(cells) + " |")
    return lines


def cost_table(records, tasks) -> list[str]:
    """Each run's cost in the loop (report.costs) and where it ran; tasks not on one machine flagged."""
    lines = ["Cost in the loop, measured in these runs (all seeds counted; from the second evaluation to the last, "
             "run clock: evaluation and saves left out): env-steps/s, updates/s, the run clock at the first "
             "evaluation (building, compiling, the warm-up), at the end, the mean 1-minute load at the evaluations.",
             "", "| task | agent | env-steps/s | updates/s | first evaluation (s) | run clock (s) | load | machine | "
             "interruptions |", "|---|---|---|---|---|---|---|---|---|"]
    flagged = []
    for task in tasks:
        mine = [r for r in records if r["task"] == task and r["agent"] in (BASE, NEW)]
        for r in sorted(mine, key=lambda r: r["agent"]):
            c = report.costs(r)
            stops = [f"{len(r.get('resumes', []))} resume(s)"] if r.get("resumes") else []
            stops += [f"restarted after {x['env_steps']:,} env steps on {'; '.join(x.get('machines') or ['?'])}"
                      for x in r.get("restarts", [])]
            lines.append(f"| {task} | {NAMES[r['agent']]} | {c['env_steps_per_s']:,.0f} | {c['updates_per_s']:,.1f} | "
                         f"{c['first_eval_s']:,.0f} | {c['wall_s']:,.0f} | {c['load1']:.2f} | "
                         f"{'; then '.join(r.get('machines', [])) or '?'} | {', '.join(stops) or 'none'} |")
        if len({tuple(r.get("machines", [])) for r in mine}) > 1 or any(len(r.get("machines", [])) > 1 for r in mine):
            flagged.append(task)
    if flagged:
        lines += ["", f"**Not on one machine:** {', '.join(flagged)}: the agents' run clocks there do not compare."]
    return lines


def context_table(rows, context, tasks) -> list[str]:
    """SAC Flow and DIME (the context study) beside SAC and SMFP at the budget, labelled as context."""
    if not context:
        return ["Context (SAC Flow and DIME on their authors' recipes, not part of the rule): no runs yet."]
    ctx = [r for r in report.rows(h2h.CONTEXT, context) if r["cut"] == "env_steps"]
    lines = ["Context, **not part of the rule**: SAC Flow and DIME on their authors' recipes (n = 3) beside SAC "
             "and SMFP, final return (mean ± s.d. over seeds [Student-t 95 % interval]) at the env steps each reached.",
             "", "| task | run | status | n | final | at env steps |", "|---|---|---|---|---|---|"]
    for task in tasks:
        mine = [r for r in rows if r["task"] == task and r["cut"] == "env_steps" and r["agent"] in (BASE, NEW)]
        for r in mine + [r for r in ctx if r["task"] == task]:
            tag = "" if r["agent"] in (BASE, NEW) else " (context)"
            lo, hi = r["final_ci"]
            ci = f" [{lo:,.0f}, {hi:,.0f}]" if math.isfinite(lo) else ""
            lines.append(f"| {task} | {NAMES.get(r['agent'], r['agent'])}{tag} | {r['status']} | {r['final_n']} | "
                         f"{_ms(r)}{ci} | {r['at']:,.0f} |")
    return lines


def figures(records, context, out: str, tasks, plots: bool = True) -> list[str]:
    """Return against env steps and run clock (context dashed) and the diagnostics; the files' names
    (drawn only with `plots`)."""
    order = {task: i for i, task in enumerate(tasks)}
    runs = sorted([r for r in [*records, *context] if any(r["curves"])], key=lambda r: order.get(r["task"], len(order)))
    if not runs:
        return []
    dashed = {report.label(r) for r in context}
    names = ["head_to_head_steps.png", "head_to_head_clock.png", "head_to_head_diagnostics.png"]
    if not plots:
        return names
    outputs.plot_panels(runs, os.path.join(out, names[0]), x="env_steps", dashed=dashed)
    outputs.plot_panels(runs, os.path.join(out, names[1]), x="wall_s", dashed=dashed)
    outputs.plot_panels([r for r in runs if r in records], os.path.join(out, names[2]),
                        metrics=("knn_entropy", "flow_spread", "forward_velocity"))
    return names
