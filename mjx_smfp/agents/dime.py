"""DIME (Celik et al., arXiv 2502.02316): maximum-entropy RL with a diffusion policy, the entropy
replaced by its lower bound from the sampler and noising path measures (policies/chains.py's
`DiffusionPolicy`), in SAC's objective and soft backup. Defaults follow the authors' code
(ALRhub/DIME: `configs/alg/dime.yaml`, `diffusion/dime.py`) where the shared loop has the field;
choices and every remaining deviation: docs/baselines.md."""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

from mjx_smfp.agents.sac import SAC
from mjx_smfp.agents.soft_actor_critic import SoftActorCriticConfig
from mjx_smfp.policies.chains import DiffusionConfig, DiffusionPolicy
from mjx_smfp.validation import check


class DIME(SAC):
    """SAC's update (shared critic, temperature and actor loss) on a diffusion sampler policy."""

    follows_recipe = False  # its authors' recipe (the Config defaults below), not the shared one

    @dataclasses.dataclass(frozen=True)
    class Config(SoftActorCriticConfig):
        critic_hidden: tuple[int, ...] = (2048, 2048)  # critic MLP widths (each Q head); reference 2 x 2048
        temperature_lr: float = 1e-3  # Adam learning rate of log alpha (reference: 1e-3)
        target_entropy: Optional[float] = None  # alpha's target; None -> DIME's: |A| (H(prior) per dim - entropy_gap)
        entropy_gap: float = 4.0  # nats per action dim below the prior's entropy that DIME targets (reference: 4)
        policy_delay: int = 3  # actor/temperature step every `policy_delay` critic steps (reference: 3)
        adam_b1: float = 0.5  # Adam beta1 of actor and critic (reference dime.yaml: 0.5)
        q_actor_combine: str = "mean"  # the actor maximises the mean of the Q heads (reference dime.py)
        q_target_combine: str = "mean"  # targets from the mean of the heads (reference dime.py)
        activation: str = "silu"  # hidden activation of the control network and critic (reference actor: gelu)
        policy: DiffusionConfig = DiffusionConfig()  # the N-step diffusion sampler

        def __post_init__(self):
            super().__post_init__()
            check(self, "entropy_gap", finite=True)

    @staticmethod
    def default_target_entropy(config: "DIME.Config", action_size: int) -> float:
        """DIME's target on the bound -E log pi_hat: the reference tunes alpha so that E[log pi_hat -
        log p(x_0)] = entropy_gap |A| (it feeds the running cost, log pi_hat minus the prior term, to
        the temperature), i.e. -E log pi_hat = |A| (H(N(0, s0^2)) per dim - entropy_gap) ~ -1.66 |A|."""
        prior_entropy = 0.5 * math.log(2 * math.pi * math.e * config.policy.prior_std ** 2)
        return action_size * (prior_entropy - config.entropy_gap)

    def make_policy(self) -> DiffusionPolicy:
        return DiffusionPolicy(self.action_size, self.config.actor_network(), self.config.policy)
