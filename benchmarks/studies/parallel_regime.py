"""The parallel regime (issue 23): recipes of the massively parallel regime (many envs, `gpu` physics,
batch >= 2x envs, many gradient samples per transition) against run clock and env steps: 30 minutes of
run clock per run (building and compiling counted, evaluation and saves not), an evaluation every 60 s.

Scales. `parallel_regime_gpu` is the `fast` preset itself (4096 envs, batch 8192). `parallel_regime`
keeps its shape on 2 CPU cores (config.FAST_SHAPE_ON_CPU: 256 envs, batch 1024, 16 gradient samples per
transition as at `fast`, 256-wide networks): fast's own networks took 32 s per iteration there.

Recipes (variants): `today` = every agent's Config defaults, `reference` = what FastSAC / FastTD3 /
FlashSAC / PQL do (mjx_smfp/recipes.py), and per part P of it `reference-minus-P` and `today-plus-P`;
each sets every field the reference touches. The decision rule, stated before the Walker2d and Humanoid
runs were read: a recipe replaces today's when the pooled test at equal env steps over all task/agent
strata gives p < 0.05 in its favour."""
from __future__ import annotations

import dataclasses

from benchmarks.harness.spec import Against, Group, Study
from mjx_smfp import recipes
from mjx_smfp.config import FAST_SHAPE_ON_CPU

# Over the `fast` preset; the study schedules evaluations and checkpoints by run clock.
_COMMON = dict(preset="fast", total_env_steps=10**12, eval_interval=0, checkpoint_interval=0, keep_checkpoints=2)
RECIPES = {"today": {}, "reference": dict(recipes.REFERENCE),
           **{f"reference-minus-{p}": recipes.merge(q for q in recipes.REFERENCE_PARTS if q != p)
              for p in recipes.REFERENCE_PARTS},
           **{f"today-plus-{p}": recipes.merge([p]) for p in recipes.REFERENCE_PARTS}}
MAIN_AGENTS = ("sac", "smfp")  # the agents whose recipes are compared; others join the "agents" group


def recipe(name: str):
    """The overrides of recipe `name` for an agent: every field the reference sets, at the agent's default
    unless the recipe's parts set it, on the shared recipe "authors" (as these ran before it existed)."""
    def overrides(agent: str) -> dict:
        from mjx_smfp import agents
        from mjx_smfp.config import TrainConfig

        return {**recipes.today(TrainConfig, agents.get_class(agent).Config), **RECIPES[name], "recipe": "authors"}
    return overrides


# The shared recipes of mjx_smfp/recipes.py (issue 34); `parallel` is what the `fast` preset trains today.
SHARED = {name: {"recipe": name} for name in ("classic", "parallel")}


def is_ablation(row: dict) -> bool:
    return row["variant"].startswith(("reference-minus-", "today-plus-"))


def ablated(record: dict, task_records: list[dict]) -> bool:
    """An ablation, or a main run (not an ablation) of an agent ablated on this task."""
    agents = {r["agent"] for r in task_records if is_ablation(r)}
    return record["agent"] in agents and (is_ablation(record) or record["agent"] in MAIN_AGENTS)


def every_agent(record: dict, task_records: list[dict]) -> bool:
    """Where an agent beyond the main ones ran on this task: every agent at its `fast` recipe."""
    return (record["variant"] == fast_recipe(record["agent"])
            and any(r["agent"] not in MAIN_AGENTS for r in task_records))


def fast_recipe(agent: str) -> str:
    """The recipe of `agent`'s runs in the four-agent group: the `fast` preset's then (issue 24)."""
    return "reference" if agent == "smfp" else "today"


TODAY = Against("variant", "today", ("agent",))
CPU = Study(
    name="parallel_regime", doc=__doc__, tasks=("halfcheetah", "walker2d", "humanoid"),
    agents=("sac", "smfp", "sacflow", "dime"), variants={**{name: recipe(name) for name in RECIPES}, **SHARED}, seeds=3,
    base=dict(_COMMON, **FAST_SHAPE_ON_CPU[0], checkpoint_replay=True, **FAST_SHAPE_ON_CPU[1]),
    budget="30min", eval_every="60s", checkpoint_every="5min", final_evals=3, cuts=("env_steps", "wall_s"),
    groups=(Group("", lambda r, _: r["agent"] in MAIN_AGENTS and not is_ablation(r), (TODAY,)),
            Group("ablations (each the reference with one part at today's values)", ablated,
                  (TODAY, Against("variant", "reference", ("agent",), only=is_ablation))),
            Group("every agent at its `fast` preset's recipe", every_agent, (Against("agent", "smfp"),))),
    pooled=TODAY)
GPU = dataclasses.replace(CPU, name="parallel_regime_gpu", base=_COMMON)
