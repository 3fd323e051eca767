"""trials.jsonl when a crash tore a line: the fragment is moved aside with a warning naming
the line, the next record lands on a line of its own, the torn record's child runs again
(its controller is not told twice), and nas.export says what it could not read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ray.tune.search import Searcher

from controllers import MemoizedController, make_controller
from nas.records import TORN_NAME, RunLog, read_records
from nas.searcher import BudgetSearcher
from search_spaces.genotype import Genotype
from search_spaces.space import SearchSpace

ROOT = Path(__file__).resolve().parents[1]


def record(i: int) -> dict:
    return {"proposal_id": f"p-{i}", "reward": 0.1 * i, "status": "ok", "device_seconds": 1.0}


def write_lines(path: Path, records: list[dict], tail: str = "") -> None:
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records) + tail)


def tear_last_line(path: Path) -> str:
    """Cut the last line in half (no newline after it), as a crash mid-write leaves it."""
    lines = path.read_text().splitlines(keepends=True)
    torn = lines[-1][: len(lines[-1]) // 2]
    path.write_text("".join(lines[:-1]) + torn)
    return torn


def test_a_torn_last_line_is_moved_aside_and_the_next_record_starts_a_line(tmp_path):
    path = tmp_path / "trials.jsonl"
    write_lines(path, [record(1), record(2), record(3)])
    torn = tear_last_line(path)
    warnings: list[str] = []
    log = RunLog(tmp_path, warn=warnings.append)
    assert [r["proposal_id"] for r in log.records] == ["p-1", "p-2"]
    assert len(warnings) == 1 and "line 3" in warnings[0] and TORN_NAME in warnings[0]
    aside = [json.loads(line) for line in (tmp_path / TORN_NAME).read_text().splitlines()]
    assert [(a["line"], a["text"]) for a in aside] == [(3, torn)]
    assert log.append(record(4))
    assert [r["proposal_id"] for r in read_records(path)] == ["p-1", "p-2", "p-4"]
    assert path.read_text().endswith("\n") and len(path.read_text().splitlines()) == 3
    assert RunLog(tmp_path, warn=warnings.append).records == log.records  # repaired for good
    assert len(warnings) == 1


def test_a_record_appended_onto_a_fragment_is_recovered(tmp_path):
    """What versions before the repair wrote: the next record on the torn line."""
    path = tmp_path / "trials.jsonl"
    full = json.dumps(record(2), sort_keys=True)
    path.write_text(json.dumps(record(1)) + "\n" + full[:20] + full + "\n")
    warnings: list[str] = []
    log = RunLog(tmp_path, warn=warnings.append)
    assert [r["proposal_id"] for r in log.records] == ["p-1", "p-2"]
    assert "line 2" in warnings[0]
    assert [r["proposal_id"] for r in read_records(path)] == ["p-1", "p-2"]


def test_a_last_line_without_its_newline_gets_one(tmp_path):
    path = tmp_path / "trials.jsonl"
    path.write_text(json.dumps(record(1)))
    log = RunLog(tmp_path, warn=pytest.fail)  # nothing lost: no warning
    log.append(record(2))
    assert [r["proposal_id"] for r in read_records(path)] == ["p-1", "p-2"]


def test_reading_warns_about_a_torn_line(tmp_path):
    path = tmp_path / "trials.jsonl"
    write_lines(path, [record(1)], tail='{"proposal_id": "p-2", "rew')
    warnings: list[str] = []
    assert [r["proposal_id"] for r in read_records(path, warn=warnings.append)] == ["p-1"]
    assert len(warnings) == 1 and "line 2" in warnings[0]


def make_searcher(out: Path) -> BudgetSearcher:
    controller = MemoizedController(make_controller("random", SearchSpace(4), seed=0))
    return BudgetSearcher(
        controller,
        RunLog(out, warn=lambda text: None),
        1000.0,
        out / "searcher.json",
        "random",
        seed=0,
        max_children=3,
        max_iterations=2,
    )


def result(reward: float) -> dict:
    return {"reward": reward, "device_seconds": 2.0, "training_iteration": 2}


def test_the_child_of_a_torn_record_runs_again_once(tmp_path):
    s = make_searcher(tmp_path)
    configs = [s.suggest(t) for t in "abc"]
    for t, reward in zip("abc", (0.3, 0.5, 0.4), strict=True):
        s.on_trial_complete(t, result(reward))
    assert s.suggest("d") == Searcher.FINISHED  # max_children: the search is finished
    told = s.controller.n_told
    tear_last_line(tmp_path / "trials.jsonl")  # child c's record, torn

    again = make_searcher(tmp_path)
    assert [r["proposal_id"] for r in again.log.records] == [c["proposal_id"] for c in configs[:2]]
    assert again.resume() == 1
    rerun = again.suggest("e")
    assert rerun == configs[2]  # the same proposal, the same seed
    assert again.suggest("f") == Searcher.FINISHED  # and nothing more than max_children
    again.on_trial_complete("e", result(0.4))
    assert again.controller.n_told == told  # the controller heard of c once
    ids = [r["proposal_id"] for r in read_records(tmp_path / "trials.jsonl")]
    assert ids == [c["proposal_id"] for c in configs]

    third = make_searcher(tmp_path)  # resumed again: nothing left to rerun
    assert third.resume() == 0


def test_export_warns_about_a_torn_record(tmp_path, capsys):
    from nas.export import top_records

    genotype = Genotype.load(ROOT / "docs" / "cell.json").to_dict()
    path = tmp_path / "trials.jsonl"
    write_lines(path, [{**record(1), "genotype": genotype}], tail='{"proposal_id": "p-9", "rew')
    assert [r["proposal_id"] for r in top_records(tmp_path, 3)] == ["p-1"]
    err = capsys.readouterr().err
    assert "warning:" in err and "line 2" in err and "--resume" in err


def test_a_write_that_fails_midway_is_undone(tmp_path, monkeypatch):
    """A full disk: half the line written, then ENOSPC. The record is not half there."""
    import errno

    import nas.records

    log = RunLog(tmp_path, warn=pytest.fail)
    log.append(record(1))
    before = (tmp_path / "trials.jsonl").read_bytes()
    real_write = os.write

    def half_then_full(fd, data):
        real_write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(nas.records.os, "write", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        log.append(record(2))
    assert (tmp_path / "trials.jsonl").read_bytes() == before
    monkeypatch.setattr(nas.records.os, "write", real_write)
    assert [r["proposal_id"] for r in RunLog(tmp_path, warn=pytest.fail).records] == ["p-1"]
