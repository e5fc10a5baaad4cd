"""InvertedPendulum-v5 (gymnasium/envs/mujoco/inverted_pendulum_v5.py) on MJX.

Obs: [qpos, qvel] (4). Reward 1 per step while the pole is up; terminates when |hinge
angle| > 0.2 or the observation is non-finite. Reset: U(+-0.01) on qpos and qvel.
"""
from __future__ import annotations

import jax.numpy as jnp

from envs.base import MjxTask
from envs.physics import PhysicsOptions


class InvertedPendulum(MjxTask):
    """Cart-pole balancing: frame skip 2 at dt 0.02, RK4, Newton (100 it) as in the XML."""

    xml_file = "inverted_pendulum.xml"
    frame_skip = 2
    gymnasium_physics = PhysicsOptions("newton", iterations=100, ls_iterations=50)

    def __init__(self, physics: str | PhysicsOptions = "gymnasium", reset_noise_scale: float = 0.01):
        super().__init__(physics, reset_noise_scale)

    def observation(self, data):
        return jnp.concatenate([data.qpos, data.qvel])

    def transition(self, before, after, ctrl):
        obs = self.observation(after)
        terminated = ~jnp.all(jnp.isfinite(obs)) | (jnp.abs(obs[1]) > 0.2)
        reward = 1.0 - terminated.astype(jnp.float32)
        return reward, terminated, {"reward_survive": reward}
