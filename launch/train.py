"""Train an agent on an MJX task: `python -m launch.train --env humanoid --agent sac --preset auto
[--field value ...] [--resume RUN_DIR]`; `--help` (with --agent/--env/--preset) lists every
option with its type, default and meaning.

Any TrainConfig field or agent Config field can be overridden (`--batch_size 512`,
`--temperature_lr 1e-3`). Runs are written to `<log_dir>/<env>/<agent>/<timestamp>/`
(TensorBoard events, metrics.jsonl/csv, config.json, checkpoints/). `--resume RUN_DIR`
continues that run from its latest checkpoint with its saved config; only the fields in
`mjx_smfp.rundir.RESUME_OVERRIDABLE` may be changed on resume. Ctrl-C or SIGTERM (`kill`, `timeout`, a SLURM
preemption) is answered within seconds: with training progress not yet checkpointed, it saves a
checkpoint after the current host call and exits (status 0); with nothing new to save (start-up,
warm-up, compiling, just after a checkpoint) it exits at once (status 128 + signal number);
a second Ctrl-C aborts. Each checkpoint also writes the policy alone to RUN_DIR/policy/
(mjx_smfp/policy_file.py).
`--preset fast` (thousands of envs) is refused on a CPU-only machine unless `--allow_cpu_fast true`.
Data parallel: `--num_devices N` (0 = all devices; num_envs, replay_capacity and batch_size
are global and must divide by N; `--batch_per_device true` makes batch_size per device).
Multi-host: run through launch/multihost.py; only process 0 prints and logs.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import time

# Tasks whose MJX physics is too heavy for a CPU, and the training speed measured for humanoid
# with the cpu preset on an idle 2-core Xeon (SMFP, 256 envs on gpu physics, XLA:CPU's YNNPACK
# fusions off: 800-920 env-steps/s; benchmarks/RESULTS.md "Humanoid on a laptop").
HEAVY_TASKS = ("humanoid", "humanoidstandup", "ant")
CPU_HUMANOID_STEPS_PER_S = 850


def backend_summary() -> str:
    """What trains: `gpu: NVIDIA H200 x1`, `cpu: 2 cores`."""
    import jax

    device = jax.devices()[0]
    if device.platform == "cpu":
        cores = len(os.sched_getaffinity(0))
        return f"cpu: {cores} core{'s' * (cores != 1)}"
    return f"{device.platform}: {device.device_kind} x{jax.device_count()}"


def physics_name(cfg) -> str:
    """The physics preset a run simulates with: `--physics`, unless `env_kwargs` names one."""
    return str(cfg.env_options.get("physics", cfg.physics))


def heavy_task_note(cfg) -> str | None:
    """What to expect (and do) when a GPU-sized task runs on the CPU backend; None otherwise."""
    import jax

    if cfg.env not in HEAVY_TASKS or jax.default_backend() != "cpu":
        return None
    hours = cfg.total_env_steps / CPU_HUMANOID_STEPS_PER_S / 3600
    if physics_name(cfg) == "gpu":
        physics, simulated = "", ("It simulates with the `gpu` physics preset (8x gymnasium's speed on humanoid, "
                                  "close to but not Gymnasium's MuJoCo: docs/physics.md; --physics gymnasium for that). ")
    else:
        physics, simulated = " --physics gpu (faster physics, docs/physics.md),", ""
    return (f"note: {cfg.env} is meant for a GPU. {simulated}On this CPU expect minutes of warm-up, then about "
            f"{CPU_HUMANOID_STEPS_PER_S} env-steps/s (humanoid, measured): ETA ~{hours:.1f} h for "
            f"{cfg.total_env_steps:,} env steps. Faster:{physics} fewer --total_env_steps, a GPU machine "
            "(--preset auto picks fast there), or --env inverted_pendulum to try the pipeline in minutes.")


def resolve(command):
    """The parsed command line (`cli.CommandLine`) -> (TrainConfig, agent Config, run_dir, resume
    flag); raises ValueError."""
    from mjx_smfp import config as config_lib
    from mjx_smfp import rundir

    if command.resume is not None:
        cfg, agent_cfg = rundir.resume_config(command.resume, command.overrides)
        return cfg, agent_cfg, cfg.run_dir, True
    cfg, agent_cfg = config_lib.build(command.overrides)
    import jax

    if cfg.preset == "fast" and jax.default_backend() == "cpu" and not command.allow_cpu_fast:
        raise ValueError("--preset fast is sized for GPUs (thousands of envs, batches of 8192, 1024-wide "
                         "critics) and would crawl on this CPU-only machine; use --preset cpu (or auto, which "
                         "picks cpu here), or add --allow_cpu_fast true to insist")
    from mjx_smfp.distributed import process_zero_text

    stamp = process_zero_text(time.strftime("%Y%m%d-%H%M%S"))  # several processes: one directory for all
    run_dir = cfg.run_dir or os.path.join(cfg.log_dir, cfg.env, cfg.agent, stamp)
    cfg = dataclasses.replace(cfg, run_dir=os.path.abspath(run_dir))
    return cfg, agent_cfg, cfg.run_dir, False


def fail(message: str, code: int, several_processes: bool = False):
    """One `error:` line on stderr, then exit `code`; several processes leave in order (process 0,
    the coordination service's host, last: mjx_smfp/processes.py)."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    if several_processes:
        from mjx_smfp import processes

        processes.leave(code)
    raise SystemExit(code)


def train(engine, cfg, run_dir: str, resume: bool, stop, several_processes: bool) -> None:
    """Run every process (checkpoint saves are collective), host calls of ~CALL_SECONDS on a slow
    machine; what can go wrong ends in one `error:` line, on each process of a multi-process run."""
    from mjx_smfp import processes
    from mjx_smfp.checkpoint import CheckpointError
    from mjx_smfp.runner import CALL_SECONDS, NonFiniteError, run

    if several_processes:
        processes.set_resume_hint(run_dir)
    try:
        run(engine, run_dir, resume=resume, stop=stop, call_seconds=CALL_SECONDS)
    except NonFiniteError as err:  # the same verdict on every process (a psum over devices)
        fail(str(err), 1, several_processes)
    except (CheckpointError, FileNotFoundError) as err:  # damaged checkpoints, another topology
        fail(str(err), 2, several_processes)
    except Exception as err:  # noqa: BLE001 - a lost process, or this process's own error
        if not several_processes:
            raise
        processes.exit_on_failure(err)
    if several_processes:
        processes.finish()  # exits (status 0) once every process got here


def main(argv: list[str] | None = None) -> str:
    from mjx_smfp import cli

    try:
        command = cli.parse_command_line(sys.argv[1:] if argv is None else argv)  # the one walk of argv
    except ValueError as err:
        fail(str(err), 2)
    if command.help:
        print(__doc__)
        try:
            print(cli.help_text(command.overrides))
        except ValueError as err:
            fail(str(err), 2)
        return ""
    from mjx_smfp import compile_cache

    compile_cache.configure()  # before any JAX computation: keeps warm cache loads silent
    # Multi-host (launch/multihost.py sets MJX_SMFP_*): start jax.distributed before any device
    # is touched (resolving `--preset auto` already asks for the backend). No-op otherwise.
    from mjx_smfp import distributed

    try:
        several = distributed.initialize_from_env()
    except (ValueError, RuntimeError) as err:
        fail(str(err), 2)
    try:
        cfg, agent_cfg, run_dir, resume = resolve(command)
    except ValueError as err:
        fail(str(err), 2, several)
    import jax

    from mjx_smfp.engine import Engine
    from mjx_smfp.runner import StopFlag

    is_main = jax.process_index() == 0  # multi-host: only process 0 prints and logs
    if several:  # a stop signal to any process stops them all (mjx_smfp/processes.py)
        from mjx_smfp.processes import SharedStop as stop_flag
    else:
        stop_flag = StopFlag
    stop = stop_flag(verbose=is_main).install()  # from here a stop signal is answered at once, with a line
    try:
        engine = Engine(cfg, agent_cfg)
        engine.check_fits()
    except ValueError as err:  # e.g. num_envs not divisible by the device count found, bad env_kwargs,
        # a replay ring larger than memory
        stop.uninstall()
        fail(str(err), 2, several)
    if is_main:
        devices = (f", {engine.num_shards} {jax.devices()[0].platform} device(s) over {jax.process_count()} "
                   f"process(es)" if engine.mesh is not None else "")
        physics = f", physics {physics_name(cfg)}" if hasattr(engine.task, "physics") else ""
        print(f"[train] {cfg.agent} on {cfg.env} (preset {cfg.preset}, recipe {cfg.recipe}{physics}) on "
              f"{backend_summary()}: {cfg.num_envs} envs, "
              f"batch {cfg.batch_size}{' per device' if cfg.batch_per_device else ''}, {cfg.updates_per_step} "
              f"updates/iteration, {cfg.total_env_steps:,} env steps{devices} -> {run_dir}", flush=True)
        note = heavy_task_note(cfg)
        if note:
            print(f"[train] {note}", flush=True)
    train(engine, cfg, run_dir, resume, stop, several)
    return run_dir


if __name__ == "__main__":
    main()
