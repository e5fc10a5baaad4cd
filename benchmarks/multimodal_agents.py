"""The 4-mode bandit, every agent trained the same way: the mass each puts on each optimal mode, its
mean reward, its own entropy estimate against the entropy of its actions, and a scatter of its actions.

    python -m benchmarks.multimodal_agents --agents sac,smfp,sacflow,dime,sacflow+entropy_estimator=marginal
        [--seeds 3] [--steps 8000] [--out DIR]
    python -m benchmarks.multimodal_agents --report     # agents.md again from agents.json

Each (agent, seed) trains through the library's loop with the `multimodal` task preset for `--steps`
env steps, then draws 4000 stochastic actions; an agent may carry options after a `+`. "Estimate" is
-E log pi as the agent computes it for its temperature and actor (SAC: exact; SMFP: its conditional
surrogate; SAC Flow: its path density or the marginal bound; DIME: its path-ratio bound); "k-NN" is a
Kozachenko-Leonenko estimate from the samples alone.
Writes benchmarks/results/multimodal_agents/agents.{csv,json,md,png} and notes how in manifest.json.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time

import numpy as np

from benchmarks import machine
from benchmarks.harness import outputs
from benchmarks.harness.cli import common_flags, split

OUT = os.path.join(outputs.RESULTS, "multimodal_agents")
# The table's cells over seeds: (name, the value of one run, decimals in agents.md).
COLUMNS = (("reward", lambda r: r["reward"], 2), ("top_mode_mass", lambda r: float(np.max(r["masses"])), 2),
           ("modes", lambda r: r["modes_over_10pct"], 1), ("entropy_estimate", lambda r: r["entropy_estimate"], 1),
           ("knn_entropy", lambda r: r["knn_entropy"], 1))


def knn_entropy(samples: np.ndarray, k: int = 3) -> float:
    """Kozachenko-Leonenko estimate of the differential entropy of `samples` [n, d] (nats):
    psi(n) - psi(k) + log V_d + d mean log eps_k, eps_k the distance to the k-th nearest neighbour."""
    x = np.asarray(samples, np.float64)
    n, d = x.shape
    sq = np.sum(x * x, axis=1)
    dist = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0))
    np.fill_diagonal(dist, np.inf)
    eps = np.partition(dist, k - 1, axis=1)[:, k - 1]
    log_unit_ball = 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1)
    return sum(1.0 / j for j in range(k, n)) + log_unit_ball + d * float(np.mean(np.log(eps)))


def label(spec: str) -> str:
    """"sacflow+entropy_estimator=marginal" -> "sacflow (entropy_estimator=marginal)"."""
    agent, *options = spec.split("+")
    return agent + (f" ({', '.join(options)})" if options else "")


def train_and_sample(spec: str, seed: int, steps: int, samples: int = 4000) -> dict:
    """Train the agent `spec` ("name" or "name+option=value+...") on the bandit and return its
    stochastic actions, mode masses, reward, own entropy estimate and the actions' k-NN entropy."""
    import jax
    import jax.numpy as jnp

    import envs
    from mjx_smfp import config as config_lib
    from mjx_smfp.engine import Engine
    from mjx_smfp.runner import run

    agent, *options = spec.split("+")
    cfg, agent_cfg = config_lib.build(dict(env="multimodal", env_kwargs='{"num_modes": 4}', agent=agent,
                                           preset="cpu", num_envs=16, total_env_steps=steps, batch_size=128,
                                           updates_per_step=4, normalize_obs=False, eval_interval=0, seed=seed,
                                           **dict(option.split("=", 1) for option in options)))
    engine = Engine(cfg, agent_cfg)
    t0 = time.time()
    with tempfile.TemporaryDirectory() as run_dir:
        ts = run(engine, run_dir, verbose=False)
    bandit = envs.make("multimodal", num_modes=4)
    # policy.sample: the action and the log pi the agent's temperature and actor use (SMFP: its surrogate)
    actions, logp = jax.jit(engine.agent.policy.sample)(
        ts.agent.actor_params, jnp.zeros((samples, bandit.observation_size)), jax.random.PRNGKey(seed + 11))
    masses = np.asarray(bandit.mode_masses(actions))
    return dict(agent=spec, seed=seed, seconds=time.time() - t0, actions=np.asarray(actions),
                entropy_estimate=-float(jnp.mean(logp)), knn_entropy=knn_entropy(np.asarray(actions)),
                masses=masses, reward=float(bandit.reward(actions).mean()), modes_over_10pct=int(np.sum(masses >= 0.10)))


def scatter(runs: list[dict], path: str, title: str) -> None:
    """One panel per agent (its first seed's actions) with the optimal modes marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import envs

    centres = envs.make("multimodal", num_modes=4).centres
    first = {}
    for r in runs:
        first.setdefault(r["agent"], r)
    fig, axes = plt.subplots(1, len(first), figsize=(4.2 * len(first), 4.4), sharex=True, sharey=True, squeeze=False)
    for ax, (agent, r) in zip(axes[0], first.items()):
        ax.scatter(r["actions"][:, 0], r["actions"][:, 1], s=2, alpha=0.3)
        ax.scatter(centres[:, 0], centres[:, 1], marker="x", c="red", s=80)
        masses = ", ".join(f"{m:.2f}" for m in r["masses"])
        ax.set_title(f"{label(agent)}: mass [{masses}]\nreward {r['reward']:.2f}", fontsize=9)
        ax.set(xlim=(-1, 1), ylim=(-1, 1), aspect="equal")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def table(runs: list[dict]) -> list[dict]:
    """Per agent, mean and s.d. over seeds (benchmarks/stats.py `summary`, ddof 1) of each of COLUMNS,
    from the per-seed runs, so that `--report` remakes it from agents.json."""
    from benchmarks import stats

    rows = []
    for agent in dict.fromkeys(r["agent"] for r in runs):
        mine = [r for r in runs if r["agent"] == agent]
        row = dict(agent=agent, seeds=len(mine), seconds_mean=float(np.mean([r["seconds"] for r in mine])))
        for name, value, _ in COLUMNS:
            summary = stats.summary([value(r) for r in mine])
            row.update({f"{name}_mean": summary["mean"], f"{name}_sd": summary["sd"]})
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| agent | seeds | mean reward | largest mode mass | modes with ≥ 10 % mass | entropy: own estimate "
             "(nats) | entropy: k-NN of actions (nats) | train s (CPU) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        cells = [label(r["agent"]), str(r["seeds"])] + [f"{r[f'{name}_mean']:.{d}f} ± {r[f'{name}_sd']:.{d}f}"
                                                         for name, _, d in COLUMNS]
        lines.append("| " + " | ".join(cells + [f"{r['seconds_mean']:.0f}"]) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_flags(parser)
    parser.add_argument("--steps", type=int, default=8000, help="env steps per run")
    parser.add_argument("--report", action="store_true", help="agents.md again from agents.json (no training)")
    args = parser.parse_args(argv)
    out = args.out or OUT
    stem = os.path.join(out, "agents")
    if args.report:
        rows = table(outputs.rundir.read_json(stem + ".json")["runs"])
    else:
        from mjx_smfp import compile_cache

        compile_cache.configure()  # XLA:CPU flags (and $JAX_COMPILATION_CACHE_DIR) before any computation
        runs = []
        for seed in range(args.seeds or 3):
            for agent in split(args.agents, ("sac", "smfp", "sacflow", "dime")):
                runs.append(r := train_and_sample(agent, seed, args.steps))
                print(f"[bandit] {agent} seed {seed}: reward {r['reward']:.3f}, masses {np.round(r['masses'], 2)}, "
                      f"entropy estimate {r['entropy_estimate']:.2f} vs k-NN {r['knn_entropy']:.2f}, "
                      f"{r['seconds']:.0f} s", flush=True)
        rows = table(runs)
        os.makedirs(out, exist_ok=True)
        scatter(runs, stem + ".png", f"4-mode bandit, {args.steps:,} env steps each, 4000 stochastic actions — "
                f"{machine.summary()}")
        outputs.write_rows(stem, rows, machine=machine.describe(), steps=args.steps,
                           runs=[{k: v for k, v in r.items() if k != "actions"} for r in runs])
        outputs.note_manifest(out, "agents", "python -m benchmarks.multimodal_agents " + " ".join(argv),
                              [f"agents.{e}" for e in ("json", "csv", "md", "png")],
                              regenerate="python -m benchmarks.multimodal_agents --report")
        print(markdown(rows), flush=True)
    with open(stem + ".md", "w") as f:
        f.write(markdown(rows))
    return rows


if __name__ == "__main__":
    main()
