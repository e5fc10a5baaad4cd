"""Swimmer-v5 (gymnasium/envs/mujoco/swimmer_v5.py) on MJX.

Obs (8): qpos without x, y; qvel. Reward: x velocity - 1e-4 ||action||^2. Never terminates.
Reset: U(+-0.1) on qpos and qvel.
"""
from __future__ import annotations

import jax.numpy as jnp

from envs.base import MjxTask, control_cost
from envs.physics import PhysicsOptions


class Swimmer(MjxTask):
    """Frame skip 4 at dt 0.01, RK4, Newton (100 it) as in the XML."""

    xml_file = "swimmer.xml"
    frame_skip = 4
    gymnasium_physics = PhysicsOptions("newton", iterations=100, ls_iterations=50)

    def __init__(self, physics: str | PhysicsOptions = "gymnasium", forward_reward_weight: float = 1.0,
                 ctrl_cost_weight: float = 1e-4, reset_noise_scale: float = 0.1,
                 exclude_current_positions_from_observation: bool = True):
        super().__init__(physics, reset_noise_scale)
        self.forward_reward_weight = forward_reward_weight
        self.ctrl_cost_weight = ctrl_cost_weight
        self.exclude_current_positions = exclude_current_positions_from_observation

    def observation(self, data):
        position = data.qpos[2:] if self.exclude_current_positions else data.qpos
        return jnp.concatenate([position, data.qvel])

    def transition(self, before, after, ctrl):
        xy_velocity = (after.qpos[:2] - before.qpos[:2]) / self.dt
        forward_reward = self.forward_reward_weight * xy_velocity[0]
        ctrl_cost = control_cost(self.ctrl_cost_weight, ctrl)
        metrics = {
            "x_position": after.qpos[0], "y_position": after.qpos[1],
            "distance_from_origin": jnp.linalg.norm(after.qpos[:2]),
            "x_velocity": xy_velocity[0], "y_velocity": xy_velocity[1],
            "reward_forward": forward_reward, "reward_ctrl": -ctrl_cost,
        }
        return forward_reward - ctrl_cost, jnp.zeros((), bool), metrics
