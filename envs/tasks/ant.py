"""Ant-v5 (gymnasium/envs/mujoco/ant_v5.py) on MJX.

Obs (105): qpos without x, y; qvel; clip(cfrc_ext[1:], -1, 1) (external contact wrenches
of the 13 bodies, from `rne_postconstraint`). Reward: torso x velocity + 1 (healthy)
- 0.5 ||action||^2 - 5e-4 ||clip(cfrc_ext, -1, 1)||^2. Terminates when the state is
non-finite or the torso height leaves [0.2, 1.0]. Reset: U(+-0.1) qpos, N(0, 0.1^2) qvel.
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from envs.base import MjxTask, control_cost
from envs.physics import GPU_PHYSICS, PhysicsOptions


class Ant(MjxTask):
    """Frame skip 5 at dt 0.01, RK4, Newton (100 it) as in the XML."""

    xml_file = "ant.xml"
    frame_skip = 5
    qvel_noise = "normal"
    gymnasium_physics = PhysicsOptions("newton", iterations=100, ls_iterations=50)
    # Keeps the XML's RK4: at Ant's 0.01 s timestep Euler moved one step 15 % (median) away
    # from Gymnasium, Newton 4/8 with RK4 3e-6 (docs/physics.md).
    gpu_physics = dataclasses.replace(GPU_PHYSICS, integrator=None)
    needs_cfrc_ext = True

    def __init__(self, physics: str | PhysicsOptions = "gymnasium", forward_reward_weight: float = 1.0,
                 ctrl_cost_weight: float = 0.5, contact_cost_weight: float = 5e-4, healthy_reward: float = 1.0,
                 main_body: int = 1, terminate_when_unhealthy: bool = True,
                 healthy_z_range: tuple[float, float] = (0.2, 1.0),
                 contact_force_range: tuple[float, float] = (-1.0, 1.0), reset_noise_scale: float = 0.1,
                 exclude_current_positions_from_observation: bool = True,
                 include_cfrc_ext_in_observation: bool = True):
        super().__init__(physics, reset_noise_scale)
        self.forward_reward_weight = forward_reward_weight
        self.ctrl_cost_weight = ctrl_cost_weight
        self.contact_cost_weight = contact_cost_weight
        self.healthy_reward = healthy_reward
        self.main_body = main_body
        self.terminate_when_unhealthy = terminate_when_unhealthy
        self.healthy_z_range = healthy_z_range
        self.contact_force_range = contact_force_range
        self.exclude_current_positions = exclude_current_positions_from_observation
        self.include_cfrc_ext = include_cfrc_ext_in_observation

    def contact_forces(self, data):
        return jnp.clip(data._impl.cfrc_ext, *self.contact_force_range)

    def observation(self, data):
        position = data.qpos[2:] if self.exclude_current_positions else data.qpos
        parts = [position, data.qvel]
        if self.include_cfrc_ext:
            parts.append(self.contact_forces(data)[1:].ravel())
        return jnp.concatenate(parts)

    def transition(self, before, after, ctrl):
        xy_velocity = (after.xpos[self.main_body, :2] - before.xpos[self.main_body, :2]) / self.dt
        state = jnp.concatenate([after.qpos, after.qvel])
        min_z, max_z = self.healthy_z_range
        healthy = jnp.all(jnp.isfinite(state)) & (min_z <= after.qpos[2]) & (after.qpos[2] <= max_z)
        forward_reward = self.forward_reward_weight * xy_velocity[0]
        healthy_reward = self.healthy_reward * healthy.astype(jnp.float32)
        ctrl_cost = control_cost(self.ctrl_cost_weight, ctrl)
        contact_cost = self.contact_cost_weight * jnp.sum(jnp.square(self.contact_forces(after)))
        terminated = ~healthy & self.terminate_when_unhealthy
        metrics = {
            "x_position": after.qpos[0], "y_position": after.qpos[1],
            "distance_from_origin": jnp.linalg.norm(after.qpos[:2]),
            "x_velocity": xy_velocity[0], "y_velocity": xy_velocity[1],
            "reward_forward": forward_reward, "reward_ctrl": -ctrl_cost,
            "reward_contact": -contact_cost, "reward_survive": healthy_reward,
        }
        return forward_reward + healthy_reward - ctrl_cost - contact_cost, terminated, metrics
