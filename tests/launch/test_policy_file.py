"""The policy file: what it keeps per agent, and `launch.evaluate --gymnasium` running one in
Gymnasium's own MuJoCo env beside the MJX evaluation. The evaluated policy is an untrained
SAC actor written as a policy file: the test checks the wiring and the comparison, not
learning, and so needs no training run (three MJX compilations). The file against the full
checkpoint: tests/launch/test_train.py."""
import json
import re

import jax
import pytest

import envs
from launch import evaluate as evaluate_cli
from mjx_smfp import agents, config, policy_file
from mjx_smfp import normalizer as norm_lib


@pytest.fixture(scope="module")
def pendulum_run(tmp_path_factory):
    """A run directory holding config.json and the policy file of a freshly initialised agent."""
    run_dir = tmp_path_factory.mktemp("run")
    cfg, agent_cfg = config.build({"env": "inverted_pendulum", "agent": "sac", "preset": "cpu",
                                   "actor_hidden": "32,32", "critic_hidden": "32,32"})
    task = envs.make(cfg.env)
    agent = agents.make(cfg.agent, agent_cfg, task.observation_size, task.action_size)
    (run_dir / "config.json").write_text(json.dumps(config.to_dict(cfg, agent_cfg)))
    policy_file.save(str(run_dir / "policy"), agent, agent.init(jax.random.PRNGKey(0)),
                     norm_lib.init(task.observation_size), cfg, env_steps=0)
    return str(run_dir)


def test_evaluate_gymnasium_prints_mjx_and_gymnasium_returns_of_the_same_policy(pendulum_run, capsys):
    evaluate_cli.main([pendulum_run, "--gymnasium", "--episodes", "4"])
    out = capsys.readouterr().out
    mjx = float(re.search(r"MJX\s+return (-?[\d.]+)", out).group(1))
    gym = float(re.search(r"Gymnasium return (-?[\d.]+) .*InvertedPendulum-v5", out).group(1))
    assert mjx > 0 and gym > 0 and max(mjx, gym) / min(mjx, gym) < 10, out  # the same order of magnitude


@pytest.mark.parametrize("eval_best_of_n, keeps_critic", [(1, False), (4, True)])
def test_smfp_keeps_its_critic_in_the_policy_only_when_evaluation_scores_with_it(eval_best_of_n, keeps_critic):
    agent = agents.make("smfp", agents.get_class("smfp").Config(eval_best_of_n=eval_best_of_n), 3, 2)
    state = agent.policy_state(jax.eval_shape(agent.init, jax.random.PRNGKey(0)))
    assert state.actor_params is not None and state.anchor_params is None and state.critic_opt_state is None
    assert (state.critic_params is not None) == keeps_critic
