"""A run's schedule, its clock and its evaluations, as data: when a run ends, evaluates and saves
(`Schedule`), the run clock that excludes evaluation and saves (`RunClock`), and one evaluation of
every seed (`Evaluation`), what `runner.run` hands its `on_eval` callback."""
from __future__ import annotations

import contextlib
import dataclasses
import math
import time

from mjx_smfp.logger import seed_scalars

# How an evaluation's per-seed values are logged (other names go under eval/<name>).
EVAL_NAMES = {"return": "eval/return_mean", "return_std": "eval/return_std", "length": "eval/length_mean"}
# Training metrics of the last host call an evaluation carries as `train_<name>` (issue 34: the entropy
# estimate against its target, the temperature, the reward scale, the critic's clipped mass, each actor term).
TRAIN_AT_EVAL = ("entropy", "next_entropy", "entropy_target", "temperature", "reward_scale", "target_end_mass",
                 "q_policy", "entropy_term", "md_term", "meanflow_term", "kl")


@dataclasses.dataclass(frozen=True)
class Schedule:
    """When a run ends, evaluates and saves. It ends at `env_steps` per seed, or once its run clock
    would pass `seconds` (a train call is not started when the last one's duration would take the
    clock past it), whichever comes first. With `eval_every` > 0 it evaluates after the warm-up,
    each time the run crosses a multiple of `eval_every` and at the end; it checkpoints at each
    multiple of `checkpoint_every` (0: only at the end). Both intervals count `unit`: "env_steps"
    or "seconds" of run clock."""
    env_steps: int
    seconds: float = math.inf
    eval_every: float = 0
    checkpoint_every: float = 0
    unit: str = "env_steps"

    def __post_init__(self):
        if self.unit not in ("env_steps", "seconds"):
            raise ValueError(f"Schedule unit={self.unit!r}: env_steps or seconds")

    @classmethod
    def of(cls, engine) -> "Schedule":
        """The schedule of the engine's config: its total env steps, eval and checkpoint intervals."""
        return cls(engine.final_env_steps, eval_every=engine.cfg.eval_interval,
                   checkpoint_every=engine.cfg.checkpoint_interval)


class RunClock:
    """Seconds of run clock: wall time since it was made or `set`, less the stretches spent under
    `paused()` (evaluation, checkpoint saves; nested pauses count once)."""

    def __init__(self, seconds: float = 0.0):
        self._depth = 0
        self.set(seconds)

    def set(self, seconds: float) -> None:
        self._origin = time.perf_counter() - seconds

    def __call__(self) -> float:
        return time.perf_counter() - self._origin

    @contextlib.contextmanager
    def paused(self):
        start, self._depth = time.perf_counter(), self._depth + 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._origin += time.perf_counter() - start


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """One deterministic evaluation of every seed at `env_steps` per seed, `updates` and `seconds`
    of run clock; `scalars`: name -> one value per seed ("return", "return_std", "length", and any
    other scalar the engine measures); `final`: the evaluation at the end of the schedule."""
    env_steps: int
    updates: int
    seconds: float
    scalars: dict
    final: bool = False

    def points(self) -> list[dict]:
        """One curve point per seed: {wall_s, env_steps, updates, return, ...every other scalar}."""
        return [{"wall_s": round(self.seconds, 3), "env_steps": self.env_steps, "updates": self.updates,
                 **{name: float(v[k]) for name, v in self.scalars.items()}} for k in range(len(self.scalars["return"]))]

    def logged(self) -> dict:
        """The scalars as the logger writes them (per seed where there are several)."""
        out = {}
        for name, v in self.scalars.items():
            out.update(seed_scalars(EVAL_NAMES.get(name, f"eval/{name}"), v if len(v) > 1 else v[0]))
        return out
