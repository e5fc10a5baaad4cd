"""Pusher-v5 (gymnasium/envs/mujoco/pusher_v5.py, model pusher_v5.xml) on MJX.

Obs (23): arm qpos[:7], qvel[:7], positions of the fingertip, the object and the goal.
Reward: -0.5 ||object - fingertip|| - ||object - goal|| - 0.1 ||action||^2; never
terminates. Reset: arm at qpos0, object uniform in [-0.3, 0] x [-0.2, 0.2] at least 0.17
from the goal (rejection sampled), goal at the origin, arm velocities U(+-0.005).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from envs.base import MjxTask, body_id, rejection_sample, uniform_noise
from envs.physics import PhysicsOptions


class Pusher(MjxTask):
    """Frame skip 5 at dt 0.01, Euler, Newton (20 it) as in the XML."""

    xml_file = "pusher_v5.xml"
    frame_skip = 5
    gymnasium_physics = PhysicsOptions("newton", iterations=20, ls_iterations=50)

    def __init__(self, physics: str | PhysicsOptions = "gymnasium", reward_near_weight: float = 0.5,
                 reward_dist_weight: float = 1.0, reward_control_weight: float = 0.1):
        super().__init__(physics)
        self.reward_near_weight = reward_near_weight
        self.reward_dist_weight = reward_dist_weight
        self.reward_control_weight = reward_control_weight
        self._tips_arm = body_id(self.mj_model, "tips_arm")
        self._object = body_id(self.mj_model, "object")
        self._goal = body_id(self.mj_model, "goal")

    def reset_qpos_qvel(self, rng):
        k1, k2 = jax.random.split(rng)
        goal = jnp.zeros(2)

        def sample(key):
            kx, ky = jax.random.split(key)
            return jnp.concatenate([jax.random.uniform(kx, (1,), minval=-0.3, maxval=0.0),
                                    jax.random.uniform(ky, (1,), minval=-0.2, maxval=0.2)])

        cylinder = rejection_sample(k1, sample, lambda c: jnp.linalg.norm(c - goal) > 0.17)
        qpos = self.init_qpos.at[-4:-2].set(cylinder).at[-2:].set(goal)
        qvel = (self.init_qvel + uniform_noise(k2, self.init_qvel.shape, 0.005)).at[-4:].set(0.0)
        return qpos, qvel

    def observation(self, data):
        return jnp.concatenate([data.qpos[:7], data.qvel[:7], data.xpos[self._tips_arm],
                                data.xpos[self._object], data.xpos[self._goal]])

    def transition(self, before, after, ctrl):
        obj = after.xpos[self._object]
        reward_near = -jnp.linalg.norm(obj - after.xpos[self._tips_arm]) * self.reward_near_weight
        reward_dist = -jnp.linalg.norm(obj - after.xpos[self._goal]) * self.reward_dist_weight
        reward_ctrl = -jnp.sum(jnp.square(ctrl)) * self.reward_control_weight
        metrics = {"reward_dist": reward_dist, "reward_ctrl": reward_ctrl, "reward_near": reward_near}
        return reward_dist + reward_ctrl + reward_near, jnp.zeros((), bool), metrics
