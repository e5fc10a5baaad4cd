"""The one agent interface every agent (Gaussian SAC, SMFP, ...) implements.

The compiled loop (mjx_smfp/steps.py) only ever calls `init`, `act`, `eval_act` and `update`,
so it never branches on agent type. An agent is built once with its sizes and its
data-parallel axis (`agents.make(name, config, obs_size, action_size, axis)`) and never
changes afterwards: it is a static description closed over by `jax.jit`, and all mutable
state lives in the pytree returned by `init` and threaded through `act`/`update`.

Observations reaching an agent are already normalised by the loop (the normaliser is
part of the loop's train state), and actions are always in [-1, 1]^action_size.
"""
from __future__ import annotations

import abc
from typing import Any, Optional

import jax

from mjx_smfp.types import Metrics, Transition  # noqa: F401 - re-exported for agents


class Agent(abc.ABC):
    """init / act / eval_act / update: the whole contract between an agent and the loop.

    `axis`: the named mesh axis of a data-parallel run (None on one device); agents average
    their gradients and batch statistics over it with `reduce`.
    """

    Config: type  # the agent's frozen config dataclass

    def __init__(self, config: Any, obs_size: int, action_size: int, axis: Optional[str] = None):
        self.config = config
        self.obs_size = int(obs_size)
        self.action_size = int(action_size)
        self.axis = axis

    @abc.abstractmethod
    def init(self, rng: jax.Array) -> Any:
        """Fresh agent state (params, optimiser states, targets, temperatures...)."""

    @abc.abstractmethod
    def act(self, state: Any, obs: jax.Array, rng: jax.Array) -> jax.Array:
        """Stochastic exploration actions in [-1, 1] for a batch of observations."""

    @abc.abstractmethod
    def eval_act(self, state: Any, obs: jax.Array) -> jax.Array:
        """Deterministic evaluation actions in [-1, 1]."""

    @abc.abstractmethod
    def update(self, state: Any, batch: Transition, rng: jax.Array) -> tuple[Any, Metrics]:
        """One gradient step on `batch`; returns new state and scalar metrics."""

    def diagnostics(self, state: Any, obs: jax.Array, rng: jax.Array) -> dict:
        """Sample-based checks of the policy on held-out (normalised) states that an evaluation
        logs beside the return (soft actor-critic agents: the k-NN entropy of their actions, ...);
        none by default."""
        return {}

    def policy_state(self, state: Any) -> Any:
        """The part of `state` that `eval_act` reads (what a policy file holds); default: all of it."""
        return state

    def reduce(self, tree):
        """Average a pytree (gradients, statistics) over the data-parallel axis, if any."""
        return tree if self.axis is None else jax.lax.pmean(tree, self.axis)
