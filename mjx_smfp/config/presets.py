"""The presets: scales (`cpu`, `fast`, `paper`; `auto` picks cpu or fast by the backend), task
presets per scale, and which shared recipe (mjx_smfp/recipes.py) a run gets when `--recipe auto`.
Data plus the two resolvers; `config.build` applies them in order of precedence.

Scales: `fast` (thousands of envs, large batches, several updates per iteration — FastSAC-style,
for accelerators), `paper` (1 env, batch 256, UTD 1, 1M steps, replay 1M), `cpu` (a laptop-sized
run), and `auto` (cpu without an accelerator, else fast)."""
from __future__ import annotations

from mjx_smfp import recipes
from mjx_smfp.validation import check

SCALES = ("auto", "cpu", "fast", "paper")
PHYSICS = ("gymnasium", "gpu", "fast")  # envs.base.MjxTask.resolve_physics's presets (envs/physics.py)

# Scale presets: (TrainConfig fields, agent Config fields).
SCALE_PRESETS: dict[str, tuple[dict, dict]] = {
    "cpu": (dict(num_envs=16, batch_size=256, updates_per_step=4, replay_capacity=300_000,
                 learning_starts=5_000, iterations_per_call=100, total_env_steps=300_000,
                 eval_interval=20_000, eval_episodes=8, checkpoint_interval=50_000), {}),
    "fast": (dict(physics="gpu", num_envs=4096, batch_size=8192, updates_per_step=8, replay_capacity=4096 * 1024,
                  learning_starts=4096 * 10, iterations_per_call=50, total_env_steps=50_000_000,
                  eval_interval=2_000_000, eval_episodes=256, checkpoint_interval=10_000_000,
                  checkpoint_replay=False),  # the humanoid ring is ~12 GB; 256 eval envs cost little on a GPU
             dict(critic_hidden=(1024, 512, 256), actor_hidden=(512, 256, 128))),
    "paper": (dict(num_envs=1, batch_size=256, updates_per_step=1, replay_capacity=1_000_000,
                   learning_starts=5_000, iterations_per_call=1_000, total_env_steps=1_000_000,
                   eval_interval=5_000, eval_episodes=10, checkpoint_interval=100_000), {}),
}

# The `fast` preset's shape on 2 CPU cores: 16 gradient samples per transition as at `fast` (4 x 1024
# / 256), batch 4x envs, 1024 ring rows and 10 warm-up iterations per env, `gpu` physics, networks
# chosen by measurement (benchmarks/parallel_regime.py). The parallel regime's `cpu` scale, and
# humanoid's `cpu` preset (TASK_PRESETS).
FAST_SHAPE_ON_CPU: tuple[dict, dict] = (
    dict(physics="gpu", num_envs=256, batch_size=1024, updates_per_step=4, replay_capacity=256 * 1024,
         learning_starts=256 * 10, iterations_per_call=10, eval_episodes=10),
    dict(critic_hidden=(256, 256, 256), actor_hidden=(256, 256)))

# Task presets per scale ("*" = every scale), applied over the scale preset.
TASK_PRESETS: dict[tuple[str, str], tuple[dict, dict]] = {
    ("multimodal", "*"): (dict(episode_length=1, learning_starts=256, total_env_steps=20_000,
                               eval_interval=2_000, checkpoint_interval=10_000, eval_episodes=64,
                               iterations_per_call=50),
                              # One-step bandit: no bootstrap; small nets, faster learning rates and a
                              # low temperature learn it in seconds (docs/smfp.md, benchmarks/RESULTS.md).
                              dict(gamma=0.0, init_temperature=0.01, actor_lr=1e-3, critic_lr=1e-3,
                                   actor_hidden=(64, 64), critic_hidden=(64, 64))),
    ("inverted_pendulum", "cpu"): (dict(total_env_steps=50_000, learning_starts=2_000,
                                        eval_interval=10_000, checkpoint_interval=25_000), {}),
    ("inverted_double_pendulum", "cpu"): (dict(total_env_steps=150_000), {}),
    ("inverted_pendulum", "paper"): (dict(total_env_steps=100_000), {}),
    # Humanoid on a laptop: FAST_SHAPE_ON_CPU (RESULTS.md, issue 23): 256 envs on `gpu` physics (8x
    # gymnasium's speed, docs/physics.md), batch 1024, 4 updates, 256-wide networks, the parallel
    # recipe (RECIPE_DEFAULTS). One fresh-clone run of SMFP on the references' recipe (2 cores, 2026-12-06,
    # benchmarks/results/newcomer_humanoid) reached an evaluation return of 1,225 at 998 s of logging and
    # ~5,000 from 1,239 s: episodes of 1,000 steps at the alive bonus of 5 per step, i.e. standing, not
    # walking (its forward velocity was not recorded); 32 envs on gymnasium physics had shown no rise in 5 minutes.
    ("humanoid", "cpu"): (dict(FAST_SHAPE_ON_CPU[0], total_env_steps=1_000_000, eval_interval=25_600),
                          dict(FAST_SHAPE_ON_CPU[1])),
    ("humanoid", "fast"): (dict(total_env_steps=100_000_000), {}),
}


# The shared recipe (mjx_smfp/recipes.py) per (scale, task or "*") when --recipe is auto: "parallel"
# wherever the run has the massively parallel shape (the `fast` preset, humanoid's `cpu` preset =
# FAST_SHAPE_ON_CPU), else "classic". SAC and SMFP always get the same one (issue 34); agents whose
# class sets `follows_recipe = False` (SAC Flow, DIME: their authors' recipes) get "authors".
RECIPE_DEFAULTS: dict[tuple[str, str], str] = {("fast", "*"): "parallel", ("cpu", "humanoid"): "parallel"}


def resolve_recipe(recipe: str, scale: str, env: str, agent_cls=None) -> str:
    """`auto` -> the scale's and task's default for agents that follow the shared recipe, else
    "authors"; any other name is checked and kept."""
    check("recipe", recipe, choices=("auto",) + recipes.RECIPE_NAMES, noun="recipes")
    if recipe != "auto":
        return recipe
    if agent_cls is not None and not getattr(agent_cls, "follows_recipe", True):
        return "authors"
    return RECIPE_DEFAULTS.get((scale, env), RECIPE_DEFAULTS.get((scale, "*"), "classic"))


def resolve_scale(preset: str) -> str:
    """`auto` -> `cpu` when JAX has no accelerator, else `fast`."""
    check("preset", preset, choices=SCALES, noun="presets")
    if preset != "auto":
        return preset
    import jax

    return "cpu" if jax.default_backend() == "cpu" else "fast"


def layers(scale: str, env: str, recipe: dict, train_fields) -> list[tuple[dict, dict]]:
    """The (TrainConfig fields, agent fields) layers of a run, lowest precedence first: the scale
    preset < the shared recipe (its loop fields, e.g. n_step, to the TrainConfig) < the task preset
    for every scale ("*") < the task preset for this scale."""
    recipe_layer = ({k: v for k, v in recipe.items() if k in train_fields}, recipe)
    return [SCALE_PRESETS[scale], recipe_layer, TASK_PRESETS.get((env, "*"), ({}, {})),
            TASK_PRESETS.get((env, scale), ({}, {}))]
