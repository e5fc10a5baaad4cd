"""benchmarks/studies: every committed record still resolves to its study's configuration, every
committed report regenerates from the records to the same text and RESULTS.md's generated blocks
are those reports; the parallel regime's recipes are the reference's parts; an agent added in two
library files runs through a study without a benchmark file changing."""
import dataclasses
import json
import os
import shutil

import pytest

from benchmarks import studies
from benchmarks.harness import cli, outputs
from benchmarks.harness import spec as spec_lib
from benchmarks.harness.store import Store
from benchmarks.studies import parallel_regime as regime
from mjx_smfp import config as config_lib
from mjx_smfp import rundir
from mjx_smfp.agents.sac import SAC

RECORDS = [(study, r) for study in studies.STUDIES.values() for r in Store(studies.default_out(study.name)).records()]


def test_every_committed_record_still_resolves_to_its_configuration():
    """Each record's config is what its study, run key and seeds give today (fields added to the code
    since a run started do not count), so re-running a study's command continues or skips it."""
    assert {study.name for study, _ in RECORDS} >= {"paper_cpu", "paper_level", "paper_ab", "parallel_regime",
                                                    "wallclock_bandit", "wallclock_mujoco", "wallclock_agents"}
    for study, record in RECORDS:
        if record.get("lost"):  # per-seed finals only, from a table older than records
            continue
        seeds = record["config"]["train"].get("num_seeds", 1)  # runs older than it: one seed per process
        cfg, agent_cfg = spec_lib.config(study, record["task"], record["agent"], record["variant"], seeds,
                                         {"seed": record["config"]["train"]["seed"], **spec_lib.predating(record)},
                                         "/nonexistent")
        assert rundir.config_changes(record["config"], config_lib.to_dict(cfg, agent_cfg)) == [], record["task"]


def test_every_committed_report_regenerates_from_the_records_and_results_md_holds_them(tmp_path):
    """Each manifest names the command that remakes its tables from what is committed; run there on a
    copy of the folder, it writes the committed text, and RESULTS.md's generated blocks are those."""
    import glob
    import importlib

    made = 0
    manifests = sorted(glob.glob(os.path.join(outputs.RESULTS, "*", outputs.MANIFEST)))
    for path in manifests:  # every folder first: a study's report also reads its context study's records
        shutil.copytree(os.path.dirname(path), tmp_path / os.path.basename(os.path.dirname(path)),
                        ignore=shutil.ignore_patterns("*.png", "*.md", "runs"))
    for path in manifests:
        folder = os.path.dirname(path)
        out = tmp_path / os.path.basename(folder)
        for name, entry in rundir.read_json(path).items():
            module, *argv = entry.get("regenerate", entry["command"]).split()[2:]
            main = importlib.import_module("benchmarks.harness.cli" if module == "benchmarks.harness" else module).main
            main([*argv, f"--out={out}", *(["--no-plots"] if module == "benchmarks.harness" else [])])
            for md in (f for f in entry["files"] if f.endswith(".md")):
                assert (out / md).read_text() == open(os.path.join(folder, md)).read(), (path, md)
                made += 1
    assert made >= 20
    with open(outputs.RESULTS_MD) as f:
        assert outputs.assemble(f.read())[1] == []  # every generated block is its report


def test_the_regimes_ablations_are_the_reference_minus_or_today_plus_exactly_one_part():
    reference = regime.RECIPES["reference"]
    assert regime.RECIPES["today"] == {}
    for part, fields in regime.recipes.REFERENCE_PARTS.items():
        minus = regime.RECIPES[f"reference-minus-{part}"]
        assert set(reference) - set(minus) == set(fields) and all(minus[k] == reference[k] for k in minus)
        assert regime.RECIPES[f"today-plus-{part}"] == fields
    names = [k for fields in regime.recipes.REFERENCE_PARTS.values() for k in fields]
    assert len(names) == len(set(names))  # so "minus one part" leaves exactly that part at today's values


def test_the_cpu_scale_keeps_the_fast_presets_shape_and_the_reference_critic_support_follows_the_task():
    gpu, _ = spec_lib.config(studies.get("parallel_regime_gpu"), "halfcheetah", "sac", "today", 1, {}, "/x")
    cpu, agent_cfg = spec_lib.config(regime.CPU, "halfcheetah", "sac", "reference", 1, {}, "/x")
    samples = lambda c: c.updates_per_step * c.batch_size / c.num_envs  # noqa: E731 - gradient samples per transition
    assert (gpu.num_envs, gpu.batch_size, gpu.updates_per_step) == (4096, 8192, 8)
    assert samples(cpu) == samples(gpu) == 16 and cpu.batch_size >= 2 * cpu.num_envs and cpu.physics == "gpu"
    assert cpu.replay_capacity // cpu.num_envs == gpu.replay_capacity // gpu.num_envs == 1024
    assert agent_cfg.critic_type == "c51" and (agent_cfg.value_min, agent_cfg.value_max) == pytest.approx((-1500, 1500))
    _, explicit = spec_lib.config(regime.CPU, "halfcheetah", "sac", "reference", 1, {"value_max": 50.0}, "/x")
    assert explicit.value_max == 50.0  # an explicit bound wins


def test_a_variant_needing_fields_no_agent_has_is_refused_naming_them():
    future = dataclasses.replace(regime.CPU, variants={"future": {"tau": 0.1, "no_such_field": 1, "nor_this": "x"}})
    with pytest.raises(ValueError, match=r"variant 'future': no_such_field, nor_this are fields of neither"):
        spec_lib.config(future, "multimodal", "sac", "future", 2, {}, "/x")
    # A field only some agents have goes to those alone (SMFP's md_coef is not SAC's).
    cfg, sac = spec_lib.config(studies.get("wallclock_agents"), "multimodal", "sac", "", 1, {"md_coef": 0.02}, "/x")
    assert not hasattr(sac, "md_coef") and cfg.agent == "sac"


def test_the_regime_groups_cut_ablations_and_extra_agents_apart_from_the_main_comparison():
    def rec(agent, variant, steps):
        return {"study": "parallel_regime", "task": "hopper", "agent": agent, "variant": variant, "status": "done",
                "curves": [[{"wall_s": 5.0, "env_steps": 100, "return": float(k)},
                            {"wall_s": 50.0, "env_steps": steps, "return": float(k)}] for k in range(3)]}
    from benchmarks.harness import report

    runs = [rec("sac", "today", 1000), rec("sac", "reference", 1000), rec("smfp", "reference", 1000),
            rec("smfp", "today", 1000), rec("dime", "today", 100), rec("sac", "reference-minus-clip", 200)]
    rows = report.rows(regime.CPU, runs)
    groups = {g: {r["run"] for r in rows if r["group"] == g} for g in dict.fromkeys(r["group"] for r in rows)}
    main, ablations, agents = list(groups.values())
    assert main == {"sac/today", "sac/reference", "smfp/reference", "smfp/today"}
    assert ablations == {"sac/today", "sac/reference", "sac/reference-minus-clip"}  # SMFP was not ablated
    assert agents == {"sac/today", "smfp/reference", "dime/today"}  # each agent at its `fast` recipe
    assert {r["at"] for r in rows if r["group"] == "" and r["cut"] == "env_steps"} == {1000}  # cut short by no one
    dime = next(r for r in rows if r["run"] == "dime/today" and r["cut"] == "env_steps")
    assert [v["against"] for v in dime["versus"]] == ["smfp/reference"]


class Throwaway(SAC):
    """A new agent as its own module would hold it: a class with its own Config (here SAC's update)."""

    @dataclasses.dataclass(frozen=True)
    class Config(SAC.Config):
        throwaway_option: float = 1.0  # a field only this agent has


def test_an_agent_added_in_two_library_files_runs_through_a_study_with_no_benchmark_file_changed(tmp_path,
                                                                                               monkeypatch):
    """The agent's module (here this test) and its registry line are all it takes; listing it in a
    study's spec would be the third file. The harness, store, report and plots know no agent names."""
    from mjx_smfp import agents

    monkeypatch.setitem(agents._REGISTRY, "throwaway", f"{__name__}:Throwaway")
    rows = cli.main(["run", "wallclock_agents", "--smoke", "--agents", "throwaway", "--out", str(tmp_path),
                     "--throwaway_option", "2.0"])
    record = json.loads((tmp_path / "records" / "multimodal_throwaway.json").read_text())
    assert record["status"] == "done" and record["config"]["agent"]["throwaway_option"] == 2.0
    assert [r["run"] for r in rows] == ["throwaway"] and rows[0]["final_n"] == 2
    assert "| throwaway | done | 2 |" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "multimodal.png").stat().st_size > 10_000
