"""The command line (mjx_smfp/cli.py): `--field value` pairs, values shown as they are typed, and
field meanings read from the configs' inline comments (the `--help` rows: tests/launch/test_train.py)."""
import pytest

from mjx_smfp import cli, config
from mjx_smfp.agents.sac import SAC
from mjx_smfp.agents.smfp import SMFP
from mjx_smfp.policies.meanflow import MeanFlowConfig


def test_pairs_take_space_or_equals_values_bare_flags_and_dashes():
    pairs = cli.parse_cli_pairs(["--env", "hopper", "--batch_size=512", "--normalize_obs", "--critic-hidden", "64,64"])
    assert pairs == {"env": "hopper", "batch_size": "512", "normalize_obs": "true", "critic_hidden": "64,64"}
    with pytest.raises(ValueError, match=r"unexpected argument 'hopper'; options are --field value"):
        cli.parse_cli_pairs(["hopper"])


def test_a_training_command_line_is_read_into_overrides_and_launch_options():
    command = cli.parse_command_line(["--agent", "sac", "-h", "--resume", "runs/x", "--allow_cpu_fast",
                                      "--batch_size=8"])
    assert command == cli.CommandLine(overrides={"agent": "sac", "batch_size": "8"}, help=True, resume="runs/x",
                                      allow_cpu_fast=True)
    assert cli.parse_command_line(["--env", "hopper"]) == cli.CommandLine(overrides={"env": "hopper"})
    with pytest.raises(ValueError, match=r"--allow_cpu_fast: cannot read 'maybe' as bool"):
        cli.parse_command_line(["--allow_cpu_fast", "maybe"])


def test_parsed_pairs_build_the_config_they_name():
    cfg, agent_cfg = config.build(cli.parse_cli_pairs(["--agent", "sac", "--weight_decay", "1e-3", "--adam_b2=0.95",
                                                       "--activation", "silu", "--target_std", "0.15"]))
    assert (agent_cfg.weight_decay, agent_cfg.adam_b2, agent_cfg.activation, agent_cfg.target_std) == (
        1e-3, 0.95, "silu", 0.15)


@pytest.mark.parametrize("value, shown", [((64, 64), "64,64"), (None, "none"), (True, "true"), ("", "''"), (3e-4, "0.0003")])
def test_values_are_shown_as_the_command_line_writes_them(value, shown):
    assert cli.show_value(value) == shown


def test_field_meanings_come_from_inline_comments_a_subclass_wins_and_nested_fields_count():
    sac, smfp = cli.field_comments(SAC.Config), cli.field_comments(SMFP.Config)
    assert sac["weight_decay"].startswith("decoupled (AdamW) weight decay")
    assert sac["log_std_max"].startswith("upper bound of the actor's log std")
    assert smfp["log_std_max"].startswith("upper bound of the boundary noise's log sigma")  # SMFP's own comment
    assert smfp["sigma_mode"] == cli.field_comments(MeanFlowConfig)["sigma_mode"] != ""
    assert set(config.flat_field_types(SMFP.Config)) <= set(smfp)
