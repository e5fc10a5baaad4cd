"""The temperature alpha of every soft actor-critic agent: its target entropy (from whichever of the
config's three target fields is set), its loss and its step rule (`temperature_rule`)."""
from __future__ import annotations

import functools
import math
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import optax

TEMPERATURE_RULES = ("adam", "proportional")  # `temperature_rule`'s choices


def resolve_target_entropy(config, action_size: int, default: Optional[float] = None) -> float:
    """The temperature's target entropy H_target from whichever of the three fields is set:
    `target_entropy` (absolute), `target_entropy_per_dim` x |A|, or `target_std` -> the entropy
    of N(0, std^2 I_|A|), |A| (0.5 log(2 pi e) + log std) (FlashSAC: a target spread instead of
    a number of nats); none -> `default` (an agent's own, e.g. DIME's), else -|A| (Haarnoja et
    al. 2018). The target is that of a Gaussian before the tanh; alpha compares it with the
    agent's estimate -E log pi(a|s), which includes the tanh term."""
    if config.target_entropy is not None:
        return float(config.target_entropy)
    if config.target_entropy_per_dim is not None:
        return float(config.target_entropy_per_dim) * action_size
    if config.target_std is not None:
        return action_size * (0.5 * math.log(2 * math.pi * math.e) + math.log(config.target_std))
    return -float(action_size) if default is None else float(default)


def rule(config) -> tuple[optax.GradientTransformation, Callable]:
    """(optimiser, loss) of the step rule `config.temperature_rule`: "adam", Adam on alpha's loss (steps of
    ~lr whatever the gap), or "proportional", plain gradient steps of lr x the entropy gap."""
    if config.temperature_rule == "proportional":
        return optax.sgd(config.temperature_lr), functools.partial(temperature_loss, proportional=True)
    return optax.adam(config.temperature_lr, config.temperature_b1, config.temperature_b2), temperature_loss


def temperature_loss(log_temperature: jax.Array, entropy: jax.Array, target_entropy: float,
                     proportional: bool = False):
    """alpha * stop_grad(H - H_target): descending it in log alpha lowers alpha while the entropy
    exceeds its target and raises it otherwise. `proportional`: log alpha * stop_grad(H - H_target),
    whose gradient is the gap itself, so a plain gradient step is proportional to it."""
    gap = jax.lax.stop_gradient(entropy - target_entropy)
    return (log_temperature if proportional else jnp.exp(log_temperature)) * gap, {}
