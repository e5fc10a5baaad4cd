"""Run logging: TensorBoard (tensorboardX), a JSONL and a long-format CSV of the same scalars."""
from __future__ import annotations

import csv
import json
import math
import os
import time


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
