"""The trained policy alone, small enough to copy around: `RUN_DIR/policy/` holds the agent
state that `eval_act` reads (`Agent.policy_state`: the actor; SMFP's critic too when it
evaluates best-of-N), the observation normaliser (flax msgpack, `policy.msgpack`) and the
run's train + agent config with the obs/action sizes (`policy.json`). The runner rewrites it
beside every checkpoint, so it is the latest policy; loading it restores no replay ring or
optimiser state (a full `fast` humanoid checkpoint is ~12 GB, this is a few MB).

    from mjx_smfp import policy_file
    policy = policy_file.load("runs/humanoid/smfp/20261201-120000")
    actions = policy(observations)  # raw observations [n, obs_size] -> actions [n, action_size] in [-1, 1]
"""
from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from mjx_smfp import normalizer as norm_lib

DIRECTORY = "policy"  # inside a run directory
PARAMS_FILE, META_FILE = "policy.msgpack", "policy.json"


class Policy:
    """A trained agent's deterministic policy (`eval_act`) on raw observations, normalised with
    the run's statistics; jitted. `config` / `agent_config`: the run's configuration."""

    def __init__(self, agent, agent_state, normalizer: norm_lib.NormalizerState, config, env_steps: int):
        self.agent, self.agent_state, self.normalizer = agent, agent_state, normalizer
        self.config, self.agent_config, self.env_steps = config, agent.config, int(env_steps)
        normalize = config.normalize_obs

        def act(agent_state, normalizer, obs):
            return agent.eval_act(agent_state, norm_lib.normalize(normalizer, obs) if normalize else obs)

        self._act = jax.jit(act)

    def __call__(self, obs) -> np.ndarray:
        """Actions [n, action_size] for observations [n, obs_size] (or [action_size] for [obs_size])."""
        obs = jnp.asarray(obs, jnp.float32)
        actions = self._act(self.agent_state, self.normalizer, obs.reshape(-1, obs.shape[-1]))
        return np.asarray(actions).reshape(*obs.shape[:-1], -1)


def _to_host(tree):
    """Numpy copies of this process's shard of every leaf (the replicated values, also multi-host)."""
    return jax.tree_util.tree_map(lambda x: np.asarray(x.addressable_data(0) if hasattr(x, "addressable_data") else x),
                                  tree)


def save(directory: str, agent, agent_state, normalizer, config, env_steps: int) -> str:
    """Write the policy of `agent_state` (the full agent state; only `agent.policy_state` is kept)
    to `directory`, replacing what is there; returns `directory`."""
    from mjx_smfp import config as config_lib

    params = {"agent": serialization.to_state_dict(_to_host(agent.policy_state(agent_state))),
              "normalizer": serialization.to_state_dict(_to_host(normalizer))}
    meta = dict(config_lib.to_dict(config, agent.config), obs_size=agent.obs_size, action_size=agent.action_size,
                env_steps=int(env_steps))
    os.makedirs(directory, exist_ok=True)
    for name, data, mode in ((PARAMS_FILE, serialization.msgpack_serialize(params), "wb"),
                             (META_FILE, json.dumps(meta, indent=2), "w")):
        with open(os.path.join(directory, name + ".tmp"), mode) as f:  # a reader never sees half a file
            f.write(data)
        os.replace(os.path.join(directory, name + ".tmp"), os.path.join(directory, name))
    return directory


def find(path: str) -> str | None:
    """The policy directory of `path` (a run directory or the policy directory), or None."""
    for directory in (os.path.join(path, DIRECTORY), path):
        if os.path.exists(os.path.join(directory, META_FILE)):
            return directory
    return None


def load(path: str) -> Policy:
    """The policy saved under `path` (a run directory or its `policy/`); FileNotFoundError if none."""
    from mjx_smfp import agents
    from mjx_smfp import config as config_lib

    directory = find(path)
    if directory is None:
        raise FileNotFoundError(f"no {DIRECTORY}/{META_FILE} under {path} (runs write it with each checkpoint)")
    with open(os.path.join(directory, META_FILE)) as f:
        meta = json.load(f)
    cfg, agent_cfg = config_lib.from_dict(meta)
    agent = agents.make(cfg.agent, agent_cfg, meta["obs_size"], meta["action_size"])
    with open(os.path.join(directory, PARAMS_FILE), "rb") as f:
        params = serialization.msgpack_restore(f.read())
    template = agent.policy_state(jax.eval_shape(agent.init, jax.random.PRNGKey(0)))
    agent_state = jax.tree_util.tree_map(jnp.asarray, serialization.from_state_dict(template, params["agent"]))
    normalizer = jax.tree_util.tree_map(
        jnp.asarray, serialization.from_state_dict(norm_lib.init(meta["obs_size"]), params["normalizer"]))
    return Policy(agent, agent_state, normalizer, cfg, meta["env_steps"])
