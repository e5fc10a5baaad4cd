"""Train an agent on an MJX task: `python -m launch.train --env humanoid --agent sac --preset auto
[--field value ...] [--resume RUN_DIR]`.

Any TrainConfig field or agent Config field can be overridden (`--batch_size 512`,
`--temperature_lr 1e-3`). Runs are written to `<log_dir>/<env>/<agent>/<timestamp>/`
(TensorBoard events, metrics.jsonl/csv, config.json, checkpoints/). `--resume RUN_DIR`
continues that run from its latest checkpoint with its saved config; only the fields in
`RESUME_OVERRIDABLE` may be changed on resume. Ctrl-C saves a checkpoint and exits.
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
    try:
        cfg, agent_cfg, run_dir, resume = resolve(argv)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2)
    from mjx_smfp import agents
    from mjx_smfp.loop import Engine, NonFiniteError, run

    agent = agents.make(cfg.agent, agent_cfg)
    print(f"[train] {cfg.agent} on {cfg.env} (preset {cfg.preset}): {cfg.num_envs} envs, batch {cfg.batch_size}, "
          f"{cfg.updates_per_step} updates/iteration, {cfg.total_env_steps:,} env steps -> {run_dir}", flush=True)
    engine = Engine(cfg, agent)
    try:
        run(engine, run_dir, resume=resume)
    except NonFiniteError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(1)
    return run_dir


if __name__ == "__main__":
    main()
