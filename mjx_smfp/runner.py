"""Room 3 of the engine: the host runner. It drives a compiled `Engine` (mjx_smfp/engine.py)
and owns everything that happens between device calls: resume or init, the evaluation and
checkpoint schedule, logging, the progress line with its ETA, stop signals and the
non-finite stop. It touches the train state only through the Engine's phases, `jax.device_get`
of the small per-call summary, and the checkpointer.
"""
from __future__ import annotations

import json
import math
import os
import signal
import time
from typing import Optional

import jax

from mjx_smfp.engine import Engine
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


def _evaluate(engine: Engine, ts: TrainState, eval_rng: jax.Array, steps: int) -> dict:
    returns, lengths = engine.evaluate(ts, jax.random.fold_in(eval_rng, steps))
    return {"eval/return_mean": float(returns.mean()), "eval/return_std": float(returns.std()),
            "eval/length_mean": float(lengths.mean())}


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

    if resume and checkpointer.latest_step() is not None:
        engine.check_fits()
        ts = checkpointer.restore(engine.abstract_state())
        say(f"resumed from {checkpointer.latest_path()} at env step {int(ts.env_steps):,}")
    else:
        ts = engine.init_state()
    eval_rng = jax.random.PRNGKey(cfg.seed + 1_000_003)
    last_eval = float("nan")
    try:
        if int(ts.env_steps) < engine.warmup_steps:
            say(f"warm-up: {engine.warmup_steps:,} env steps of random actions (the first call compiles; "
                "minutes on a CPU)")
            t0 = time.time()
            ts, summary = engine.warmup(ts)
            summary = jax.device_get(summary)
            scalars = {"train/" + k: v for k, v in summary.items() if k != "env_steps"}
            scalars["perf/warmup_seconds"] = time.time() - t0
            if cfg.eval_interval > 0:  # a first point on the curve: the untrained policy
                scalars.update(_evaluate(engine, ts, eval_rng, int(summary["env_steps"])))
                last_eval = scalars["eval/return_mean"]
            say(f"warm-up done in {time.time() - t0:.0f} s (eval return {last_eval:.2f}); compiling the "
                "training step")
            logger.write(int(summary["env_steps"]), scalars)
        steps, updates = int(ts.env_steps), int(ts.updates)
        start_steps, t_start, calls = steps, time.time(), 0
        last_print, train_return, train_length = 0.0, float("nan"), float("nan")
        while steps < engine.final_env_steps and (max_calls is None or calls < max_calls):
            t0 = time.time()
            ts, summary = engine.train_chunk(ts)
            summary = jax.device_get(summary)
            dt = time.time() - t0
            calls += 1
            prev_steps, steps = steps, int(summary["env_steps"])
            prev_updates, updates = updates, int(summary["updates"])
            if not bool(summary["all_finite"]):
                good = checkpointer.latest_path()
                raise NonFiniteError(
                    f"non-finite loss/metric between env steps {prev_steps} and {steps}; "
                    f"last good checkpoint: {good or 'none saved yet'}")
            scalars = {"train/" + k: float(v) for k, v in summary.items()
                       if k not in ("env_steps", "updates", "all_finite")}
            scalars["perf/env_steps_per_s"] = (steps - prev_steps) / dt
            scalars["perf/updates_per_s"] = (updates - prev_updates) / dt
            if math.isfinite(scalars["train/episode_return"]):
                train_return, train_length = scalars["train/episode_return"], scalars["train/episode_length"]
            if _crossed(prev_steps, steps, cfg.eval_interval) or steps >= engine.final_env_steps:
                scalars.update(_evaluate(engine, ts, eval_rng, steps))
                last_eval = scalars["eval/return_mean"]
            logger.write(steps, scalars)
            if _crossed(prev_steps, steps, cfg.checkpoint_interval) or stop.requested:
                checkpointer.save(steps, ts)
            if verbose and (time.time() - last_print > 5.0 or steps >= engine.final_env_steps or stop.requested):
                last_print = time.time()
                rate = (steps - start_steps) / max(time.time() - t_start, 1e-9)
                eta = (engine.final_env_steps - steps) / rate if rate > 0 else float("inf")
                first = " (first call: includes compilation)" if calls == 1 else ""
                say(f"steps {steps:,}/{engine.final_env_steps:,} | {scalars['perf/env_steps_per_s']:,.0f} env-steps/s | "
                    f"{scalars['perf/updates_per_s']:,.0f} updates/s | ETA {format_eta(eta)} | train return "
                    f"{train_return:.2f} (length {train_length:.0f}) | eval return {last_eval:.2f}{first}")
            if stop.requested:
                say(f"stopped; checkpoint saved to {checkpointer.latest_path()}")
                break
        else:
            if checkpointer.latest_step() != steps:
                checkpointer.save(steps, ts)
    finally:
        stop.uninstall()
        if own_logger:
            logger.close()
        checkpointer.close()
    return ts
