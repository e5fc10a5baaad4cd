"""A tiny batched env that follows the `wrap_for_training` contract (CONTRIBUTING.md), so the
loop can be tested without MJX: obs ~ U[-1, 1]^3 i.i.d. each step, action in [-1, 1]^2,
reward = 1 - mean |a - target(obs)| with target = 0.8 * obs[:2]. Random actions score
about 0.45 per step, the optimum 1.0. The episode terminates when obs[2] > 0.9 (about 5%
of steps) and is truncated after `episode_length` steps. `info["contacts"]` is a zero-size
array, like the empty contact arrays of an mjx.Data, so checkpoints must cope with those.
"""
import jax
import jax.numpy as jnp
from brax.envs.base import State


class DummyBatchedEnv:
    observation_size = 3
    action_size = 2

    def __init__(self, num_envs: int, episode_length: int = 20):
        self.num_envs, self.episode_length = num_envs, episode_length

    def _obs(self, rng):
        return jax.random.uniform(rng, (self.num_envs, 3), minval=-1.0, maxval=1.0)

    def reset(self, rng):
        zeros = jnp.zeros((self.num_envs,))
        obs = self._obs(rng)
        info = dict(rng=rng, t=zeros, terminated=zeros, truncated=zeros, final_obs=obs, episode_return=zeros,
                    episode_length=zeros, completed_return=zeros, completed_length=zeros, nonfinite=zeros,
                    contacts=jnp.zeros((self.num_envs, 0)))
        return State(pipeline_state=None, obs=obs, reward=zeros, done=zeros, metrics={}, info=info)

    def step(self, state, action):
        rng, k = jax.random.split(state.info["rng"])
        next_obs = self._obs(k)
        reward = 1.0 - jnp.abs(action - 0.8 * state.obs[:, :2]).mean(-1)
        t = state.info["t"] + 1
        terminated = (next_obs[:, 2] > 0.9).astype(jnp.float32)
        truncated = (1.0 - terminated) * (t >= self.episode_length)
        done = jnp.maximum(terminated, truncated)
        ep_ret = state.info["episode_return"] + reward
        ep_len = state.info["episode_length"] + 1
        k2 = jax.random.fold_in(k, 1)
        obs = jnp.where(done[:, None] > 0, self._obs(k2), next_obs)
        info = dict(rng=rng, t=t * (1 - done), terminated=terminated, truncated=truncated, final_obs=next_obs,
                    episode_return=ep_ret * (1 - done), episode_length=ep_len * (1 - done),
                    completed_return=ep_ret * done, completed_length=ep_len * done,
                    nonfinite=jnp.zeros_like(done), contacts=state.info["contacts"])
        return state.replace(obs=obs, reward=reward, done=done, info=info)
