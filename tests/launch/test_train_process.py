"""`python -m launch.train` as a real process: warm compile-cache loads print no XLA errors; a
SIGTERM is honoured within 30 s (SLURM's grace before SIGKILL) at any point: during the warm-up's
compilation it exits at once writing nothing, during training it checkpoints at or past the
progress the log reported and exits 0, and `--resume` continues from that checkpoint; the
progress line shows the training return."""
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


GRACE = 30  # seconds from SIGTERM to SIGKILL under SLURM (its default KillWait)
STEPS = re.compile(r"^\[train\] steps ([\d,]+)/", re.M)


def sigterm_after(process, line_starts: str, delay: float = 0.0, timeout: float = 240):
    """Read `process`'s stdout until a line starting with `line_starts`, wait `delay` s, send
    SIGTERM, read the rest: (output before the signal, output after, exit code, seconds from
    the signal to the exit)."""
    lines, deadline = [], time.time() + timeout
    while time.time() < deadline:
        lines.append(process.stdout.readline())
        if lines[-1].startswith(line_starts) or not lines[-1]:
            break
    time.sleep(delay)
    sent = time.time()
    process.send_signal(signal.SIGTERM)
    rest = process.stdout.read()
    code = process.wait(timeout=120)
    return "".join(lines), rest, code, time.time() - sent


@pytest.fixture(scope="module")
def stopped_in_warm_up(env, tmp_path_factory):
    """A run with its own cold cache gets SIGTERM as soon as it says its warm-up starts (compiling it):
    (output before the signal, after it, exit code, seconds to exit, run directory). The handler is
    installed before that line; a fixed delay after it raced the warm-up, which on an idle 2-core Xeon
    compiled and finished within the 1 s this waited before."""
    cold_cache = dict(env, JAX_COMPILATION_CACHE_DIR=str(tmp_path_factory.mktemp("cold_cache")))
    run_dir = tmp_path_factory.mktemp("warm_up_stop") / "run"
    process = train(TINY + ["--total_env_steps", "320", "--run_dir", str(run_dir)], cold_cache)
    return (*sigterm_after(process, "[train] warm-up:"), run_dir)


def test_sigterm_during_the_warm_up_compile_exits_at_once_writing_no_checkpoint(stopped_in_warm_up):
    before, after, code, seconds, run_dir = stopped_in_warm_up
    assert "warm-up done" not in before + after  # the signal came during the warm-up
    assert "SIGTERM: nothing new to save since the last checkpoint: exiting" in after, after
    assert code == 128 + signal.SIGTERM and seconds < GRACE, (code, seconds)
    checkpoints = run_dir / "checkpoints"
    assert not checkpoints.exists() or not os.listdir(checkpoints)  # no checkpoint of random warm-up data
    assert not (run_dir / "policy").exists()


@pytest.fixture(scope="module")
def stopped_run(env, tmp_path_factory):
    """A complete tiny run fills the cache; a second, long one loads every program from it and
    gets SIGTERM after its first progress line: (its stdout, stderr, exit code, cache grew,
    stdout before the signal, seconds from the signal to the exit)."""
    cold = train(TINY + ["--total_env_steps", "320", "--log_dir", str(tmp_path_factory.mktemp("cold"))], env)
    assert cold.wait(timeout=300) == 0
    filled = cache_entries(env)
    err_path = tmp_path_factory.mktemp("warm") / "stderr.txt"
    with open(err_path, "w") as err:
        warm = train(TINY + ["--total_env_steps", "1000000", "--log_dir", str(err_path.parent)], env, stderr=err)
        before, after, code, seconds = sigterm_after(warm, "[train] steps")
    return before + after, err_path.read_text(), code, cache_entries(env) - filled, before, seconds


def test_warm_cache_loads_print_no_xla_errors(stopped_run):
    out, err, code, new_entries, _, _ = stopped_run
    assert not new_entries, f"the second run compiled {len(new_entries)} programs instead of loading them"
    assert not XLA_ERROR.search(err), err[:2000]


def test_sigterm_during_training_saves_what_the_log_reported_within_30_s_and_resume_continues(stopped_run, env):
    out, err, code, _, before, seconds = stopped_run
    assert code == 0 and seconds < GRACE, (code, seconds, err[-2000:])
    assert "SIGTERM: saving a checkpoint after this host call" in out, out
    saved = re.search(r"checkpoint saved to (\S+)", out)
    assert saved and os.path.isdir(saved.group(1)), out
    step = int(os.path.basename(saved.group(1)))
    reported = [int(s.replace(",", "")) for s in STEPS.findall(before)]
    assert reported and step >= reported[-1], (step, reported)  # no progress the log showed is lost
    run_dir = os.path.dirname(os.path.dirname(saved.group(1)))
    assert os.path.exists(os.path.join(run_dir, "policy", "policy.msgpack"))
    resumed = train(["--resume", run_dir, "--total_env_steps", str(step + 160)], env)
    rest = resumed.stdout.read()
    assert resumed.wait(timeout=300) == 0
    assert f"resumed from {saved.group(1)} at env step {step:,}" in rest, rest
    final = re.search(r"steps ([\d,]+)/\1 ", rest)  # trained on to its (rounded-up) total
    assert final and int(final.group(1).replace(",", "")) >= step + 160, rest


def test_progress_shows_the_training_return_and_a_first_evaluation_after_warm_up(stopped_run):
    out = stopped_run[0]
    assert re.search(r"warm-up done in \d+ s \(eval return -?\d", out), out  # evaluated, not nan
    assert re.search(r"\[train\] steps .* train return -?\d+\.\d+ \(length 1\)", out), out
    assert re.search(r"\[train\] sac on multimodal \(preset cpu, recipe classic\) on cpu: \d+ cores?", out), out
