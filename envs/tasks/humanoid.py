"""Humanoid-v5 (gymnasium/envs/mujoco/humanoid_v5.py) on MJX.

Obs (348): qpos without x, y (22); qvel (23); cinert[1:] (130); cvel[1:] (78);
qfrc_actuator[6:] (17); cfrc_ext[1:] (78, from `rne_postconstraint`). Reward: 1.25 x
velocity of the centre of mass + 5 (healthy) - 0.1 ||ctrl||^2 - min(5e-7 ||cfrc_ext||^2, 10).
Terminates when the torso height leaves (1, 2). Reset: U(+-0.01) on qpos and qvel.

Deviation: Gymnasium's XML uses the PGS solver, which MJX lacks; our "gymnasium" preset uses
Newton with the same 50 iterations (parity tests give the reference env these options).
Gymnasium's array-valued info (tendon_length/velocity) is not in `metrics` (scalars only).
"""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from envs.base import MjxTask, control_cost
from envs.physics import GPU_PHYSICS, PhysicsOptions


def humanoid_observation(data, exclude_current_positions: bool = True, cinert: bool = True, cvel: bool = True,
                         qfrc_actuator: bool = True, cfrc_ext: bool = True):
    """Gymnasium's Humanoid/HumanoidStandup v5 observation of `data`."""
    parts = [data.qpos[2:] if exclude_current_positions else data.qpos, data.qvel]
    if cinert:
        parts.append(data._impl.cinert[1:].ravel())
    if cvel:
        parts.append(data.cvel[1:].ravel())
    if qfrc_actuator:
        parts.append(data.qfrc_actuator[6:])
    if cfrc_ext:
        parts.append(data._impl.cfrc_ext[1:].ravel())
    return jnp.concatenate(parts)


class HumanoidBase(MjxTask):
    """Model, reset noise and observation options shared by Humanoid and HumanoidStandup.
    Frame skip 5 at dt 0.003, RK4; PGS (50 it) in the XML -> Newton (50 it) here."""

    frame_skip = 5
    gymnasium_physics = PhysicsOptions("newton", iterations=50, ls_iterations=50)
    # 138 candidate contacts in MJX, 109 of them limb-limb; without those, 29 (all with the floor).
    gpu_physics = dataclasses.replace(GPU_PHYSICS, self_collisions=False)
    needs_cfrc_ext = True

    def __init__(self, physics: str | PhysicsOptions = "gymnasium", reset_noise_scale: float = 0.01,
                 exclude_current_positions_from_observation: bool = True,
                 include_cinert_in_observation: bool = True, include_cvel_in_observation: bool = True,
                 include_qfrc_actuator_in_observation: bool = True, include_cfrc_ext_in_observation: bool = True):
        super().__init__(physics, reset_noise_scale)
        self._obs_options = dict(
            exclude_current_positions=exclude_current_positions_from_observation,
            cinert=include_cinert_in_observation, cvel=include_cvel_in_observation,
            qfrc_actuator=include_qfrc_actuator_in_observation, cfrc_ext=include_cfrc_ext_in_observation)
        self._body_mass = jnp.asarray(self.mj_model.body_mass, jnp.float32)

    def observation(self, data):
        return humanoid_observation(data, **self._obs_options)

    def mass_center(self, data):
        """x, y of the centre of mass (Gymnasium's `mass_center`)."""
        return (self._body_mass @ data.xipos / jnp.sum(self._body_mass))[:2]

    def impact_cost(self, weight: float, cost_range: tuple[float, float], data):
        """clip(weight * ||cfrc_ext||^2, *cost_range)."""
        return jnp.clip(weight * jnp.sum(jnp.square(data._impl.cfrc_ext)), *cost_range)


class Humanoid(HumanoidBase):
    """Walk forward without falling."""

    xml_file = "humanoid.xml"

    def __init__(self, physics: str | PhysicsOptions = "gymnasium", forward_reward_weight: float = 1.25,
                 ctrl_cost_weight: float = 0.1, contact_cost_weight: float = 5e-7,
                 contact_cost_range: tuple[float, float] = (-float("inf"), 10.0), healthy_reward: float = 5.0,
                 terminate_when_unhealthy: bool = True, healthy_z_range: tuple[float, float] = (1.0, 2.0),
                 **options):
        super().__init__(physics, **options)
        self.forward_reward_weight = forward_reward_weight
        self.ctrl_cost_weight = ctrl_cost_weight
        self.contact_cost_weight = contact_cost_weight
        self.contact_cost_range = contact_cost_range
        self.healthy_reward = healthy_reward
        self.terminate_when_unhealthy = terminate_when_unhealthy
        self.healthy_z_range = healthy_z_range

    def transition(self, before, after, ctrl):
        xy_velocity = (self.mass_center(after) - self.mass_center(before)) / self.dt
        min_z, max_z = self.healthy_z_range
        healthy = (min_z < after.qpos[2]) & (after.qpos[2] < max_z)
        forward_reward = self.forward_reward_weight * xy_velocity[0]
        healthy_reward = self.healthy_reward * healthy.astype(jnp.float32)
        ctrl_cost = control_cost(self.ctrl_cost_weight, ctrl)
        contact_cost = self.impact_cost(self.contact_cost_weight, self.contact_cost_range, after)
        terminated = ~healthy & self.terminate_when_unhealthy
        metrics = {
            "x_position": after.qpos[0], "y_position": after.qpos[1],
            "distance_from_origin": jnp.linalg.norm(after.qpos[:2]),
            "x_velocity": xy_velocity[0], "y_velocity": xy_velocity[1],
            "reward_survive": healthy_reward, "reward_forward": forward_reward,
            "reward_ctrl": -ctrl_cost, "reward_contact": -contact_cost,
        }
        return forward_reward + healthy_reward - ctrl_cost - contact_cost, terminated, metrics
