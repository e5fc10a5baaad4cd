"""Several seeds in one compiled program (`num_seeds`): seed k of a multi-seed run is the single
run with seed `seed + k` (the same data exactly; float results to the last bits XLA may round
differently in a batched program); seeds hold independent data; resume is bit-identical; each phase
compiles once; per-seed metrics are logged; a NaN stops the run naming its seed."""
import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mjx_smfp import config as config_lib
from mjx_smfp import policy_file
from mjx_smfp import replay as replay_lib
from mjx_smfp.agents.sac import SAC
from mjx_smfp.config import TrainConfig
from mjx_smfp.engine import Engine
from mjx_smfp.runner import NonFiniteError, run
from tests.dummy_envs import DummyTask
from tests.mjx_smfp.test_loop import _ExplodingAgent

CFG = TrainConfig(env="multimodal", num_envs=4, episode_length=20, total_env_steps=1_000, batch_size=32,
                  updates_per_step=1, replay_capacity=400, learning_starts=40, iterations_per_call=10,
                  eval_interval=80, eval_episodes=4, checkpoint_interval=0, seed=3)
AGENT = SAC.Config(actor_hidden=(32, 32), critic_hidden=(32, 32))


def _engine(num_seeds: int) -> Engine:
    return Engine(dataclasses.replace(CFG, num_seeds=num_seeds), AGENT, task=DummyTask())


@pytest.fixture(scope="module")
def single():
    return _engine(1)


@pytest.fixture(scope="module")
def two():
    return _engine(2)


def _leaves(tree):
    return [np.array(x, copy=True) for x in jax.tree_util.tree_leaves(tree)]


def one_policy(engine, ts, obs):
    """Seed state `ts`'s deterministic actions on raw observations `obs`."""
    from mjx_smfp import normalizer as norm_lib

    return np.asarray(engine.agent.eval_act(ts.agent, norm_lib.normalize(ts.normalizer, jnp.asarray(obs))))


def _train(engine, seed, calls):
    ts, _ = engine.warmup(engine.init_state(seed))
    for _ in range(calls):
        ts, summary = engine.train_chunk(ts)
    return ts, jax.device_get(summary)


def test_seed_k_of_a_two_seed_run_is_the_single_run_with_seed_plus_k(single, two):
    both, summary = _train(two, CFG.seed, 2)
    assert summary["episode_return"].shape == (2,) and summary["all_finite"].shape == (2,)
    for k in range(2):
        alone, _ = _train(single, CFG.seed + k, 2)
        assert alone.env_steps.shape == ()  # num_seeds=1 is the plain path: no seed axis
        for a, b in zip(_leaves(alone), _leaves(two.seed_state(both, k))):
            if np.issubdtype(a.dtype, np.floating):  # a vmapped matmul may round the last bit differently
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
            else:  # counters, keys, replay indices: the very same run
                np.testing.assert_array_equal(a, b)


def test_seeds_are_independent_runs(two):
    ts, _ = _train(two, CFG.seed, 1)
    assert ts.env_steps.shape == (2,) and ts.replay.data.obs.shape[0] == 2
    np.testing.assert_array_equal(ts.env_steps, [40 + 40, 40 + 40])
    assert not np.array_equal(ts.replay.data.obs[0], ts.replay.data.obs[1])
    assert not np.array_equal(ts.replay.data.action[0], ts.replay.data.action[1])
    for leaf in jax.tree_util.tree_leaves(ts.agent.actor_params):
        assert not np.array_equal(leaf[0], leaf[1])
    assert not np.array_equal(ts.rng[0], ts.rng[1])


def test_evaluate_one_seed_gives_that_seeds_row(two):
    ts = two.init_state()
    rng = jax.random.PRNGKey(5)
    returns, lengths = two.evaluate(ts, rng)
    assert returns.shape == lengths.shape == (2, CFG.eval_episodes)
    for k in range(2):
        r, n = two.evaluate(ts, rng, seed=k)
        np.testing.assert_allclose(r, returns[k], rtol=1e-6)
        np.testing.assert_array_equal(n, lengths[k])
    with pytest.raises(ValueError, match="num_seeds=2"):
        two.seed_state(ts, 2)


def test_two_seeds_resume_bit_identically_log_per_seed_and_compile_once(two, tmp_path, capsys):
    straight = run(two, str(tmp_path / "a"), max_calls=4, verbose=False)
    run(two, str(tmp_path / "b"), max_calls=1, verbose=False)  # to env step 80
    capsys.readouterr()
    resumed = run(two, str(tmp_path / "b"), resume=True, max_calls=3, verbose=True)  # its first call: no evaluation
    progress = [x for x in capsys.readouterr().out.splitlines() if x.startswith("[train] steps 120/1,000 x 2 seeds")]
    # The rate is the sum over seeds; before this process's first evaluation there is no eval return to show.
    assert progress and "env-steps/s (all seeds)" in progress[0] and "train return (means over seeds)" in progress[0]
    assert "eval return none yet in this process" in progress[0], progress
    np.testing.assert_array_equal(resumed.env_steps, [40 + 4 * 40] * 2)
    for a, b in zip(_leaves(straight), _leaves(resumed)):  # both seeds' params, replay, envs, rng
        np.testing.assert_array_equal(a, b)
    assert two.trace_counts["train_chunk"] == 1 and two.trace_counts["warmup"] == 1
    assert two.trace_counts["evaluate"] == 1  # the all-seeds evaluator (seed=k uses the plain one)
    obs = np.random.default_rng(0).uniform(-1, 1, (5, 3)).astype(np.float32)
    acts = [policy_file.load(str(tmp_path / "b" / "policy" / f"seed_{k}"))(obs) for k in range(2)]
    for k in range(2):  # one policy file per seed: seed k's deterministic policy
        one = two.seed_state(resumed, k)
        np.testing.assert_allclose(acts[k], one_policy(two, one, obs), rtol=1e-5, atol=1e-6)
    assert not np.allclose(acts[0], acts[1])

    lines = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    evals = [x for x in lines if "eval/return_mean" in x]
    assert [x["step"] for x in evals] == [40, 80, 160]  # after warm-up, then every 80 steps
    last = evals[-1]
    per_seed = [last["eval/return_mean/seed_0"], last["eval/return_mean/seed_1"]]
    assert last["eval/return_mean"] == pytest.approx(np.mean(per_seed))
    assert last["eval/return_mean/seed_sd"] == pytest.approx(np.std(per_seed, ddof=1))
    trained = lines[-1]
    for name in ("train/critic_loss", "train/reward_mean"):
        assert {f"{name}/seed_0", f"{name}/seed_1", f"{name}/seed_sd", name} <= set(trained)
    assert trained["train/reward_mean/seed_0"] != trained["train/reward_mean/seed_1"]


class _SeedExplodingAgent(_ExplodingAgent):
    """A linear policy whose loss goes NaN from its 3rd update in the seeds whose init drew
    w[0, 0] > 0 (the test checks that exactly one of its two seeds did)."""

    def init(self, rng):
        return {"w": jax.random.normal(rng, (self.obs_size, self.action_size)), "step": jnp.zeros((), jnp.int32)}

    def update(self, state, batch, rng):
        loss = jnp.where((state["step"] >= 3) & (state["w"][0, 0] > 0), jnp.nan, 1.0)
        return {"w": state["w"], "step": state["step"] + 1}, {"loss": loss}


def test_a_nan_in_one_seed_stops_the_run_naming_that_seed(tmp_path):
    cfg = dataclasses.replace(CFG, num_seeds=2, iterations_per_call=2)
    make = lambda obs, act, axis: _SeedExplodingAgent(_SeedExplodingAgent.Config(), obs, act, axis)  # noqa: E731
    eng = Engine(cfg, task=DummyTask(), make_agent=make)
    w00 = [float(w[0, 0]) for w in eng.init_state().agent["w"]]
    assert (w00[0] > 0) != (w00[1] > 0), w00
    bad = [k for k in range(2) if w00[k] > 0]
    with pytest.raises(NonFiniteError, match=rf"in seed\(s\) \[{bad[0]}\] of 2 between env steps"):
        run(eng, str(tmp_path), verbose=False)


def test_the_replay_memory_check_counts_every_seeds_ring(single, two, monkeypatch):
    one_ring = replay_lib.nbytes(CFG.replay_capacity, 3, 2)
    # Room for 1.5 rings (at the check's 80 % usable fraction): one seed fits, two do not.
    monkeypatch.setattr(replay_lib, "free_memory_bytes", lambda device=None: (int(1.5 * one_ring / 0.8), "test"))
    single.check_fits()
    with pytest.raises(ValueError, match=r"num_seeds=2 rings of replay_capacity=400 rows each"):
        two.check_fits()


def test_seeds_and_devices_do_not_combine_yet():
    with pytest.raises(ValueError, match=r"num_seeds=4 with num_devices=2"):
        config_lib.build({"env": "multimodal", "agent": "sac", "preset": "cpu", "num_seeds": "4", "num_devices": "2"})
    with pytest.raises(ValueError, match="num_seeds=0 must be positive"):
        config_lib.build({"env": "multimodal", "agent": "sac", "preset": "cpu", "num_seeds": "0"})
