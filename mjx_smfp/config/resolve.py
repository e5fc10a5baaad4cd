"""Resolving a run's configuration: `build` layers the presets (mjx_smfp/config/presets.py) and
the overrides into a validated (TrainConfig, agent Config); `validate` and the `check_*` functions
are the start-up checks that name the impossible field or combination."""
from __future__ import annotations

import dataclasses
import difflib
import json
from typing import Any

from mjx_smfp import recipes
from mjx_smfp.config.fields import default, field_types, flat_field_types, make_config, parse_value
from mjx_smfp.config.presets import PHYSICS, layers, resolve_recipe, resolve_scale
from mjx_smfp.config.train import TrainConfig
from mjx_smfp.validation import check


def build(overrides: dict[str, Any], agent_config_cls=None) -> tuple[TrainConfig, Any]:
    """Resolve presets and overrides into (TrainConfig, agent Config), validated. Precedence:
    dataclass defaults < scale preset < shared recipe < task preset (any scale, then this scale) <
    overrides (presets.layers).

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
    recipe_name = resolve_recipe(overrides.pop("recipe", "auto"), scale, env, agent_cls)

    train_types = field_types(TrainConfig)
    agent_types = flat_field_types(agent_config_cls)
    train_kw: dict[str, Any] = {}
    agent_kw: dict[str, Any] = {}
    for t_kw, a_kw in layers(scale, env, recipes.recipe(recipe_name), train_types):
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
    if "value_min" in agent_types and agent_kw.get("critic_type", default(agent_config_cls, "critic_type")) != "mse":
        # A distributional critic's fixed support, unless given: +-reward scale / (1 - gamma).
        gamma = agent_kw.get("gamma", default(agent_config_cls, "gamma"))
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
