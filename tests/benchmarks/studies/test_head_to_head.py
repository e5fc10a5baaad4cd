"""The head-to-head (issue 35): its spec is the pre-registered rule (one recipe, the parallel shape,
the budgets, 5 seeds; the context outside the rule), its report gives the right verdict,
probability of improvement, IQM interval and minimum detectable effect on synthetic records, and
one command trains the real spec at smoke size end to end: a run lost with its machine is
trained again from the start and the loss reported, the context lands beside it, the report and
RESULTS.md come from the records."""
import json
import math
import shutil

import numpy as np
import pytest
from scipy import stats as sp

from benchmarks import studies
from benchmarks.harness import cli, outputs
from benchmarks.harness import spec as spec_lib
from benchmarks.harness.store import Store
from benchmarks.studies import head_to_head as h2h
from benchmarks.studies import head_to_head_report as h2h_report
from mjx_smfp import config as config_lib


def test_sac_and_smfp_resolve_to_one_recipe_at_the_parallel_shape_and_the_registered_budgets():
    study = studies.get("head_to_head")
    assert study.agents == ("sac", "smfp") and study.seeds == 5 and study.final_evals == 3
    assert study.tasks == ("halfcheetah", "hopper", "walker2d", "humanoid")
    for task, budget in {"halfcheetah": 300_000, "hopper": 300_000, "walker2d": 300_000, "humanoid": 500_000}.items():
        sac, smfp = (spec_lib.config(study, task, agent, "", 5, {}, "/x") for agent in study.agents)
        assert config_lib.recipe_differences(sac, smfp) == [], task  # only the policy class differs
        cfg, agent_cfg = sac
        assert (cfg.recipe, cfg.num_envs, cfg.physics, cfg.batch_size, cfg.updates_per_step) == ("parallel", 256, "gpu",
                                                                                                  1024, 4)
        assert agent_cfg.critic_hidden == (256, 256, 256) and agent_cfg.actor_hidden == (256, 256)
        assert (cfg.num_seeds, cfg.seed, cfg.eval_interval, cfg.eval_episodes) == (5, 0, 10_240, 10)
        final = cfg.warmup_iterations * 256 + cfg.train_calls * 2560  # env steps per seed at the end
        assert cfg.total_env_steps == budget and budget <= final < budget + 2560
    context = studies.get("head_to_head_context")
    assert study.context == (context.name,) and not set(context.agents) & set(study.agents)
    assert context.tasks == ("halfcheetah", "humanoid") and context.seeds == 3
    for agent in context.agents:
        cfg, _ = spec_lib.config(context, "humanoid", agent, "", 3, {}, "/x")
        assert cfg.recipe == "authors" and cfg.total_env_steps == 500_000 and cfg.num_envs == 256


def _record(task, agent, finals, study="head_to_head", machine="cpu A", status="done", first=10.0, budget=None):
    """A run's record: each seed's evaluations every 10,240 env steps, from `first` rising linearly to its
    final at half the budget and flat after (so its last 3 average exactly `final`)."""
    budget = budget or h2h.BUDGETS[task]
    steps = [2560, *range(10_240, budget, 10_240), budget]
    speed = 500.0 if agent == "sac" else 250.0  # env steps per second per seed
    curves = [[{"wall_s": 30.0 + s / speed, "env_steps": s, "updates": 4 * (s - 2560) // 256,
                "return": first if i == 0 else final * min(1.0, 2 * s / budget), "load1": 2.0, "forward_velocity": 1.0,
                "knn_entropy": -1.0, **({"flow_spread": 0.5} if agent == "smfp" else {})} for i, s in enumerate(steps)]
              for final in finals]
    return {"study": study, "task": task, "agent": agent, "variant": "", "seeds": len(finals), "status": status,
            "reason": "env_steps" if status == "done" else "", "env_steps": budget, "curves": curves,
            "machines": [machine], "resumes": [], "restarts": []}


def _report(tmp_path, smfp_minus_sac, skip=(), machines=None):
    """The report of synthetic records: SAC's finals per task, SMFP's = SAC's + smfp_minus_sac[k]."""
    store = Store(str(tmp_path / "head_to_head"))
    rng = np.random.default_rng(0)
    for task in h2h.BUDGETS:
        sac = rng.normal(1000, 100, 5)
        for agent, finals in (("sac", sac), ("smfp", sac + np.asarray(smfp_minus_sac))):
            if (task, agent) not in skip:
                store.save(_record(task, agent, list(finals), machine=(machines or {}).get((task, agent), "cpu A")))
    cli.main(["report", "head_to_head", "--out", str(tmp_path / "head_to_head"), "--no-plots"])
    report = json.loads((tmp_path / "head_to_head" / "report.json").read_text())
    return report["analysis"], (tmp_path / "head_to_head" / "report.md").read_text(), store


def test_smfp_higher_on_every_seed_of_every_task_is_smfp_ahead_at_the_tests_floor(tmp_path):
    data, md, store = _report(tmp_path, [500.0] * 5)
    assert data["verdict"] == "SMFP ahead" and data["complete"] and data["p"] == pytest.approx(2 / 252 ** 4)
    assert md.startswith("**Verdict: SMFP ahead**. Exact two-sided van Elteren test") and "p = 5.0e-10" in md
    assert data["iqm"]["poi"] == {"value": 1.0, "lo": 1.0, "hi": 1.0}
    # IQM of the normalised finals: (R - R_random) / (R_ref - R_random), R_random the first evaluation's 10.
    finals = {task: [np.mean([p["return"] for p in c[-3:]]) for c in store.load(task, "smfp")["curves"]]
              for task in h2h.BUDGETS}
    normalised = np.concatenate([(np.array(v) - 10.0) / (h2h.REFERENCE[t] - 10.0) for t, v in finals.items()])
    smfp = data["iqm"]["smfp"]
    assert smfp["iqm"] == pytest.approx(sp.trim_mean(normalised, 0.25)) and smfp["lo"] < smfp["iqm"] < smfp["hi"]
    assert data["iqm"]["sac"]["hi"] < smfp["lo"]
    assert 0.85 <= data["mde"]["d"] <= 1.2 and data["mde"]["tasks"] == list(h2h.BUDGETS)
    assert data["mde"]["in_units"] == pytest.approx([data["mde"]["d"] * s for s in data["mde"]["sds"]])
    assert "SMFP's final returns rank above SAC's" in md and "README" not in md.split("###")[0]


def test_sac_higher_everywhere_is_sac_ahead_and_asks_for_the_readme_line(tmp_path):
    data, md, _ = _report(tmp_path, [-500.0] * 5)
    assert data["verdict"] == "SAC ahead" and data["statistic"] < 0 and data["iqm"]["poi"]["value"] == 0.0
    assert md.startswith("**Verdict: SAC ahead**") and "The README's results line says so too." in md


def test_identical_samples_are_not_resolved_and_the_report_gives_the_minimum_detectable_effect(tmp_path):
    data, md, _ = _report(tmp_path, [0.0] * 5)
    assert data["verdict"] == "not resolved" and data["p"] == pytest.approx(1.0)
    assert data["iqm"]["poi"]["value"] == 0.5 and data["iqm"]["sac"]["iqm"] == pytest.approx(data["iqm"]["smfp"]["iqm"])
    mde = data["mde"]
    assert md.startswith("**Verdict: not resolved**") and "That is not evidence that they are equal" in md
    assert f"a shift of about {mde['d']:g} s.d." in md and f"halfcheetah {mde['in_units'][0]:,.0f}" in md


def test_a_study_with_runs_missing_gives_no_verdict_yet_and_agents_on_two_machines_are_flagged(tmp_path):
    data, md, _ = _report(tmp_path, [500.0] * 5, skip={("humanoid", "smfp")},
                          machines={("hopper", "smfp"): "cpu B"})
    assert data["runs_done"] == 7 and data["runs_expected"] == 8 and not data["complete"]
    assert data["tasks"] == ["halfcheetah", "hopper", "walker2d"] and data["p"] == pytest.approx(2 / 252 ** 3)
    # the test's p is below alpha, but the rule decides only at all of its runs
    assert data["verdict"] == "no verdict yet" and "Verdict:" not in md
    assert md.startswith("**No verdict yet**: 7 of 8 runs (35 of 40 seed-runs) are done") and "decides nothing" in md
    assert "**Not on one machine:** hopper" in md
    assert "| halfcheetah | SAC | 2,500 | 39.1 | 35 | 630 | 2.00 | cpu A | none |" in md  # 5 seeds x 500 steps/s


def test_without_records_the_report_says_no_runs_yet(tmp_path):
    rows = cli.main(["report", "head_to_head", "--out", str(tmp_path / "head_to_head"), "--no-plots"])
    assert rows == [] and (tmp_path / "head_to_head" / "report.md").read_text() == h2h_report.NO_RUNS


def test_the_committed_report_and_results_md_block_and_readme_line_agree():
    with open(f"{outputs.RESULTS}/head_to_head/report.json") as f:
        word = (json.load(f).get("analysis") or {"verdict": "no runs yet"})["verdict"]
    with open(outputs.RESULTS_MD) as f:
        assert "<!-- generated from benchmarks/results/head_to_head/report.md" in f.read()
    with open(f"{outputs.REPO}/README.md") as f:
        line = next(x for x in f if x.startswith("The head-to-head (issue 35"))
    assert word in line  # "SAC ahead" too, if that is what the rule gives


def test_context_runs_are_trained_after_the_study_into_the_sibling_folder_and_kept_out_of_the_rule(tmp_path,
                                                                                                  monkeypatch):
    """One command: the study's runs, then its context's (their own seeds and tasks), each study's
    report; the context shows beside SAC and SMFP and never enters the verdict."""
    import benchmarks.harness.train as train_lib

    trained = []

    def fake_train(study, store, task, agent, variant, *, seeds, **_):
        trained.append((study.name, task, agent, seeds))
        store.save(_record(task, agent, [1000.0 + 100 * k for k in range(seeds)], study=study.name))
    monkeypatch.setattr(train_lib, "train", fake_train)
    cli.main(["run", "head_to_head", "--tasks", "hopper,humanoid", "--out", str(tmp_path / "head_to_head")])
    assert trained == [("head_to_head", "hopper", "sac", 5), ("head_to_head", "hopper", "smfp", 5),
                       ("head_to_head", "humanoid", "sac", 5), ("head_to_head", "humanoid", "smfp", 5),
                       ("head_to_head_context", "humanoid", "sacflow", 3),
                       ("head_to_head_context", "humanoid", "dime", 3)]
    assert (tmp_path / "head_to_head_context" / "report.md").exists()
    md = (tmp_path / "head_to_head" / "report.md").read_text()
    assert "| humanoid | SAC Flow (context) | done | 3 | 1,100 ± 100 [852, 1,348] | 500,000 |" in md
    data = json.loads((tmp_path / "head_to_head" / "report.json").read_text())["analysis"]
    assert data["tasks"] == ["hopper", "humanoid"] and data["p"] == pytest.approx(1.0)  # identical: context ignored
    trained.clear()
    cli.main(["run", "head_to_head", "--agents", "smfp", "--tasks", "humanoid",
              "--out", str(tmp_path / "head_to_head")])
    assert trained == [("head_to_head", "humanoid", "smfp", 5)]  # naming the study's agents leaves the context out


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """The real spec at --smoke sizes (the bandit, 2 seeds): both agents cut short after one train
    call; SAC's record then says "running" with its checkpoint on disk (its process crashed), SMFP's
    run directory is gone (a fresh clone on another machine); then the one command."""
    out = tmp_path_factory.mktemp("smoke") / "head_to_head"
    cli.main(["run", "head_to_head", "--smoke", "--agents", "sac,smfp", "--out", str(out)], max_calls=1)
    first = {agent: json.loads((out / "records" / f"multimodal_{agent}.json").read_text()) for agent in ("sac", "smfp")}
    Store(str(out)).save({**first["sac"], "status": "running"})
    shutil.rmtree(out / "runs" / "multimodal" / "smfp")
    rows = cli.main(["run", "head_to_head", "--smoke", "--agents", "sac,smfp", "--out", str(out)])
    return out, first, rows


def test_the_smoke_run_trains_a_crashed_or_lost_run_again_whole_and_reports_it(smoke):
    out, first, _ = smoke
    assert all(r["status"] == "stopped" and r["env_steps"] == 64 for r in first.values())  # its last evaluation: the warm-up
    assert (out / "runs" / "multimodal" / "sac.crashed-1").is_dir()  # set aside, not resumed
    md = (out / "report.md").read_text()
    for agent, status in (("sac", "running"), ("smfp", "stopped")):
        record = json.loads((out / "records" / f"multimodal_{agent}.json").read_text())
        assert record["status"] == "done" and record["resumes"] == [] and record["curves"][0][0]["env_steps"] == 64
        (restart,) = record["restarts"]
        assert restart["status"] == status and restart["env_steps"] == 64 and restart["machines"]
        assert all(p["load1"] >= 0 for c in record["curves"] for p in c)
        assert record["config"]["train"]["recipe"] == "parallel"
    assert md.count("restarted after 64 env steps on") == 2


def test_the_smoke_run_of_the_spec_reports_the_verdict_first_with_its_diagnostics_costs_and_curves(smoke):
    out, _, rows = smoke
    md = (out / "report.md").read_text()
    data = json.loads((out / "report.json").read_text())["analysis"]
    assert data["verdict"] in ("SMFP ahead", "SAC ahead", "not resolved") and data["complete"]
    assert md.startswith(f"**Verdict: {data['verdict']}**") and data["tasks"] == ["multimodal"]
    assert math.isfinite(data["p"]) and 0 <= data["iqm"]["poi"]["value"] <= 1
    smfp = json.loads((out / "records" / "multimodal_smfp.json").read_text())
    assert {"knn_entropy", "flow_spread", "forward_velocity"} <= set(smfp["curves"][0][-1])
    assert "| multimodal | SMFP |" in md.split("Cost in the loop")[0]  # the diagnostics row
    cost = next(line for line in md.split("Cost in the loop")[1].splitlines() if line.startswith("| multimodal | SMFP |"))
    assert float(cost.split("|")[3].replace(",", "")) > 0  # env-steps/s measured in the run
    for name in ("head_to_head_steps.png", "head_to_head_clock.png", "head_to_head_diagnostics.png"):
        assert (out / name).stat().st_size > 10_000
    assert {r["agent"] for r in rows} == {"sac", "smfp"}
    manifest = json.loads((out / outputs.MANIFEST).read_text())["report"]
    assert manifest["command"] == f"python -m benchmarks.harness report head_to_head --out={out}"
