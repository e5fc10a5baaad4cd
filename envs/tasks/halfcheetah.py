"""HalfCheetah-v5 (gymnasium/envs/mujoco/half_cheetah_v5.py) on MJX.

Obs (17): qpos without x; qvel. Reward: x velocity - 0.1 ||action||^2. Never terminates.
Reset: U(+-0.1) qpos, N(0, 0.1^2) qvel.
"""
from __future__ import annotations

import jax.numpy as jnp

from envs.base import MjxTask, control_cost
from envs.physics import PhysicsOptions


class HalfCheetah(MjxTask):
    """Frame skip 5 at dt 0.01, Euler, Newton (100 it) as in the XML."""

    xml_file = "half_cheetah.xml"
    frame_skip = 5
    qvel_noise = "normal"
    gymnasium_physics = PhysicsOptions("newton", iterations=100, ls_iterations=50)

    def __init__(self, physics: str | PhysicsOptions = "gymnasium", forward_reward_weight: float = 1.0,
                 ctrl_cost_weight: float = 0.1, reset_noise_scale: float = 0.1,
                 exclude_current_positions_from_observation: bool = True):
        super().__init__(physics, reset_noise_scale)
        self.forward_reward_weight = forward_reward_weight
        self.ctrl_cost_weight = ctrl_cost_weight
        self.exclude_current_positions = exclude_current_positions_from_observation

    def observation(self, data):
        position = data.qpos[1:] if self.exclude_current_positions else data.qpos
        return jnp.concatenate([position, data.qvel])

    def transition(self, before, after, ctrl):
        x_velocity = (after.qpos[0] - before.qpos[0]) / self.dt
        forward_reward = self.forward_reward_weight * x_velocity
        ctrl_cost = control_cost(self.ctrl_cost_weight, ctrl)
        metrics = {"x_position": after.qpos[0], "x_velocity": x_velocity,
                   "reward_forward": forward_reward, "reward_ctrl": -ctrl_cost}
        return forward_reward - ctrl_cost, jnp.zeros((), bool), metrics
