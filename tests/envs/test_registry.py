"""The task registry: every promised task is listed, unknown names fail helpfully, options pass."""
import importlib
import subprocess
import sys

import pytest

import envs

# Gymnasium MuJoCo v5 tasks (the README promises all of them) plus the SMFP multimodal task.
EXPECTED = {
    "ant", "halfcheetah", "hopper", "humanoid", "humanoidstandup", "inverted_double_pendulum",
    "inverted_pendulum", "pusher", "reacher", "swimmer", "walker2d", "multimodal",
}


def test_names_lists_every_task_sorted():
    assert set(envs.names()) == EXPECTED
    assert envs.names() == sorted(envs.names())


def test_unknown_name_error_lists_all_valid_names():
    with pytest.raises(ValueError) as err:
        envs.make("humanoid-v5")
    message = str(err.value)
    assert "humanoid-v5" in message
    for name in EXPECTED:
        assert name in message


def test_make_passes_options_to_the_task():
    env = envs.make("multimodal", num_modes=1, action_size=3)
    assert env.num_modes == 1 and env.action_size == 3
    with pytest.raises(TypeError):
        envs.make("multimodal", no_such_option=1)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_registry_entry_points_at_a_brax_env_class(name):
    """Import only (no model is built): the module exists and defines the class named."""
    from brax.envs.base import Env

    module_name, class_name = envs._REGISTRY[name].split(":")
    cls = getattr(importlib.import_module(module_name), class_name, None)
    assert cls is not None, f"{module_name} defines no {class_name}"
    assert issubclass(cls, Env)


def test_importing_envs_hides_mjx_warp_notices_in_a_fresh_process():
    """mujoco.mjx prints "Failed to import warp: ..." on import when MuJoCo Warp is absent (we
    use MJX's JAX backend); `import envs` swallows exactly those lines."""
    out = subprocess.run([sys.executable, "-c", "import envs, mujoco.mjx.warp as w; print('warp', w.WARP_INSTALLED)"],
                         capture_output=True, text=True, check=True).stdout
    assert "Failed to import" not in out and "warp False" in out, out
