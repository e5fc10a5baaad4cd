"""Train an agent on an MJX task: `python -m launch.train --env humanoid --agent sac --preset auto
[--field value ...] [--resume RUN_DIR]`.

Any TrainConfig field or agent Config field can be overridden (`--batch_size 512`,
`--temperature_lr 1e-3`). Runs are written to `<log_dir>/<env>/<agent>/<timestamp>/`
(TensorBoard events, metrics.jsonl/csv, config.json, checkpoints/). `--resume RUN_DIR`
continues that run from its latest checkpoint with its saved config; only the fields in
`RESUME_OVERRIDABLE` may be changed on resume. Ctrl-C saves a checkpoint and exits.
Data parallel: `--num_devices N` (0 = all devices; num_envs, replay_capacity and batch_size
are global and must divide by N; `--batch_per_device true` makes batch_size per device).
Multi-host: run through launch/multihost.py; only process 0 prints and logs.
"""
from __future__ import annotations

import json
import os
import sys
import time

RESUME_OVERRIDABLE = ("total_env_steps", "eval_interval", "checkpoint_interval", "keep_checkpoints")


def resolve(argv: list[str]):
    """Command line -> (TrainConfig, agent Config, run_dir, resume flag); raises ValueError."""
    from mjx_smfp import config as config_lib

    pairs = config_lib.parse_cli_pairs(argv)
    resume_dir = pairs.pop("resume", None)
    if resume_dir is not None:
        path = os.path.join(resume_dir, "config.json")
        if not os.path.exists(path):
            raise ValueError(f"--resume {resume_dir}: no config.json there (not a run directory)")
        with open(path) as f:
            saved = json.load(f)
        cfg, agent_cfg = config_lib.from_dict(saved)
        changes = {}
        for key, value in pairs.items():
            if key in ("env", "agent", "preset") and str(getattr(cfg, key)) == value:
                continue
            if key not in RESUME_OVERRIDABLE:
                raise ValueError(f"--{key} cannot be changed when resuming (only {', '.join(RESUME_OVERRIDABLE)})")
            changes[key] = config_lib.parse_value(key, value, int)
        import dataclasses

        cfg = dataclasses.replace(cfg, run_dir=os.path.abspath(resume_dir), **changes)
        config_lib.validate(cfg)
        return cfg, agent_cfg, cfg.run_dir, True
    cfg, agent_cfg = config_lib.build(pairs)
    run_dir = cfg.run_dir or os.path.join(cfg.log_dir, cfg.env, cfg.agent, time.strftime("%Y%m%d-%H%M%S"))
    import dataclasses

    cfg = dataclasses.replace(cfg, run_dir=os.path.abspath(run_dir))
    return cfg, agent_cfg, cfg.run_dir, False


def main(argv: list[str] | None = None) -> str:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return ""
    # Multi-host (launch/multihost.py sets MJX_SMFP_*): start jax.distributed before any device
    # is touched (resolving `--preset auto` already asks for the backend). No-op otherwise.
    from mjx_smfp import distributed

    distributed.initialize_from_env()
    try:
        cfg, agent_cfg, run_dir, resume = resolve(argv)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2)
    import jax

    from mjx_smfp.engine import Engine
    from mjx_smfp.runner import NonFiniteError, run

    is_main = jax.process_index() == 0  # multi-host: only process 0 prints and logs
    try:
        engine = Engine(cfg, agent_cfg)
    except ValueError as err:  # e.g. num_envs not divisible by the device count found, bad env_kwargs
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2)
    if is_main:
        devices = (f", {engine.num_shards} {jax.devices()[0].platform} device(s) over {jax.process_count()} "
                   f"process(es)" if engine.mesh is not None else "")
        print(f"[train] {cfg.agent} on {cfg.env} (preset {cfg.preset}): {cfg.num_envs} envs, batch {cfg.batch_size}"
              f"{' per device' if cfg.batch_per_device else ''}, {cfg.updates_per_step} updates/iteration, "
              f"{cfg.total_env_steps:,} env steps{devices} -> {run_dir}", flush=True)
    try:
        run(engine, run_dir, resume=resume)  # every process: checkpoint saves are collective
    except NonFiniteError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1)
    return run_dir


if __name__ == "__main__":
    main()
