"""Typed, frozen run configuration: `TrainConfig` (the loop) + the agent's own `Config`,
presets per scale and task, and start-up validation. The command line (parsing `--field value`
pairs, `--help`) is mjx_smfp/cli.py, built on this module.

Scales: `fast` (thousands of envs, large batches, several updates per iteration —
FastSAC-style, for accelerators), `paper` (1 env, batch 256, UTD 1, 1M steps, replay 1M),
`cpu` (a laptop-sized run), and `auto` (cpu without an accelerator, else fast).
Precedence: dataclass defaults < scale preset < task preset (any scale, then this scale) <
overrides. Every field can be overridden by name; agent fields (e.g. `temperature_lr`) go to
the agent's Config, a nested config's fields (SMFP's `policy.sigma_mode`) by their own flat
name. Override values may be strings (`parse_value` reads them as the field's type). Unknown or
inconsistent options raise ValueError naming the field.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import typing
from typing import Any

from mjx_smfp import recipes
from mjx_smfp.validation import check

SCALES = ("auto", "cpu", "fast", "paper")
PHYSICS = ("gymnasium", "gpu", "fast")  # envs.base.MjxTask.resolve_physics's presets


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    env: str = "inverted_pendulum"  # task name (see the list of envs)
    agent: str = "sac"  # agent name: its Config adds the agent options
    preset: str = "cpu"  # scale preset: auto, cpu, fast or paper (stored resolved, never auto)
    recipe: str = "auto"  # shared learning recipe: classic | parallel | authors (mjx_smfp/recipes.py); auto: the preset's
    env_kwargs: str = "{}"  # JSON object of task constructor options, e.g. '{"num_modes": 4}'
    physics: str = "gymnasium"  # MJX tasks' physics preset: gymnasium (faithful) | gpu (fast preset) | fast (docs/physics.md)
    num_envs: int = 16  # parallel envs stepped together (global over devices)
    episode_length: int = 1000  # time limit of an episode, in env steps
    total_env_steps: int = 100_000  # env steps to train for, rounded up to whole host calls
    batch_size: int = 256  # transitions per gradient update (global unless batch_per_device)
    updates_per_step: int = 4  # G: gradient updates per iteration (one step of all envs)
    n_step: int = 1  # n-step returns: sum up to n rewards of one env (stops at episode ends), bootstrap with gamma^m
    replay_capacity: int = 300_000  # transitions the device-resident replay ring holds
    learning_starts: int = 5_000  # env steps of uniform random actions before any update
    iterations_per_call: int = 100  # iterations per compiled host call (lax.scan length)
    normalize_obs: bool = True  # running mean/variance normalisation of observations
    normalize_reward: bool = False  # divide sampled rewards by max(std(G), max|G| / reward_g_max), G the running return
    reward_g_max: float = 5.0  # with normalize_reward: the largest |return| seen maps to at most this
    eval_interval: int = 20_000  # env steps between evaluations; 0 disables
    eval_episodes: int = 10  # episodes per evaluation (run in parallel on separate envs)
    eval_stochastic: bool = True  # also run eval_episodes episodes of the exploring (stochastic) policy
    checkpoint_interval: int = 50_000  # env steps between checkpoints; 0 = only at the end
    keep_checkpoints: int = 3  # newest checkpoints kept on disk
    checkpoint_replay: bool = True  # save the replay ring too (false: small checkpoints; a resume refills it by a warm-up)
    seed: int = 0  # RNG seed of the run (init, envs, exploration)
    log_dir: str = "runs"  # runs go to <log_dir>/<env>/<agent>/<timestamp>/
    run_dir: str = ""  # explicit run directory (overrides log_dir layout); set on resume
    # Data parallelism over the `data` mesh axis (mjx_smfp/distributed.py): 1 = the plain
    # single-device engine, N > 1 = N devices, 0 = every visible device (all hosts).
    # num_envs and replay_capacity are global (split over devices); batch_size is global
    # (strong scaling) unless batch_per_device (then it is per device, global = N x batch).
    num_devices: int = 1  # devices to train on: 1 = plain single device, N > 1 = N devices, 0 = all
    batch_per_device: bool = False  # batch_size per device (global batch = N x batch_size)
    num_seeds: int = 1  # independent runs in one program (a vmap axis); run k = seed + k; needs num_devices 1

    @property
    def env_options(self) -> dict:
        return json.loads(self.env_kwargs)

    @property
    def warmup_iterations(self) -> int:
        """Iterations of random actions: learning_starts rounded up to whole env batches (>= 1)."""
        return max(1, -(-self.learning_starts // self.num_envs))

    @property
    def train_calls(self) -> int:
        """Host calls of `iterations_per_call` iterations after warm-up (rounded up)."""
        remaining = max(0, self.total_env_steps - self.warmup_iterations * self.num_envs)
        per_call = self.iterations_per_call * self.num_envs
        return -(-remaining // per_call)


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


def resolve_recipe(recipe: str, agent_config_cls, scale: str, env: str, agent_cls=None) -> str:
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


def field_types(cls) -> dict[str, Any]:
    """{field name: type} of config dataclass `cls` (its annotations; the default's type as a fallback)."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - unresolved forward refs: fall back to defaults' types
        hints = {}
    out = {}
    for f in dataclasses.fields(cls):
        out[f.name] = hints.get(f.name, type(f.default) if f.default is not dataclasses.MISSING else str)
    return out


def nested_configs(cls) -> dict[str, type]:
    """Fields of config class `cls` that are themselves config dataclasses (e.g. SMFP's `policy`)."""
    return {name: typ for name, typ in field_types(cls).items() if dataclasses.is_dataclass(typ)}


def flat_field_types(cls) -> dict[str, Any]:
    """Every settable field of config class `cls` by its command-line name: its own fields and
    those of nested configs (SMFP's `policy.sigma_mode` is `--sigma_mode`)."""
    out = {k: v for k, v in field_types(cls).items() if k not in nested_configs(cls)}
    for typ in nested_configs(cls).values():
        for name, sub in field_types(typ).items():
            if name in out:
                raise TypeError(f"{cls.__qualname__}: field {name!r} is declared twice (nested configs need unique names)")
            out[name] = sub
    return out


def make_config(cls, values: dict):
    """Build `cls` from flat field values, routing nested configs' fields into them."""
    nested = nested_configs(cls)
    own = {k: v for k, v in values.items() if k in field_types(cls) and k not in nested}
    for field_name, typ in nested.items():
        sub = {k: v for k, v in values.items() if k in field_types(typ)}
        if isinstance(values.get(field_name), dict):  # from JSON (config.json)
            sub = {**values[field_name], **sub}
        own[field_name] = typ(**sub)
    return cls(**own)


def parse_value(name: str, text: Any, typ: Any) -> Any:
    """Convert a command-line string to field type `typ` (int, float, bool, str, tuple, Optional)."""
    if not isinstance(text, str):
        return text
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    try:
        if origin is typing.Union or (origin is not None and type(None) in args):
            if text.lower() in ("none", "null", ""):
                return None
            inner = [a for a in args if a is not type(None)][0]
            return parse_value(name, text, inner)
        if typ is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if typ is int:
            return int(float(text)) if "e" in text.lower() else int(text)
        if typ is float:
            return float(text)
        if origin is tuple:
            inner = args[0] if args else str
            parts = [p for p in text.replace("(", "").replace(")", "").split(",") if p.strip()]
            return tuple(parse_value(name, p.strip(), inner) for p in parts)
        return text
    except ValueError:
        raise ValueError(f"--{name}: cannot read {text!r} as {getattr(typ, '__name__', typ)}") from None


def _default(cls, name: str):
    return next(f.default for f in dataclasses.fields(cls) if f.name == name)


def build(overrides: dict[str, Any], agent_config_cls=None) -> tuple[TrainConfig, Any]:
    """Resolve presets and overrides into (TrainConfig, agent Config), validated.

    `overrides` maps field names to values (strings from the command line are converted).
    `agent_config_cls` defaults to the registered agent's Config.
    """
    overrides = dict(overrides)
    env = overrides.get("env", TrainConfig.env)
    agent = overrides.get("agent", TrainConfig.agent)
    scale = resolve_scale(overrides.pop("preset", "auto"))
    agent_cls = None
    if agent_config_cls is None:
        from mjx_smfp import agents

        agent_cls = agents.get_class(agent)
        agent_config_cls = agent_cls.Config
    recipe_name = resolve_recipe(overrides.pop("recipe", "auto"), agent_config_cls, scale, env, agent_cls)

    train_types = field_types(TrainConfig)
    agent_types = flat_field_types(agent_config_cls)
    train_kw: dict[str, Any] = {}
    agent_kw: dict[str, Any] = {}
    # Precedence: scale preset < the shared recipe < task preset for every scale ("*") < task preset
    # for this scale.
    recipe = recipes.recipe(recipe_name)
    recipe_kw = ({k: v for k, v in recipe.items() if k in train_types}, recipe)  # e.g. n_step is a loop field
    for t_kw, a_kw in (SCALE_PRESETS[scale], recipe_kw, TASK_PRESETS.get((env, "*"), ({}, {})),
                       TASK_PRESETS.get((env, scale), ({}, {}))):
        train_kw.update(t_kw)
        agent_kw.update({k: v for k, v in a_kw.items() if k in agent_types})
    for name, value in overrides.items():
        if name in train_types:
            train_kw[name] = parse_value(name, value, train_types[name])
        elif name in agent_types:
            agent_kw[name] = parse_value(name, value, agent_types[name])
        else:
            valid = sorted(set(train_types) | set(agent_types))
            close = difflib.get_close_matches(name, valid, n=3)
            hint = f" (did you mean {', '.join('--' + c for c in close)}?)" if close else ""
            raise ValueError(f"unknown option --{name}{hint}; valid options: {', '.join(valid)}")
    if "value_min" in agent_types and agent_kw.get("critic_type", _default(agent_config_cls, "critic_type")) != "mse":
        # A distributional critic's fixed support, unless given: +-reward scale / (1 - gamma).
        gamma = agent_kw.get("gamma", _default(agent_config_cls, "gamma"))
        agent_kw = {**recipes.value_support(env, gamma), **agent_kw}
    train_kw.update(preset=scale, recipe=recipe_name)
    cfg = TrainConfig(**train_kw)
    agent_cfg = make_config(agent_config_cls, agent_kw)
    validate(cfg)
    check_reward_support(cfg, agent_cfg)
    return cfg, agent_cfg


def recipe_differences(a: tuple, b: tuple) -> list[str]:
    """The fields in which two resolved runs (TrainConfig, agent Config) differ beyond the agent and
    its policy class's own fields: the loop's (except agent and run location) and those every soft
    actor-critic agent has. [] means one recipe (issue 34: SAC and SMFP wherever they are compared)."""
    from mjx_smfp.agents.soft_actor_critic import SoftActorCriticConfig

    shared = [f.name for f in dataclasses.fields(SoftActorCriticConfig)]
    own = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in ("agent", "run_dir", "log_dir")]
    out = [f"{k}: {getattr(a[0], k)!r} vs {getattr(b[0], k)!r}" for k in own if getattr(a[0], k) != getattr(b[0], k)]
    return out + [f"{k}: {getattr(a[1], k)!r} vs {getattr(b[1], k)!r}" for k in shared
                  if getattr(a[1], k, None) != getattr(b[1], k, None)]


def check_reward_support(cfg: TrainConfig, agent_cfg) -> None:
    """With normalised rewards a distributional critic's support must hold the largest normalised
    return (reward_g_max) on both sides; ValueError naming the fields otherwise."""
    if not cfg.normalize_reward or getattr(agent_cfg, "critic_type", "mse") == "mse":
        return
    if min(-agent_cfg.value_min, agent_cfg.value_max) < cfg.reward_g_max:
        raise ValueError(f"value_min={agent_cfg.value_min}, value_max={agent_cfg.value_max} do not hold "
                         f"+-reward_g_max={cfg.reward_g_max}: normalised returns would be clipped")


def validate(cfg: TrainConfig) -> None:
    """Raise ValueError naming the first impossible field or combination."""
    import envs

    if cfg.env not in envs.names():
        raise ValueError(f"env={cfg.env!r} is not a known task; valid envs: {', '.join(envs.names())}")
    from mjx_smfp import agents

    if cfg.agent not in agents.names():
        raise ValueError(f"agent={cfg.agent!r} is not a known agent; valid agents: {', '.join(agents.names())}")
    check(cfg, "physics", choices=PHYSICS, noun="physics presets")
    check(cfg, "num_envs", "episode_length", "total_env_steps", "batch_size", "updates_per_step", "replay_capacity",
          "iterations_per_call", "eval_episodes", "keep_checkpoints", positive=True)
    check(cfg, "learning_starts", "eval_interval", "checkpoint_interval", "seed", nonneg=True)
    check(cfg, "n_step", at_least=1)  # 1 = one-step targets
    check(cfg, "recipe", choices=recipes.RECIPE_NAMES, noun="recipes")
    check(cfg, "reward_g_max", positive=True)
    check_seeds(cfg.num_seeds, cfg.num_devices)
    check(cfg, "num_devices", nonneg=True)  # 0 = all visible devices
    if cfg.num_devices > 1:  # before any divisibility: a missing device is the first thing to fix
        import jax

        if cfg.num_devices > jax.device_count():
            raise ValueError(f"num_devices={cfg.num_devices} asked for, but only {jax.device_count()} "
                             f"{jax.devices()[0].platform} device(s) are present")
    if cfg.seed >= 2**32:
        raise ValueError(f"seed={cfg.seed} must be < 2**32")
    if cfg.batch_size > cfg.replay_capacity:
        raise ValueError(f"batch_size={cfg.batch_size} exceeds replay_capacity={cfg.replay_capacity}")
    if cfg.num_devices > 0:  # 0 (all devices) is checked by the Engine once the count is known
        check_sharding(cfg, cfg.num_devices)
    if cfg.num_envs > cfg.replay_capacity:
        raise ValueError(f"num_envs={cfg.num_envs} exceeds replay_capacity={cfg.replay_capacity} "
                         "(one iteration inserts num_envs transitions)")
    if cfg.learning_starts > cfg.total_env_steps:
        raise ValueError(f"learning_starts={cfg.learning_starts} exceeds total_env_steps={cfg.total_env_steps}")
    try:
        opts = json.loads(cfg.env_kwargs)
    except json.JSONDecodeError as err:
        raise ValueError(f"env_kwargs={cfg.env_kwargs!r} is not a JSON object: {err}") from None
    if not isinstance(opts, dict):
        raise ValueError(f"env_kwargs={cfg.env_kwargs!r} must be a JSON object")


def check_seeds(num_seeds: int, num_devices: int) -> None:
    """ValueError unless `num_seeds` is positive and, with several seeds, the run is the plain
    single-device engine (seeds are not sharded over devices yet)."""
    check("num_seeds", num_seeds, positive=True)
    if num_seeds > 1 and num_devices != 1:
        raise ValueError(f"num_seeds={num_seeds} with num_devices={num_devices}: seeds are not sharded over "
                         "devices yet; use num_devices=1 with several seeds, or num_seeds=1 with several devices")


def check_sharding(cfg: TrainConfig, num_devices: int) -> tuple[int, int, int]:
    """(num_envs, replay_capacity, batch_size) per device; ValueError naming the field that
    does not divide by `num_devices`."""
    from mjx_smfp.distributed import check_divisible

    envs_per = check_divisible("num_envs", cfg.num_envs, num_devices)
    capacity_per = check_divisible("replay_capacity", cfg.replay_capacity, num_devices)
    batch_per = cfg.batch_size if cfg.batch_per_device else check_divisible("batch_size", cfg.batch_size, num_devices)
    if batch_per > capacity_per:
        raise ValueError(f"batch_size={cfg.batch_size} gives {batch_per} rows per device, more than the "
                         f"{capacity_per} replay rows per device (replay_capacity={cfg.replay_capacity})")
    return envs_per, capacity_per, batch_per


def to_dict(cfg: TrainConfig, agent_cfg: Any) -> dict:
    """The resolved configuration as plain JSON-able data."""
    return {"train": dataclasses.asdict(cfg), "agent": dataclasses.asdict(agent_cfg)}


def from_dict(data: dict, agent_config_cls=None) -> tuple[TrainConfig, Any]:
    """Inverse of `to_dict` (tuples restored from JSON lists)."""
    if agent_config_cls is None:
        from mjx_smfp import agents

        agent_config_cls = agents.get_class(data["train"]["agent"]).Config
    def restore(value):
        if isinstance(value, list):
            return tuple(value)
        return {k: restore(v) for k, v in value.items()} if isinstance(value, dict) else value

    # config.json files from before recipes existed (2026-12-07) were configured by agents' defaults.
    return TrainConfig(**{"recipe": "authors", **data["train"]}), make_config(agent_config_cls, lift_moved_fields(agent_config_cls,
                                                                                          restore(data["agent"])))


def lift_moved_fields(cls, values: dict) -> dict:
    """Saved agent values with the fields that moved from a nested config up to `cls` itself
    (2026-12: SMFP's `policy.activation` became the agent's `activation`, shared by actor and
    critic) lifted to the top, so older config.json files still load. Such runs trained their
    critic with ReLU whatever the actor's activation was."""
    values = dict(values)
    for name, typ in nested_configs(cls).items():
        if isinstance(values.get(name), dict):
            sub = dict(values[name])
            for key in [k for k in sub if k not in field_types(typ) and k in field_types(cls) and k not in values]:
                values[key] = sub.pop(key)
            values[name] = sub
    return values
