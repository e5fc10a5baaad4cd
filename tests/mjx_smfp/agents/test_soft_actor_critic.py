"""The parallel-regime recipe fields every soft actor-critic agent shares
(SoftActorCriticConfig): AdamW weight decay and betas, the hidden activation, bfloat16 matmuls,
the three ways to set the temperature's target entropy, and the log-std bounds; every agent's
policy takes the actor-network fields as one ActorNetworkConfig and honours each of them."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mjx_smfp import agents
from mjx_smfp.agents.sac import SAC
from mjx_smfp.agents.smfp import SMFP
from mjx_smfp.agents.soft_actor_critic import SoftActorCriticConfig
from mjx_smfp.agents.temperature import resolve_target_entropy
from mjx_smfp.policies.gaussian import TanhGaussianPolicy
from mjx_smfp.policies.meanflow import MeanFlowConfig
from tests.mjx_smfp.agents.test_sac import BATCH

OBS, ACT = 3, 2
SMALL = dict(actor_hidden=(16, 16), critic_hidden=(16, 16))


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


# -- optimiser ------------------------------------------------------------------------------
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adamw_decays_params_by_lr_times_wd_per_step_and_wd_zero_leaves_them(weight_decay):
    """With zero gradients Adam's own step is 0, so only the decoupled decay moves the params:
    p <- p (1 - lr wd) each step (after the gradient clip, which zero gradients pass)."""
    lr = 1e-2
    agent = agents.make("sac", SAC.Config(actor_lr=lr, critic_lr=lr, weight_decay=weight_decay, **SMALL), OBS, ACT)
    state = agent.init(jax.random.PRNGKey(0))

    @jax.jit
    def three_steps(params):
        out = []
        for optimizer, p in zip((agent.actor_optimizer, agent.critic_optimizer), params):
            opt_state, zeros = optimizer.init(p), jax.tree_util.tree_map(jnp.zeros_like, p)
            for _ in range(3):
                updates, opt_state = optimizer.update(zeros, opt_state, p)
                p = optax.apply_updates(p, updates)
            out.append(p)
        return out

    initial = (state.actor_params, state.critic_params)
    for params, new in zip(initial, three_steps(initial)):
        for before, after in zip(_leaves(params), _leaves(new)):
            np.testing.assert_allclose(after, before * (1 - lr * weight_decay) ** 3, rtol=1e-6, atol=1e-9)
        assert weight_decay == 0 or any(np.abs(a - b).max() > 0 for a, b in zip(_leaves(params), _leaves(new)))


def test_adam_betas_reach_the_actor_and_critic_optimisers():
    """Three steps of varying gradients give exactly optax.adam(lr, b1, b2)'s updates, and other
    betas would give different ones (so the check can fail)."""
    cfg = SAC.Config(adam_b1=0.5, adam_b2=0.95, grad_clip=0.0, **SMALL)
    agent = agents.make("sac", cfg, OBS, ACT)
    params = agent.init(jax.random.PRNGKey(0)).actor_params
    grads = [jax.tree_util.tree_map(lambda p, k=k: jnp.full_like(p, (-1.0) ** k * (k + 1)), params) for k in range(3)]

    def run(optimizer):
        opt_state, out = optimizer.init(params), []
        for g in grads:
            updates, opt_state = optimizer.update(g, opt_state, params)
            out += _leaves(updates)
        return out

    ours, reference = run(agent.actor_optimizer), run(optax.adam(cfg.actor_lr, 0.5, 0.95))
    for a, b in zip(ours, reference):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    assert any(np.abs(a - b).max() > 1e-6 for a, b in zip(ours, run(optax.adam(cfg.actor_lr))))
    assert len(run(agent.critic_optimizer)) == len(ours)


# -- activation -----------------------------------------------------------------------------
def _mlp_forward(layers, x, act, layer_norm=False):
    """numpy reference of networks.MLP on its params {Dense_i, LayerNorm_i}."""
    n = sum(k.startswith("Dense") for k in layers)
    for i in range(n):
        x = x @ np.asarray(layers[f"Dense_{i}"]["kernel"]) + np.asarray(layers[f"Dense_{i}"]["bias"])
        if i < n - 1:
            if layer_norm:
                ln = layers[f"LayerNorm_{i}"]
                x = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-6)
                x = x * np.asarray(ln["scale"]) + np.asarray(ln["bias"])
            x = act(x)
    return x


ACTIVATION_FNS = {"relu": lambda x: np.maximum(x, 0.0), "silu": lambda x: x / (1.0 + np.exp(-x))}


@pytest.mark.parametrize("activation", ["relu", "silu"])
def test_activation_is_the_hidden_nonlinearity_of_the_critic_and_the_gaussian_actor(activation):
    agent = agents.make("sac", SAC.Config(activation=activation, **SMALL), OBS, ACT)
    state = agent.init(jax.random.PRNGKey(0))
    obs, action = np.asarray(BATCH.obs[:8]), np.asarray(BATCH.action[:8])
    heads = state.critic_params["params"]["VmapMLP_0"]
    for i in range(2):
        head = jax.tree_util.tree_map(lambda p, i=i: p[i], heads)
        expected = _mlp_forward(head, np.concatenate([obs, action], -1), ACTIVATION_FNS[activation], layer_norm=True)
        np.testing.assert_allclose(np.asarray(agent.q(state.critic_params, obs, action))[i], expected[:, 0],
                                   rtol=1e-4, atol=1e-5)
    mean, _ = agent.policy.distribution(state.actor_params, obs)
    expected = _mlp_forward(state.actor_params["params"], obs, ACTIVATION_FNS[activation])[:, :ACT]
    np.testing.assert_allclose(np.asarray(mean), expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", agents.names())
def test_every_agent_config_rejects_an_unknown_activation_or_matmul_dtype(name):
    cls = agents.get_class(name).Config
    with pytest.raises(ValueError, match=r"activation='tanh' is not valid; choose one of"):
        cls(activation="tanh")
    with pytest.raises(ValueError, match=r"matmul_dtype='float16' is not valid; choose one of"):
        cls(matmul_dtype="float16")


# -- bfloat16 matmuls -----------------------------------------------------------------------
def _dtypes(tree):
    return {x.dtype for x in jax.tree_util.tree_leaves(tree) if hasattr(x, "dtype")}


def _rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-6)


def test_bfloat16_matmuls_keep_sac_state_and_outputs_float32_and_close_to_float32():
    f32 = agents.make("sac", SAC.Config(**SMALL), OBS, ACT)
    bf16 = agents.make("sac", SAC.Config(matmul_dtype="bfloat16", **SMALL), OBS, ACT)
    state = bf16.init(jax.random.PRNGKey(0))
    assert _dtypes(state) <= {jnp.dtype(jnp.float32), jnp.dtype(jnp.int32)}
    new, metrics = jax.jit(bf16.update)(state, BATCH, jax.random.PRNGKey(1))
    values = jax.tree_util.tree_leaves(metrics)  # actor metrics are Gated (value, weight) pairs
    assert _dtypes(new) == _dtypes(state) and all(v.dtype == jnp.float32 for v in values)
    assert all(np.isfinite(float(v)) for v in values)
    obs, rng = BATCH.obs, jax.random.PRNGKey(2)
    for out16, out32 in ((bf16.act(new, obs, rng), f32.act(new, obs, rng)),
                         (bf16.eval_act(new, obs), f32.eval_act(new, obs)),
                         (bf16.policy.sample(new.actor_params, obs, rng)[1], f32.policy.sample(new.actor_params, obs, rng)[1]),
                         (bf16.q(new.critic_params, obs, BATCH.action), f32.q(new.critic_params, obs, BATCH.action))):
        assert out16.dtype == jnp.float32
        assert 0 < _rel(out16, out32) < 0.05  # bf16 keeps ~3 significant digits: it differs, a little


def _matmul_dtypes(fn, *args) -> list:
    """The operand dtypes of every matmul (dot_general) `fn(*args)` traces, sub-programs (scan, jit) included."""
    def walk(jaxpr):
        for eqn in jaxpr.eqns:
            if eqn.primitive.name == "dot_general":
                yield {str(v.aval.dtype) for v in eqn.invars}
            for value in eqn.params.values():
                for sub in value if isinstance(value, (tuple, list)) else (value,):
                    if isinstance(sub, (jax.extend.core.ClosedJaxpr, jax.extend.core.Jaxpr)):
                        yield from walk(getattr(sub, "jaxpr", sub))
    return list(walk(jax.make_jaxpr(fn)(*args).jaxpr))


@pytest.mark.parametrize("name", agents.names())
def test_every_agent_builds_its_policy_from_its_configs_actor_network_fields(name):
    cls = agents.get_class(name).Config
    cfg = cls(actor_hidden=(8, 4), activation="silu", matmul_dtype="bfloat16", log_std_min=-3.0, log_std_max=0.5)
    net = agents.make(name, cfg, OBS, ACT).policy.network_config
    assert net == cfg.actor_network()
    assert (net.hidden, net.activation, net.matmul_dtype, net.log_std_min, net.log_std_max) == (
        (8, 4), "silu", "bfloat16", -3.0, 0.5)


@pytest.mark.parametrize("name", agents.names())
def test_bfloat16_reaches_every_matmul_of_every_agents_actor_and_its_actions_stay_float32(name):
    """With matmul_dtype bfloat16 every matmul of a draw (all K flow / N diffusion steps, SAC Flow's
    sigma(s), SMFP's sigma head and time embeddings) computes in bfloat16, none with float32; the
    parameters, actions and log pi stay float32 and close to the float32 policy's."""
    cls = agents.get_class(name).Config
    f32, bf16 = (agents.make(name, cls(matmul_dtype=dtype, **SMALL), OBS, ACT) for dtype in ("float32", "bfloat16"))
    params = bf16.init(jax.random.PRNGKey(0)).actor_params
    assert _dtypes(params) == {jnp.dtype(jnp.float32)}
    obs, rng = BATCH.obs, jax.random.PRNGKey(2)
    assert _matmul_dtypes(bf16.policy.sample, params, obs, rng) and all(
        dtypes == {"bfloat16"} for dtypes in _matmul_dtypes(bf16.policy.sample, params, obs, rng))
    assert all(dtypes == {"float32"} for dtypes in _matmul_dtypes(f32.policy.sample, params, obs, rng))
    for out16, out32 in zip(bf16.policy.sample(params, obs, rng), f32.policy.sample(params, obs, rng)):
        assert out16.dtype == jnp.float32 and 0 < _rel(out16, out32) < 0.05


def test_bfloat16_matmuls_keep_the_smfp_update_and_actions_float32():
    policy = MeanFlowConfig(time_embed_dim=8, sigma_hidden=8)
    f32 = agents.make("smfp", SMFP.Config(policy=policy, **SMALL), OBS, ACT)
    bf16 = agents.make("smfp", SMFP.Config(policy=policy, matmul_dtype="bfloat16", **SMALL), OBS, ACT)
    state = bf16.init(jax.random.PRNGKey(0))
    new, metrics = jax.jit(bf16.update)(state, BATCH, jax.random.PRNGKey(1))
    assert _dtypes(new) <= {jnp.dtype(jnp.float32), jnp.dtype(jnp.int32)}
    assert all(v.dtype == jnp.float32 and np.isfinite(float(v)) for v in jax.tree_util.tree_leaves(metrics))
    action, action32 = bf16.act(new, BATCH.obs, jax.random.PRNGKey(2)), f32.act(new, BATCH.obs, jax.random.PRNGKey(2))
    assert action.dtype == jnp.float32 and 0 < _rel(action, action32) < 0.05


# -- temperature target ---------------------------------------------------------------------
@pytest.mark.parametrize("fields, expected", [
    ({}, -3.0),  # -|A|
    (dict(target_entropy=-1.5), -1.5),
    (dict(target_entropy_per_dim=0.0), 0.0),  # FastSAC: target entropy 0
    (dict(target_entropy_per_dim=-0.5), -1.5),  # brax humanoid: -0.5 |A|
    (dict(target_std=0.15), 3 * (0.5 * math.log(2 * math.pi) + 0.5 + math.log(0.15))),  # FlashSAC
])
def test_the_target_entropy_resolves_from_whichever_field_is_set(fields, expected):
    assert resolve_target_entropy(SoftActorCriticConfig(**fields), 3) == pytest.approx(expected, rel=1e-12)
    assert agents.make("sac", SAC.Config(**fields, **SMALL), OBS, 3).target_entropy == pytest.approx(expected)


def test_target_std_is_the_entropy_of_a_gaussian_of_that_std():
    """Monte-Carlo -E log N(x; 0, std^2 I) matches target_std's target (a check of the formula)."""
    std, d = 0.15, 4
    x = std * np.random.default_rng(0).standard_normal((200_000, d))
    logp = (-0.5 * (x / std) ** 2 - math.log(std) - 0.5 * math.log(2 * math.pi)).sum(-1)
    assert resolve_target_entropy(SoftActorCriticConfig(target_std=std), d) == pytest.approx(-logp.mean(), abs=0.02)


@pytest.mark.parametrize("fields, message", [
    (dict(target_entropy=0.0, target_std=0.1), r"target_entropy and target_std are both set; set at most one of "
                                               r"target_entropy, target_entropy_per_dim, target_std"),
    (dict(target_entropy_per_dim=0.0, target_std=0.1), r"target_entropy_per_dim and target_std are both set"),
    (dict(target_std=0.0), r"target_std=0.0 must be finite and > 0"),
    (dict(target_entropy_per_dim=float("inf")), r"target_entropy_per_dim=inf must be finite"),
    (dict(weight_decay=-0.1), r"weight_decay=-0.1 must be finite and >= 0"),
    (dict(adam_b2=1.0), r"adam_b2=1.0 must be in \[0, 1\)"),
    (dict(log_std_min=0.0, log_std_max=0.0), r"log_std_min=0.0 must be < log_std_max=0.0"),
    (dict(log_std_max=float("nan")), r"log_std_max=nan must be finite"),
])
def test_bad_recipe_fields_fail_at_construction_naming_the_field(fields, message):
    with pytest.raises(ValueError, match=message):
        SoftActorCriticConfig(**fields)


# -- temperature rule -----------------------------------------------------------------------
@pytest.mark.parametrize("gap", [0.25, 4.0, -2.0])
def test_the_proportional_temperature_steps_log_alpha_by_lr_times_the_gap_and_adam_by_lr_whatever_the_gap(gap):
    """One temperature step from alpha 0.01 with the entropy `gap` nats off its target: the proportional
    rule moves log alpha by -lr x gap; Adam's first step is -lr x sign(gap), the same for 0.25 nats as for 4."""
    lr = 1e-2
    for rule, expected in (("proportional", -lr * gap), ("adam", -lr * math.copysign(1.0, gap))):
        agent = agents.make("sac", SAC.Config(temperature_lr=lr, temperature_rule=rule, init_temperature=0.01,
                                              **SMALL), OBS, ACT)
        state = agent.init(jax.random.PRNGKey(0))
        moved = agent.temperature_step(state, jnp.float32(agent.target_entropy + gap))
        step = float(moved.log_temperature - state.log_temperature)
        assert step == pytest.approx(expected, rel=1e-4), rule


def test_an_unknown_temperature_rule_fails_at_construction_naming_the_choices():
    with pytest.raises(ValueError, match=r"temperature_rule='pid' is not valid; choose one of adam, proportional"):
        SoftActorCriticConfig(temperature_rule="pid")


# -- log-std bounds -------------------------------------------------------------------------
def test_log_std_bounds_bound_the_gaussian_actor_and_smfps_boundary_sigma():
    agent = agents.make("sac", SAC.Config(log_std_min=-4.0, log_std_max=0.0, **SMALL), OBS, ACT)
    assert (agent.policy.network_config.log_std_min, agent.policy.network_config.log_std_max) == (-4.0, 0.0)
    params = agent.init(jax.random.PRNGKey(0)).actor_params
    big = jax.tree_util.tree_map(lambda p: 1e3 * p, params)  # drives tanh(raw) to +-1
    log_std = np.asarray(agent.policy.distribution(big, 10 * BATCH.obs)[1])
    assert log_std.min() >= -4.0 and log_std.max() <= 0.0
    assert np.isclose(log_std.min(), -4.0, atol=1e-3) and np.isclose(log_std.max(), 0.0, atol=1e-3)
    assert TanhGaussianPolicy(ACT) == agents.make("sac", SAC.Config(actor_hidden=(256, 256, 256)), OBS, ACT).policy

    smfp = agents.make("smfp", SMFP.Config(log_std_min=-4.0, log_std_max=-1.0,
                                           policy=MeanFlowConfig(sigma_mode="per_dim", time_embed_dim=8), **SMALL),
                       OBS, ACT)
    p = smfp.init(jax.random.PRNGKey(0)).actor_params
    for raw, bound in ((100.0, -1.0), (-100.0, -4.0)):
        moved = jax.tree_util.tree_map_with_path(
            lambda path, x, raw=raw: jnp.full_like(x, raw) if "log_sigma" in jax.tree_util.keystr(path) else x, p)
        np.testing.assert_allclose(np.asarray(smfp.policy.log_sigma(moved, BATCH.obs)), bound)
    assert (SMFP.Config().log_std_min, SMFP.Config().log_std_max) == (-5.0, 1.0)  # MeanFlowPolicy's default bounds


def test_log_std_bounds_bound_sac_flows_state_noise():
    agent = agents.make("sacflow", agents.get_class("sacflow").Config(log_std_min=-4.0, log_std_max=0.0, **SMALL),
                        OBS, ACT)
    params = agent.init(jax.random.PRNGKey(0)).actor_params
    log_std = np.concatenate([np.asarray(agent.policy.log_std(jax.tree_util.tree_map(lambda p: scale * p, params),
                                                              10 * BATCH.obs)) for scale in (1e3, -1e3)])
    assert log_std.min() >= -4.0 and log_std.max() <= 0.0  # tanh(raw) driven to +-1: both ends reached
    assert np.isclose(log_std.min(), -4.0, atol=1e-3) and np.isclose(log_std.max(), 0.0, atol=1e-3)
