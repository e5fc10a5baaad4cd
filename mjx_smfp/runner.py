"""Room 3 of the engine: the host runner. It drives a compiled `Engine` (mjx_smfp/engine.py)
and owns everything that happens between device calls: resume or init, the evaluation and
checkpoint schedule, logging, the progress line with its ETA, stop signals and the
non-finite stop. It touches the train state only through the Engine's phases, `jax.device_get`
of the small per-call summary, and the checkpointer.

Several seeds (`cfg.num_seeds > 1`): the summary and the evaluation hold one value per seed;
each scalar is logged per seed (`train/episode_return/seed_0`, ...), as the across-seed mean
under its plain name (`train/episode_return`, `eval/return_mean`) and as the across-seed s.d.
(`.../seed_sd`); `perf/env_steps_per_s` counts every seed's steps. A non-finite loss in ANY
seed stops the whole run naming the seed(s): freezing one seed while the others go on would
leave a table silently averaged over the survivors, and the same config would fail again.
"""
from __future__ import annotations

import json
import math
import os
import signal
import socket
import sys
import threading
import time
from typing import Optional

import jax
import numpy as np

from mjx_smfp.engine import Engine
from mjx_smfp.logger import seed_scalars
from mjx_smfp.steps import TrainState


class NonFiniteError(RuntimeError):
    """A loss or metric became NaN/inf; the message names the last good checkpoint."""


# Target wall time of one train call (host call). A stop signal with trained progress unsaved is
# answered after the current call, then a checkpoint is written; SLURM sends SIGKILL 30 s after
# SIGTERM by default, so calls must stay well under that (mjx_smfp/runner.py `next_call_iterations`).
CALL_SECONDS = 5.0


def _exit_now(code: int) -> None:
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

    def __init__(self, exit=_exit_now, verbose: bool = True):
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


def next_call_iterations(iterations: int, seconds: float, limit: int, target: float = CALL_SECONDS) -> int:
    """Iterations for the next train call, from the last one (`iterations` in `seconds` of
    device time), so that it takes about `target` seconds: at least 1, at most `limit`
    (`iterations_per_call`) and at most twice the last (one fast outlier cannot make the next
    call long). Changing the count costs nothing: the engine compiled one program for all."""
    if seconds <= 0:
        return min(limit, 2 * iterations)
    return max(1, min(limit, 2 * iterations, int(target * iterations / seconds)))


def format_eta(seconds: float) -> str:
    """h:mm:ss for a progress line ("?" while unknown)."""
    if not math.isfinite(seconds):
        return "?"
    seconds = max(0, int(seconds))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _crossed(before: int, after: int, interval: int) -> bool:
    return interval > 0 and after // interval > before // interval


class _NullLogger:
    """The logger of processes other than 0 in a multi-host run: writes nothing."""

    def write(self, step, scalars):
        pass

    def close(self):
        pass


def summary_scalars(summary: dict, prefix: str = "train/") -> dict:
    """The logged scalars of a (host) phase summary, per seed where it has a seed axis."""
    out = {}
    for k, v in summary.items():
        if k not in ("env_steps", "updates", "all_finite"):
            out.update(seed_scalars(prefix + k, v))
    return out


def count(x) -> int:
    """A step counter of the state or summary as an int (per-seed counters are all equal)."""
    return int(x) if np.ndim(x) == 0 else int(np.max(np.asarray(x)))


def _evaluate(engine: Engine, ts: TrainState, eval_rng: jax.Array, steps: int) -> dict:
    """`eval/<name>` scalars (per seed) of everything `Engine.evaluation` reports."""
    out = {}
    for name, value in engine.evaluation(ts, jax.random.fold_in(eval_rng, steps)).items():
        out.update(seed_scalars(f"eval/{name}", value))
    return out


def run(engine: Engine, run_dir: str, *, resume: bool = False, stop: Optional[StopFlag] = None,
        logger=None, max_calls: Optional[int] = None, verbose: bool = True,
        call_seconds: Optional[float] = None) -> TrainState:
    """Train to `total_env_steps` (or `max_calls` host calls), logging, evaluating and
    checkpointing into `run_dir`; with `resume`, continue from its latest checkpoint.

    Host calls: `iterations_per_call` iterations each (a schedule that does not depend on the
    machine's speed), or with `call_seconds` (launch.train passes CALL_SECONDS) the first that
    many (it also compiles) and each next one as many as take about `call_seconds` of device
    time by the last call's speed (at most `iterations_per_call`), so that a stop signal is
    answered within seconds on a slow machine too. Stop signals: StopFlag (exit at once with nothing new to save, else
    checkpoint after the current call and return).

    Returns the final train state. Raises NonFiniteError if a loss goes non-finite.
    Multi-host: every process runs this (checkpoint saves are collective); only process 0
    writes config.json and logs, and prints.
    """
    from mjx_smfp import checkpoint as ckpt_lib
    from mjx_smfp import config as config_lib
    from mjx_smfp import policy_file
    from mjx_smfp.logger import Logger

    cfg = engine.cfg
    is_main = jax.process_index() == 0
    verbose = verbose and is_main
    say = (lambda msg: print(f"[train] {msg}", flush=True)) if verbose else (lambda msg: None)  # noqa: E731
    os.makedirs(run_dir, exist_ok=True)
    checkpointer = ckpt_lib.Checkpointer(os.path.join(run_dir, "checkpoints"), max_to_keep=cfg.keep_checkpoints)
    own_logger = logger is None
    if is_main:
        with open(os.path.join(run_dir, "config.json"), "w") as f:
            json.dump(config_lib.to_dict(cfg, engine.agent.config), f, indent=2)
    stop = stop or StopFlag()
    stop.verbose, stop.unsaved = stop.verbose and verbose, False  # nothing to save until a train call ends
    stop.install()

    skip = () if cfg.checkpoint_replay else ("replay",)  # the ring restores empty and is refilled

    def save(steps: int, ts: TrainState) -> None:
        """A checkpoint of the state (the replay ring only with checkpoint_replay), and (process 0)
        the small policy file beside it (several seeds: one per seed, in `policy/seed_<k>/`)."""
        checkpointer.save(steps, ts, skip)
        if is_main:
            where = os.path.join(run_dir, policy_file.DIRECTORY)
            for k in range(engine.num_seeds):
                one = engine.seed_state(ts, k)
                policy_file.save(where if engine.num_seeds == 1 else os.path.join(where, f"seed_{k}"), engine.agent,
                                 one.agent, one.normalizer, cfg, steps)
        stop.unsaved = False

    if resume and checkpointer.latest_step() is not None:
        engine.check_fits()
        ts, _ = checkpointer.restore_intact(engine.abstract_state(), skip=skip)  # newest intact one
        say(f"resumed from {checkpointer.latest_path()} at env step {count(ts.env_steps):,}"
            + ("" if cfg.checkpoint_replay else "; checkpoint_replay=false: the replay ring is refilled by a warm-up"))
    else:
        ts = engine.init_state()
    # Opened once the state is there: a resume refused above leaves no TensorBoard writer to close at exit.
    logger = logger or (Logger(run_dir) if is_main else _NullLogger())
    eval_rng = jax.random.PRNGKey(cfg.seed + 1_000_003)
    last_eval = float("nan")

    def agree(iterations: int) -> tuple[int, bool]:
        """(next call's iterations, stop now?), the same on every process: a multi-host run's
        calls hold collectives and its saves are collective, so process 0's call size and a
        stop requested on any process hold for all (one tiny all-gather a call)."""
        if jax.process_count() == 1:
            return iterations, stop.requested
        from jax.experimental import multihost_utils

        agreed = np.asarray(multihost_utils.process_allgather(np.array([iterations, stop.requested], np.int32)))
        return int(agreed[0, 0]), bool(agreed[:, 1].any())

    def stopped(steps: int, ts: TrainState, stop_now: bool) -> bool:
        """After a completed call: on a stop request, checkpoint (unless just saved) and say where."""
        if not stop_now:
            return False
        if checkpointer.latest_step() != steps:
            save(steps, ts)
        waited = f" ({time.time() - stop.signal_time:.1f} s after the signal)" if stop.signal_time else ""
        say(f"stopped; checkpoint saved to {checkpointer.latest_path()}{waited} (continue: python -m "
            f"launch.train --resume {run_dir})")
        return True

    try:
        evaluator_ready = False
        if count(ts.env_steps) < engine.warmup_steps or count(ts.replay.size) == 0:
            say(f"warm-up: {engine.warmup_steps:,} env steps of random actions (the first call compiles; "
                "minutes on a CPU)")
            t0 = time.time()
            ts, summary = engine.warmup(ts)
            summary = jax.device_get(summary)
            scalars = summary_scalars(summary)
            scalars["perf/warmup_seconds"] = time.time() - t0
            if cfg.eval_interval > 0:  # a first point on the curve: the untrained policy
                scalars.update(_evaluate(engine, ts, eval_rng, count(summary["env_steps"])))
                last_eval, evaluator_ready = scalars["eval/return_mean"], True
            say(f"warm-up done in {time.time() - t0:.0f} s (eval return {last_eval:.2f}); compiling the "
                "training step")
            logger.write(count(summary["env_steps"]), scalars)
        if not evaluator_ready:
            # Compiled now, while there is nothing to save: compiled at the first (or the final)
            # evaluation it would hold a stop signal back for as long as it takes.
            engine.compile_evaluate(ts)
        steps, updates = count(ts.env_steps), count(ts.updates)
        start_steps, t_start, calls = steps, time.time(), 0
        last_print, train_return, train_length = 0.0, float("nan"), float("nan")
        limit = iterations = cfg.iterations_per_call
        said_call_size = False
        while steps < engine.final_env_steps and (max_calls is None or calls < max_calls):
            remaining = -(-(engine.final_env_steps - steps) // cfg.num_envs)
            n = min(iterations, remaining)
            t0 = time.time()
            ts, summary = engine.train_chunk(ts, n)
            t1 = time.time()  # the first call compiled before it dispatched; the device runs after
            summary = jax.device_get(summary)
            dt = time.time() - t0
            calls += 1
            prev_steps, steps = steps, count(summary["env_steps"])
            prev_updates, updates = updates, count(summary["updates"])
            finite = np.asarray(summary["all_finite"])
            if not finite.all():
                good = checkpointer.latest_path()
                which = f" in seed(s) {np.flatnonzero(~finite).tolist()} of {engine.num_seeds}" if finite.ndim else ""
                raise NonFiniteError(
                    f"non-finite loss/metric{which} between env steps {prev_steps} and {steps}; "
                    f"last good checkpoint: {good or 'none saved yet'}")
            stop.unsaved = True  # from here a stop signal saves this state before exiting
            if call_seconds is not None:
                iterations = next_call_iterations(n, time.time() - t1 if calls == 1 else dt, limit, call_seconds)
                if iterations < limit and not said_call_size:
                    said_call_size = True
                    say(f"host calls of about {iterations} iterations (~{call_seconds:.0f} s, at most {limit}) "
                        "so that a stop signal is answered within seconds")
            scalars = summary_scalars(summary)
            scalars["perf/env_steps_per_s"] = (steps - prev_steps) * engine.num_seeds / dt
            scalars["perf/updates_per_s"] = (updates - prev_updates) * engine.num_seeds / dt
            if math.isfinite(scalars["train/episode_return"]):
                train_return, train_length = scalars["train/episode_return"], scalars["train/episode_length"]
            evaluate_now = _crossed(prev_steps, steps, cfg.eval_interval) or steps >= engine.final_env_steps
            if evaluate_now and not stop.requested:  # a stop skips it: the save comes first
                scalars.update(_evaluate(engine, ts, eval_rng, steps))
                last_eval = scalars["eval/return_mean"]
            logger.write(steps, scalars)
            if _crossed(prev_steps, steps, cfg.checkpoint_interval):
                save(steps, ts)
            if verbose and (time.time() - last_print > 5.0 or steps >= engine.final_env_steps or stop.requested):
                last_print = time.time()
                rate = (steps - start_steps) / max(time.time() - t_start, 1e-9)
                eta = (engine.final_env_steps - steps) / rate if rate > 0 else float("inf")
                first = " (first call: includes compilation)" if calls == 1 else ""
                seeds, total, mean = ((f" x {engine.num_seeds} seeds", " (all seeds)", " (means over seeds)")
                                      if engine.num_seeds > 1 else ("", "", ""))
                evaluated = f"{last_eval:.2f}" if math.isfinite(last_eval) else "none yet in this process"
                say(f"steps {steps:,}/{engine.final_env_steps:,}{seeds} | {scalars['perf/env_steps_per_s']:,.0f} "
                    f"env-steps/s{total} | {scalars['perf/updates_per_s']:,.0f} updates/s | ETA {format_eta(eta)} | "
                    f"train return{mean} {train_return:.2f} (length {train_length:.0f}) | eval return {evaluated}{first}")
            iterations, stop_now = agree(iterations)
            if stopped(steps, ts, stop_now):  # last: a signal during this call still saves
                break
        else:
            if checkpointer.latest_step() != steps:
                save(steps, ts)
    finally:
        stop.uninstall()
        if own_logger:
            logger.close()
        checkpointer.close()
    return ts
