"""HumanoidStandup-v5 (gymnasium/envs/mujoco/humanoidstandup_v5.py) on MJX.

Obs (348): as Humanoid-v5. Reward: torso height / timestep - 0.1 ||ctrl||^2
- min(5e-7 ||cfrc_ext||^2, 10) + 1; never terminates. Reset: U(+-0.01) on qpos and qvel.
Same PGS -> Newton deviation as Humanoid (see envs/tasks/humanoid.py).
"""
from __future__ import annotations

import jax.numpy as jnp

from envs.base import control_cost
from envs.physics import PhysicsOptions
from envs.tasks.humanoid import HumanoidBase


class HumanoidStandup(HumanoidBase):
    """Stand up from lying on the ground."""

    xml_file = "humanoidstandup.xml"

    def __init__(self, physics: str | PhysicsOptions = "gymnasium", uph_cost_weight: float = 1.0,
                 ctrl_cost_weight: float = 0.1, impact_cost_weight: float = 5e-7,
                 impact_cost_range: tuple[float, float] = (-float("inf"), 10.0), **options):
        super().__init__(physics, **options)
        self.uph_cost_weight = uph_cost_weight
        self.ctrl_cost_weight = ctrl_cost_weight
        self.impact_cost_weight = impact_cost_weight
        self.impact_cost_range = impact_cost_range

    def transition(self, before, after, ctrl):
        # Gymnasium 1.4 stores uph_cost_weight but never applies it; we do (default 1: same).
        uph_cost = self.uph_cost_weight * after.qpos[2] / float(self.mj_model.opt.timestep)
        quad_ctrl_cost = control_cost(self.ctrl_cost_weight, ctrl)
        quad_impact_cost = self.impact_cost(self.impact_cost_weight, self.impact_cost_range, after)
        metrics = {
            "x_position": after.qpos[0], "y_position": after.qpos[1],
            "z_distance_from_origin": after.qpos[2] - self.init_qpos[2],
            "reward_linup": uph_cost, "reward_quadctrl": -quad_ctrl_cost, "reward_impact": -quad_impact_cost,
        }
        return uph_cost - quad_ctrl_cost - quad_impact_cost + 1.0, jnp.zeros((), bool), metrics
