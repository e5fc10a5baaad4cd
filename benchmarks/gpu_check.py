"""One-shot GPU check: every GPU figure the project needs, in one run of at most ~9 minutes.

    make wheelhouse                                   # here, with network: .wheelhouse/ (cp312 wheels)
    make gpu-check                                    # there: python3 -m benchmarks.gpu_check --wheelhouse .wheelhouse
    python -m benchmarks.gpu_check --smoke --out DIR  # the same code path on CPU, tiny sizes (a test)

The GPU machine has no network and its own jax (CUDA): the wheels of what it lacks (mujoco,
mujoco-mjx, brax, gymnasium, ...) are installed offline with `--no-deps` into a target folder put
on PYTHONPATH, on top of that jax (never reinstalled). Then each phase runs in its own
subprocess under a hard time limit (a hung compile or an out-of-memory cannot take the later
phases with it) and writes `<phase>.json` into `--out` (default `$OUT`) as soon as it has
figures, so whatever finished comes back even if the run is cut short:

  env        env-steps/s, training wrappers vs raw `mjx.step`: humanoid and halfcheetah at
             1024/4096/8192 envs with `physics="gpu"` ("fast" where the task has no "gpu"
             preset), plus one 4096-env humanoid probe with the Gymnasium-faithful physics;
  costs      SAC and SMFP ms per update (batch 8192) and per action (4096 envs) at the fast
             preset's networks, interleaved rounds (benchmarks/throughput.agent_costs); then, while
             the phase has time, SAC Flow and DIME beside SAC (benchmarks/policy_cost.measure);
  train_smfp the compiled loop at the fast preset on humanoid: env-steps/s and updates/s, then
  train_sac  training for the rest of the phase's time, return vs wall-clock;
  brax       brax's own SAC at the same settings, only with the time left over.

`summary.json` gathers the headline figures (and the loop/raw ratio); stdout carries one
compact line per measurement (the device tool keeps only the last 12,000 characters) and the
phases' stderr goes to `gpu_check.log` in the same folder.
"""
from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHASES = ("env", "costs", "train_smfp", "train_sac", "brax")


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Everything that differs between the GPU run and the CPU smoke run."""
    tasks: tuple[str, ...]  # env phase, at `physics_preset`
    num_envs: tuple[int, ...]
    raw_num_envs: int  # the batch size at which raw mjx.step is also timed (and the loop compared)
    env_steps: int  # steps per timed lax.scan
    probe: tuple[str, int] | None  # (task, envs) timed once with the Gymnasium-faithful physics
    physics_preset: str
    train_env: str
    train_overrides: dict  # config_lib.build overrides for the train and brax phases
    cost_nets: dict | None  # agent network overrides for `costs`; None = the train config's
    cost_act_envs: int
    cost_repeats: int
    cost_rounds: int
    timed_calls: int  # train_chunk calls timed for throughput before the learning run
    learn_s: float  # then train this long (or until the phase's time is nearly up)
    budgets: dict  # phase -> seconds (hard limit; brax gets what is left, at least brax_min_s)
    brax_min_s: float
    total_s: float  # the whole run's limit (default of --total-s)


GPU = Sizes(
    tasks=("humanoid", "halfcheetah"), num_envs=(1024, 4096, 8192), raw_num_envs=4096, env_steps=100,
    probe=("humanoid", 4096), physics_preset="gpu", train_env="humanoid",
    train_overrides=dict(preset="fast", num_envs=4096, eval_episodes=1),
    cost_nets=None, cost_act_envs=4096, cost_repeats=20, cost_rounds=5, timed_calls=3, learn_s=120,
    budgets=dict(env=150, costs=75, train_smfp=150, train_sac=150), brax_min_s=60,
    total_s=540,
)
SMOKE = Sizes(
    tasks=("inverted_pendulum",), num_envs=(4,), raw_num_envs=4, env_steps=10,
    # multimodal (a one-step task, no physics) keeps the loop's compiles short on a CPU.
    probe=None, physics_preset="gpu", train_env="multimodal",
    train_overrides=dict(preset="cpu", num_envs=4, batch_size=32, updates_per_step=1, replay_capacity=2_000,
                         learning_starts=40, iterations_per_call=10, eval_episodes=1,
                         actor_hidden=(16, 16), critic_hidden=(16, 16)),
    cost_nets=dict(actor_hidden=(16, 16), critic_hidden=(16, 16)), cost_act_envs=8, cost_repeats=2, cost_rounds=1,
    # Limits far above the ~3 minutes it needs alone on 2 cores: a shared machine was seen 5x slower.
    timed_calls=2, learn_s=5, budgets=dict(env=900, costs=600, train_smfp=600, train_sac=600), brax_min_s=float("inf"),
    total_s=2700,
)


def finite_or_none(x):
    """JSON-safe float: NaN/inf become null (e.g. the return of a chunk in which no episode ended)."""
    x = float(x)
    return x if math.isfinite(x) else None


class Writer:
    """Writes one phase's JSON (atomically) every time it has new figures."""

    def __init__(self, out: str, phase: str, sizes: Sizes):
        self.path = os.path.join(out, f"{phase}.json")
        self.data = {"phase": phase, "status": "running", "sizes": "smoke" if sizes is SMOKE else "gpu"}

    def __call__(self, **fields) -> None:
        self.data.update(fields)
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f, indent=1)
        os.replace(tmp, self.path)


def say(line: str) -> None:
    print(line, flush=True)


# ----------------------------------------------------------------------------------------------
# Phases (each runs in its own process; `deadline` is a time.time() at which it must be done)
# ----------------------------------------------------------------------------------------------
def physics_for(name: str, preset: str) -> str | None:
    """`preset` if the task has it, else "fast" (the "gpu" preset is new; older envs lack it);
    None for a task without physics options (multimodal)."""
    import envs

    if not hasattr(envs.make(name), "physics"):
        return None
    try:
        envs.make(name, physics=preset)
        return preset
    except ValueError:
        return "fast"


def phase_env(sizes: Sizes, write: Writer, deadline: float) -> None:
    import jax

    from benchmarks import machine
    from benchmarks.env_throughput import bench_task

    write(machine=machine.describe())
    rows, compact = [], []
    runs = [(t, sizes.num_envs, physics_for(t, sizes.physics_preset), {sizes.raw_num_envs}) for t in sizes.tasks]
    if sizes.probe:
        runs.append((sizes.probe[0], (sizes.probe[1],), "gymnasium", set()))
    for task, num_envs, physics, raw_at in runs:
        found = bench_task(task, list(num_envs), sizes.env_steps, 1000, physics, repeats=2, raw_num_envs=raw_at)
        for r in found:
            r["physics_preset"] = physics
        rows += found
        compact += [f"{r['task']}/{physics}/{r['num_envs']}: {r['wrapped_steps_per_s']:.3g}" for r in found]
        write(rows=rows, backend=jax.default_backend())
    say("[env] wrapped steps/s " + "; ".join(compact))


def phase_costs(sizes: Sizes, write: Writer, deadline: float) -> None:
    from benchmarks import policy_cost
    from benchmarks.throughput import agent_costs
    from mjx_smfp import config as config_lib

    cfg, agent_cfg = config_lib.build({"env": sizes.train_env, "agent": "smfp", **sizes.train_overrides})
    nets = sizes.cost_nets or {k: getattr(agent_cfg, k) for k in ("actor_hidden", "critic_hidden")}
    obs_size, action_size = env_sizes(cfg)
    costs = agent_costs(["sac", "smfp"], nets, obs_size, action_size, cfg.batch_size, (sizes.cost_act_envs,),
                        repeats=sizes.cost_repeats, rounds=sizes.cost_rounds)
    n = sizes.cost_act_envs
    ratios = {"smfp_over_sac_update": costs["smfp_update_ms"] / costs["sac_update_ms"],
              f"smfp_over_sac_act_{n}": costs[f"smfp_act_{n}_ms"] / costs[f"sac_act_{n}_ms"]}
    write(batch_size=cfg.batch_size, obs_size=obs_size, action_size=action_size, networks=repr(nets), **costs, **ratios)
    say(f"[costs] ms/update sac {costs['sac_update_ms']:.2f} smfp {costs['smfp_update_ms']:.2f} "
        f"({ratios['smfp_over_sac_update']:.2f}x); ms/act@{n} sac {costs[f'sac_act_{n}_ms']:.3f} "
        f"smfp {costs[f'smfp_act_{n}_ms']:.3f} ({ratios[f'smfp_over_sac_act_{n}']:.2f}x)")
    # The multi-step generative baselines (benchmarks/policy_cost.py's table), with SAC again as the
    # yardstick, only while the phase has time: the SAC/SMFP figures above are already written.
    if time.time() < deadline - 30:
        rows = policy_cost.measure(["sac", "sacflow", "dime"], obs_size, action_size, nets["actor_hidden"],
                                   (n,), (cfg.batch_size,), sizes.cost_repeats, sizes.cost_rounds,
                                   critic_hidden=nets["critic_hidden"])
        write(batch_size=cfg.batch_size, obs_size=obs_size, action_size=action_size, networks=repr(nets), **costs,
              **ratios, generative=rows)
        for r in rows[1:]:
            say(f"[costs] {r['agent']} (NFE {r['nfe']}): ms/update {r[f'update_{cfg.batch_size}_ms']:.2f} "
                f"({r['update_over_sac']:.2f}x sac), ms/act@{n} {r[f'act_{n}_ms']:.3f} ({r['act_over_sac']:.2f}x)")


def env_sizes(cfg) -> tuple[int, int]:
    import envs

    env = envs.make(cfg.env, **cfg.env_options)
    return int(env.observation_size), int(env.action_size)


def train_config(sizes: Sizes, agent: str):
    """(cfg, agent_cfg) of the train phases: `train_overrides`, with the env phase's physics."""
    from mjx_smfp import config as config_lib

    physics = physics_for(sizes.train_env, sizes.physics_preset)
    env_kwargs = json.dumps({} if physics is None else {"physics": physics})
    return config_lib.build({"env": sizes.train_env, "agent": agent, "env_kwargs": env_kwargs, **sizes.train_overrides})


def phase_train(agent: str, sizes: Sizes, write: Writer, deadline: float) -> None:
    """Throughput of the compiled loop (steady state), then training until `deadline` nears."""
    import jax

    from mjx_smfp.engine import Engine

    cfg, agent_cfg = train_config(sizes, agent)
    t_start = time.time()
    engine = Engine(cfg, agent_cfg)
    ts = engine.init_state()
    ts, summary = engine.warmup(ts)
    jax.block_until_ready(summary)
    warmup_s = time.time() - t_start
    t = time.time()
    ts, summary = engine.train_chunk(ts)
    jax.block_until_ready(summary)
    first_call_s = time.time() - t
    times = []
    for _ in range(sizes.timed_calls):
        t = time.time()
        ts, summary = engine.train_chunk(ts)
        jax.block_until_ready(summary)
        times.append(time.time() - t)
    call_s = sorted(times)[len(times) // 2]
    iters = cfg.iterations_per_call
    write(env=cfg.env, agent=agent, env_kwargs=cfg.env_kwargs, num_envs=cfg.num_envs, batch_size=cfg.batch_size,
          updates_per_step=cfg.updates_per_step, iterations_per_call=iters, replay_capacity=cfg.replay_capacity,
          networks=f"actor {agent_cfg.actor_hidden}, critic {agent_cfg.critic_hidden}",
          warmup_with_compile_s=warmup_s, first_call_with_compile_s=first_call_s, call_s=call_s,
          env_steps_per_s=iters * cfg.num_envs / call_s, updates_per_s=iters * cfg.updates_per_step / call_s)
    say(f"[train_{agent}] {cfg.env} {cfg.num_envs} envs batch {cfg.batch_size} G={cfg.updates_per_step}: "
        f"{write.data['env_steps_per_s']:.3g} env-steps/s, {write.data['updates_per_s']:.3g} updates/s "
        f"(warm-up+compile {warmup_s:.0f} s, first call {first_call_s:.0f} s)")

    # Learning: keep one chunk's time (plus margin) in hand so the last write beats the deadline.
    curve, last_print, last_write = [], time.time(), 0.0
    stop = min(time.time() + sizes.learn_s, deadline - 2 * call_s - 5)
    while time.time() < stop:
        ts, summary = engine.train_chunk(ts)
        summary = jax.device_get(summary)
        curve.append({"wall_s": time.time() - t_start, "env_steps": int(summary["env_steps"]),
                      "updates": int(summary["updates"]), "episode_return": finite_or_none(summary["episode_return"])})
        if time.time() - last_write > 2:
            last_write = time.time()
            write(learning=curve)
        if time.time() - last_print > 20:
            last_print = time.time()
            say(f"[train_{agent}] {curve[-1]['wall_s']:.0f} s {curve[-1]['env_steps']:.3g} steps "
                f"return {curve[-1]['episode_return']}")
    write(learning=curve, learning_wall_s_from="the start of engine construction (compilation included)")
    returns = [p["episode_return"] for p in curve if p["episode_return"] is not None] or [float("nan")]
    say(f"[train_{agent}] trained {time.time() - t_start:.0f} s in all, to {int(summary['env_steps']):.3g} env steps; "
        f"return first {returns[0]:.3g} last {returns[-1]:.3g}")


def phase_brax(sizes: Sizes, write: Writer, deadline: float) -> None:
    import envs
    from benchmarks.throughput import brax_sac

    cfg, agent_cfg = train_config(sizes, "sac")
    env = envs.make(cfg.env, **cfg.env_options)
    result = brax_sac(env, cfg, agent_cfg, calls=sizes.timed_calls)
    write(env=cfg.env, num_envs=cfg.num_envs, batch_size=cfg.batch_size, updates_per_step=cfg.updates_per_step,
          **result)
    say(f"[brax] SAC {result['env_steps_per_s']:.3g} env-steps/s, {result['updates_per_s']:.3g} updates/s "
        f"({result['total_s']:.0f} s with compile)")


def run_phase(phase: str, sizes: Sizes, out: str, deadline: float) -> None:
    """Child process: one phase. Errors are recorded in the JSON and re-raised (exit status 1)."""
    write = Writer(out, phase, sizes)
    write()
    fn = {"env": phase_env, "costs": phase_costs, "brax": phase_brax,
          "train_smfp": lambda *a: phase_train("smfp", *a), "train_sac": lambda *a: phase_train("sac", *a)}[phase]
    try:
        fn(sizes, write, deadline)
    except BaseException as err:
        write(status="error", error=f"{type(err).__name__}: {err}")
        raise
    write(status="ok")


# ----------------------------------------------------------------------------------------------
# Parent: install the wheels, run the phases under time limits, summarise
# ----------------------------------------------------------------------------------------------
def install_wheelhouse(wheelhouse: str) -> str:
    """pip-installs every wheel in `wheelhouse` offline, without dependencies, into a temporary
    folder; returns that folder (for PYTHONPATH)."""
    wheels = sorted(glob.glob(os.path.join(wheelhouse, "*.whl")))
    if not wheels:
        sys.exit(f"gpu_check: no wheels in {wheelhouse!r}: run `make wheelhouse` where there is network, "
                 f"and carry {wheelhouse} to this machine")
    site = tempfile.mkdtemp(prefix="gpu_check_site_")
    t = time.time()
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                    "--disable-pip-version-check", "--target", site, *wheels], check=True)
    say(f"[gpu_check] installed {len(wheels)} wheels from {wheelhouse} into {site} in {time.time() - t:.0f} s")
    return site


def spawn(phase: str, args, env: dict, log, timeout: float) -> tuple[str, float]:
    """Runs one phase in a subprocess, echoing its stdout, killing it after `timeout` seconds.
    Returns (how it ended: ok | error | timeout, seconds)."""
    cmd = [sys.executable, "-m", "benchmarks.gpu_check", "--phase", phase, "--out", args.out,
           "--deadline", str(time.time() + timeout)] + (["--smoke"] if args.smoke else [])
    log.write(f"\n===== {phase} =====\n")
    log.flush()
    t = time.time()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    for line in proc.stdout:
        print("  " + line, end="", flush=True)
    rc = proc.wait()
    timed_out = not timer.is_alive()
    timer.cancel()
    return ("timeout" if timed_out and rc != 0 else "ok" if rc == 0 else "error"), time.time() - t


def read(out: str, phase: str) -> dict:
    path = os.path.join(out, f"{phase}.json")
    return json.load(open(path)) if os.path.exists(path) else {}


def headline(out: str, sizes: Sizes) -> dict:
    """The figures worth a glance, from the phases' JSON files."""
    h = {}
    env_rows = read(out, "env").get("rows", [])
    raw = {r["task"]: r["raw_steps_per_s"] for r in env_rows
           if r["num_envs"] == sizes.raw_num_envs and r["raw_steps_per_s"] == r["raw_steps_per_s"]}
    for r in env_rows:
        h[f"env_{r['task']}_{r['physics_preset']}_{r['num_envs']}_steps_per_s"] = r["wrapped_steps_per_s"]
    costs = read(out, "costs")
    for k in ("smfp_over_sac_update", f"smfp_over_sac_act_{sizes.cost_act_envs}"):
        if k in costs:
            h[k] = costs[k]
    for agent in ("smfp", "sac"):
        train = read(out, f"train_{agent}")
        if "env_steps_per_s" in train:
            h[f"loop_{agent}_env_steps_per_s"] = train["env_steps_per_s"]
            h[f"loop_{agent}_updates_per_s"] = train["updates_per_s"]
            if train["num_envs"] == sizes.raw_num_envs and sizes.train_env in raw:
                h[f"loop_{agent}_over_raw"] = train["env_steps_per_s"] / raw[sizes.train_env]
        returns = [p["episode_return"] for p in train.get("learning", []) if p["episode_return"] is not None]
        if returns:
            h[f"learn_{agent}_last_return"] = returns[-1]
            h[f"learn_{agent}_wall_s"] = train["learning"][-1]["wall_s"]
    if "env_steps_per_s" in read(out, "brax"):
        h["brax_sac_env_steps_per_s"] = read(out, "brax")["env_steps_per_s"]
    return h


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="CPU-sized: tiny envs/nets, seconds of learning")
    parser.add_argument("--out", default=os.environ.get("OUT") or os.path.join(REPO, "benchmarks", "results", "gpu_check"),
                        help="folder for the JSON files (default: $OUT, else benchmarks/results/gpu_check)")
    parser.add_argument("--wheelhouse", help="install these wheels offline first (make wheelhouse makes them)")
    parser.add_argument("--phases", default=",".join(PHASES), help=f"comma list of {', '.join(PHASES)}")
    parser.add_argument("--total-s", type=float, help="the whole run's time limit (brax gets the rest); "
                        f"default {GPU.total_s:.0f} s, {SMOKE.total_s:.0f} s with --smoke")
    parser.add_argument("--phase", help=argparse.SUPPRESS)  # child process: run this one phase
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else GPU
    args.out = os.path.abspath(args.out)  # the phases run from the repository root
    os.makedirs(args.out, exist_ok=True)
    if args.phase:
        return run_phase(args.phase, sizes, args.out, args.deadline)

    t0 = time.time()
    total_s = args.total_s or sizes.total_s
    phases = [p for p in args.phases.split(",") if p]
    unknown = sorted(set(phases) - set(PHASES))
    if unknown:
        parser.error(f"unknown phases {unknown}; choose from {', '.join(PHASES)}")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if args.wheelhouse:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (install_wheelhouse(args.wheelhouse), env.get("PYTHONPATH")) if p)
    say(f"[gpu_check] {'smoke' if args.smoke else 'gpu'} sizes; phases {', '.join(phases)}; JSON into {args.out}")
    status = {}
    with open(os.path.join(args.out, "gpu_check.log"), "w") as log:
        for phase in phases:
            left = total_s - (time.time() - t0)
            if phase == "brax":
                timeout = left - 5
                if timeout < sizes.brax_min_s:
                    reason = (f"{timeout:.0f} s left, under {sizes.brax_min_s} s" if not args.smoke
                              else "not in --smoke (brax SAC compiles for ~100 s on a CPU)")
                    Writer(args.out, phase, sizes)(status="skipped", reason=reason)
                    status[phase] = {"status": "skipped", "reason": reason}
                    say(f"[gpu_check] brax: skipped ({reason})")
                    continue
            else:
                timeout = min(sizes.budgets[phase], left)
            ended, seconds = spawn(phase, args, env, log, timeout)
            if ended != "ok":
                Writer(args.out, phase, sizes)(**{**read(args.out, phase), "status": ended})
            status[phase] = {"status": ended, "seconds": round(seconds, 1)}
            say(f"[gpu_check] {phase}: {ended} in {seconds:.0f} s (limit {timeout:.0f} s)")
    summary = {"status": status, "total_s": time.time() - t0, "headline": headline(args.out, sizes)}
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    say("[gpu_check] " + "; ".join(f"{k} {v:.3g}" for k, v in summary["headline"].items()))
    failed = [p for p, s in status.items() if s["status"] in ("error", "timeout")]
    if failed:
        with open(os.path.join(args.out, "gpu_check.log")) as f:
            say(f"[gpu_check] {', '.join(failed)} did not finish; end of gpu_check.log:\n" + f.read()[-2500:])
    say(f"[gpu_check] done in {time.time() - t0:.0f} s")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
