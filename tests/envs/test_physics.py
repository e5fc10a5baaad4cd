"""Physics presets (envs/physics.py): they reach the MuJoCo and MJX models, are validated, and the
`gpu` preset stays close to Gymnasium."""
from __future__ import annotations

import mujoco
import pytest
from mujoco.mjx._src.collision_driver import make_condim
from mujoco.mjx._src.types import IntegratorType

import envs
from benchmarks import physics_fidelity
from envs import parity, physics
from envs.physics import PhysicsOptions


@pytest.mark.parametrize("name", list(parity.GYMNASIUM_IDS))
def test_gpu_preset_reaches_the_mjx_model(name):
    """`physics="gpu"` builds every task, and its options are in both the MuJoCo and MJX model."""
    env = envs.make(name, physics="gpu")
    options = env.physics
    assert options == type(env).gpu_physics
    faithful = envs.make(name)
    integrator = IntegratorType.EULER if options.integrator == "euler" else faithful.mj_model.opt.integrator
    assert options.integrator in ("euler", None)
    for model in (env.mj_model, env.sys):
        assert model.opt.integrator == integrator
        assert (model.opt.iterations, model.opt.ls_iterations) == (options.iterations, options.ls_iterations)
    assert faithful.dt == env.dt  # timestep and frame skip stay the task's
    contacts, faithful_contacts = len(make_condim(env.sys)), len(make_condim(faithful.sys))
    if options.self_collisions:
        assert contacts == faithful_contacts
    else:
        assert contacts < faithful_contacts


def test_humanoid_gpu_preset_keeps_only_floor_contacts():
    env = envs.make("humanoid", physics="gpu")
    world_geoms = {i for i in range(env.mj_model.ngeom) if env.mj_model.geom_bodyid[i] == 0}
    data = mujoco.MjData(env.mj_model)
    data.qpos[2] = 0.2  # torso sunk to the floor: limbs overlap the floor and each other
    mujoco.mj_forward(env.mj_model, data)
    assert data.ncon > 4
    assert all({int(c.geom1), int(c.geom2)} & world_geoms for c in data.contact[:data.ncon])


def test_physics_knobs_are_applied_and_validated():
    model = envs.make("hopper").mj_model
    PhysicsOptions(integrator="implicitfast").apply(model)
    assert model.opt.integrator == mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    capped = PhysicsOptions(max_contact_points=4).load("humanoid.xml")
    assert len(make_condim(capped)) == 8  # 4 per contact dimension (condim 1 and 3)
    with pytest.raises(ValueError, match="integrator"):
        PhysicsOptions(integrator="rk45")
    wall_hits_through_arm_conaffinity = mujoco.MjModel.from_xml_string(
        '<mujoco><worldbody><geom type="plane" size="1 1 1" contype="1" conaffinity="0"/>'
        '<body><freejoint/><geom size=".1" contype="0" conaffinity="1"/></body></worldbody></mujoco>')
    with pytest.raises(ValueError, match="world"):
        physics.drop_self_collisions(wall_hits_through_arm_conaffinity)
    with pytest.raises(ValueError, match="fast.*gpu.*gymnasium"):
        envs.make("hopper", physics="turbo")


def test_hopper_gpu_step_stays_close_to_gymnasium():
    """One `gpu` step (Euler, Newton 4/8) from Gymnasium's states vs Gymnasium's RK4 step.
    Measured on 64 states (docs/physics.md): relative obs error median 0.18 %, max 26 % (a
    near-zero velocity at an impact); reward error max 2.8 % of the mean |reward|. The first
    16 of those states are used here; bounds about 2-5x the measurement."""
    fid = physics_fidelity.fidelity("hopper", "gpu", n_states=16)
    assert fid["termination_agrees"] == 1.0
    assert fid["obs_err_median"] < 0.01
    assert fid["obs_err_max"] < 0.5
    assert fid["reward_err_max"] < 0.1
