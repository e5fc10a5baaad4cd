"""InvertedDoublePendulum-v5 (gymnasium/envs/mujoco/inverted_double_pendulum_v5.py) on MJX.

Obs (9): cart x, sin/cos of the two hinge angles, clip(qvel, +-10), clip(qfrc_constraint[0],
+-10). Reward: 10 alive bonus - distance penalty (tip away from (0, 2)) - velocity penalty.
Terminates when the tip site's height y <= 1. Reset: U(+-0.1) qpos, N(0, 0.1^2) qvel.
"""
from __future__ import annotations

import jax.numpy as jnp

from envs.base import MjxTask
from envs.physics import PhysicsOptions


class InvertedDoublePendulum(MjxTask):
    """Frame skip 5 at dt 0.01, RK4, Newton (100 it) as in the XML."""

    xml_file = "inverted_double_pendulum.xml"
    frame_skip = 5
    qvel_noise = "normal"
    gymnasium_physics = PhysicsOptions("newton", iterations=100, ls_iterations=50)

    def __init__(self, physics: str | PhysicsOptions = "gymnasium", healthy_reward: float = 10.0,
                 reset_noise_scale: float = 0.1):
        super().__init__(physics, reset_noise_scale)
        self.healthy_reward = healthy_reward

    def observation(self, data):
        return jnp.concatenate([
            data.qpos[:1], jnp.sin(data.qpos[1:]), jnp.cos(data.qpos[1:]),
            jnp.clip(data.qvel, -10, 10), jnp.clip(data.qfrc_constraint, -10, 10)[:1],
        ])

    def transition(self, before, after, ctrl):
        x, _, y = after.site_xpos[0]
        terminated = y <= 1
        v1, v2 = after.qvel[1], after.qvel[2]
        dist_penalty = 0.01 * x**2 + (y - 2) ** 2
        vel_penalty = 1e-3 * v1**2 + 5e-3 * v2**2
        alive_bonus = self.healthy_reward * (1.0 - terminated.astype(jnp.float32))
        reward = alive_bonus - dist_penalty - vel_penalty
        metrics = {"reward_survive": alive_bonus, "distance_penalty": -dist_penalty, "velocity_penalty": -vel_penalty}
        return reward, terminated, metrics
