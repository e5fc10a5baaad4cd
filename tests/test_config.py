"""Config: presets resolve, overrides reach train and agent fields, bad options name the field."""
import dataclasses
import json

import pytest

from mjx_smfp import cli, config


def test_presets_and_cli_overrides_reach_train_and_agent_fields():
    cfg, agent_cfg = config.build(cli.parse_cli_pairs(
        ["--env", "inverted_pendulum", "--agent", "sac", "--preset", "paper", "--batch_size", "512",
         "--temperature_lr=1e-3", "--critic_hidden", "64,64", "--normalize_obs", "false", "--target_entropy", "none"]))
    assert (cfg.preset, cfg.num_envs, cfg.batch_size, cfg.normalize_obs) == ("paper", 1, 512, False)
    assert cfg.replay_capacity == 1_000_000 and cfg.updates_per_step == 1
    assert agent_cfg.temperature_lr == 1e-3 and agent_cfg.critic_hidden == (64, 64)
    assert agent_cfg.target_entropy is None
    assert config.build({"preset": "auto"})[0].preset == "cpu"  # no accelerator in tests
    fast, fast_agent = config.build({"preset": "fast", "env": "humanoid"})
    assert fast.num_envs >= 1024 and fast_agent.critic_hidden == (1024, 512, 256)
    again = config.from_dict(config.to_dict(cfg, agent_cfg))
    assert again == (cfg, agent_cfg)


def test_smfp_runs_the_references_recipe_at_the_fast_preset_and_sac_keeps_todays():
    from mjx_smfp import recipes
    from mjx_smfp.agents.sac import SAC

    for env, preset in (("halfcheetah", "fast"), ("humanoid", "fast"), ("humanoid", "cpu")):
        cfg, smfp = config.build({"env": env, "agent": "smfp", "preset": preset})
        resolved = {**dataclasses.asdict(cfg), **dataclasses.asdict(smfp)}
        assert {k: resolved[k] for k in recipes.REFERENCE} == recipes.REFERENCE, (env, preset)
        assert cfg.n_step == 3 and smfp.critic_type == "c51"
        # The distributional support comes from the task's reward scale and the discount.
        bound = recipes.REWARD_SCALE[env] / (1 - smfp.gamma)
        assert (smfp.value_min, smfp.value_max) == pytest.approx((-bound, bound))
        cfg, sac = config.build({"env": env, "agent": "sac", "preset": preset})
        resolved = {**dataclasses.asdict(cfg), **dataclasses.asdict(sac)}
        assert {k: resolved[k] for k in recipes.REFERENCE} == recipes.today(config.TrainConfig, SAC.Config)
    # Elsewhere SMFP keeps its defaults; a task's own preset and the command line win over the recipe.
    cfg, smfp = config.build({"env": "halfcheetah", "agent": "smfp", "preset": "cpu"})
    assert (cfg.n_step, smfp.critic_type, smfp.value_min) == (1, "mse", None)
    assert config.build({"env": "multimodal", "agent": "smfp", "preset": "fast"})[1].init_temperature == 0.01
    _, smfp = config.build({"env": "humanoid", "agent": "smfp", "preset": "fast", "critic_type": "mse",
                            "value_max": "50"})
    assert smfp.critic_type == "mse" and smfp.value_max == 50.0


@pytest.mark.parametrize("overrides, message", [
    ({"batch_sise": "8"}, r"unknown option --batch_sise \(did you mean --batch_size"),
    ({"batch_size": "4096", "replay_capacity": "1000"}, r"batch_size=4096 exceeds replay_capacity=1000"),
    ({"learning_starts": "10", "total_env_steps": "5"}, r"learning_starts=10 exceeds total_env_steps=5"),
    ({"env": "humanoid_v9"}, r"env='humanoid_v9' is not a known task; valid envs: .*inverted_pendulum"),
    ({"agent": "ppo"}, r"unknown agent 'ppo'; valid agents: .*sac.*smfp"),
    ({"preset": "huge"}, r"preset='huge' is not valid; valid presets: auto, cpu, fast, paper"),
    ({"num_envs": "0"}, r"num_envs=0 must be positive"),
    ({"gamma": "high"}, r"--gamma: cannot read 'high' as float"),
    ({"env_kwargs": "num_modes=4"}, r"env_kwargs='num_modes=4' is not a JSON object"),
    ({"num_devices": "3", "num_envs": "16"}, r"num_devices=3 asked for, but only 1 cpu device"),  # not divisibility
    ({"seed": str(2**32)}, r"seed=4294967296 must be < 2\*\*32"),
    ({"actor_lr": "nan"}, r"actor_lr=nan must be finite and > 0"),
    ({"eval_interval": "-1"}, r"eval_interval=-1 must be >= 0"),
])
def test_bad_options_raise_errors_naming_the_field(overrides, message):
    with pytest.raises(ValueError, match=message):
        config.build(overrides)


def test_a_scale_specific_task_preset_beats_the_any_scale_one(monkeypatch):
    monkeypatch.setitem(config.TASK_PRESETS, ("inverted_pendulum", "*"), (dict(batch_size=64), {}))
    monkeypatch.setitem(config.TASK_PRESETS, ("inverted_pendulum", "paper"), (dict(batch_size=128), {}))
    assert config.build({"env": "inverted_pendulum", "preset": "paper"})[0].batch_size == 128
    assert config.build({"env": "inverted_pendulum", "preset": "cpu"})[0].batch_size == 64


def test_nested_policy_fields_are_flat_options_and_round_trip_through_json():
    cfg, agent_cfg = config.build({"agent": "smfp", "sigma_mode": "per_dim", "time_embed_dim": "16"})
    assert agent_cfg.policy.sigma_mode == "per_dim" and agent_cfg.policy.time_embed_dim == 16
    assert config.from_dict(json.loads(json.dumps(config.to_dict(cfg, agent_cfg)))) == (cfg, agent_cfg)


def test_env_kwargs_a_task_does_not_take_are_an_error_listing_its_options():
    from mjx_smfp.engine import make_task

    cfg, _ = config.build({"env": "inverted_pendulum", "env_kwargs": '{"nosuch": 1}'})
    with pytest.raises(ValueError, match=r"does not fit task 'inverted_pendulum'.*its options: .*reset_noise_scale"):
        make_task(cfg)


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


def test_a_saved_smfp_config_from_before_activation_moved_up_still_loads():
    """policy.activation (the actor's, until 2026-12) becomes the agent's activation."""
    cfg, agent_cfg = config.build({"agent": "smfp", "activation": "silu"})
    saved = json.loads(json.dumps(config.to_dict(cfg, agent_cfg)))
    saved["agent"]["policy"]["activation"] = saved["agent"].pop("activation")
    assert config.from_dict(saved) == (cfg, agent_cfg)
