"""End to end through the command line: SAC learns the one-mode bandit (train CLI ->
checkpoint -> evaluate CLI), the run directory holds what it promises, resume continues,
and bad options exit with a message naming the field."""
import json
import os

import pytest

from launch import evaluate as evaluate_cli
from launch import train as train_cli

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


def test_resume_continues_the_run_to_the_new_total(run_dir):
    before = _records(run_dir)[-1]["step"]
    train_cli.main(["--resume", run_dir, "--total_env_steps", str(before + 800)])
    after = _records(run_dir)[-1]["step"]
    assert after == before + 800  # one more host call (50 iterations x 16 envs), not a restart


@pytest.mark.parametrize("argv, message", [
    (["--env", "multimodal", "--batch_sise", "3"], "unknown option --batch_sise"),
    (["--env", "nope"], "env='nope' is not a known task"),
    (["--env", "multimodal", "--replay_capacity", "100"], "batch_size=256 exceeds replay_capacity=100"),
])
def test_bad_options_exit_with_a_message_naming_the_field(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_cli.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
