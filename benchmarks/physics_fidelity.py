"""Physics presets: how far `--physics` (default `gpu`) is from Gymnasium, and how much faster it steps.

Per task, fidelity: `--states` states of Gymnasium's own MuJoCo v5 env stepped once in our env, as the
parity tests do (envs/parity.py): obs error ||obs_ours - obs_gym|| / ||obs_gym||, reward error
|r_ours - r_gym| / mean |r_gym| (median, max) and the share of agreeing terminations; speed:
benchmarks/harness/timer.py's `raw_stepping` under `gymnasium` and `--physics` at each `--envs` batch size.
`--returns TASKS` (an open-loop gait) and `--policies RUN_DIR,...` (a trained run's deterministic
policy, every seed) compare returns under both presets from the same start states.
Prints a markdown table; writes physics_fidelity.{csv,json} (with the machine) to `--out`.

    python -m benchmarks.physics_fidelity --tasks humanoid,hopper --envs 128,1024
"""
from __future__ import annotations

import argparse
import dataclasses
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
    transitions = parity.collect(name, envs.make(name), n_states=n_states, seed=seed)
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
    """Joint j follows 0.8 sin(2 pi t / 25 + 2 pi j / n): a crude gait through most of each range."""
    phase = 2 * np.pi * np.arange(action_size) / action_size
    return 0.8 * np.sin(2 * np.pi * t / 25 + phase)


def _check_compared(physics: str) -> None:
    if physics not in COMPARED:
        raise ValueError(f"physics {physics!r}: compare one of {COMPARED} with the reference 'gymnasium'")


def returns(name: str, physics: str, episodes: int, horizon: int) -> dict:
    """Mean and std return of `open_loop_action` over `episodes` episodes of up to `horizon` steps from
    Gymnasium's reset states (seeds 0..episodes-1): in Gymnasium itself, and in ours under `gymnasium`
    and under `physics` from the same start states."""
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


def _mjx_returns(env, qpos, qvel, horizon: int) -> np.ndarray:
    """Per-episode returns of `open_loop_action` in our env from (qpos, qvel), summed until termination."""
    actions = jnp.asarray(np.stack([open_loop_action(t, env.action_size) for t in range(horizon)]), "float32")

    def episode(qpos, qvel):
        data = env.state_from_qpos_qvel(qpos, qvel)
        state = env.reset(jax.random.PRNGKey(0)).replace(pipeline_state=data, obs=env.observation(data))

        def body(carry, action):
            state, alive, total = carry
            state = env.step(state, action)
            return (state, alive * (1.0 - state.done), total + alive * state.reward), None

        return jax.lax.scan(body, (state, 1.0, 0.0), actions)[0][2]

    return np.asarray(jax.jit(jax.vmap(episode))(qpos, qvel))


def policy_returns(run_dir: str, physics: str, episodes: int) -> dict:
    """Per-seed mean deterministic return of `run_dir`'s latest policy (`launch.evaluate.load`) under
    `gymnasium` and under `physics` with the same evaluation key (hence start states), and the
    relative difference physics/gymnasium - 1 per seed."""
    _check_compared(physics)
    from launch import evaluate as evaluate_cli
    from mjx_smfp import config as config_lib
    from mjx_smfp.engine import Engine

    with open(os.path.join(run_dir, "config.json")) as f:
        cfg, agent_cfg = config_lib.from_dict(json.load(f))
    single = dataclasses.replace(cfg, eval_episodes=episodes, num_devices=1, num_seeds=1)
    engines = {p: Engine(dataclasses.replace(single, physics=p), agent_cfg) for p in ("gymnasium", physics)}
    out = dict(task=cfg.env, agent=cfg.agent, run_dir=run_dir, seeds=cfg.num_seeds, episodes=episodes,
               physics=physics, gymnasium_return=[], **{f"{physics}_return": []})
    for seed in range(cfg.num_seeds):
        _, policy = evaluate_cli.load(run_dir, episodes, seed=seed)
        out["env_steps"] = policy.env_steps
        for preset, engine in engines.items():
            seed_returns, _ = engine.evaluate(evaluate_cli.evaluation_state(policy), jax.random.PRNGKey(seed))
            out[f"{preset}_return"].append(float(np.mean(seed_returns)))
    difference = np.array(out[f"{physics}_return"]) / np.array(out["gymnasium_return"]) - 1
    out.update(difference=difference.tolist(), difference_mean=float(np.mean(difference)),
               difference_max_abs=float(np.max(np.abs(difference))))
    return out


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
            cells += ([f"{r[f'gymnasium_steps_per_s_{n}']:,.0f}", f"{r[f'steps_per_s_{n}']:,.0f}",
                       f"{r[f'speedup_{n}']:.1f}x"] if f"speedup_{n}" in r else ["—"] * 3)  # "—": not measured
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default=",".join(ALL_TASKS), help="comma-separated task names")
    parser.add_argument("--physics", default="gpu", choices=COMPARED,
                        help="preset compared against 'gymnasium' (the reference itself is no comparison)")
    parser.add_argument("--envs", default="128,1024", help="batch sizes for the speed measurement ('': skip it)")
    parser.add_argument("--steps", type=int, default=5, help="env steps per timed scan")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs (median kept) after a warm-up")
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
    for name, given, compare in (
            ("physics_returns", args.returns, lambda t: returns(t, args.physics, args.episodes, args.horizon)),
            ("physics_policy_returns", args.policies, lambda d: policy_returns(d, args.physics, args.episodes))):
        comparisons = [compare(x) for x in given.split(",") if x]
        for c in comparisons:
            print(json.dumps(c), flush=True)
        if comparisons:
            write_rows(os.path.join(args.out, name), comparisons, machine=machine, args=vars(args))
    rows = []
    for name in [t for t in args.tasks.split(",") if t]:
        t0 = time.time()
        env, reference = envs.make(name, physics=args.physics), envs.make(name)
        row = dict(task=name, physics=args.physics, options=describe(env.physics), **fidelity(name, args.physics, args.states))
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
