"""What SIGINT and SIGTERM do during a run: `StopFlag`, installed by the runner (mjx_smfp/runner.py)
and by launch.train before it builds the engine, answers a signal within seconds, even during an XLA
compilation or a long device call."""
from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
from typing import Optional


def exit_now(code: int) -> None:
    """Flush what was printed and end the process at once, from any thread (no cleanup: used
    only when nothing is left to save)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


class StopFlag:
    """What SIGINT and SIGTERM do during a run (Ctrl-C, `kill`, `timeout`, a SLURM preemption,
    which sends SIGKILL 30 s after SIGTERM by default). One line says what happens:

    * nothing new to save (`unsaved` false: warm-up of random actions, a resume, compiling or
      running the first train call, right after a checkpoint): exit at once with status
      128 + signal number, writing nothing (a checkpoint of warm-up data would be pointless);
    * trained progress not yet checkpointed (`unsaved` true, set by the runner after each
      train call and cleared by each save): `requested` is set; the runner saves after the
      current host call (kept short by launch.train: CALL_SECONDS) and returns (status 0 from launch.train);
    * a second Ctrl-C aborts at once without saving (status 130); a second SIGTERM is ignored.

    Why a watcher thread: Python runs a signal handler only when the main thread gets back to
    bytecode, not during an XLA compilation or a long device call. With `signal.set_wakeup_fd`
    the C-level handler writes the signal number to a socket the moment the signal arrives; a
    daemon thread reading it acts at once. The Python-level handler does nothing (installing it
    replaces the default actions). `exit(code)` must not return: `os._exit` by default (it works
    from the watcher thread); tests calling the flag in-process pass `sys.exit`.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, exit=exit_now, verbose: bool = True):
        self.requested = False
        self.unsaved = False
        self.signal_time: Optional[float] = None  # time.time() of the first signal
        self.verbose = verbose
        self._exit = exit
        self._previous: dict = {}
        self._previous_wakeup_fd: Optional[int] = None
        self._sockets: tuple = ()
        self._watcher: Optional[threading.Thread] = None
        self._lock = threading.Lock()

    def _say(self, msg: str) -> None:
        if self.verbose:
            print(f"\n[train] {msg}", flush=True)

    def __call__(self, signum=signal.SIGTERM, frame=None):
        """Act on one signal (from the watcher thread, or called directly)."""
        name = signal.Signals(signum).name
        with self._lock:
            self.signal_time = self.signal_time or time.time()
            if self.requested:
                if signum == signal.SIGINT:
                    self._say(f"{name} again: aborting without saving")
                    return self._exit(128 + signum)
                self._say(f"{name}: already stopping; exiting once the checkpoint is written")
                return
            if not self.unsaved:
                self._say(f"{name}: nothing new to save since the last checkpoint: exiting")
                return self._exit(128 + signum)
            self.requested = True
            self._say(f"{name}: saving a checkpoint after this host call (seconds), then exiting "
                      "(Ctrl-C again to abort without saving)")

    def _watch(self, receive: socket.socket) -> None:
        while True:
            try:
                data = receive.recv(64)
            except OSError:
                return
            if not data:
                return
            for signum in data:
                if signum in self.SIGNALS:
                    self(signum)

    def install(self):
        """Take over SIGINT/SIGTERM (main thread only; elsewhere the flag is only set by calls)."""
        if self._sockets or threading.current_thread() is not threading.main_thread():
            return self  # installed already (launch.train installs it before building the engine)
        receive, send = socket.socketpair()
        send.setblocking(False)
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, lambda signum, frame: None)
        self._previous_wakeup_fd = signal.set_wakeup_fd(send.fileno(), warn_on_full_buffer=False)
        self._sockets = (receive, send)
        self._watcher = threading.Thread(target=self._watch, args=(receive,), name="stop-signal-watcher",
                                         daemon=True)
        self._watcher.start()
        return self

    def uninstall(self):
        if self._previous_wakeup_fd is not None:
            signal.set_wakeup_fd(self._previous_wakeup_fd)
            self._previous_wakeup_fd = None
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}
        if self._sockets:
            receive, send = self._sockets
            send.close()  # the watcher reads end-of-file and returns
            self._watcher.join(timeout=5)
            receive.close()
            self._sockets = ()
