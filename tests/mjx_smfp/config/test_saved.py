"""The JSON round trip of a resolved configuration (mjx_smfp/config/saved.py): nested configs survive
it, and config.json files of older layouts still load."""
import json

from mjx_smfp import config


def test_nested_policy_fields_are_flat_options_and_round_trip_through_json():
    cfg, agent_cfg = config.build({"agent": "smfp", "sigma_mode": "per_dim", "time_embed_dim": "16"})
    assert agent_cfg.policy.sigma_mode == "per_dim" and agent_cfg.policy.time_embed_dim == 16
    assert config.from_dict(json.loads(json.dumps(config.to_dict(cfg, agent_cfg)))) == (cfg, agent_cfg)


def test_a_saved_smfp_config_from_before_activation_moved_up_still_loads():
    """policy.activation (the actor's, until 2026-12) becomes the agent's activation."""
    cfg, agent_cfg = config.build({"agent": "smfp", "activation": "silu"})
    saved = json.loads(json.dumps(config.to_dict(cfg, agent_cfg)))
    saved["agent"]["policy"]["activation"] = saved["agent"].pop("activation")
    assert config.from_dict(saved) == (cfg, agent_cfg)


def test_a_saved_config_from_before_recipes_loads_with_the_authors_recipe():
    """config.json files from before recipes (2026-12-07) were configured by the agents' own defaults."""
    cfg, agent_cfg = config.build({"agent": "sac", "recipe": "authors"})
    saved = json.loads(json.dumps(config.to_dict(cfg, agent_cfg)))
    del saved["train"]["recipe"]
    assert config.from_dict(saved) == (cfg, agent_cfg)
