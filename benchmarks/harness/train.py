"""Train (or continue) one run of a study through the library's loop (`mjx_smfp.runner.run`), rewriting
its record at every evaluation, so a run cut short keeps what it measured and re-running the command
continues it from its checkpoint (without one, it is trained again and the lost attempt listed under
`restarts`). A finished run is skipped, one whose loss went non-finite recorded as failed; with the
study's `restart_crashed`, a run whose record still says "running" starts over, its directory set aside.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import os

from benchmarks import machine
from benchmarks.harness import spec as spec_lib
from benchmarks.harness.store import Store, note_machine


def train(study: spec_lib.Study, store: Store, task: str, agent: str, variant: str, *, seeds: int,
          overrides: dict, budget: str = "", eval_every: str = "", checkpoint_every: str = "", stop=None,
          command: str = "", max_calls=None, verbose: bool = True) -> dict:
    """Train one run with `seeds` seeds in one program; returns its record. `max_calls` stops after that
    many train calls, as an interruption would."""
    from mjx_smfp import config as config_lib
    from mjx_smfp.engine import Engine
    from mjx_smfp.runner import NonFiniteError, RunClock, run

    name = f"{study.name}: {task}/{agent}{'/' + variant if variant else ''}"
    old = store.load(task, agent, variant)
    prior = old or {}
    over = {**spec_lib.predating(old), **overrides, **spec_lib.budget_overrides(budget)}
    cfg, agent_cfg = spec_lib.config(study, task, agent, variant, seeds, over, store.run_dir(task, agent, variant))
    config = json.loads(json.dumps(config_lib.to_dict(cfg, agent_cfg)))
    store.guard(task, agent, variant, config)
    if spec_lib.finished(old, spec_lib.budget_seconds(study, budget)):
        print(f"[harness] {name}: {old['status']} already ({old.get('reason', '')}); skipped", flush=True)
        return old
    if study.restart_crashed and old and old["status"] == "running":
        set_aside(store.run_dir(task, agent, variant), name)
    clock = RunClock()  # from here: building and compiling the engine count
    engine = Engine(cfg, agent_cfg)
    sched = spec_lib.schedule(study, engine, budget, eval_every, checkpoint_every)
    record = {"study": study.name, "task": task, "agent": agent, "variant": variant, "seeds": seeds,
              "status": "running", "reason": "", "env_steps": 0, "updates": 0, "wall_s": 0.0,
              "curves": [[] for _ in range(seeds)], "config": config,
              "overrides": study.overrides(task, agent, variant), "schedule": dataclasses.asdict(sched),
              "machines": [], "resumes": [], "restarts": list(prior.get("restarts", [])), "command": command}
    note_machine(record, machine.summary())

    resumed = []

    def on_resume(info: dict) -> None:
        resumed.append(info)
        previous = old or {"curves": record["curves"]}
        record["curves"] = [[p for p in c if p["env_steps"] <= info["at_env_steps"]] for c in previous["curves"]]
        lost = max(0.0, prior.get("wall_s", 0.0) - info["at_wall_s"])
        record["resumes"] = [*prior.get("resumes", []), {**info, "lost_wall_s": round(lost, 1),
                                                          "machine": machine.summary()}]
        record["machines"] = list(prior.get("machines", []))  # the run goes on: so does its list
        note_machine(record, machine.summary())
        print(f"[harness] {name}: resumed at {info['at_wall_s']:.0f} s of run clock, env step "
              f"{info['at_env_steps']:,} (restore and recompile {info['overhead_s']:.0f} s, not counted)", flush=True)

    def on_eval(evaluation) -> None:
        if old and not resumed and not any(record["curves"]):
            print(f"[harness] {name}: no checkpoint of the recorded run here (a fresh clone?): trained again from "
                  "the start; its record is replaced (the lost attempt is noted under `restarts`)", flush=True)
            record["restarts"].append({key: old.get(key) for key in ("status", "env_steps", "wall_s", "machines")})
        load1 = round(os.getloadavg()[0], 2)  # the machine's load as each evaluation is recorded
        for curve, point in zip(record["curves"], evaluation.points()):
            curve.append({**point, "load1": load1})
        record.update(env_steps=evaluation.env_steps, updates=evaluation.updates, wall_s=round(evaluation.seconds, 1),
                      status="done" if evaluation.final else "running",
                      reason=("env_steps" if evaluation.env_steps >= sched.env_steps else "budget")
                      if evaluation.final else "")
        store.save(record)

    try:
        run(engine, store.run_dir(task, agent, variant), schedule=sched, clock=clock, resume=True, stop=stop,
            on_eval=on_eval, on_resume=on_resume, max_calls=max_calls, verbose=verbose)
    except NonFiniteError as err:
        record.update(status="failed", reason=str(err))
        store.save(record)
        print(f"[harness] {name}: FAILED: {err}", flush=True)
        return record
    if record["status"] != "done":
        record["status"] = "stopped"
        store.save(record)
    print(f"[harness] {name}: {record['status']} at {record['wall_s']:,.0f} s of run clock, {record['env_steps']:,} "
          f"env steps per seed" + ("; re-run the same command to continue" if record["status"] == "stopped" else ""),
          flush=True)
    return record


def set_aside(run_dir: str, name: str) -> None:
    """Move a crashed run's directory to <run_dir>.crashed-<k> (kept, not resumed)."""
    if not os.path.isdir(run_dir):
        return
    k = next(k for k in itertools.count(1) if not os.path.exists(f"{run_dir}.crashed-{k}"))
    os.rename(run_dir, f"{run_dir}.crashed-{k}")
    print(f"[harness] {name}: its record says it was running when its process ended (a crash): trained again "
          f"from the start; the crashed run's directory is {run_dir}.crashed-{k}", flush=True)
