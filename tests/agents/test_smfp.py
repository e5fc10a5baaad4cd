"""SMFP agent (mjx_smfp/agents/smfp.py) on random batches: the Agent contract, one update
moves the parameters, the anchor is a hard copy every K actor steps, every switch compiles
and gives finite metrics, and bad configs fail naming the field."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mjx_smfp import agents
from mjx_smfp.agents.base import Transition
from mjx_smfp.agents.smfp import SMFP

OBS, ACT, BATCH = 5, 3, 16
SMALL = dict(actor_hidden=(32, 32), critic_hidden=(32, 32), time_embed_dim=16)


def random_batch(seed=0):
    k = jax.random.split(jax.random.PRNGKey(seed), 5)
    return Transition(
        obs=jax.random.normal(k[0], (BATCH, OBS)),
        action=jax.random.uniform(k[1], (BATCH, ACT), minval=-1, maxval=1),
        reward=jax.random.normal(k[2], (BATCH,)),
        next_obs=jax.random.normal(k[3], (BATCH, OBS)),
        terminated=(jax.random.uniform(k[4], (BATCH,)) < 0.2).astype(jnp.float32),
        truncated=jnp.zeros((BATCH,)),
    )


def leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def trees_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(leaves(a), leaves(b)))


@pytest.fixture(scope="module")
def default_agent():
    agent = agents.make("smfp", SMFP.Config(anchor_period=3, **SMALL))
    state = agent.init(jax.random.PRNGKey(0), OBS, ACT)
    return agent, state, jax.jit(agent.update)


def test_registry_builds_smfp_and_act_eval_act_give_actions_in_the_box(default_agent):
    agent, state, _ = default_agent
    assert isinstance(agent, SMFP)
    obs = random_batch().obs
    a = jax.jit(agent.act)(state, obs, jax.random.PRNGKey(1))
    a2 = jax.jit(agent.act)(state, obs, jax.random.PRNGKey(2))
    e = jax.jit(agent.eval_act)(state, obs)
    assert a.shape == e.shape == (BATCH, ACT)
    assert bool(jnp.all(jnp.abs(a) <= 1)) and bool(jnp.all(jnp.abs(e) <= 1))
    assert not np.allclose(a, a2)  # stochastic acting
    np.testing.assert_array_equal(np.asarray(e), np.asarray(jax.jit(agent.eval_act)(state, obs)))


def test_one_update_changes_actor_and_critic_with_finite_named_metrics(default_agent):
    agent, state, update = default_agent
    new, metrics = update(state, random_batch(), jax.random.PRNGKey(3))
    for name in ("critic_loss", "actor_loss", "temperature", "entropy", "q_mean", "kl", "md_coef",
                 "meanflow_loss", "sigma_mean"):
        assert name in metrics, name
    assert all(np.isfinite(float(v)) for v in metrics.values()), metrics
    assert not trees_equal(new.actor_params, state.actor_params)
    assert not trees_equal(new.critic_params, state.critic_params)
    assert not trees_equal(new.target_critic_params, state.target_critic_params)
    assert float(metrics["temperature"]) != 1.0  # auto temperature moved
    assert int(new.step) == 1 and int(new.actor_steps) == 1


def test_anchor_is_a_hard_copy_of_the_actor_every_k_actor_steps(default_agent):
    agent, state, update = default_agent  # anchor_period = 3
    initial = state.actor_params
    s = state
    for i in range(1, 7):
        s, _ = update(s, random_batch(i), jax.random.PRNGKey(i))
        if i % 3 == 0:
            assert trees_equal(s.anchor_params, s.actor_params), i
            snapshot = s.actor_params
        else:
            assert not trees_equal(s.anchor_params, s.actor_params), i
            assert trees_equal(s.anchor_params, initial if i < 3 else snapshot), i
    # KL to the anchor is exactly 0 right after a copy (same noise, same network).
    _, metrics = update(s, random_batch(9), jax.random.PRNGKey(9))
    assert abs(float(metrics["kl"])) < 1e-6


def test_every_switch_off_default_compiles_and_trains_finite():
    """weighted particles + jacobian entropy + state sigma + EMA anchor + improved MeanFlow +
    dual md_coef + replay MeanFlow targets + best-of-N + policy delay, in one compile."""
    cfg = SMFP.Config(actor_update="weighted", num_particles=4, entropy_surrogate="jacobian", sigma_mode="state",
                      anchor_update="ema", meanflow_variant="improved", learn_md_coef=True,
                      meanflow_target="replay", best_of_n=4, eval_best_of_n=4, policy_delay=2,
                      entropy_in_backup=False, **SMALL)
    agent = SMFP(cfg)
    state = agent.init(jax.random.PRNGKey(0), OBS, ACT)
    update = jax.jit(agent.update)
    s1, m1 = update(state, random_batch(1), jax.random.PRNGKey(1))  # step 0: actor step
    s2, m2 = update(s1, random_batch(2), jax.random.PRNGKey(2))  # step 1: critic only
    assert all(np.isfinite(float(v)) for v in {**m1, **m2}.values())
    assert "particle_ess" in m1 and 1.0 <= float(m1["particle_ess"]) <= 4.0
    assert not trees_equal(s1.actor_params, state.actor_params)
    assert trees_equal(s2.actor_params, s1.actor_params)  # policy delay skipped the actor
    assert not trees_equal(s1.anchor_params, state.anchor_params)  # EMA moved the anchor
    assert float(m1["md_coef"]) != cfg.md_coef  # dual step moved beta
    a = jax.jit(agent.act)(s2, random_batch().obs, jax.random.PRNGKey(5))
    e = jax.jit(agent.eval_act)(s2, random_batch().obs)
    assert bool(jnp.all(jnp.abs(a) <= 1)) and bool(jnp.all(jnp.abs(e) <= 1))


def test_no_entropy_ablation_has_zero_sigma_and_zero_temperature():
    agent = SMFP(SMFP.Config(sigma_mode="zero", entropy_surrogate="none", learn_temperature=False, **SMALL))
    state = agent.init(jax.random.PRNGKey(0), OBS, ACT)
    obs = random_batch().obs
    a1 = agent.act(state, obs, jax.random.PRNGKey(1))
    x = agent.policy.draw(state.actor_params, obs, jax.random.PRNGKey(1))
    np.testing.assert_allclose(np.asarray(a1), np.tanh(np.asarray(x.x)), rtol=1e-6)
    _, metrics = jax.jit(agent.update)(state, random_batch(), jax.random.PRNGKey(2))
    assert float(metrics["temperature"]) == 0.0 and float(metrics["entropy"]) == 0.0


@pytest.mark.parametrize("field, value, match", [
    ("entropy_surrogate", "exact", "entropy_surrogate"),
    ("actor_update", "ppo", "actor_update"),
    ("anchor_update", "copy", "anchor_update"),
    ("anchor_period", 0, "anchor_period"),
    ("sigma_mode", "zero", "sigma_mode"),  # with the default conditional surrogate
])
def test_bad_config_fails_at_construction_naming_the_field(field, value, match):
    with pytest.raises(ValueError, match=match):
        SMFP.Config(**{field: value})
