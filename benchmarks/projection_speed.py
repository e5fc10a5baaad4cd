"""The C51 target projection, scatter-add vs the dense hat-kernel form, timed in one run (issue 34).

    python -m benchmarks.projection_speed [--batches 1024,8192] [--atoms 101] [--repeats 20]

Each form projects B x N shifted atoms (a real soft backup's shape: N next-state atoms per row)
onto the N-atom support, jitted, warm; the median of `--repeats` timed calls is reported with the
largest difference between the two results. Writes benchmarks/results/projection_speed.{csv,json}.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import jax.numpy as jnp

from benchmarks import machine, outputs

RESULTS_DIR = os.path.join(os.path.dirname(__file__), "results")


def time_call(fn, *args, repeats: int) -> float:
    """Median seconds of `fn(*args)` over `repeats` calls after one warm-up (compile) call."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def measure(batch: int, atoms: int, repeats: int) -> dict:
    from mjx_smfp import critic

    head = critic.ValueHead("c51", atoms, -10.0, 10.0)
    k1, k2 = jax.random.split(jax.random.PRNGKey(batch))
    shifted = 0.3 + 0.99 * head.support()[None] + 0.5 * jax.random.normal(k1, (batch, atoms))
    probs = jax.nn.softmax(jax.random.normal(k2, (batch, atoms)), axis=-1)
    scatter = jax.jit(lambda a, p: critic.categorical_projection(a, p, head))
    dense = jax.jit(lambda a, p: critic.categorical_projection_dense(a, p, head))
    row = {"batch": batch, "atoms": atoms,
           "scatter_ms": 1e3 * time_call(scatter, shifted, probs, repeats=repeats),
           "dense_ms": 1e3 * time_call(dense, shifted, probs, repeats=repeats),
           "max_abs_difference": float(jnp.max(jnp.abs(scatter(shifted, probs) - dense(shifted, probs))))}
    row["dense_over_scatter"] = row["dense_ms"] / row["scatter_ms"]
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", default="1024,8192")
    parser.add_argument("--atoms", type=int, default=101)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", default=os.path.join(RESULTS_DIR, "projection_speed"))
    args = parser.parse_args(argv)
    from mjx_smfp import compile_cache

    compile_cache.configure()
    rows = [measure(int(b), args.atoms, args.repeats) for b in args.batches.split(",")]
    for r in rows:
        print(f"batch {r['batch']:>6}: scatter {r['scatter_ms']:8.2f} ms | dense {r['dense_ms']:8.2f} ms | "
              f"dense/scatter {r['dense_over_scatter']:.1f}x | max |difference| {r['max_abs_difference']:.1e}")
    outputs.write_rows(args.out, rows, machine=machine.summary(), load1=round(os.getloadavg()[0], 2))
    return rows


if __name__ == "__main__":
    main()
