"""bench/front.py: the front of a run folder printed and checked against issue 13's target
(enough cells, more than one alpha, each above copy at its alpha)."""

from __future__ import annotations

import json

from bench.front import main
from tests.test_pareto import record


def write_run(path, records) -> None:
    (path / "search.json").write_text(json.dumps({"cost": "gflops"}))
    (path / "trials.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_a_front_above_copy_at_two_alphas_meets_the_target(tmp_path, capsys):
    write_run(
        tmp_path,
        [
            record("a1", 0.50, 0.1, alpha=8, copy_quality=0.45),
            record("b", 0.60, 0.2, alpha=4, copy_quality=0.55),
            record("c", 0.55, 0.3, alpha=4, copy_quality=0.55),  # dominated by b
        ],
    )
    out = tmp_path / "front.json"
    assert main([str(tmp_path), "--min-cells", "2", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [r["proposal_id"] for r in result["rows"]] == ["a1", "b"]
    assert result["check"]["met"] and result["check"]["alphas"] == [4, 8]
    assert "every cell above copy at its alpha: True" in capsys.readouterr().out


def test_a_front_cell_at_or_below_copy_fails_the_target_and_is_named(tmp_path, capsys):
    write_run(
        tmp_path,
        [
            record("a1", 0.45, 0.1, alpha=8, copy_quality=0.45),  # ties copy: not above it
            record("b", 0.60, 0.2, alpha=4, copy_quality=0.55),
        ],
    )
    out = tmp_path / "front.json"
    assert main([str(tmp_path), "--min-cells", "5", "--json", str(out)]) == 0
    check = json.loads(out.read_text())["check"]
    assert not check["met"] and not check["enough_cells"]
    assert check["not_above_copy"] == ["a1"]
    assert "(not: a1)" in capsys.readouterr().out


def test_a_folder_without_children_is_one_clear_error(tmp_path, capsys):
    write_run(tmp_path, [])
    assert main([str(tmp_path)]) == 2
    assert "no finished child" in capsys.readouterr().err


def test_trained_copy_trains_the_copy_cell_per_alpha_and_checks_each_cell_against_it(
    fresh_run, tmp_path, capsys
):
    import bench.front

    write_run(
        fresh_run,
        [
            record("a1", 0.99, 0.1, alpha=4, copy_quality=0.50),  # above any trained copy
            record("b", 0.995, 0.2, alpha=2, copy_quality=0.60),
        ],
    )
    config = json.loads((fresh_run / "search.json").read_text())
    (fresh_run / "search.json").write_text(json.dumps({**config, "child_steps": 3}))
    out = tmp_path / "front.json"
    argv = [str(fresh_run), "--min-cells", "2", "--json", str(out)]
    assert bench.front.main([*argv, "--trained-copy", "2", "--workers", "1"]) == 0
    rows = {r["proposal_id"]: r for r in json.loads(out.read_text())["rows"]}
    for r in rows.values():
        assert 0.0 <= r["trained_copy"] <= 1.0 and r["trained_copy_std"] is not None
        assert r["margin_trained"] == r["quality"] - r["trained_copy"]
    assert rows["a1"]["trained_copy"] != rows["b"]["trained_copy"]  # one per alpha
    assert len((fresh_run / "trained_copy.jsonl").read_text().splitlines()) == 4  # 2 x 2
    printed = capsys.readouterr().out
    assert "trained copy" in printed and "every cell above the trained copy (2 seeds)" in printed


def test_trained_copy_needs_the_runs_cache(tmp_path, capsys):
    write_run(tmp_path, [record("a1", 0.5, 0.1, alpha=8, copy_quality=0.45)])
    assert main([str(tmp_path), "--trained-copy", "1"]) == 2
    assert "holds no feature cache" in capsys.readouterr().err
