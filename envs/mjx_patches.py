"""What envs changes in, or copies from, private mujoco-mjx code, and the guard that refuses a
version nobody checked. Importing this module installs the plane-capsule collider process-wide.

* mujoco-mjx 3.17 builds plane-capsule contact frames differently from MuJoCo 4's C code;
  `plane_capsule_as_mujoco` restores MuJoCo's frame (installed into MJX's collider table on
  import). Sphere-capsule frames still differ (MuJoCo aligns the tangent with the capsule axis, MJX
  does not); this only matters for condim>1 sphere-capsule contacts (humanoid limb-limb contacts
  are condim 1, so frictionless) and did not show in the parity tests.
* `mjx_step` is `mjx.step` except that RK4 goes through `_rungekutta4`, our non-unrolled copy of
  mjx's, to halve compile time.

The private code this module reaches into: it replaces the plane-capsule collider in
`collision_driver._COLLISION_FUNC` (built with `collision_primitive.collider` and `_plane_sphere`)
and re-implements RK4 from `forward._RK4_A/_RK4_B`, `_integrate_pos`, `_advance` and `scan.flat`.
Private code changes without notice, so we refuse to run on a version we have not checked. To
admit a new version, re-verify and then widen VERIFIED_MJX_VERSIONS: (1) tests/envs/test_parity.py
passes for all tasks (Ant and the humanoids exercise the collider); (2) mjx's own `plane_capsule`
still builds the frame this file corrects (or MuJoCo's frame, making the patch unnecessary); (3)
`_rungekutta4` still equals `mujoco.mjx._src.forward.rungekutta4` on an RK4 task (same Data to
float32 rounding).
"""
from __future__ import annotations

import importlib.metadata

import jax
import jax.numpy as jnp
from mujoco import mjx
from mujoco.mjx._src import collision_driver, collision_primitive
from mujoco.mjx._src import forward as mjx_forward
from mujoco.mjx._src import math as mjx_math
from mujoco.mjx._src import scan as mjx_scan
from mujoco.mjx._src.types import GeomType, IntegratorType

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
    every private attribute this module uses (see the module docstring)."""
    version = installed_mjx_version()
    if not any(version == v or version.startswith(v + ".") for v in VERIFIED_MJX_VERSIONS):
        raise ImportError(
            f"envs needs mujoco-mjx {' or '.join(v + '.x' for v in VERIFIED_MJX_VERSIONS)} (it patches private "
            f"MJX internals verified only there), but mujoco-mjx {version} is installed. Install a verified "
            "version, or re-verify (see envs/mjx_patches.py's docstring) and extend VERIFIED_MJX_VERSIONS.")
    missing = [f"{module.__name__}.{name}" for module, names in _PATCHED_ATTRIBUTES.items()
               for name in names if not hasattr(module, name)]
    if missing:
        raise ImportError(f"mujoco-mjx {version} lacks private attributes envs/mjx_patches.py patches: "
                          f"{', '.join(missing)}")


check_mjx_internals()


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
