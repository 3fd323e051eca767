"""The search as users run it: CLI errors, a search on Ray, export, kill -9 and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nas.budget import parse_budget
from nas.cellfile import build_from_cell
from nas.records import read_records
from nas.run import run_search
from nas.search import main
from tests.conftest import tiny_search_config
from tests.processes import ray_tmp_dir, start_resumed_search, wait_for_a_child_in_flight

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--budget", "2 days"], "cannot read budget"),
        (["--budget", "5tpu-hours"], "cannot read budget"),
        (["--dataset", "camvid"], "needs --data-root"),
        (["--dataset", "davis", "--data-root", "/nonexistent/davis"], "does not exist"),
        (["--teacher", "/nonexistent/t.safetensors"], "does not exist"),
        (["--resume", "--out", "/nonexistent/run"], "search.json"),
        (["--outputs", "residul"], "choose among sum,concat,residual"),
        (["--outputs", ","], "unknown empty"),
    ],
)
def test_bad_input_fails_before_anything_starts(argv, message, capsys, tmp_path):
    assert main([*argv, "--out", str(tmp_path / "x")] if "--out" not in argv else argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("error:") == 1
    assert not (tmp_path / "x").exists()


def test_unknown_dataset_is_refused_by_the_cli(capsys):
    with pytest.raises(SystemExit):
        main(["--dataset", "kitti"])
    assert "synthetic" in capsys.readouterr().err


@pytest.mark.parametrize(
    "summary, said, rc",
    [
        ({"children": 1, "best": {"reward": 0.25}}, "done: 1 child, best reward 0.2500; export", 0),
        ({"children": 2, "best": None}, "done: 2 children, none finished: nothing to export", 1),
        ({"children": 0, "best": None}, "done: no child ran within the budget", 1),
    ],
    ids=["one child", "all failed", "none ran"],
)
def test_the_last_line_says_what_there_is_to_export(
    summary, said, rc, monkeypatch, tmp_path, capsys
):
    monkeypatch.setattr("nas.run.run_search", lambda *args, **kwargs: summary)
    assert main(["--budget", "1cpu-minutes", "--out", str(tmp_path / "run")]) == rc
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(said) and "nan" not in last


def test_search_records_every_child_and_exports_a_cell(ray_session, fresh_run):
    config = tiny_search_config(max_children=5, controller="ppo", ppo={"batch_size": 2})
    summary = run_search(config, fresh_run, parse_budget(config.budget))
    records = read_records(fresh_run / "trials.jsonl")
    assert summary["children"] == len(records) == 5
    for key in (
        "trial_id",
        "controller",
        "genotype",
        "tokens",
        "log_probs",
        "status",
        "reward",
        "quality",
        "gflops",
        "steps",
        "device_seconds",
        "node_id",
        "seed",
        "space_version",
    ):
        assert all(key in r for r in records), key
    assert len({r["proposal_id"] for r in records}) == 5
    assert all(r["status"] in ("ok", "stopped-early", "failed") for r in records)
    ok = [r for r in records if r["status"] == "ok"]
    assert ok and all(0 <= r["quality"] <= 1 and r["gflops"] > 0 for r in ok)
    assert (fresh_run / "progress.png").stat().st_size > 1000
    assert any((fresh_run / "tb").iterdir())
    # the latency table (the prepared run's, reused as a resume would) and the front they make
    table = json.loads((fresh_run / "latency.json").read_text())
    assert table["device"] and table["setting"]["resolution"] == [32, 48]
    assert all(r["latency_ms"] > 0 and 0 < r["copy_gflops"] < r["static_gflops"] for r in ok)
    assert all(r["static_latency_ms"] == table["entries"]["static"] for r in ok)
    pareto = json.loads((fresh_run / "pareto.json").read_text())
    # a tiny search's children may all be beaten by copy: then its front is rightly empty
    assert pareto["children"] == 5 and set(pareto["fronts"]) == {"gflops", "latency"}
    assert (fresh_run / "front.png").stat().st_size > 1000
    saved = json.loads((fresh_run / "searcher.json").read_text())
    assert saved["controller"]["inner"]["n_told"] >= 5 or saved["n_suggested"] >= 5
    assert saved["controller"]["inner"]["config"]["batch_size"] == 2  # the ppo: section

    from nas.export import main as export_main

    assert export_main([str(fresh_run), "--top", "2"]) == 0
    folders = sorted((fresh_run / "export").iterdir())
    assert len(folders) == 2
    for name in ("cell.json", "weights.safetensors", "key_step.pt", "step.pt"):
        assert (folders[0] / name).is_file()
    net, data = build_from_cell(folders[0] / "cell.json")
    assert data["metrics"]["reward"] == max(r["reward"] for r in ok)
    # nas.segment's default resolution: top level, as nas.retrain writes it
    assert data["resolution"] == data["provenance"]["resolution"] == [32, 48]
    scripted = torch.jit.load(str(folders[0] / "key_step.pt"))
    frame = torch.rand(1, 3, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(scripted(frame)[0], net.key_step(frame)[0])


def test_a_diverging_child_is_recorded_as_failed_and_the_search_goes_on(ray_session, fresh_run):
    # rewarded by latency: the children get the run's table (else they fail another way)
    # and proposed from a space narrowed to residual cells (--outputs residual)
    config = tiny_search_config(
        max_children=3, child_lr=1e30, controller="random", cost="latency", outputs="residual"
    )
    summary = run_search(config, fresh_run, parse_budget(config.budget))
    records = read_records(fresh_run / "trials.jsonl")
    assert summary["children"] == 3
    assert all(r["genotype"]["output"] == "residual" for r in records)
    assert all(r["status"] == "failed" and r["reward"] is None for r in records)
    assert all("diverged" in (r["error"] or "") or "loss" in (r["error"] or "") for r in records)
    assert summary["front"] == {"gflops": 0, "latency": 0}  # failed children are on no front


def test_kill_9_then_resume_keeps_finished_children_and_reruns_in_flight(
    ray_session, fresh_run, tmp_path
):
    # max_children, not the budget, must end the run: on a loaded machine slower children
    # spent the default 2 cpu-minutes after 4 of them
    config = tiny_search_config(
        max_children=6, child_steps=60, controller="random", budget="30cpu-minutes"
    )
    (fresh_run / "search.json").write_text(json.dumps(config.to_dict()))
    log_path = tmp_path / "search.log"
    with ray_tmp_dir("rk") as ray_tmp, open(log_path, "w") as log:
        proc = start_resumed_search(fresh_run, ray_tmp, log)
        try:
            in_flight = wait_for_a_child_in_flight(fresh_run, proc, log_path)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    before = read_records(fresh_run / "trials.jsonl")
    in_flight -= {r["proposal_id"] for r in before}
    assert before and in_flight

    summary = run_search(config, fresh_run, parse_budget(config.budget), resume=True)
    after = read_records(fresh_run / "trials.jsonl")
    ids = [r["proposal_id"] for r in after]
    assert after[: len(before)] == before  # nothing finished was lost or rewritten
    assert len(ids) == len(set(ids))  # no trial twice
    assert in_flight <= set(ids)  # the killed children ran again
    assert summary["children"] == len(after) == 6  # and no more than the run allows


def test_search_joins_a_two_node_cluster_and_runs_children_on_both(fresh_run):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with ray_tmp_dir("rc") as ray_tmp:
        done = subprocess.run(
            [sys.executable, "-m", "tests.cluster_search", str(fresh_run), str(ray_tmp)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=400,
        )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    records = read_records(fresh_run / "trials.jsonl")
    assert len(records) == 4
    assert len({r["node_id"] for r in records}) == 2  # children ran on both nodes
