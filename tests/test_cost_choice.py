"""--cost gflops|latency and --deploy-resolution: checked before any work, kept in search.json,
and a resume may not change them."""

from __future__ import annotations

import json

import pytest

import nas.run
from nas.config import SearchConfig
from nas.search import main
from tests.conftest import tiny_search_config


@pytest.fixture
def started(monkeypatch) -> dict:
    """run_search replaced: what it would have started with, if it was called."""
    seen: dict = {}

    def fake(config, out, budget, resume=False):
        seen.update(config=config, resume=resume)
        return {"children": 1, "best": {"reward": 0.5}}  # a search with a cell to export

    monkeypatch.setattr(nas.run, "run_search", fake)
    return seen


def saved_run(tmp_path, **changes) -> str:
    """A run folder whose search.json holds the tiny search (with ``changes``; a value of
    None drops the setting, as in a search.json from before it existed)."""
    data = {**tiny_search_config().explicit().to_dict(), **changes}
    out = tmp_path / "run"
    out.mkdir()
    (out / "search.json").write_text(json.dumps({k: v for k, v in data.items() if v is not None}))
    return str(out)


def test_an_unknown_cost_is_one_error_before_any_work(tmp_path, capsys, started):
    with pytest.raises(SystemExit):
        main(["--cost", "flops", "--out", str(tmp_path / "a")])
    assert "invalid choice: 'flops'" in capsys.readouterr().err
    (tmp_path / "cfg.yaml").write_text("cost: flops\n")
    assert main(["--config", str(tmp_path / "cfg.yaml"), "--out", str(tmp_path / "b")]) == 2
    assert "cost is 'flops': it must be gflops or latency" in capsys.readouterr().err
    assert not started and not (tmp_path / "b").exists()


def test_the_cost_and_deploy_resolution_are_kept_in_search_json(tmp_path, started):
    argv = ["--cost", "latency", "--deploy-resolution", "360x480", "--budget", "1cpu-minutes"]
    assert main([*argv, "--out", str(tmp_path / "run"), "--workers", "1"]) == 0
    config = started["config"]
    assert (config.cost, config.deploy_resolution) == ("latency", (360, 480))
    saved = json.loads(json.dumps(config.to_dict()))  # as search.json holds it
    assert saved["deploy_resolution"] == [360, 480]
    assert SearchConfig.from_saved(saved) == config
    assert config.resolved_deploy_resolution() == (360, 480)
    assert SearchConfig().resolved_deploy_resolution() == (96, 128)  # the cache's size


def test_a_resume_refuses_another_cost(tmp_path, capsys, started):
    out = saved_run(tmp_path)
    assert main(["--resume", "--out", out, "--cost", "latency"]) == 2
    err = capsys.readouterr().err
    assert "--cost (run: 'gflops', given: 'latency')" in err and not started
    assert main(["--resume", "--out", out, "--deploy-resolution", "64x64"]) == 2
    assert "--deploy-resolution (run: None, given: (64, 64))" in capsys.readouterr().err


def test_a_run_from_before_the_cost_choice_resumes_with_gflops(tmp_path, started):
    out = saved_run(tmp_path, cost=None, deploy_resolution=None)
    assert main(["--resume", "--out", out, "--cost", "gflops"]) == 0
    assert started["resume"] and started["config"].cost == "gflops"
