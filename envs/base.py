"""Shared machinery for the Gymnasium MuJoCo v5 tasks on MJX.

`MjxTask` loads the XML that the installed gymnasium package ships, applies named physics
options, and implements brax's `Env` interface (`reset`/`step` on a brax `State` whose
`pipeline_state` is an `mjx.Data`). Subclasses only define the task: reset noise,
observation, and reward/termination terms (mirroring gymnasium/envs/mujoco/*_v5.py).

Semantics that matter for parity with Gymnasium (and that the parity tests check):
* Actions in [-1, 1] are mapped affinely onto the actuator ctrlrange in `scale_action`, the
  one place that does it. They are not clipped: like Gymnasium, reward terms see the
  unclipped control, and the physics clamps it to ctrlrange (all actuators are ctrllimited).
* One env step is `frame_skip` calls of `mjx.step` (forward, then integrate; RK4 through
  our non-unrolled copy `_rungekutta4`, to halve compile time). As in
  MuJoCo's `mj_step`, derived quantities (xpos, cvel, qfrc_actuator, contacts, ...) left in
  `mjx.Data` after a step belong to the last forward pass, not to the integrated qpos/qvel;
  Gymnasium reads them the same way, so observations built from them match.
* Tasks whose observation or reward uses `cfrc_ext` (Ant, Humanoid, HumanoidStandup) run
  `mjx`'s `rne_postconstraint` after the physics steps, as Gymnasium v5 calls
  `mj_rnePostConstraint` after `mj_step`. At reset, `cfrc_ext` is zero in both (Gymnasium
  only calls `mj_forward` there, which does not compute it).
* `State.done` is true termination only; per-term rewards and Gymnasium's scalar info
  entries are in `State.metrics` (same keys at reset, zeros there, and at every step).

Physics options: `physics="gymnasium"` (the default) uses each XML's settings;
`physics="fast"` uses Newton with 4 iterations / 8 line-search iterations for throughput;
`physics="gpu"` adds semi-implicit Euler and, where a model has them, drops self-collisions
(for MJX on accelerators; fidelity and speed measured in docs/physics.md); any
`PhysicsOptions` may be passed. Timestep and frame skip are part of the task and never change.

Documented deviations from Gymnasium v5:
* Humanoid/HumanoidStandup: MJX has no PGS solver; "gymnasium" there means Newton with the
  XML's 50 iterations. Parity tests give the reference MuJoCo env the same options.
* Simulation is float32 (MuJoCo: float64). Parity tolerances are in tests/envs/test_parity.py.
* Gymnasium's array-valued info entries (Humanoid tendon_length/tendon_velocity) are not in
  `metrics` (brax expects scalar metrics); the rewards do not depend on them.
* Rejection-sampled resets (Reacher goal, Pusher object) use a `lax.while_loop` with the same
  distribution, not Gymnasium's random stream.
* mujoco-mjx 3.17 builds plane-capsule contact frames differently from MuJoCo 4's C code;
  `plane_capsule_as_mujoco` below restores MuJoCo's frame (installed process-wide on import).
  Sphere-capsule frames still differ (MuJoCo aligns the tangent with the capsule axis, MJX
  does not); this only matters for condim>1 sphere-capsule contacts (humanoid limb-limb
  contacts are condim 1, so frictionless) and did not show in the parity tests.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import os
from typing import ClassVar

import gymnasium
import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from brax.envs.base import Env, State
from mujoco import mjx
from mujoco.mjx._src import collision_driver, collision_primitive
from mujoco.mjx._src import forward as mjx_forward
from mujoco.mjx._src import math as mjx_math
from mujoco.mjx._src import scan as mjx_scan
from mujoco.mjx._src.smooth import rne_postconstraint
from mujoco.mjx._src.types import GeomType, IntegratorType

# ----- the MJX internals we rely on ----------------------------------------------------------
# This module reaches into private mujoco-mjx code: it replaces the plane-capsule collider in
# `collision_driver._COLLISION_FUNC` (built with `collision_primitive.collider` and
# `_plane_sphere`) and re-implements RK4 from `forward._RK4_A/_RK4_B`, `_integrate_pos`,
# `_advance` and `scan.flat`. Private code changes without notice, so we refuse to run on a
# version we have not checked. To admit a new version, re-verify and then widen
# VERIFIED_MJX_VERSIONS: (1) tests/envs/test_parity.py passes for all tasks (Ant and the
# humanoids exercise the collider); (2) mjx's own `plane_capsule` still builds the frame this
# file corrects (or MuJoCo's frame, making the patch unnecessary); (3) `_rungekutta4` still
# equals `mujoco.mjx._src.forward.rungekutta4` on an RK4 task (same Data to float32 rounding).
VERIFIED_MJX_VERSIONS = ("3.17",)  # major.minor prefixes
_PATCHED_ATTRIBUTES = {
    collision_driver: ("_COLLISION_FUNC",),
    collision_primitive: ("collider", "_plane_sphere"),
    mjx_forward: ("_RK4_A", "_RK4_B", "_integrate_pos", "_advance"),
    mjx_scan: ("flat",),
    mjx_math: ("normalize_with_norm",),
}


def installed_mjx_version() -> str:
    """The installed mujoco-mjx distribution's version."""
    return importlib.metadata.version("mujoco-mjx")


def check_mjx_internals() -> None:
    """Raise ImportError unless the installed mujoco-mjx is a verified version that still has
    every private attribute this module uses (see the comment above)."""
    version = installed_mjx_version()
    if not any(version == v or version.startswith(v + ".") for v in VERIFIED_MJX_VERSIONS):
        raise ImportError(
            f"envs needs mujoco-mjx {' or '.join(v + '.x' for v in VERIFIED_MJX_VERSIONS)} (it patches private "
            f"MJX internals verified only there), but mujoco-mjx {version} is installed. Install a verified "
            "version, or re-verify (see envs/base.py, 'the MJX internals we rely on') and extend "
            "VERIFIED_MJX_VERSIONS.")
    missing = [f"{module.__name__}.{name}" for module, names in _PATCHED_ATTRIBUTES.items()
               for name in names if not hasattr(module, name)]
    if missing:
        raise ImportError(f"mujoco-mjx {version} lacks private attributes envs/base.py patches: {', '.join(missing)}")


check_mjx_internals()

GYMNASIUM_ASSETS = os.path.join(os.path.dirname(gymnasium.__file__), "envs", "mujoco", "assets")

_SOLVERS = {"newton": mujoco.mjtSolver.mjSOL_NEWTON, "cg": mujoco.mjtSolver.mjSOL_CG}
# The integrators mjx.step implements. RK4 costs four forward passes (and constraint solves)
# per physics step, the others one.
_INTEGRATORS = {"euler": mujoco.mjtIntegrator.mjINT_EULER, "rk4": mujoco.mjtIntegrator.mjINT_RK4,
                "implicitfast": mujoco.mjtIntegrator.mjINT_IMPLICITFAST}


def uncommitted(tree):
    """`tree` with its jax arrays as uncommitted copies on this process's default device. An MJX
    model closed over by the sharded engine's programs must not be committed to one device: a
    nested jit inside `shard_map` rejects a single-device argument, and in a multi-process run
    mjx's default device, `jax.devices()[0]`, belongs to process 0."""
    return jax.tree_util.tree_map(lambda x: jnp.asarray(np.asarray(x)) if isinstance(x, jax.Array) else x, tree)


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


@collision_primitive.collider(ncon=2)
def plane_capsule_as_mujoco(plane, cap):
    """Plane-capsule contacts with MuJoCo's (C) contact frame.

    MuJoCo sets the frame's first tangent to the capsule axis orthonormalised against the
    plane normal (`mju_makeFrame`). mujoco-mjx 3.17 instead falls back to a fixed axis
    whenever that projection is shorter than 0.5, i.e. whenever a capsule stands steeper
    than 60 degrees. With pyramidal friction cones the frame changes the friction forces,
    so Ant (legs touching down nearly vertically) drifted far from Gymnasium. Distances and
    positions are unchanged from mjx's `plane_capsule`.
    """
    n, axis = plane.mat[:, 2], cap.mat[:, 2]
    b, b_norm = mjx_math.normalize_with_norm(axis - n * jnp.dot(n, axis))
    fallback = jnp.where((-0.5 < n[1]) & (n[1] < 0.5), jnp.array([0.0, 1.0, 0.0]), jnp.array([0.0, 0.0, 1.0]))
    b = jnp.where(b_norm < 1e-6, fallback, b)  # capsule exactly along the normal
    frame = jnp.array([[n, b, jnp.cross(n, b)]])
    segment = axis * cap.size[1]
    collisions = []
    for offset in (segment, -segment):
        dist, pos = collision_primitive._plane_sphere(n, plane.pos, cap.pos + offset, cap.size[0])
        collisions.append((dist[None], pos[None], frame))
    return jax.tree_util.tree_map(lambda *x: jnp.concatenate(x), *collisions)


# Installed process-wide on import of envs (MJX looks colliders up in this table at trace
# time); any other MJX user in the process gets MuJoCo's frame too.
collision_driver._COLLISION_FUNC[(GeomType.PLANE, GeomType.CAPSULE)] = plane_capsule_as_mujoco


def _rungekutta4(m: mjx.Model, d: mjx.Data) -> mjx.Data:
    """mjx's `rungekutta4` (same arithmetic, same final Data), with its 3-stage `lax.scan`
    not unrolled: the forward pass then appears once in the program instead of three
    times, which roughly halves compile time of an RK4 step on CPU."""
    d0 = d
    a_tab, b_tab = mjx_forward._RK4_A, mjx_forward._RK4_B
    c_tab = jnp.tril(a_tab).sum(axis=0)
    times = d.time + c_tab * m.opt.timestep
    integrate_fn = lambda *args: mjx_forward._integrate_pos(*args, dt=m.opt.timestep)
    qvel, qacc, act_dot = (b_tab[0] * d.qvel, b_tab[0] * d.qacc, b_tab[0] * d.act_dot)

    def stage(carry, x):
        qvel, qacc, act_dot, kqvel, d = carry
        a, b, t = x
        dqvel, dqacc, dact_dot = a * kqvel, a * d.qacc, a * d.act_dot
        kqpos = mjx_scan.flat(m, integrate_fn, "jqv", "q", m.jnt_type, d0.qpos, dqvel)
        kqvel = d0.qvel + dqacc * m.opt.timestep
        d = d.replace(qpos=kqpos, qvel=kqvel, act=d0.act + dact_dot * m.opt.timestep, time=t)
        d = mjx.forward(m, d)
        return (qvel + b * kqvel, qacc + b * d.qacc, act_dot + b * d.act_dot, kqvel, d), None

    abt = jnp.vstack([jnp.diag(a_tab), b_tab[1:4], times]).T
    (qvel, qacc, act_dot, _, d1), _ = jax.lax.scan(stage, (qvel, qacc, act_dot, d.qvel, d), abt)
    d = d1.replace(qpos=d0.qpos, qvel=d0.qvel, act=d0.act, time=d0.time)
    return mjx_forward._advance(m, d, act_dot, qacc, qvel)


def mjx_step(m: mjx.Model, d: mjx.Data) -> mjx.Data:
    """One physics step: `mjx.step`, except RK4 goes through `_rungekutta4` (see there)."""
    if m.opt.integrator == IntegratorType.RK4:
        return _rungekutta4(m, mjx.forward(m, d))
    return mjx.step(m, d)


def uniform_noise(rng: jax.Array, shape, scale: float) -> jax.Array:
    """U(-scale, scale) noise, like `np_random.uniform(low=-scale, high=scale)`."""
    return jax.random.uniform(rng, shape, minval=-scale, maxval=scale)


class MjxTask(Env):
    """A Gymnasium-v5-compatible MuJoCo task simulated with MJX, behind brax's `Env` API.

    Subclasses set `xml_file`, `frame_skip`, `gymnasium_physics` (the XML's solver options,
    with PGS replaced where needed) and implement `observation` and `transition`. The default
    reset is Gymnasium's common one (see `reset_qpos_qvel`): a task sets `qvel_noise` and
    passes its `reset_noise_scale`, or overrides `reset_qpos_qvel`. Set `needs_cfrc_ext =
    True` if the task reads `cfrc_ext`.
    """

    xml_file: ClassVar[str]
    frame_skip: ClassVar[int]
    gymnasium_physics: ClassVar[PhysicsOptions] = PhysicsOptions()
    fast_physics: ClassVar[PhysicsOptions] = FAST_PHYSICS
    gpu_physics: ClassVar[PhysicsOptions] = GPU_PHYSICS
    needs_cfrc_ext: ClassVar[bool] = False
    qvel_noise: ClassVar[str] = "uniform"  # or "normal": Gymnasium's two reset-noise kinds

    def __init__(self, physics: str | PhysicsOptions = "gymnasium", reset_noise_scale: float = 0.0):
        self.physics = self.resolve_physics(physics)
        self.reset_noise_scale = reset_noise_scale
        mj_model = self.physics.load(self.xml_file)
        self._mj_model = mj_model
        self.sys = uncommitted(mjx.put_model(mj_model, device=jax.local_devices()[0]))
        self.init_qpos = jnp.asarray(mj_model.qpos0, dtype=jnp.float32)
        self.init_qvel = jnp.zeros(mj_model.nv, dtype=jnp.float32)
        low, high = mj_model.actuator_ctrlrange.T
        self._ctrl_low = jnp.asarray(low, dtype=jnp.float32)
        self._ctrl_high = jnp.asarray(high, dtype=jnp.float32)

    # ----- configuration -------------------------------------------------------------
    @classmethod
    def resolve_physics(cls, physics: str | PhysicsOptions) -> PhysicsOptions:
        """Map a preset name ("gymnasium" = the task's XML settings, "fast", "gpu") to options."""
        if isinstance(physics, PhysicsOptions):
            return physics
        presets = {"gymnasium": cls.gymnasium_physics, "fast": cls.fast_physics, "gpu": cls.gpu_physics}
        if physics not in presets:
            raise ValueError(f"physics must be a PhysicsOptions or one of {sorted(presets)}, got {physics!r}")
        return presets[physics]

    @property
    def mj_model(self) -> mujoco.MjModel:
        """The MuJoCo model (with our physics options applied), e.g. for rendering."""
        return self._mj_model

    @property
    def dt(self) -> float:
        """Seconds of simulated time per env step."""
        return float(self._mj_model.opt.timestep) * self.frame_skip

    @property
    def backend(self) -> str:
        return "mjx"

    @property
    def action_size(self) -> int:
        return int(self._mj_model.nu)

    @functools.cached_property
    def observation_size(self) -> int:
        """Traced (not run) from `observation` on a blank `mjx.Data`: no reset, no compile."""
        spec = jax.eval_shape(self.observation, mjx.make_data(self._mj_model))
        return int(spec.shape[-1])

    # ----- task definition (subclasses) --------------------------------------------------
    def reset_qpos_qvel(self, rng: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Initial (qpos, qvel): qpos0 + U(+-c), zero velocity + U(+-c) or N(0, c^2) per
        `qvel_noise`, with c = `reset_noise_scale` (Gymnasium's `reset_model` of most tasks)."""
        k1, k2 = jax.random.split(rng)
        c = self.reset_noise_scale
        qpos = self.init_qpos + uniform_noise(k1, self.init_qpos.shape, c)
        if self.qvel_noise == "normal":
            return qpos, self.init_qvel + c * jax.random.normal(k2, self.init_qvel.shape)
        return qpos, self.init_qvel + uniform_noise(k2, self.init_qvel.shape, c)

    def observation(self, data: mjx.Data) -> jax.Array:
        """Observation of `data`, laid out as Gymnasium's `_get_obs`."""
        raise NotImplementedError

    def transition(self, before: mjx.Data, after: mjx.Data, ctrl: jax.Array) -> tuple[jax.Array, jax.Array, dict]:
        """(reward, terminated, metrics) of the step `before` -> `after` under control `ctrl`
        (in ctrlrange units, as Gymnasium's action)."""
        raise NotImplementedError

    # ----- physics ------------------------------------------------------------------------
    def scale_action(self, action: jax.Array) -> jax.Array:
        """Map actions in [-1, 1] affinely onto the actuator ctrlrange (the one place)."""
        return self._ctrl_low + (action + 1.0) * 0.5 * (self._ctrl_high - self._ctrl_low)

    def state_from_qpos_qvel(self, qpos: jax.Array, qvel: jax.Array, qacc_warmstart: jax.Array | None = None) -> mjx.Data:
        """A fresh `mjx.Data` at (qpos, qvel), after `mjx.forward` — what Gymnasium's
        `set_state` does with `mj_forward`. `qacc_warmstart` seeds the constraint solver."""
        data = mjx.make_data(self.sys)
        data = data.replace(qpos=jnp.asarray(qpos, jnp.float32), qvel=jnp.asarray(qvel, jnp.float32))
        if qacc_warmstart is not None:
            data = data.replace(qacc_warmstart=jnp.asarray(qacc_warmstart, jnp.float32))
        with jax.default_matmul_precision("highest"):
            return mjx.forward(self.sys, data)

    def physics_step(self, data: mjx.Data, ctrl: jax.Array) -> mjx.Data:
        """`frame_skip` MJX steps under `ctrl` (+ `rne_postconstraint` where cfrc_ext is used),
        at full float32 matmul precision (GPUs default to TF32-like precision otherwise)."""
        data = data.replace(ctrl=ctrl)
        with jax.default_matmul_precision("highest"):
            data = jax.lax.fori_loop(0, self.frame_skip, lambda _, d: mjx_step(self.sys, d), data)
            if self.needs_cfrc_ext:
                data = rne_postconstraint(self.sys, data)
        return data

    # ----- brax Env API ---------------------------------------------------------------
    def reset(self, rng: jax.Array) -> State:
        qpos, qvel = self.reset_qpos_qvel(rng)
        data = self.state_from_qpos_qvel(qpos, qvel)
        # Same metric keys as `step`, all zero (the zeros do not depend on values, so XLA
        # drops the traced computation).
        _, _, metrics = self.transition(data, data, jnp.zeros(self.action_size, jnp.float32))
        metrics = jax.tree.map(lambda x: jnp.zeros_like(x, jnp.float32), metrics)
        zero = jnp.zeros((), jnp.float32)
        return State(pipeline_state=data, obs=self.observation(data), reward=zero, done=zero, metrics=metrics, info={})

    def step(self, state: State, action: jax.Array) -> State:
        ctrl = self.scale_action(action)
        before = state.pipeline_state
        after = self.physics_step(before, ctrl)
        reward, terminated, metrics = self.transition(before, after, ctrl)
        metrics = {k: jnp.asarray(v, jnp.float32) for k, v in metrics.items()}
        return state.replace(
            pipeline_state=after,
            obs=self.observation(after),
            reward=jnp.asarray(reward, jnp.float32),
            done=jnp.asarray(terminated, jnp.float32),
            metrics=metrics,
        )


# ----- helpers shared by several tasks ------------------------------------------------------
def control_cost(weight: float, ctrl: jax.Array) -> jax.Array:
    """weight * ||ctrl||^2 (Gymnasium's `control_cost`)."""
    return weight * jnp.sum(jnp.square(ctrl))


def body_id(mj_model: mujoco.MjModel, name: str) -> int:
    """Index of the body called `name`."""
    return int(mujoco.mj_name2id(mj_model, mujoco.mjtObj.mjOBJ_BODY, name))


def rejection_sample(rng: jax.Array, sample, accept) -> jax.Array:
    """Draw `sample(key)` until `accept(x)`, like Gymnasium's `while True` loops (same
    distribution; usable under jit/vmap)."""

    def cond(carry):
        return ~accept(carry[1])

    def body(carry):
        key, _ = carry
        key, sub = jax.random.split(key)
        return key, sample(sub)

    key, sub = jax.random.split(rng)
    return jax.lax.while_loop(cond, body, (key, sample(sub)))[1]
