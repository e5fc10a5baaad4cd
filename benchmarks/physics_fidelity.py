"""Physics presets: how far `gpu` physics is from Gymnasium, and how much faster it steps.

For each task:

* fidelity: `--states` states reached by random actions in Gymnasium's own MuJoCo v5 env
  (float64, Gymnasium physics; Humanoid* get Newton 50 as our `gymnasium` preset, MJX having
  no PGS) are put into our MJX env built with `--physics` (default `gpu`) and stepped once with
  the same action, as the parity tests do (envs/parity.py). Reported per transition:
  obs error ||obs_ours - obs_gym|| / ||obs_gym|| and reward error |r_ours - r_gym| / mean|r_gym|
  (the task's reward scale, so near-zero rewards do not blow up), median and max over the
  states, plus the fraction of states whose termination agrees.
* speed: raw stepping (benchmarks/harness/timer.py `raw_stepping`: `vmap(env.step)` of the bare task in one
  jitted `lax.scan` of `--steps` steps under uniform random actions, compile excluded) at each
  `--envs` batch size, for the `gymnasium` preset and `--physics`; the median of `--repeats` timed
  runs after a warm-up.

* trained policy (`--policies RUN_DIR,...`): the deterministic return of a trained run's policy
  (every seed of a `--num_seeds` run; its latest policy file, else checkpoint) evaluated under
  `gymnasium` physics and under `--physics`, the same episodes (evaluation keys, hence start
  states) in both; the difference per seed is what switching the physics would change.

Prints a markdown table; writes `physics_fidelity.{csv,json}` (with the machine) to `--out`.

    python -m benchmarks.physics_fidelity --tasks humanoid,hopper --envs 128,1024
"""
from __future__ import annotations

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

import envs
from benchmarks import machine as machine_lib
from benchmarks.harness.outputs import write_rows
from benchmarks.harness.timer import raw_stepping
from envs import parity
from mjx_smfp.config import PHYSICS

ALL_TASKS = list(parity.GYMNASIUM_IDS)
COMPARED = [p for p in PHYSICS if p != "gymnasium"]  # presets compared with the reference `gymnasium`


def fidelity(name: str, physics: str, n_states: int, seed: int = 0) -> dict:
    """One-step deviation of our env under `physics` from Gymnasium's MuJoCo env."""
    reference = envs.make(name)  # Gymnasium's physics, applied to the Gymnasium env's model
    transitions = parity.collect(name, reference, n_states=n_states, seed=seed)
    ours = parity.step_ours(envs.make(name, physics=physics), transitions)
    obs_err = np.linalg.norm(ours.obs - transitions.obs, axis=1) / np.maximum(
        np.linalg.norm(transitions.obs, axis=1), 1e-12)
    reward_scale = max(float(np.mean(np.abs(transitions.reward))), 1e-12)
    reward_err = np.abs(ours.reward - transitions.reward) / reward_scale
    return dict(obs_err_median=float(np.median(obs_err)), obs_err_max=float(np.max(obs_err)),
                reward_err_median=float(np.median(reward_err)), reward_err_max=float(np.max(reward_err)),
                termination_agrees=float(np.mean((ours.done > 0) == transitions.terminated)))


def describe(options) -> str:
    """Short text of a PhysicsOptions for the table."""
    parts = [f"{options.solver} {options.iterations}/{options.ls_iterations}", options.integrator or "xml-integrator"]
    if not options.self_collisions:
        parts.append("no self-collisions")
    if options.max_contact_points is not None:
        parts.append(f"max {options.max_contact_points} contacts")
    return ", ".join(parts)


def open_loop_action(t, action_size: int):
    """The fixed policy of the return comparison: joint j follows 0.8 sin(2 pi t / 25 + 2 pi j / n),
    a crude gait that moves every actuator through most of its range."""
    phase = 2 * np.pi * np.arange(action_size) / action_size
    return 0.8 * np.sin(2 * np.pi * t / 25 + phase)


def _check_compared(physics: str) -> None:
    """`physics` must be a preset other than the reference `gymnasium` (itself is no comparison)."""
    if physics not in COMPARED:
        raise ValueError(f"physics {physics!r}: compare one of {COMPARED} with the reference 'gymnasium'")


def returns(name: str, physics: str, episodes: int, horizon: int) -> dict:
    """Mean (and std) return of `open_loop_action` over `episodes` episodes of up to `horizon`
    steps from Gymnasium's reset states (seeds 0..episodes-1): in Gymnasium itself (MuJoCo,
    float64), in ours with `gymnasium` physics and in ours with `physics` (same start states)."""
    _check_compared(physics)
    gym_env = parity.make_gymnasium(name, envs.make(name))
    starts, gym_returns = [], []
    for seed in range(episodes):
        gym_env.reset(seed=seed)
        starts.append((gym_env.data.qpos.copy(), gym_env.data.qvel.copy()))
        total = 0.0
        for t in range(horizon):
            _, reward, terminated, _, _ = gym_env.step(parity.scale_action(gym_env, open_loop_action(t, gym_env.model.nu)))
            total += reward
            if terminated:
                break
        gym_returns.append(total)
    qpos, qvel = (np.array(x, np.float32) for x in zip(*starts))
    out = dict(task=name, episodes=episodes, horizon=horizon,
               gymnasium_mujoco_return=float(np.mean(gym_returns)), gymnasium_mujoco_std=float(np.std(gym_returns)))
    for label, preset in (("ours_gymnasium", "gymnasium"), (f"ours_{physics}", physics)):
        ours = _mjx_returns(envs.make(name, physics=preset), qpos, qvel, horizon)
        out[label + "_return"], out[label + "_std"] = float(np.mean(ours)), float(np.std(ours))
        out[label + "_vs_mujoco"] = out[label + "_return"] / out["gymnasium_mujoco_return"] - 1
    return out


def policy_returns(run_dir: str, physics: str, episodes: int) -> dict:
    """Per-seed mean deterministic return of `run_dir`'s latest policy (`launch.evaluate.load`)
    under `gymnasium` physics and under `physics`, with the same evaluation key (hence the same
    start states) for both, and the relative difference physics/gymnasium - 1 per seed."""
    _check_compared(physics)
    import dataclasses

    from launch import evaluate as evaluate_cli
    from mjx_smfp import config as config_lib
    from mjx_smfp.engine import Engine

    with open(os.path.join(run_dir, "config.json")) as f:
        cfg, agent_cfg = config_lib.from_dict(json.load(f))
    seeds = cfg.num_seeds
    single = dataclasses.replace(cfg, eval_episodes=episodes, num_devices=1, num_seeds=1)
    engines = {preset: Engine(dataclasses.replace(single, physics=preset), agent_cfg)
               for preset in ("gymnasium", physics)}
    out = dict(task=cfg.env, agent=cfg.agent, run_dir=run_dir, seeds=seeds, episodes=episodes, physics=physics,
               gymnasium_return=[], **{f"{physics}_return": []})
    for seed in range(seeds):
        _, policy = evaluate_cli.load(run_dir, episodes, seed=seed)
        out["env_steps"] = policy.env_steps
        for preset, engine in engines.items():
            returns, _ = engine.evaluate(evaluate_cli.evaluation_state(policy), jax.random.PRNGKey(seed))
            out[f"{preset}_return"].append(float(np.mean(returns)))
    difference = np.array(out[f"{physics}_return"]) / np.array(out["gymnasium_return"]) - 1
    out.update(difference=difference.tolist(), difference_mean=float(np.mean(difference)),
               difference_max_abs=float(np.max(np.abs(difference))))
    return out


def _mjx_returns(env, qpos, qvel, horizon: int) -> np.ndarray:
    """Per-episode returns of `open_loop_action` in our env (summed until termination)."""
    actions = jnp.asarray(np.stack([open_loop_action(t, env.action_size) for t in range(horizon)]), "float32")

    def episode(qpos, qvel):
        data = env.state_from_qpos_qvel(qpos, qvel)
        state = brax_state(env, data)

        def body(carry, action):
            state, alive, total = carry
            state = env.step(state, action)
            total = total + alive * state.reward
            return (state, alive * (1.0 - state.done), total), None

        (_, _, total), _ = jax.lax.scan(body, (state, 1.0, 0.0), actions)
        return total

    return np.asarray(jax.jit(jax.vmap(episode))(qpos, qvel))


def brax_state(env, data):
    """A brax State around `data` (what `env.reset` returns, at a given start state)."""
    from brax.envs.base import State
    zero = jnp.zeros(())
    metrics = jax.eval_shape(env.reset, jax.random.PRNGKey(0)).metrics
    return State(data, env.observation(data), zero, zero, {k: zero for k in metrics}, {})


def markdown(rows: list[dict], env_counts: list[int]) -> str:
    header = ["task", "physics", "obs err median", "obs err max", "reward err median", "reward err max",
              "termination agrees"]
    for n in env_counts:
        header += [f"gymnasium steps/s @{n}", f"{rows[0]['physics']} steps/s @{n}", f"speed-up @{n}"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [r["task"], r["options"], f"{r['obs_err_median']:.1e}", f"{r['obs_err_max']:.1e}",
                 f"{r['reward_err_median']:.1e}", f"{r['reward_err_max']:.1e}", f"{r['termination_agrees']:.0%}"]
        for n in env_counts:
            if f"speedup_{n}" not in r:  # speed not measured for this task
                cells += ["—"] * 3
                continue
            cells += [f"{r[f'gymnasium_steps_per_s_{n}']:,.0f}", f"{r[f'steps_per_s_{n}']:,.0f}",
                      f"{r[f'speedup_{n}']:.1f}x"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default=",".join(ALL_TASKS), help="comma-separated task names")
    parser.add_argument("--physics", default="gpu", choices=COMPARED,
                        help="preset compared against 'gymnasium' (the reference itself is no comparison)")
    parser.add_argument("--envs", default="128,1024", help="batch sizes for the speed measurement ('': skip it)")
    parser.add_argument("--steps", type=int, default=5, help="env steps per timed scan")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs (best kept) after a warm-up")
    parser.add_argument("--states", type=int, default=64, help="Gymnasium states for the fidelity check")
    parser.add_argument("--returns", default="", help="tasks for the open-loop return comparison (none: skip)")
    parser.add_argument("--policies", default="", help="trained run directories for the policy-return comparison")
    parser.add_argument("--episodes", type=int, default=32)
    parser.add_argument("--horizon", type=int, default=1000)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = parser.parse_args()
    from mjx_smfp import compile_cache

    compile_cache.configure()  # XLA:CPU flags (and $JAX_COMPILATION_CACHE_DIR) before any computation
    env_counts = [int(n) for n in args.envs.split(",") if n]  # none: fidelity only

    machine = machine_lib.describe()
    for name, given, compare in (("physics_returns", args.returns, lambda t: returns(t, args.physics, args.episodes,
                                                                                      args.horizon)),
                                 ("physics_policy_returns", args.policies,
                                  lambda d: policy_returns(d, args.physics, args.episodes))):
        comparisons = [compare(x) for x in given.split(",") if x]
        for c in comparisons:
            print(json.dumps(c), flush=True)
        if comparisons:
            write_rows(os.path.join(args.out, name), comparisons, machine=machine, args=vars(args))
    rows = []
    for name in [t for t in args.tasks.split(",") if t]:
        t0 = time.time()
        env = envs.make(name, physics=args.physics)
        row = dict(task=name, physics=args.physics, options=describe(env.physics), **fidelity(name, args.physics, args.states))
        reference = envs.make(name)
        for n in env_counts:
            row[f"gymnasium_steps_per_s_{n}"] = raw_stepping(reference, n, args.steps, args.repeats)["raw_steps_per_s"]
            row[f"steps_per_s_{n}"] = raw_stepping(env, n, args.steps, args.repeats)["raw_steps_per_s"]
            row[f"speedup_{n}"] = row[f"steps_per_s_{n}"] / row[f"gymnasium_steps_per_s_{n}"]
        rows.append(row)
        print(json.dumps(row), f"({time.time() - t0:.0f} s)", flush=True)
        write_rows(os.path.join(args.out, "physics_fidelity"), rows,  # after every task: a cut-short run keeps them
                   machine=dict(machine, load_average_end=os.getloadavg()), args=vars(args))
    if rows:
        print(markdown(rows, env_counts))
    print("machine:", machine)


if __name__ == "__main__":
    main()
