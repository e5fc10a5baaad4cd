"""Walker2d-v5 (gymnasium/envs/mujoco/walker2d_v5.py, model walker2d_v5.xml) on MJX.

Obs (17): qpos without x; clip(qvel, +-10). Reward: x velocity + 1 (healthy) - 1e-3
||action||^2. Terminates when height leaves (0.8, 2.0) or torso angle leaves (-1, 1).
Reset: U(+-0.005) on qpos and qvel.
"""
from __future__ import annotations


from envs.physics import PhysicsOptions
from envs.tasks.hopper import Hopper, _inside


class Walker2d(Hopper):
    """Hopper's task with Walker2d's model and health rule (no state-range check).
    Frame skip 4 at dt 0.002, RK4, Newton (100 it) as in the XML."""

    xml_file = "walker2d_v5.xml"
    frame_skip = 4
    gymnasium_physics = PhysicsOptions("newton", iterations=100, ls_iterations=50)

    def __init__(self, physics: str | PhysicsOptions = "gymnasium", forward_reward_weight: float = 1.0,
                 ctrl_cost_weight: float = 1e-3, healthy_reward: float = 1.0, terminate_when_unhealthy: bool = True,
                 healthy_z_range: tuple[float, float] = (0.8, 2.0),
                 healthy_angle_range: tuple[float, float] = (-1.0, 1.0), reset_noise_scale: float = 5e-3,
                 exclude_current_positions_from_observation: bool = True):
        super().__init__(physics, forward_reward_weight=forward_reward_weight, ctrl_cost_weight=ctrl_cost_weight,
                         healthy_reward=healthy_reward, terminate_when_unhealthy=terminate_when_unhealthy,
                         healthy_z_range=healthy_z_range, healthy_angle_range=healthy_angle_range,
                         reset_noise_scale=reset_noise_scale,
                         exclude_current_positions_from_observation=exclude_current_positions_from_observation)

    def is_healthy(self, data):
        return _inside(data.qpos[1], self.healthy_z_range) & _inside(data.qpos[2], self.healthy_angle_range)
