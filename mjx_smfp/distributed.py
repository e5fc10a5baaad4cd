"""Data parallelism over one named mesh axis, and multi-host start-up through `jax.distributed`.

Every device steps its share of the envs and holds its shard of the replay ring;
parameters and optimiser states are replicated; gradients are averaged with
`lax.pmean` over `DATA_AXIS` inside the compiled step (see `Agent.reduce`).
The same code runs on 1 CPU, 1 GPU, N GPUs and N hosts; tests emulate N devices with
XLA_FLAGS=--xla_force_host_platform_device_count=N.

Several processes (`jax.distributed`, N processes x M local devices; gloo collectives on the CPU,
NCCL on GPUs): the mesh spans every device of every process, in `jax.devices()` order, which all
processes share. Global arrays are never fetched whole: replicated ones are read from a local
copy, and inputs are built with `replicated` from the same host value on every process.
How a multi-process run starts, fails and ends: mjx_smfp/processes.py.
"""
from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh

DATA_AXIS = "data"

# Environment variables read by `initialize_from_env` (set by launch/multihost.py or SLURM).
COORDINATOR_VAR = "MJX_SMFP_COORDINATOR"  # host:port of process 0
NUM_PROCESSES_VAR = "MJX_SMFP_NUM_PROCESSES"
PROCESS_ID_VAR = "MJX_SMFP_PROCESS_ID"


def initialize_from_env() -> bool:
    """Start JAX's distributed runtime when the launcher variables are set; no-op otherwise.

    Returns True when a multi-process runtime was initialised.
    """
    coordinator = os.environ.get(COORDINATOR_VAR)
    if not coordinator:
        return False
    missing = [v for v in (NUM_PROCESSES_VAR, PROCESS_ID_VAR) if v not in os.environ]
    if missing:
        raise ValueError(f"{COORDINATOR_VAR} is set but {', '.join(missing)} is not")
    from mjx_smfp import processes

    processes.start(coordinator, int(os.environ[NUM_PROCESSES_VAR]), int(os.environ[PROCESS_ID_VAR]))
    return True


def make_data_mesh(num_devices: int | None = None) -> Mesh:
    """A 1-D mesh named `DATA_AXIS` over the first `num_devices` devices (all by default).
    With several processes it spans all of them: `num_devices` 0 or 1 (the default, one
    device per run) means every device, any other count must be all of them."""
    devices = jax.devices()
    if jax.process_count() > 1:
        if num_devices not in (None, 0, 1, len(devices)):
            raise ValueError(f"num_devices={num_devices}: a run over {jax.process_count()} processes trains on all "
                             f"their {len(devices)} devices (use num_devices 0)")
        num_devices = len(devices)
    if num_devices is None or num_devices <= 0:
        num_devices = len(devices)
    if num_devices > len(devices):
        raise ValueError(
            f"num_devices={num_devices} asked for, but only {len(devices)} "
            f"{devices[0].platform} device(s) are present"
        )
    return Mesh(np.asarray(devices[:num_devices]), (DATA_AXIS,))


def check_divisible(name: str, value: int, num_devices: int) -> int:
    """`value // num_devices`, or an error naming the field when it does not divide."""
    if value % num_devices:
        raise ValueError(
            f"{name}={value} is not divisible by the device count {num_devices}; "
            f"use a multiple of {num_devices} (e.g. {max(num_devices, value // num_devices * num_devices)})"
        )
    return value // num_devices


def use_mesh_settings() -> None:
    """Process-wide JAX settings the data-parallel programs need (the Engine calls it when it
    builds a mesh): jaxpr constants in JAX's newer, simplified form. With the default form, a
    zero-size constant closed over inside `shard_map` (MJX models and data hold several) crashes
    XLA's Shardy partitioner while compiling (segmentation fault in its
    ManualComputationUnusedInputsPattern; jax/jaxlib 0.11.2, 2 CPU devices, any MJX task). The
    flag is JAX's transition to the new default; the plain single-device path does not set it."""
    jax.config.update("jax_use_simplified_jaxpr_constants", True)


def uses_mesh(num_devices: int) -> bool:
    """Whether a run with `num_devices` is data parallel: several devices, or several processes."""
    return num_devices != 1 or jax.process_count() > 1


def replicated(mesh: Mesh, value) -> jax.Array:
    """`value` (the same host value on every process) as an array replicated over `mesh`: the
    way to hand a jitted program over a multi-process mesh an input (a local array would be
    committed to one device of one process)."""
    from jax.sharding import NamedSharding, PartitionSpec

    value = np.asarray(value)
    return jax.make_array_from_callback(value.shape, NamedSharding(mesh, PartitionSpec()), lambda index: value[index])


def process_zero_text(text: str) -> str:
    """Process 0's `text` on every process (e.g. a run directory named by the time, which every
    process must write to); `text` itself with one process. ASCII, the same length everywhere."""
    if jax.process_count() == 1:
        return text
    from jax.experimental import multihost_utils

    codes = multihost_utils.broadcast_one_to_all(np.frombuffer(text.encode("ascii"), np.uint8).astype(np.int32))
    return bytes(np.asarray(codes).astype(np.uint8)).decode("ascii")


def agree(iterations: int, stop_requested: bool) -> tuple[int, bool]:
    """(next call's iterations, stop now?), the same on every process: a multi-host run's calls
    hold collectives and its saves are collective, so process 0's call size and a stop requested on
    any process hold for all (one tiny all-gather a call)."""
    if jax.process_count() == 1:
        return iterations, stop_requested
    from jax.experimental import multihost_utils

    agreed = np.asarray(multihost_utils.process_allgather(np.array([iterations, stop_requested], np.int32)))
    return int(agreed[0, 0]), bool(agreed[:, 1].any())
