"""`python -m launch.train` as a real process: warm compile-cache loads print no XLA errors,
SIGTERM checkpoints and exits 0, `--resume` continues from that checkpoint, and the progress
line shows the training return."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ["--env", "multimodal", "--agent", "sac", "--preset", "cpu", "--actor_hidden", "16,16",
        "--critic_hidden", "16,16", "--num_envs", "8", "--batch_size", "32", "--updates_per_step", "1",
        "--learning_starts", "64", "--iterations_per_call", "20", "--replay_capacity", "4096",
        "--eval_episodes", "8", "--eval_interval", "160", "--checkpoint_interval", "0"]
XLA_ERROR = re.compile(r"^E\d|cpu_aot_loader", re.M)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The test's own (cold) compile cache; XLA_FLAGS without the pytest process's ISA cap, so
    launch.train must set it itself; XLA errors shown."""
    out = dict(os.environ, JAX_COMPILATION_CACHE_DIR=str(tmp_path_factory.mktemp("jax_cache")),
               TF_CPP_MIN_LOG_LEVEL="1", JAX_PLATFORMS="cpu")
    out["XLA_FLAGS"] = " ".join(f for f in out.get("XLA_FLAGS", "").split() if "xla_cpu_max_isa" not in f)
    return out


def train(args, env, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "launch.train", *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, text=True, **kwargs)


def cache_entries(env):
    return set(os.listdir(env["JAX_COMPILATION_CACHE_DIR"]))


@pytest.fixture(scope="module")
def stopped_run(env, tmp_path_factory):
    """A complete tiny run fills the cache; a second, long one loads every program from it and
    gets SIGTERM after its first progress line: (its stdout, stderr, exit code, cache grew)."""
    cold = train(TINY + ["--total_env_steps", "320", "--log_dir", str(tmp_path_factory.mktemp("cold"))], env)
    assert cold.wait(timeout=300) == 0
    filled = cache_entries(env)
    err_path = tmp_path_factory.mktemp("warm") / "stderr.txt"
    with open(err_path, "w") as err:
        warm = train(TINY + ["--total_env_steps", "1000000", "--log_dir", str(err_path.parent)], env, stderr=err)
        lines, deadline = [], time.time() + 240
        while time.time() < deadline:
            lines.append(warm.stdout.readline())
            if lines[-1].startswith("[train] steps") or not lines[-1]:
                break
        warm.send_signal(signal.SIGTERM)
        lines += warm.stdout.readlines()
        code = warm.wait(timeout=120)
    return "".join(lines), err_path.read_text(), code, cache_entries(env) - filled


def test_warm_cache_loads_print_no_xla_errors(stopped_run):
    out, err, code, new_entries = stopped_run
    assert not new_entries, f"the second run compiled {len(new_entries)} programs instead of loading them"
    assert not XLA_ERROR.search(err), err[:2000]


def test_sigterm_saves_a_checkpoint_and_exits_0_and_resume_continues(stopped_run, env):
    out, err, code, _ = stopped_run
    assert code == 0, err[-2000:]
    saved = re.search(r"checkpoint saved to (\S+)", out)
    assert saved and os.path.isdir(saved.group(1)), out
    step = int(os.path.basename(saved.group(1)))
    run_dir = os.path.dirname(os.path.dirname(saved.group(1)))
    assert os.path.exists(os.path.join(run_dir, "policy", "policy.msgpack"))
    resumed = train(["--resume", run_dir, "--total_env_steps", str(step + 160)], env)
    rest = resumed.stdout.read()
    assert resumed.wait(timeout=300) == 0
    assert f"resumed from {saved.group(1)} at env step {step:,}" in rest, rest
    assert f"steps {step + 160:,}/{step + 160:,}" in rest, rest


def test_progress_shows_the_training_return_and_a_first_evaluation_after_warm_up(stopped_run):
    out = stopped_run[0]
    assert re.search(r"warm-up done in \d+ s \(eval return -?\d", out), out  # evaluated, not nan
    assert re.search(r"\[train\] steps .* train return -?\d+\.\d+ \(length 1\)", out), out
    assert re.search(r"\[train\] sac on multimodal \(preset cpu\) on cpu: \d+ cores?", out), out
