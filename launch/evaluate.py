"""Evaluate a run's latest checkpoint: `python -m launch.evaluate RUN_DIR --episodes N
[--video out.mp4] [--step K]`.

Runs N deterministic episodes (the policy's `eval_act`) on fresh env copies and prints
mean ± s.d. of the return. With `--video`, renders one episode with MuJoCo's offscreen
renderer (`mujoco.Renderer` on the task's `mj_model`) and writes it with imageio; where no
GL backend is available it says so (set MUJOCO_GL=egl or osmesa).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

import numpy as np


def load(run_dir: str, episodes: int | None = None, step: int | None = None):
    """(engine, train state restored from the checkpoint at `step`, default latest)."""
    from mjx_smfp import checkpoint as ckpt_lib
    from mjx_smfp import config as config_lib
    from mjx_smfp.engine import Engine

    with open(os.path.join(run_dir, "config.json")) as f:
        cfg, agent_cfg = config_lib.from_dict(json.load(f))
    if episodes is not None:
        cfg = dataclasses.replace(cfg, eval_episodes=episodes)
    engine = Engine(cfg, agent_cfg)
    checkpointer = ckpt_lib.Checkpointer(os.path.join(run_dir, "checkpoints"))
    if checkpointer.latest_step() is None:
        raise FileNotFoundError(f"no checkpoint in {run_dir}/checkpoints")
    ts = checkpointer.restore(engine.abstract_state(), step)
    checkpointer.close()
    return engine, ts


def render_episode(engine, ts, path: str, seed: int = 0, width: int = 640, height: int = 480) -> tuple[int, str]:
    """Render one deterministic episode to `path` (a GIF beside it if MP4 cannot be written);
    returns (number of frames, path written)."""
    import jax
    import jax.numpy as jnp
    import mujoco

    from mjx_smfp import normalizer as norm_lib

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

    def policy(obs):
        if cfg.normalize_obs:
            obs = norm_lib.normalize(ts.normalizer, obs)
        return engine.agent.eval_act(ts.agent, obs[None])[0]

    reset, step, policy = jax.jit(raw.reset), jax.jit(raw.step), jax.jit(policy)
    state = reset(jax.random.PRNGKey(seed))
    data = mujoco.MjData(mj_model)
    frames = []
    for _ in range(cfg.episode_length):
        data.qpos[:] = np.asarray(state.pipeline_state.qpos)
        data.qvel[:] = np.asarray(state.pipeline_state.qvel)
        mujoco.mj_forward(mj_model, data)
        renderer.update_scene(data)
        frames.append(renderer.render().copy())
        state = step(state, policy(state.obs))
        if float(state.done) > 0 or not bool(jnp.all(jnp.isfinite(state.obs))):
            break
    renderer.close()
    import imageio

    fps = int(round(1.0 / getattr(raw, "dt", 0.02)))
    try:
        imageio.mimsave(path, frames, fps=fps)
    except Exception as err:  # noqa: BLE001 - missing ffmpeg plugin
        gif = os.path.splitext(path)[0] + ".gif"
        imageio.mimsave(gif, frames, duration=1000 / fps)
        print(f"no MP4 writer ({type(err).__name__}); writing a GIF instead (pip install imageio-ffmpeg for MP4)")
        path = gif
    return len(frames), path


def main(argv: list[str] | None = None) -> tuple[float, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--video", default=None, help="write one rendered episode here (e.g. out.mp4)")
    args = parser.parse_args(argv)
    import jax

    engine, ts = load(args.run_dir, args.episodes, args.step)
    returns, lengths = engine.evaluate(ts, jax.random.PRNGKey(args.seed))
    mean, std = float(np.mean(returns)), float(np.std(returns))
    print(f"{engine.cfg.agent} on {engine.cfg.env} at env step {int(ts.env_steps):,}: return {mean:.3f} ± {std:.3f} "
          f"over {len(returns)} episodes (mean length {float(np.mean(lengths)):.1f})")
    if args.video:
        try:
            n, written = render_episode(engine, ts, args.video, seed=args.seed)
            print(f"wrote {n} frames to {written}")
        except RuntimeError as err:
            print(f"video: {err}", file=sys.stderr)
    return mean, std


if __name__ == "__main__":
    main()
