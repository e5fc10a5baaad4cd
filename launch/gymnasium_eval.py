"""Sim-to-sim check: run a policy trained on our MJX tasks in Gymnasium's own MuJoCo v5 env.

`rollout_gymnasium` builds the Gymnasium env of the same name (real MuJoCo, float64, the
XML's own solver: PGS for Humanoid*), passes it the task options both share, maps actions in
[-1, 1] onto the actuator ctrlrange exactly as `envs.base.MjxTask.scale_action` does (affine,
unclipped: the physics clamps), and returns the per-episode returns. Our `physics` option
has no Gymnasium counterpart and is dropped: Gymnasium always simulates its XML settings.
"""
from __future__ import annotations

import os
from typing import Callable

import numpy as np

GYMNASIUM_IDS = {
    "humanoid": "Humanoid-v5",
    "humanoidstandup": "HumanoidStandup-v5",
    "ant": "Ant-v5",
    "halfcheetah": "HalfCheetah-v5",
    "hopper": "Hopper-v5",
    "walker2d": "Walker2d-v5",
    "swimmer": "Swimmer-v5",
    "inverted_double_pendulum": "InvertedDoublePendulum-v5",
    "inverted_pendulum": "InvertedPendulum-v5",
    "reacher": "Reacher-v5",
    "pusher": "Pusher-v5",
}
OURS_ONLY = ("physics",)  # task options with no Gymnasium counterpart


def make_env(task: str, env_kwargs: dict, episode_length: int = 1000, render: bool = False):
    """Gymnasium's v5 env for our `task`, time limit `episode_length`, with the options of
    `env_kwargs` that Gymnasium has; ValueError for a task or option it lacks."""
    import gymnasium

    if task not in GYMNASIUM_IDS:
        raise ValueError(f"task {task!r} has no Gymnasium counterpart; these do: {', '.join(sorted(GYMNASIUM_IDS))}")
    kwargs = {k: v for k, v in env_kwargs.items() if k not in OURS_ONLY}
    try:
        return gymnasium.make(GYMNASIUM_IDS[task], max_episode_steps=episode_length,
                              render_mode="rgb_array" if render else None, **kwargs)
    except TypeError as err:  # an option Gymnasium's constructor does not take
        raise ValueError(f"{GYMNASIUM_IDS[task]} does not accept the task options {sorted(kwargs)}: {err}") from err


def to_ctrl(action: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Actions in [-1, 1] -> ctrlrange [low, high], affinely and unclipped (as `scale_action`)."""
    return low + (np.asarray(action, np.float64) + 1.0) * 0.5 * (high - low)


def write_video(frames: list[np.ndarray], path: str, fps: int) -> str:
    """Write `frames` to `path` with imageio; a GIF beside it if no MP4 writer is installed.
    Returns the path written."""
    import imageio

    try:
        imageio.mimsave(path, frames, fps=fps)
    except Exception as err:  # noqa: BLE001 - missing ffmpeg plugin
        path = os.path.splitext(path)[0] + ".gif"
        imageio.mimsave(path, frames, duration=1000 / fps)
        print(f"no MP4 writer ({type(err).__name__}); writing a GIF instead (pip install imageio-ffmpeg for MP4)")
    return path


def rollout_gymnasium(task: str, env_kwargs: dict, policy: Callable[[np.ndarray], np.ndarray], episodes: int,
                      seed: int = 0, episode_length: int = 1000, video: str | None = None) -> np.ndarray:
    """Per-episode returns [episodes] of `policy` in Gymnasium's env for `task`.

    `policy` maps ONE raw (unnormalised) observation, float32 [obs_size], to an action in
    [-1, 1] of shape [action_size] (a leading batch axis of 1 is accepted); normalising is
    the caller's job, as the run's statistics live with the agent. Episode i starts from the
    i-th reset of the env seeded with `seed` and ends on termination or after
    `episode_length` steps. With `video`, the first episode is rendered there (Gymnasium's
    rgb_array camera); RuntimeError before any step if no OpenGL backend works.
    """
    env = make_env(task, env_kwargs, episode_length, render=video is not None)
    low, high = env.action_space.low.astype(np.float64), env.action_space.high.astype(np.float64)
    obs, _ = env.reset(seed=seed)
    frames = []
    if video is not None:
        try:
            frames.append(env.render())
        except Exception as err:  # noqa: BLE001 - GL errors differ per backend
            env.close()
            raise RuntimeError(
                f"no OpenGL backend for offscreen rendering ({type(err).__name__}: {err}); set MUJOCO_GL=egl "
                "(GPU or Mesa EGL) or MUJOCO_GL=osmesa (CPU, needs libosmesa) and retry, or drop the video") from err
    returns = np.zeros(episodes)
    for episode in range(episodes):
        if episode > 0:
            obs, _ = env.reset()
        done = False
        while not done:
            action = np.reshape(policy(np.asarray(obs, np.float32)), env.action_space.shape)
            obs, reward, terminated, truncated, _ = env.step(to_ctrl(action, low, high))
            returns[episode] += reward
            done = terminated or truncated
            if frames and episode == 0:
                frames.append(env.render())
    if video is not None:
        write_video(frames, video, int(env.metadata.get("render_fps", 30)))
    env.close()
    return returns
