"""The MeanFlow policy the maths tests use: per-dimension sigma, SiLU and no fixed linear term
in u (a plain flow, x ~ eps at init). The agent's defaults (state sigma head, ReLU, x ~ 0.5 eps)
are tuned for RL; these tests check identities and fits that hold for any flow."""
from mjx_smfp.networks import ActorNetworkConfig
from mjx_smfp.policies.meanflow import LOG_SIGMA_MAX, MeanFlowConfig, MeanFlowPolicy

PLAIN = dict(sigma_mode="per_dim", flow_init_scale=1.0)


def flow_policy(action_size: int, hidden: tuple, activation: str = "silu", **options) -> MeanFlowPolicy:
    network = ActorNetworkConfig(hidden=hidden, activation=activation, log_std_max=LOG_SIGMA_MAX)
    return MeanFlowPolicy(action_size, network, MeanFlowConfig(**{**PLAIN, **options}))
