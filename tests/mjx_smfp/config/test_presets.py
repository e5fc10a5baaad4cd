"""The presets (mjx_smfp/config/presets.py): a scale-specific task preset beats the any-scale one, and
the fast preset's physics reaches the task unless env_kwargs names another."""
import pytest

from mjx_smfp import config


def test_a_scale_specific_task_preset_beats_the_any_scale_one(monkeypatch):
    monkeypatch.setitem(config.TASK_PRESETS, ("inverted_pendulum", "*"), (dict(batch_size=64), {}))
    monkeypatch.setitem(config.TASK_PRESETS, ("inverted_pendulum", "paper"), (dict(batch_size=128), {}))
    assert config.build({"env": "inverted_pendulum", "preset": "paper"})[0].batch_size == 128
    assert config.build({"env": "inverted_pendulum", "preset": "cpu"})[0].batch_size == 64


def test_fast_preset_simulates_with_gpu_physics_and_env_kwargs_physics_wins():
    from mjx_smfp.engine import make_task

    assert config.build({"preset": "fast", "env": "hopper"})[0].physics == "gpu"
    assert config.build({"preset": "paper", "env": "hopper"})[0].physics == "gymnasium"
    cfg, _ = config.build({"env": "inverted_pendulum", "physics": "gpu"})
    assert make_task(cfg).physics.integrator == "euler"
    cfg, _ = config.build({"env": "inverted_pendulum", "physics": "gpu", "env_kwargs": '{"physics": "gymnasium"}'})
    assert make_task(cfg).physics.integrator != "euler"
    with pytest.raises(ValueError, match=r"physics='warp' is not valid"):
        config.build({"physics": "warp"})
