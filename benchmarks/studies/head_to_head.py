"""The head-to-head (issue 35): SMFP vs Gaussian SAC on one recipe, 5 seeds, 4 tasks, the rule fixed
in advance. Pre-registered 2026-12-07, before any run of this study; nothing below changes once a
run has been read.

- Agents: SAC and SMFP, both on the shared `parallel` recipe (mjx_smfp/recipes.py), their resolved
  configurations differing only in the policy class (config.recipe_differences == []: tested).
- Shape: the `--scale cpu` parallel shape (config.FAST_SHAPE_ON_CPU over the `fast` preset, as
  parallel_regime's CPU base): 256 envs per seed, `gpu` physics, batch 1024, 4 updates per
  iteration, critic 256-256-256, actor 256-256; the seeds one vmap axis (num_seeds 5 from seed 0:
  seeds 0-4, the same for both agents).
- Tasks and budget, env steps per seed, the same for both agents: HalfCheetah, Hopper, Walker2d
  300,000; Humanoid 500,000 (a run ends at the first whole host call at or past it).
- Evaluation: after the warm-up (the untrained policy), every 10,240 env steps per seed (40
  iterations of 256 envs) and at the end: 10 deterministic episodes, 10 of the stochastic policy and
  the diagnostics on held-out states (Engine.evaluation). A checkpoint every 102,400 env steps,
  holding the replay ring so that a resume continues the same run (Humanoid: ~0.75 GB per seed,
  ~3.8 GB per checkpoint, 2 kept; checkpoints stay in results/head_to_head/runs/, not committed).
- Primary endpoint: the final return, the mean of each seed's last 3 deterministic evaluations at
  the budget, pooled over the 4 tasks by the exact two-sided van Elteren test
  (benchmarks/stats.py stratified_rank_sum: ranks within each task), alpha = 0.05. The verdict:
  "SMFP ahead" or "SAC ahead" (p < 0.05; the side whose ranks are higher) or "not resolved"; it
  heads the report whichever it is.
- No run is dropped or rerun for its result. A run that crashes (its process dies without
  stopping, or its machine is lost) is trained again whole and the crash is reported (the record's
  `restarts`; `restart_crashed`: its run directory is set aside, not resumed); a run stopped by a
  signal continues from its checkpoint (the record's `resumes`); a run whose loss goes non-finite
  is a result, kept and reported as failed.
- Secondary, reported, not deciding: per task, the exact Mann-Whitney test of the finals (5 vs 5:
  smallest p 0.008) at the budget and at equal run clock (the least any run of the task reached;
  building, compiling and the warm-up counted); env steps and run clock to a return of `THRESHOLDS`;
  the IQM of returns normalised per task, (R - R_random) / (R_ref - R_random), R_random = the
  task's mean return at the first (untrained) evaluation over all runs of this study, R_ref =
  `REFERENCE`, with a stratified bootstrap interval over tasks and seeds, and the probability of
  improvement (rliable's definitions, Agarwal et al. 2021, in numpy: stats.iqm_interval,
  stats.poi_interval); the minimum detectable effect: 5 vs 5 normal draws per task at the task's
  observed pooled s.d., one agent shifted by d s.d., the van Elteren test at 0.05, 2,000
  simulations per d: the smallest d with power >= 0.8, in s.d. and in each task's return units.
- Same machine: one command trains the runs one after another, task by task, SAC then SMFP, so both
  agents of a task share a machine; each evaluation notes the machine's load (`load1`) and the
  report flags a task whose agents ran on different machines.
- Context, not part of the rule: SAC Flow and DIME on HalfCheetah and Humanoid, 3 seeds, on their
  authors' recipes (recipe "authors", their defaults), the same shape, schedule and budgets: the
  study `head_to_head_context`, trained by the same command after this study's runs.

Commands (repository root; `nice -n 19` on a shared machine). One command trains whatever is not
finished (a run stopped here continues from its checkpoint; one lost with its machine is trained
again from the start, as checkpoints are not committed), then the context, and rewrites the report:

    python -m benchmarks.harness run head_to_head > head_to_head.log 2>&1 &
    # the harness rewrites a run's record at each evaluation: commit them as they progress
    while kill -0 $! 2>/dev/null; do sleep 1800; git add benchmarks/results/head_to_head*/ &&
        git commit -qm "head_to_head: records so far"; done
    git add benchmarks/results/head_to_head*/ && git commit -m "head_to_head: records"
    python -m benchmarks.harness report head_to_head   # the report from the committed records alone
    python -m benchmarks.harness results               # its block in benchmarks/RESULTS.md
"""
from __future__ import annotations

from benchmarks.harness.spec import Against, Group, Study
from mjx_smfp.config import FAST_SHAPE_ON_CPU

BUDGETS = {"halfcheetah": 300_000, "hopper": 300_000, "walker2d": 300_000, "humanoid": 500_000}
EVAL_EVERY = 40 * 256  # env steps per seed: 40 iterations of the 256 envs
THRESHOLDS = {"halfcheetah": 1500.0, "hopper": 1000.0, "walker2d": 1000.0, "humanoid": 1000.0}
# R_ref of the normalisation: SAC's published return at ~1M env steps (SMFP.md §8: Humanoid 5000,
# Walker2d 4800, Hopper 3200). HalfCheetah: 12,000, the commonly reported SAC HalfCheetah-v4 score
# at 1M, an approximate reference (not from SMFP.md).
REFERENCE = {"halfcheetah": 12_000.0, "hopper": 3200.0, "walker2d": 4800.0, "humanoid": 5000.0}
REFERENCE_SOURCE = ("SAC at ~1M env steps: Hopper 3,200, Walker2d 4,800, Humanoid 5,000 (SMFP.md §8); HalfCheetah "
                    "12,000, the commonly reported SAC HalfCheetah-v4 score at 1M (approximate, not from SMFP.md)")
SEEDS = 5
ALPHA = 0.05
MDE_SIMULATIONS = 2000

BASE = {"preset": "fast", **FAST_SHAPE_ON_CPU[0], **FAST_SHAPE_ON_CPU[1], "seed": 0, "eval_interval": EVAL_EVERY,
        "eval_episodes": 10, "eval_stochastic": True, "checkpoint_interval": 102_400, "keep_checkpoints": 2,
        "checkpoint_replay": True}
PER_TASK = {task: {"total_env_steps": steps} for task, steps in BUDGETS.items()}
RULE = Against("agent", "sac", ("variant",))  # SMFP against SAC, task by task and pooled


def _analysis(*args, **kwargs):
    from benchmarks.studies import head_to_head_report

    return head_to_head_report.analysis(*args, **kwargs)


HEAD_TO_HEAD = Study(
    name="head_to_head", doc=__doc__, tasks=tuple(BUDGETS), agents=("sac", "smfp"),
    variants={"": {"recipe": "parallel"}}, seeds=SEEDS, base=BASE, per_task=PER_TASK, final_evals=3,
    cuts=("env_steps", "wall_s"), groups=(Group(against=(RULE,)),), pooled=RULE, thresholds=THRESHOLDS,
    context=("head_to_head_context",), analysis=_analysis, restart_crashed=True)
CONTEXT = Study(
    name="head_to_head_context", doc="SAC Flow and DIME beside the head-to-head (issue 35), on their authors' "
    "recipes, 3 seeds, HalfCheetah and Humanoid at its shape, schedule and budgets: context, never in its rule "
    "(benchmarks/studies/head_to_head.py).", tasks=("halfcheetah", "humanoid"), agents=("sacflow", "dime"),
    variants={"": {"recipe": "authors"}}, seeds=3, base=BASE, per_task=PER_TASK, final_evals=3,
    cuts=("env_steps",), thresholds=THRESHOLDS, restart_crashed=True)
