"""Run logging: TensorBoard (tensorboardX), a JSONL and a long-format CSV of the same scalars."""
from __future__ import annotations

import csv
import json
import math
import os
import time

import numpy as np


def seed_scalars(name: str, value) -> dict:
    """`{name: value}` for a single run; for a per-seed vector, `name/seed_k` per seed, the
    across-seed mean under `name` and the s.d. (ddof 1) under `name/seed_sd`, both over the
    seeds with a finite value (a seed may have finished no episode in a call)."""
    v = np.asarray(value, np.float64)
    if v.ndim == 0:
        return {name: float(v)}
    out = {f"{name}/seed_{k}": float(x) for k, x in enumerate(v)}
    finite = v[np.isfinite(v)]
    out[name] = float(finite.mean()) if finite.size else float("nan")
    out[name + "/seed_sd"] = float(finite.std(ddof=1)) if finite.size > 1 else float("nan")
    return out


def seed_indices(record: dict, name: str) -> list[int]:
    """The seeds k of the `name/seed_k` scalars in one logged record (sorted; [] for a single
    run): the reader's side of `seed_scalars`."""
    prefix = name + "/seed_"
    return sorted(int(k[len(prefix):]) for k in record if k.startswith(prefix) and k[len(prefix):].isdigit())


class Logger:
    """`write(step, {name: value})` -> TensorBoard + `metrics.jsonl` + `metrics.csv` in `run_dir`."""

    def __init__(self, run_dir: str, tensorboard: bool = True):
        os.makedirs(run_dir, exist_ok=True)
        self.run_dir = run_dir
        self._writer = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            self._writer = SummaryWriter(run_dir)
        self._jsonl = open(os.path.join(run_dir, "metrics.jsonl"), "a")
        csv_path = os.path.join(run_dir, "metrics.csv")
        new = not os.path.exists(csv_path) or os.path.getsize(csv_path) == 0
        self._csv_file = open(csv_path, "a", newline="")
        self._csv = csv.writer(self._csv_file)
        if new:
            self._csv.writerow(["step", "wall_time", "name", "value"])
        self._t0 = time.time()

    def write(self, step: int, scalars: dict) -> None:
        now = time.time()
        clean = {}
        for name, value in scalars.items():
            value = float(value)
            clean[name] = value if math.isfinite(value) else None
            if self._writer is not None and math.isfinite(value):
                self._writer.add_scalar(name, value, step, walltime=now)
            self._csv.writerow([step, f"{now - self._t0:.3f}", name, value])
        self._jsonl.write(json.dumps({"step": int(step), "wall_time": now - self._t0, **clean}) + "\n")
        self._jsonl.flush()
        self._csv_file.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._jsonl.close()
        self._csv_file.close()
