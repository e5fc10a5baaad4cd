"""The one command line of the benchmarks (CleanRL's benchmark.py: a study expands into ordinary
train calls of the library's loop):

    python -m benchmarks.harness run STUDY [--tasks a,b] [--agents a,b] [--variants a,b] [--seeds N] [--out DIR]
        [--budget 100k|30min] [--eval-every 5k|60s] [--checkpoint-every 100k|5min] [--smoke] [--field value ...]
    python -m benchmarks.harness report STUDY [--tasks/--agents/--variants ...] [--compare VARIANT|STUDY] [--no-plots]
    python -m benchmarks.harness results [--check]    # RESULTS.md's generated blocks from the reports
    python -m benchmarks.harness list [STUDY]          # the studies (benchmarks/studies/), their runs

`run` trains every unfinished selected (task, agent, variant) run, its seeds in one program; re-running
it continues where a run stopped; `--field value` overrides the study's configuration. `report` rewrites
OUT/report.{md,json,csv}, the curves and OUT/manifest.json from the records; `--compare` compares each
run with a variant (paired seeds) or the same run of another study (OUT/compare_<base>.*). `--smoke`
runs the whole path at toy sizes in a temporary folder. A study's `context` studies train after it
into sibling folders; its report shows them beside its own, outside its rule.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import sys
import tempfile

from benchmarks.harness import outputs, report
from benchmarks.harness.spec import Against, Group
from benchmarks.harness.store import Store

# --smoke: any study's path (train, resume/skip, report) on the bandit, seconds of training.
SMOKE = dict(tasks="multimodal", seeds=2, budget="624",
             overrides=dict(num_envs=4, batch_size=32, replay_capacity=2048, learning_starts=64, iterations_per_call=20,
                            updates_per_step=1, eval_interval=160, eval_episodes=4, checkpoint_interval=0,
                            actor_hidden="32,32", critic_hidden="32,32", episode_length=1))


def common_flags(parser: argparse.ArgumentParser) -> None:
    """The flags every benchmark command shares (the harness's and benchmarks.speed's)."""
    parser.add_argument("--tasks", default="", help="comma-separated tasks (default: the study's)")
    parser.add_argument("--agents", default="", help="comma-separated registered agents (default: the study's)")
    parser.add_argument("--seeds", type=int, default=0, help="seeds 0..N-1, one vmap axis (default: the study's)")
    parser.add_argument("--out", default="", help="results folder (default: benchmarks/results/<study>)")
    parser.add_argument("--smoke", action="store_true", help="the whole path at toy sizes, into a temporary --out")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m benchmarks.harness", description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True)
    for name in ("run", "report"):
        p = sub.add_parser(name)
        p.add_argument("study")
        common_flags(p)
        p.add_argument("--variants", default="", help="comma-separated variants of the study (default: all)")
    run_p, report_p = sub.choices["run"], sub.choices["report"]
    run_p.add_argument("--budget", default="", help="end of each run: env steps (100k) or run clock (30min)")
    run_p.add_argument("--eval-every", default="", help="with a run-clock budget: seconds between evaluations (60s)")
    run_p.add_argument("--checkpoint-every", default="", help="with a run-clock budget: between checkpoints (5min)")
    report_p.add_argument("--compare", default="", help="a variant of the study (paired seeds) or another study")
    report_p.add_argument("--no-plots", action="store_true", help="tables only")
    sub.add_parser("results").add_argument("--check", action="store_true", help="exit 1 if a block is out of date")
    sub.add_parser("list").add_argument("study", nargs="?")
    return top


def split(text: str, default) -> list[str]:
    return [x for x in text.split(",") if x] if text else list(default)


def selection(study, args) -> list[tuple[str, str, str]]:
    """The (task, agent, variant) runs the command names, in order."""
    import envs
    from mjx_smfp import agents

    tasks, names = split(args.tasks, study.tasks), split(args.agents, study.agents)
    for kind, given, known in (("task", tasks, envs.names()), ("agent", names, agents.names())):
        unknown = [x for x in given if x not in known]
        if unknown:
            raise ValueError(f"unknown {kind}(s) {unknown}; known: {', '.join(known)}")
    return list(itertools.product(tasks, names, split(args.variants, study.variants)))


def chosen(store: Store, args) -> list[dict]:
    """The records of `store` among the runs the command names (all where it names none)."""
    keys = (("tasks", "task"), ("agents", "agent"), ("variants", "variant"))
    return [r for r in store.records()
            if all(not getattr(args, flag) or r.get(key, "") in split(getattr(args, flag), ()) for flag, key in keys)]


def command_line(argv: list[str]) -> str:
    return "python -m benchmarks.harness " + " ".join(a if a and " " not in a else repr(a) for a in argv)


def run(study, args, overrides: dict, command: str, stop=None) -> None:
    from benchmarks import machine, studies
    from benchmarks.harness.train import train
    from mjx_smfp import compile_cache
    from mjx_smfp.runner import StopFlag

    compile_cache.configure()  # $JAX_COMPILATION_CACHE_DIR, if set: resumed invocations compile faster
    store, runs, stop = Store(args.out), selection(study, args), stop or StopFlag()
    print(f"[harness] {study.name}: {len(runs)} runs, {args.seeds} seeds each -> {args.out}; {machine.summary()}",
          flush=True)
    for i, (task, agent, variant) in enumerate(runs):
        print(f"[harness] run {i + 1}/{len(runs)}: {task}/{agent}{'/' + variant if variant else ''}", flush=True)
        train(study, store, task, agent, variant, seeds=args.seeds, overrides=overrides, budget=args.budget,
              eval_every=args.eval_every, checkpoint_every=args.checkpoint_every, stop=stop, command=command,
              max_calls=getattr(args, "max_calls", None))
        if stop.requested:
            print("[harness] stopped; re-run the same command to continue", flush=True)
            return
    for name, sub in context_args(study, args):  # beside the study's runs, never in its rule
        print(f"[harness] {study.name}: its context, {name} -> {sub.out}", flush=True)
        run(studies.get(name), sub, overrides, command, stop)
        write_report(studies.get(name), argparse.Namespace(**{**vars(sub), "tasks": ""}),
                     command_line(["report", name] + [f"--out={sub.out}"] * args.smoke))
        if stop.requested:
            return


def context_out(out: str, name: str) -> str:
    """Where a study's context study `name` writes: beside the study's folder."""
    return os.path.join(os.path.dirname(os.path.abspath(out)), name)


def context_args(study, args) -> list[tuple[str, argparse.Namespace]]:
    """The context studies `run` trains after the study (none when it names agents or variants): on the
    named tasks they have, with their own seeds (--smoke: the smoke's task and seeds)."""
    from benchmarks import studies

    out = []
    for name in () if args.agents or args.variants else study.context:
        other = studies.get(name)
        tasks = split(args.tasks, study.tasks) if args.smoke else [t for t in split(args.tasks, other.tasks)
                                                                     if t in other.tasks]
        if tasks:
            out.append((name, argparse.Namespace(**{**vars(args), "tasks": ",".join(tasks), "compare": "",
                                                    "seeds": args.seeds if args.smoke else other.seeds,
                                                    "out": context_out(args.out, name), "no_plots": False})))
    return out


def write_report(study, args, command: str) -> list[dict]:
    """Rows (and pooled rows) of the selected records, written as OUT/<name>.{md,json,csv}, plots."""
    from benchmarks import studies

    records = chosen(Store(args.out), args)
    if args.compare:
        if args.compare in study.variants:
            against = Against("variant", args.compare, ("agent",), paired=True)
        else:
            against = Against("study", studies.get(args.compare).name, ("task", "agent", "variant"))
            records += chosen(Store(studies.default_out(args.compare)), args)
        study = dataclasses.replace(study, groups=(Group(against=(against,)),), pooled=None)
    name = f"compare_{args.compare}" if args.compare else "report"
    rows = report.rows(study, records)
    pooled = report.pooled(rows, study.pooled, study.groups[0].name) if study.pooled else []
    stem = os.path.join(args.out, name)
    text, analysis, files = report.markdown(study, rows, pooled), {}, [f"{name}.md", f"{name}.json", f"{name}.csv"]
    if study.analysis is not None and not args.compare:
        context = [r for n in study.context for r in chosen(Store(context_out(args.out, n)), args)]
        head, analysis, figures = study.analysis(study, rows, pooled, records, context, out=args.out,
                                                 plots=not args.no_plots)
        text, files = head + ("\n" + text if rows else ""), files + figures
    os.makedirs(args.out, exist_ok=True)
    with open(stem + ".md", "w") as f:
        f.write(text)
    outputs.write_rows(stem, rows, study=study.name, pooled=pooled, **({"analysis": analysis} if analysis else {}))
    if not args.no_plots and not args.compare and study.analysis is None:
        for task in dict.fromkeys(r["task"] for r in records):
            paths = [Store(args.out).record_path(r["task"], r["agent"], r.get("variant", "")) for r in records
                     if r["task"] == task and any(r["curves"])]
            files += [os.path.basename(p) for p in outputs.plot(paths, args.out, task)] if paths else []
    outputs.note_manifest(args.out, name, command, files)
    print(text, flush=True)
    return rows


def results(check: bool) -> int:
    with open(outputs.RESULTS_MD) as f:
        text, changed = outputs.assemble(f.read())
    if check:
        print("\n".join(f"out of date: {c}" for c in changed) or "RESULTS.md's generated blocks are up to date")
        return 1 if changed else 0
    with open(outputs.RESULTS_MD, "w") as f:
        f.write(text)
    print(f"RESULTS.md: {len(changed)} generated block(s) rewritten")
    return 0


def main(argv: list[str] | None = None, *, max_calls=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args, rest = parser().parse_known_args(argv)
    from benchmarks import studies

    if args.command == "results":
        return results(args.check)
    if args.command == "list":
        return print(studies.describe(args.study))
    study = studies.get(args.study)
    from mjx_smfp import cli

    overrides = cli.parse_cli_pairs(rest)
    if rest and args.command == "report":
        raise ValueError(f"report takes no config options (got {' '.join(rest)})")
    if args.smoke:
        args.tasks, args.seeds, args.budget = SMOKE["tasks"], args.seeds or SMOKE["seeds"], SMOKE["budget"]
        overrides = {**SMOKE["overrides"], **overrides}
        args.out = args.out or os.path.join(tempfile.mkdtemp(prefix=f"{study.name}_smoke_"), study.name)
    args.out = args.out or studies.default_out(study.name)
    args.seeds = args.seeds or study.seeds
    args.max_calls = max_calls
    if args.command == "report":
        return write_report(study, args, command_line(argv))
    run(study, args, overrides, command_line(argv))
    args.no_plots, args.compare = False, ""
    if not args.smoke:  # the report of every run of the study, as `report STUDY` writes it
        args.tasks = args.agents = args.variants = ""
    return write_report(study, args, command_line(["report", args.study] + [f"--out={args.out}"] * args.smoke))
