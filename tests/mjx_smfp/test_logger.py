"""mjx_smfp/logger.py: the per-seed scalar names the runner writes are the ones the readers
(launch.plot) find, and nothing else matches."""
import math

from mjx_smfp.logger import seed_indices, seed_scalars


def test_seed_indices_reads_back_what_seed_scalars_writes_and_ignores_other_tags():
    record = {**seed_scalars("eval/return_mean", [1.0, float("nan"), 3.0] + [0.0] * 8),
              "eval/return_mean_x/seed_4": 1.0, "eval/return_mean/seed_x": 1.0}
    assert seed_indices(record, "eval/return_mean") == list(range(11))  # seed_sd and look-alikes are not seeds
    assert record["eval/return_mean"] == 4.0 / 10 and math.isfinite(record["eval/return_mean/seed_sd"])
    assert seed_indices(seed_scalars("eval/return_mean", 2.5), "eval/return_mean") == []  # a single run
