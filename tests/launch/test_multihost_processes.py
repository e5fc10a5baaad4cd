"""`launch.multihost` as real processes: 2 processes x 1 CPU device on localhost (gloo collectives,
jax.distributed's coordination service), on the tiny bandit so that the whole module costs about a
minute. One module fixture drives the runs the tests read:

1. two processes started the SLURM way (SLURM_* variables, no flags) train with a checkpoint every
   64 env steps; once two checkpoints exist, process 1 alone gets SIGTERM: both must stop after one
   shared checkpoint and exit 0;
2. the newest checkpoint is damaged (one array file overwritten with random bytes of its length);
3. two processes started with flags `--resume` the run: they fall back to the newest intact
   checkpoint and train to env step T2 (a final checkpoint there; both exit 0); meanwhile one
   process on 2 emulated devices trains the same configuration straight to T2: the two final
   checkpoints must be equal bit for bit (every leaf: parameters, optimiser states, replay ring,
   env states, RNG). Why exact: both run the same per-device program; the only cross-device
   arithmetic is the mean over 2 devices of gradients, normaliser moments and metrics, and a sum
   of two floats is the same in either order, whether gloo or XLA's in-process all-reduce adds
   them. The resume restores the full state (replay ring included), so it is exact too;
4. two processes resume again and, after a new checkpoint, process 1 is killed (SIGKILL): process 0
   must exit within 60 s with one `error:` line naming process 1, the newest checkpoint intact;
   meanwhile one process resuming the two-process run is refused naming both process counts, and
   one resuming a copy whose every checkpoint is damaged stops naming the directory.
"""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from launch import multihost

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ["--env", "multimodal", "--agent", "sac", "--preset", "cpu", "--actor_hidden", "16,16",
        "--critic_hidden", "16,16", "--num_envs", "8", "--batch_size", "32", "--updates_per_step", "1",
        "--learning_starts", "64", "--iterations_per_call", "4", "--replay_capacity", "4096",
        "--eval_episodes", "8", "--eval_interval", "0"]
CALL = 4 * 8  # env steps per host call (iterations_per_call x num_envs): every call ends on a multiple
T2 = 64 + 12 * CALL  # warm-up + 12 calls: where the resumed run and the straight one are compared
HEARTBEAT_S = 6  # a lost process is declared after this many seconds without a heartbeat


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slurm_job_id() -> str:
    """A SLURM_JOB_ID whose derived coordinator port (launch/multihost.py) is free here."""
    while True:
        job = random.randrange(1, 10_000_000)
        if port_is_free(multihost.slurm_port({"SLURM_JOB_ID": str(job)})):
            return str(job)


def environment(**extra) -> dict:
    """This environment without SLURM variables or emulated devices, CPU only, XLA errors shown,
    a short heartbeat; then `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["XLA_FLAGS"] = " ".join(f for f in env.get("XLA_FLAGS", "").split() if "device_count" not in f)
    env.update(JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="1", MJX_SMFP_HEARTBEAT_S=str(HEARTBEAT_S), **extra)
    return env


class Runs:
    """Processes started by this module, their output in files; all killed at the end."""

    def __init__(self, directory):
        self.directory, self.processes = directory, []

    def start(self, name: str, argv: list, env: dict) -> subprocess.Popen:
        out, err = (open(self.directory / f"{name}.{s}", "w") for s in ("out", "err"))
        process = subprocess.Popen([sys.executable, "-m", *argv], cwd=ROOT, env=env, stdout=out, stderr=err)
        process.name = name
        self.processes.append(process)
        return process

    def output(self, process) -> tuple[str, str]:
        return tuple((self.directory / f"{process.name}.{s}").read_text() for s in ("out", "err"))

    def kill_all(self):
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)


def two_processes(runs, name, train_args, slurm: bool):
    if slurm:
        job = slurm_job_id()
        return [runs.start(f"{name}{i}", ["launch.multihost", "--", *train_args], environment(
            SLURM_JOB_NODELIST="localhost", SLURM_NTASKS="2", SLURM_PROCID=str(i), SLURM_JOB_ID=job))
            for i in range(2)]
    coordinator = f"127.0.0.1:{free_port()}"
    return [runs.start(f"{name}{i}", ["launch.multihost", "--coordinator", coordinator, "--num-processes", "2",
                                      "--process-id", str(i), "--", *train_args], environment()) for i in range(2)]


def wait_for(condition, processes, timeout: float, what: str):
    deadline = time.time() + timeout
    while not condition():
        dead = [p.name for p in processes if p.poll() is not None]
        assert not dead and time.time() < deadline, f"waiting for {what}: exited {dead} / timed out"
        time.sleep(0.05)


def steps_saved(run_dir) -> list[int]:
    """Checkpoints with their manifest written (complete), oldest first."""
    from mjx_smfp import checkpoint_files

    where = run_dir / "checkpoints"
    return sorted(int(p.name) for p in where.iterdir() if p.name.isdigit()
                  and checkpoint_files.has_manifest(str(p))) if where.exists() else []


def checkpoint_arrays(step_dir) -> dict:
    """Every saved leaf of a checkpoint as a numpy array, by tree path (no template, any topology)."""
    import jax
    import orbax.checkpoint as ocp

    checkpointer = ocp.PyTreeCheckpointer()
    tree = checkpointer.metadata(str(step_dir / "default"))
    tree = getattr(getattr(tree, "item_metadata", tree), "tree", tree)
    args = jax.tree_util.tree_map(lambda _: ocp.RestoreArgs(restore_type=np.ndarray), dict(tree))
    return checkpointer.restore(str(step_dir / "default"), restore_args=args)


def damage(step_dir) -> None:
    """Random bytes over the largest array file, its length kept (orbax alone would read them as data)."""
    victim = max((f for f in step_dir.rglob("d/*") if f.is_file()), key=lambda f: f.stat().st_size)
    victim.write_bytes(np.random.default_rng(1).integers(0, 256, victim.stat().st_size, dtype=np.uint8).tobytes())


def single(runs, name, train_args, devices: int = 1):
    env = environment(XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}") if devices > 1 else environment()
    return runs.start(name, ["launch.train", *train_args], env)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Drive the runs of the module docstring; returns what the tests check."""
    work = tmp_path_factory.mktemp("multihost")
    run_dir, straight_dir, broken_dir = work / "run", work / "straight", work / "broken"
    runs, facts = Runs(work), {"run_dir": run_dir, "straight_dir": straight_dir, "broken_dir": broken_dir}
    try:
        t0 = time.time()
        # 1. SLURM-style start; SIGTERM to process 1 once two checkpoints exist.
        first = two_processes(runs, "first", [*TINY, "--total_env_steps", "1000000", "--checkpoint_interval",
                                              str(2 * CALL), "--run_dir", str(run_dir)], slurm=True)
        wait_for(lambda: len(steps_saved(run_dir)) >= 2, first, 240, "two checkpoints")
        signalled = time.time()
        first[1].send_signal(signal.SIGTERM)
        facts["first_codes"] = [p.wait(timeout=60) for p in first]
        facts["first_seconds"] = time.time() - signalled
        facts["first_output"] = [runs.output(p) for p in first]
        facts["first_saved"] = steps_saved(run_dir)
        # 2. Damage the newest checkpoint.
        facts["damaged"], facts["intact"] = facts["first_saved"][-1], facts["first_saved"][-2]
        damage(run_dir / "checkpoints" / str(facts["damaged"]))
        # 3. Resume with flags to T2; meanwhile one process on two emulated devices trains straight to T2.
        second = two_processes(runs, "second", ["--resume", str(run_dir), "--total_env_steps", str(T2)], slurm=False)
        straight = single(runs, "straight", [*TINY, "--num_devices", "2", "--total_env_steps", str(T2),
                                             "--checkpoint_interval", "0", "--run_dir", str(straight_dir)], devices=2)
        facts["second_codes"] = [p.wait(timeout=300) for p in second]
        facts["second_output"] = runs.output(second[0])
        facts["straight_code"] = straight.wait(timeout=300)
        facts["straight_output"] = runs.output(straight)
        finished = facts["second_codes"] == [0, 0]
        facts["two_at_t2"] = checkpoint_arrays(run_dir / "checkpoints" / str(T2)) if finished else {}
        shutil.copytree(run_dir, broken_dir)
        # 4. Resume again, kill process 1 after a new checkpoint; meanwhile one process tries to resume the
        # two-process run, and another a copy whose every checkpoint is damaged.
        third = two_processes(runs, "third", ["--resume", str(run_dir), "--total_env_steps", "1000000",
                                              "--checkpoint_interval", str(CALL)], slurm=False)
        for step in steps_saved(broken_dir):
            damage(broken_dir / "checkpoints" / str(step))
        refused = [single(runs, name, ["--resume", str(d)]) for name, d in (("other", run_dir), ("none", broken_dir))]
        wait_for(lambda: steps_saved(run_dir)[-1] > T2, third, 240, f"a checkpoint past env step {T2}")
        killed = time.time()
        third[1].kill()
        facts["survivor_code"] = third[0].wait(timeout=120)
        facts["survivor_seconds"] = time.time() - killed
        facts["third_output"] = runs.output(third[0])
        facts["refused_codes"] = [p.wait(timeout=180) for p in refused]
        facts["refused_output"] = [runs.output(p) for p in refused]
        facts["seconds"] = time.time() - t0
    finally:
        runs.kill_all()
    return facts


def test_sigterm_to_one_of_two_slurm_launched_processes_stops_both_after_one_shared_checkpoint(runs):
    (out0, err0), (out1, err1) = runs["first_output"]
    assert runs["first_codes"] == [0, 0], (err0[-3000:], err1[-3000:])
    assert runs["first_seconds"] < 30, runs["first_seconds"]  # SLURM's grace before SIGKILL
    assert "2 cpu device(s) over 2 process(es)" in out0, out0
    assert f"stopped; checkpoint saved to {runs['run_dir'] / 'checkpoints'}" in out0, out0
    assert runs["first_saved"][-1] < T2 and "error:" not in err0 + err1


def test_resume_falls_back_past_the_damaged_checkpoint_with_a_warning_naming_its_step(runs):
    out, err = runs["second_output"]
    damaged, intact = runs["damaged"], runs["intact"]
    assert f"(env step {damaged:,}) is damaged: file default/" in err and "CRC-32 differs" in err, err[-3000:]
    assert f"resumed from {runs['run_dir'] / 'checkpoints' / str(intact)} at env step {intact:,}" in out, out
    assert (runs["run_dir"] / "checkpoints.damaged" / str(damaged)).is_dir()
    assert runs["second_codes"] == [0, 0], err[-3000:]


def test_two_processes_trained_and_resumed_equal_one_process_on_two_emulated_devices_bit_for_bit(runs):
    assert runs["straight_code"] == 0, runs["straight_output"][1][-3000:]
    two = runs["two_at_t2"]
    one = checkpoint_arrays(runs["straight_dir"] / "checkpoints" / str(T2))
    assert sorted(two) == sorted(one) and len(one) > 50
    differ = [k for k in one if not np.array_equal(one[k], two[k])]
    assert not differ, differ[:10]
    assert int(one["env_steps"]) == T2 and int(one["updates"]) == int(two["updates"]) > 0


def test_a_killed_worker_stops_the_survivor_within_60_s_with_one_error_line_and_the_checkpoint_intact(runs):
    from mjx_smfp import checkpoint_files

    out, err = runs["third_output"]
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert runs["survivor_code"] == 1 and runs["survivor_seconds"] < 60, (runs["survivor_seconds"], err[-3000:])
    assert len(errors) == 1 and errors[0].startswith("error: process 0: lost process 1 of 2"), err[-3000:]
    assert f"--resume {runs['run_dir']}" in errors[0]
    assert "Traceback" not in err and "stack trace" not in err, err[-3000:]
    newest = runs["run_dir"] / "checkpoints" / str(steps_saved(runs["run_dir"])[-1])
    assert int(newest.name) > T2 and checkpoint_files.damage(str(newest)) is None


def test_resuming_with_another_process_count_or_no_intact_checkpoint_is_one_error_line(runs):
    """One process resuming the two-process run is refused naming both counts; with every
    checkpoint damaged, resume stops naming the run directory. No traceback in either."""
    (_, other), (_, none) = runs["refused_output"]
    assert runs["refused_codes"] == [2, 2], (other[-2000:], none[-2000:])
    assert "Traceback" not in other + none
    for err in (other, none):
        assert [line for line in err.splitlines() if line.startswith("error:")] == [err.strip().splitlines()[-1]]
    assert "was written by 2 process(es) with 2 device(s) in all; this run has 1 process(es) with 1 device(s)" in other
    assert f"error: no intact checkpoint in {runs['broken_dir'] / 'checkpoints'}" in none, none[-2000:]
