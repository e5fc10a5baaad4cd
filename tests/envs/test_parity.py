"""Parity with Gymnasium v5 (real MuJoCo, float64): for every task, 24 states reached by random
actions in Gymnasium are put into both simulators, the same action is applied, and
observation, reward, termination and every scalar info entry must agree.

Tolerance is |ours - gymnasium| <= atol + rtol * |gymnasium| elementwise (we simulate in
float32). Contact-free tasks agree to ~1e-6; contact forces (cfrc_ext in the humanoids'
observations) are the loosest. Ours runs as ONE vmapped, jitted call per task (one compile).
See envs/parity.py for how the states are set up fairly.
"""
from __future__ import annotations

import numpy as np
import pytest

import envs
from envs import parity

N_STATES = 24

# name -> (rtol, atol), measured worst cases in comments (abs obs error).
TOLERANCES = {
    "inverted_pendulum": (1e-5, 1e-5),  # 3e-7
    "inverted_double_pendulum": (1e-5, 1e-5),  # 2e-6
    "reacher": (1e-5, 2e-5),  # 4e-6
    "swimmer": (1e-5, 2e-5),  # 3e-6
    "halfcheetah": (5e-4, 5e-4),  # 1.6e-4 on a joint velocity ~ 1
    "hopper": (1e-4, 1e-4),  # 4e-6
    "walker2d": (5e-4, 5e-4),  # 7e-5
    "pusher": (1e-4, 1e-4),  # 4e-6
    "ant": (1e-3, 2e-3),  # 5e-4 (after the plane-capsule frame fix in envs/mjx_patches.py)
    "humanoid": (1e-3, 1e-3),  # 6e-3 abs on cfrc_ext entries of magnitude ~ 10^2 (rel 7e-5)
    "humanoidstandup": (5e-3, 2e-2),  # 1.7e-2 abs (rel 3e-3) on cfrc_ext entries of bodies lying in contact
}


def assert_close(name: str, what: str, ours, theirs, rtol: float, atol: float):
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    err = np.abs(ours - theirs)
    bad = err > atol + rtol * np.abs(theirs)
    assert not bad.any(), (
        f"{name} {what}: {bad.sum()} entries beyond rtol={rtol}, atol={atol}; worst abs error "
        f"{err.max():.3g} at {np.unravel_index(err.argmax(), err.shape)}"
    )


@pytest.mark.parametrize("name", list(TOLERANCES))
def test_step_matches_gymnasium_v5(name):
    rtol, atol = TOLERANCES[name]
    env = envs.make(name)
    transitions = parity.collect(name, env, n_states=N_STATES)
    assert len({row.tobytes() for row in transitions.qpos}) == N_STATES, "states must be distinct"

    ours = parity.step_ours(env, transitions)

    np.testing.assert_array_equal(ours.done > 0, transitions.terminated, err_msg=f"{name}: terminated differs")
    assert ours.done.dtype == np.float32
    assert_close(name, "observation", ours.obs, transitions.obs, rtol, atol)
    assert_close(name, "reward", ours.reward, transitions.reward, rtol, atol)
    assert set(ours.metrics) == set(transitions.info), f"{name}: metrics keys differ from Gymnasium's scalar info"
    for key, value in transitions.info.items():
        assert_close(name, f"info[{key!r}]", ours.metrics[key], value, rtol, atol)
