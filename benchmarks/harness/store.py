"""Where a study's runs live: one record per run (`<out>/records/<task>_<agent>[_<variant>].json`,
committed, the source of every report, plot and RESULTS.md block) and its run directory
(`<out>/runs/<task>/<agent>[/<variant>]/`: checkpoints and logs, ignored by git). A record holds the
run's key, seeds, status and reason, how far it got, `curves` (per seed, every evaluation's scalars with
`wall_s`, `env_steps` and the machine's `load1`), its config, overrides, schedule, the `machines` that
trained it, its `resumes` and `restarts`, and the command; a run lost before records keeps only its
per-seed finals (`lost`)."""
from __future__ import annotations

import glob
import os
from typing import Optional

from mjx_smfp import rundir


def record_name(task: str, agent: str, variant: str = "") -> str:
    return "_".join(part for part in (task, agent, variant) if part)


class Store:
    """The records and run directories of one study under `root` (benchmarks/results/<study>)."""

    def __init__(self, root: str):
        self.root = root

    def record_path(self, task: str, agent: str, variant: str = "") -> str:
        return os.path.join(self.root, "records", record_name(task, agent, variant) + ".json")

    def run_dir(self, task: str, agent: str, variant: str = "") -> str:
        return os.path.join(self.root, "runs", task, agent, *([variant] if variant else []))

    def load(self, task: str, agent: str, variant: str = "") -> Optional[dict]:
        return rundir.read_json(self.record_path(task, agent, variant))

    def save(self, record: dict) -> None:
        """Write a record atomically (a run killed mid-write keeps the previous one)."""
        rundir.write_json(self.record_path(record["task"], record["agent"], record.get("variant", "")), record)

    def records(self) -> list[dict]:
        """Every record of the study, by file name."""
        return [rundir.read_json(p) for p in sorted(glob.glob(os.path.join(self.root, "records", "*.json")))]

    def guard(self, task: str, agent: str, variant: str, config: dict) -> None:
        """ValueError naming the fields when this run was started with another configuration: it could
        not resume, and skipping it would pass it off as this command's result."""
        before = rundir.read_config(self.run_dir(task, agent, variant)) or (self.load(task, agent, variant) or {}).get(
            "config")
        changed = rundir.config_changes(before, config) if before else []
        if changed:
            raise ValueError(f"{self.root} holds a {record_name(task, agent, variant)} run of another configuration "
                             f"({'; '.join(changed)}); use the same options, another variant or another --out")


def note_machine(record: dict, here: str) -> None:
    """Add this machine to the machines that trained the run, once per change of machine."""
    machines = record.setdefault("machines", [])
    if machines[-1:] != [here]:
        machines.append(here)
