"""Multi-host launcher: start JAX's distributed runtime, then train.

    python -m launch.multihost --coordinator HOST:PORT --num-processes N --process-id I \
        -- --env humanoid --agent smfp --preset fast

Run one process per host (each sees its local GPUs). Under SLURM the three values default
to the job's own (`SLURM_NTASKS`, `SLURM_PROCID`, first host of `SLURM_JOB_NODELIST`, a port
derived from `SLURM_JOB_ID`), so
`srun python -m launch.multihost -- <train args>` is enough (see launch/slurm_example.sh).
The values travel as MJX_SMFP_* variables to `mjx_smfp.distributed.initialize_from_env`,
which `launch.train` calls before touching any device.
"""
from __future__ import annotations

import argparse
import os
import re
import sys

from mjx_smfp import distributed

DEFAULT_PORT = 12345


def _first_slurm_host(nodelist: str) -> str:
    """First host name of a SLURM nodelist such as 'gpu[003-005,009],cpu1' -> 'gpu003'."""
    match = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist)
    if not match:
        raise ValueError(f"cannot parse SLURM_JOB_NODELIST={nodelist!r}")
    prefix, ranges = match.groups()
    if not ranges:
        return prefix
    return prefix + re.split(r"[-,]", ranges)[0]


def slurm_port(env) -> int:
    """The coordinator's port under SLURM: DEFAULT_PORT shifted by the job id (modulo 10,000), so
    two jobs whose first node is the same do not both claim one port."""
    job = env.get("SLURM_JOB_ID", "")
    return DEFAULT_PORT + int(job) % 10_000 if job.isdigit() else DEFAULT_PORT


def parse(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """Launcher flags -> (MJX_SMFP_* environment, remaining train arguments)."""
    if "--" in argv:
        split = argv.index("--")
        own, rest = argv[:split], argv[split + 1 :]
    else:
        own, rest = argv, []
    parser = argparse.ArgumentParser(prog="python -m launch.multihost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--coordinator", default=None, help="HOST:PORT of process 0")
    parser.add_argument("--num-processes", type=int, default=None)
    parser.add_argument("--process-id", type=int, default=None)
    args = parser.parse_args(own)
    env = os.environ
    coordinator = args.coordinator
    if coordinator is None and "SLURM_JOB_NODELIST" in env:
        coordinator = f"{_first_slurm_host(env['SLURM_JOB_NODELIST'])}:{slurm_port(env)}"
    num_processes = args.num_processes if args.num_processes is not None else env.get("SLURM_NTASKS")
    process_id = args.process_id if args.process_id is not None else env.get("SLURM_PROCID")
    missing = [name for name, value in (("--coordinator", coordinator), ("--num-processes", num_processes),
                                        ("--process-id", process_id)) if value is None]
    if missing:
        raise ValueError(f"missing {', '.join(missing)} (and no SLURM job variables to take them from)")
    if not 0 <= int(process_id) < int(num_processes):
        raise ValueError(f"--process-id {process_id} must lie in [0, {num_processes})")
    return {
        distributed.COORDINATOR_VAR: str(coordinator),
        distributed.NUM_PROCESSES_VAR: str(num_processes),
        distributed.PROCESS_ID_VAR: str(process_id),
    }, rest


def main(argv: list[str] | None = None) -> None:
    try:
        variables, train_args = parse(sys.argv[1:] if argv is None else argv)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2)
    os.environ.update(variables)
    from launch import train

    train.main(train_args)


if __name__ == "__main__":
    main()
