"""The compiled loop on a tiny dummy env: compile-once, bit-identical resume, what a stop signal
does (save unsaved progress, else exit at once), host calls sized to a time target, non-finite
stop, learning, and O(batch) replay inside the compiled step."""
import dataclasses
import signal
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mjx_smfp import checkpoint as ckpt_lib
from mjx_smfp.agents.base import Agent
from mjx_smfp.agents.sac import SAC
from mjx_smfp.config import TrainConfig
from mjx_smfp.engine import Engine
from mjx_smfp.runner import NonFiniteError, RunClock, Schedule, StopFlag, next_call_iterations, run
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


def _signalled(engine, stop, on_call: int, signum=signal.SIGINT):
    """A copy of the engine (the same compiled phases) whose `on_call`-th train call receives
    `signum` while it runs (after dispatch, before the runner sees the result)."""
    import copy

    signalled, calls = copy.copy(engine), []

    def train_chunk(ts, iterations=None):
        out = engine.train_chunk(ts, iterations)
        calls.append(iterations)
        if len(calls) == on_call:
            stop(signum)
        return out

    signalled.train_chunk = train_chunk
    return signalled


def test_a_signal_with_trained_progress_unsaved_saves_it_after_the_current_call(engine, tmp_path):
    stop = StopFlag(exit=sys.exit)
    ts = run(_signalled(engine, stop, on_call=2), str(tmp_path), stop=stop, verbose=False)
    steps = 200 + 2 * 25 * 8  # warm-up + the call that trained before the signal + the one it came in
    assert stop.requested and int(ts.env_steps) == steps
    saved = ckpt_lib.Checkpointer(str(tmp_path / "checkpoints"))
    assert saved.latest_step() == steps
    restored = saved.restore(engine.abstract_state())
    for a, b in zip(_leaves(ts), _leaves(restored)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(SystemExit) as exit_info:  # a second Ctrl-C aborts at once
        stop(signal.SIGINT)
    assert exit_info.value.code == 128 + signal.SIGINT


def test_a_signal_with_nothing_new_to_save_exits_at_once_writing_no_checkpoint(engine, tmp_path):
    """During the first train call only warm-up data exists (nothing trained yet), and right after
    a checkpoint nothing is new: the flag exits (status 128 + signal) and writes nothing."""
    stop = StopFlag(exit=sys.exit)
    with pytest.raises(SystemExit) as exit_info:
        run(_signalled(engine, stop, on_call=1, signum=signal.SIGTERM), str(tmp_path / "first"), stop=stop,
            verbose=False)
    assert exit_info.value.code == 128 + signal.SIGTERM
    assert ckpt_lib.Checkpointer(str(tmp_path / "first" / "checkpoints")).latest_step() is None
    saved = StopFlag(exit=sys.exit)
    saved.unsaved = True
    saved(signal.SIGTERM)  # trained progress unsaved: a request, no exit
    assert saved.requested
    saved(signal.SIGTERM)  # a second SIGTERM while saving changes nothing
    assert saved.requested


def test_slow_host_calls_shrink_to_the_call_time_target_without_recompiling(engine, tmp_path):
    """Calls after the first take 0.1 s per iteration more (a slow machine): the runner shortens
    them to about `call_seconds` by the last call's speed, on the one compiled program."""
    import copy

    slow, sizes = copy.copy(engine), []

    def train_chunk(ts, iterations=None):
        sizes.append(iterations)
        if len(sizes) > 1:
            time.sleep(0.1 * iterations)
        return engine.train_chunk(ts, iterations)

    slow.train_chunk = train_chunk
    ts = run(slow, str(tmp_path), max_calls=5, verbose=False, call_seconds=0.5)
    assert sizes[0] == 25  # iterations_per_call; timed from its dispatch (compiling comes before)
    assert all(3 <= n <= 5 for n in sizes[2:]), sizes  # 0.5 s / (0.1 s + compute) an iteration
    assert int(ts.env_steps) == 200 + sum(sizes) * 8
    assert engine.trace_counts["train_chunk"] == 1


@pytest.mark.parametrize("iterations, seconds, limit, expected", [
    (100, 35.0, 100, 14),  # humanoid at the cpu preset: ~0.35 s an iteration on 2 cores
    (14, 4.0, 100, 17),
    (4, 0.01, 100, 8),  # fast calls grow at most 2x a call ...
    (50, 0.01, 50, 50),  # ... up to iterations_per_call
    (1, 60.0, 100, 1),  # never below one iteration
    (10, 0.0, 100, 20),
])
def test_next_call_iterations_targets_the_call_time(iterations, seconds, limit, expected):
    assert next_call_iterations(iterations, seconds, limit, target=5.0) == expected


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


def test_a_stop_during_warm_up_exits_without_a_checkpoint_of_random_data(engine, tmp_path):
    import copy

    stop = StopFlag(exit=sys.exit)
    signalled = copy.copy(engine)

    def warmup_then_sigterm(ts):
        out = engine.warmup(ts)
        stop(signal.SIGTERM)
        return out

    signalled.warmup = warmup_then_sigterm
    with pytest.raises(SystemExit) as exit_info:
        run(signalled, str(tmp_path), stop=stop, verbose=False)
    assert exit_info.value.code == 128 + signal.SIGTERM
    assert ckpt_lib.Checkpointer(str(tmp_path / "checkpoints")).latest_step() is None


def test_the_run_clock_leaves_out_paused_stretches_once_even_when_nested():
    clock = RunClock(10.0)
    with clock.paused():
        with clock.paused():
            time.sleep(0.2)
        time.sleep(0.1)
    assert 10.0 <= clock() < 10.1
    clock.set(3.0)
    assert 3.0 <= clock() < 3.05


def test_a_clock_schedule_stops_before_a_call_would_pass_its_end_and_evaluations_are_off_the_clock(engine, tmp_path):
    """Evaluate every 0.4 s of run clock for 3 s of it, each evaluation slowed by 0.5 s: the clock
    leaves the evaluations out, so the run takes ~3 s of clock and evaluations' worth more of wall."""
    import copy

    slow, evaluations = copy.copy(engine), []

    def evaluation(ts, rng):
        time.sleep(0.5)
        return engine.evaluation(ts, rng)

    slow.evaluation = evaluation
    # compiled first, so that a slow machine's compile does not eat the 3 s and leave one evaluation
    run(engine, str(tmp_path / "warm"), schedule=Schedule(env_steps=10**9, eval_every=10**9), max_calls=1, verbose=False)
    schedule = Schedule(env_steps=10**9, seconds=3.0, eval_every=0.4, unit="seconds")
    t = time.perf_counter()
    ts = run(slow, str(tmp_path), schedule=schedule, on_eval=evaluations.append, verbose=False)
    wall = time.perf_counter() - t
    clocks = [e.seconds for e in evaluations]
    assert len(evaluations) >= 3 and clocks == sorted(clocks) and clocks[-1] <= 3.0
    assert wall > clocks[-1] + 0.5 * (len(evaluations) - 1)  # the evaluations' sleep is not on the clock
    assert evaluations[-1].env_steps == int(ts.env_steps) and evaluations[0].env_steps == 200  # after the warm-up
    (point,) = evaluations[-1].points()
    assert set(point) >= {"wall_s", "env_steps", "updates", "return", "return_std", "length"}
    assert point["updates"] == int(ts.updates) and point["return"] == float(evaluations[-1].scalars["return"][0])


def test_a_resume_carries_the_run_clock_over_from_its_checkpoint(engine, tmp_path):
    first = []
    run(engine, str(tmp_path), on_eval=first.append, max_calls=2, verbose=False,
        schedule=Schedule(env_steps=6_000, eval_every=200))
    resumes, later = [], []
    run(engine, str(tmp_path), resume=True, on_resume=resumes.append, on_eval=later.append, max_calls=1,
        verbose=False, schedule=Schedule(env_steps=6_000, eval_every=200))
    (resume,) = resumes
    assert resume["at_env_steps"] == 200 + 2 * 25 * 8 and resume["overhead_s"] >= 0
    assert resume["at_wall_s"] >= first[-1].seconds  # the clock the checkpoint was taken at, carried over
    assert later[0].env_steps == 200 + 3 * 25 * 8 and later[0].seconds > resume["at_wall_s"]


def test_an_evaluation_reports_the_deterministic_and_stochastic_returns_and_the_diagnostics(engine):
    """Engine.evaluation: the deterministic episodes are exactly `evaluate`'s, the exploring policy's
    episodes come beside them, and the diagnostics read the held-out probe states (issue 34)."""
    ts, _ = engine.warmup(engine.init_state())
    key = jax.random.PRNGKey(5)
    found = engine.evaluation(ts, key)
    returns, lengths = engine.evaluate(ts, key)
    assert found["return"] == pytest.approx(float(returns.mean())) and returns.shape == (CFG.eval_episodes,)
    assert found["length"] == pytest.approx(float(lengths.mean()))
    assert np.isfinite(found["stochastic_return_mean"]) and np.isnan(found["forward_velocity"])  # no x_velocity
    assert np.isfinite(found["knn_entropy"]) and np.isfinite(found["entropy_estimate"])
