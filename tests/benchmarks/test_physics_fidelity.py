"""benchmarks.physics_fidelity's trained-policy comparison: one run's policy evaluated under
`gymnasium` and `gpu` physics on the same episodes. The policy is an untrained SAC actor in a
policy file (tests/launch/test_policy_file.py's fixture): the test checks the wiring, not learning."""
import numpy as np
import pytest

import envs
from benchmarks import physics_fidelity
from launch import evaluate as evaluate_cli
from tests.launch.test_policy_file import pendulum_run  # noqa: F401 - a pytest fixture


def test_policy_returns_match_the_plain_evaluation_under_gymnasium_and_differ_only_by_the_physics(
        pendulum_run):  # noqa: F811
    assert envs.make("inverted_pendulum", physics="gpu").physics != envs.make("inverted_pendulum").physics
    row = physics_fidelity.policy_returns(pendulum_run, "gpu", episodes=4)
    plain, _ = evaluate_cli.main([pendulum_run, "--episodes", "4"])  # the run's own physics (gymnasium), seed 0
    assert row["seeds"] == 1 and row["task"] == "inverted_pendulum"
    np.testing.assert_allclose(row["gymnasium_return"][0], plain, rtol=1e-3)
    assert np.isfinite(row["gpu_return"][0]) and row["gpu_return"][0] > 0
    np.testing.assert_allclose(row["difference"][0], row["gpu_return"][0] / row["gymnasium_return"][0] - 1)


def test_comparing_gymnasium_physics_with_itself_is_refused_by_name(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["physics_fidelity", "--physics", "gymnasium", "--policies", "unused"])
    with pytest.raises(SystemExit) as exit_info:
        physics_fidelity.main()
    assert exit_info.value.code == 2
    assert "--physics: invalid choice: 'gymnasium'" in capsys.readouterr().err
    # ... and so are direct calls.
    with pytest.raises(ValueError, match="physics 'gymnasium': compare one of"):
        physics_fidelity.returns("hopper", "gymnasium", episodes=1, horizon=1)
    with pytest.raises(ValueError, match="physics 'gymnasium': compare one of"):
        physics_fidelity.policy_returns("unused", "gymnasium", episodes=1)
