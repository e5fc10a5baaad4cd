"""The task base of the Gymnasium MuJoCo v5 tasks on MJX.

`MjxTask` loads the XML that the installed gymnasium package ships with named physics options
(envs/physics.py), and implements brax's `Env` interface (`reset`/`step` on a brax `State` whose
`pipeline_state` is an `mjx.Data`). Subclasses only define the task: reset noise, observation,
and reward/termination terms (mirroring gymnasium/envs/mujoco/*_v5.py). It steps with
envs/mjx_patches.py's `mjx_step` (importing that module also installs MuJoCo's plane-capsule
contact frame and checks the mujoco-mjx version).

Semantics that matter for parity with Gymnasium (and that the parity tests check):
* Actions in [-1, 1] are mapped affinely onto the actuator ctrlrange in `scale_action`, the
  one place that does it. They are not clipped: like Gymnasium, reward terms see the
  unclipped control, and the physics clamps it to ctrlrange (all actuators are ctrllimited).
* One env step is `frame_skip` calls of `mjx.step` (forward, then integrate; RK4 through
  envs/mjx_patches.py's non-unrolled copy, to halve compile time). As in
  MuJoCo's `mj_step`, derived quantities (xpos, cvel, qfrc_actuator, contacts, ...) left in
  `mjx.Data` after a step belong to the last forward pass, not to the integrated qpos/qvel;
  Gymnasium reads them the same way, so observations built from them match.
* Tasks whose observation or reward uses `cfrc_ext` (Ant, Humanoid, HumanoidStandup) run
  `mjx`'s `rne_postconstraint` after the physics steps, as Gymnasium v5 calls
  `mj_rnePostConstraint` after `mj_step`. At reset, `cfrc_ext` is zero in both (Gymnasium
  only calls `mj_forward` there, which does not compute it).
* `State.done` is true termination only; per-term rewards and Gymnasium's scalar info
  entries are in `State.metrics` (same keys at reset, zeros there, and at every step).

Documented deviations from Gymnasium v5:
* Humanoid/HumanoidStandup: MJX has no PGS solver; "gymnasium" there means Newton with the
  XML's 50 iterations. Parity tests give the reference MuJoCo env the same options.
* Simulation is float32 (MuJoCo: float64). Parity tolerances are in tests/envs/test_parity.py.
* Gymnasium's array-valued info entries (Humanoid tendon_length/tendon_velocity) are not in
  `metrics` (brax expects scalar metrics); the rewards do not depend on them.
* Rejection-sampled resets (Reacher goal, Pusher object) use a `lax.while_loop` with the same
  distribution, not Gymnasium's random stream.
* Contact frames: plane-capsule as MuJoCo's (envs/mjx_patches.py), sphere-capsule still MJX's.
"""
from __future__ import annotations

import functools
from typing import ClassVar

import jax
import jax.numpy as jnp
import mujoco
import numpy as np
from brax.envs.base import Env, State
from mujoco import mjx
from mujoco.mjx._src.smooth import rne_postconstraint

from envs.mjx_patches import mjx_step
from envs.physics import FAST_PHYSICS, GPU_PHYSICS, PhysicsOptions


def uncommitted(tree):
    """`tree` with its jax arrays as uncommitted copies on this process's default device. An MJX
    model closed over by the sharded engine's programs must not be committed to one device: a
    nested jit inside `shard_map` rejects a single-device argument, and in a multi-process run
    mjx's default device, `jax.devices()[0]`, belongs to process 0."""
    return jax.tree_util.tree_map(lambda x: jnp.asarray(np.asarray(x)) if isinstance(x, jax.Array) else x, tree)


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
