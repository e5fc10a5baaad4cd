"""Reports from records (rliable's idea: one score layout every analysis consumes): per task and group,
each run's final and best return at equal env steps, equal run clock or its own end (mean ± s.d. over
seeds, Student-t interval), the comparisons the study's rule names, a stratified test pooled over tasks,
time to a threshold, published returns. Pure functions of the records, so RESULTS.md's generated blocks
can be checked against them."""
from __future__ import annotations

import itertools
import math

import numpy as np

from benchmarks import stats
from benchmarks.harness.spec import Against, Study

LEVEL = 0.95
CUT_NAMES = {"env_steps": "equal env steps", "wall_s": "equal run clock", "end": "each run's end"}


def _value(x) -> float:
    return math.nan if x is None else float(x)


def label(record: dict, mixed_studies: bool = False) -> str:
    parts = (record.get("study", "") if mixed_studies else "", record["agent"], record.get("variant", ""))
    return "/".join(p for p in parts if p)


def reached(record: dict, key: str) -> float:
    """How far a run got along `key` (env_steps, wall_s): the least over seeds of its last evaluation."""
    if record.get("lost"):
        return record["lost"]["env_steps"] if key == "env_steps" else math.nan
    return min((_value(c[-1].get(key)) for c in record["curves"] if c), default=0.0)


def _upto(points: list[dict], key: str, limit: float) -> list[dict]:
    """The evaluations with `key` <= `limit` ("end": all of them)."""
    return points if key == "end" else [p for p in points if _value(p.get(key)) <= limit]


def at_cut(points: list[dict], key: str, limit: float, final_evals: int):
    """One seed's (final, best, first and last env steps of the final's window) over its evaluations up
    to the cut; final = mean of the last `final_evals`."""
    kept = _upto(points, key, limit)
    if not kept:
        return math.nan, math.nan, None
    returns = np.array([_value(p["return"]) for p in kept])
    with np.errstate(all="ignore"):
        return (float(np.nanmean(returns[-final_evals:])), float(np.nanmax(returns)),
                (kept[-final_evals:][0]["env_steps"], kept[-1]["env_steps"]))


def cells(record: dict, key: str, limit: float, final_evals: int) -> dict:
    """final_* and best_* over seeds (per seed, mean, s.d., n, interval) and the final's window."""
    if record.get("lost"):
        lost = record["lost"]
        finals, bests, window = lost["final_per_seed"], lost["best_per_seed"], lost["window"]
    else:
        per_seed = [at_cut(c, key, limit, final_evals) for c in record["curves"] if c]
        finals, bests = [v[0] for v in per_seed], [v[1] for v in per_seed]
        windows = [v[2] for v in per_seed if v[2]]
        window = [min(w[0] for w in windows), max(w[1] for w in windows)] if windows else None
    out = {"window": window}
    for name, values in (("final", finals), ("best", bests)):
        s = stats.summary(values, LEVEL)
        out.update({f"{name}_per_seed": [float(v) for v in values], f"{name}_mean": s["mean"], f"{name}_sd": s["sd"],
                    f"{name}_n": s["n"], f"{name}_ci": s["ci"]})
    return out


def to_threshold(record: dict, threshold: float) -> dict:
    """Per seed, the run clock and env steps of the first evaluation at or above `threshold`."""
    firsts = [next((p for p in c if _value(p["return"]) >= threshold), None) for c in record["curves"]]
    hits = [p for p in firsts if p]
    return {"threshold": threshold, "threshold_reached": len(hits),
            "time_to_threshold": stats.summary([_value(p.get("wall_s")) for p in hits]),
            "steps_to_threshold": stats.summary([p["env_steps"] for p in hits])}


def metric_at_cut(record: dict, metric: str, key: str, limit: float, final_evals: int) -> list[float]:
    """Per seed, the mean of `metric` over the evaluations its final return averages; nan where none has it."""
    out = []
    for points in record["curves"]:
        values = np.array([_value(p.get(metric)) for p in _upto(points, key, limit)[-final_evals:]])
        out.append(float(np.nanmean(values)) if np.isfinite(values).any() else math.nan)
    return out


def costs(record: dict) -> dict:
    """What a run cost in the loop: env-steps/s and updates/s of all seeds from its second evaluation to
    its last (the first train call's compile left out), the run clock at its first and last, the mean load."""
    curve = next((c for c in record["curves"] if c), [])
    loads = [p["load1"] for p in curve if p.get("load1") is not None]
    out = {"first_eval_s": _value(curve[0]["wall_s"]) if curve else math.nan,
           "wall_s": _value(curve[-1]["wall_s"]) if curve else math.nan, "env_steps_per_s": math.nan,
           "updates_per_s": math.nan, "load1": float(np.mean(loads)) if loads else math.nan}
    if len(curve) >= 3:
        a, b, seeds = curve[1], curve[-1], len(record["curves"])
        seconds = _value(b["wall_s"]) - _value(a["wall_s"])
        out.update(env_steps_per_s=seeds * (b["env_steps"] - a["env_steps"]) / seconds,
                   updates_per_s=seeds * (_value(b.get("updates")) - _value(a.get("updates"))) / seconds)
    return out


def rows(study: Study, records: list[dict]) -> list[dict]:
    """One row per run, group and cut: where it is cut (`at`), how far it got, its cells."""
    mixed = len({r.get("study", study.name) for r in records}) > 1
    order = {name: i for i, name in enumerate([*study.agents, *study.variants])}
    records = sorted(records, key=lambda r: (r.get("study", "") != study.name, order.get(r["agent"], len(order)),
                                             order.get(r.get("variant", ""), len(order))))
    tasks = list(dict.fromkeys([*study.tasks, *(r["task"] for r in records)]))
    out = []
    for task in tasks:
        for group in study.groups:
            mine = [r for r in records if r["task"] == task and (r.get("lost") or any(r["curves"]))]
            members = [r for r in mine if group.select(r, mine)]
            for key in study.cuts:
                limit = min((reached(r, key) for r in members), default=0.0) if key != "end" else math.nan
                for r in members:
                    row = {"task": task, "group": group.name, "run": label(r, mixed), "study": r.get("study", study.name),
                           "agent": r["agent"], "variant": r.get("variant", ""), "status": r["status"],
                           "seeds": len(r["curves"]) or len(r.get("lost", {}).get("final_per_seed", [])), "cut": key,
                           "at": limit, "reached_env_steps": reached(r, "env_steps"), "reached_wall_s": reached(r, "wall_s"),
                           "updates": r.get("updates"), "trained_on": r.get("machines", []),
                           **cells(r, key, limit, study.final_evals)}
                    if r.get("lost"):
                        row["source"] = r["lost"]["source"]
                    if task in study.thresholds and not r.get("lost"):
                        row.update(to_threshold(r, study.thresholds[task]))
                    out.append(row)
            for against in group.against:
                compare_all(out, task, group.name, against)
    return out


def compare_all(rows_: list[dict], task: str, group: str, against: Against) -> None:
    """Add to each row of (task, group) the comparison `against` names (`row["versus"]`)."""
    mine = [r for r in rows_ if r["task"] == task and r["group"] == group]
    for row in mine:
        if row[against.field] == against.value or (against.only is not None and not against.only(row)):
            continue
        base = [b for b in mine if b[against.field] == against.value and b["cut"] == row["cut"]
                and all(b[m] == row[m] for m in against.match)]
        if base and row["final_n"] and base[0]["final_n"]:
            c = stats.compare(row["final_per_seed"], base[0]["final_per_seed"], paired=against.paired, level=LEVEL)
            if against.paired:
                d = [a - b for a, b in zip(row["final_per_seed"], base[0]["final_per_seed"])]
                c.update(diff_per_seed=d, wins=int(sum(x > 0 for x in d)))
            c.update(against=base[0]["run"], verdict=stats.describe(c, (row["run"], base[0]["run"])))
            row.setdefault("versus", []).append(c)


def pooled(rows_: list[dict], rule: Against, group: str = "") -> list[dict]:
    """Each variant (or agent) against `rule.value` over every (task, other key) stratum that has both, per
    cut and `match` value ("all": every stratum): the exact stratified rank test of the finals."""
    rows_ = [r for r in rows_ if r["group"] == group]
    other = rule.match[0] if rule.match else "agent"
    bases = {(b["cut"], b["task"], b[other]): b for b in reversed(rows_) if b[rule.field] == rule.value}
    values = dict.fromkeys(r[rule.field] for r in rows_ if r[rule.field] != rule.value)
    out = []
    for value, cut, which in itertools.product(values, dict.fromkeys(r["cut"] for r in rows_),
                                               sorted({r[other] for r in rows_}) + ["all"]):
        pairs = [(r, bases.get((cut, r["task"], r[other]))) for r in rows_
                 if r[rule.field] == value and r["cut"] == cut and which in ("all", r[other])]
        strata = [(r, b) for r, b in pairs if b and r["final_n"] and b["final_n"]]
        if strata:
            p = stats.stratified_rank_sum([(r["final_per_seed"], b["final_per_seed"]) for r, b in strata])
            out.append({rule.field: value, "against": rule.value, "cut": cut, other: which, "strata": len(strata),
                        "strata_higher": sum(r["final_mean"] > b["final_mean"] for r, b in strata), "p": p,
                        "resolved": bool(p < 1 - LEVEL),
                        "which": ", ".join(f"{r['task']}/{r[other]}" for r, _ in strata)})
    return out


def _steps(n: float) -> str:
    return f"{n / 1e6:g}M" if n >= 1e6 else f"{n / 1e3:g}K" if n >= 1e3 else f"{n:g}"


def _at(row: dict) -> str:
    if row["cut"] == "env_steps":
        return f"@ {row['at']:,.0f} env steps"
    return f"@ {row['at']:,.0f} s" if row["cut"] == "wall_s" else "at its end"


def _num(x: float, small: bool) -> str:
    """A return: 3 decimals where returns are small (the bandit's are in [0, 1]), else 1."""
    return f"{x:,.3f}" if small else f"{x:,.1f}"


def _cell(row: dict, name: str) -> str:
    if not row[f"{name}_n"]:
        return "—"
    small = abs(row[f"{name}_mean"]) < 10
    lo, hi = row[f"{name}_ci"]
    ci = f" [{_num(lo, small)}, {_num(hi, small)}]" if math.isfinite(lo) else ""
    window = row["window"]
    over = f" over {_steps(window[0])}-{_steps(window[1])}" if name == "final" and window and window[0] != window[1] else ""
    return f"{_num(row[f'{name}_mean'], small)} ± {_num(row[f'{name}_sd'], small)}{ci}{over}"


def _reached(row: dict) -> str:
    clock = f"{row['reached_wall_s']:,.0f} s, " if math.isfinite(row["reached_wall_s"]) else ""
    updates = f", {row['updates']:,}" if row.get("updates") else ""
    return f"{clock}{row['reached_env_steps']:,.0f}{updates}"


def _threshold(row: dict) -> str:
    if "threshold" not in row:
        return ""
    t, s = row["time_to_threshold"], row["steps_to_threshold"]
    both = (f"{t['mean']:,.0f} ± {t['sd']:,.0f} s, {s['mean']:,.0f} ± {s['sd']:,.0f} steps"
            if row["threshold_reached"] else "—")
    return f" {row['threshold_reached']}/{row['seeds']} (≥ {row['threshold']:g}): {both} |"


def comparison_line(row: dict, c: dict) -> str:
    paired = f"; per seed {', '.join(f'{d:+,.1f}' for d in c['diff_per_seed'])} (won {c['wins']})" if c["paired"] else ""
    welch = f", p = {stats.format_p(c['welch_p'])}" if math.isfinite(c["welch_p"]) else ""
    return (f"- {row['run']} vs {c['against']}, {CUT_NAMES[row['cut']]}: difference {c['diff_mean']:+,.1f} "
            f"[{c['diff_ci_lo']:+,.1f}, {c['diff_ci_hi']:+,.1f}] ({c['interval']} {100 * LEVEL:g} %{welch}){paired}; "
            f"{c['verdict']}.")


def published_lines(study: Study, task: str, mine: list[dict]) -> list[str]:
    out = []
    for method, value in study.published.get(task, {}).items():
        for r in (r for r in mine if math.isfinite(r["final_ci"][0]) and r["cut"] != "wall_s"):
            lo, hi = r["final_ci"]
            where = "inside" if lo <= value <= hi else "above" if value > hi else "below"
            budget = ("the same budget" if r["reached_env_steps"] >= study.published_steps else
                      f"{_steps(study.published_steps)} vs our {_steps(r['reached_env_steps'])} steps: not comparable yet")
            out.append(f"- published {method} {value:,g} is {where} the interval of our {r['run']} ({budget}).")
    return out


def markdown(study: Study, rows_: list[dict], pooled_rows: list[dict]) -> str:
    final = ("each seed's last deterministic evaluation up to the cut" if study.final_evals == 1 else
             f"the mean of each seed's last {study.final_evals} deterministic evaluations up to the cut, over the env "
             "steps shown")
    lines = [f"Cells: mean ± s.d. over the n seeds [Student-t {100 * LEVEL:g} % interval of the mean] of the final "
             f"return ({final}) and the best return up to the cut. Comparisons: the difference of the finals with "
             "its interval; \"resolved\" only where the exact test (Mann-Whitney, or signed-rank on paired seeds) "
             f"gives p < {1 - LEVEL:.2g}.", ""]
    for task, group in dict.fromkeys((r["task"], r["group"]) for r in rows_):
        mine = [r for r in rows_ if r["task"] == task and r["group"] == group]
        cuts = list(dict.fromkeys(r["cut"] for r in mine))
        first = {c: next(r for r in mine if r["cut"] == c) for c in cuts}
        thresholds = f" reached {first[cuts[0]]['threshold']:g} (clock, env steps) |" if "threshold" in mine[0] else ""
        lines += [f"### {task}{' — ' + group if group else ''}", "",
                  "| run | status | n | " + " | ".join(f"final {_at(first[c])} | best {_at(first[c])}" for c in cuts)
                  + f" | reached (clock, env steps, updates) |{thresholds}",
                  "|---|---|---|" + "---|---|" * len(cuts) + "---|" + ("---|" if thresholds else "")]
        for run in dict.fromkeys(r["run"] for r in mine):
            by_cut = {r["cut"]: r for r in mine if r["run"] == run}
            r = by_cut[cuts[0]]
            lines.append(f"| {run} | {r['status']} | {r['final_n']} | "
                         + " | ".join(f"{_cell(by_cut[c], 'final')} | {_cell(by_cut[c], 'best')}" for c in cuts)
                         + f" | {_reached(r)} |{_threshold(r)}")
        lines += [""] + [comparison_line(r, c) for r in mine for c in r.get("versus", [])]
        lines += published_lines(study, task, [r for r in mine if r["cut"] == cuts[0]])
        lines += [f"- {run}: {r['source']}." for run, r in {r["run"]: r for r in mine if r.get("source")}.items()]
        lines += [f"- {run} trained on: {'; then '.join(r['trained_on'])}."
                  for run, r in {r["run"]: r for r in mine if r["trained_on"]}.items()] + [""]
    if pooled_rows:
        field = next(k for k in pooled_rows[0] if k in ("agent", "variant"))  # the rule's field comes first
        other = next(k for k in pooled_rows[0] if k in ("agent", "variant") and k != field)
        lines += [f"### Pooled over tasks: each {field} against `{pooled_rows[0]['against']}`", "",
                  "Exact two-sided van Elteren test (Mann-Whitney ranks within each stratum, benchmarks/stats.py "
                  "`stratified_rank_sum`) on the per-seed finals.", "",
                  f"| {field} | cut | {other} | strata | higher mean in | p | verdict |", "|---|---|---|---|---|---|---|"]
        for p in pooled_rows:
            verdict = (f"resolved: {p[field]} {'>' if 2 * p['strata_higher'] > p['strata'] else '<'} {p['against']}"
                       if p["resolved"] else "not resolved")
            lines.append(f"| {p[field]} | {CUT_NAMES[p['cut']]} | {p[other]} | {p['strata']} ({p['which']}) | "
                         f"{p['strata_higher']} of {p['strata']} | {stats.format_p(p['p'])} | {verdict} |")
        lines.append("")
    return "\n".join(lines)
