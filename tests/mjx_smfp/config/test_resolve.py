"""config.build (mjx_smfp/config/resolve.py): presets resolve, overrides reach train and agent fields, SAC and
SMFP share one recipe, bad options name the field."""
import dataclasses

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


@pytest.mark.parametrize("preset", ["cpu", "fast", "paper"])
def test_sac_and_smfp_resolve_to_one_recipe_differing_only_in_the_policy_class_on_every_preset_and_task(preset):
    """Issue 34: wherever SAC and SMFP are compared their resolved configurations differ only in the
    policy class and its own fields (SMFP's flow, anchor, md_coef, ...): the shared recipe sets the rest."""
    import envs

    for env in envs.names():
        sac = config.build({"env": env, "agent": "sac", "preset": preset})
        smfp = config.build({"env": env, "agent": "smfp", "preset": preset})
        assert config.recipe_differences(sac, smfp) == [], (preset, env)
        expected = "parallel" if preset == "fast" or (preset, env) == ("cpu", "humanoid") else "classic"
        assert sac[0].recipe == smfp[0].recipe == expected, (preset, env)


def test_the_parallel_recipe_is_the_references_made_scale_free_and_named_deviations_stay_listed():
    from mjx_smfp import recipes

    cfg, smfp = config.build({"env": "humanoid", "agent": "smfp", "preset": "cpu"})
    resolved = {**dataclasses.asdict(cfg), **dataclasses.asdict(smfp)}
    assert {k: resolved[k] for k in recipes.PARALLEL} == recipes.PARALLEL
    assert cfg.normalize_reward and cfg.n_step == 3 and smfp.critic_type == "c51"
    assert (smfp.value_min, smfp.value_max) == (-10.0, 10.0) and smfp.temperature_every_update
    assert len(recipes.DEVIATIONS_FROM_FASTSAC) >= 7
    # The classic recipe: SAC's defaults, one alpha0 for both agents; "authors" = each agent's own.
    cfg, sac = config.build({"env": "halfcheetah", "agent": "sac", "preset": "paper"})
    assert (cfg.recipe, cfg.n_step, sac.critic_type, sac.init_temperature, cfg.normalize_reward) == (
        "classic", 1, "mse", 0.1, False)
    assert config.build({"env": "halfcheetah", "agent": "smfp", "recipe": "authors"})[1].log_std_max == 1.0
    # SAC Flow and DIME keep their authors' recipes unless asked; a task's preset and the command line win.
    cfg, sacflow = config.build({"env": "halfcheetah", "agent": "sacflow", "preset": "fast"})
    assert cfg.recipe == "authors" and sacflow.init_temperature == 0.2
    assert config.build({"env": "multimodal", "agent": "smfp", "preset": "fast"})[1].init_temperature == 0.01
    _, smfp = config.build({"env": "humanoid", "agent": "smfp", "preset": "fast", "critic_type": "mse",
                            "value_max": "50"})
    assert smfp.critic_type == "mse" and smfp.value_max == 50.0
    with pytest.raises(ValueError, match=r"value_min=-3.0, value_max=3.0 do not hold \+-reward_g_max=5.0"):
        config.build({"env": "humanoid", "agent": "sac", "preset": "fast", "value_min": "-3", "value_max": "3"})
    # What the check reads: a shared field set for one agent only is a difference; an SMFP-only one is not.
    base = {"env": "hopper", "preset": "cpu"}
    assert config.recipe_differences(config.build({**base, "agent": "sac", "tau": "0.01"}),
                                     config.build({**base, "agent": "smfp", "md_coef": "0.5"})) == ["tau: 0.01 vs 0.005"]
    with pytest.raises(ValueError, match=r"recipe='fastest' is not valid; valid recipes: auto, classic, parallel"):
        config.build({"recipe": "fastest"})


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


def test_env_kwargs_a_task_does_not_take_are_an_error_listing_its_options():
    from mjx_smfp.engine import make_task

    cfg, _ = config.build({"env": "inverted_pendulum", "env_kwargs": '{"nosuch": 1}'})
    with pytest.raises(ValueError, match=r"does not fit task 'inverted_pendulum'.*its options: .*reset_noise_scale"):
        make_task(cfg)
