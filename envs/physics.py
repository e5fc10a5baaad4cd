"""Physics presets of the MJX tasks: `PhysicsOptions` (solver, iterations, integrator, self-collisions,
contact budget) applied to a gymnasium asset XML, and the presets every task starts from.

`physics="gymnasium"` (a task's default) uses each XML's settings (each task's
`gymnasium_physics`); `physics="fast"` uses Newton with 4 iterations / 8 line-search iterations
for throughput; `physics="gpu"` adds semi-implicit Euler and, where a model has them, drops
self-collisions (for MJX on accelerators; fidelity and speed measured in docs/physics.md); any
`PhysicsOptions` may be passed. Timestep and frame skip are part of the task and never change.
"""
from __future__ import annotations

import dataclasses
import os

import gymnasium
import mujoco
import numpy as np

GYMNASIUM_ASSETS = os.path.join(os.path.dirname(gymnasium.__file__), "envs", "mujoco", "assets")

_SOLVERS = {"newton": mujoco.mjtSolver.mjSOL_NEWTON, "cg": mujoco.mjtSolver.mjSOL_CG}
# The integrators mjx.step implements. RK4 costs four forward passes (and constraint solves)
# per physics step, the others one.
_INTEGRATORS = {"euler": mujoco.mjtIntegrator.mjINT_EULER, "rk4": mujoco.mjtIntegrator.mjINT_RK4,
                "implicitfast": mujoco.mjtIntegrator.mjINT_IMPLICITFAST}


@dataclasses.dataclass(frozen=True)
class PhysicsOptions:
    """Simulation settings that trade fidelity for speed; timestep and frame skip stay the task's.

    `iterations`/`ls_iterations` bound the solver's outer and line-search iterations (MJX stops
    earlier once `tolerance` is met, but under `vmap` every env pays for the slowest). MJX has
    no PGS solver, so "newton" or "cg" only. `integrator` None keeps the XML's. With
    `self_collisions=False` geoms of moving bodies collide only with the world's geoms (floor):
    MJX evaluates every candidate contact every step, so limb-limb pairs cost even when apart.
    `max_contact_points` (MJX only; MuJoCo ignores it) keeps per contact dimension only the
    deepest that many contacts, via mjx's `max_contact_points` model numeric.
    """

    solver: str = "newton"
    iterations: int = 100
    ls_iterations: int = 50
    tolerance: float = 1e-8
    integrator: str | None = None
    self_collisions: bool = True
    max_contact_points: int | None = None

    def __post_init__(self):
        if self.solver not in _SOLVERS:
            raise ValueError(f"PhysicsOptions.solver must be one of {sorted(_SOLVERS)}, got {self.solver!r}")
        if self.iterations < 1 or self.ls_iterations < 1:
            raise ValueError("PhysicsOptions.iterations and ls_iterations must be >= 1")
        if self.integrator is not None and self.integrator not in _INTEGRATORS:
            raise ValueError(f"PhysicsOptions.integrator must be None or one of {sorted(_INTEGRATORS)}, "
                             f"got {self.integrator!r}")
        if self.max_contact_points is not None and self.max_contact_points < 1:
            raise ValueError("PhysicsOptions.max_contact_points must be None or >= 1")

    def apply(self, mj_model: mujoco.MjModel) -> None:
        """Write these options into `mj_model` (in place); used for ours and for the reference
        Gymnasium env in parity tests, so both simulate the same model. `max_contact_points`
        needs a model numeric, which only `load` can add."""
        mj_model.opt.solver = _SOLVERS[self.solver]
        mj_model.opt.iterations = self.iterations
        mj_model.opt.ls_iterations = self.ls_iterations
        mj_model.opt.tolerance = self.tolerance
        if self.integrator is not None:
            mj_model.opt.integrator = _INTEGRATORS[self.integrator]
        if not self.self_collisions:
            drop_self_collisions(mj_model)

    def load(self, xml_file: str) -> mujoco.MjModel:
        """Compile a gymnasium asset XML with these options applied."""
        path = os.path.join(GYMNASIUM_ASSETS, xml_file)
        if self.max_contact_points is None:
            mj_model = mujoco.MjModel.from_xml_path(path)
        else:
            spec = mujoco.MjSpec.from_file(path)
            spec.add_numeric(name="max_contact_points", data=[self.max_contact_points])
            mj_model = spec.compile()
        self.apply(mj_model)
        return mj_model


def drop_self_collisions(mj_model: mujoco.MjModel) -> None:
    """Let geoms of moving bodies collide only with the world body's geoms (floor, walls), by
    clearing their `conaffinity` bits. Raises if the model's bits are such that this would
    also drop a body-world pair (then the model needs its own pruning)."""
    moving = mj_model.geom_bodyid != 0
    contype, conaffinity = mj_model.geom_contype, mj_model.geom_conaffinity
    world_contype, world_conaffinity = contype[~moving][None], conaffinity[~moving][None]
    before = ((contype[moving][:, None] & world_conaffinity) | (conaffinity[moving][:, None] & world_contype)) != 0
    after = (contype[moving][:, None] & world_conaffinity) != 0
    if np.any(before != after):
        raise ValueError("self_collisions=False would also remove contacts with the world in this model")
    mj_model.geom_conaffinity[moving] = 0


# Newton with few iterations: it converges in a handful on these small models; each task may
# override. Integrator, timestep and contacts as in the XML.
FAST_PHYSICS = PhysicsOptions(solver="newton", iterations=4, ls_iterations=8)
# For MJX on accelerators, where a batch costs its slowest env: FAST_PHYSICS's solver budget
# and semi-implicit Euler (one forward pass per step instead of RK4's four). Tasks with
# self-contacts also prune those (Humanoid*); Ant keeps RK4. Measured fidelity and speed:
# docs/physics.md.
GPU_PHYSICS = PhysicsOptions(solver="newton", iterations=4, ls_iterations=8, integrator="euler")
