"""Data parallelism over one named mesh axis, and multi-host start-up through `jax.distributed`.

Every device steps its share of the envs and holds its shard of the replay ring;
parameters and optimiser states are replicated; gradients are averaged with
`lax.pmean` over `DATA_AXIS` inside the compiled step (see `Agent.reduce`).
The same code runs on 1 CPU, 1 GPU, N GPUs and N hosts; tests emulate N devices with
XLA_FLAGS=--xla_force_host_platform_device_count=N.
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
    jax.distributed.initialize(
        coordinator_address=coordinator,
        num_processes=int(os.environ[NUM_PROCESSES_VAR]),
        process_id=int(os.environ[PROCESS_ID_VAR]),
    )
    return True


def make_data_mesh(num_devices: int | None = None) -> Mesh:
    """A 1-D mesh named `DATA_AXIS` over the first `num_devices` devices (all by default)."""
    devices = jax.devices()
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
