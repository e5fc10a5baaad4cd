"""DIME (Celik et al., arXiv 2502.02316): maximum-entropy RL with a diffusion policy, the entropy
replaced by its lower bound from the sampler and noising path measures (policies/chains.py's
`DiffusionPolicy`), in SAC's objective and soft backup. Choices and deviations: docs/baselines.md."""
from __future__ import annotations

import dataclasses

from mjx_smfp.agents.sac import SAC
from mjx_smfp.agents.soft_actor_critic import SoftActorCriticConfig
from mjx_smfp.policies.chains import DiffusionConfig, DiffusionPolicy


class DIME(SAC):
    """SAC's update (shared critic, temperature and actor loss) on a diffusion sampler policy."""

    @dataclasses.dataclass(frozen=True)
    class Config(SoftActorCriticConfig):
        policy: DiffusionConfig = DiffusionConfig()  # the N-step diffusion sampler

    def make_policy(self) -> DiffusionPolicy:
        return DiffusionPolicy(self.action_size, tuple(self.config.actor_hidden), self.config.policy,
                               activation=self.config.activation)
