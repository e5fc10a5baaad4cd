"""The multi-host launcher turns flags or SLURM variables into jax.distributed settings."""
import pytest

from launch import multihost
from mjx_smfp import distributed


def test_explicit_flags_become_distributed_variables_and_rest_goes_to_train():
    variables, rest = multihost.parse(
        ["--coordinator", "node0:1234", "--num-processes", "4", "--process-id", "2", "--", "--env", "ant"]
    )
    assert variables == {
        distributed.COORDINATOR_VAR: "node0:1234",
        distributed.NUM_PROCESSES_VAR: "4",
        distributed.PROCESS_ID_VAR: "2",
    }
    assert rest == ["--env", "ant"]


def test_slurm_variables_fill_in_missing_flags(monkeypatch):
    monkeypatch.setenv("SLURM_JOB_NODELIST", "gpu[003-005,009],cpu1")
    monkeypatch.setenv("SLURM_NTASKS", "4")
    monkeypatch.setenv("SLURM_PROCID", "3")
    variables, rest = multihost.parse(["--", "--env", "humanoid"])
    assert variables[distributed.COORDINATOR_VAR] == f"gpu003:{multihost.DEFAULT_PORT}"
    assert variables[distributed.NUM_PROCESSES_VAR] == "4"
    assert variables[distributed.PROCESS_ID_VAR] == "3"
    assert rest == ["--env", "humanoid"]


def test_missing_settings_outside_slurm_are_named(monkeypatch):
    for var in ("SLURM_JOB_NODELIST", "SLURM_NTASKS", "SLURM_PROCID"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ValueError, match="--coordinator, --num-processes, --process-id"):
        multihost.parse([])


def test_process_id_out_of_range_is_rejected():
    with pytest.raises(ValueError, match="process-id 4"):
        multihost.parse(["--coordinator", "h:1", "--num-processes", "4", "--process-id", "4"])


def test_initialize_is_a_no_op_without_a_coordinator(monkeypatch):
    monkeypatch.delenv(distributed.COORDINATOR_VAR, raising=False)
    assert distributed.initialize_from_env() is False


def test_coordinator_without_process_count_is_an_error(monkeypatch):
    monkeypatch.setenv(distributed.COORDINATOR_VAR, "h:1")
    monkeypatch.delenv(distributed.NUM_PROCESSES_VAR, raising=False)
    monkeypatch.delenv(distributed.PROCESS_ID_VAR, raising=False)
    with pytest.raises(ValueError, match="MJX_SMFP_NUM_PROCESSES"):
        distributed.initialize_from_env()


def test_an_unreachable_coordinator_is_one_error_line_not_a_runtime_abort():
    """A worker whose coordinator never answers (wrong address, process 0 not started) stops with
    an `error:` line naming the address after MJX_SMFP_INIT_TIMEOUT_S, instead of the runtime's
    C++ abort (status 134 and a stack trace)."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free once closed: nobody listens there
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-m", "launch.multihost", "--coordinator", f"127.0.0.1:{port}",
                          "--num-processes", "2", "--process-id", "1", "--", "--env", "multimodal"], cwd=root,
                         env=dict(os.environ, MJX_SMFP_INIT_TIMEOUT_S="1", JAX_PLATFORMS="cpu"),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.strip() == (f"error: no coordinator answers at 127.0.0.1:{port} after 1 s ([Errno 111] "
                                  "Connection refused); is process 0 running there, with that address and port?")
