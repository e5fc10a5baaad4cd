"""The guard on mujoco-mjx's private internals (envs/mjx_patches.py): an unverified version or a
missing patched attribute fails loudly, naming it."""
from __future__ import annotations

import pytest

from envs import mjx_patches


def test_unverified_mjx_version_fails_loudly_naming_it(monkeypatch):
    mjx_patches.check_mjx_internals()  # the installed version passes
    monkeypatch.setattr(mjx_patches, "installed_mjx_version", lambda: "3.18.0")
    with pytest.raises(ImportError, match=r"3\.17\.x.*mujoco-mjx 3\.18\.0 is installed"):
        mjx_patches.check_mjx_internals()


def test_missing_patched_attribute_fails_loudly(monkeypatch):
    monkeypatch.delattr(mjx_patches.mjx_forward, "_RK4_B")
    with pytest.raises(ImportError, match=r"forward\._RK4_B"):
        mjx_patches.check_mjx_internals()
