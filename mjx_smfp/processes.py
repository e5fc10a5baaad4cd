"""The life of a multi-process run (several `jax.distributed` processes): how it starts, how a
lost process is named, and how it ends, so that every outcome is one readable line, never the
coordination service's C++ abort with pages of stack trace.

Start (`start`, called by `distributed.initialize_from_env`): the runtime in *recoverable* mode
(`jax_enable_recoverability`). Without it, the death of any process makes the coordination
service abort every other one from a C++ thread (no Python handler can intervene). With it, a
survivor's collective fails (gloo on the CPU fails at once when a peer's socket closes), and the
survivors agree on who is gone through `multihost_utils.live_devices`, a barrier among the live
processes that returns once the service has declared the lost one dead (a missed heartbeat:
`heartbeat_timeout_seconds`, `$MJX_SMFP_HEARTBEAT_S`). JAX's preemption notifier is off: SIGTERM
is answered by the run's own StopFlag (mjx_smfp/runner.py), whose decision every process shares.

Failure (`exit_on_failure`): each survivor prints `error: process I: lost process K of N ...` and
exits 1. End (`leave`): recoverable tasks skip the service's shutdown barrier, so the others
disconnect first and process 0, which hosts the service, leaves last; none is cut off mid-call.
Limitation: a lost process 0 takes the service with it, and the runtime may abort the survivors
(its C++ error poller) before they print their line.
"""
from __future__ import annotations

import os
import re
import sys
import threading
import traceback
from typing import Optional

HEARTBEAT_VAR = "MJX_SMFP_HEARTBEAT_S"  # seconds without a heartbeat before a process is declared lost
DEFAULT_HEARTBEAT_S = 10
INIT_TIMEOUT_VAR = "MJX_SMFP_INIT_TIMEOUT_S"  # seconds to wait for every process to join
# How the runtime words a failed collective or barrier (jaxlib raises ValueError or JaxRuntimeError).
RUNTIME_FAILURE = re.compile(r"^(UNKNOWN|UNAVAILABLE|DEADLINE_EXCEEDED|INTERNAL|ABORTED|CANCELLED)\b|gloo|nccl",
                             re.IGNORECASE)

_resume_hint: Optional[str] = None  # where the last checkpoint is, once the run directory is known


def _seconds(var: str, default: int) -> int:
    value = os.environ.get(var, str(default))
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{var}={value!r} must be a whole number of seconds >= 1")
    return int(value)


def heartbeat_seconds() -> int:
    """The heartbeat timeout in seconds: `$MJX_SMFP_HEARTBEAT_S`, else DEFAULT_HEARTBEAT_S."""
    return _seconds(HEARTBEAT_VAR, DEFAULT_HEARTBEAT_S)


def start(coordinator: str, num_processes: int, process_id: int) -> None:
    """`jax.distributed.initialize` in recoverable mode, without JAX's preemption notifier; a
    coordinator that is not reached within `$MJX_SMFP_INIT_TIMEOUT_S` (default 300) is a
    RuntimeError naming it."""
    import jax

    jax.config.update("jax_enable_recoverability", True)
    jax.config.update("jax_enable_preemption_service", False)
    timeout = _seconds(INIT_TIMEOUT_VAR, 300)
    try:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                                   process_id=process_id, initialization_timeout=timeout,
                                   heartbeat_timeout_seconds=heartbeat_seconds())
    except Exception as err:  # noqa: BLE001 - the runtime raises several kinds
        raise RuntimeError(f"process {process_id} of {num_processes} could not join the coordinator at "
                           f"{coordinator} within {timeout} s ({first_line(err)})") from None


def set_resume_hint(run_dir: str) -> None:
    """Name the run directory in the lost-process line (where its last checkpoint is)."""
    global _resume_hint
    _resume_hint = f"its last checkpoint is in {run_dir}/checkpoints (continue with --resume {run_dir})"


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:300]}" if text else type(err).__name__


def lost_processes(timeout: Optional[float] = None) -> Optional[list[int]]:
    """The processes the coordination service has declared lost, the same list on every
    survivor (a barrier among live processes that returns once the lost ones missed their
    heartbeat): [] if none; [0] if the service itself no longer answers (process 0 hosts it);
    None if no answer came within `timeout` seconds."""
    import jax
    from jax.experimental import multihost_utils

    answer: list = [None]

    def ask():
        try:
            with multihost_utils.live_devices(jax.devices()) as alive:
                live = {d.process_index for d in alive}
            answer[0] = sorted(set(range(jax.process_count())) - live)
        except multihost_utils.ProcessFailureError as err:
            answer[0] = sorted({d.process_index for d in err.failed_devices})
        except Exception:  # noqa: BLE001 - an RPC error: the coordinator (process 0) is unreachable
            answer[0] = [0]

    asker = threading.Thread(target=ask, daemon=True)
    asker.start()
    asker.join(timeout)
    return answer[0]


def _exit(code: int) -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def leave(code: int, wait: float = 60.0) -> None:
    """Exit with `code`, without the runtime's shutdown barrier: processes other than 0
    disconnect and go; process 0 (the service's host) first waits up to `wait` seconds for
    every other live process to disconnect."""
    import jax

    try:
        if jax.process_index() != 0:
            jax.distributed.shutdown()
        else:
            lost_processes(timeout=wait)  # returns once the others are gone
    except Exception:  # noqa: BLE001 - leaving anyway
        pass
    _exit(code)


def exit_on_failure(err: BaseException) -> None:
    """A multi-process run raised `err` on this process: print one `error:` line and exit 1.
    A failed collective or barrier waits for the survivors' verdict and names the lost process;
    any other error is this process's own (its traceback first: a bug), and the others will
    then see this process lost."""
    import jax

    me, n = jax.process_index(), jax.process_count()
    hint = f"; {_resume_hint}" if _resume_hint else ""
    runtime = isinstance(err, jax.errors.JaxRuntimeError) or bool(RUNTIME_FAILURE.search(str(err)))
    lost = (lost_processes(timeout=2 * heartbeat_seconds() + 10) if runtime else None) or []
    if lost:
        message = (f"lost process{'es' * (len(lost) > 1)} {', '.join(map(str, lost))} of {n} "
                   f"({'the coordinator; ' * (0 in lost)}killed, crashed or unreachable)")
    else:
        traceback.print_exception(err)
        message = first_line(err)
    print(f"error: process {me}: {message}; stopping{hint}", file=sys.stderr, flush=True)
    if lost:  # the other survivors are leaving too: process 0 leaves last
        leave(1, wait=heartbeat_seconds())
    _exit(1)


def finish() -> None:
    """End a multi-process run that completed: meet at a barrier (a process lost now is reported
    like any other), then leave in order (exit status 0)."""
    from jax.experimental import multihost_utils

    try:
        multihost_utils.sync_global_devices("mjx_smfp:finished")
    except Exception as err:  # noqa: BLE001 - a peer lost at the very end
        exit_on_failure(err)
    leave(0)
