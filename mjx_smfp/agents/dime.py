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


class DIME(SAC):
    """SAC's update (shared critic, temperature and actor loss) on a diffusion sampler policy."""

    @dataclasses.dataclass(frozen=True)
    class Config(SoftActorCriticConfig):
        critic_hidden: tuple[int, ...] = (2048, 2048)  # critic MLP widths (each Q head); reference 2 x 2048
        temperature_lr: float = 1e-3  # Adam learning rate of log alpha (reference: 1e-3)
        target_entropy: Optional[float] = None  # alpha's target; None -> DIME's: |A| (H(prior) per dim - entropy_gap)
        entropy_gap: float = 4.0  # nats per action dim below the prior's entropy that DIME targets (reference: 4)
        policy_delay: int = 3  # actor/temperature step every `policy_delay` critic steps (reference: 3)
        policy: DiffusionConfig = DiffusionConfig()  # the N-step diffusion sampler

        def __post_init__(self):
            super().__post_init__()
            if not math.isfinite(self.entropy_gap):
                raise ValueError(f"entropy_gap={self.entropy_gap} must be finite")

    def __init__(self, config: "DIME.Config", obs_size: int, action_size: int, axis: Optional[str] = None):
        super().__init__(config, obs_size, action_size, axis)
        if config.target_entropy is None:
            self.target_entropy = self.default_target_entropy(config, action_size)

    @staticmethod
    def default_target_entropy(config: "DIME.Config", action_size: int) -> float:
        """DIME's target on the bound -E log pi_hat: the reference tunes alpha so that E[log pi_hat -
        log p(x_0)] = entropy_gap |A| (it feeds the running cost, log pi_hat minus the prior term, to
        the temperature), i.e. -E log pi_hat = |A| (H(N(0, s0^2)) per dim - entropy_gap) ~ -1.66 |A|."""
        prior_entropy = 0.5 * math.log(2 * math.pi * math.e * config.policy.prior_std ** 2)
        return action_size * (prior_entropy - config.entropy_gap)

    def make_policy(self) -> DiffusionPolicy:
        return DiffusionPolicy(self.action_size, tuple(self.config.actor_hidden), self.config.policy)
