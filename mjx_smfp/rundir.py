"""What a run directory holds beside its checkpoints, and the rules for continuing a run: the
resolved configuration (`config.json`), the run clock at each checkpoint (`clock.json`), which
fields a resume may change, and the guard that names what differs between two configurations.
One module, so `launch.train --resume` and every benchmark continue runs the same way."""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional

CONFIG, CLOCK = "config.json", "clock.json"
# The fields a resume may change: where the run ends and how often it evaluates and saves.
RESUME_OVERRIDABLE = ("total_env_steps", "eval_interval", "checkpoint_interval", "keep_checkpoints")


def write_json(path: str, data) -> None:
    """Write `data` as JSON atomically: a process killed mid-write leaves the previous file."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def read_json(path: str):
    """The JSON at `path`, or None where there is no file."""
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def write_config(run_dir: str, cfg, agent_cfg) -> None:
    from mjx_smfp import config as config_lib

    write_json(os.path.join(run_dir, CONFIG), config_lib.to_dict(cfg, agent_cfg))


def read_config(run_dir: str) -> Optional[dict]:
    return read_json(os.path.join(run_dir, CONFIG))


def config_changes(before: dict, now: dict) -> list[str]:
    """'part.field: before -> now' for each train/agent field that differs, nested configs field by
    field; fields absent from `before` (added to the code since that run started) and the run's
    location do not count."""
    now = json.loads(json.dumps(now))  # tuples as JSON lists, as saved

    def changes(then: dict, current: dict, prefix: str):
        for k, v in current.items():
            if k not in then or k in ("run_dir", "log_dir"):
                continue
            if isinstance(v, dict) and isinstance(then[k], dict):
                yield from changes(then[k], v, f"{prefix}{k}.")
            elif then[k] != v:
                yield f"{prefix}{k}: {then[k]!r} -> {v!r}"

    return [change for part in ("train", "agent") for change in changes(before[part], now[part], f"{part}.")]


def resume_config(run_dir: str, pairs: dict[str, str]):
    """(TrainConfig, agent Config) to continue `run_dir`: its saved configuration with the
    command line's `pairs` applied, where only RESUME_OVERRIDABLE may change (restating the run's
    env, agent or preset is allowed). ValueError naming the field otherwise."""
    from mjx_smfp import config as config_lib

    saved = read_config(run_dir)
    if saved is None:
        raise ValueError(f"--resume {run_dir}: no {CONFIG} there (not a run directory)")
    cfg, agent_cfg = config_lib.from_dict(saved)
    changes = {}
    for key, value in pairs.items():
        if key in ("env", "agent", "preset") and str(getattr(cfg, key)) == value:
            continue
        if key not in RESUME_OVERRIDABLE:
            raise ValueError(f"--{key} cannot be changed when resuming (only {', '.join(RESUME_OVERRIDABLE)})")
        changes[key] = config_lib.parse_value(key, value, int)
    cfg = dataclasses.replace(cfg, run_dir=os.path.abspath(run_dir), **changes)
    config_lib.validate(cfg)
    return cfg, agent_cfg


def clock_at(run_dir: str, env_steps: int) -> float:
    """The run clock (seconds) when the checkpoint at `env_steps` was taken; 0 where unknown (a run
    older than the clock file)."""
    return float((read_json(os.path.join(run_dir, CLOCK)) or {}).get(str(int(env_steps)), 0.0))


def save_clock(run_dir: str, env_steps: int, seconds: float, kept: tuple[int, ...] = ()) -> None:
    """Note the run clock of the checkpoint at `env_steps`, forgetting checkpoints no longer `kept`."""
    path = os.path.join(run_dir, CLOCK)
    clocks = {k: v for k, v in (read_json(path) or {}).items() if int(k) in kept}
    write_json(path, {**clocks, str(int(env_steps)): round(seconds, 3)})
