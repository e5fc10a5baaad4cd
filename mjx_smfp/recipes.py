"""The learning recipes: the fields of the loop and of the soft actor-critic update that every
agent compared in one study must share, so that SAC and SMFP differ only in the policy class and
its own fields (issue 34). `RECIPES` (`--recipe`, stored in config.json):

* "parallel": the massively parallel references' recipe (`REFERENCE_PARTS`: FastSAC, FastTD3,
  FlashSAC, PQL; ../shared/design/PARALLEL.md) made scale-free (`SCALE_FREE`): rewards divided by
  the running spread of the return (SimbaV2 / FlashSAC), so the temperature, SMFP's mirror-descent
  coefficient and the C51 support mean the same on every task; the temperature stepped on every
  critic update. The default of the `fast` preset and of humanoid's `cpu` preset.
* "classic": the single-env SAC recipe (Haarnoja et al. 2018; each field's default), with one
  start temperature for both agents (alpha0 0.1, the level-field runs: benchmarks/RESULTS.md).
  The default elsewhere (`cpu`, `paper`).
* "authors": no shared recipe: each agent's own Config defaults. SAC Flow and DIME always run it
  unless asked otherwise (their authors' recipes, docs/baselines.md); for SAC and SMFP it is how
  runs were configured before recipes existed (their older records resolve with it).

`REFERENCE_PARTS` / `REFERENCE` / `today()` stay the parts the parallel-regime ablations name
(benchmarks/parallel_regime.py); `value_support` is the raw-reward support those used.
"""
from __future__ import annotations

import dataclasses

# The reference recipe by part; every value cites its source (PARALLEL.md's table, read from the
# references' code 2026-12-03). Leaving a part out leaves its fields at today's values (`today`).
REFERENCE_PARTS: dict[str, dict] = {
    "temperature": dict(
        init_temperature=0.001,  # FastSAC alpha0 0.001 (FlashSAC 0.01; Raffin ICLR'26 blog ~0.006); today 1.0
        target_entropy=0.0,  # FastSAC target entropy 0 (= 0 per dim; FlashSAC: target std 0.15); today -|A|
        log_std_min=-5.0,  # FastSAC log sigma in [-5, 0]
        log_std_max=0.0,  # FastSAC; today log sigma <= 2
    ),
    "critic": dict(
        critic_type="c51",  # FastSAC / FastTD3: C51 distributional critic; today MSE
        num_atoms=101,  # FastSAC / FastTD3: 101 atoms
        # The support: FastSAC's [-20, 20] is for its normalised rewards; ours are raw, so
        # config.build sets +-REWARD_SCALE[task] / (1 - gamma) (the issue's "from the reward scale
        # and discount").
        q_actor_combine="mean",  # FastSAC: the actor sees the mean of the heads; today min
        q_target_combine="min",  # FastTD3 clipped double Q (FastSAC gives each head its own target: not a field)
    ),
    "n_step": dict(
        n_step=3,  # FlashSAC (IsaacLab) and PQL: 3-step returns (FastSAC/FastTD3 Playground: 1); today 1
    ),
    "clip": dict(
        grad_clip=0.0,  # FastSAC, FastTD3: no gradient clipping; today 1.0
    ),
    "tau_delay": dict(
        tau=0.1,  # FastTD3 0.1 (FastSAC 0.125, PQL 0.05); today 0.005
        policy_delay=2,  # FastTD3 2 (FastSAC 4); today 1
    ),
    "optimiser": dict(
        weight_decay=1e-3,  # FastSAC AdamW wd 1e-3 (FastTD3 0.1); today Adam, no decay
        adam_b2=0.95,  # FastSAC AdamW betas (0.9, 0.95); today 0.999
    ),
    "activation": dict(
        activation="silu",  # FastSAC LayerNorm + SiLU; today ReLU
    ),
    # Left at today's values on purpose: gamma (FastSAC/FastTD3 0.97 are for Playground humanoids;
    # Gymnasium tasks use 0.99), network widths (the scale's), bf16 matmuls (slow on CPUs).
}


# A task's largest per-step reward, roughly: the best published return over 1,000 steps / 1,000
# (SMFP.md §8; HalfCheetah ~15K, Humanoid ~12K, Ant ~8K, Walker2d ~6K, Hopper ~4K). Sets the
# distributional critic's fixed support, +-REWARD_SCALE / (1 - gamma), when a recipe uses one.
REWARD_SCALE = {"halfcheetah": 15.0, "humanoid": 12.0, "ant": 8.0, "walker2d": 8.0, "hopper": 5.0}
DEFAULT_REWARD_SCALE = 10.0


def value_support(task: str, gamma: float) -> dict:
    """value_min/value_max of a distributional critic for `task`: +-REWARD_SCALE[task] / (1 - gamma)."""
    bound = REWARD_SCALE.get(task, DEFAULT_REWARD_SCALE) / max(1.0 - gamma, 1e-3)
    return dict(value_min=-bound, value_max=bound)


def merge(parts) -> dict:
    """The fields of REFERENCE_PARTS' `parts`, merged (the parts share no field)."""
    out: dict = {}
    for part in parts:
        out.update(REFERENCE_PARTS[part])
    return out


REFERENCE: dict = merge(REFERENCE_PARTS)


def today(*config_classes, fields=None) -> dict:
    """Every field the reference (or `fields`) sets, at its default in `config_classes` (TrainConfig
    and an agent's Config): today's recipe."""
    defaults = {f.name: f.default for cls in config_classes for f in dataclasses.fields(cls)}
    return {k: defaults[k] for k in (REFERENCE if fields is None else fields)}


# Issue 34: the reference recipe carried over to Gymnasium's reward scale. FastSAC's alpha0 0.001,
# target entropy 0 and C51 support [-20, 20] assume |Q| <~ 20 (its rewards are designed small);
# here |Q| reaches ~450 (humanoid) to ~1,500 (HalfCheetah), so unscaled the entropy and mirror-
# descent terms were ~1 % of the actor's objective. Dividing rewards by max(std(G), max|G| / g_max)
# (SimbaV2 `scale_rl/agents/wrappers/normalization.py`, FlashSAC
# `flash_rl/agents/utils/reward_normalization.py`, both g_max 5) makes the critic's values O(1) on
# every task, and with them alpha, beta and the support.
SCALE_FREE: dict = dict(
    normalize_reward=True,  # SimbaV2 / FlashSAC reward scaling (FastSAC: none, rewards designed small)
    reward_g_max=5.0,  # SimbaV2 normalized_g_max / FlashSAC normalized_G_max: 5
    # C51 support in normalised units: the largest return seen maps to at most g_max = 5; twice that
    # leaves room for the soft backup's -alpha log pi terms and n-step sums (SimbaV2/FlashSAC: +-5).
    value_min=-10.0,
    value_max=10.0,
    init_temperature=0.01,  # SimbaV2 temp_initial_value / FlashSAC: 0.01 on normalised rewards
    target_entropy=None,
    target_entropy_per_dim=-0.5,  # SimbaV2 temp_target_entropy_coef -0.5 (FlashSAC target std 0.15: -0.48/dim)
    temperature_every_update=True,  # FastSAC (and SimbaV2): alpha steps on every critic update
    temperature_b2=0.95,  # FastSAC: alpha's AdamW betas (0.9, 0.95)
    # A temperature that reaches its target within the first quarter of a 30-minute CPU run (~1K updates):
    # FastSAC's/FlashSAC's 3e-4 (SimbaV2 1e-4) moves log alpha by <= 3e-4 an update, and on HalfCheetah
    # (SAC, 2 seeds) left the estimate 4.5 nats above target at 243 s (pilot runs,
    # benchmarks/results/entropy_control/pilot_temperature_lr.md). Adam's steps are ~lr whatever the gap: on
    # Humanoid SAC at 1e-2 the entropy swung 1.5-3.5 nats around its target. A step proportional to the gap
    # has no such limit cycle: at 3e-3 x the gap late gaps stay under 1.2 nats. 1e-2 x the gap is unstable:
    # on Humanoid alpha went from 0.01 up to 6.6 (SAC) and 16 (SMFP) and down to ~1e-24 and ~1e-13 within
    # ~500 updates, the entropy up to 22 nats off its target (entropy_control variant `proportional_1e-2`).
    # The references use Adam at 3e-4.
    temperature_rule="proportional",
    temperature_lr=3e-3,
    # The backup's entropy term centred on the target, -alpha (log pi + H_target): with the target at -0.5|A|
    # the plain term is alpha x H_target per step alive, and SMFP's alpha (~0.027 until its first anchor
    # refresh, ~20x SAC's) made that -0.23 per step against a reward of +0.10 on Humanoid (-0.09 against
    # +0.03 on Walker2d): ending the episode paid, and SMFP learned to fall (entropy_control report, "per
    # step" column). Centred, it averages zero while the temperature holds the target. Not in the references.
    entropy_backup_centred=True,
)

# Deviations from FastSAC that the parallel recipe keeps, by name (issue 34 item 4):
DEVIATIONS_FROM_FASTSAC = (
    "gamma 0.99 (FastSAC 0.97: Gymnasium tasks are scored with 0.99)",
    "3-step returns (FastSAC 1; FlashSAC IsaacLab and PQL 3)",
    "tau 0.1 (FastSAC 0.125; FastTD3 0.1)",
    "actor delay 2 (FastSAC 4; FastTD3, FlashSAC 2)",
    "the bootstrap from the min-combined target head (FastSAC: each head on its own target head)",
    "no LayerNorm in the actor (FastSAC's actor has it)",
    "float32 matmuls (FastSAC bf16 autocast: slow on CPUs)",
    "rewards normalised, support +-10, alpha0 0.01, target -0.5|A| (SimbaV2 / FlashSAC; FastSAC: raw "
    "rewards, +-20, 0.001, 0)",
    "the temperature stepped by 3e-3 x its entropy gap (FastSAC: Adam at 3e-4, betas 0.9/0.95)",
    "the backup's entropy term centred on the target entropy (FastSAC: -alpha log pi)",
)

# A policy's own field the recipe sets (only agents that have it get it; recipe_differences ignores it).
# SMFP's anchor follows the actor by EMA (rate 0.005 an actor step, SMFP.md §5's other switch) instead of a
# hard copy every 1,000 actor steps: a CPU run has 1.5-3K actor steps, so the first copy landed mid-run,
# and releasing the pull toward the initial policy threw the entropy 1.0 (Walker2d) to 2.6 (Humanoid) nats
# above its target in every seed at once (entropy_control variant `proportional_3e-3`). With the EMA the
# criterion holds on every task, but the flow narrows over a run and SMFP keeps one arm of the 4-mode bandit
# (benchmarks/RESULTS.md, "Entropy control on one scale").
POLICY_OWN: dict = dict(anchor_update="ema")

PARALLEL: dict = {**REFERENCE, **SCALE_FREE, **POLICY_OWN}


def _classic() -> dict:
    """Every shared field the parallel recipe sets, at its default in TrainConfig / SoftActorCriticConfig
    (SAC's own recipe), with alpha0 0.1 for both agents; a policy's own fields keep their defaults."""
    from mjx_smfp.agents.soft_actor_critic import SoftActorCriticConfig
    from mjx_smfp.config import TrainConfig

    shared = {f.name for cls in (TrainConfig, SoftActorCriticConfig) for f in dataclasses.fields(cls)}
    return {**today(TrainConfig, SoftActorCriticConfig, fields=[k for k in PARALLEL if k in shared]),
            "init_temperature": 0.1}


RECIPE_NAMES = ("classic", "parallel", "authors")


def recipe(name: str) -> dict:
    """The fields recipe `name` sets ({} for "authors")."""
    return {"classic": _classic, "parallel": lambda: dict(PARALLEL), "authors": dict}[name]()
