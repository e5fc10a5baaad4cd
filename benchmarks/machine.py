"""What the benchmarks record about the machine they ran on: one description for all of them."""
from __future__ import annotations

import os
import platform
import subprocess
import time


def cpu_model(default: str = "unknown") -> str:
    """The CPU's model name from /proc/cpuinfo with its family and model numbers (one name, such
    as 'AMD EPYC', covers several generations), or `default` where there is none (not Linux)."""
    try:
        with open("/proc/cpuinfo") as f:
            first = f.read().split("\n\n")[0]  # the first processor's block is enough
    except OSError:
        first = ""
    fields = dict(map(str.strip, line.split(":", 1)) for line in first.splitlines() if ":" in line)
    if "model name" not in fields:
        return default
    ids = " ".join(f"{label} {fields[key]}" for label, key in (("family", "cpu family"), ("model", "model"))
                   if key in fields)
    return f"{fields['model name']} ({ids})" if ids else fields["model name"]


def nvidia_gpus() -> tuple[int, str]:
    """(NVIDIA GPUs, what `nvidia-smi -L` said or why it said nothing), without starting a JAX
    backend: a parent process holding GPU memory would starve the processes it starts."""
    try:
        smi = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return 0, f"{type(err).__name__}: {err}"
    said = (smi.stdout.strip() or smi.stderr.strip() or f"exit status {smi.returncode}").replace("\n", "; ")
    return (sum(line.startswith("GPU ") for line in smi.stdout.splitlines()) if smi.returncode == 0 else 0), said


def describe() -> dict:
    """CPU, cores, load, accelerator (kind x count), versions and date, as JSON-able data."""
    import jax
    import mujoco

    dev = jax.devices()[0]
    return dict(cpu_model=cpu_model(platform.processor() or "unknown"), cores=len(os.sched_getaffinity(0)),
                load_average=os.getloadavg(), jax_backend=jax.default_backend(),
                device_kind=getattr(dev, "device_kind", dev.platform), device_count=jax.device_count(),
                jax=jax.__version__, mujoco=mujoco.__version__, python=platform.python_version(),
                date=time.strftime("%Y-%m-%d %H:%M:%S %Z"))


def summary(info: dict | None = None) -> str:
    """One line for tables and logs: 'CPU model, N cores | jax V BACKEND backend (KIND xN)'."""
    m = info or describe()
    return (f"{m['cpu_model']}, {m['cores']} core{'s' * (m['cores'] != 1)} | jax {m['jax']} {m['jax_backend']} backend "
            f"({m['device_kind']} x{m['device_count']})")
