"""Types the whole package shares, in a leaf module that imports nothing from mjx_smfp: the
replay row (`Transition`), the metrics dict every step returns (`Metrics`) and its entries that
exist only on some steps (`Gated`). Modules below `agents/` (critic, replay, steps) import them
from here, never from `agents/`."""
from __future__ import annotations

from typing import Optional

import jax
from flax import struct

Metrics = dict[str, jax.Array]


@struct.dataclass
class Gated:
    """A metric computed only on some update steps (the actor's, under a policy delay): `value`
    where `weight` is 1, nothing where it is 0. The loop averages it over the steps that computed
    it (mjx_smfp/steps.py), so a delayed actor's metrics are not divided by the delay."""

    value: jax.Array
    weight: jax.Array  # 1.0 on a step that computed `value`, else 0.0 (value then 0)


@struct.dataclass
class Transition:
    """One batch of transitions as stored in replay.

    `next_obs` is the TRUE next observation (before any auto-reset), so targets bootstrap
    through time-limit truncation; only `terminated` cuts the bootstrap.

    `discount` is set only on sampled n-step batches (`replay.sample_n_step`): the per-row
    factor gamma^k of the bootstrap after the k rewards summed into `reward`. None (a stored
    row, or a one-step batch) means one step: the critic's own gamma. Being None in stored
    rows, it takes no replay memory and no checkpoint entry.
    """

    obs: jax.Array
    action: jax.Array
    reward: jax.Array
    next_obs: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    discount: Optional[jax.Array] = None
