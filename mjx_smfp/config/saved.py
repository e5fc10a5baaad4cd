"""The JSON round trip of a resolved configuration (`config.json`, policy files, benchmark records)
and the migrations that keep older saved configurations loading: `to_dict` / `from_dict`, each
migration a small function of the saved data that `from_dict` applies."""
from __future__ import annotations

import dataclasses
from typing import Any

from mjx_smfp.config.fields import field_types, make_config, nested_configs
from mjx_smfp.config.train import TrainConfig


def to_dict(cfg: TrainConfig, agent_cfg: Any) -> dict:
    """The resolved configuration as plain JSON-able data."""
    return {"train": dataclasses.asdict(cfg), "agent": dataclasses.asdict(agent_cfg)}


def from_dict(data: dict, agent_config_cls=None) -> tuple[TrainConfig, Any]:
    """Inverse of `to_dict` (tuples restored from JSON lists), older layouts migrated."""
    if agent_config_cls is None:
        from mjx_smfp import agents

        agent_config_cls = agents.get_class(data["train"]["agent"]).Config
    agent_values = lift_moved_fields(agent_config_cls, restore_tuples(data["agent"]))
    return TrainConfig(**train_with_recipe(data["train"])), make_config(agent_config_cls, agent_values)


def restore_tuples(value):
    """JSON lists back to tuples (the configs' sequence fields are tuples), inside dicts too."""
    if isinstance(value, list):
        return tuple(value)
    return {k: restore_tuples(v) for k, v in value.items()} if isinstance(value, dict) else value


def train_with_recipe(values: dict) -> dict:
    """Saved loop values with a `recipe`: config.json files from before recipes existed (2026-12-07)
    were configured by the agents' defaults, i.e. recipe "authors"."""
    return {"recipe": "authors", **values}


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
