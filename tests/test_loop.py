"""The compiled loop on a tiny dummy env: compile-once, bit-identical resume, SIGINT
checkpoint, non-finite stop, learning, and O(batch) replay inside the compiled step."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mjx_smfp import checkpoint as ckpt_lib
from mjx_smfp.agents.base import Agent
from mjx_smfp.agents.sac import SAC
from mjx_smfp.config import TrainConfig
from mjx_smfp.engine import Engine
from mjx_smfp.runner import NonFiniteError, StopFlag, run
from tests.dummy_envs import DummyTask

CFG = TrainConfig(env="multimodal", num_envs=8, episode_length=20, total_env_steps=6_000, batch_size=64,
                  updates_per_step=2, replay_capacity=1_000, learning_starts=200, iterations_per_call=25,
                  eval_interval=3_000, eval_episodes=16, checkpoint_interval=0)


@pytest.fixture(scope="module")
def engine():
    return Engine(CFG, SAC.Config(actor_hidden=(64, 64), critic_hidden=(64, 64), init_temperature=0.1),
                  task=DummyTask())


def _leaves(tree):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(tree)]


def test_resume_gives_bit_identical_state_and_compiles_each_phase_once(engine, tmp_path):
    straight = run(engine, str(tmp_path / "a"), max_calls=4, verbose=False)
    first = run(engine, str(tmp_path / "b"), max_calls=2, verbose=False)
    assert int(first.env_steps) < int(straight.env_steps)
    resumed = run(engine, str(tmp_path / "b"), resume=True, max_calls=2, verbose=False)
    assert int(resumed.env_steps) == int(straight.env_steps) == 200 + 4 * 25 * 8
    for a, b in zip(_leaves(straight), _leaves(resumed)):  # params, optimiser, replay, envs, rng
        np.testing.assert_array_equal(a, b)
    # Three runs (one resumed from disk), 8 train calls: each phase traced exactly once.
    assert engine.trace_counts["train_chunk"] == 1
    assert engine.trace_counts["warmup"] == 1


def test_sigint_saves_a_checkpoint_and_stops_after_the_current_call(engine, tmp_path):
    import copy

    stop = StopFlag()
    signalled = copy.copy(engine)  # the same compiled phases; the first Ctrl-C arrives during a train call

    def train_chunk_then_ctrl_c(ts):
        out = engine.train_chunk(ts)
        stop()
        return out

    signalled.train_chunk = train_chunk_then_ctrl_c
    ts = run(signalled, str(tmp_path), stop=stop, verbose=False)
    steps = 200 + 25 * 8  # warm-up + exactly one host call
    assert int(ts.env_steps) == steps
    saved = ckpt_lib.Checkpointer(str(tmp_path / "checkpoints"))
    assert saved.latest_step() == steps
    restored = saved.restore(engine.abstract_state())
    for a, b in zip(_leaves(ts), _leaves(restored)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C aborts at once
        stop()


def test_sac_learns_the_dummy_task_past_what_random_actions_reach(engine, tmp_path):
    fresh = engine.init_state()
    returns, lengths = engine.evaluate(fresh, jax.random.PRNGKey(7))
    assert float(returns.sum() / lengths.sum()) < 0.7  # an untrained policy (actions ~ 0) scores ~0.6
    ts = run(engine, str(tmp_path), verbose=False)
    returns, lengths = engine.evaluate(ts, jax.random.PRNGKey(7))
    per_step = float(returns.sum() / lengths.sum())
    # random actions score ~0.45 per step; a learned policy tracks 0.8 * obs[:2] closely.
    assert per_step >= 0.8, per_step
    assert engine.trace_counts["evaluate"] == 1


class _ExplodingAgent(Agent):
    """A linear policy whose update reports a NaN loss after its 3rd step."""

    @dataclasses.dataclass(frozen=True)
    class Config:
        pass

    def init(self, rng):
        return {"w": jnp.zeros((self.obs_size, self.action_size)), "step": jnp.zeros((), jnp.int32)}

    def act(self, state, obs, rng):
        return jnp.tanh(obs @ state["w"])

    def eval_act(self, state, obs):
        return jnp.tanh(obs @ state["w"])

    def update(self, state, batch, rng):
        loss = jnp.where(state["step"] >= 3, jnp.nan, 1.0)
        return {"w": state["w"], "step": state["step"] + 1}, {"loss": loss}


def test_non_finite_loss_stops_the_run_naming_the_last_good_checkpoint(tmp_path):
    cfg = dataclasses.replace(CFG, iterations_per_call=2, updates_per_step=1, checkpoint_interval=1)
    eng = Engine(cfg, task=DummyTask(), make_agent=lambda obs, act, axis: _ExplodingAgent(_ExplodingAgent.Config(), obs, act, axis))
    with pytest.raises(NonFiniteError, match=r"last good checkpoint: .*checkpoints/216"):
        run(eng, str(tmp_path), verbose=False)


def test_checkpoints_without_the_replay_ring_resume_by_refilling_it(engine, tmp_path):
    """checkpoint_replay=false (the fast preset's default): the ring is not written, and a resume
    refills it with a warm-up before training on (the runner alone reads the flag, so the
    compiled phases are shared with the module's engine)."""
    import copy

    small = copy.copy(engine)
    small.cfg = dataclasses.replace(CFG, checkpoint_replay=False)
    first = run(small, str(tmp_path), max_calls=1, verbose=False)
    saved = ckpt_lib.Checkpointer(str(tmp_path / "checkpoints"))
    stored = saved._manager.item_metadata(saved.latest_step())
    assert not [k for k in getattr(stored, "tree", stored) if k.startswith("replay.")]
    resumed = run(small, str(tmp_path), resume=True, max_calls=1, verbose=False)
    assert int(resumed.env_steps) == int(first.env_steps) + 200 + 25 * 8  # a warm-up refill, then one call
    assert int(resumed.replay.size) == 200 + 25 * 8  # the refilled ring, not the old one


def test_a_stop_during_warm_up_saves_before_the_training_step_compiles(engine, tmp_path):
    stop = StopFlag()
    stop()  # as if SIGTERM arrived while the warm-up ran
    ts = run(engine, str(tmp_path), stop=stop, verbose=False)
    assert int(ts.env_steps) == 200 and int(ts.updates) == 0  # warm-up only, no train call
    assert ckpt_lib.Checkpointer(str(tmp_path / "checkpoints")).latest_step() == 200
