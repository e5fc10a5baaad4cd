"""benchmarks/gpu_check.py --smoke: the one-shot GPU check's whole code path (phases in
subprocesses under time limits, one JSON file per phase) on the CPU at tiny sizes."""
import json
import math
import subprocess
import sys

from benchmarks import gpu_check


def _positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_smoke_run_writes_one_json_per_phase_with_finite_positive_figures(tmp_path):
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--smoke", "--out", str(tmp_path)],
                          cwd=gpu_check.REPO, capture_output=True, text=True, timeout=gpu_check.SMOKE.total_s + 60)
    assert done.returncode == 0, done.stdout[-3000:] + (tmp_path / "gpu_check.log").read_text()[-3000:]
    results = {p: json.loads((tmp_path / f"{p}.json").read_text()) for p in gpu_check.PHASES}
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {p: s["status"] for p, s in summary["status"].items()} == {
        "env": "ok", "costs": "ok", "train_smfp": "ok", "train_sac": "ok", "brax": "skipped"}

    rows = results["env"]["rows"]
    assert [r["task"] for r in rows] == ["inverted_pendulum"] and rows[0]["physics_preset"] in ("gpu", "fast")
    assert all(_positive(r["wrapped_steps_per_s"]) for r in rows)
    assert any(_positive(r["raw_steps_per_s"]) for r in rows)
    costs = results["costs"]
    assert all(_positive(costs[k]) for k in ("sac_update_ms", "smfp_update_ms", "sac_act_8_ms", "smfp_act_8_ms",
                                             "smfp_over_sac_update"))
    generative = {r["agent"]: r for r in costs["generative"]}  # the multi-step baselines beside SAC
    assert (generative["sacflow"]["nfe"], generative["dime"]["nfe"]) == (4, 16)
    assert all(_positive(r["update_32_ms"]) and _positive(r["act_8_ms"]) for r in generative.values())
    for agent in ("smfp", "sac"):
        train = results[f"train_{agent}"]
        assert _positive(train["env_steps_per_s"]) and _positive(train["updates_per_s"])
        assert train["learning"], "no learning chunk ran in the time left"
        assert all(_positive(p["wall_s"]) and p["env_steps"] > 0 for p in train["learning"])
        assert summary["headline"][f"loop_{agent}_env_steps_per_s"] == train["env_steps_per_s"]
    assert results["brax"]["status"] == "skipped" and results["brax"]["reason"]
    assert len(done.stdout) < 12_000  # what the device tool keeps of the output


def test_headline_compares_the_loop_with_raw_stepping_of_the_same_task_and_batch(tmp_path):
    rows = [dict(task="humanoid", physics_preset="gpu", num_envs=n, wrapped_steps_per_s=w, raw_steps_per_s=r)
            for n, w, r in ((1024, 5e5, float("nan")), (4096, 9e5, 1.2e6))]
    (tmp_path / "env.json").write_text(json.dumps({"rows": rows}))
    (tmp_path / "train_smfp.json").write_text(json.dumps({
        "num_envs": 4096, "env_steps_per_s": 3e5, "updates_per_s": 600.0,
        "learning": [{"wall_s": 60.0, "episode_return": None}, {"wall_s": 90.0, "episode_return": 400.0}]}))
    h = gpu_check.headline(str(tmp_path), gpu_check.GPU)
    assert h["loop_smfp_over_raw"] == 0.25 and h["env_humanoid_gpu_1024_steps_per_s"] == 5e5
    assert h["learn_smfp_last_return"] == 400.0 and h["learn_smfp_wall_s"] == 90.0
    assert not any(k.startswith(("loop_sac", "brax")) for k in h)  # phases that wrote nothing
