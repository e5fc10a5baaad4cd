"""Config: presets resolve, overrides reach train and agent fields, bad options name the field."""
import pytest

from mjx_smfp import config


def test_presets_and_cli_overrides_reach_train_and_agent_fields():
    cfg, agent_cfg = config.build(config.parse_cli_pairs(
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


@pytest.mark.parametrize("overrides, message", [
    ({"batch_sise": "8"}, r"unknown option --batch_sise \(did you mean --batch_size"),
    ({"batch_size": "4096", "replay_capacity": "1000"}, r"batch_size=4096 exceeds replay_capacity=1000"),
    ({"learning_starts": "10", "total_env_steps": "5"}, r"learning_starts=10 exceeds total_env_steps=5"),
    ({"env": "humanoid_v9"}, r"env='humanoid_v9' is not a known task; valid envs: .*inverted_pendulum"),
    ({"agent": "ppo"}, r"unknown agent 'ppo'; valid agents: sac, smfp"),
    ({"preset": "huge"}, r"preset='huge' is not valid; valid presets: auto, cpu, fast, paper"),
    ({"num_envs": "0"}, r"num_envs=0 must be positive"),
    ({"gamma": "high"}, r"--gamma: cannot read 'high' as float"),
    ({"env_kwargs": "num_modes=4"}, r"env_kwargs='num_modes=4' is not a JSON object"),
])
def test_bad_options_raise_errors_naming_the_field(overrides, message):
    with pytest.raises(ValueError, match=message):
        config.build(overrides)
