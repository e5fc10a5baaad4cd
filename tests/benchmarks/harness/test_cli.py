"""The harness end to end on the bandit (`--smoke` sizes, 2 seeds in one program): a run cut short
after 2 train calls is continued by the same command with its run clock carried over, then skipped
once done (from its record alone, as in a fresh clone without run dirs), a command with another
configuration is refused naming the field, and the report and RESULTS.md blocks come from the records."""
import json
import shutil
import time

import numpy as np
import pytest

from benchmarks.harness import cli, outputs

SMOKE = ["paper_cpu", "--smoke", "--agents", "sac"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    argv = ["run", *SMOKE, "--out", str(out)]
    cli.main(argv, max_calls=2)  # interrupted after 2 train calls, as by a signal
    first = json.loads((out / "records" / "multimodal_sac.json").read_text())
    t = time.perf_counter()
    rows = cli.main(argv)  # the same command continues it
    return out, argv, first, rows, time.perf_counter() - t


def test_a_stopped_run_continues_from_its_checkpoint_with_the_run_clock_carried_over(smoke):
    out, _, first, _, elapsed = smoke
    assert first["status"] == "stopped" and first["env_steps"] == 64 + 2 * 80 and len(first["curves"]) == 2
    assert [p["env_steps"] for p in first["curves"][0]] == [64, 224]  # after warm-up, then on crossing 160
    rec = json.loads((out / "records" / "multimodal_sac.json").read_text())
    assert rec["status"] == "done" and rec["reason"] == "env_steps" and rec["env_steps"] == 624
    (resume,) = rec["resumes"]
    assert resume["at_env_steps"] == 224 and resume["at_wall_s"] >= first["curves"][0][-1]["wall_s"]
    for before, after in zip(first["curves"], rec["curves"]):
        assert after[:len(before)] == before  # the evaluations up to the checkpoint are kept
        assert [p["env_steps"] for p in after] == [64, 224, 384, 544, 624]  # on crossing 320, 480; at the end
        walls = [p["wall_s"] for p in after]
        assert walls == sorted(walls) and walls[len(before)] >= resume["at_wall_s"]  # carried over, not restarted
        assert {"wall_s", "env_steps", "updates", "return", "return_std", "length"} <= set(after[-1])
    # The restart's restore and recompile are not on the clock: it grew by less than this call took.
    assert 0 < rec["wall_s"] - resume["at_wall_s"] < elapsed - resume["overhead_s"] + 0.5
    assert rec["config"]["train"]["num_seeds"] == 2 and rec["machines"] and rec["command"].startswith("python -m")


def test_a_finished_run_is_skipped_from_its_record_alone_and_another_configuration_is_refused(smoke, capsys):
    out, argv, _, rows, _ = smoke
    shutil.rmtree(out / "runs")  # a fresh clone: the records, no run dirs
    again = cli.main(argv)
    assert "done already (env_steps); skipped" in capsys.readouterr().out
    assert [r["final_mean"] for r in again] == [r["final_mean"] for r in rows]
    with pytest.raises(ValueError, match=r"multimodal_sac run of another configuration .*eval_episodes: 4 -> 3"):
        cli.main(argv + ["--eval_episodes", "3"])


def test_the_report_comes_from_the_records_and_names_how_it_was_made(smoke):
    out, _, _, rows, _ = smoke
    steps = next(r for r in rows if r["cut"] == "env_steps")
    rec = json.loads((out / "records" / "multimodal_sac.json").read_text())
    assert steps["at"] == 624 and steps["final_n"] == 2
    assert steps["final_per_seed"] == [pytest.approx(np.mean([p["return"] for p in c[-10:]])) for c in rec["curves"]]
    manifest = json.loads((out / outputs.MANIFEST).read_text())["report"]
    assert manifest["command"] == f"python -m benchmarks.harness report paper_cpu --out={out}" and manifest["machine"]
    assert (out / "multimodal.png").stat().st_size > 10_000 and "| sac | done | 2 |" in (out / "report.md").read_text()
    assert json.loads((out / "report.json").read_text())["rows"][0]["run"] == "sac"


def test_results_md_blocks_are_filled_from_the_reports_they_name(tmp_path):
    (tmp_path / "r.md").write_text("| a | 1 |\n")
    text = ("# R\n\nprose\n<!-- generated from r.md by hand -->\nstale\n<!-- end generated -->\nmore prose\n")
    filled, changed = outputs.assemble(text, str(tmp_path))
    assert changed == ["r.md"] and "| a | 1 |\n<!-- end generated -->\nmore prose" in filled and "stale" not in filled
    assert outputs.assemble(filled, str(tmp_path)) == (filled, [])
