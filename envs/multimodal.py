"""A one-step continuous bandit whose optimal actions form several equal, well-separated modes.

Why: SMFP's closed-form improvement target pi* ∝ pi_k^(beta/(alpha+beta)) exp(Q/(alpha+beta)) is
multimodal when Q is (SMFP.md §1). On this task Q(s, a) = r(a) has `num_modes` peaks of equal
height 1, and r is ~0 at the origin and between peaks, so a unimodal Gaussian policy must either
pick one peak or straddle them and be penalised, while a MeanFlow policy can put mass on all of
them. `mode_of` classifies actions into modes so tests can measure the mass a policy puts on each.

Reward: r(a) = max_k exp(-||a - c_k||^2 / (2 w^2)), with a clipped to [-1, 1]^action_size. The
centres c_k lie on a circle of radius 0.6·sqrt(2) in the first two action dimensions at angles
pi/4 + 2 pi k / num_modes — for 4 modes exactly (±0.6, ±0.6); for 1 mode (0.6, 0.6), away from
the origin where an untrained tanh-Gaussian starts. Extra action dimensions (action_size > 2)
have centre 0, so every mode is still a single optimal point.

Episodes are one step long: every `step` terminates (`done == 1`). The observation is a constant
context (zeros) or, with `random_context=True`, a context drawn at reset that the reward ignores
(to check a policy is not thrown off by irrelevant inputs). There is no physics: `pipeline_state`
is the context itself (a pytree like any other, so the training wrapper's non-finite guard works),
and `backend` reports "mjx" only to satisfy the registry contract.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from brax.envs.base import Env, State


class MultimodalBandit(Env):
    """One-step bandit with `num_modes` equal-value optimal actions (see module docstring)."""

    def __init__(self, num_modes: int = 4, action_size: int = 2, mode_width: float = 0.2,
                 obs_size: int = 4, random_context: bool = False, mode_radius: float | None = None):
        if num_modes < 1:
            raise ValueError(f"num_modes must be >= 1, got {num_modes}")
        if action_size < 2:
            raise ValueError(f"action_size must be >= 2 (modes live in the first two), got {action_size}")
        if mode_width <= 0:
            raise ValueError(f"mode_width must be > 0, got {mode_width}")
        self.num_modes = int(num_modes)
        self._action_size = int(action_size)
        self.mode_width = float(mode_width)
        self._obs_size = int(obs_size)
        self.random_context = bool(random_context)

        radius = 0.6 * math.sqrt(2.0)
        angles = [math.pi / 4 + 2 * math.pi * k / num_modes for k in range(num_modes)]
        centres = [[radius * math.cos(t), radius * math.sin(t)] + [0.0] * (action_size - 2)
                   for t in angles]
        # A host (numpy) constant: folded into whatever jitted function uses it, on any device.
        self.centres = np.asarray(centres, np.float32)
        if mode_radius is None:
            # Within 2.5 widths of a centre, but never more than 45% of the closest centre gap
            # so the classification balls never overlap.
            gap = 2 * radius * math.sin(math.pi / num_modes) if num_modes > 1 else float("inf")
            mode_radius = min(2.5 * mode_width, 0.45 * gap)
        self.mode_radius = float(mode_radius)

    # -- brax Env interface ---------------------------------------------------------------------
    @property
    def observation_size(self) -> int:
        return self._obs_size

    @property
    def action_size(self) -> int:
        return self._action_size

    @property
    def backend(self) -> str:
        return "mjx"

    def reset(self, rng: jax.Array) -> State:
        if self.random_context:
            context = jax.random.uniform(rng, (self._obs_size,), jnp.float32, -1.0, 1.0)
        else:
            context = jnp.zeros((self._obs_size,), jnp.float32)
        zero = jnp.zeros((), jnp.float32)
        return State(pipeline_state=context, obs=context, reward=zero, done=zero,
                     metrics={"mode": -jnp.ones((), jnp.float32)})

    def step(self, state: State, action: jax.Array) -> State:
        reward = self.reward(action)
        return state.replace(
            reward=reward,
            done=jnp.ones((), jnp.float32),
            metrics={"mode": self.mode_of(action).astype(jnp.float32)},
        )

    # -- task-specific helpers ------------------------------------------------------------------
    @property
    def optimal_value(self) -> float:
        """The best achievable reward (attained exactly at every centre)."""
        return 1.0

    def reward(self, actions: jax.Array) -> jax.Array:
        """r(a) for actions [..., action_size] -> [...]."""
        a = jnp.clip(actions, -1.0, 1.0)
        sq = jnp.sum((a[..., None, :] - self.centres) ** 2, axis=-1)  # [..., num_modes]
        return jnp.max(jnp.exp(-sq / (2 * self.mode_width ** 2)), axis=-1)

    def mode_of(self, actions: jax.Array) -> jax.Array:
        """Index of the mode each action [..., action_size] falls in, or -1 (int32 [...]).

        An action belongs to mode k when it is within `mode_radius` of centre k (the balls do
        not overlap); mass per mode is then e.g. `jnp.mean(env.mode_of(a) == k)`."""
        a = jnp.clip(actions, -1.0, 1.0)
        dist = jnp.sqrt(jnp.sum((a[..., None, :] - self.centres) ** 2, axis=-1))
        nearest = jnp.argmin(dist, axis=-1)
        inside = jnp.min(dist, axis=-1) <= self.mode_radius
        return jnp.where(inside, nearest, -1).astype(jnp.int32)

    def mode_masses(self, actions: jax.Array) -> jax.Array:
        """Fraction of a batch of actions [n, action_size] in each mode -> [num_modes]."""
        modes = self.mode_of(actions)
        return jnp.mean(modes[:, None] == jnp.arange(self.num_modes), axis=0)
