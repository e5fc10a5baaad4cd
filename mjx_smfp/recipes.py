"""The learning recipes of the parallel regime (issue 23; benchmarks/parallel_regime.py measures them).

`REFERENCE_PARTS`: what the systems that made off-policy RL work at thousands of envs do (FastSAC,
FastTD3, FlashSAC, PQL; ../shared/design/PARALLEL.md's table), by part, each value citing its source.
`today()` is what a part is when left out: each field's default in TrainConfig / the agent's Config.
`value_support` fixes a distributional critic's support from the task's reward scale and discount.
config.AGENT_PRESETS uses `REFERENCE` where the parallel-regime evidence chose it (RESULTS.md).
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


def today(*config_classes) -> dict:
    """Every field the reference sets, at its default in `config_classes` (TrainConfig and an agent's
    Config): today's recipe."""
    defaults = {f.name: f.default for cls in config_classes for f in dataclasses.fields(cls)}
    return {k: defaults[k] for k in REFERENCE}
