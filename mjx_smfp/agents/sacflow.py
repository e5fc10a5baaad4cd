"""SAC Flow (Zhang et al., arXiv 2509.25756): SAC with a K-step noise-augmented flow policy whose
path log-density is exact; trained by SAC's own objective, reparameterised through the K steps.
The policy is policies/chains.py's `FlowChainPolicy`; choices and deviations: docs/baselines.md."""
from __future__ import annotations

import dataclasses

from mjx_smfp.agents.sac import SAC
from mjx_smfp.agents.soft_actor_critic import SoftActorCriticConfig
from mjx_smfp.policies.chains import FlowChainConfig, FlowChainPolicy


class SACFlow(SAC):
    """SAC's update (shared critic, temperature and actor loss) on a K-step flow policy."""

    @dataclasses.dataclass(frozen=True)
    class Config(SoftActorCriticConfig):
        policy: FlowChainConfig = FlowChainConfig()  # the K-step flow

    def make_policy(self) -> FlowChainPolicy:
        return FlowChainPolicy(self.action_size, tuple(self.config.actor_hidden), self.config.policy,
                               activation=self.config.activation)
