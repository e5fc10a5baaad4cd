"""MJX task registry: `envs.make(name, **options)` builds a brax-`Env`-compatible task.

Tasks follow Gymnasium's MuJoCo v5 definitions (see envs/tasks/); `multimodal` is the
small bandit-like task on which SMFP shows what a Gaussian policy cannot.
"""
from __future__ import annotations

import contextlib
import importlib
import io
import sys


def _import_mjx_quietly() -> None:
    """Import mujoco.mjx once without its optional-backend notices ("Failed to import warp: No
    module named 'warp'", printed to stdout on every start when MuJoCo Warp is absent, which it
    is here: we use MJX's JAX backend); anything else it prints is passed on."""
    if "mujoco.mjx" in sys.modules:
        return
    with contextlib.redirect_stdout(io.StringIO()) as captured:
        import mujoco.mjx  # noqa: F401
    for line in captured.getvalue().splitlines():
        if not line.startswith(("Failed to import warp:", "Failed to import mujoco_warp:")):
            print(line)


_import_mjx_quietly()

# name -> "module:Class"; modules are imported lazily so `envs.make("ant")` does not
# pay for building every model.
_REGISTRY: dict[str, str] = {
    "humanoid": "envs.tasks.humanoid:Humanoid",
    "humanoidstandup": "envs.tasks.humanoidstandup:HumanoidStandup",
    "ant": "envs.tasks.ant:Ant",
    "halfcheetah": "envs.tasks.halfcheetah:HalfCheetah",
    "hopper": "envs.tasks.hopper:Hopper",
    "walker2d": "envs.tasks.walker2d:Walker2d",
    "swimmer": "envs.tasks.swimmer:Swimmer",
    "inverted_double_pendulum": "envs.tasks.inverted_double_pendulum:InvertedDoublePendulum",
    "inverted_pendulum": "envs.tasks.inverted_pendulum:InvertedPendulum",
    "reacher": "envs.tasks.reacher:Reacher",
    "pusher": "envs.tasks.pusher:Pusher",
    "multimodal": "envs.multimodal:MultimodalBandit",
}


def names() -> list[str]:
    """All registered task names."""
    return sorted(_REGISTRY)


def get_class(name: str):
    """The task class registered under `name` (imported on first use)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown task {name!r}; valid tasks: {', '.join(names())}")
    module_name, class_name = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def make(name: str, **options):
    """Build the task `name`; keyword options go to the task's constructor."""
    return get_class(name)(**options)
