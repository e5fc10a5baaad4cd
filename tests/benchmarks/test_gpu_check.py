"""benchmarks/gpu_check.py: the one-shot GPU check streams every figure as a strict-JSON row the
moment it exists, so a run cut short keeps what it measured. The smoke run takes its whole code
path (phases in subprocesses under time limits) on the CPU at tiny sizes; a second run is killed
at a random point; the rest checks the plan, the headline, the targets and the checker itself
without JAX."""
import json
import math
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from benchmarks import gpu_check


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def _smoke(out, tmp, **kw):
    env = dict(os.environ, TMPDIR=str(tmp))
    os.makedirs(tmp, exist_ok=True)
    return [sys.executable, "-m", "benchmarks.gpu_check", "--smoke", "--out", str(out)], dict(
        cwd=gpu_check.REPO, env=env, text=True, **kw)


def test_smoke_run_writes_every_planned_row_as_strict_json_and_leaves_no_temporary_files(tmp_path):
    cmd, kw = _smoke(tmp_path / "out", tmp_path / "tmp", capture_output=True)
    done = subprocess.run(cmd, timeout=gpu_check.SMOKE.total_s + 60, **kw)
    log = tmp_path / "out" / gpu_check.LOG
    assert done.returncode == 0, done.stdout[-3000:] + (log.read_text()[-3000:] if log.exists() else "")
    check = gpu_check.verify(str(tmp_path / "out"), complete=True)
    assert check["problems"] == []
    assert check["files"] == sorted([gpu_check.ROWS, gpu_check.SUMMARY, gpu_check.LOG])
    assert os.listdir(tmp_path / "tmp") == []  # the installed wheels' and compile cache's folder is gone
    assert len(done.stdout) < 12_000  # what the device tool keeps of the output

    rows = gpu_check.read_rows(str(tmp_path / "out"))
    k = gpu_check.by_key(rows)
    assert [r["t_s"] for r in rows] == sorted(r["t_s"] for r in rows)  # appended as measured
    assert k["env/backend"]["value"] == "cpu" and k["env/backend"]["devices"]
    p = "env/inverted_pendulum/gpu/4"
    assert all(_positive(k[f"{p}/{n}"]["value"]) for n in ("wrapped_compile_s", "wrapped_steps_per_s", "raw_compile_s",
                                                            "raw_steps_per_s", "wrapped_over_raw"))
    for agent in ("sac", "smfp"):
        q = f"train_{agent}"
        compiles = [k[f"{q}/{n}"]["value"] for n in ("warmup_s", "compile/train_chunk_s")]
        assert all(_positive(c) for c in compiles)
        assert _positive(k[f"{q}/throughput"]["value"]) and _positive(k[f"{q}/throughput"]["updates_per_s"])
        learning = [r for r in rows if r["key"] == f"{q}/learning"]
        assert learning and all(r["env_steps"] > 0 and r["wall_s"] > 0 for r in learning)
        # wall-clock from the phase's start: compiles included, so later than the compile rows' sum
        assert learning[0]["wall_s"] > sum(compiles)
        assert set(k[f"{q}/returns_reached"]["value"]) == {"0", "0.5"}
    assert all(_positive(k[f"costs/{a}/{m}"]["value"]) for a in ("sac", "smfp") for m in ("update_ms", "act_8_ms"))
    assert all(_positive(k[f"costs_more/{a}/update_ms"]["value"]) for a in ("sac", "sacflow"))

    summary = json.loads((tmp_path / "out" / gpu_check.SUMMARY).read_text())
    assert {p: s["status"] for p, s in summary["status"].items()} == {p.name: "ok" for p in gpu_check.SMOKE.plan}
    assert summary["missing"] == {} and summary["headline"]["sac_env_steps_per_s"] == k["train_sac/throughput"]["value"]
    assert [t["name"] for t in summary["targets"]] == [t["name"] for t in gpu_check.TARGETS]


def test_a_run_killed_at_a_random_point_keeps_every_row_written_before_the_kill(tmp_path):
    seed = random.randrange(1 << 16)
    kill_after = random.Random(seed).uniform(0.0, 40.0)
    cmd, kw = _smoke(tmp_path / "out", tmp_path / "tmp", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                     start_new_session=True)
    proc = subprocess.Popen(cmd, **kw)
    rows_path = tmp_path / "out" / gpu_check.ROWS
    try:
        t = time.time()
        while not (rows_path.exists() and len(rows_path.read_text().splitlines()) >= 2):  # a phase has begun
            assert proc.poll() is None and time.time() - t < 600, f"no phase row (exit {proc.poll()})"
            time.sleep(0.2)
        time.sleep(kill_after)
        before = rows_path.read_text()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the parent and its phase, as a timed-out device command
        proc.wait()
    check = gpu_check.verify(str(tmp_path / "out"), complete=False, at_least_rows=len(before.splitlines()))
    assert check["problems"] == [], f"seed {seed}, killed {kill_after:.1f} s in"
    assert rows_path.read_text().startswith(before)  # nothing written before the kill was lost or changed
    assert len(before.splitlines()) >= 2


def test_gpu_plan_runs_the_headline_first_and_fits_the_device_command_limit():
    plan = gpu_check.GPU.plan
    required = [p for p in plan if p.required]
    assert [p.name for p in required] == ["env", "train_sac", "train_smfp", "costs"]
    assert plan[:len(required)] == tuple(required)  # every optional phase after every headline one
    assert sum(p.limit_s for p in required) + 20 <= gpu_check.GPU.total_s <= 600 - 45  # install + start margins
    assert gpu_check.GPU.env_headline == ("humanoid", "gpu", 4096)
    assert gpu_check.GPU.train_overrides == {"preset": "fast"}  # the fast preset as config_lib.build gives it
    assert gpu_check.GPU.thresholds == (1000.0, 3000.0, 5000.0)
    assert {p.name for p in plan} == set(gpu_check.PHASES)
    for sizes in (gpu_check.GPU, gpu_check.SMOKE):
        planned = gpu_check.planned_rows(sizes)
        assert all(planned[p.name][0] == "backend" for p in sizes.plan)  # each phase first checks the backend


def test_rows_are_strict_json_lines_with_nan_written_as_null(tmp_path):
    rows = gpu_check.Rows(str(tmp_path), "train_sac", time.time() - 5.0, echo=False)
    rows("learning", float("nan"), "return", wall_s=3.0, curve=[1.0, float("inf")])
    rows("throughput", 1e5, "env-steps/s")
    text = (tmp_path / gpu_check.ROWS).read_text()
    assert "NaN" not in text and "Infinity" not in text and text.count("\n") == 2
    first, second = gpu_check.read_rows(str(tmp_path))
    assert first["key"] == "train_sac/learning" and first["value"] is None and first["curve"] == [1.0, None]
    assert second["value"] == 1e5 and 5.0 <= second["t_s"] < 60.0
    with pytest.raises(ValueError):
        gpu_check.loads_strict('{"a": NaN}')


def test_verify_names_leftover_tmp_files_bare_nan_missing_rows_and_too_many_files(tmp_path):
    out = str(tmp_path)
    rows = gpu_check.Rows(out, "env", time.time(), echo=False)
    rows("backend", "gpu")
    rows("end", "ok")
    gpu_check.write_json_atomic(os.path.join(out, gpu_check.SUMMARY),
                                {"sizes": "gpu", "plan": [{"name": "env"}], "status": {}})
    check = gpu_check.verify(out, complete=True)
    assert len(check["problems"]) == 1 and "env: rows not written" in check["problems"][0]
    assert check["phases"] == {"env": "ok"}
    assert gpu_check.verify(out, complete=False)["problems"] == []
    (tmp_path / "summary.json.tmp").write_text("{}")
    with open(os.path.join(out, gpu_check.ROWS), "a") as f:
        f.write('{"key": "env/x", "phase": "env", "value": NaN}\n')
    for i in range(7):
        (tmp_path / f"extra{i}.txt").write_text("")
    problems = " | ".join(gpu_check.verify(out, complete=False)["problems"])
    assert "leftover temporary file summary.json.tmp" in problems and "not strict JSON" in problems
    assert "over 8" in problems


def _row(key, value, **extra):
    return dict(key=key, phase=key.split("/")[0], value=value, **extra)


def test_headline_and_targets_read_the_rows_time_to_return_and_throughput():
    n = 4096
    rows = [_row(f"env/humanoid/gpu/{n}/wrapped_steps_per_s", 8e5), _row(f"env/humanoid/gpu/{n}/raw_steps_per_s", 1e6),
            _row("train_sac/config", "fast", num_envs=n), _row("train_sac/warmup_s", 10.0),
            _row("train_sac/compile/train_chunk_s", 30.0), _row("train_sac/throughput", 7e4, updates_per_s=140.0),
            _row("train_sac/learning", None, wall_s=80.0, env_steps=1e6), _row("train_sac/return_reached/5000", 400.0),
            _row("train_sac/learning", 5100.0, wall_s=400.0, env_steps=2e7),
            _row("train_smfp/config", "fast", num_envs=n), _row("train_smfp/throughput", 3e4, updates_per_s=60.0),
            _row("train_smfp/return_reached/5000", 560.0), _row("costs/smfp_over_sac_update", 1.5)]
    h = gpu_check.headline(rows, gpu_check.GPU)
    assert h["sac_loop_over_raw"] == 7e4 / 1e6 and h["sac_compile_s"] == 40.0
    assert h["sac_last_return"] == 5100.0 and h["sac_trained_s"] == 400.0
    assert h["smfp_time_to_return_5000_s"] == 560.0 and h["smfp_over_sac_update"] == 1.5
    assert "brax_sac_env_steps_per_s" not in h and "smfp_last_return" not in h  # not measured: not made up
    t = {x["name"]: x for x in gpu_check.targets(h, gpu_check.GPU)}
    assert (t["sac_time_to_return_5000_s"]["measured"], t["sac_time_to_return_5000_s"]["met"]) == (400.0, True)
    assert t["smfp_over_sac_time_to_return_5000"]["measured"] == 1.4
    assert t["smfp_over_sac_time_to_return_5000"]["met"] is False  # 1.4x > 1.25x
    assert t["sac_env_steps_per_s"]["met"] is True and t["smfp_env_steps_per_s"]["met"] is False
    unknown = {x["name"]: x["met"] for x in gpu_check.targets({}, gpu_check.GPU)}
    assert set(unknown.values()) == {None}
