"""A study as data (MuJoCo Playground's `config/*_params.py`): tasks, agents, variants (config
overrides), seeds, schedule and the rule its report compares runs by. A run is one (task, agent,
variant) with all its seeds in one program (`num_seeds`, a vmap axis)."""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Callable, Mapping, Optional, Union

Overrides = Union[Mapping[str, Any], Callable[[str], Mapping[str, Any]]]  # a dict, or agent -> dict


@dataclasses.dataclass(frozen=True)
class Against:
    """How a report compares runs: each run of a group (those `only` keeps) against the run of the same
    task and group whose `field` ("agent", "variant", "study") is `value` and that equals it on `match`,
    by Mann-Whitney on the seeds' finals or, `paired`, the signed-rank test on seed pairs."""
    field: str
    value: str
    match: tuple[str, ...] = ()
    paired: bool = False
    only: Optional[Callable[[dict], bool]] = None


@dataclasses.dataclass(frozen=True)
class Group:
    """Runs of a task cut and compared together (`select(record, the task's records)`), so that a slow
    agent or an ablation cuts no other comparison short."""
    name: str = ""
    select: Callable[[dict, list], bool] = lambda record, task_records: True
    against: tuple[Against, ...] = ()


@dataclasses.dataclass(frozen=True)
class Study:
    """Everything that makes a study. `variants` maps a name ("" for a study of one) to config overrides
    (or agent -> overrides) over `base` and the task's `per_task`; `budget` "" ends a run at its config's
    total_env_steps, "30min" by run clock with `eval_every`/`checkpoint_every` in seconds. The report:
    `cuts` ("env_steps", "wall_s": the least any run of a group reached; "end"), `final_evals` (the final
    averages each seed's last so many evaluations), `groups`, `pooled` (a stratified test over tasks),
    `thresholds` (time to a return), `published` returns at `published_steps`. `context`: studies trained
    after this one into sibling folders and shown beside it, never in its rule; `analysis(study, rows,
    pooled, records, context, out, plots)` -> (markdown before the tables, data, files): the study's own
    sections. `restart_crashed`: a run whose record still says "running" is trained again from the start."""
    name: str
    doc: str
    tasks: tuple[str, ...]
    agents: tuple[str, ...]
    variants: Mapping[str, Overrides] = dataclasses.field(default_factory=lambda: {"": {}})
    seeds: int = 3
    base: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    per_task: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    budget: str = ""
    eval_every: str = ""
    checkpoint_every: str = ""
    final_evals: int = 10
    cuts: tuple[str, ...] = ("env_steps",)
    groups: tuple[Group, ...] = (Group(),)
    pooled: Optional[Against] = None
    thresholds: Mapping[str, float] = dataclasses.field(default_factory=dict)
    published: Mapping[str, Mapping[str, float]] = dataclasses.field(default_factory=dict)
    published_steps: int = 1_000_000
    context: tuple[str, ...] = ()
    restart_crashed: bool = False
    analysis: Optional[Callable[..., tuple[str, dict, list]]] = None

    def overrides(self, task: str, agent: str, variant: str) -> dict:
        """The config overrides of one run: base < the task's < the variant's (for `agent`)."""
        if variant not in self.variants:
            raise ValueError(f"study {self.name}: unknown variant {variant!r}; known: {', '.join(self.variants)}")
        over = self.variants[variant]
        return {**self.base, **self.per_task.get(task, {}), **(over(agent) if callable(over) else over)}


def amount(text: str) -> tuple[str, float]:
    """("env_steps", n) of "100k", "1M", "5000", or ("seconds", s) of "90s", "30min", "1.5h"."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*(k|M|s|min|h)?\s*", text)
    if not m:
        raise ValueError(f"{text!r}: give env steps (5000, 100k, 1M) or run-clock time (90s, 30min, 2h)")
    value, unit = float(m.group(1)), m.group(2) or ""
    if unit in ("s", "min", "h"):
        return "seconds", value * {"s": 1, "min": 60, "h": 3600}[unit]
    return "env_steps", value * {"": 1, "k": 1e3, "M": 1e6}[unit]


def schedule(study: Study, engine, budget: str = "", eval_every: str = "", checkpoint_every: str = ""):
    """The runner's Schedule of a run (command-line values win over the study's): the config's, unless
    the budget is run clock; then evaluations and checkpoints are spaced in seconds too."""
    from mjx_smfp.runner import Schedule

    budget = budget or study.budget
    if budget_seconds(study, budget) == math.inf:
        return Schedule.of(engine)
    every = [amount(x or default)[1] if (x or default) else 0.0
             for x, default in ((eval_every, study.eval_every), (checkpoint_every, study.checkpoint_every))]
    return Schedule(engine.final_env_steps, seconds=amount(budget)[1], eval_every=every[0],
                    checkpoint_every=every[1], unit="seconds")


def budget_overrides(budget: str) -> dict:
    """The config fields an env-step budget sets (total_env_steps); none for a run-clock budget."""
    kind, value = amount(budget) if budget else ("seconds", 0.0)
    return {"total_env_steps": int(value)} if kind == "env_steps" else {}


def config(study: Study, task: str, agent: str, variant: str, seeds: int, overrides: dict, run_dir: str):
    """(TrainConfig, agent Config) of one run: base < variant < the command line's overrides, each field
    given only to the agents that have it (ValueError for a field none has)."""
    from mjx_smfp import agents
    from mjx_smfp import config as config_lib
    from mjx_smfp.config import TrainConfig

    values = {**study.overrides(task, agent, variant), **overrides}
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    mine = train_fields | set(config_lib.flat_field_types(agents.get_class(agent).Config))
    known = set(mine).union(*(config_lib.flat_field_types(agents.get_class(a).Config) for a in study.agents))
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"study {study.name}, variant {variant!r}: {', '.join(unknown)} are fields of neither "
                         f"TrainConfig nor the agents' configs on this checkout")
    values = {k: v for k, v in values.items() if k in mine}
    return config_lib.build({**values, "env": task, "agent": agent, "num_seeds": seeds, "run_dir": run_dir})


def predating(record: Optional[dict]) -> dict:
    """Overrides that rebuild a run recorded before `recipe` existed (issue 34): the agents' own defaults."""
    if record and "config" in record and "recipe" not in record["config"]["train"]:
        return {"recipe": "authors"}
    return {}


def budget_seconds(study: Study, budget: str = "") -> float:
    """The run-clock budget of a run (inf where it ends by env steps)."""
    budget = budget or study.budget
    return amount(budget)[1] if budget and amount(budget)[0] == "seconds" else math.inf


def finished(record: Optional[dict], seconds: float) -> bool:
    """Whether a recorded run needs no more training under a run-clock budget of `seconds` (inf: none)."""
    if not record or record["status"] not in ("done", "failed"):
        return False
    return (record["status"] == "failed" or record.get("reason") == "env_steps"
            or record.get("schedule", {}).get("seconds", math.inf) >= seconds)
