"""The life of a multi-process run (several `jax.distributed` processes): how it starts, how a
lost process is named, and how it ends, so that every outcome is one readable line, never the
coordination service's C++ abort with pages of stack trace.

Start (`start`, called by `distributed.initialize_from_env`): the runtime in *recoverable* mode
(`jax_enable_recoverability`). Without it, the death of any process makes the coordination
service abort every other one from a C++ thread (no Python handler can intervene). With it, a
watchdog thread on every process asks, in rounds, which processes are alive
(`multihost_utils.live_devices`: a barrier among the live processes that returns once a lost one
has missed its heartbeat, `heartbeat_timeout_seconds` = `$MJX_SMFP_HEARTBEAT_S`). The verdict
must not wait for the main thread: that one may be blocked in a collective (NCCL waits for a
dead peer) or in an orbax save's barrier (it waits minutes). JAX's preemption notifier is off:
SIGTERM is answered by the run's own stop flag (`SharedStop`), whose decision every process shares.

Failure: each survivor prints `error: process I: lost process K of N ...` and exits 1, the
watchdog doing it (`exit_on_failure` only waits for it, or reports this process's own error).
End (`leave`): recoverable tasks skip the service's shutdown barrier, so the others disconnect
first and process 0, which hosts the service, leaves last; none is cut off mid-call.
Limitation: a lost process 0 takes the service with it, and the runtime may abort the survivors
(its C++ error poller) before they print their line.
"""
from __future__ import annotations

import atexit
import os
import re
import signal
import socket
import sys
import threading
import time
import traceback
from typing import Optional

from mjx_smfp.runner import StopFlag
from mjx_smfp.stop import exit_now

HEARTBEAT_VAR = "MJX_SMFP_HEARTBEAT_S"  # seconds without a heartbeat before a process is declared lost
DEFAULT_HEARTBEAT_S = 10
INIT_TIMEOUT_VAR = "MJX_SMFP_INIT_TIMEOUT_S"  # seconds to wait for every process to join
# How the runtime words a failed collective or barrier (jaxlib raises ValueError or JaxRuntimeError).
RUNTIME_FAILURE = re.compile(r"^(UNKNOWN|UNAVAILABLE|DEADLINE_EXCEEDED|INTERNAL|ABORTED|CANCELLED)\b|gloo|nccl",
                             re.IGNORECASE)

GRACE_S = 15.0  # a stop with nothing to save waits this long for the processes to agree (SLURM: 30 s to SIGKILL)

_resume_hint: Optional[str] = None  # where the last checkpoint is, once the run directory is known


def _seconds(var: str, default: int) -> int:
    value = os.environ.get(var, str(default))
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{var}={value!r} must be a whole number of seconds >= 1")
    return int(value)


def heartbeat_seconds() -> int:
    """The heartbeat timeout in seconds: `$MJX_SMFP_HEARTBEAT_S`, else DEFAULT_HEARTBEAT_S."""
    return _seconds(HEARTBEAT_VAR, DEFAULT_HEARTBEAT_S)


def _reach(coordinator: str, timeout: float) -> None:
    """Wait until the coordinator accepts a TCP connection (it may start later), else a
    RuntimeError naming it: the runtime itself would abort with a C++ stack trace."""
    host, _, port = coordinator.rpartition(":")
    deadline = time.time() + timeout
    while True:
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
            return
        except (OSError, ValueError) as err:
            if time.time() > deadline:
                raise RuntimeError(f"no coordinator answers at {coordinator} after {timeout:.0f} s ({err}); is "
                                   "process 0 running there, with that address and port?") from None
            time.sleep(0.5)


def start(coordinator: str, num_processes: int, process_id: int) -> None:
    """`jax.distributed.initialize` in recoverable mode, without JAX's preemption notifier, then
    the watchdog; a coordinator not reached within `$MJX_SMFP_INIT_TIMEOUT_S` (default 300) is a
    RuntimeError naming it."""
    import jax

    jax.config.update("jax_enable_recoverability", True)
    jax.config.update("jax_enable_preemption_service", False)
    timeout, heartbeat = _seconds(INIT_TIMEOUT_VAR, 300), heartbeat_seconds()  # ValueError names a bad one
    if process_id != 0:
        _reach(coordinator, timeout)
    try:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                                   process_id=process_id, initialization_timeout=timeout,
                                   heartbeat_timeout_seconds=heartbeat)
    except Exception as err:  # noqa: BLE001 - the runtime raises several kinds
        raise RuntimeError(f"process {process_id} of {num_processes} could not join the coordinator at "
                           f"{coordinator} within {timeout} s ({first_line(err)})") from None
    _watchdog.start()
    atexit.register(setattr, _watchdog, "finishing", True)  # an exit without finish() is no loss to report


def set_resume_hint(run_dir: str) -> None:
    """Name the run directory in the lost-process line (where its last checkpoint is)."""
    global _resume_hint
    _resume_hint = f"its last checkpoint is in {run_dir}/checkpoints (continue with --resume {run_dir})"


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:300]}" if text else type(err).__name__


def lost_processes() -> list[int]:
    """One round of the liveness barrier: the processes the coordination service has declared
    lost since the last round ([] if none), the same list on every survivor; [0] if the service
    itself no longer answers (process 0 hosts it). Blocks until every live process asks."""
    import jax
    from jax.experimental import multihost_utils

    try:
        with multihost_utils.live_devices(jax.devices()):
            pass
    except multihost_utils.ProcessFailureError as err:
        return sorted({d.process_index for d in err.failed_devices})
    except Exception:  # noqa: BLE001 - an RPC error: the coordinator (process 0) is unreachable
        return [0]
    return []


class Watchdog:
    """The daemon thread that runs liveness rounds (`lost_processes`) every `interval` seconds
    and, on a loss, prints the error line and ends this process (`_report`). Once `finishing`
    (the run is over, the processes are leaving), a loss is what it waits for: `gone` is set."""

    def __init__(self, interval: float = 1.0):
        self.interval, self.finishing, self.gone = interval, False, threading.Event()
        self.thread: Optional[threading.Thread] = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="process-watchdog", daemon=True)
        self.thread.start()

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _run(self) -> None:
        while True:
            lost = lost_processes()
            if lost and self.finishing:
                self.gone.set()
                return
            if lost:
                _report(lost)
            time.sleep(self.interval)


_watchdog = Watchdog()


def _report(lost: list[int]) -> None:
    """One error line naming the lost processes; then leave (process 0 after the others)."""
    import jax

    hint = f"; {_resume_hint}" if _resume_hint else ""
    names = f"process{'es' * (len(lost) > 1)} {', '.join(map(str, lost))}"
    print(f"error: process {jax.process_index()}: lost {names} of {jax.process_count()} "
          f"({'the coordinator; ' * (0 in lost)}killed, crashed or unreachable); stopping{hint}",
          file=sys.stderr, flush=True)
    leave(1, wait=heartbeat_seconds())


def leave(code: int, wait: float = 60.0) -> None:
    """Exit with `code`, without the runtime's shutdown barrier: processes other than 0
    disconnect and go; process 0 (the service's host) first waits up to `wait` seconds for the
    others to disconnect (the watchdog's next round sees them gone)."""
    import jax

    _watchdog.finishing = True
    try:
        if jax.process_index() != 0:
            jax.distributed.shutdown()
        elif threading.current_thread() is _watchdog.thread:  # reporting a loss: one more round here
            waiter = threading.Thread(target=lost_processes, daemon=True)
            waiter.start()
            waiter.join(wait)
        elif _watchdog.running:
            _watchdog.gone.wait(wait)
    except Exception:  # noqa: BLE001 - leaving anyway
        pass
    exit_now(code)


def exit_on_failure(err: BaseException) -> None:
    """A multi-process run raised `err` on this process. A failed collective or barrier (a peer
    is gone) waits for the watchdog, which names the lost process and exits; any other error is
    this process's own: its traceback and one `error:` line, exit 1 (the others will then see
    this process lost)."""
    import jax

    if isinstance(err, jax.errors.JaxRuntimeError) or RUNTIME_FAILURE.search(str(err)):
        time.sleep(2 * heartbeat_seconds() + 10)  # the watchdog ends the process meanwhile
    traceback.print_exception(err)
    hint = f"; {_resume_hint}" if _resume_hint else ""
    print(f"error: process {jax.process_index()}: {first_line(err)}; stopping{hint}", file=sys.stderr, flush=True)
    exit_now(1)


def finish() -> None:
    """End a multi-process run that completed: meet at a barrier (a process lost now is reported
    like any other), then leave in order (exit status 0)."""
    from jax.experimental import multihost_utils

    try:
        multihost_utils.sync_global_devices("mjx_smfp:finished")
        _watchdog.finishing = True  # on every process before any disconnects (the next barrier)
        multihost_utils.sync_global_devices("mjx_smfp:leaving")
    except Exception as err:  # noqa: BLE001 - a peer lost at the very end
        _watchdog.finishing = False
        exit_on_failure(err)
    leave(0)


class SharedStop(StopFlag):
    """The stop flag of a multi-process run: SIGTERM or Ctrl-C on any process stops all of them
    together (the runner agrees on `requested` after every host call, and saves collectively).
    With trained progress unsaved it acts as StopFlag: one shared checkpoint after the current
    call. With nothing new to save, StopFlag exits at once, which would leave the others to report
    this process lost; here that stop is shared as well, and only when no agreement ends the run
    within GRACE_S seconds (a warm-up or a compilation in progress) does this process leave
    alone, with status 128 + signal number (the others then name it lost)."""

    def __call__(self, signum=signal.SIGTERM, frame=None):
        with self._lock:
            shared = not self.requested and not self.unsaved
            if shared:
                self.signal_time, self.requested = time.time(), True
        if not shared:
            return super().__call__(signum, frame)
        self._say(f"{signal.Signals(signum).name}: stopping every process at the end of this host call "
                  f"(nothing new to save; alone after {GRACE_S:.0f} s if they cannot agree by then)")
        timer = threading.Timer(GRACE_S, self._leave_unless_saving, args=(signum,))
        timer.daemon = True
        timer.start()

    def _leave_unless_saving(self, signum: int) -> None:
        if not self.unsaved:  # progress made since: the agreed stop saves it, do not cut it off
            leave(128 + signum)
