"""SAC Flow and DIME in the shared loop: each learns the 4-mode bandit well past a random policy,
a run stopped and resumed from its checkpoint is bit-identical to a straight one, and the
train step compiles once; bad options fail naming the field."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import envs
from mjx_smfp.agents.dime import DIME
from mjx_smfp.agents.sacflow import SACFlow
from mjx_smfp.engine import Engine
from mjx_smfp.policies.chains import DiffusionConfig, FlowChainConfig
from mjx_smfp.runner import run
from tests.agents.bandit import BANDIT, MULTIMODAL

AGENTS = {"sacflow": SACFlow.Config(**BANDIT), "dime": DIME.Config(**BANDIT)}


@pytest.mark.parametrize("name", sorted(AGENTS))
def test_learns_the_bandit_and_resumes_bit_identically_with_one_compile(name, tmp_path):
    import dataclasses

    cfg = dataclasses.replace(MULTIMODAL, agent=name)
    engine = Engine(cfg, AGENTS[name])
    bandit = envs.make("multimodal", num_modes=4)
    random_reward = float(bandit.reward(jax.random.uniform(jax.random.PRNGKey(0), (4000, 2), minval=-1)).mean())
    straight = run(engine, str(tmp_path / "a"), verbose=False)
    run(engine, str(tmp_path / "b"), max_calls=cfg.train_calls - 1, verbose=False)
    resumed = run(engine, str(tmp_path / "b"), resume=True, verbose=False)
    for a, b in zip(jax.tree_util.tree_leaves(straight), jax.tree_util.tree_leaves(resumed)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert engine.trace_counts["train_chunk"] == 1 and engine.trace_counts["warmup"] == 1
    actions = jax.jit(engine.agent.act)(straight.agent, jnp.zeros((4000, bandit.observation_size)),
                                        jax.random.PRNGKey(11))
    reward = float(bandit.reward(actions).mean())
    assert random_reward < 0.3 and reward >= 0.5, (random_reward, reward)


@pytest.mark.parametrize("config, field, value", [
    (FlowChainConfig, "flow_steps", 0), (FlowChainConfig, "velocity", "lstm"),
    (FlowChainConfig, "flow_noise_init", 0.0), (DiffusionConfig, "diffusion_steps", 0),
    (DiffusionConfig, "beta_max", 0.01),
])
def test_bad_options_fail_at_construction_naming_the_field(config, field, value):
    with pytest.raises(ValueError, match=field):
        config(**{field: value})
