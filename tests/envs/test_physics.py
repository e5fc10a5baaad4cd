"""Physics presets and the guard on mujoco-mjx's private internals (envs/base.py)."""
from __future__ import annotations

import pytest

from envs import base


def test_unverified_mjx_version_fails_loudly_naming_it(monkeypatch):
    base.check_mjx_internals()  # the installed version passes
    monkeypatch.setattr(base, "installed_mjx_version", lambda: "3.18.0")
    with pytest.raises(ImportError, match=r"3\.17\.x.*mujoco-mjx 3\.18\.0 is installed"):
        base.check_mjx_internals()


def test_missing_patched_attribute_fails_loudly(monkeypatch):
    monkeypatch.delattr(base.mjx_forward, "_RK4_B")
    with pytest.raises(ImportError, match=r"forward\._RK4_B"):
        base.check_mjx_internals()
