"""benchmarks/paper_table.py: its aggregation on synthetic curves, and `--smoke` end to end
(train both agents with 2 seeds in one process each, resume-skip, refusal of other options, PNG and tables)."""
import json
import shutil

import numpy as np
import pytest

from benchmarks import machine
from benchmarks import paper_table as pt


def _write_metrics(run_dir, records):
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "metrics.jsonl", "w") as f:
        for rec in records:
            f.write(json.dumps(rec) + "\n")
        f.write('{"step": 99, "eval/ret')  # a torn last line (killed run) is skipped


def test_curves_keep_the_later_record_of_a_step_and_summarise_over_seeds(tmp_path):
    def rec(step, v0, v1):
        return {"step": step, "eval/return_mean": (v0 + v1) / 2, "eval/return_mean/seed_0": v0,
                "eval/return_mean/seed_1": v1}

    # A first life logs steps 1-4 and is killed after its checkpoint at step 2; the resumed life
    # logs steps 3-12 again (the true values s and 2s).
    first = [rec(1, 1.0, 2.0), rec(2, 2.0, 4.0), rec(3, -100.0, -100.0), rec(4, -100.0, -100.0)]
    resumed = [rec(s, float(s), 2.0 * s) for s in range(3, 13)] + [{"step": 13, "train/critic_loss": 1.0}]
    _write_metrics(tmp_path, first + resumed)
    curves = pt.read_curves(str(tmp_path))
    assert len(curves) == 2 and [s for s, _ in curves[0]] == list(range(1, 13))
    assert curves[0][2] == (3, 3.0)  # the resumed run's record (logged after the stale one) wins
    row = pt.summarise_run(curves)
    # final = mean of the last 10 evals (steps 3..12): seed 0 -> 7.5, seed 1 -> 15.
    assert row["final_per_seed"] == [7.5, 15.0] and row["best_per_seed"] == [12.0, 24.0]
    assert row["final_mean"] == 11.25 and row["final_sd"] == pytest.approx(np.std([7.5, 15.0], ddof=1))
    assert row["env_steps"] == 12 and row["seeds"] == 2 and row["evaluations"] == 12
    half = 12.706 * np.std([7.5, 15.0], ddof=1) / np.sqrt(2)  # Student-t, 1 dof
    assert (row["final_ci_lo"], row["final_ci_hi"]) == pytest.approx((11.25 - half, 11.25 + half), rel=1e-4)
    assert row["final_window"] == [3, 12]  # the env steps the final return averages


def test_a_run_is_read_from_whichever_of_run_dir_and_record_reached_further(tmp_path):
    def recs(n):
        return [{"step": s, "eval/return_mean/seed_0": float(s), "eval/return_mean/seed_1": 2.0 * s}
                for s in range(1, n + 1)]

    run_dir = tmp_path / "runs" / "hopper" / "sac"
    _write_metrics(run_dir, recs(4))
    status, curves = pt.load_run(str(tmp_path), "hopper", "sac")
    assert status["status"] == "in progress" and pt._reached(curves) == 4
    pt.write_record(str(tmp_path), "hopper", "sac", status, curves)
    _write_metrics(run_dir, recs(2))  # the machine was lost; the run restarted from step 0
    status, curves = pt.load_run(str(tmp_path), "hopper", "sac")
    assert pt._reached(curves) == 4 and curves[1][3] == (4, 8.0) and status["record"].endswith("hopper_sac.json")
    _write_metrics(run_dir, recs(6))  # ... and has now passed the record
    status, curves = pt.load_run(str(tmp_path), "hopper", "sac")
    assert pt._reached(curves) == 6 and "record" not in status and pt.last_step(str(tmp_path), "hopper", "sac") == 6


def _row(agent, finals, env_steps=100_000):
    row = pt.summarise_finals(finals, finals, env_steps, 20, [55_000, env_steps])
    return dict(row, task="halfcheetah", agent=agent)


def test_comparison_notes_say_resolved_only_when_the_exact_test_does():
    smfp, sac = _row("smfp", [1064.1, 827.7, 617.8, 1892.2]), _row("sac", [421.6, 394.4, 378.2, 367.0])
    other = _row("other", [1000.0, 900.0, 1100.0, 800.0])
    notes = pt.comparison_notes("halfcheetah", [smfp, sac, other])
    # Every smfp seed above every sac seed: Mann-Whitney p = 2/70, its floor at 4 vs 4, although the
    # Welch-t interval of the difference holds 0 (Welch p = 0.084).
    assert any(n.startswith("smfp vs sac, final return over 55K-100K: difference +710.2 [") and "Welch t 95 %, p = 0.084"
               in n and n.endswith("resolved at 5 %: smfp > sac (Mann-Whitney, exact, two-sided p = 0.029, n = 4 vs 4).")
               for n in notes)
    assert any(n.startswith("smfp vs other") and "not resolved at 5 %" in n for n in notes)
    assert ("published SMFP 15,800 is above the interval of our smfp (1M vs our 100K steps: not comparable yet)."
            in notes)
    # A run still in progress is not compared with a finished one (its final is at fewer steps).
    notes = pt.comparison_notes("halfcheetah", [smfp, dict(sac, env_steps=30_000)])
    assert "smfp vs sac: not compared yet — smfp is at 100K steps, sac at 30K." in notes
    assert not any("resolved" in n for n in notes)


def test_lost_runs_are_reported_from_an_older_table_with_their_source(tmp_path):
    old = {"rows": [{"task": "hopper", "agent": "smfp", "status": "done", "env_steps": 100_000, "evaluations": 20,
                     "final_per_seed": [757.9, 542.6, 652.1, 1120.6], "best_per_seed": [1036.4, 709.2, 690.4, 2097.0]},
                    {"task": "hopper", "agent": "sac", "status": "not started", "final_per_seed": []}]}
    (tmp_path / "old.json").write_text(json.dumps(old))
    rows = pt.main(["--report", "--tasks", "hopper", "--agents", "smfp,sac", "--seeds", "4", "--budget", "100000",
                    "--out", str(tmp_path), "--lost", str(tmp_path / "old.json")])
    smfp, sac = rows
    assert smfp["status"] == "done" and smfp["seeds"] == 4 and smfp["final_window"] == [55_000, 100_000]
    assert smfp["final_mean"] == pytest.approx(768.3, abs=0.01) and "old.json" in smfp["source"]
    assert sac["status"] == "not started" and sac["seeds"] == 0
    md = (tmp_path / "paper_table.md").read_text()
    assert "| smfp | done | 4 | 768.3 ± 250.8 [" in md and "over 55K-100K" in md and "not skipped by a re-run" in md
    assert not (tmp_path / "hopper.png").exists()  # no curves on record: no empty figure


def test_a_lost_run_stands_in_only_where_its_table_configured_the_agent_as_this_command_does(tmp_path):
    # the older command has an SMFP-only option (its default): it must not break the SAC row
    seeds = {"final_per_seed": [1.0, 2.0, 3.0, 4.0], "best_per_seed": [1.0, 2.0, 3.0, 4.0]}
    old = {"meta": {"command": "python -m benchmarks.paper_table --tasks hopper --agents smfp,sac --seeds 4 "
                               "--budget 100000 --out somewhere --report --md_coef 0.01"},
           "rows": [{"task": "hopper", "agent": a, "status": "done", "env_steps": 100_000, "evaluations": 20, **seeds}
                    for a in ("smfp", "sac")]}
    (tmp_path / "old.json").write_text(json.dumps(old))
    smfp, sac = pt.main(["--report", "--tasks", "hopper", "--agents", "smfp,sac", "--seeds", "4", "--budget",
                         "100000", "--out", str(tmp_path), "--lost", str(tmp_path / "old.json"),
                         "--init_temperature", "0.1"])
    assert smfp["status"] == "done" and smfp["seeds"] == 4  # 0.1 is SMFP's default: the same configuration
    assert sac["seeds"] == 0 and "source" not in sac  # SAC's default is 1.0: another configuration, left out


def test_config_changes_compare_nested_configs_field_by_field_and_ignore_fields_added_since():
    """A field added to a nested config since a run started (SAC Flow's `policy.entropy_estimator`) does
    not make the run another configuration; a changed nested field is named with its path."""
    before = {"train": {"seed": 0, "run_dir": "a"}, "agent": {"lr": 1e-3, "policy": {"flow_steps": 4}}}
    now = {"train": {"seed": 0, "run_dir": "b"}, "agent": {"lr": 1e-3, "policy": {"flow_steps": 4, "new": "x"}}}
    assert pt.config_changes(before, now) == []
    now["agent"]["policy"]["flow_steps"] = 2
    assert pt.config_changes(before, now) == ["agent.policy.flow_steps: 4 -> 2"]


def test_a_run_lists_each_machine_that_trained_it_once_in_order(tmp_path, monkeypatch):
    for here in ("cpu A", "cpu A", "cpu B", "cpu B"):  # started, resumed, moved, resumed
        monkeypatch.setattr(pt.machine, "summary", lambda here=here: here)
        pt.note_machine(str(tmp_path))
    assert pt.read_machines(str(tmp_path)) == ["cpu A", "cpu B"]
    rows = [dict(task="hopper", agent="smfp", status="done", seeds=3, trained_on=["cpu A", "cpu B"], env_steps=10,
                 final_mean=1.0, final_sd=0.0, final_ci_lo=1.0, final_ci_hi=1.0, best_mean=1.0, best_sd=0.0,
                 best_ci_lo=1.0, best_ci_hi=1.0, final_per_seed=[1.0] * 3)]
    md = pt.markdown(rows, ["hopper"], {"budget": 10, "seeds": 3, "machine": "cpu C", "date": "d"})
    assert "smfp trained on: cpu A; then cpu B." in md and "reported on cpu C" in md


def test_smoke_trains_resumes_refuses_other_options_and_writes_the_table(tmp_path, capsys):
    rows = pt.main(["--smoke", "--out", str(tmp_path)])
    assert {(r["task"], r["agent"], r["status"], r["seeds"]) for r in rows} == {
        (pt.SMOKE["tasks"], "smfp", "done", 2), (pt.SMOKE["tasks"], "sac", "done", 2)}
    here = machine.summary()
    assert all(r["trained_on"] == [here] for r in rows)  # kept in the record, so a fresh clone still names it
    for r in rows:
        assert r["env_steps"] == pt.SMOKE["budget"] and np.isfinite(r["final_mean"]) and r["final_ci_lo"] <= r["final_ci_hi"]
    for name in ("paper_table.md", "paper_table.csv", "paper_table.json", f"{pt.SMOKE['tasks']}.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "overall" in capsys.readouterr().out  # progress + ETA lines
    again = pt.main(["--smoke", "--out", str(tmp_path)])  # finished runs are skipped, not retrained
    assert "done already" in capsys.readouterr().out
    assert [r["final_mean"] for r in again] == [r["final_mean"] for r in rows]
    # A finished run is not passed off as the result of a command with other options.
    with pytest.raises(ValueError, match=r"multimodal/smfp run of another configuration .*eval_episodes: 4 -> 3"):
        pt.main(["--smoke", "--out", str(tmp_path), "--eval_episodes", "3"])
    # A fresh clone has the committed records but no run dirs: it still skips and reports them,
    # and still refuses other options (the record keeps the run's configuration).
    shutil.rmtree(tmp_path / "runs")
    cloned = pt.main(["--smoke", "--out", str(tmp_path)])
    assert "records/multimodal_smfp.json); skipped" in capsys.readouterr().out
    assert [(r["status"], r["env_steps"], r["final_mean"], r["best_per_seed"], r["trained_on"]) for r in cloned] == [
        (r["status"], r["env_steps"], r["final_mean"], r["best_per_seed"], r["trained_on"]) for r in rows]
    with pytest.raises(ValueError, match=r"eval_episodes: 4 -> 3"):
        pt.main(["--smoke", "--out", str(tmp_path), "--eval_episodes", "3"])
