"""Agent registry: `make(name, config, obs_size, action_size, axis)` -> a built agent;
classes are imported lazily by name.

Adding an agent: a frozen `Config` dataclass nested in the class, a policy, an actor loss
(see agents/soft_actor_critic.py), and one line "name": "module:Class" below.
"""
from __future__ import annotations

import importlib
from typing import Optional

_REGISTRY: dict[str, str] = {
    "sac": "mjx_smfp.agents.sac:SAC",
    "smfp": "mjx_smfp.agents.smfp:SMFP",
}


def names() -> list[str]:
    """All registered agent names."""
    return sorted(_REGISTRY)


def get_class(name: str):
    """The agent class registered under `name` (imported on first use)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown agent {name!r}; valid agents: {', '.join(names())}")
    module_name, class_name = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def make(name: str, config, obs_size: int, action_size: int, axis: Optional[str] = None):
    """Build agent `name` for `obs_size`/`action_size` with `config` (its `Config`; None = defaults),
    averaging gradients over the mesh axis `axis` (None on one device)."""
    cls = get_class(name)
    return cls(config if config is not None else cls.Config(), obs_size, action_size, axis)
