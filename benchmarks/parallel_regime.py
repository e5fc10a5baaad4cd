"""The parallel-regime benchmark (issue 23, items 2-3): recipes of the massively parallel regime
(many envs, `gpu` physics, batch >= 2x envs, many gradient samples per transition) against
wall-clock and against env steps, all seeds of one (task, agent, recipe) in ONE program.

    python -m benchmarks.parallel_regime --task halfcheetah --agent sac --recipe today --seeds 3
        --budget-minutes 30 [--scale cpu|gpu] [--out DIR] [--eval-every-s 60] [--checkpoint-every-minutes 5]
        [--compile-cache] [--field value ...]
    python -m benchmarks.parallel_regime --report [--out DIR]       # tables + PNGs from the records
    python -m benchmarks.parallel_regime --list-recipes [--agent sac]

Scales. `gpu` is the `fast` preset itself: 4096 envs, batch 8192, 8 updates per iteration, a ring of
1024 rows per env, critic 1024-512-256, actor 512-256-128 (the GPU experiment: the same command).
`cpu` scales it down to 2 CPU cores keeping its shape: `gpu` physics, 256 envs, batch 1024 (4x envs),
4 updates per iteration, so updates x batch / envs = 16 gradient samples per transition as at `fast`
(8 x 8192 / 4096), the same 1024 ring rows and 10 warm-up iterations per env. Its networks are
smaller than fast's, chosen by measuring one iteration (256 envs x 3 seeds stepped, 4 updates x 3
seeds at batch 1024; halfcheetah, `gpu` physics, SAC, 3 seeds vmapped) on this 2-core CPU on
2026-12-03, while ~5 other jobs shared the cores, so the loads differ and the figures are rough:
- fast's networks (critic 1024-512-256, actor 512-256-128): 32 s per iteration at load ~15
  (compile 441 s + init/warm-up 297 s): 224 updates and 14K env steps per seed in 30 minutes;
- critic 256-256-256, actor 256-256: 0.7-1.8 s per iteration, 0.93 s on average over its first
  minute of training, at load ~2-7 (the real run's own progress lines; build + compile + warm-up
  ~500 s at load ~10): ~1,500 iterations = ~6K updates and ~380K env steps per seed in the ~22
  minutes left after compiling.
By multiply-adds per sample the fast critic costs 5.0x this one (679K vs 137K) and the actor 2.4x,
so at equal load fast's networks would take roughly 4x as long per update: ~1-2K updates in a
30-minute run, too few for a locomotion task to leave its start. So `cpu` uses critic 256-256-256
(the `cpu`/`paper` presets' width, known to learn these tasks) and actor 256-256 (narrower than
the critic, as fast's is); everything else keeps fast's shape. The GPU runs fast's own networks.

Recipes (`RECIPES`) are named dicts of config overrides applied on top of the scale: `today` = the
`fast` recipe before issue 23 (every agent's Config defaults), `reference` = what FastSAC / FastTD3
/ FlashSAC / PQL do (PARALLEL.md's table; each value cites its source in
mjx_smfp/recipes.REFERENCE_PARTS), and per part P of the reference `reference-minus-P` (the
reference with P left at today's values) and `today-plus-P`. Every recipe sets every field the
reference touches (`recipe_overrides`), so it means the same run whatever the `fast` preset's own
recipe for the agent is (SMFP's is now the reference: config.AGENT_PRESETS). A recipe needing
fields this checkout lacks is refused at start-up naming them (`--list-recipes`).

One run: `--seeds N` seeds (0..N-1, `num_seeds`, a vmap axis) of one (task, agent, recipe) are
trained by the `Engine`'s compiled phases in one process under a wall-clock budget. The run clock
COUNTS building, compiling (the persistent compilation cache is off unless `--compile-cache`),
warm-up and training; it EXCLUDES evaluation and checkpoint saves. Evaluation is deterministic
(`eval_act`, `eval_episodes` episodes per seed, all seeds in one call) every `--eval-every-s` of
run clock, after warm-up and at the end; each point has wall_s, env_steps (per seed) and updates.
A chunk is not started when the last chunk's duration would take the clock past the budget; the
run also ends at `total_env_steps` (a cap, 1e12 by default: the budget ends it).

Resumable: a checkpoint of the full train state (the replay ring too at `cpu` scale; at `gpu`
scale the ring is refilled by a warm-up, as `fast` does) every `--checkpoint-every-minutes` of run
clock, at the end and on SIGINT/SIGTERM, with `clock.json` beside it (the run clock and the
evaluations at that checkpoint). Re-running the same command continues from there with the clock
carried over: evaluations after the checkpoint are dropped (that stretch is trained again), and the
restart's own cost (restore, recompile, a refill) is not counted, only recorded (`resumes`). A
finished run is skipped unless `--budget-minutes` grew (then it continues). A command whose
configuration differs from a saved run's (run dir or record) is refused naming the fields
(`paper_table.config_changes`): give a variant another --recipe or --out.

Records (`OUT/records/<task>_<agent>_<recipe>.json`, small, for git; rewritten at every evaluation):
status, per-seed curves [{wall_s, env_steps, updates, return}], the resolved configuration, the
recipe's overrides, budget, the machines that trained it, the resumes. Run dirs
(`OUT/runs/<task>/<agent>/<recipe>/`: checkpoints, config.json, metrics.jsonl, TensorBoard) are
ignored by git. `--report` (also run after training) reads every record under OUT and writes
`OUT/parallel_regime.{md,csv,json}` (per task: final and best return at equal wall-clock = the
least clock every run reached, and at equal env steps = the fewest any run reached; mean ± s.d.
over seeds, n) and `OUT/<task>.png` (return vs wall-clock and vs env steps, mean and every seed).
Intervals and tests are benchmarks/stats.py's, set in `INTERVAL` and `TEST` below (Student-t
interval of the mean over seeds; exact Mann-Whitney against `today`).
"""
from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import math
import os
import sys
import textwrap
import time
from typing import Callable, Optional, Sequence

import numpy as np

from benchmarks import machine, outputs, stats
from benchmarks.paper_table import config_changes, note_machine, read_machines
from benchmarks.wallclock_vs_sac import _mean_sd, mean_sd_curves
from mjx_smfp import recipes as recipes_lib
from mjx_smfp.config import FAST_SHAPE_ON_CPU, TrainConfig
from mjx_smfp.recipes import REFERENCE, REFERENCE_PARTS, merge

DEFAULT_OUT = os.path.join(os.path.dirname(__file__), "results", "parallel_regime")
FINAL_EVALS = 3  # "final" return at a cut = mean of each seed's last 3 evaluations at or before it
SECTION = "## The parallel regime: recipes at equal wall-clock and env steps (issue 23)"

# ----------------------------------------------------------------------------------------
# Scales and recipes.
# ----------------------------------------------------------------------------------------

# Applied over the `fast` preset (config.SCALE_PRESETS["fast"]): (TrainConfig fields, agent fields).
# The harness schedules evaluation and checkpoints by wall-clock, so the env-step intervals are 0.
_COMMON = dict(total_env_steps=10**12, eval_interval=0, checkpoint_interval=0, keep_checkpoints=2)
SCALES: dict[str, tuple[dict, dict]] = {
    # fast's own sizes: 4096 envs, batch 8192, G 8, 4096 x 1024 ring, 10 warm-up iterations, 256 eval
    # episodes, ring not checkpointed (12 GB on humanoid), critic 1024-512-256, actor 512-256-128.
    "gpu": (dict(_COMMON), {}),
    # fast's shape on 2 CPU cores (config.FAST_SHAPE_ON_CPU; its networks chosen by measurement, docstring).
    "cpu": (dict(_COMMON, **FAST_SHAPE_ON_CPU[0], checkpoint_replay=True), dict(FAST_SHAPE_ON_CPU[1])),
}

RECIPES: dict[str, dict] = {
    "today": {},
    "reference": dict(REFERENCE),
    **{f"reference-minus-{p}": merge(q for q in REFERENCE_PARTS if q != p) for p in REFERENCE_PARTS},
    **{f"today-plus-{p}": merge([p]) for p in REFERENCE_PARTS},
}
# The shared recipes of mjx_smfp/recipes.py (issue 34), run as config.build resolves them: `--recipe
# parallel` is what the `fast` preset trains. The named sets above pin every reference field
# themselves and resolve over the agents' own defaults (recipe "authors"), as they did when run.
SHARED_RECIPES = ("classic", "parallel")
RECIPES.update({name: {"recipe": name} for name in SHARED_RECIPES})


def known_fields(agent: str) -> set[str]:
    """Every option of TrainConfig and of `agent`'s Config on this checkout."""
    from mjx_smfp import agents
    from mjx_smfp import config as config_lib

    agent_fields = config_lib.flat_field_types(agents.get_class(agent).Config)
    return {f.name for f in dataclasses.fields(TrainConfig)} | set(agent_fields)


def missing_fields(overrides: dict, agent: str) -> list[str]:
    """The fields `overrides` sets that this checkout's configs do not have (sorted)."""
    return sorted(set(overrides) - known_fields(agent))


def recipe_overrides(recipe: str, agent: str) -> dict:
    """The overrides of `recipe`: every field the reference sets, at today's value (the agent
    Config's default) unless the recipe's parts set it, so a recipe means the same whatever the
    `fast` preset's own recipe for `agent` is (config.AGENT_PRESETS). ValueError naming an unknown
    recipe, or the fields a recipe needs that do not exist here."""
    from mjx_smfp import agents

    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; known: {', '.join(RECIPES)}")
    if recipe in SHARED_RECIPES:
        return dict(RECIPES[recipe])
    missing = missing_fields(RECIPES[recipe], agent)
    if missing:
        raise ValueError(f"recipe {recipe!r} needs config fields this checkout does not have yet: "
                         f"{', '.join(missing)} (issue 23: they come with the n-step, distributional critic, "
                         f"AdamW and activation work); run a recipe without them (--list-recipes) or wait for them")
    return {**recipes_lib.today(TrainConfig, agents.get_class(agent).Config), **RECIPES[recipe], "recipe": "authors"}


# ----------------------------------------------------------------------------------------
# Paths, records, configuration.
# ----------------------------------------------------------------------------------------

def run_dir_of(out: str, task: str, agent: str, recipe: str) -> str:
    return os.path.join(out, "runs", task, agent, recipe)


def record_path(out: str, task: str, agent: str, recipe: str) -> str:
    return os.path.join(out, "records", f"{task}_{agent}_{recipe}.json")


def _write_json(path: str, data) -> None:
    """Write atomically (a run killed mid-write leaves the previous file)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def read_json(path: str):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def build_config(task: str, agent: str, recipe: str, scale: str, seeds: int, overrides: dict, out: str):
    """(TrainConfig, agent Config) of one run: the `fast` preset < the scale < the recipe < the
    command line's `--field value` pairs. ValueError when the recipe needs missing fields, or when
    `out` holds this run with another configuration (run dir or record, finished or not)."""
    from mjx_smfp import config as config_lib

    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; known: {', '.join(SCALES)}")
    train_kw, agent_kw = SCALES[scale]
    # A distributional critic's support comes from the task's reward scale (config.build), unless given.
    chosen = {**train_kw, **agent_kw, **recipe_overrides(recipe, agent), **overrides}
    cfg, agent_cfg = config_lib.build({
        **chosen, "env": task, "agent": agent,
        "preset": "fast", "num_seeds": seeds, "run_dir": run_dir_of(out, task, agent, recipe)})
    before = read_json(os.path.join(run_dir_of(out, task, agent, recipe), "config.json"))
    if before is None:
        before = (read_json(record_path(out, task, agent, recipe)) or {}).get("config")
    if before is not None:
        changed = config_changes(before, config_lib.to_dict(cfg, agent_cfg))
        if changed:
            raise ValueError(f"{out} holds a {task}/{agent}/{recipe} run of another configuration "
                             f"({'; '.join(changed)}); use the same options or another --recipe/--out")
    return cfg, agent_cfg


# ----------------------------------------------------------------------------------------
# Training under a wall-clock budget.
# ----------------------------------------------------------------------------------------

# Training metrics of the last host call kept with each evaluation point (where the agent has them):
# what the temperature, the reward scale and each actor term were doing (issue 34).
TRAIN_METRICS = ("entropy", "next_entropy", "entropy_target", "temperature", "reward_scale", "target_end_mass",
                 "q_policy", "entropy_term", "md_term", "meanflow_term", "kl")


def _eval_point(engine, ts, eval_rng, index: int, wall_s: float, summary: Optional[dict] = None) -> list[dict]:
    """One evaluation of every seed (Engine.evaluation: deterministic return, forward velocity,
    stochastic return, diagnostics on the held-out states), with the last call's TRAIN_METRICS:
    a point per seed (with the machine's load)."""
    import jax

    from mjx_smfp.runner import count

    found = engine.evaluation(ts, jax.random.fold_in(eval_rng, index))
    found.update({f"train_{k}": (summary or {})[k] for k in TRAIN_METRICS if k in (summary or {})})
    per_seed = {k: np.asarray(v, np.float64).reshape(engine.num_seeds) for k, v in found.items()}
    steps, updates = count(ts.env_steps), count(ts.updates)
    load = round(os.getloadavg()[0], 1)  # the machine's 1-min load: a shared CPU slows the clock, not the steps
    rounded = lambda x: round(float(x), 4) if math.isfinite(x) else None  # noqa: E731 - strict JSON
    return [{"wall_s": round(wall_s, 3), "env_steps": steps, "updates": updates,
             "return": float(per_seed["return_mean"][k]),
             "load1": load, **{name: rounded(v[k]) for name, v in per_seed.items() if name != "return_mean"}}
            for k in range(engine.num_seeds)]


def train(task: str, agent: str, recipe: str, *, scale: str = "cpu", seeds: int = 3, budget_s: float = 1800.0,
          out: str = DEFAULT_OUT, overrides: Optional[dict] = None, eval_every_s: float = 60.0,
          checkpoint_every_s: float = 300.0, compile_cache: bool = False, stop=None,
          max_chunks: Optional[int] = None, command: str = "") -> dict:
    """Train (or continue) one (task, agent, recipe) run with `seeds` seeds in one program until
    its run clock reaches `budget_s`; returns its record. `max_chunks` stops after that many train
    chunks in this process, as an interruption would (tests)."""
    import jax

    from mjx_smfp import checkpoint as ckpt_lib
    from mjx_smfp import config as config_lib
    from mjx_smfp.engine import Engine
    from mjx_smfp.logger import Logger
    from mjx_smfp.runner import StopFlag, count, format_eta, summary_scalars

    cfg, agent_cfg = build_config(task, agent, recipe, scale, seeds, overrides or {}, out)
    d, rpath = run_dir_of(out, task, agent, recipe), record_path(out, task, agent, recipe)
    rec = read_json(rpath)
    name = f"{task}/{agent}/{recipe}"
    if rec and (rec["status"] == "failed" or (rec["status"] == "done" and (
            rec.get("reason") == "total_env_steps" or rec["budget_s"] >= budget_s))):
        print(f"[regime] {name}: {rec['status']} already ({rec.get('reason', '')}; {rpath}); skipped", flush=True)
        return rec
    if not compile_cache:
        jax.config.update("jax_enable_compilation_cache", False)
    os.makedirs(d, exist_ok=True)
    note_machine(d)
    _write_json(os.path.join(d, "config.json"), config_lib.to_dict(cfg, agent_cfg))
    clock_path = os.path.join(d, "clock.json")
    saved = read_json(clock_path)
    checkpointer = ckpt_lib.Checkpointer(os.path.join(d, "checkpoints"), max_to_keep=cfg.keep_checkpoints)
    skip = () if cfg.checkpoint_replay else ("replay",)
    stop = (stop or StopFlag()).install()
    logger = Logger(d)
    record = {"task": task, "agent": agent, "recipe": recipe, "recipe_overrides": RECIPES[recipe], "scale": scale,
              "seeds": seeds, "budget_s": budget_s, "eval_every_s": eval_every_s, "compile_cache": compile_cache,
              "command": command, "config": config_lib.to_dict(cfg, agent_cfg)}
    record["config"] = json.loads(json.dumps(record["config"]))

    paused = 0.0  # seconds of this process that the run clock does not count (eval, saves)
    t0 = time.perf_counter()
    wall0 = 0.0  # the clock carried over from an earlier process
    clock = lambda: wall0 + time.perf_counter() - t0 - paused  # noqa: E731

    def excluded(fn):
        """Run `fn` off the clock."""
        nonlocal paused
        t = time.perf_counter()
        result = fn()
        paused += time.perf_counter() - t
        return result

    engine = Engine(cfg, agent_cfg)
    iterations = np.int32(cfg.iterations_per_call)  # every call the full chunk: steps per call fixed

    def compile_chunk(ts):
        return engine.train_iterations.lower(ts, iterations).compile()

    saved_used = saved is not None and os.path.isdir(checkpointer.path(saved["env_steps"]))
    eval_rng = jax.random.PRNGKey(cfg.seed + 1_000_003)
    if saved_used:
        t = time.perf_counter()
        engine.check_fits()
        ts = checkpointer.restore(engine.abstract_state(), step=saved["env_steps"], skip=skip)
        if count(ts.replay.size) == 0:  # the ring was not checkpointed: refill it by a warm-up
            ts, _ = engine.warmup(ts)
        chunk = compile_chunk(ts)  # compiled here, so the clock restarts after it
        overhead = time.perf_counter() - t
        t0, paused, wall0 = time.perf_counter(), 0.0, saved["wall_s"]
        curves, resumes, chunks, last_dt = saved["curves"], saved["resumes"], saved["chunks"], saved["last_dt"]
        resumes.append({"at_wall_s": wall0, "at_env_steps": saved["env_steps"], "overhead_s": round(overhead, 1),
                        "lost_wall_s": round(max(0.0, rec["wall_s"] - wall0), 1) if rec else 0.0,
                        "machine": machine.summary()})
        print(f"[regime] {name}: resumed at {wall0:.0f} s of run clock, env step {saved['env_steps']:,} "
              f"(restore + recompile {overhead:.0f} s, not counted)", flush=True)
    else:
        if rec:
            print(f"[regime] {name}: no checkpoint of the recorded run here (a fresh clone?): training again from "
                  f"the start; its record is replaced", flush=True)
        ts = engine.init_state()
        ts, _ = engine.warmup(ts)
        jax.block_until_ready(ts.env_steps)
        chunk = compile_chunk(ts)
        curves, resumes, chunks, last_dt = [[] for _ in range(seeds)], [], 0, None
        for k, p in enumerate(excluded(lambda: _eval_point(engine, ts, eval_rng, 0, clock()))):
            curves[k].append(p)
    next_eval = (math.floor(curves[0][-1]["wall_s"] / eval_every_s) + 1) * eval_every_s
    last_ckpt = clock()
    record_compile = None if saved_used else clock()  # build + compile + warm-up, on the clock

    def write(status: str, reason: str = "") -> dict:
        record.update(status=status, reason=reason, wall_s=round(clock(), 1), env_steps=count(ts.env_steps),
                      updates=count(ts.updates), curves=curves, resumes=resumes, machines=read_machines(d))
        if record_compile is not None:
            record["compile_and_warmup_s"] = round(record_compile, 1)
        _write_json(rpath, record)
        return record

    def save() -> None:
        if checkpointer.latest_step() == count(ts.env_steps):
            return  # saved at this state already
        wall = clock()  # the clock at this state (the save itself is off the clock)
        checkpointer.save(count(ts.env_steps), ts, skip)
        stop.unsaved = False
        _write_json(clock_path, {"env_steps": count(ts.env_steps), "wall_s": wall, "curves": curves,
                                 "resumes": resumes, "chunks": chunks, "last_dt": last_dt})

    if "compile_and_warmup_s" in (rec or {}) and record_compile is None:
        record["compile_and_warmup_s"] = rec["compile_and_warmup_s"]
    write("running")
    print(f"[regime] {name}: {seeds} seeds x {cfg.num_envs} envs, batch {cfg.batch_size}, G={cfg.updates_per_step}, "
          f"{cfg.iterations_per_call} iterations/call, budget {budget_s:.0f} s (compile counted, eval excluded) -> {d}",
          flush=True)
    reason, start_calls, last_print, summary = "budget", chunks, 0.0, None
    t_real, clock_start = time.time(), clock()
    try:
        while True:
            now = clock()
            if now >= budget_s or (last_dt is not None and now + last_dt > budget_s):
                break
            if count(ts.env_steps) >= engine.final_env_steps:
                reason = "total_env_steps"
                break
            if stop.requested or (max_chunks is not None and chunks - start_calls >= max_chunks):
                reason = "stopped"
                break
            t = time.perf_counter()
            ts, summary = chunk(ts, iterations)
            stop.unsaved = True  # a stop signal now saves before exiting (runner.StopFlag)
            summary = jax.device_get(summary)
            last_dt, chunks = time.perf_counter() - t, chunks + 1
            finite = np.asarray(summary["all_finite"])
            if not finite.all():
                reason = f"non-finite loss in seed(s) {np.flatnonzero(~finite.reshape(-1)).tolist()}"
                write("failed", reason)
                print(f"[regime] {name}: FAILED: {reason}", flush=True)
                return record
            logger.write(count(summary["env_steps"]), {**summary_scalars(summary), "perf/run_clock_s": clock()})
            if clock() >= next_eval:
                index = len(curves[0])
                for k, p in enumerate(excluded(lambda: _eval_point(engine, ts, eval_rng, index, clock(), summary))):
                    curves[k].append(p)
                next_eval = (math.floor(clock() / eval_every_s) + 1) * eval_every_s
                write("running")
            if clock() - last_ckpt >= checkpoint_every_s:
                excluded(save)
                last_ckpt = clock()
            if time.time() - last_print > 10.0:
                last_print = time.time()
                ratio = (time.time() - t_real) / max(clock() - clock_start, 1e-9)  # real s per clock s
                ev = [c[-1]["return"] for c in curves]
                rate = cfg.num_envs * cfg.iterations_per_call * seeds / last_dt
                print(f"[regime] {name} | clock {clock():,.0f}/{budget_s:,.0f} s | {count(ts.env_steps):,} env steps "
                      f"x {seeds} seeds | {count(ts.updates):,} updates | {rate:,.0f} env-steps/s (all seeds) | "
                      f"eval {np.mean(ev):,.1f} ± {np.std(ev):,.1f} | ETA "
                      f"{format_eta((budget_s - clock()) * max(ratio, 1.0))}", flush=True)
        if curves[0][-1]["env_steps"] != count(ts.env_steps):
            index = len(curves[0])
            for k, p in enumerate(excluded(lambda: _eval_point(engine, ts, eval_rng, index, clock(), summary))):
                curves[k].append(p)
        excluded(save)
        status = "stopped" if reason == "stopped" else "done"
        write(status, reason)
        print(f"[regime] {name}: {status} ({reason}) at {clock():,.0f} s of run clock, {count(ts.env_steps):,} "
              f"env steps per seed, {count(ts.updates):,} updates; eval "
              f"{np.mean([c[-1]['return'] for c in curves]):,.2f}"
              + ("; re-run the same command to continue" if status == "stopped" else ""), flush=True)
        return record
    finally:
        stop.uninstall()
        logger.close()
        checkpointer.close()


# ----------------------------------------------------------------------------------------
# Report: tables at equal wall-clock and at equal env steps, curves (pure numpy + matplotlib).
# ----------------------------------------------------------------------------------------

# Statistics (benchmarks/stats.py). INTERVAL(values) -> (lo, hi): an interval of the mean over
# seeds; TEST(a, b) -> p-value of recipe b against `today` (a), same task, agent and cut (runs of
# different recipes are independent: not paired). INTERVAL_METHOD / TEST_METHOD name them in the
# table. With 3 seeds a side the exact rank test cannot go below p = 0.1: such a table resolves
# nothing at 5 %, and says so.
INTERVAL: Optional[Callable[[Sequence[float]], tuple[float, float]]] = stats.mean_interval
INTERVAL_METHOD = "Student-t 95 % interval of the mean over seeds"
TEST: Optional[Callable[[Sequence[float], Sequence[float]], float]] = stats.mann_whitney
TEST_METHOD = "exact two-sided Mann-Whitney on the per-seed values (3 vs 3: smallest p 0.1)"


def at_cut(points: list[dict], key: str, limit: float) -> tuple[float, float]:
    """One seed's (final, best) return over its evaluations with `key` <= `limit`: final = mean of
    the last FINAL_EVALS of them, best = their maximum; (nan, nan) when there are none."""
    returns = [p["return"] for p in points if p[key] <= limit]
    if not returns:
        return float("nan"), float("nan")
    return float(np.mean(returns[-FINAL_EVALS:])), float(np.max(returns))


def reached(record: dict, key: str) -> float:
    """How far a run got: the fewest `key` (wall_s, env_steps) at which every seed's last evaluation is."""
    return min((c[-1][key] for c in record["curves"] if c), default=0)


def cut_cells(record: dict, key: str, limit: float) -> dict:
    """final/best at the cut over seeds: per-seed values, mean, s.d. (ddof 1), n, and the hook's interval."""
    per_seed = [at_cut(c, key, limit) for c in record["curves"]]
    out = {}
    for j, name in enumerate(("final", "best")):
        values = [v[j] for v in per_seed]
        out[name + "_mean"], out[name + "_sd"], out[name + "_n"] = _mean_sd(values)
        out[name + "_per_seed"] = values
        out[name + "_ci"] = list(INTERVAL(values)) if INTERVAL is not None and out[name + "_n"] > 1 else None
    return out


def summarise(records: list[dict]) -> list[dict]:
    """Two rows per run and group, `cut` = "wall_s" (at the least run clock every run of its task and
    group reached) and "env_steps" (at the fewest env steps per seed any reached), with final and best
    over seeds, per group of `groups`.
    With the TEST hook set, each recipe's p-value against `today` of its (task, agent, group) at the
    same cut, an ablation's against `reference` too, and in the "agents" group each agent's against SMFP's."""
    rows = []
    for task in sorted({r["task"] for r in records}):
        for group, runs in groups([r for r in records if r["task"] == task and any(r["curves"])]):
            for key in ("wall_s", "env_steps"):
                limit = min((reached(r, key) for r in runs), default=0)
                for r in runs:
                    rows.append({"task": task, "group": group, "agent": r["agent"], "recipe": r["recipe"],
                                 "status": r["status"], "scale": r["scale"], "seeds": len(r["curves"]), "cut": key,
                                 "at": limit, "reached_wall_s": reached(r, "wall_s"),
                                 "reached_env_steps": reached(r, "env_steps"), "updates": r.get("updates"),
                                 "budget_s": r["budget_s"], "trained_on": r.get("machines", []),
                                 **cut_cells(r, key, limit)})
    if TEST is not None:
        for row in rows:
            if row["group"] == "agents":  # one recipe per agent there: each agent against SMFP
                base = [b for b in rows if b["agent"] == "smfp" and b["group"] == "agents"
                        and all(b[k] == row[k] for k in ("task", "cut"))]
                if base and row["agent"] != "smfp":
                    row["final_p_vs_smfp"] = float(TEST(base[0]["final_per_seed"], row["final_per_seed"]))
                continue
            for against, key in (("today", "final_p"), ("reference", "final_p_vs_reference")):
                if row["recipe"] == against or (against == "reference" and not is_ablation(row["recipe"])):
                    continue
                base = [b for b in rows if b["recipe"] == against
                        and all(b[k] == row[k] for k in ("task", "agent", "cut", "group"))]
                if base:
                    row[key] = float(TEST(base[0]["final_per_seed"], row["final_per_seed"]))
    return rows


def is_ablation(recipe: str) -> bool:
    """A recipe that differs from `today` or `reference` by one part (`reference-minus-P`, `today-plus-P`)."""
    return recipe.startswith(("reference-minus-", "today-plus-"))


GENERATIVE_BASELINES = ("sacflow", "dime")  # compared with the others in the "agents" group only


def fast_recipe(agent: str) -> str:
    """The recipe of `agent`'s runs in the four-agent group (issue 24, 2026-12-05): the `fast` preset's
    recipe then, "reference" for SMFP (issue 23), the agent's own defaults ("today") for the others."""
    return "reference" if agent == "smfp" else "today"


def groups(runs: list[dict]) -> list[tuple[str, list[dict]]]:
    """One task's runs as ("main": SAC's and SMFP's recipes), with ablations ("ablations": them
    beside the main runs of the agents they ablate), and with SAC Flow or DIME runs ("agents":
    every agent at its `fast` preset's recipe). Each group is cut, tested and plotted on its own,
    so a slower agent or an ablation cuts no main comparison short."""
    main = [r for r in runs if not is_ablation(r["recipe"]) and r["agent"] not in GENERATIVE_BASELINES]
    ablations = [r for r in runs if is_ablation(r["recipe"])]
    out = [("main", main)]
    if ablations:
        ablated = {r["agent"] for r in ablations}
        out.append(("ablations", [r for r in main if r["agent"] in ablated] + ablations))
    if any(r["agent"] in GENERATIVE_BASELINES for r in runs):
        out.append(("agents", [r for r in runs if r["recipe"] == fast_recipe(r["agent"])]))
    return out


def pooled(rows: list[dict]) -> list[dict]:
    """Each recipe against `today` over every (task, agent) stratum that has both, per cut and per
    agent ("all" = both agents' strata together): the exact stratified rank test of the final
    return (stats.stratified_rank_sum: ranks within a stratum, so task scales do not mix) and how
    many strata have the recipe's mean above today's. THE decision rule for the `fast` preset's
    defaults (stated before the Walker2d and Humanoid runs, RESULTS.md): a recipe replaces today's
    when this test at equal env steps, over all strata, gives p < 0.05 in its favour."""
    out = []
    rows = [row for row in rows if row["group"] == "main"]
    recipes = [r for r in dict.fromkeys(row["recipe"] for row in rows) if r != "today"]
    for recipe in recipes:
        for cut in ("env_steps", "wall_s"):
            for agent in sorted({row["agent"] for row in rows}) + ["all"]:
                strata = []
                for row in rows:
                    if row["recipe"] != recipe or row["cut"] != cut or agent not in ("all", row["agent"]):
                        continue
                    base = [b for b in rows if b["recipe"] == "today" and b["cut"] == cut
                            and b["task"] == row["task"] and b["agent"] == row["agent"]]
                    if base and row["final_n"] and base[0]["final_n"]:
                        strata.append((f"{row['task']}/{row['agent']}", row["final_per_seed"], base[0]["final_per_seed"],
                                       row["final_mean"] > base[0]["final_mean"]))
                if not strata:
                    continue
                p = stats.stratified_rank_sum([(a, b) for _, a, b, _ in strata])
                higher = sum(h for *_, h in strata)
                out.append({"recipe": recipe, "cut": cut, "agent": agent, "strata": len(strata),
                            "strata_higher": higher, "p": p, "resolved": bool(p < 0.05),
                            "direction": "higher" if 2 * higher > len(strata) else "lower" if 2 * higher < len(strata) else "tie",
                            "which": ", ".join(name for name, *_ in strata)})
    return out


def pooled_markdown(pooled_rows: list[dict]) -> str:
    if not pooled_rows:
        return ""
    lines = ["### Pooled over tasks: each recipe against `today`", "",
             "Exact two-sided van Elteren test (Mann-Whitney with ranks within each task/agent stratum, "
             "benchmarks/stats.py `stratified_rank_sum`) on the per-seed final returns; \"resolved\" only at p < 0.05. "
             "Decision rule for the `fast` defaults: the test at equal env steps over all strata.", "",
             "| recipe | cut | agent | strata | recipe's mean higher in | p | verdict |", "|---|---|---|---|---|---|---|"]
    for r in pooled_rows:
        verdict = (f"resolved: {r['recipe']} {'>' if r['direction'] == 'higher' else '<'} today" if r["resolved"]
                   else "not resolved")
        lines.append(f"| {r['recipe']} | {'equal env steps' if r['cut'] == 'env_steps' else 'equal wall-clock'} | "
                     f"{r['agent']} | {r['strata']} ({r['which']}) | {r['strata_higher']} of {r['strata']} | "
                     f"{stats.format_p(r['p'])} | {verdict} |")
    return "\n".join(lines) + "\n"


def _cell(row: dict, name: str) -> str:
    if not row[name + "_n"]:
        return "—"
    ci = row[name + "_ci"]
    return (f"{row[name + '_mean']:,.1f} ± {row[name + '_sd']:,.1f}" + (f" [{ci[0]:,.1f}, {ci[1]:,.1f}]" if ci else "")
            + (f" (p {row['final_p']:.3g})" if name == "final" and "final_p" in row else "")
            + (f" (vs reference: p {row['final_p_vs_reference']:.3g})"
               if name == "final" and "final_p_vs_reference" in row else "")
            + (f" (vs SMFP: p {row['final_p_vs_smfp']:.3g})" if name == "final" and "final_p_vs_smfp" in row else ""))


def markdown(rows: list[dict], meta: dict) -> str:
    stats = (f"Intervals: {INTERVAL_METHOD}; tests vs `today` (and an ablation vs `reference`): {TEST_METHOD}."
             if INTERVAL or TEST else
             "Intervals and tests: not computed (benchmarks/stats.py hook `INTERVAL`/`TEST` unset): n, mean and "
             "s.d. only.")
    lines = [f"Reported on {meta['machine']}, {meta['date']}. Cells: mean ± s.d. over seeds of the final return "
             f"(mean of each seed's last {FINAL_EVALS} deterministic evaluations up to the cut) and the best return "
             f"up to the cut. Equal wall-clock: at the least run clock every run of the task reached (compile "
             f"counted, evaluation excluded); equal env steps: at the fewest env steps per seed any run reached. "
             f"{stats}", ""]
    for task, group in dict.fromkeys((r["task"], r["group"]) for r in rows):
        mine = [r for r in rows if r["task"] == task and r["group"] == group]
        wall = next(r["at"] for r in mine if r["cut"] == "wall_s")
        steps = next(r["at"] for r in mine if r["cut"] == "env_steps")
        title = {"ablations": " — ablations (each the reference with one part at today's values)",
                 "agents": " — four agents, each at its `fast` preset's recipe (tests: each vs SMFP)"}.get(group, "")
        lines += [f"### {task}{title}", "",
                  f"| agent | recipe | scale | status | n | final @ {wall:,.0f} s "
                  f"| best @ {wall:,.0f} s | final @ {steps:,} steps | best @ {steps:,} steps "
                  "| reached (clock, env steps, updates) |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        by_run: dict = {}
        for r in mine:
            by_run.setdefault((r["agent"], r["recipe"]), {})[r["cut"]] = r
        for (agent, recipe), cuts in by_run.items():
            w, s = cuts["wall_s"], cuts["env_steps"]
            lines.append(f"| {agent} | {recipe} | {w['scale']} | {w['status']} | {w['final_n']} | "
                         f"{_cell(w, 'final')} | {_cell(w, 'best')} | {_cell(s, 'final')} | {_cell(s, 'best')} | "
                         f"{w['reached_wall_s']:,.0f} s, {w['reached_env_steps']:,}, {w['updates'] or 0:,} |")
        lines += [""] + [f"- {agent}/{recipe} trained on: {'; then '.join(c['wall_s']['trained_on'])}."
                         for (agent, recipe), c in by_run.items() if c["wall_s"]["trained_on"]] + [""]
    return "\n".join(lines)


def plot_task(task: str, records: list[dict], path: str, title: str) -> None:
    """Eval return vs run clock and vs env steps: each run's mean over seeds (where every seed has
    an evaluation; the last evaluation holds until the next on the clock) and every seed, thin."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    runs = [{"agent": f"{r['agent']}/{r['recipe']}", "points": c} for r in records for c in r["curves"] if c]
    for ax, key, step, xlabel in ((axes[0], "wall_s", True, "run clock (s; compile counted, evaluation excluded)"),
                                  (axes[1], "env_steps", False, "env steps per seed")):
        if runs:
            grid = np.linspace(0, max(p[key] for r in runs for p in r["points"]), 400)
            for i, label in enumerate(dict.fromkeys(r["agent"] for r in runs)):
                colour = f"C{i % 10}"
                mean, _, _ = mean_sd_curves(runs, label, key, grid, step, all_seeds=True)
                n = sum(1 for r in runs if r["agent"] == label)
                ax.plot(grid, mean, color=colour, lw=2, label=f"{label} (mean of {n} seeds)")
                for r in (r for r in runs if r["agent"] == label):
                    ax.plot([p[key] for p in r["points"]], [p["return"] for p in r["points"]], color=colour,
                            lw=0.7, alpha=0.35, drawstyle="steps-post" if step else "default")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("deterministic eval return")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="best", fontsize=8)
    fig.suptitle(textwrap.fill(title, 140), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def load_records(out: str) -> list[dict]:
    return [read_json(p) for p in sorted(glob.glob(os.path.join(out, "records", "*.json")))]


def report(out: str, command: str = "") -> list[dict]:
    """Rewrite OUT/parallel_regime.{md,csv,json} and OUT/<task>.png from every record under OUT."""
    records = load_records(out)
    meta = {"machine": machine.summary(), "date": time.strftime("%Y-%m-%d %H:%M"), "final_evals": FINAL_EVALS,
            "interval": INTERVAL_METHOD or None, "test": TEST_METHOD or None, "command": command}
    rows = summarise(records)
    pooled_rows = pooled(rows)
    table = markdown(rows, meta) + "\n" + pooled_markdown(pooled_rows)
    with open(os.path.join(out, "parallel_regime.md"), "w") as f:
        f.write(f"# The parallel regime\n\n`{command}`\n\n{table}\n")
    outputs.write_rows(os.path.join(out, "parallel_regime"),
                       [{k: (json.dumps(v) if isinstance(v, list) else v) for k, v in r.items()} for r in rows], **meta)
    if pooled_rows:
        outputs.write_rows(os.path.join(out, "parallel_regime_pooled"), pooled_rows, **meta)
    for task in sorted({r["task"] for r in records}):
        for group, runs in groups([r for r in records if r["task"] == task]):
            name = task if group == "main" else f"{task}_{group}"
            if runs:
                plot_task(task, runs, os.path.join(out, f"{name}.png"),
                          f"{name}: {', '.join(sorted({r['scale'] for r in runs}))} scale — reported on "
                          f"{meta['machine']} — {meta['date']}")
    print(table, flush=True)
    print(f"[regime] wrote {out}/parallel_regime.{{md,csv,json}} and one PNG per task", flush=True)
    return rows


# ----------------------------------------------------------------------------------------
# Command line.
# ----------------------------------------------------------------------------------------

def list_recipes(agent: str) -> str:
    lines = []
    for name, over in RECIPES.items():
        missing = missing_fields(over, agent)
        state = f"needs {', '.join(missing)} (not on this checkout)" if missing else "runs here"
        values = ", ".join(f"{k}={v}" for k, v in over.items()) or "(the fast preset as is)"
        lines += [f"{name}: {state}", f"    {values}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None, *, max_chunks: Optional[int] = None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="halfcheetah")
    parser.add_argument("--agent", default="sac")
    parser.add_argument("--recipe", default="today", help="a name in RECIPES (--list-recipes)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1, one vmap axis")
    parser.add_argument("--budget-minutes", type=float, default=30.0, help="run clock per run (compile counted)")
    parser.add_argument("--scale", default="cpu", choices=list(SCALES))
    parser.add_argument("--out", default=DEFAULT_OUT)
    parser.add_argument("--eval-every-s", type=float, default=60.0, help="evaluation period in run-clock seconds")
    parser.add_argument("--checkpoint-every-minutes", type=float, default=5.0, help="checkpoint period (run clock)")
    parser.add_argument("--compile-cache", action="store_true", help="keep JAX's persistent compilation cache on")
    parser.add_argument("--report", action="store_true", help="only rewrite the tables and PNGs (no training)")
    parser.add_argument("--list-recipes", action="store_true", help="each recipe, and whether it runs on this checkout")
    args, rest = parser.parse_known_args(argv)
    command = "python -m benchmarks.parallel_regime " + " ".join(argv)
    if args.list_recipes:
        print(list_recipes(args.agent))
        return None
    os.makedirs(args.out, exist_ok=True)
    if not args.report:
        from mjx_smfp import cli, compile_cache

        if args.compile_cache:
            compile_cache.configure()
        print(f"[regime] {machine.summary()}", flush=True)
        train(args.task, args.agent, args.recipe, scale=args.scale, seeds=args.seeds,
              budget_s=60.0 * args.budget_minutes, out=args.out, overrides=cli.parse_cli_pairs(rest),
              eval_every_s=args.eval_every_s, checkpoint_every_s=60.0 * args.checkpoint_every_minutes,
              compile_cache=args.compile_cache, max_chunks=max_chunks, command=command)
    elif rest:
        raise ValueError(f"--report takes no config options (got {' '.join(rest)})")
    return report(args.out, command)


if __name__ == "__main__":
    try:
        main()
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None
