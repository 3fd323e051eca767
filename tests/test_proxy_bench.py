"""bench/proxy.py: children trained for real on a tiny run, their qualities kept as each
finishes, so a rerun (after a stop) trains only what is missing."""

from __future__ import annotations

import json

import numpy as np
import pytest

import bench.proxy as proxy
from search_spaces.space import SearchSpace


def test_a_rerun_reads_back_finished_children_and_trains_only_the_rest(
    prepared_run, tmp_path, monkeypatch, capsys
):
    done = tmp_path / "proxy.jsonl"
    argv = ["--run", str(prepared_run), "--genotypes", "3", "--steps", "2", "--factor", "2"]
    argv += ["--workers", "1", "--done", str(done), "--json", str(tmp_path / "first.json")]
    assert proxy.main(argv) == 0
    first = json.loads((tmp_path / "first.json").read_text())
    assert len(done.read_text().splitlines()) == 6  # 3 genotypes x (2 and 4 steps)
    assert all(0.0 <= q <= 1.0 for q in first["short"] + first["long"])

    # a stop mid-write: the torn last line and one lost child are recomputed, nothing else
    lines = done.read_text().splitlines()
    done.write_text("\n".join(lines[:4]) + "\n" + lines[4][: len(lines[4]) // 2])
    trained = []

    def stand_in(job):
        trained.append(job)
        return 0.5

    monkeypatch.setattr(proxy, "child_quality", stand_in)
    argv[-1] = str(tmp_path / "second.json")
    assert proxy.main(argv) == 0
    second = json.loads((tmp_path / "second.json").read_text())
    assert len(trained) == 2 and "4 of 6 children read" in capsys.readouterr().out
    kept = first["short"] + first["long"]
    assert second["short"] + second["long"] == kept[:4] + [0.5, 0.5]


def test_a_run_without_a_cache_is_refused_before_any_training(tmp_path, capsys):
    assert proxy.main(["--run", str(tmp_path)]) == 1
    assert "holds no teacher cache" in capsys.readouterr().out


@pytest.mark.parametrize("line", ["", "{", '{"key": "k"}', '{"key": "k", "quality": "x"}'])
def test_unreadable_lines_are_skipped(tmp_path, line):
    path = tmp_path / "done.jsonl"
    path.write_text(line + "\n" + json.dumps({"key": "ok", "quality": 0.25}) + "\n")
    assert proxy.read_done(path) == {"ok": 0.25}


def test_children_in_spawned_processes_train_and_are_kept(prepared_run, tmp_path, monkeypatch):
    # bench.payoff calls this after Ray and torch's threads ran in its process: spawned
    # workers, not forked ones
    import multiprocessing

    asked = []
    real_context = multiprocessing.get_context

    def recording(method=None):
        asked.append(method)
        return real_context(method)

    monkeypatch.setattr(multiprocessing, "get_context", recording)
    space = SearchSpace()
    rng = np.random.default_rng(0)
    genotypes = [space.decode(space.sample_tokens(rng)).to_dict() for _ in range(2)]
    jobs = [(str(prepared_run), g, 2, 0) for g in genotypes]
    done = tmp_path / "done.jsonl"
    qualities = proxy.run_jobs(jobs, 2, done)
    assert len(qualities) == 2 and all(0.0 <= q <= 1.0 for q in qualities)
    assert len(done.read_text().splitlines()) == 2
    assert asked == ["spawn"]
