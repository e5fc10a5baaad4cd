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
from mjx_smfp.policies.meanflow import MeanFlowConfig, MeanFlowPolicy
from mjx_smfp.types import Gated

OBS, ACT, BATCH = 5, 3, 16
SMALL = dict(actor_hidden=(32, 32), critic_hidden=(32, 32), policy=MeanFlowConfig(time_embed_dim=16))


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


def actor_value(metric) -> float:
    """An actor metric (Gated: value, weight) of an update that ran the actor step."""
    assert isinstance(metric, Gated) and float(metric.weight) == 1.0
    return float(metric.value)


def trees_equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(leaves(a), leaves(b)))


@pytest.fixture(scope="module")
def default_agent():
    agent = agents.make("smfp", SMFP.Config(anchor_period=3, **SMALL), OBS, ACT)
    state = agent.init(jax.random.PRNGKey(0))
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
    assert all(np.isfinite(float(v)) for v in jax.tree_util.tree_leaves(metrics)), metrics
    assert not trees_equal(new.actor_params, state.actor_params)
    assert not trees_equal(new.critic_params, state.critic_params)
    assert not trees_equal(new.target_critic_params, state.target_critic_params)
    assert float(metrics["temperature"]) != 1.0  # auto temperature moved
    assert int(new.step) == 1 and int(new.actor_steps) == 1


def test_meanflow_loss_sees_only_the_first_quarter_of_the_batch_by_default(default_agent):
    """meanflow_fraction = 0.25: changing rows past BATCH/4 leaves the MeanFlow error unchanged,
    changing row 0 changes it (same rng, so the same MeanFlow noise and times)."""
    agent, state, update = default_agent
    assert agent.config.meanflow_fraction == 0.25
    batch, rng = random_batch(), jax.random.PRNGKey(4)
    base = actor_value(update(state, batch, rng)[1]["meanflow_sq_error"])
    n = BATCH // 4
    tail = batch.replace(obs=batch.obs.at[n:].add(3.0))
    head = batch.replace(obs=batch.obs.at[0].add(3.0))
    assert actor_value(update(state, tail, rng)[1]["meanflow_sq_error"]) == base
    assert actor_value(update(state, head, rng)[1]["meanflow_sq_error"]) != base


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
    assert abs(actor_value(metrics["kl"])) < 1e-6


def test_every_switch_off_default_compiles_and_trains_finite():
    """weighted particles + jacobian entropy + per-dim sigma + SiLU + split input layer + EMA anchor +
    improved MeanFlow + dual md_coef + replay MeanFlow targets + best-of-N + policy delay, in one compile."""
    policy = MeanFlowConfig(time_embed_dim=16, entropy_surrogate="jacobian", sigma_mode="per_dim", input_layer="split")
    cfg = SMFP.Config(actor_update="weighted", num_particles=4, anchor_update="ema", meanflow_variant="improved",
                      learn_md_coef=True, meanflow_target="replay", best_of_n=4, eval_best_of_n=4, policy_delay=2,
                      entropy_in_backup=False, activation="silu", **dict(SMALL, policy=policy))
    agent = agents.make("smfp", cfg, OBS, ACT)
    state = agent.init(jax.random.PRNGKey(0))
    update = jax.jit(agent.update)
    s1, m1 = update(state, random_batch(1), jax.random.PRNGKey(1))  # step 0: actor step
    s2, m2 = update(s1, random_batch(2), jax.random.PRNGKey(2))  # step 1: critic only
    assert all(np.isfinite(float(v)) for v in jax.tree_util.tree_leaves((m1, m2)))
    assert "particle_ess" in m1 and 1.0 <= actor_value(m1["particle_ess"]) <= 4.0
    assert not trees_equal(s1.actor_params, state.actor_params)
    assert trees_equal(s2.actor_params, s1.actor_params)  # policy delay skipped the actor
    assert not trees_equal(s1.anchor_params, state.anchor_params)  # EMA moved the anchor
    assert float(m1["md_coef"]) != cfg.md_coef  # dual step moved beta
    a = jax.jit(agent.act)(s2, random_batch().obs, jax.random.PRNGKey(5))
    e = jax.jit(agent.eval_act)(s2, random_batch().obs)
    assert bool(jnp.all(jnp.abs(a) <= 1)) and bool(jnp.all(jnp.abs(e) <= 1))


def test_no_entropy_ablation_has_zero_sigma_and_zero_temperature():
    policy = MeanFlowConfig(time_embed_dim=16, sigma_mode="zero", entropy_surrogate="none")
    agent = agents.make("smfp", SMFP.Config(learn_temperature=False, **dict(SMALL, policy=policy)), OBS, ACT)
    state = agent.init(jax.random.PRNGKey(0))
    obs = random_batch().obs
    a1 = agent.act(state, obs, jax.random.PRNGKey(1))
    x = agent.policy.draw(state.actor_params, obs, jax.random.PRNGKey(1))
    np.testing.assert_allclose(np.asarray(a1), np.tanh(np.asarray(x.x)), rtol=1e-6)
    _, metrics = jax.jit(agent.update)(state, random_batch(), jax.random.PRNGKey(2))
    assert float(metrics["temperature"]) == 0.0 and actor_value(metrics["entropy"]) == 0.0


@pytest.mark.parametrize("config, field, value, match", [
    (MeanFlowConfig, "entropy_surrogate", "exact", "entropy_surrogate"),
    (SMFP.Config, "actor_update", "ppo", "actor_update"),
    (SMFP.Config, "anchor_update", "copy", "anchor_update"),
    (SMFP.Config, "anchor_period", 0, "anchor_period"),
    (SMFP.Config, "meanflow_fraction", 0.0, "meanflow_fraction"),
    (SMFP.Config, "meanflow_fraction", 1.5, "meanflow_fraction"),
    (SMFP.Config, "activation", "tanh", "activation"),
    (SMFP.Config, "log_std_max", -3.0, "sigma_init"),  # the initial sigma 0.1 would be clipped
    (MeanFlowConfig, "sigma_mode", "zero", "sigma_mode"),  # with the default conditional surrogate
    (SMFP.Config, "actor_lr", float("nan"), "actor_lr"),
    (SMFP.Config, "gamma", 1.5, "gamma"),
])
def test_bad_config_fails_at_construction_naming_the_field(config, field, value, match):
    with pytest.raises(ValueError, match=match):
        config(**{field: value})


def test_policy_delay_traces_the_actor_step_once(monkeypatch):
    """The skip branch of the policy delay reuses the actor step's trace (the JVP path is costly)."""
    agent = agents.make("smfp", SMFP.Config(policy_delay=2, **SMALL), OBS, ACT)
    traced, loss = [], agent.actor_loss
    monkeypatch.setattr(agent, "actor_loss", lambda *a: (traced.append(1), loss(*a))[1])
    jax.jit(agent.update).lower(agent.init(jax.random.PRNGKey(0)), random_batch(), jax.random.PRNGKey(1))
    assert len(traced) == 1


def test_a_policy_built_directly_is_the_policy_the_agent_trains():
    agent = agents.make("smfp", SMFP.Config(actor_hidden=(256, 256, 256)), OBS, ACT)
    assert agent.policy == MeanFlowPolicy(action_size=ACT)


# ----------------------------------------------------------------------------------------
# RL: multimodality on the multimodal bandit, and learning a small state-dependent task,
# through the real compiled loop (tests/mjx_smfp/agents/bandit.py).
# ----------------------------------------------------------------------------------------
import os  # noqa: E402

from mjx_smfp.agents.sac import SAC  # noqa: E402
from mjx_smfp.config import TrainConfig  # noqa: E402
from tests.mjx_smfp.agents.bandit import BANDIT, MULTIMODAL, train  # noqa: E402
from tests.dummy_envs import DummyTask  # noqa: E402


@pytest.fixture(scope="module")
def multimodal_actions(tmp_path_factory):
    import envs

    bandit = envs.make("multimodal", num_modes=4)
    obs = jnp.zeros((4000, bandit.observation_size))
    out = {}
    for name, agent_config in (("smfp", SMFP.Config(**BANDIT)), ("sac", SAC.Config(**BANDIT))):
        engine, ts = train(name, agent_config, MULTIMODAL)
        actions = jax.jit(engine.agent.act)(ts.agent, obs, jax.random.PRNGKey(11))
        out[name] = dict(actions=np.asarray(actions), masses=np.asarray(bandit.mode_masses(actions)),
                         reward=float(bandit.reward(actions).mean()), state=ts.agent)
    out["plot"] = str(tmp_path_factory.mktemp("plots") / "multimodal_smfp_vs_sac.png")
    _scatter(bandit, out, out["plot"])
    return out


def _scatter(bandit, out, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.5), sharex=True, sharey=True)
    for ax, name in zip(axes, ("smfp", "sac")):
        a = out[name]["actions"]
        ax.scatter(a[:, 0], a[:, 1], s=2, alpha=0.3)
        ax.scatter(bandit.centres[:, 0], bandit.centres[:, 1], marker="x", c="red", s=80, label="optimal modes")
        masses = ", ".join(f"{m:.2f}" for m in out[name]["masses"])
        ax.set_title(f"{name.upper()}: mode mass [{masses}]\nmean reward {out[name]['reward']:.2f}", fontsize=9)
        ax.set_xlim(-1, 1)
        ax.set_ylim(-1, 1)
        ax.set_aspect("equal")
    axes[0].legend(loc="lower left", fontsize=8)
    fig.suptitle("4-mode bandit, same loop/budget (8k env steps): 4000 stochastic actions each")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def test_smfp_puts_at_least_10_percent_on_three_of_four_optimal_modes(multimodal_actions):
    smfp = multimodal_actions["smfp"]
    assert int(np.sum(smfp["masses"] >= 0.10)) >= 3, smfp["masses"]
    # ... and it is a good policy, not a broad untrained one (which scores ~0.25).
    assert smfp["reward"] >= 0.5, smfp["reward"]


def test_best_of_n_evaluation_lands_on_a_mode_of_the_trained_smfp(multimodal_actions):
    """eval_best_of_n = 16 (argmax min-Q over xi = 0 draws) gives a deterministic action at a mode."""
    import envs

    bandit = envs.make("multimodal", num_modes=4)
    agent = agents.make("smfp", SMFP.Config(eval_best_of_n=16, **BANDIT), bandit.observation_size,
                        bandit.action_size)
    action = jax.jit(agent.eval_act)(multimodal_actions["smfp"]["state"], jnp.zeros((1, bandit.observation_size)))
    assert float(bandit.reward(action)[0]) >= 0.8, action


def test_gaussian_sac_trained_the_same_way_collapses_to_one_mode_or_straddles(multimodal_actions):
    """A unimodal Gaussian either picks one peak (>= 90% of its in-mode mass on one mode) or
    straddles them and is penalised (reward well below SMFP's)."""
    sac, smfp = multimodal_actions["sac"], multimodal_actions["smfp"]
    in_mode = sac["masses"].sum()
    one_mode = in_mode > 0 and sac["masses"].max() / in_mode >= 0.9
    straddles = sac["reward"] <= smfp["reward"] - 0.2
    assert one_mode or straddles, (sac, smfp["reward"])
    assert os.path.getsize(multimodal_actions["plot"]) > 0


def test_smfp_learns_a_state_dependent_task_past_random_and_untrained_policies():
    """The loop's dummy task (reward 1 - mean|a - 0.8 obs[:2]|, 20-step episodes, gamma 0.99):
    random actions score ~0.45 per step, the untrained SMFP ~0.6; require >= 0.8 after 6k steps."""
    cfg = TrainConfig(env="multimodal", num_envs=8, episode_length=20, total_env_steps=6_000, batch_size=64,
                      updates_per_step=2, replay_capacity=6_000, learning_starts=200, iterations_per_call=25,
                      eval_interval=0, eval_episodes=16, checkpoint_interval=0)
    agent_config = SMFP.Config(actor_hidden=(64, 64), critic_hidden=(64, 64), init_temperature=0.1,
                               policy=MeanFlowConfig(time_embed_dim=16))
    engine, ts = train("smfp", agent_config, cfg, task=DummyTask())
    fresh = engine.init_state()
    r0, l0 = engine.evaluate(fresh, jax.random.PRNGKey(7))
    returns, lengths = engine.evaluate(ts, jax.random.PRNGKey(7))
    per_step = float(returns.sum() / lengths.sum())
    assert float(r0.sum() / l0.sum()) < 0.7
    assert per_step >= 0.8, per_step


def test_weighted_update_fits_the_flow_to_x_weights_without_log_n_xi_and_reports_per_state_ess(monkeypatch):
    """The weighted mode's fixes, on one eager loss call with the weights and draws recorded: the
    flow is fit to the particles' flow outputs x (not their noisy y), the weights' log pi_k drops
    the boundary draw's own density log N(xi), and `particle_ess` is the mean over states of each
    state's ESS (a state whose weight sits on one particle counts 1, not a pooled share)."""
    from mjx_smfp import mirror_descent
    from mjx_smfp.policies.densities import standard_normal_logpdf

    n = 4
    agent = agents.make("smfp", SMFP.Config(actor_update="weighted", num_particles=n, **SMALL), OBS, ACT)
    state = agent.init(jax.random.PRNGKey(0))
    seen = {}
    draw, mf_loss = MeanFlowPolicy.draw, SMFP._meanflow_loss
    monkeypatch.setattr(MeanFlowPolicy, "draw", lambda self, *a: seen.setdefault("particles", draw(self, *a)))
    monkeypatch.setattr(SMFP, "_meanflow_loss", lambda self, p, o, data, *a, **k: (
        seen.setdefault("data", data), mf_loss(self, p, o, data, *a, **k))[1])
    fixed = jnp.full((n, BATCH), 1.0 / n).at[:, 0].set(jnp.array([1.0, 0.0, 0.0, 0.0]))  # state 0: ESS 1
    monkeypatch.setattr(mirror_descent, "particle_weights",
                        lambda q, logp, *a, **k: (seen.setdefault("logp", logp), fixed)[1])
    batch = random_batch(3)
    _, aux = agent._weighted_loss(state.actor_params, state.anchor_params, state.critic_params, batch, 0.1, 0.01,
                                  jax.random.PRNGKey(5))
    particles = seen["particles"]
    assert np.allclose(seen["data"], particles.x) and not np.allclose(particles.x, particles.y)
    obs_n = jnp.broadcast_to(batch.obs[None], (n,) + batch.obs.shape).reshape(n * BATCH, -1)
    logp = agent.policy.log_prob(state.anchor_params, obs_n, particles) - standard_normal_logpdf(particles.xi)
    assert np.allclose(np.asarray(seen["logp"]).reshape(-1), np.asarray(logp).reshape(-1), atol=1e-5)
    assert float(aux["particle_ess"]) == pytest.approx((1.0 + (BATCH - 1) * n) / BATCH)


def test_weighted_sigma_objective_holds_the_jacobian_surrogates_jacobian_fixed(monkeypatch):
    """(c) of the weighted mode's fixes: with entropy_surrogate="jacobian", the sigma objective
    mean(-Q + alpha log pi_hat) holds the flow fixed, its Jacobian included. Its gradient in the
    actor parameters equals jax.grad of a hand-written reference in which x = g(eps) and
    log|det dg/deps| come from a copy of the parameters that is not differentiated, so the flow's
    own parameters (all but the sigma head; they enter this objective only through x and the
    Jacobian) get exactly zero gradient, while the Jacobian does depend on them (not vacuous)."""
    from mjx_smfp.policies.densities import standard_normal_logpdf, tanh_log_det

    tiny = dict(actor_hidden=(8, 8), critic_hidden=(8, 8),
                policy=MeanFlowConfig(time_embed_dim=4, sigma_hidden=8, entropy_surrogate="jacobian"))
    agent = agents.make("smfp", SMFP.Config(actor_update="weighted", num_particles=2, **tiny), OBS, ACT)
    k_actor, k_critic, k_noise = jax.random.split(jax.random.PRNGKey(0), 3)
    params = agent.policy.init(k_actor, OBS)
    critic = agent.critic_net.init(k_critic, jnp.zeros((1, OBS)), jnp.zeros((1, ACT)))
    batch, alpha = random_batch(4), 0.5
    obs = batch.obs
    # Only the sigma objective: the weighted MeanFlow term (which does train the flow) set to 0.
    monkeypatch.setattr(SMFP, "_meanflow_loss", lambda self, *a, **k: (jnp.zeros(()), {}))
    # The sigma objective's draw, fixed here (the particles' draw, [num_particles * BATCH], is left alone).
    eps, xi = jax.random.normal(k_noise, (2, BATCH, ACT))
    noise = MeanFlowPolicy.noise
    monkeypatch.setattr(MeanFlowPolicy, "noise",
                        lambda self, rng, shape: (eps, xi) if tuple(shape) == (BATCH,) else noise(self, rng, shape))

    def log_det(p):  # log|det dg_s/deps| per state
        jac = jax.vmap(jax.jacfwd(lambda o, e: agent.policy.flow(p, o[None], e[None])[0], argnums=1))(obs, eps)
        return jnp.linalg.slogdet(jac)[1]

    def reference(p, frozen):  # the flow (x and its Jacobian) evaluated at `frozen`, not differentiated
        y = agent.policy.flow(frozen, obs, eps) + jnp.exp(agent.policy.log_sigma(p, obs)) * xi
        logp = standard_normal_logpdf(eps) - log_det(frozen) - tanh_log_det(y)
        return jnp.mean(-agent.actor_q(critic, obs, jnp.tanh(y)) + alpha * logp)

    def weighted(p):
        return agent._weighted_loss(p, params, critic, batch, alpha, 0.01, jax.random.PRNGKey(7))[0]

    grads, expected, leak = jax.jit(lambda p: (jax.grad(weighted)(p), jax.grad(reference)(p, p),
                                               jax.grad(lambda q: jnp.mean(log_det(q)))(p)))(params)
    assert jax.tree_util.tree_structure(grads) == jax.tree_util.tree_structure(expected)
    for (path, got), want in zip(jax.tree_util.tree_leaves_with_path(grads), jax.tree_util.tree_leaves(expected)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-7,
                                   err_msg=jax.tree_util.keystr(path))
    flow = {k: v for k, v in grads["params"].items() if k != "sigma_head"}
    assert flow and all(np.all(np.asarray(g) == 0.0) for g in jax.tree_util.tree_leaves(flow))
    assert any(np.any(np.asarray(g) != 0.0) for g in jax.tree_util.tree_leaves(grads["params"]["sigma_head"]))
    assert max(float(jnp.max(jnp.abs(g))) for g in jax.tree_util.tree_leaves(leak["params"]["trunk"])) > 1e-4


def test_diagnostics_see_the_flows_spread_that_the_conditional_surrogate_leaves_out():
    """At init x ~ 0.5 eps + a small MLP output (flow_init_scale, out_scale): the flow's spread
    E||x1 - x2||^2 / 2 is at least 0.25 per dim, sigma ~0.1, and the k-NN entropy of the actions exceeds the conditional surrogate -E log pi_hat
    (= H(A | eps) <= H(A)) by about what the flow's spread adds. With the flow's noise switched off
    (flow_init_scale tiny, out_scale tiny) the spread is ~0."""
    agent = agents.make("smfp", SMFP.Config(**SMALL), OBS, ACT)
    state = agent.init(jax.random.PRNGKey(0))
    obs = jax.random.normal(jax.random.PRNGKey(1), (8, OBS))
    found = jax.jit(agent.diagnostics)(state, obs, jax.random.PRNGKey(2))
    assert 0.2 * ACT < float(found["flow_spread"]) < 1.0 * ACT
    assert float(found["sigma_mean"]) == pytest.approx(0.1, rel=0.05)
    assert float(found["knn_entropy"]) > float(found["entropy_estimate"]) + 2.0
    narrow = agents.make("smfp", SMFP.Config(**{**SMALL, "policy": MeanFlowConfig(
        time_embed_dim=16, flow_init_scale=1e-4, out_scale=1e-8)}), OBS, ACT)
    found = narrow.diagnostics(narrow.init(jax.random.PRNGKey(0)), obs, jax.random.PRNGKey(2))
    assert float(found["flow_spread"]) < 1e-4
