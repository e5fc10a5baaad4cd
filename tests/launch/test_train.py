"""End to end through the command line: SAC learns the one-mode bandit (train CLI ->
checkpoint -> evaluate CLI), the run directory holds what it promises (the policy file
acts like the full checkpoint), resume continues, `--help` documents every option, and bad
options exit with a message naming the field."""
import dataclasses
import json
import os
import re

import numpy as np
import pytest

from launch import evaluate as evaluate_cli
from launch import train as train_cli
from mjx_smfp import agents, cli, config, policy_file

ARGS = ["--env", "multimodal", "--env_kwargs", '{"num_modes": 1}', "--agent", "sac", "--preset", "cpu",
        "--total_env_steps", "16000", "--actor_hidden", "64,64", "--critic_hidden", "64,64",
        "--eval_interval", "8000", "--eval_episodes", "32"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train_cli.main(ARGS + ["--log_dir", str(tmp_path_factory.mktemp("runs"))])


def _records(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def test_sac_learns_the_single_mode_bandit_end_to_end(run_dir, capsys):
    warmup = _records(run_dir)[0]  # uniform random actions
    assert warmup["train/reward_mean"] <= 0.2
    mean, _ = evaluate_cli.main([run_dir, "--episodes", "32"])
    assert mean >= 0.8, mean  # deterministic eval; random actions average <= 0.2
    assert "return" in capsys.readouterr().out


def test_run_dir_holds_config_metrics_tensorboard_and_checkpoint(run_dir):
    assert os.sep.join(["multimodal", "sac"]) in run_dir
    names = os.listdir(run_dir)
    assert any(n.startswith("events.out.tfevents") for n in names)
    with open(os.path.join(run_dir, "config.json")) as f:
        saved = json.load(f)
    assert saved["train"]["total_env_steps"] == 16000 and saved["agent"]["critic_hidden"] == [64, 64]
    keys = set().union(*(r.keys() for r in _records(run_dir)))
    for key in ("train/episode_return", "train/critic_loss", "train/actor_loss", "train/temperature",
                "train/entropy", "train/q_mean", "train/critic_grad_norm", "perf/env_steps_per_s",
                "perf/updates_per_s", "eval/return_mean"):
        assert key in keys, key
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        assert f.readline().strip() == "step,wall_time,name,value"
    assert os.listdir(os.path.join(run_dir, "checkpoints"))


def _size(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def test_policy_file_acts_like_eval_act_on_the_full_checkpoint_and_is_far_smaller(run_dir):
    policy = policy_file.load(run_dir)
    engine, full = evaluate_cli.load(run_dir, step=policy.env_steps)  # the full checkpoint, replay included
    obs = np.random.default_rng(0).normal(size=(5, engine.obs_size)).astype(np.float32) * 3
    np.testing.assert_allclose(policy(obs), full(obs), rtol=1e-6, atol=1e-6)
    assert policy(obs[0]).shape == (engine.action_size,)
    assert (policy.config, policy.agent_config) == (engine.cfg, engine.agent.config)
    assert policy.agent_state.critic_params is None and policy.agent_state.actor_opt_state is None
    checkpoint = os.path.join(run_dir, "checkpoints", str(policy.env_steps))
    assert _size(os.path.join(run_dir, "policy")) * 10 < _size(checkpoint)  # orbax compresses the empty replay rows


def test_resume_continues_the_run_to_the_new_total(run_dir):
    before = _records(run_dir)[-1]["step"]
    train_cli.main(["--resume", run_dir, "--total_env_steps", str(before + 800)])
    after = _records(run_dir)[-1]["step"]
    assert after == before + 800  # one more host call (50 iterations x 16 envs), not a restart


@pytest.mark.parametrize("argv, message", [
    (["--env", "multimodal", "--batch_sise", "3"], "unknown option --batch_sise"),
    (["--env", "nope"], "env='nope' is not a known task"),
    (["--env", "multimodal", "--replay_capacity", "100"], "batch_size=256 exceeds replay_capacity=100"),
    (["--env", "multimodal", "--actor_lr", "nan"], "actor_lr=nan must be finite and > 0"),
    (["--env", "multimodal", "--gamma", "1.5"], "gamma=1.5 must be in [0, 1]"),
    (["--env", "multimodal", "--replay_capacity", "100000000000"], "replay_capacity=100000000000 needs"),
    (["--env", "multimodal", "--env_kwargs", '{"nosuch": 1}'], "its options: num_modes"),
    (["--env", "multimodal", "--num_devices", "3"], "num_devices=3 asked for, but only 1 cpu device(s)"),
    (["--env", "multimodal", "--preset", "fast"], "--preset fast is sized for GPUs"),
])
def test_bad_options_exit_with_a_message_naming_the_field(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv, code", [(["--help", "--env", "multimodal"], None),
                                         (["--env", "multimodal", "--gamma", "1.5"], 2)])
def test_the_command_line_is_walked_once(argv, code, monkeypatch):
    walks = []
    parse = cli.parse_cli_pairs
    monkeypatch.setattr(cli, "parse_cli_pairs", lambda args: walks.append(args) or parse(args))
    if code is None:
        train_cli.main(argv)
    else:
        with pytest.raises(SystemExit, match=str(code)):
            train_cli.main(argv)
    assert len(walks) == 1


def test_a_gpu_task_on_the_cpu_says_what_to_expect_and_what_to_do():
    cfg, _ = config.build({"env": "humanoid", "preset": "cpu"})
    note = train_cli.heavy_task_note(cfg)
    # The cpu preset's humanoid runs on the `gpu` physics preset, and the note says so.
    assert cfg.physics == "gpu" and "humanoid is meant for a GPU" in note and "`gpu` physics preset" in note
    gymnasium, _ = config.build({"env": "humanoid", "preset": "cpu", "physics": "gymnasium"})
    assert "--physics gpu" in train_cli.heavy_task_note(gymnasium)
    assert f"ETA ~{cfg.total_env_steps / train_cli.CPU_HUMANOID_STEPS_PER_S / 3600:.1f} h" in note
    assert train_cli.heavy_task_note(config.build({"env": "multimodal"})[0]) is None


def test_preset_fast_runs_on_a_cpu_when_insisted_on():
    command = cli.parse_command_line(["--env", "multimodal", "--preset", "fast", "--allow_cpu_fast", "true"])
    cfg, _, _, _ = train_cli.resolve(command)
    assert cfg.preset == "fast"


@pytest.mark.parametrize("agent", agents.names())
def test_help_lists_every_option_of_the_chosen_agent_with_its_resolved_default(agent, capsys):
    assert train_cli.main(["--help", "--agent", agent, "--env", "multimodal"]) == ""  # returns: exit status 0
    out = capsys.readouterr().out
    cfg, agent_cfg = config.build({"agent": agent, "env": "multimodal"})
    values = dataclasses.asdict(cfg)
    for key, value in dataclasses.asdict(agent_cfg).items():  # nested configs' fields are flat options
        values.update(value if isinstance(value, dict) else {key: value})
    meanings = {**cli.field_comments(config.TrainConfig), **cli.field_comments(agents.get_class(agent).Config)}
    for name, typ in {**config.flat_field_types(config.TrainConfig),
                      **config.flat_field_types(agents.get_class(agent).Config)}.items():
        assert meanings[name], f"--{name} has no inline comment to explain it"
        line = re.search(rf"^  --{name} +(\S+) +(\S*) +(.*)$", out, re.M)
        assert line and line.group(2) == cli.show_value(values[name]) and line.group(3) == meanings[name], name
    for listed in ("envs: ", f"agents: {', '.join(agents.names())}", "presets: auto, cpu, fast, paper (auto = cpu without"):
        assert listed in out


def test_evaluate_seed_k_of_a_multi_seed_run(tmp_path, capsys):
    """--num_seeds 2 through the CLI, then launch.evaluate --seed k evaluates run k (from its policy
    file); a seed the run does not have is an error line."""
    args = ["--env", "multimodal", "--env_kwargs", '{"num_modes": 1}', "--agent", "sac", "--preset", "cpu",
            "--num_seeds", "2", "--total_env_steps", "1200", "--learning_starts", "400", "--actor_hidden", "16",
            "--critic_hidden", "16", "--eval_interval", "0", "--eval_episodes", "8", "--iterations_per_call", "25"]
    run_dir = train_cli.main(args + ["--log_dir", str(tmp_path)])
    means = [evaluate_cli.main([run_dir, "--seed", str(k), "--episodes", "8"])[0] for k in (0, 1)]
    assert means[0] != means[1]  # two independent runs, not one evaluated twice
    with pytest.raises(SystemExit) as exit_info:
        evaluate_cli.main([run_dir, "--seed", "2"])
    assert exit_info.value.code == 2 and "seed=2" in capsys.readouterr().err
