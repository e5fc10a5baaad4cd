"""Reacher-v5 (gymnasium/envs/mujoco/reacher_v5.py) on MJX.

Obs (10): cos/sin of the two arm angles, target (x, y), arm velocities, fingertip - target
(x, y). Reward: -||fingertip - target|| - ||action||^2. Never terminates. Reset: arm angles
U(+-0.1), target uniform in the open disk of radius 0.2, arm velocities U(+-0.005).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from envs.base import MjxTask, body_id, rejection_sample, uniform_noise
from envs.physics import PhysicsOptions


class Reacher(MjxTask):
    """Frame skip 2 at dt 0.01, RK4, Newton (100 it) as in the XML."""

    xml_file = "reacher.xml"
    frame_skip = 2
    gymnasium_physics = PhysicsOptions("newton", iterations=100, ls_iterations=50)

    def __init__(self, physics: str | PhysicsOptions = "gymnasium", reward_dist_weight: float = 1.0,
                 reward_control_weight: float = 1.0):
        super().__init__(physics)
        self.reward_dist_weight = reward_dist_weight
        self.reward_control_weight = reward_control_weight
        self._fingertip = body_id(self.mj_model, "fingertip")
        self._target = body_id(self.mj_model, "target")

    def reset_qpos_qvel(self, rng):
        k1, k2, k3 = jax.random.split(rng, 3)
        qpos = self.init_qpos + uniform_noise(k1, self.init_qpos.shape, 0.1)
        goal = rejection_sample(k2, lambda k: uniform_noise(k, (2,), 0.2), lambda g: jnp.linalg.norm(g) < 0.2)
        qpos = qpos.at[-2:].set(goal)
        qvel = (self.init_qvel + uniform_noise(k3, self.init_qvel.shape, 0.005)).at[-2:].set(0.0)
        return qpos, qvel

    def _fingertip_to_target(self, data):
        return data.xpos[self._fingertip] - data.xpos[self._target]

    def observation(self, data):
        theta = data.qpos[:2]
        return jnp.concatenate([
            jnp.cos(theta), jnp.sin(theta), data.qpos[2:], data.qvel[:2], self._fingertip_to_target(data)[:2],
        ])

    def transition(self, before, after, ctrl):
        reward_dist = -jnp.linalg.norm(self._fingertip_to_target(after)) * self.reward_dist_weight
        reward_ctrl = -jnp.sum(jnp.square(ctrl)) * self.reward_control_weight
        metrics = {"reward_dist": reward_dist, "reward_ctrl": reward_ctrl}
        return reward_dist + reward_ctrl, jnp.zeros((), bool), metrics
