"""launch.evaluate: without a GL backend the video path fails with a message saying how to fix it."""
from types import SimpleNamespace

import mujoco
import pytest

from launch.evaluate import render_episode


def test_video_without_a_gl_backend_names_the_mujoco_gl_settings(monkeypatch, tmp_path):
    def no_gl(*args, **kwargs):
        raise mujoco.FatalError("an OpenGL platform library has not been loaded into this process")

    monkeypatch.setattr(mujoco, "Renderer", no_gl)
    engine = SimpleNamespace(task=SimpleNamespace(mj_model=object()), cfg=SimpleNamespace(env="inverted_pendulum"))
    with pytest.raises(RuntimeError, match=r"no OpenGL backend .*MUJOCO_GL=egl .*MUJOCO_GL=osmesa"):
        render_episode(engine, None, str(tmp_path / "out.mp4"))
