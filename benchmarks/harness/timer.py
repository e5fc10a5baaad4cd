"""The one timer of every speed figure: compile first (timed apart), then the median of timed calls,
several programs timed in interleaved rounds (A B A B ...) so that a slow phase of a shared machine
hits each alike. Training speed is read off the library's loop (`runner.run`, its per-call
`perf/*` scalars), never from a loop of our own."""
from __future__ import annotations

import statistics
import tempfile
import time
from typing import Any, Callable


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


def train_speed(engine, calls: int, **run_kwargs) -> dict:
    """Env-steps/s and updates/s of the compiled loop (all seeds counted): the median over `calls`
    train calls of `runner.run` after a first one, with its warm-up and train-call compile seconds."""
    from mjx_smfp.runner import Schedule, run

    cfg, capture = engine.cfg, Capture()
    steps = engine.warmup_steps + (calls + 1) * cfg.iterations_per_call * cfg.num_envs
    with tempfile.TemporaryDirectory() as run_dir:
        run(engine, run_dir, schedule=Schedule(steps), logger=capture, verbose=False, **run_kwargs)
    per_call = [r for r in capture.rows if "perf/env_steps_per_s" in r][1:]
    return {"env_steps_per_s": statistics.median(r["perf/env_steps_per_s"] for r in per_call),
            "updates_per_s": statistics.median(r["perf/updates_per_s"] for r in per_call),
            "compile_s": next(r["perf/compile_seconds"] for r in capture.rows if "perf/compile_seconds" in r),
            "warmup_s": next(r["perf/warmup_seconds"] for r in capture.rows if "perf/warmup_seconds" in r)}
