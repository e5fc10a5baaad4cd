"""Hopper-v5 (gymnasium/envs/mujoco/hopper_v5.py) on MJX.

Obs (11): qpos without x; clip(qvel, +-10). Reward: x velocity + 1 (healthy) - 1e-3
||action||^2. Terminates when unhealthy: any of state_vector()[2:] outside (-100, 100),
height outside (0.7, inf) or torso angle outside (-0.2, 0.2). Reset: U(+-0.005) on qpos, qvel.
"""
from __future__ import annotations

import jax.numpy as jnp

from envs.base import MjxTask, control_cost
from envs.physics import PhysicsOptions


def _inside(x, bounds):
    """Strictly inside the open interval `bounds` (Gymnasium's `min < x < max`)."""
    return (bounds[0] < x) & (x < bounds[1])


class Hopper(MjxTask):
    """Frame skip 4 at dt 0.002, RK4, Newton (100 it) as in the XML."""

    xml_file = "hopper.xml"
    frame_skip = 4
    gymnasium_physics = PhysicsOptions("newton", iterations=100, ls_iterations=50)

    def __init__(self, physics: str | PhysicsOptions = "gymnasium", forward_reward_weight: float = 1.0,
                 ctrl_cost_weight: float = 1e-3, healthy_reward: float = 1.0, terminate_when_unhealthy: bool = True,
                 healthy_state_range: tuple[float, float] = (-100.0, 100.0),
                 healthy_z_range: tuple[float, float] = (0.7, float("inf")),
                 healthy_angle_range: tuple[float, float] = (-0.2, 0.2), reset_noise_scale: float = 5e-3,
                 exclude_current_positions_from_observation: bool = True):
        super().__init__(physics, reset_noise_scale)
        self.forward_reward_weight = forward_reward_weight
        self.ctrl_cost_weight = ctrl_cost_weight
        self.healthy_reward = healthy_reward
        self.terminate_when_unhealthy = terminate_when_unhealthy
        self.healthy_state_range = healthy_state_range
        self.healthy_z_range = healthy_z_range
        self.healthy_angle_range = healthy_angle_range
        self.exclude_current_positions = exclude_current_positions_from_observation

    def observation(self, data):
        position = data.qpos[1:] if self.exclude_current_positions else data.qpos
        return jnp.concatenate([position, jnp.clip(data.qvel, -10, 10)])

    def is_healthy(self, data):
        state = jnp.concatenate([data.qpos, data.qvel])[2:]
        return (jnp.all(_inside(state, self.healthy_state_range))
                & _inside(data.qpos[1], self.healthy_z_range)
                & _inside(data.qpos[2], self.healthy_angle_range))

    def transition(self, before, after, ctrl):
        x_velocity = (after.qpos[0] - before.qpos[0]) / self.dt
        healthy = self.is_healthy(after)
        forward_reward = self.forward_reward_weight * x_velocity
        healthy_reward = self.healthy_reward * healthy.astype(jnp.float32)
        ctrl_cost = control_cost(self.ctrl_cost_weight, ctrl)
        terminated = ~healthy & self.terminate_when_unhealthy
        metrics = {"x_position": after.qpos[0], "z_distance_from_origin": after.qpos[1] - self.init_qpos[1],
                   "x_velocity": x_velocity, "reward_forward": forward_reward, "reward_ctrl": -ctrl_cost,
                   "reward_survive": healthy_reward}
        return forward_reward + healthy_reward - ctrl_cost, terminated, metrics
