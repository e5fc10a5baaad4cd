"""The one timer of every speed figure: compile first (timed apart), then the median of timed calls,
several programs timed in interleaved rounds (A B A B ...) so that a slow phase of a shared machine
hits each alike. Training speed is read off the library's loop (`runner.run`, its per-call
`perf/*` scalars), never from a loop of our own."""
from __future__ import annotations

import math
import statistics
import tempfile
import time
from typing import Any, Callable

import numpy as np


def compile_seconds(fn, *args) -> tuple[Any, float]:
    """(the compiled program, seconds to lower and compile it) of the jitted `fn` at `args`."""
    import jax

    t = time.perf_counter()
    compiled = jax.jit(fn).lower(*args).compile()
    return compiled, time.perf_counter() - t


def time_calls(calls: dict[str, Callable[[], Any]], rounds: int = 3) -> dict[str, float]:
    """Median seconds per call of each of `calls` over `rounds` interleaved rounds, after one
    untimed call each (compiling or warming up); every result is blocked on."""
    import jax

    for fn in calls.values():
        jax.block_until_ready(fn())
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            t = time.perf_counter()
            jax.block_until_ready(fn())
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(t) for name, t in times.items()}


class Capture:
    """A logger that keeps what the runner writes (brax's `progress_fn`): one dict per write."""

    def __init__(self, on_write: Callable[[int, dict], None] | None = None):
        self.rows: list[dict] = []
        self.on_write = on_write

    def write(self, step: int, scalars: dict) -> None:
        self.rows.append({"step": step, **scalars})
        if self.on_write is not None:
            self.on_write(step, scalars)

    def close(self) -> None:
        pass


def train_speed(engine, calls: int, target: float | None = None, budget_s: float = math.inf,
                run_dir: str | None = None, **run_kwargs) -> dict:
    """Env-steps/s and updates/s of the compiled loop (all seeds counted): the median over `calls`
    train calls of `runner.run` after a first one, with its warm-up and train-call compile seconds.
    With `target`, it trains on, evaluating after every call, until the deterministic evaluation
    return reaches `target` (after those calls) or `budget_s` seconds of training have passed:
    `time_to_target_s` is the run clock at the first evaluation that reached it, less warm-up and
    compile (None: not reached), and `best_eval_return` the best evaluation. `run_dir`: where it
    checkpoints (processes of one run share it; default a temporary folder)."""
    from mjx_smfp.runner import Schedule, StopFlag, run

    cfg, capture, got = engine.cfg, Capture(), {}
    chunk = cfg.iterations_per_call * cfg.num_envs
    schedule = Schedule(engine.warmup_steps + (calls + 1) * chunk)
    if target is not None:
        stop, got = StopFlag(verbose=False), {"time_to_target_s": None, "best_eval_return": -math.inf}

        def on_eval(evaluation) -> None:
            spent = [r[k] for r in capture.rows for k in ("perf/warmup_seconds", "perf/compile_seconds") if k in r]
            if len(spent) < 2:
                return  # the untrained policy's evaluation after the warm-up
            trained, ret = evaluation.seconds - sum(spent), float(np.mean(evaluation.scalars["return"]))
            got["best_eval_return"] = max(got["best_eval_return"], ret)
            if ret >= target and got["time_to_target_s"] is None:
                got["time_to_target_s"] = trained
            timed = sum("perf/env_steps_per_s" in r for r in capture.rows) >= calls  # this call's row comes next
            stop.requested = timed and (got["time_to_target_s"] is not None or trained > budget_s)

        schedule = Schedule(engine.warmup_steps + 2**50, eval_every=chunk)
        run_kwargs.update(stop=stop, on_eval=on_eval)
    with tempfile.TemporaryDirectory() as scratch:
        run(engine, run_dir or scratch, schedule=schedule, logger=capture, verbose=False, **run_kwargs)
    per_call = [r for r in capture.rows if "perf/env_steps_per_s" in r][1:]
    return {"env_steps_per_s": statistics.median(r["perf/env_steps_per_s"] for r in per_call),
            "updates_per_s": statistics.median(r["perf/updates_per_s"] for r in per_call),
            "compile_s": next(r["perf/compile_seconds"] for r in capture.rows if "perf/compile_seconds" in r),
            "warmup_s": next(r["perf/warmup_seconds"] for r in capture.rows if "perf/warmup_seconds" in r), **got}
