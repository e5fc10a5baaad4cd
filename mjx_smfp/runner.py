"""Room 3 of the engine: the host runner, the one training loop of the project. It drives a
compiled `Engine` (mjx_smfp/engine.py) and owns what happens between device calls: resume or
init, the schedule of evaluations and checkpoints, logging, the progress line with its ETA, stop
signals and the non-finite stop. Experiments watch it through `on_eval` (brax's `progress_fn`)
and a logger; none drives the engine itself.

The schedule (`Schedule`) ends a run at a number of env steps or of run-clock seconds, and spaces
evaluations and checkpoints in either unit. The run clock (`RunClock`) counts building, compiling,
warm-up and training, not evaluation or checkpoint saves; each checkpoint notes it
(mjx_smfp/rundir.py), so a resumed run carries it over and the restart's own cost (restore,
recompile, a refill) is not counted.

Several seeds (`cfg.num_seeds > 1`): the summary and the evaluation hold one value per seed;
each scalar is logged per seed (`train/episode_return/seed_0`, ...), as the across-seed mean
under its plain name (`train/episode_return`, `eval/return_mean`) and as the across-seed s.d.
(`.../seed_sd`); `perf/env_steps_per_s` counts every seed's steps. A non-finite loss in ANY
seed stops the whole run naming the seed(s): freezing one seed while the others go on would
leave a table silently averaged over the survivors, and the same config would fail again.
"""
from __future__ import annotations

import math
import os
import time
from typing import Callable, Optional

import jax
import numpy as np

from mjx_smfp import distributed, rundir
from mjx_smfp.engine import Engine
from mjx_smfp.logger import seed_scalars
from mjx_smfp.schedule import TRAIN_AT_EVAL, Evaluation, RunClock, Schedule  # noqa: F401 - run()'s arguments
from mjx_smfp.steps import TrainState
from mjx_smfp.stop import StopFlag

# Target wall time of one train call (host call). A stop signal with trained progress unsaved is
# answered after the current call, then a checkpoint is written; SLURM sends SIGKILL 30 s after
# SIGTERM by default, so calls must stay well under that (`next_call_iterations`).
CALL_SECONDS = 5.0


class NonFiniteError(RuntimeError):
    """A loss or metric became NaN/inf; the message names the last good checkpoint."""


def evaluate(engine: Engine, ts: TrainState, key: jax.Array) -> dict:
    """Everything an evaluation measures (Engine.evaluation: the deterministic episodes' "return",
    "return_std", "length", forward velocity, the stochastic policy's return, the diagnostics on
    the held-out states), as name -> value per seed (num_seeds,)."""
    return {k: np.asarray(v, np.float64).reshape(engine.num_seeds) for k, v in engine.evaluation(ts, key).items()}


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


def _crossed(before: float, after: float, interval: float) -> bool:
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


class HostLoop:
    """One call of `run`: the engine, where the run saves, its schedule, clock and stop flag, and
    what it logs and prints. Its methods are the loop's steps: start, warm up, train, save, stop."""

    def __init__(self, engine: Engine, run_dir: str, schedule: Schedule, clock: RunClock, stop: StopFlag,
                 logger, on_eval, verbose: bool):
        from mjx_smfp import checkpoint as ckpt_lib

        self.engine, self.cfg, self.run_dir, self.schedule, self.clock = engine, engine.cfg, run_dir, schedule, clock
        self.is_main = jax.process_index() == 0
        self.verbose = verbose and self.is_main
        os.makedirs(run_dir, exist_ok=True)
        self.checkpointer = ckpt_lib.Checkpointer(os.path.join(run_dir, "checkpoints"),
                                                  max_to_keep=self.cfg.keep_checkpoints)
        self.own_logger, self.logger = logger is None, logger  # our own one opens in `start`
        if self.is_main:
            rundir.write_config(run_dir, self.cfg, engine.agent.config)
        self.stop = stop
        stop.verbose, stop.unsaved = stop.verbose and self.verbose, False  # nothing to save until a call ends
        stop.install()
        self.skip = () if self.cfg.checkpoint_replay else ("replay",)  # the ring restores empty, refilled
        self.on_eval, self.eval_key = on_eval, engine.eval_key(self.cfg.seed)
        self.last_eval, self.train_return, self.evaluated = math.nan, (math.nan, math.nan), False
        self.last_print, self.said_call_size = 0.0, False

    def say(self, msg: str) -> None:
        if self.verbose:
            print(f"[train] {msg}", flush=True)

    def close(self) -> None:
        self.stop.uninstall()
        if self.own_logger and self.logger is not None:
            self.logger.close()
        self.checkpointer.close()

    def open_logger(self) -> None:
        """Our own logger, opened once the state is there: a resume refused on the way (no intact
        checkpoint, another topology) leaves no TensorBoard writer to complain at exit."""
        from mjx_smfp.logger import Logger

        if self.logger is None:
            self.logger = Logger(self.run_dir) if self.is_main else _NullLogger()

    def evaluate(self, ts: TrainState, final: bool = False, summary: Optional[dict] = None) -> dict:
        """Evaluate every seed off the clock, tell `on_eval`; the logged scalars. The last call's
        `summary` adds its TRAIN_AT_EVAL metrics (`train_<name>`), so an evaluation point says what
        the temperature and each actor term were doing then."""
        steps = count(ts.env_steps)
        seconds = self.clock()
        with self.clock.paused():
            scalars = evaluate(self.engine, ts, jax.random.fold_in(self.eval_key, steps))
        scalars.update({f"train_{k}": np.asarray(summary[k], np.float64).reshape(self.engine.num_seeds)
                        for k in TRAIN_AT_EVAL if k in (summary or {})})
        result = Evaluation(steps, count(ts.updates), seconds, scalars, final)
        self.last_eval, self.evaluated = float(np.mean(scalars["return"])), True
        if self.on_eval is not None:
            self.on_eval(result)
        return result.logged()

    def save(self, ts: TrainState) -> None:
        """A checkpoint of the state (the replay ring only with checkpoint_replay), off the clock; the
        clock at this state beside it; and (process 0) the small policy file (one per seed)."""
        from mjx_smfp import policy_file

        steps, seconds = count(ts.env_steps), self.clock()
        if self.checkpointer.latest_step() == steps:
            return
        with self.clock.paused():
            self.checkpointer.save(steps, ts, self.skip)
            if self.is_main:
                rundir.save_clock(self.run_dir, steps, seconds, self.checkpointer.all_steps())
                where = os.path.join(self.run_dir, policy_file.DIRECTORY)
                for k in range(self.engine.num_seeds):
                    one = self.engine.seed_state(ts, k)
                    policy_file.save(where if self.engine.num_seeds == 1 else os.path.join(where, f"seed_{k}"),
                                     self.engine.agent, one.agent, one.normalizer, self.cfg, steps)
        self.stop.unsaved = False

    def start(self, resume: bool, on_resume) -> TrainState:
        """Restore (off the clock: restore, refill, recompile) or init, warm up, compile."""
        if not (resume and self.checkpointer.latest_step() is not None):
            self.open_logger()
            ts = self.warm_up(self.engine.init_state(), evaluate=self.schedule.eval_every > 0)
            self.compile(ts)
            return ts
        t = time.perf_counter()
        self.engine.check_fits()
        ts, _ = self.checkpointer.restore_intact(self.engine.abstract_state(), skip=self.skip)  # newest intact
        self.open_logger()
        steps = count(ts.env_steps)
        self.clock.set(rundir.clock_at(self.run_dir, steps))
        self.say(f"resumed from {self.checkpointer.latest_path()} at env step {steps:,}"
                 + ("" if self.cfg.checkpoint_replay else "; checkpoint_replay=false: the replay ring is refilled "
                    "by a warm-up"))
        with self.clock.paused():
            ts = self.warm_up(ts, evaluate=False)  # a refill: the policy was evaluated before the checkpoint
            self.compile(ts)
        if on_resume is not None:
            on_resume({"at_env_steps": steps, "at_wall_s": round(self.clock(), 3),
                       "overhead_s": round(time.perf_counter() - t, 1)})
        return ts

    def warm_up(self, ts: TrainState, evaluate: bool) -> TrainState:
        """Random actions until learning starts (or to refill a ring not checkpointed); with
        `evaluate`, a first evaluation of the untrained policy."""
        if count(ts.env_steps) >= self.engine.warmup_steps and count(ts.replay.size) > 0:
            return ts
        self.say(f"warm-up: {self.engine.warmup_steps:,} env steps of random actions (the first call compiles; "
                 "minutes on a CPU)")
        t0 = time.time()
        ts, summary = self.engine.warmup(ts)
        summary = jax.device_get(summary)
        scalars = {**summary_scalars(summary), "perf/warmup_seconds": time.time() - t0, "perf/run_clock_s": self.clock()}
        if evaluate:
            scalars.update(self.evaluate(ts))
        self.say(f"warm-up done in {time.time() - t0:.0f} s (eval return {self.last_eval:.2f}); compiling the "
                 "training step")
        self.logger.write(count(summary["env_steps"]), scalars)
        return ts

    def compile(self, ts: TrainState) -> None:
        """Compile the train call (and the evaluation, off the clock) now, while there is nothing to
        save: compiled later, either would hold a stop signal back while trained progress waits."""
        if self.schedule.eval_every > 0 and not self.evaluated:  # else the warm-up's evaluation compiled it
            with self.clock.paused():
                self.engine.compile_evaluate(ts)
        t = time.time()
        self.engine.compile_train(ts)
        self.logger.write(count(ts.env_steps), {"perf/compile_seconds": time.time() - t})

    def ended(self, steps: int, last_call_s: Optional[float]) -> bool:
        """Whether the schedule ends here: its env steps reached, or its clock would pass its end."""
        return steps >= self.schedule.env_steps or self.clock() + (last_call_s or 0.0) > self.schedule.seconds

    def mark(self, steps: int) -> float:
        return steps if self.schedule.unit == "env_steps" else self.clock()

    def train(self, ts: TrainState, max_calls: Optional[int], call_seconds: Optional[float]) -> TrainState:
        """Host calls until the schedule ends, `max_calls` are made or a stop is requested; then a
        checkpoint (unless this state is saved already)."""
        steps, calls = count(ts.env_steps), 0
        iterations = limit = self.cfg.iterations_per_call
        self.counts, self.since = (steps, count(ts.updates)), (steps, time.time())
        ended = self.ended(steps, None)  # decided once per call, so the call that ends the run is the one evaluated
        while not ended and (max_calls is None or calls < max_calls):
            mark, n = self.mark(steps), min(iterations, -(-(self.schedule.env_steps - steps) // self.cfg.num_envs))
            t0 = time.time()
            ts, summary = self.engine.train_chunk(ts, n)
            summary = jax.device_get(summary)
            last_call_s, calls = time.time() - t0, calls + 1
            self.check_finite(summary, steps)
            self.stop.unsaved = True  # from here a stop signal saves this state before exiting
            if call_seconds is not None:
                iterations = self.resize(n, last_call_s, limit, call_seconds)
            steps = count(summary["env_steps"])
            ended = self.ended(steps, last_call_s)
            self.log_call(ts, summary, last_call_s, mark, ended)
            if _crossed(mark, self.mark(steps), self.schedule.checkpoint_every):
                self.save(ts)
            iterations, stop_now = distributed.agree(iterations, self.stop.requested)
            if stop_now:  # last: a signal during this call still saves
                self.stopped(ts)
                return ts
        self.save(ts)
        return ts

    def check_finite(self, summary: dict, before: int) -> None:
        finite = np.asarray(summary["all_finite"])
        if not finite.all():
            which = f" in seed(s) {np.flatnonzero(~finite).tolist()} of {self.engine.num_seeds}" if finite.ndim else ""
            raise NonFiniteError(f"non-finite loss/metric{which} between env steps {before} and "
                                 f"{count(summary['env_steps'])}; last good checkpoint: "
                                 f"{self.checkpointer.latest_path() or 'none saved yet'}")

    def resize(self, n: int, seconds: float, limit: int, call_seconds: float) -> int:
        iterations = next_call_iterations(n, seconds, limit, call_seconds)
        if iterations < limit and not self.said_call_size:
            self.said_call_size = True
            self.say(f"host calls of about {iterations} iterations (~{call_seconds:.0f} s, at most {limit}) "
                     "so that a stop signal is answered within seconds")
        return iterations

    def log_call(self, ts: TrainState, summary: dict, seconds: float, mark: float, ended: bool) -> None:
        """Log one call's summary and speed, evaluating when the schedule says; print progress."""
        (steps_before, updates_before), self.counts = self.counts, (count(summary["env_steps"]), count(summary["updates"]))
        steps, updates = self.counts
        scalars = {**summary_scalars(summary), "perf/run_clock_s": self.clock(),
                   "perf/env_steps_per_s": (steps - steps_before) * self.engine.num_seeds / seconds,
                   "perf/updates_per_s": (updates - updates_before) * self.engine.num_seeds / seconds}
        if math.isfinite(scalars.get("train/episode_return", math.nan)):
            self.train_return = (scalars["train/episode_return"], scalars["train/episode_length"])
        due = _crossed(mark, self.mark(steps), self.schedule.eval_every) or (ended and self.schedule.eval_every > 0)
        if due and not self.stop.requested:  # a stop skips it: the save comes first
            scalars.update(self.evaluate(ts, final=ended, summary=summary))
        self.logger.write(steps, scalars)
        if self.verbose and (time.time() - self.last_print > 5.0 or ended or self.stop.requested):
            self.last_print = time.time()
            self.say(self.progress(steps, scalars))

    def progress(self, steps: int, scalars: dict) -> str:
        """The progress line: steps, speed, ETA, the training return and the last evaluation."""
        start_steps, t_start = self.since
        rate = (steps - start_steps) / max(time.time() - t_start, 1e-9)
        eta = min((self.schedule.env_steps - steps) / rate if rate > 0 else math.inf,
                  self.schedule.seconds - self.clock())
        seeds, total, mean = ((f" x {self.engine.num_seeds} seeds", " (all seeds)", " (means over seeds)")
                              if self.engine.num_seeds > 1 else ("", "", ""))
        clock = (f" | clock {self.clock():,.0f}/{self.schedule.seconds:,.0f} s" if math.isfinite(self.schedule.seconds)
                 else "")
        evaluated = f"{self.last_eval:.2f}" if math.isfinite(self.last_eval) else "none yet in this process"
        ret, length = self.train_return
        return (f"steps {steps:,}/{self.schedule.env_steps:,}{seeds}{clock} | {scalars['perf/env_steps_per_s']:,.0f} "
                f"env-steps/s{total} | {scalars['perf/updates_per_s']:,.0f} updates/s | ETA {format_eta(eta)} | "
                f"train return{mean} {ret:.2f} (length {length:.0f}) | eval return {evaluated}")

    def stopped(self, ts: TrainState) -> None:
        """On a stop request after a completed call: checkpoint (unless just saved) and say where."""
        self.save(ts)
        waited = f" ({time.time() - self.stop.signal_time:.1f} s after the signal)" if self.stop.signal_time else ""
        self.say(f"stopped; checkpoint saved to {self.checkpointer.latest_path()}{waited} (run the same command "
                 "with its resume option to continue; launch.train: --resume RUN_DIR)")


def run(engine: Engine, run_dir: str, *, schedule: Optional[Schedule] = None, clock: Optional[RunClock] = None,
        resume: bool = False, stop: Optional[StopFlag] = None, logger=None,
        on_eval: Optional[Callable[[Evaluation], None]] = None, on_resume: Optional[Callable[[dict], None]] = None,
        max_calls: Optional[int] = None, verbose: bool = True, call_seconds: Optional[float] = None) -> TrainState:
    """Train by `schedule` (default: the engine's config, `Schedule.of`), or for `max_calls` host
    calls, logging, evaluating and checkpointing into `run_dir`; with `resume`, continue from its
    latest checkpoint with the run clock it had there. `clock`: the run clock (default: one started
    now; pass one started earlier to count the engine's build). `on_eval(Evaluation)` after each
    evaluation; `on_resume({"at_env_steps", "at_wall_s", "overhead_s"})` once a resume is ready.

    Host calls: `iterations_per_call` iterations each (a schedule that does not depend on the
    machine's speed), or with `call_seconds` (launch.train passes CALL_SECONDS) the first that many
    and each next one as many as take about `call_seconds` by the last call's speed, so that a stop
    signal is answered within seconds on a slow machine too (StopFlag: exit at once with nothing
    new to save, else checkpoint after the current call and return).

    Returns the final train state. Raises NonFiniteError if a loss goes non-finite.
    Multi-host: every process runs this (checkpoint saves are collective); only process 0 writes
    config.json and logs, and prints.
    """
    loop = HostLoop(engine, run_dir, schedule or Schedule.of(engine), clock or RunClock(), stop or StopFlag(),
                    logger, on_eval, verbose)
    try:
        return loop.train(loop.start(resume, on_resume), max_calls, call_seconds)
    finally:
        loop.close()
