"""Evaluate a run's policy: `python -m launch.evaluate RUN_DIR [--episodes N] [--video out.mp4]
[--step K] [--gymnasium]`.

Runs N deterministic episodes (the policy's `eval_act`) on fresh MJX env copies and prints
mean ± s.d. of the return. The policy comes from RUN_DIR/policy/ (the small policy file
written with the latest checkpoint: no replay ring is restored) when present, else, and
with `--step`, from the full checkpoint. With `--gymnasium`, the same policy also runs in
Gymnasium's own MuJoCo v5 env on the CPU (launch/gymnasium_eval.py: real MuJoCo, the XML's
solver) and both returns are printed side by side, a sim-to-sim check.
With `--video`, renders one episode (Gymnasium's camera with `--gymnasium`, else MuJoCo's
offscreen renderer on the task's `mj_model`); where no GL backend is available it says so
(set MUJOCO_GL=egl or osmesa).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

import numpy as np


def load(run_dir: str, episodes: int | None = None, step: int | None = None, seed: int = 0):
    """(engine, `policy_file.Policy`): the run's policy file when present and no `step` is
    asked for, else the policy of the checkpoint at `step` (default latest); of a multi-seed run
    (`--num_seeds`), the policy of run `seed`, with a single-run engine to evaluate it."""
    from mjx_smfp import checkpoint as ckpt_lib
    from mjx_smfp import config as config_lib
    from mjx_smfp import policy_file
    from mjx_smfp.engine import Engine

    with open(os.path.join(run_dir, "config.json")) as f:
        cfg, agent_cfg = config_lib.from_dict(json.load(f))
    if episodes is not None:
        cfg = dataclasses.replace(cfg, eval_episodes=episodes)
    # The policy file holds one run's unsharded arrays: evaluate on one device, one seed.
    single = Engine(dataclasses.replace(cfg, num_devices=1, num_seeds=1), agent_cfg)
    where = run_dir if cfg.num_seeds == 1 else os.path.join(run_dir, policy_file.DIRECTORY, f"seed_{seed}")
    if step is None and policy_file.find(where):
        return single, policy_file.load(where)
    engine = Engine(cfg, agent_cfg)
    checkpointer = ckpt_lib.Checkpointer(os.path.join(run_dir, "checkpoints"))
    if checkpointer.latest_step() is None:
        raise FileNotFoundError(f"no checkpoint in {run_dir}/checkpoints")
    ts = engine.seed_state(checkpointer.restore(engine.abstract_state(), step), seed)
    checkpointer.close()
    if cfg.num_seeds > 1:
        engine = single
    return engine, policy_file.Policy(engine.agent, ts.agent, ts.normalizer, cfg, int(ts.env_steps))


def _num_seeds(run_dir: str) -> int:
    with open(os.path.join(run_dir, "config.json")) as f:
        return int(json.load(f)["train"].get("num_seeds", 1))


def evaluation_state(policy):
    """A TrainState holding only what `Engine.evaluate` reads: the agent state and normaliser."""
    from mjx_smfp.steps import TrainState

    return TrainState(agent=policy.agent_state, normalizer=policy.normalizer, replay=None, env_state=None,
                      rng=None, env_steps=policy.env_steps, updates=None, reward_scale=None, probe_obs=None)


def render_episode(engine, policy, path: str, seed: int = 0, width: int = 640, height: int = 480) -> tuple[int, str]:
    """Render one deterministic episode of `policy` in the MJX task to `path` (a GIF beside it
    if MP4 cannot be written); returns (number of frames, path written)."""
    import jax
    import jax.numpy as jnp
    import mujoco

    from launch.gymnasium_eval import write_video

    raw, cfg = engine.task, engine.cfg
    mj_model = getattr(raw, "mj_model", None)
    if mj_model is None:
        raise ValueError(f"env {cfg.env!r} has no mj_model to render")
    try:
        renderer = mujoco.Renderer(mj_model, height=height, width=width)
    except Exception as err:  # noqa: BLE001 - GL errors differ per backend
        raise RuntimeError(
            f"no OpenGL backend for offscreen rendering ({type(err).__name__}: {err}); "
            "set MUJOCO_GL=egl (GPU) or MUJOCO_GL=osmesa (CPU, needs libosmesa) and retry") from err

    reset, step = jax.jit(raw.reset), jax.jit(raw.step)
    state = reset(jax.random.PRNGKey(seed))
    data = mujoco.MjData(mj_model)
    frames = []
    for _ in range(cfg.episode_length):
        data.qpos[:] = np.asarray(state.pipeline_state.qpos)
        data.qvel[:] = np.asarray(state.pipeline_state.qvel)
        mujoco.mj_forward(mj_model, data)
        renderer.update_scene(data)
        frames.append(renderer.render().copy())
        state = step(state, jnp.asarray(policy(state.obs)))
        if float(state.done) > 0 or not bool(jnp.all(jnp.isfinite(state.obs))):
            break
    renderer.close()
    return len(frames), write_video(frames, path, int(round(1.0 / getattr(raw, "dt", 0.02))))


def main(argv: list[str] | None = None) -> tuple[float, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: the latest policy)")
    parser.add_argument("--seed", type=int, default=0,
                        help="the run to evaluate in a --num_seeds run (0..N-1), and the evaluation's RNG seed")
    parser.add_argument("--video", default=None, help="write one rendered episode here (e.g. out.mp4)")
    parser.add_argument("--gymnasium", action="store_true",
                        help="also run the policy in Gymnasium's own MuJoCo v5 env (CPU) and compare the returns")
    args = parser.parse_args(argv)
    from mjx_smfp import compile_cache

    compile_cache.configure()  # before any JAX computation: keeps warm cache loads silent
    import jax

    try:
        engine, policy = load(args.run_dir, args.episodes, args.step, args.seed if _num_seeds(args.run_dir) > 1 else 0)
    except ValueError as err:  # e.g. --seed outside a multi-seed run's seeds
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2)
    cfg = engine.cfg
    returns, lengths = engine.evaluate(evaluation_state(policy), jax.random.PRNGKey(args.seed))
    mean, std = float(np.mean(returns)), float(np.std(returns))
    print(f"{cfg.agent} on {cfg.env} at env step {policy.env_steps:,}, {len(returns)} deterministic episodes:\n"
          f"  MJX       return {mean:.3f} ± {std:.3f} (mean length {float(np.mean(lengths)):.1f})")
    if args.gymnasium:
        from launch import gymnasium_eval

        def rollout(video):
            return gymnasium_eval.rollout_gymnasium(cfg.env, cfg.env_options, policy, args.episodes, seed=args.seed,
                                                    episode_length=cfg.episode_length, video=video)

        try:
            try:
                gym_returns = rollout(args.video)
            except RuntimeError as err:  # no GL backend: say so, compare without the video
                print(f"video: {err}", file=sys.stderr)
                gym_returns = rollout(None)
        except ValueError as err:  # a task without a Gymnasium counterpart
            print(f"error: {err}", file=sys.stderr)
            raise SystemExit(2)
        print(f"  Gymnasium return {np.mean(gym_returns):.3f} ± {np.std(gym_returns):.3f} "
              f"({gymnasium_eval.GYMNASIUM_IDS[cfg.env]}, MuJoCo on the CPU)")
    elif args.video:
        try:
            n, written = render_episode(engine, policy, args.video, seed=args.seed)
            print(f"wrote {n} frames to {written}")
        except RuntimeError as err:
            print(f"video: {err}", file=sys.stderr)
    return mean, std


if __name__ == "__main__":
    main()
