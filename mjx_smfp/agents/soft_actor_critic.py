"""What every soft actor-critic agent here shares: the critic/optimiser/temperature config
fields and the helpers built from them. SAC and SMFP differ only in policy and actor objective."""
from __future__ import annotations

import dataclasses
from typing import Optional

import optax

from mjx_smfp.agents.base import Agent
from mjx_smfp.networks import TwinQ


@dataclasses.dataclass(frozen=True)
class SoftActorCriticConfig:
    actor_hidden: tuple[int, ...] = (256, 256, 256)
    critic_hidden: tuple[int, ...] = (256, 256, 256)
    num_q_heads: int = 2
    critic_layer_norm: bool = True
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    temperature_lr: float = 3e-4
    gamma: float = 0.99
    tau: float = 0.005
    grad_clip: float = 1.0  # global-norm clip; <= 0 disables
    init_temperature: float = 1.0
    target_entropy: Optional[float] = None  # None -> -action_size
    learn_temperature: bool = True
    entropy_in_backup: bool = True
    policy_delay: int = 1  # actor/temperature step every `policy_delay` critic steps


class SoftActorCriticAgent(Agent):
    """Holds `config` and the twin-Q critic; subclasses add the policy and `update`."""

    def __init__(self, config: SoftActorCriticConfig):
        self.config = config
        self.critic_net = TwinQ(hidden=tuple(config.critic_hidden), num_heads=config.num_q_heads,
                                layer_norm=config.critic_layer_norm)
        self.action_size: Optional[int] = None

    def _optimizer(self, lr: float) -> optax.GradientTransformation:
        if self.config.grad_clip > 0:
            return optax.chain(optax.clip_by_global_norm(self.config.grad_clip), optax.adam(lr))
        return optax.adam(lr)

    def _target_entropy(self) -> float:
        t = self.config.target_entropy
        return -float(self.action_size) if t is None else float(t)

    def _q(self, params, obs, action):
        return self.critic_net.apply(params, obs, action)
