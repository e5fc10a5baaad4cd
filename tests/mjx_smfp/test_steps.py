"""The per-device step functions: a delayed actor's metrics averaged over the actor's steps only
(not divided by the policy delay), the reward scale applied to sampled rewards, and the held-out
probe states fixed at the first warm-up."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mjx_smfp import normalizer
from mjx_smfp.agents.sac import SAC
from mjx_smfp.config import TrainConfig
from mjx_smfp.engine import Engine
from tests.dummy_envs import DummyTask

CFG = TrainConfig(env="multimodal", num_envs=8, episode_length=20, total_env_steps=2_000, batch_size=32,
                  updates_per_step=4, replay_capacity=1_000, learning_starts=100, iterations_per_call=5,
                  eval_interval=0, eval_episodes=4, checkpoint_interval=0, normalize_reward=True, reward_g_max=5.0)


class ConstantActorMetricSAC(SAC):
    """SAC whose actor step also reports a constant, to read how the loop averages actor metrics."""

    def actor_loss(self, actor_params, state, batch, temperature, rng):
        loss, metrics = super().actor_loss(actor_params, state, batch, temperature, rng)
        return loss, dict(metrics, constant=jnp.float32(3.0))


@pytest.fixture(scope="module")
def engine():
    config = SAC.Config(actor_hidden=(32,), critic_hidden=(32,), policy_delay=3)
    return Engine(CFG, task=DummyTask(), make_agent=lambda o, a, axis: ConstantActorMetricSAC(config, o, a, axis))


def test_a_delayed_actors_metrics_are_averaged_over_its_own_steps_not_divided_by_the_delay(engine):
    """4 updates per iteration with an actor step every 3rd: 1 or 2 actor steps per iteration. The
    summary's actor metric is the value each actor step reported (3.0); the code before issue 34
    averaged zeros of the skipped steps in (3.0 x 1/3)."""
    ts, _ = engine.warmup(engine.init_state())
    for iterations in (1, 5):
        ts, summary = engine.train_chunk(ts, iterations)
        assert float(summary["constant"]) == pytest.approx(3.0)
    assert np.isfinite(float(summary["critic_loss"]))


def test_the_reward_scale_divides_sampled_rewards_and_the_probe_states_stay_fixed(engine):
    ts, _ = engine.warmup(engine.init_state())
    probe = np.asarray(ts.probe_obs)
    assert np.abs(probe).sum() > 0 and len(np.unique(probe[:, 0])) > 8  # distinct replay rows, not zeros
    ts, summary = engine.train_chunk(ts, 1)  # one collect, then the updates read the scale it left
    expected = float(normalizer.reward_scale(ts.reward_scale, CFG.reward_g_max))
    assert float(ts.reward_scale.count) > 0 and float(summary["reward_scale"]) == pytest.approx(expected, rel=1e-6)
    assert 0.1 < expected < 10  # rewards ~0.5 per step, gamma 0.99, episodes ~20 steps
    ts, _ = engine.warmup(ts)  # a later warm-up (a resume that refills the ring) keeps the probe
    np.testing.assert_array_equal(np.asarray(ts.probe_obs), probe)
