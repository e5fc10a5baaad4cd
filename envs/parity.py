"""Helpers that step Gymnasium's real-MuJoCo v5 tasks and ours from the same states.

Fairness: the Gymnasium env gets OUR `PhysicsOptions` written into its model (only differs
for Humanoid*, where MJX has no PGS). Each compared state is put into both simulators the
same way: Gymnasium's `set_state` (qpos, qvel, then `mj_forward`), and for ours qpos, qvel
and kinematics (all a step reads from the prior Data, see `step_ours`), both seeded with
the same `qacc_warmstart`, so body positions read before a step and the solver's warm start
agree.
"""
from __future__ import annotations

import dataclasses

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
from brax.envs.base import State
from mujoco import mjx

import envs

GYMNASIUM_IDS = {
    "inverted_pendulum": "InvertedPendulum-v5",
    "inverted_double_pendulum": "InvertedDoublePendulum-v5",
    "reacher": "Reacher-v5",
    "swimmer": "Swimmer-v5",
    "halfcheetah": "HalfCheetah-v5",
    "hopper": "Hopper-v5",
    "walker2d": "Walker2d-v5",
    "pusher": "Pusher-v5",
    "ant": "Ant-v5",
    "humanoid": "Humanoid-v5",
    "humanoidstandup": "HumanoidStandup-v5",
}


@dataclasses.dataclass
class Transitions:
    """A batch of start states, actions in [-1, 1], and Gymnasium's step outputs."""

    qpos: np.ndarray
    qvel: np.ndarray
    qacc_warmstart: np.ndarray
    action: np.ndarray  # ours, in [-1, 1]
    obs: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    info: dict[str, np.ndarray]


def make_gymnasium(name: str, env) -> gymnasium.Env:
    """The unwrapped Gymnasium v5 env with our env's physics options applied to its model."""
    gym_env = gymnasium.make(GYMNASIUM_IDS[name]).unwrapped
    env.physics.apply(gym_env.model)
    return gym_env


def scale_action(gym_env, action: np.ndarray) -> np.ndarray:
    """[-1, 1] -> ctrlrange, in float64 (Gymnasium's side of `MjxTask.scale_action`)."""
    low, high = gym_env.model.actuator_ctrlrange.T
    return low + (action.astype(np.float64) + 1.0) * 0.5 * (high - low)


def collect(name: str, env, n_states: int = 24, seed: int = 0, max_gap: int = 6) -> Transitions:
    """Roll Gymnasium with random actions; every 1..max_gap steps, take the current state,
    re-set it through `set_state`, apply a fresh random action and record the outcome."""
    gym_env = make_gymnasium(name, env)
    rng = np.random.default_rng(seed)
    nu = gym_env.model.nu
    gym_env.reset(seed=seed)
    rows = []
    while len(rows) < n_states:
        for _ in range(rng.integers(1, max_gap + 1)):
            _, _, terminated, _, _ = gym_env.step(scale_action(gym_env, rng.uniform(-1, 1, nu)))
            if terminated:
                gym_env.reset(seed=int(rng.integers(1 << 30)))
        data = gym_env.data
        qpos, qvel, warm = data.qpos.copy(), data.qvel.copy(), data.qacc_warmstart.copy()
        action = rng.uniform(-1, 1, nu).astype(np.float32)
        gym_env.set_state(qpos, qvel)
        obs, reward, terminated, _, info = gym_env.step(scale_action(gym_env, action))
        scalars = {k: float(v) for k, v in info.items() if np.ndim(v) == 0}
        rows.append((qpos, qvel, warm, action, obs, reward, terminated, scalars))
        if terminated:
            gym_env.reset(seed=int(rng.integers(1 << 30)))
    cols = list(zip(*rows))
    info = {k: np.array([r[k] for r in cols[7]]) for k in cols[7][0]}
    return Transitions(*(np.array(c) for c in cols[:7]), info=info)


def step_ours(env, t: Transitions) -> State:
    """Our env stepped from all of `t`'s states in ONE vmapped, jitted call."""

    def one(qpos, qvel, warm, action):
        # A step recomputes everything from (qpos, qvel, warm start) in its first forward
        # pass; from the prior Data, tasks read only qpos and body positions (Ant: xpos,
        # Humanoid: xipos). Kinematics is enough for those and keeps a third full forward
        # pass out of the compiled program (compile time is this test's whole cost).
        # `state_from_qpos_qvel` (full forward) is what reset uses.
        data = mjx.make_data(env.sys).replace(qpos=qpos, qvel=qvel, qacc_warmstart=warm)
        data = mjx.com_pos(env.sys, mjx.kinematics(env.sys, data))
        zero = jnp.zeros((), jnp.float32)
        out = env.step(State(data, jnp.zeros(env.observation_size), zero, zero, {}, {}), action)
        return out.replace(pipeline_state=None)  # only what is compared leaves the jit

    return jax.device_get(jax.jit(jax.vmap(one))(t.qpos, t.qvel, t.qacc_warmstart, t.action))


def max_errors(name: str, env, t: Transitions, ours: State) -> dict[str, float]:
    """Largest absolute differences (obs, reward, each shared info/metrics key)."""
    errs = {
        "obs": float(np.max(np.abs(ours.obs - t.obs))),
        "reward": float(np.max(np.abs(ours.reward - t.reward))),
    }
    for k in t.info:
        if k in ours.metrics:
            errs[k] = float(np.max(np.abs(ours.metrics[k] - t.info[k])))
    return errs


if __name__ == "__main__":  # manual check: python -m envs.parity NAME...
    import sys
    import time

    for task in sys.argv[1:]:
        e = envs.make(task)
        tr = collect(task, e)
        t0 = time.time()
        o = step_ours(e, tr)
        print(task, f"{time.time() - t0:.1f}s", "term", tr.terminated.sum(), (o.done > 0).sum(),
              "match", np.array_equal(o.done > 0, tr.terminated))
        print("  ", max_errors(task, e, tr, o))
        scale = np.maximum(np.abs(tr.obs), 1.0)
        print("   obs rel err by index (top):", sorted(enumerate(np.max(np.abs(o.obs - tr.obs) / scale, 0)), key=lambda x: -x[1])[:5])
        print("   missing metrics:", set(tr.info) - set(o.metrics), "extra:", set(o.metrics) - set(tr.info))
