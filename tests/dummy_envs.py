"""A tiny single-env brax `Env` for testing the loop without MJX; it is batched with
`wrap_for_training` like every real task. obs ~ U[-1, 1]^3 i.i.d. each step, action in
[-1, 1]^2, reward = 1 - mean |a - target(obs)| with target = 0.8 * obs[:2]. Random actions
score about 0.45 per step, the optimum 1.0. The episode terminates when obs[2] > 0.9 (about
5% of steps); the time limit is the wrapper's. `info["contacts"]` is a zero-size array, like
the empty contact arrays of an mjx.Data, so checkpoints must cope with those.
"""
import jax
import jax.numpy as jnp
from brax.envs.base import Env, State


class DummyTask(Env):
    @property
    def observation_size(self) -> int:
        return 3

    @property
    def action_size(self) -> int:
        return 2

    @property
    def backend(self) -> str:
        return "dummy"

    def reset(self, rng):
        rng, k = jax.random.split(rng)
        zero = jnp.zeros(())
        return State(pipeline_state=None, obs=jax.random.uniform(k, (3,), minval=-1.0, maxval=1.0), reward=zero,
                     done=zero, metrics={}, info=dict(rng=rng, contacts=jnp.zeros((0,))))

    def step(self, state, action):
        rng, k = jax.random.split(state.info["rng"])
        obs = jax.random.uniform(k, (3,), minval=-1.0, maxval=1.0)
        reward = 1.0 - jnp.abs(action - 0.8 * state.obs[:2]).mean()
        done = (obs[2] > 0.9).astype(jnp.float32)
        return state.replace(obs=obs, reward=reward, done=done, info=dict(state.info, rng=rng))
