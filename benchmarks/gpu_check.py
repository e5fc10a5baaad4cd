"""One-shot GPU check, the phase driver: the headline GPU figures first, each written the moment it exists.

    python3 -m benchmarks.gpu_check --wheelhouse .wheelhouse    # on the GPU machine (offline; `make wheelhouse` here)
    python -m benchmarks.gpu_check --smoke --out DIR            # the same code path on a CPU, tiny sizes
    benchmarks/gpu_rehearsal.sh                                 # the GPU machine's situation, rehearsed on a CPU

It prints `nvidia-smi -L` and the jax versions, installs the wheels the GPU machine lacks offline
(`--no-deps`, never jax) into a temporary folder on PYTHONPATH, then runs each phase (`Sizes.plan`)
in its own process under a hard limit; a phase exits 2, stopping the run, unless jax is on the GPU
(--smoke: any backend). Training goes through `runner.run`, stepping and costs through
benchmarks/harness/timer.py. Into `--out` (default `$OUT`): `rows.jsonl`, one strict-JSON row per
figure appended in one write(2), so a killed run keeps every line; `summary.json` (plan, status,
headline, targets, rows missing) after every phase; `gpu_check.log`, the phases' stderr. README,
"Running on a GPU", has the plan and its budget.
"""
from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from benchmarks.harness.outputs import jsonable
from benchmarks.harness.timer import Capture, agent_costs, env_options, raw_stepping, wrapped_stepping
from mjx_smfp import rundir

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS, SUMMARY, LOG = "rows.jsonl", "summary.json", "gpu_check.log"
MAX_FILES = 8  # what the device tool brings back from $OUT
WRONG_BACKEND = 2  # a phase's exit status when jax is not on the GPU: the run stops there


@dataclasses.dataclass(frozen=True)
class Phase:
    name: str  # one of PHASES
    limit_s: float  # hard limit of its process (less if less of --total-s is left)
    required: bool  # headline: always started; else only while Sizes.min_start_s is left
    what: str


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Everything that differs between the GPU run and the CPU smoke run."""
    name: str
    env_headline: tuple[str, str, int]  # (task, physics preset, envs): wrapped and raw stepping
    env_more: tuple[tuple[str, str, int, bool], ...]  # (task, physics, envs, raw too)
    env_steps: int  # env steps per timed lax.scan
    env_repeats: int  # timed scans per figure (median)
    train_env: str  # task of the train, costs and brax phases
    train_overrides: dict  # config_lib.build overrides, the preset included
    thresholds: tuple[float, ...]  # training returns whose first crossing is timed
    timed_calls: int  # train calls after the first whose median rate is the throughput
    learn_row_s: float  # at most one `learning` row per this many seconds
    cost_nets: dict | None  # network overrides of the costs phases; None: the train config's
    cost_act_envs: int  # batch of the per-action cost
    cost_repeats: int  # updates/actions per timed call
    cost_rounds: int  # interleaved rounds (median)
    generative: tuple[str, ...]  # costs_more: the multi-step agents timed beside SAC
    plan: tuple[Phase, ...]
    min_start_s: float  # an optional phase starts only with this much of --total-s left
    total_s: float  # default of --total-s


PHASES = ("env", "train_sac", "train_smfp", "costs", "env_more", "costs_more", "brax")

# 540 s: under the device tool's 600 s command limit. The limits assume a quarter of the compile
# times measured on 2 CPU cores (README, "Running on a GPU").
GPU = Sizes(
    name="gpu", env_headline=("humanoid", "gpu", 4096),
    env_more=(("humanoid", "gpu", 1024, False), ("humanoid", "gpu", 8192, False), ("halfcheetah", "gpu", 4096, True),
              ("humanoid", "gymnasium", 4096, False), ("halfcheetah", "gpu", 1024, False),
              ("halfcheetah", "gpu", 8192, False)),
    env_steps=100, env_repeats=2, train_env="humanoid", train_overrides=dict(preset="fast"),
    thresholds=(1000.0, 3000.0, 5000.0), timed_calls=3, learn_row_s=1.0, cost_nets=None,
    cost_act_envs=4096, cost_repeats=20, cost_rounds=5, generative=("sacflow", "dime"),
    plan=(Phase("env", 100, True, "humanoid 4096 envs, gpu physics: wrapped and raw mjx.step, compile s and env-steps/s"),
          Phase("train_sac", 170, True, "SAC, fast preset, humanoid: compile s, env-steps/s, updates/s, return vs wall-clock"),
          Phase("train_smfp", 170, True, "SMFP, the same"),
          Phase("costs", 60, True, "SMFP/SAC ms per update (batch of the fast preset) and per action (4096 envs)"),
          Phase("env_more", 120, False, "humanoid 1024/8192, halfcheetah 1024/4096/8192, humanoid Gymnasium physics"),
          Phase("costs_more", 60, False, "SAC Flow and DIME ms per update and per action beside SAC"),
          Phase("brax", 150, False, "brax's own SAC at the train phases' settings")),
    min_start_s=20, total_s=540,
)
# Every phase but brax (whose SAC compiles for ~100 s on a CPU), on the one-step bandit; the limits
# allow a shared machine 5x slower than the ~3 minutes the run takes alone on 2 cores.
SMOKE = Sizes(
    name="smoke", env_headline=("inverted_pendulum", "gpu", 4), env_more=(("inverted_pendulum", "gpu", 4, False),),
    env_steps=10, env_repeats=1, train_env="multimodal",
    train_overrides=dict(preset="cpu", num_envs=4, batch_size=32, updates_per_step=1, replay_capacity=2_000,
                         learning_starts=40, iterations_per_call=10, eval_episodes=1, total_env_steps=1000,
                         actor_hidden=(16, 16), critic_hidden=(16, 16)),
    thresholds=(0.0, 0.5), timed_calls=2, learn_row_s=0.5, cost_nets=dict(actor_hidden=(16, 16), critic_hidden=(16, 16)),
    cost_act_envs=8, cost_repeats=2, cost_rounds=1, generative=("sacflow",),
    plan=(Phase("env", 400, True, "inverted_pendulum 4 envs: wrapped and raw"),
          Phase("train_sac", 400, True, "SAC on multimodal, tiny"), Phase("train_smfp", 400, True, "SMFP, the same"),
          Phase("costs", 400, True, "SMFP/SAC costs, tiny nets"), Phase("env_more", 300, False, "8 envs"),
          Phase("costs_more", 400, False, "SAC Flow and DIME, tiny nets")),
    min_start_s=0, total_s=2400,
)
SIZES = {"gpu": GPU, "smoke": SMOKE}

# What the first GPU run is to measure (the parallel-regime issue's goals for the H200).
TARGETS = (
    dict(name="sac_time_to_return_5000_s", at_most=600.0, what="humanoid SAC training return >= 5,000 within "
         "10 min incl. compile (the train phase's wall-clock from its start); 5,000 is standing for whole "
         "episodes at the alive bonus, not a gait: the forward_velocity rows say whether it walks"),
    dict(name="smfp_over_sac_time_to_return_5000", at_most=1.25, what="SMFP's time to 5,000 within 1.25x SAC's"),
    dict(name="sac_env_steps_per_s", at_least=60_000.0, what="training env-steps/s, SAC"),
    dict(name="smfp_env_steps_per_s", at_least=40_000.0, what="training env-steps/s, SMFP"),
)


def dumps(x, **kw) -> str:
    return json.dumps(jsonable(x), allow_nan=False, **kw)


def loads_strict(text: str):
    """json.loads that refuses NaN/Infinity (which Python's json accepts by default)."""
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")
    return json.loads(text, parse_constant=refuse)


def write_json_atomic(path: str, obj) -> None:
    rundir.write_json(path, jsonable(obj))  # NaN and infinity as null


def say(line: str) -> None:
    print(line, flush=True)


class Rows:
    """Appends one JSON line per figure to `<out>/rows.jsonl`, in one write(2) on an O_APPEND
    descriptor: lines of several processes never interleave, and a kill leaves only whole lines."""

    def __init__(self, out: str, phase: str, t0: float, echo: bool = True):
        self.path, self.phase, self.t0, self.echo = os.path.join(out, ROWS), phase, t0, echo

    def __call__(self, name: str, value=None, unit: str = "", say: str | None = None, **extra) -> dict:
        row = {"key": f"{self.phase}/{name}", "phase": self.phase, "value": value, "unit": unit,
               "t_s": round(time.time() - self.t0, 3), **extra}
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (dumps(row) + "\n").encode())
        finally:
            os.close(fd)
        if say is not None and self.echo:
            print(f"[{self.phase}] {say}", flush=True)
        return row


def read_rows(out: str) -> list[dict]:
    """Every whole line of rows.jsonl."""
    if not os.path.exists(os.path.join(out, ROWS)):
        return []
    with open(os.path.join(out, ROWS)) as f:
        return [loads_strict(line) for line in f if line.endswith("\n")]


def by_key(rows: list[dict]) -> dict[str, dict]:
    """key -> the last row of that key."""
    return {r["key"]: r for r in rows}


def env_names(task: str, physics: str, n: int, raw: bool) -> list[str]:
    p = f"{task}/{physics}/{n}"
    return [f"{p}/wrapped_compile_s", f"{p}/wrapped_steps_per_s"] + (
        [f"{p}/raw_compile_s", f"{p}/raw_steps_per_s", f"{p}/wrapped_over_raw"] if raw else [])


def planned_rows(sizes: Sizes) -> dict[str, list[str]]:
    """phase -> the row names (without the phase) a complete run of it writes, in order."""
    n = sizes.cost_act_envs
    train = ["backend", "config", "engine_build_s", "warmup_s", "compile/train_chunk_s", "throughput", "learning",
             "returns_reached"]
    return {
        "env": ["backend"] + env_names(*sizes.env_headline, True),
        "train_sac": train, "train_smfp": train,
        "costs": ["backend", "sac/update_ms", "smfp/update_ms", f"sac/act_{n}_ms", f"smfp/act_{n}_ms",
                  "smfp_over_sac_update", f"smfp_over_sac_act_{n}", "with_compile_s"],
        "env_more": ["backend"] + [name for spec in sizes.env_more for name in env_names(*spec)],
        "costs_more": ["backend"] + [f"{a}/{m}" for a in ("sac",) + sizes.generative for m in ("update_ms", f"act_{n}_ms")],
        "brax": ["backend", "sac"],
    }


def check_backend(rows: Rows, sizes: Sizes) -> None:
    """Row `backend`; exit WRONG_BACKEND unless jax runs on the GPU (any backend with --smoke)."""
    import jax

    backend, devices = jax.default_backend(), [str(d) for d in jax.devices()]
    rows("backend", backend, jax_version=jax.__version__, devices=devices,
         say=f"jax {jax.__version__} backend {backend}: {', '.join(devices)}")
    if backend != "gpu" and sizes is not SMOKE:
        rows("end", "wrong_backend", say=f"jax is on {backend!r}, not the GPU: stopping (did the CUDA plugin fail to load? "
             "see gpu_check.log)")
        sys.exit(WRONG_BACKEND)


def measure_env(rows: Rows, sizes: Sizes, task: str, physics: str, n: int, raw: bool) -> None:
    """Rows env_names(...): the training wrapper's stepping, then raw stepping."""
    import envs

    options = env_options(task, physics)
    env = envs.make(task, **options)
    p, tags = f"{task}/{physics}/{n}", dict(physics_used=options.get("physics"), num_envs=n, steps=sizes.env_steps)
    w = wrapped_stepping(env, n, sizes.env_steps, rounds=sizes.env_repeats, reset_cost=False)
    rows(f"{p}/wrapped_compile_s", w["wrapped_compile_s"], "s", **tags)
    rows(f"{p}/wrapped_steps_per_s", w["wrapped_steps_per_s"], "env-steps/s", episodes_ended=w["episodes_ended"],
         nonfinite=w["nonfinite"], **tags, say=f"{p} wrapped {w['wrapped_steps_per_s']:.4g} env-steps/s")
    if raw:
        r = raw_stepping(env, n, sizes.env_steps, rounds=sizes.env_repeats)
        rows(f"{p}/raw_compile_s", r["raw_compile_s"], "s", **tags)
        rows(f"{p}/raw_steps_per_s", r["raw_steps_per_s"], "env-steps/s", **tags,
             say=f"{p} raw {r['raw_steps_per_s']:.4g} env-steps/s")
        rows(f"{p}/wrapped_over_raw", w["wrapped_steps_per_s"] / r["raw_steps_per_s"], "ratio", **tags)


def train_config(sizes: Sizes, agent: str):
    """(cfg, agent_cfg): `train_overrides` through config_lib.build, the env phase's physics."""
    from mjx_smfp import config as config_lib

    env_kwargs = json.dumps(env_options(sizes.train_env, sizes.env_headline[1]))
    return config_lib.build({"env": sizes.train_env, "agent": agent, "env_kwargs": env_kwargs, **sizes.train_overrides})


class Learning(Capture):
    """What runner.run logs, as rows: the compile seconds, the median rate of the calls after the
    first, a `learning` row per call (at most one per `learn_row_s`) and one the moment the training
    return first reaches each threshold."""

    def __init__(self, rows: Rows, sizes: Sizes, started: float):
        super().__init__()
        self.row, self.sizes, self.started = rows, sizes, started
        self.reached, self.last_row, self.last = {}, 0.0, {}

    def write(self, step: int, scalars: dict) -> None:
        super().write(step, scalars)
        rows, wall_s = self.row, time.time() - self.started
        for key, name in (("perf/warmup_seconds", "warmup_s"), ("perf/compile_seconds", "compile/train_chunk_s")):
            if key in scalars:
                rows(name, scalars[key], "s", say=f"{name} {scalars[key]:.1f} s")
        if "perf/env_steps_per_s" not in scalars:
            return
        if sum("perf/env_steps_per_s" in r for r in self.rows) == self.sizes.timed_calls + 1:  # the first: not timed
            sps, ups = self.median_rates().values()
            rows("throughput", sps, "env-steps/s", updates_per_s=ups, say=f"{sps:.4g} env-steps/s, {ups:.4g} updates/s")
        if "eval/forward_velocity" in scalars:  # a locomotion return is read with its forward speed
            rows("forward_velocity", scalars["eval/forward_velocity"], "m/s", wall_s=wall_s, env_steps=step,
                 eval_return=scalars.get("eval/return_mean"))
        ret = float(scalars.get("train/episode_return", math.nan))
        self.last = dict(wall_s=wall_s, env_steps=step, last_return=ret)
        if time.time() - self.last_row >= self.sizes.learn_row_s:
            self.last_row = time.time()
            rows("learning", ret, "return", wall_s=wall_s, env_steps=step)
        for thr in self.sizes.thresholds:
            if thr not in self.reached and math.isfinite(ret) and ret >= thr:
                self.reached[thr] = dict(wall_s=wall_s, env_steps=step)
                rows(f"return_reached/{thr:g}", wall_s, "s", env_steps=step,
                     say=f"training return {ret:.4g} >= {thr:g} at {wall_s:.0f} s, {step:.3g} steps")


def phase_train(agent: str, sizes: Sizes, rows: Rows, deadline: float, started: float) -> None:
    """The library's loop (runner.run) until the phase's limit nears: compile seconds, throughput,
    the training return against wall-clock from the phase's start."""
    from mjx_smfp.engine import Engine
    from mjx_smfp.runner import RunClock, Schedule, run

    cfg, agent_cfg = train_config(sizes, agent)
    rows("config", cfg.preset, env=cfg.env, env_kwargs=cfg.env_kwargs, num_envs=cfg.num_envs,
         batch_size=cfg.batch_size, updates_per_step=cfg.updates_per_step, iterations_per_call=cfg.iterations_per_call,
         say=f"{cfg.env} preset {cfg.preset}: {cfg.num_envs} envs, batch {cfg.batch_size}, G={cfg.updates_per_step}")
    clock, t = RunClock(), time.time()
    engine = Engine(cfg, agent_cfg)
    engine.check_fits()
    rows("engine_build_s", time.time() - t, "s")
    learning = Learning(rows, sizes, started)
    schedule = Schedule(engine.final_env_steps, seconds=deadline - time.time() - 15)  # the final save in hand
    with tempfile.TemporaryDirectory() as run_dir:
        run(engine, run_dir, schedule=schedule, clock=clock, logger=learning, verbose=False)
    rows("returns_reached", {f"{thr:g}": learning.reached.get(thr) for thr in sizes.thresholds},
         "s from the phase's start", **learning.last)


def phase_costs(sizes: Sizes, rows: Rows, more: bool = False) -> None:
    """ms per update and per action of SAC and SMFP, and their ratios (`costs_more`: the generative
    agents beside SAC), at the recipe and networks the train phases resolve to: what trains."""
    import envs
    from mjx_smfp import recipes

    cfg, agent_cfg = train_config(sizes, "smfp")
    nets = {**recipes.recipe(cfg.recipe),
            **(sizes.cost_nets or {k: getattr(agent_cfg, k) for k in ("actor_hidden", "critic_hidden")})}
    env = envs.make(cfg.env, **cfg.env_options)
    n, names, t = sizes.cost_act_envs, ["sac", *(sizes.generative if more else ("smfp",))], time.time()
    obs_size, action_size, batch = int(env.observation_size), int(env.action_size), cfg.batch_size
    costs = agent_costs(names, nets, obs_size, action_size, batch, (n,), sizes.cost_repeats, sizes.cost_rounds)
    tags = dict(batch_size=batch, act_envs=n, obs_size=obs_size, action_size=action_size, agent_config=repr(nets))
    for a in names:
        rows(f"{a}/update_ms", costs[f"{a}_update_ms"], "ms", **tags)
        rows(f"{a}/act_{n}_ms", costs[f"{a}_act_{n}_ms"], "ms", **tags, say=f"{a}: ms/update "
             f"{costs[f'{a}_update_ms']:.3g}, ms/act@{n} {costs[f'{a}_act_{n}_ms']:.3g}")
    if not more:
        up, act = costs["smfp_update_ms"] / costs["sac_update_ms"], costs[f"smfp_act_{n}_ms"] / costs[f"sac_act_{n}_ms"]
        rows("smfp_over_sac_update", up, "ratio", **tags)
        rows(f"smfp_over_sac_act_{n}", act, "ratio", **tags, say=f"SMFP/SAC: update {up:.2f}x, act@{n} {act:.2f}x")
        rows("with_compile_s", time.time() - t, "s")


def phase_brax(sizes: Sizes, rows: Rows) -> None:
    import envs
    from benchmarks.brax_sac import brax_sac

    cfg, agent_cfg = train_config(sizes, "sac")
    sps = brax_sac(envs.make(cfg.env, **cfg.env_options), cfg, agent_cfg, calls=sizes.timed_calls)
    rows("sac", sps, "env-steps/s", num_envs=cfg.num_envs, batch_size=cfg.batch_size,
         updates_per_step=cfg.updates_per_step, say=f"brax SAC {sps:.4g} env-steps/s")


def run_phase(phase: str, sizes: Sizes, out: str, t0: float, deadline: float, started: float) -> None:
    """Child process: one phase. An error is written as the phase's `end` row and re-raised."""
    from benchmarks import machine

    rows = Rows(out, phase, t0)
    check_backend(rows, sizes)
    try:
        if phase == "env":
            rows("machine", machine.describe())
        for spec in {"env": [(*sizes.env_headline, True)], "env_more": sizes.env_more}.get(phase, ()):
            measure_env(rows, sizes, *spec)  # each batch size streams its rows; the parent's limit ends the rest
        if phase.startswith("train_"):
            phase_train(phase[len("train_"):], sizes, rows, deadline, started)
        elif phase.startswith("costs"):
            phase_costs(sizes, rows, more=phase == "costs_more")
        elif phase == "brax":
            phase_brax(sizes, rows)
    except BaseException as err:
        rows("end", "error", error=f"{type(err).__name__}: {err}", seconds=time.time() - started)
        raise
    rows("end", "ok", seconds=time.time() - started)


def preflight() -> None:
    """The GPUs the driver sees and the jax that will run, before anything else (no jax import:
    the parent must not take GPU memory)."""
    from importlib import metadata

    from benchmarks.machine import nvidia_gpus

    versions = []
    for name in ("jax", "jaxlib", "jax-cuda13-plugin", "jax-cuda12-plugin", "flax", "optax"):
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            pass
    say(f"[gpu_check] nvidia-smi -L: {nvidia_gpus()[1]}")
    say(f"[gpu_check] Python {sys.version.split()[0]}; {', '.join(versions)}")


def phase_environment(wheelhouse: str | None, scratch: str) -> dict:
    """The phases' environment variables: a compile cache shared inside the run and, with
    `wheelhouse`, its wheels pip-installed offline without dependencies into a folder on PYTHONPATH."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", MUJOCO_GL="disable", TF_CPP_MIN_LOG_LEVEL="2")
    env.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(scratch, "jax_cache"))
    env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    if wheelhouse:
        wheels, site, t = sorted(glob.glob(os.path.join(wheelhouse, "*.whl"))), os.path.join(scratch, "site"), time.time()
        if not wheels:
            sys.exit(f"gpu_check: no wheels in {wheelhouse!r}: run `make wheelhouse` where there is network, "
                     f"and carry {wheelhouse} to this machine")
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--disable-pip-version-check", "--no-cache-dir", "--target", site, *wheels], check=True)
        say(f"[gpu_check] installed {len(wheels)} wheels from {wheelhouse} in {time.time() - t:.0f} s")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (site, REPO, env.get("PYTHONPATH")) if p)
    return env


def _die_with_parent() -> None:
    """In a phase's process (Linux): be killed when the parent dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


RUNNING: list = []  # the phase process now running (the parent's SIGTERM handler kills it)


def spawn(phase: str, args, t0: float, env: dict, log, timeout: float) -> tuple[str, float]:
    """Runs one phase in a subprocess (its stdout ours, its stderr into `log`), killed after
    `timeout` seconds. Returns (how it ended: ok | error | timeout | wrong_backend, seconds)."""
    started = time.time()
    log.write(f"\n===== {phase} =====\n")
    log.flush()
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.gpu_check", "--phase", phase, "--out", args.out,
                             "--t0", repr(t0), "--started", repr(started), "--deadline", repr(started + timeout),
                             "--sizes", args.sizes], cwd=REPO, env=env, stderr=log, preexec_fn=_die_with_parent)
    RUNNING[:] = [proc]
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return "timeout", time.time() - started
    return ("ok" if rc == 0 else "wrong_backend" if rc == WRONG_BACKEND else "error"), time.time() - started


def headline(rows: list[dict], sizes: Sizes) -> dict:
    """The figures worth a glance: headline env stepping, the loops, their costs, the thresholds."""
    k, h = by_key(rows), {}
    task, physics, n = sizes.env_headline
    p, value = f"env/{task}/{physics}/{n}", (lambda key: k.get(key, {}).get("value"))  # noqa: E731
    for name in ("wrapped_steps_per_s", "raw_steps_per_s", "wrapped_over_raw", "wrapped_compile_s", "raw_compile_s"):
        h[f"env_{name}"] = value(f"{p}/{name}")
    for agent in ("sac", "smfp"):
        q = f"train_{agent}"
        if f"{q}/throughput" in k:
            t, raw = k[f"{q}/throughput"], value(f"{p}/raw_steps_per_s")
            h[f"{agent}_env_steps_per_s"], h[f"{agent}_updates_per_s"] = t["value"], t["updates_per_s"]
            if raw and k.get(f"{q}/config", {}).get("num_envs") == n and sizes.train_env == task:
                h[f"{agent}_loop_over_raw"] = t["value"] / raw
        compiles = [r["value"] for r in rows if r["key"] in (f"{q}/warmup_s", f"{q}/compile/train_chunk_s")]
        h[f"{agent}_compile_s"] = sum(compiles) if compiles else None
        for thr in sizes.thresholds:
            h[f"{agent}_time_to_return_{thr:g}_s"] = value(f"{q}/return_reached/{thr:g}")
        learning = [r for r in rows if r["key"] == f"{q}/learning"]
        if learning:
            h[f"{agent}_trained_s"], h[f"{agent}_env_steps"] = learning[-1]["wall_s"], learning[-1]["env_steps"]
            h[f"{agent}_last_return"] = next((r["value"] for r in reversed(learning) if r["value"] is not None), None)
    for name in ("smfp_over_sac_update", f"smfp_over_sac_act_{sizes.cost_act_envs}"):
        h[name] = value(f"costs/{name}")
    h["brax_sac_env_steps_per_s"] = value("brax/sac")
    return {name: v for name, v in h.items() if v is not None}  # not measured: not made up


def targets(h: dict, sizes: Sizes) -> list[dict]:
    """TARGETS against the headline: measured (None if not measured) and met (None if unknown)."""
    top = max(sizes.thresholds)
    sac_t, smfp_t = h.get(f"sac_time_to_return_{top:g}_s"), h.get(f"smfp_time_to_return_{top:g}_s")
    measured = {"sac_time_to_return_5000_s": sac_t if top == 5000 else None,
                "smfp_over_sac_time_to_return_5000": smfp_t / sac_t if top == 5000 and sac_t and smfp_t else None,
                "sac_env_steps_per_s": h.get("sac_env_steps_per_s"),
                "smfp_env_steps_per_s": h.get("smfp_env_steps_per_s")}
    out = []
    for t in TARGETS:
        value = measured[t["name"]]
        met = None if value is None else (value <= t["at_most"] if "at_most" in t else value >= t["at_least"])
        out.append({**t, "measured": value, "met": met})
    return out


def write_summary(out: str, sizes: Sizes, plan: list[Phase], status: dict, t0: float, note: str = "") -> dict:
    rows = read_rows(out)
    keys, h = {r["key"] for r in rows}, headline(rows, sizes)
    missing = {p.name: [n for n in planned_rows(sizes)[p.name] if f"{p.name}/{n}" not in keys] for p in plan}
    summary = dict(sizes=sizes.name, total_s=round(time.time() - t0, 1), note=note,
                   plan=[dict(dataclasses.asdict(p), started=p.name in status) for p in plan], status=status,
                   headline=h, targets=targets(h, sizes), missing={p: m for p, m in missing.items() if m},
                   files=f"{ROWS}: one row per figure; {SUMMARY}: this; {LOG}: the phases' stderr")
    write_json_atomic(os.path.join(out, SUMMARY), summary)
    return summary


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="CPU sizes: tiny envs and nets, seconds of learning")
    parser.add_argument("--out", default=os.environ.get("OUT") or os.path.join(REPO, "benchmarks", "results", "gpu_check"),
                        help="folder for rows.jsonl, summary.json, gpu_check.log (default: $OUT, else "
                             "benchmarks/results/gpu_check); what was there is replaced")
    parser.add_argument("--wheelhouse", help="install these wheels offline first (make wheelhouse makes them)")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"comma list, a subset of {', '.join(PHASES)}")
    parser.add_argument("--total-s", type=float, help="the whole run's time limit; default "
                        f"{GPU.total_s:.0f} s, {SMOKE.total_s:.0f} s with --smoke")
    parser.add_argument("--sizes", help=argparse.SUPPRESS)  # child processes: gpu | smoke
    parser.add_argument("--phase", help=argparse.SUPPRESS)  # child process: run this one phase
    for name in ("--t0", "--started", "--deadline"):
        parser.add_argument(name, type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.sizes = args.sizes or ("smoke" if args.smoke else "gpu")
    sizes, args.out = SIZES[args.sizes], os.path.abspath(args.out)  # the phases run from the repository root
    if args.phase:
        return run_phase(args.phase, sizes, args.out, args.t0, args.deadline, args.started)
    t0 = time.time()
    preflight()
    chosen = [p for p in args.phases.split(",") if p]
    if set(chosen) - set(PHASES):
        parser.error(f"unknown phases {sorted(set(chosen) - set(PHASES))}; choose from {', '.join(PHASES)}")
    os.makedirs(args.out, exist_ok=True)
    for name in (ROWS, SUMMARY, LOG, SUMMARY + ".tmp"):  # a fresh record (and no stale temporary file)
        if os.path.exists(os.path.join(args.out, name)):
            os.remove(os.path.join(args.out, name))
    scratch = tempfile.mkdtemp(prefix="gpu_check_")  # installed wheels and the run's compile cache

    def on_term(signum, frame):  # the device tool's time limit: end the phase, tidy up, go
        for proc in RUNNING:
            proc.kill()
        shutil.rmtree(scratch, ignore_errors=True)
        os._exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    try:
        code = run_plan(args, sizes, [p for p in sizes.plan if p.name in chosen], args.total_s or sizes.total_s, t0,
                        phase_environment(args.wheelhouse, scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    sys.exit(code)


def run_plan(args, sizes: Sizes, plan: list[Phase], total_s: float, t0: float, env: dict) -> int:
    """Every phase of `plan` in turn, the optional ones while time is left; exit status 1 if a
    headline phase did not end ok, WRONG_BACKEND (stopping there) if jax was not on the GPU."""
    Rows(args.out, "gpu_check", t0, echo=False)("plan", [dataclasses.asdict(p) for p in plan], sizes=sizes.name,
                                                 total_s=total_s)
    say(f"[gpu_check] {sizes.name} sizes, {total_s:.0f} s: " + ", ".join(
        f"{p.name} {p.limit_s:.0f}s{'' if p.required else '?'}" for p in plan) + f"; rows into {args.out}/{ROWS}")
    status: dict[str, dict] = {}
    write_summary(args.out, sizes, plan, status, t0)
    code, log_path = 0, os.path.join(args.out, LOG)
    with open(log_path, "w") as log:
        for phase in plan:
            left, end = total_s - (time.time() - t0) - 3, Rows(args.out, phase.name, t0, echo=False)  # 3 s: the summary
            if not phase.required and left < sizes.min_start_s:
                status[phase.name] = {"status": "skipped", "reason": f"{left:.0f} s left, under {sizes.min_start_s:.0f} s"}
                end("end", "skipped", reason=status[phase.name]["reason"])
                say(f"[gpu_check] {phase.name}: skipped ({status[phase.name]['reason']})")
                continue
            timeout = max(1.0, min(phase.limit_s, left))
            ended, seconds = spawn(phase.name, args, t0, env, log, timeout)
            if f"{phase.name}/end" not in by_key(read_rows(args.out)):  # killed, or died unheard
                end("end", ended, seconds=seconds, limit_s=timeout)
            status[phase.name] = {"status": ended, "seconds": round(seconds, 1), "limit_s": round(timeout, 1)}
            say(f"[gpu_check] {phase.name}: {ended} in {seconds:.0f} s (limit {timeout:.0f} s)")
            if ended == "wrong_backend":
                write_summary(args.out, sizes, plan, status, t0, note="stopped: jax is not on the GPU")
                log.flush()
                say("[gpu_check] STOPPED: jax is not on the GPU; end of gpu_check.log:\n" + open(log_path).read()[-2500:])
                return WRONG_BACKEND
            code = 1 if ended != "ok" and phase.required else code
            write_summary(args.out, sizes, plan, status, t0)
    summary = write_summary(args.out, sizes, plan, status, t0)
    say("[gpu_check] " + "; ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                   for k, v in summary["headline"].items()))
    say("[gpu_check] targets: " + "; ".join(f"{t['name']} {t['measured']} ({ {True: 'met', False: 'not met'}.get(t['met'], 'unknown')})"
                                            for t in summary["targets"]))
    if summary["missing"]:
        say(f"[gpu_check] rows not written: {dumps(summary['missing'])[:1500]}")
    failed = [p for p, s in status.items() if s["status"] not in ("ok", "skipped")]
    if failed:
        say(f"[gpu_check] {', '.join(failed)} did not finish; end of gpu_check.log:\n" + open(log_path).read()[-2500:])
    say(f"[gpu_check] done in {time.time() - t0:.0f} s")
    return code


def verify(out: str, complete: bool, at_least_rows: int = 0) -> dict:
    """What a run left in `out`, checked: at most MAX_FILES files no more than 2 folders down, no
    *.tmp, strict JSON, at least `at_least_rows` rows; with `complete`, every planned row of every
    phase in the plan, each ended ok. Returns dict(problems, rows (count), files, phases (how each ended))."""
    problems, files, rows, summary = [], [], [], None
    for root, _, names in os.walk(out):
        files += [os.path.relpath(os.path.join(root, n), out) for n in names]
        if os.path.relpath(root, out).count(os.sep) + (root != out) > 2 and names:
            problems.append(f"{root} is more than 2 folders down")
    if len(files) > MAX_FILES:
        problems.append(f"{len(files)} files, over {MAX_FILES}: {files}")
    problems += [f"leftover temporary file {f}" for f in files if f.endswith(".tmp")]
    try:
        rows = read_rows(out)
    except ValueError as err:
        problems.append(f"{ROWS}: not strict JSON Lines: {err}")
    if len(rows) < at_least_rows:
        problems.append(f"{len(rows)} rows, fewer than the {at_least_rows} written before")
    if os.path.exists(os.path.join(out, SUMMARY)):
        try:
            summary = loads_strict(open(os.path.join(out, SUMMARY)).read())
        except ValueError as err:
            problems.append(f"{SUMMARY}: not strict JSON: {err}")
    phases, keys = {r["phase"]: r["value"] for r in rows if r["key"].endswith("/end")}, {r["key"] for r in rows}
    if complete and summary is None:
        problems.append(f"no {SUMMARY}")
    plan = summary["plan"] if complete and summary else []
    for p in plan:
        missing = [n for n in planned_rows(SIZES[summary["sizes"]])[p["name"]] if f"{p['name']}/{n}" not in keys]
        if missing:
            problems.append(f"{p['name']}: rows not written: {missing}")
        if phases.get(p["name"]) != "ok":
            problems.append(f"{p['name']}: ended {phases.get(p['name'])!r}, not 'ok'")
    return dict(problems=problems, rows=len(rows), files=sorted(files), phases=phases)


if __name__ == "__main__":
    main()
