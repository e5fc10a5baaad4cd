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
import time
from typing import Optional

import jax
import numpy as np

from mjx_smfp.engine import Engine
from mjx_smfp.logger import seed_scalars
from mjx_smfp.steps import TrainState


class NonFiniteError(RuntimeError):
    """A loss or metric became NaN/inf; the message names the last good checkpoint."""


class StopFlag:
    """SIGINT/SIGTERM handler: the first signal (Ctrl-C, `kill`, `timeout`, a SLURM preemption)
    asks the runner to checkpoint and stop after the current host call; a second Ctrl-C
    interrupts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False
        self._previous: dict = {}

    def __call__(self, signum=None, frame=None):
        if self.requested and signum != signal.SIGTERM:
            raise KeyboardInterrupt
        self.requested = True
        name = signal.Signals(signum).name if signum else "stop request"
        print(f"\n[train] {name}: saving a checkpoint after this host call (Ctrl-C again to abort)", flush=True)

    def install(self):
        for sig in self.SIGNALS:
            try:
                self._previous[sig] = signal.signal(sig, self)
            except ValueError:  # not in the main thread
                pass
        return self

    def uninstall(self):
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}


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
    returns, lengths = engine.evaluate(ts, jax.random.fold_in(eval_rng, steps))
    return {**seed_scalars("eval/return_mean", returns.mean(axis=-1)),
            **seed_scalars("eval/return_std", returns.std(axis=-1)),
            **seed_scalars("eval/length_mean", lengths.mean(axis=-1))}


def run(engine: Engine, run_dir: str, *, resume: bool = False, stop: Optional[StopFlag] = None,
        logger=None, max_calls: Optional[int] = None, verbose: bool = True) -> TrainState:
    """Train to `total_env_steps` (or `max_calls` host calls), logging, evaluating and
    checkpointing into `run_dir`; with `resume`, continue from its latest checkpoint.

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
    logger = logger or (Logger(run_dir) if is_main else _NullLogger())
    if is_main:
        with open(os.path.join(run_dir, "config.json"), "w") as f:
            json.dump(config_lib.to_dict(cfg, engine.agent.config), f, indent=2)
    stop = (stop or StopFlag()).install()

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

    if resume and checkpointer.latest_step() is not None:
        engine.check_fits()
        ts = checkpointer.restore(engine.abstract_state(), skip=skip)
        say(f"resumed from {checkpointer.latest_path()} at env step {count(ts.env_steps):,}"
            + ("" if cfg.checkpoint_replay else "; checkpoint_replay=false: the replay ring is refilled by a warm-up"))
    else:
        ts = engine.init_state()
    eval_rng = jax.random.PRNGKey(cfg.seed + 1_000_003)
    last_eval = float("nan")

    def stopped(steps: int, ts: TrainState) -> bool:
        """After a completed call: on a stop request, checkpoint (unless just saved) and say where."""
        if not stop.requested:
            return False
        if checkpointer.latest_step() != steps:
            save(steps, ts)
        say(f"stopped; checkpoint saved to {checkpointer.latest_path()} (continue: python -m "
            f"launch.train --resume {run_dir})")
        return True

    try:
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
                last_eval = scalars["eval/return_mean"]
            say(f"warm-up done in {time.time() - t0:.0f} s (eval return {last_eval:.2f}); compiling the "
                "training step")
            logger.write(count(summary["env_steps"]), scalars)
        steps, updates = count(ts.env_steps), count(ts.updates)
        if stopped(steps, ts):  # a signal during warm-up: save before compiling the training step
            return ts
        start_steps, t_start, calls = steps, time.time(), 0
        last_print, train_return, train_length = 0.0, float("nan"), float("nan")
        while steps < engine.final_env_steps and (max_calls is None or calls < max_calls):
            t0 = time.time()
            ts, summary = engine.train_chunk(ts)
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
            scalars = summary_scalars(summary)
            scalars["perf/env_steps_per_s"] = (steps - prev_steps) * engine.num_seeds / dt
            scalars["perf/updates_per_s"] = (updates - prev_updates) * engine.num_seeds / dt
            if math.isfinite(scalars["train/episode_return"]):
                train_return, train_length = scalars["train/episode_return"], scalars["train/episode_length"]
            if _crossed(prev_steps, steps, cfg.eval_interval) or steps >= engine.final_env_steps:
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
            if stopped(steps, ts):  # checked once, last: a signal that came during this call still saves
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
