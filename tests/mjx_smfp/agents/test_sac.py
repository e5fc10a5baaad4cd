"""Gaussian SAC update rule: temperature follows the target entropy, policy delay skips the
actor, targets trail the critic by tau, and the Agent contract holds (actions in [-1, 1])."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mjx_smfp.agents import make
from mjx_smfp.agents.base import Transition
from mjx_smfp.agents.sac import SAC

BATCH = Transition(obs=jax.random.normal(jax.random.PRNGKey(0), (32, 3)),
                   action=jax.random.uniform(jax.random.PRNGKey(1), (32, 2), minval=-1, maxval=1),
                   reward=jnp.ones(32), next_obs=jax.random.normal(jax.random.PRNGKey(2), (32, 3)),
                   terminated=jnp.zeros(32), truncated=jnp.zeros(32))


def _agent(**kw):
    return make("sac", SAC.Config(actor_hidden=(16, 16), critic_hidden=(16, 16), **kw), 3, 2)


def _changed(a, b):
    return any(not np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


@pytest.fixture(scope="module")
def delayed_agent():
    """Policy delay 2, tau 0.5, a target entropy far below the initial one (~0.1 nats)."""
    agent = _agent(policy_delay=2, tau=0.5, target_entropy=-50.0, temperature_lr=1e-2)
    return agent, jax.jit(agent.update)


def test_temperature_moves_toward_the_target_entropy(delayed_agent):
    agent, update = delayed_agent
    state = agent.init(jax.random.PRNGKey(0))
    for i in range(4):
        state, metrics = update(state, BATCH, jax.random.PRNGKey(i))
        if i == 2:  # an actor step (policy delay 2): its entropy metric is Gated with weight 1
            entropy = metrics["entropy"]
    # entropy (~0.1 nats) is above the target: the temperature falls, step after step.
    assert float(entropy.weight) == 1.0 and float(entropy.value) > -50.0
    assert 0.9 < float(metrics["temperature"]) < 1.0
    state, metrics2 = update(state, BATCH, jax.random.PRNGKey(9))
    assert float(metrics2["temperature"]) < float(metrics["temperature"])


def test_policy_delay_updates_the_actor_every_other_step_and_targets_trail_by_tau(delayed_agent):
    agent, update = delayed_agent
    s0 = agent.init(jax.random.PRNGKey(0))
    s1, _ = update(s0, BATCH, jax.random.PRNGKey(1))  # step 0: actor + critic
    s2, _ = update(s1, BATCH, jax.random.PRNGKey(2))  # step 1: critic only
    assert _changed(s0.actor_params, s1.actor_params) and not _changed(s1.actor_params, s2.actor_params)
    assert _changed(s1.critic_params, s2.critic_params)
    expected = jax.tree_util.tree_map(lambda t, o: 0.5 * t + 0.5 * o, s1.target_critic_params, s2.critic_params)
    for a, b in zip(jax.tree_util.tree_leaves(expected), jax.tree_util.tree_leaves(s2.target_critic_params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)


def test_registry_builds_sac_and_its_actions_stay_in_bounds():
    agent = make("sac", SAC.Config(actor_hidden=(16, 16), critic_hidden=(16, 16)), 3, 2)
    state = agent.init(jax.random.PRNGKey(0))
    obs = 100.0 * jax.random.normal(jax.random.PRNGKey(1), (64, 3))
    for action in (agent.act(state, obs, jax.random.PRNGKey(2)), agent.eval_act(state, obs)):
        assert action.shape == (64, 2) and float(jnp.abs(action).max()) <= 1.0


def test_a_fixed_temperature_leaves_alpha_and_its_optimiser_state_untouched():
    agent = _agent(learn_temperature=False, init_temperature=0.2)
    state = agent.init(jax.random.PRNGKey(0))
    new, metrics = jax.jit(agent.update)(state, BATCH, jax.random.PRNGKey(1))
    assert not _changed(state.temperature_opt_state, new.temperature_opt_state)
    np.testing.assert_allclose(float(metrics["temperature"]), 0.2, rtol=1e-6)
    assert _changed(state.actor_opt_state, new.actor_opt_state)


@pytest.mark.parametrize("critic_type", ["c51", "hl_gauss"])
def test_a_distributional_critic_trains_through_the_shared_update_and_q_is_its_expectation(critic_type):
    agent = _agent(critic_type=critic_type, num_atoms=11, value_min=-10.0, value_max=10.0)
    state = agent.init(jax.random.PRNGKey(0))
    logits = agent.critic_net.apply(state.critic_params, BATCH.obs, BATCH.action)
    assert logits.shape == (2, 32, 11)  # [heads, batch, atoms]
    expected = jax.nn.softmax(logits, axis=-1) @ jnp.linspace(-10.0, 10.0, 11)
    np.testing.assert_allclose(np.asarray(agent.q(state.critic_params, BATCH.obs, BATCH.action)),
                               np.asarray(expected), rtol=1e-5, atol=1e-6)
    new, metrics = jax.jit(agent.update)(state, BATCH, jax.random.PRNGKey(1))
    assert all(np.isfinite(float(v)) for v in jax.tree_util.tree_leaves(metrics)), metrics  # Gated: (value, weight)
    assert float(metrics["critic_loss"]) > 0 and _changed(state.critic_params, new.critic_params)
    assert _changed(state.actor_params, new.actor_params)


def test_the_actor_sees_the_min_or_the_mean_of_the_heads_per_q_actor_combine():
    for how, reduce in (("min", np.min), ("mean", np.mean)):
        agent = _agent(q_actor_combine=how, num_q_heads=3)
        state = agent.init(jax.random.PRNGKey(0))
        q = np.asarray(agent.q(state.critic_params, BATCH.obs, BATCH.action))
        assert q.shape == (3, 32) and q.std(axis=0).min() > 0  # the heads differ
        np.testing.assert_allclose(np.asarray(agent.actor_q(state.critic_params, BATCH.obs, BATCH.action)),
                                   reduce(q, axis=0), rtol=1e-6)
        # ...and the actor loss uses exactly that Q (the same reparameterised draw).
        loss, _ = agent.actor_loss(state.actor_params, state, BATCH, jnp.asarray(0.3), jax.random.PRNGKey(5))
        action, logp = agent.policy.sample(state.actor_params, BATCH.obs, jax.random.PRNGKey(5))
        q_action = reduce(np.asarray(agent.q(state.critic_params, BATCH.obs, action)), axis=0)
        np.testing.assert_allclose(float(loss), np.mean(0.3 * np.asarray(logp) - q_action), rtol=1e-5)
    with pytest.raises(ValueError, match="q_target_combine='max' is not valid"):
        SAC.Config(q_target_combine="max")


@pytest.mark.parametrize("centred", [False, True])
def test_the_centred_backup_prices_log_pi_plus_the_target_entropy_so_it_averages_zero_at_the_target(monkeypatch, centred):
    """The critic's soft target gets log pi(a'|s') + H_target with `entropy_backup_centred` (its mean is 0
    while the entropy sits at its target, so a negative target does not make staying alive a cost), and
    log pi(a'|s') itself without it; the temperature steps on the uncentred estimate either way."""
    from mjx_smfp import critic as critic_lib
    seen, real = [], critic_lib.soft_target

    def spy(params, batch, next_action, next_logp, *args, **kw):
        seen.append(np.asarray(next_logp))
        return real(params, batch, next_action, next_logp, *args, **kw)

    monkeypatch.setattr(critic_lib, "soft_target", spy)
    agent = _agent(target_entropy=-7.0, entropy_backup_centred=centred, temperature_every_update=True)
    state = agent.init(jax.random.PRNGKey(0))
    new, metrics = agent.critic_step(state, BATCH, agent.temperature(state), jax.random.PRNGKey(3))
    _, logp = agent.policy.sample(state.actor_params, BATCH.next_obs, jax.random.PRNGKey(3))
    np.testing.assert_allclose(seen[0], np.asarray(logp) + (-7.0 if centred else 0.0), rtol=1e-6)
    assert float(metrics["next_entropy"]) == pytest.approx(-float(np.mean(logp)), rel=1e-6)
