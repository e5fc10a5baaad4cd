"""SAC Flow (Zhang et al., arXiv 2509.25756): SAC with a K-step noise-augmented flow policy whose
path log-density is exact; trained by SAC's own objective, reparameterised through the K steps.
The policy is policies/chains.py's `FlowChainPolicy`. Defaults follow the authors' from-scratch
Flow-G script (Elessar123/SAC-FLOW `from_scratch_code/SAC_flow_gru_jax.py`) where the shared loop
has the field; choices and every remaining deviation: docs/baselines.md."""
from __future__ import annotations

import dataclasses
from typing import Optional

from mjx_smfp.agents.sac import SAC
from mjx_smfp.agents.soft_actor_critic import SoftActorCriticConfig
from mjx_smfp.policies.chains import FlowChainConfig, FlowChainPolicy


class SACFlow(SAC):
    """SAC's update (shared critic, temperature and actor loss) on a K-step flow policy."""

    follows_recipe = False  # its authors' recipe (the Config defaults below), not the shared one

    @dataclasses.dataclass(frozen=True)
    class Config(SoftActorCriticConfig):
        critic_hidden: tuple[int, ...] = (1024, 1024)  # critic MLP widths (each Q head); reference 2 x 1024
        critic_lr: float = 1e-3  # Adam learning rate of the critic (reference q_lr)
        temperature_lr: float = 1e-3  # Adam learning rate of log alpha (reference: q_lr)
        init_temperature: float = 0.2  # initial alpha (reference; SAC: 1.0)
        target_entropy: Optional[float] = 0.0  # alpha's target entropy (reference: 0, not -|A|)
        policy_delay: int = 3  # actor/temperature step every `policy_delay` critic steps (reference: 3)
        adam_b1: float = 0.5  # Adam beta1 of actor and critic (reference: 0.5)
        activation: str = "silu"  # hidden activation of the velocity network and critic (reference actor: swish)
        policy: FlowChainConfig = FlowChainConfig()  # the K-step flow

    def make_policy(self) -> FlowChainPolicy:
        return FlowChainPolicy(self.action_size, self.config.actor_network(), self.config.policy)
