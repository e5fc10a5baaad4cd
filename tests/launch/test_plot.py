"""launch.plot on synthetic run directories: aggregation math, grouping, fallbacks, errors."""
import json
import os

import numpy as np
import pytest

from launch import plot


def write_run(path, seed, returns, agent="sac", env="inverted_pendulum", actor_lr=3e-4, steps_per_point=1000,
              metric="eval/return_mean", wall_times=None):
    """A run dir as the loop writes it: config.json and one metrics.jsonl line per point."""
    path.mkdir(parents=True)
    config = {"train": {"env": env, "agent": agent, "seed": seed, "run_dir": str(path), "log_dir": "runs"},
              "agent": {"actor_lr": actor_lr}}
    (path / "config.json").write_text(json.dumps(config))
    wall_times = wall_times or [10.0 * (i + 1) for i in range(len(returns))]
    with open(path / "metrics.jsonl", "w") as f:
        for i, (value, wall) in enumerate(zip(returns, wall_times)):
            f.write(json.dumps({"step": (i + 1) * steps_per_point, "wall_time": wall, "train/loss": 1.0,
                                metric: value}) + "\n")
    return str(path)


def test_aggregate_interpolates_onto_the_shared_range_and_takes_mean_and_sd():
    a = (np.array([0.0, 10.0, 20.0]), np.array([0.0, 10.0, 20.0]))  # y = x
    b = (np.array([5.0, 15.0, 30.0]), np.array([0.0, 20.0, 50.0]))  # y = 2x - 10
    grid, mean, std = plot.aggregate([a, b])
    np.testing.assert_allclose(grid, [5.0, 10.0, 15.0, 20.0])  # the x values inside [5, 20]
    ya, yb = grid, np.interp(grid, *b)
    np.testing.assert_allclose(yb, [0.0, 10.0, 20.0, 30.0])
    np.testing.assert_allclose(mean, (ya + yb) / 2)
    np.testing.assert_allclose(std, np.abs(ya - yb) / np.sqrt(2))  # ddof 1, as every table's s.d.


def test_aggregate_of_one_curve_is_the_curve_and_disjoint_curves_are_an_error():
    xs, ys = np.array([1.0, 2.0, 4.0]), np.array([3.0, -1.0, 2.0])
    grid, mean, std = plot.aggregate([(xs, ys)])
    np.testing.assert_array_equal(grid, xs)
    np.testing.assert_array_equal(mean, ys)
    np.testing.assert_array_equal(std, 0.0)
    with pytest.raises(ValueError, match="share no x range"):
        plot.aggregate([(xs, ys), (xs + 10.0, ys)])


def test_runs_differing_only_in_seed_form_one_group_and_labels_name_what_differs(tmp_path):
    runs = [write_run(tmp_path / f"sac{s}", s, [1, 2, 3]) for s in range(3)]
    other = write_run(tmp_path / "sac_lr", 0, [1, 2, 3], actor_lr=1e-3)
    smfp = write_run(tmp_path / "smfp", 0, [1, 2, 3], agent="smfp")
    groups = plot.group_runs(runs + [other, smfp])
    assert sorted(len(g) for g in groups.values()) == [1, 1, 3]
    labels = sorted(plot.label_of(key, list(groups)) for key in groups)
    assert labels == ["sac actor_lr=0.0003", "sac actor_lr=0.001", "smfp actor_lr=0.0003"]


def test_each_seed_of_a_multi_seed_run_is_one_curve_grouped_with_single_runs_of_its_config(tmp_path):
    multi = tmp_path / "multi"
    write_run(multi, 0, [1.0, 2.0])
    config = json.loads((multi / "config.json").read_text())
    config["train"]["num_seeds"] = 3
    (multi / "config.json").write_text(json.dumps(config))
    with open(multi / "metrics.jsonl", "w") as f:  # as logger.seed_scalars logs 3 seeds
        for step in (1000, 2000):
            per_seed = {f"eval/return_mean/seed_{k}": step * (k + 1.0) for k in range(3)}
            f.write(json.dumps({"step": step, "wall_time": 1.0, "eval/return_mean": step * 2.0,
                                "eval/return_mean/seed_sd": 1.0, **per_seed}) + "\n")
    curves = plot.run_curves(plot.read_records(str(multi)), "eval/return_mean", "steps")
    assert [list(ys) for _, ys in curves] == [[1000.0, 2000.0], [2000.0, 4000.0], [3000.0, 6000.0]]
    single = write_run(tmp_path / "seed3", 3, [5.0, 6.0])
    assert list(plot.group_runs([str(multi), single]).values()) == [[str(multi), single]]
    assert [list(ys) for _, ys in plot.run_curves(plot.read_records(single), "eval/return_mean", "steps")] == [[5.0, 6.0]]
    out = tmp_path / "c.png"
    plot.main([str(multi), single, "--out", str(out)])
    assert out.stat().st_size > 10_000


def test_time_axis_continues_over_a_resume_and_skips_missing_values(tmp_path):
    run = write_run(tmp_path / "r", 0, [1.0, None, 3.0, 4.0], wall_times=[10.0, 20.0, 5.0, 15.0])
    xs, ys = plot.series(plot.read_records(run), "eval/return_mean", "time")
    np.testing.assert_allclose(xs, [10.0, 25.0, 35.0])  # the third line is 5 s into a resumed process
    np.testing.assert_allclose(ys, [1.0, 3.0, 4.0])


def test_main_writes_a_png_of_several_tasks_with_the_train_return_fallback(tmp_path, capsys):
    for s in range(2):
        write_run(tmp_path / "runs" / f"ip{s}", s, [10.0 + s, 20.0, 30.0])
    write_run(tmp_path / "runs" / "hop", 0, [5.0, 6.0], env="hopper", metric="train/episode_return")
    out = tmp_path / "curves.png"
    assert plot.main([str(tmp_path / "runs"), "--x", "time", "--out", str(out)]) == str(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "plotting train/episode_return" in printed and "(3 runs)" in printed


def test_a_directory_without_metrics_is_a_clean_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for path in (tmp_path / "empty", tmp_path / "missing"):
        with pytest.raises(SystemExit) as exit_info:
            plot.main([str(path)])
        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and str(path) in err and "Traceback" not in err


def test_a_resumed_runs_later_record_of_a_step_wins_and_the_run_clock_is_the_time_axis(tmp_path):
    """The first life logged steps 1000-3000 and was killed after its checkpoint at 1000; the resumed
    life logs 2000-3000 again with the run clock carried over: the later records win."""
    run = tmp_path / "r"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"train": {"env": "hopper", "agent": "sac"}, "agent": {}}))
    lines = [(1000, 1.0, 10.0), (2000, -50.0, 20.0), (3000, -60.0, 30.0), (2000, 2.0, 21.0), (3000, 3.0, 31.0)]
    (run / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "wall_time": 0.0, "perf/run_clock_s": t,
                                                           "eval/return_mean": v}) + "\n" for s, v, t in lines))
    for x, expected in (("steps", [1000.0, 2000.0, 3000.0]), ("time", [10.0, 21.0, 31.0])):
        xs, ys = plot.series(plot.read_records(str(run)), "eval/return_mean", x)
        np.testing.assert_allclose(xs, expected)
        np.testing.assert_allclose(ys, [1.0, 2.0, 3.0])


def test_benchmark_records_are_runs_labelled_by_agent_and_variant_with_one_curve_per_seed(tmp_path):
    records = tmp_path / "study" / "records"
    records.mkdir(parents=True)
    for variant, offset in (("today", 0.0), ("reference", 5.0)):
        curves = [[{"wall_s": 10.0 * i, "env_steps": 100 * i, "return": offset + k + i} for i in range(1, 4)]
                  for k in range(2)]
        (records / f"hopper_sac_{variant}.json").write_text(json.dumps(
            {"task": "hopper", "agent": "sac", "variant": variant, "curves": curves,
             "config": {"train": {"env": "hopper", "agent": "sac"}, "agent": {"tau": offset}}}))
    runs = plot.find_runs(str(tmp_path / "study"))
    assert [os.path.basename(r) for r in runs] == ["hopper_sac_reference.json", "hopper_sac_today.json"]
    xs, ys = plot.curves_of(runs[1], "eval/return_mean", "time")[1]
    np.testing.assert_allclose(xs, [10.0, 20.0, 30.0])
    np.testing.assert_allclose(ys, [2.0, 3.0, 4.0])
    groups = plot.group_runs(runs)
    assert sorted(plot.label_of(k, list(groups)) for k in groups) == ["sac/reference", "sac/today"]
    out = tmp_path / "c.png"
    plot.main([str(tmp_path / "study"), "--x", "time", "--out", str(out)])
    assert out.stat().st_size > 10_000
