"""Agent registry: `make(name, config)` -> agent; classes are imported lazily by name.

Adding an agent: implement `mjx_smfp.agents.base.Agent` with a frozen dataclass `Config`
nested in the class, and add "name": "module:Class" below.
"""
from __future__ import annotations

import importlib

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
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name == module_name:
            raise ValueError(f"agent {name!r} is registered but {module_name} does not exist yet") from err
        raise
    return getattr(module, class_name)


def make(name: str, config=None):
    """Construct agent `name` with `config` (an instance of its `Config`; default config if None)."""
    cls = get_class(name)
    return cls(config if config is not None else cls.Config())
