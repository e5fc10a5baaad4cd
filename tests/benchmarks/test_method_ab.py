"""benchmarks/method_ab.py on synthetic paper-table records: equal-step comparison of unfinished
runs, paired per-seed differences, the changed config field named, verdicts in plain words."""
import json

import numpy as np
import pytest

from benchmarks import method_ab
from benchmarks import paper_table as pt


def _record(out, curves, power=1.0, machines=("cpu A",)):
    config = {"train": {"env": "hopper", "agent": "smfp", "run_dir": str(out)},
              "agent": {"meanflow_weight_power": power, "actor_lr": 3e-4}}
    pt.write_record(str(out), "hopper", "smfp", {"status": "in progress", "machines": list(machines)}, curves, config)
    return str(out)


def _curves(offsets, last_step):
    """Per seed, evaluations every 1K steps of value step/100 + offset."""
    return [[(s, s / 100 + off) for s in range(1000, last_step + 1, 1000)] for off in offsets]


def test_variant_is_compared_at_the_steps_both_reached_seed_for_seed(tmp_path):
    base = _curves([0.0, 10.0, 20.0], 30_000)
    variant = _curves([100.0, 90.0, 130.0], 20_000)  # unfinished: only to 20K
    c = method_ab.compare(base, variant)
    assert c["env_steps"] == 20_000 and c["paired_seeds"] == 3
    # Last 10 evals up to 20K are steps 11K..20K: mean step/100 = 155.
    assert c["base"]["final_per_seed"] == pytest.approx([155.0, 165.0, 175.0])
    assert c["diff_per_seed"] == pytest.approx([100.0, 80.0, 110.0]) and c["wins"] == 3
    t_half = 4.303 * np.std([100.0, 80.0, 110.0], ddof=1) / np.sqrt(3)  # Student-t, 2 dof
    assert (c["diff_ci_lo"], c["diff_ci_hi"]) == pytest.approx((96.67 - t_half, 96.67 + t_half), abs=0.05)
    # 3 of 3 seeds higher and an interval that excludes 0 are still not resolved: p = 2/8 at best.
    v = method_ab.verdict(c)
    assert v.startswith("not resolved at 5 % (Wilcoxon signed-rank, exact, two-sided p = 0.250, n = 3 pairs")
    assert "interval excludes 0" in v and "won 3/3" in v and "at 20K steps" in v
    noisy = method_ab.compare(base, _curves([30.0, -25.0, 5.0], 30_000))
    assert "holds 0" in method_ab.verdict(noisy) and method_ab.verdict(noisy).startswith("not resolved")


def test_six_paired_seeds_one_way_are_resolved_by_the_signed_rank_test():
    base = _curves([0.0, 10.0, 20.0, 5.0, 15.0, 25.0], 20_000)
    variant = _curves([100.0, 90.0, 130.0, 40.0, 60.0, 45.0], 20_000)
    c = method_ab.compare(base, variant)
    assert c["resolved"] and c["p"] == pytest.approx(2 / 64)
    assert method_ab.verdict(c).startswith("resolved at 5 %: variant > default (Wilcoxon signed-rank, exact")


def test_main_names_the_changed_field_and_other_machines_and_writes_table_json_and_png(tmp_path, capsys):
    base = _record(tmp_path / "default", _curves([0.0, 10.0, 20.0], 20_000))
    variant = _record(tmp_path / "power_0.2", _curves([50.0, 60.0, 40.0], 20_000), power=0.2,
                      machines=["cpu A", "cpu B"])
    empty = tmp_path / "one_step"
    empty.mkdir()
    results = method_ab.main(["--base", base, "--variants", f"{variant},{empty}", "--tasks", "hopper"])
    assert [r["changed"] for r in results] == [["agent.meanflow_weight_power: 1.0 -> 0.2"],
                                                ["(configuration not saved)"]]
    assert results[0]["comparison"]["diff_mean"] == pytest.approx(40.0)
    assert results[1]["comparison"]["paired_seeds"] == 0
    table = (tmp_path / "method_ab.md").read_text()
    assert "| hopper | power_0.2 | agent.meanflow_weight_power: 1.0 -> 0.2 | 20K | 3 |" in table
    assert "over 11K-20K" in table and "Student-t 95 %" in table and "Wilcoxon signed-rank" in table
    assert "one_step: not compared yet" in table
    assert "trained on different machines (default: cpu A; variant: cpu A; then cpu B)" in table
    assert json.loads((tmp_path / "method_ab.json").read_text())["results"][0]["comparison"]["wins"] == 3
    assert (tmp_path / "hopper_ab.png").read_bytes()[:4] == b"\x89PNG"
    assert np.isfinite(results[0]["comparison"]["diff_ci_lo"])
    with pytest.raises(SystemExit, match="no such paper_table --out folder"):
        method_ab.main(["--base", base, "--variants", str(tmp_path / "missing")])


def test_seeds_pair_by_index_when_one_side_lacks_a_seed():
    base = _curves([0.0, 10.0, 20.0], 20_000)
    variant = _curves([5.0, 0.0, 27.0], 20_000)
    variant[1] = []  # seed 1 of the variant never evaluated: seeds 0 and 2 pair with seeds 0 and 2
    c = method_ab.compare(base, variant)
    assert c["paired_seeds"] == 2 and c["diff_per_seed"] == pytest.approx([5.0, 7.0])
